/*
 * checksum.S - a deterministic guest for migration transparency (run it in
 * icount mode). Each of ROUNDS rounds scatters UPDATES pseudo-random additions
 * (xorshift64) over a 1 MiB region, then prints a checksum of the whole region
 * and the guest clock:
 *     round R sum HEX t=HEX
 * and at the end "done HEX" before powering off. A migration that lost or
 * replayed a page, a register or the clock changes some later line, so the
 * output of a migrated run must equal an unmigrated one's byte for byte.
 */
	.equ REGION, 0x80100000
	.equ WORDS, (1 << 20) / 8
	.equ ROUNDS, 150
	.equ UPDATES, 2000000

#include "board.inc"

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	csrr t0, mhartid
	bnez t0, park
	li sp, 0x80100000
	li s0, 0x2545F4914F6CDD1D     /* xorshift state */
	li s1, 0                      /* round */
	li s2, REGION
	li s3, WORDS - 1
round:
	li s4, UPDATES
1:	slli t0, s0, 13
	xor s0, s0, t0
	srli t0, s0, 7
	xor s0, s0, t0
	slli t0, s0, 17
	xor s0, s0, t0
	srli t1, s0, 24
	and t1, t1, s3
	slli t1, t1, 3
	add t1, t1, s2
	ld t2, 0(t1)
	add t2, t2, s0
	sd t2, 0(t1)
	addi s4, s4, -1
	bnez s4, 1b

	/* checksum: h = (h rotl 5) ^ word, over the region */
	li s5, 0
	mv t1, s2
	li t3, WORDS
2:	slli t0, s5, 5
	srli t4, s5, 59
	or s5, t0, t4
	ld t2, 0(t1)
	xor s5, s5, t2
	addi t1, t1, 8
	addi t3, t3, -1
	bnez t3, 2b

	addi s1, s1, 1
	la a0, round_text
	call puts
	mv a0, s1
	call putdec
	la a0, sum_text
	call puts
	mv a0, s5
	call puthex
	la a0, time_text
	call puts
	li t0, CLINT_MTIME
	ld a0, 0(t0)
	call puthex
	li a0, '\n'
	call putc
	li t0, ROUNDS
	bltu s1, t0, round

	la a0, done_text
	call puts
	mv a0, s5
	call puthex
	li a0, '\n'
	call putc
	li t0, FINISHER
	li t1, FINISHER_PASS
	sw t1, 0(t0)
park:
	wfi
	j park

#include "common.inc"

	.section .rodata
round_text:
	.asciz "round "
sum_text:
	.asciz " sum "
time_text:
	.asciz " t="
done_text:
	.asciz "done "
