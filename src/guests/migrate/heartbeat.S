/*
 * heartbeat.S - a guest to migrate while it runs: it fills 4 MiB of RAM with
 * a pattern derived from each word's address (incompressible, so migration
 * really carries it), then every 250 ms of guest time wakes from WFI on its
 * timer, checks the whole pattern and prints
 *     beat N ok ms=GUEST-MILLISECONDS
 * ("BAD" instead of "ok" if any word changed). A migration that lost a page
 * or the timer shows at once: a BAD line, or no more beats.
 */
	.equ FILL_BASE, 0x80100000
	.equ FILL_BYTES, 4 << 20
	.equ PERIOD, 2500000          /* 250 ms at the 10 MHz timebase */

#include "board.inc"

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	csrr t0, mhartid
	bnez t0, park
	li sp, 0x80100000             /* stack just below the pattern */
	li s4, 0x9E3779B97F4A7C15     /* the pattern's multiplier */
	li s0, FILL_BASE
	li s1, FILL_BYTES
	add s1, s1, s0
1:	mul t0, s0, s4
	srli t1, t0, 29
	xor t0, t0, t1
	sd t0, 0(s0)
	addi s0, s0, 8
	bltu s0, s1, 1b

	li s3, 0                      /* beats so far */
	li t0, 0x80
	csrw mie, t0                  /* MTIE: the timer wakes WFI (mstatus.MIE stays 0: no trap) */
	li s5, CLINT_MTIME
	ld s6, 0(s5)                  /* next deadline */
beat:
	li t0, PERIOD
	add s6, s6, t0
	li t0, CLINT_MTIMECMP
	sd s6, 0(t0)
2:	wfi
	ld t0, 0(s5)
	bltu t0, s6, 2b

	/* check the pattern */
	li s7, 0                      /* 0 = ok */
	li s0, FILL_BASE
3:	mul t0, s0, s4
	srli t1, t0, 29
	xor t0, t0, t1
	ld t1, 0(s0)
	beq t0, t1, 4f
	li s7, 1
4:	addi s0, s0, 8
	bltu s0, s1, 3b

	addi s3, s3, 1
	la a0, beat_text
	call puts
	mv a0, s3
	call putdec
	la a0, ok_text
	beqz s7, 5f
	la a0, bad_text
5:	call puts
	ld a0, 0(s5)
	li t0, 10000
	divu a0, a0, t0
	call putdec
	li a0, '\n'
	call putc
	j beat

park:
	wfi
	j park

#include "common.inc"

	.section .rodata
beat_text:
	.asciz "beat "
ok_text:
	.asciz " ok ms="
bad_text:
	.asciz " BAD ms="
