/*
 * An S-mode kernel for OpenSBI: the boot hart prints a greeting through the SBI console,
 * starts every other hart with the HSM extension, waits until each has checked in with an
 * atomic add, prints the count and shuts the machine down with SRST. Exercises firmware
 * boot, SBI calls, IPIs that wake harts sleeping in WFI, and AMOs across harts.
 *
 * Entry: a0 = hart id, a1 = device tree. The number of harts to expect comes from the
 * device tree's /cpus node count, which is too much parsing for assembly: instead every
 * hart id from 1 to 7 is started and HSM's "invalid hart" answer ends the loop.
 */
	.equ SBI_EXT_HSM, 0x48534D
	.equ SBI_EXT_SRST, 0x53525354
	.equ SBI_LEGACY_PUTCHAR, 1

	.section .text.init
	.globl _start
_start:
	la	sp, stacks + 4096	/* boot hart stack */
	mv	s0, a0			/* s0 = boot hart id */
	la	a0, greeting
	call	puts

	/* start harts 1..7 at secondary; count the ones that exist in s1 */
	li	s1, 0
	li	s2, 1
1:	li	t0, 8
	bgeu	s2, t0, 3f
	beq	s2, s0, 2f
	mv	a0, s2
	la	a1, secondary
	mv	a2, s2			/* opaque = hart id */
	li	a6, 0			/* HSM hart_start */
	li	a7, SBI_EXT_HSM
	ecall
	bnez	a0, 3f			/* no such hart: done */
	addi	s1, s1, 1
2:	addi	s2, s2, 1
	j	1b

	/* wait until every started hart has checked in */
3:	la	t0, arrived
4:	lw	t1, 0(t0)
	bne	t1, s1, 4b

	la	a0, started
	call	puts
	addi	a0, s1, '0'
	call	putc
	li	a0, '\n'
	call	putc

	li	a0, 0			/* shutdown */
	li	a1, 0			/* no reason */
	li	a6, 0
	li	a7, SBI_EXT_SRST
	ecall
5:	wfi
	j	5b

/* Secondary harts: a0 = hart id, a1 = opaque. Check in and stop. */
secondary:
	la	t0, arrived
	li	t1, 1
	amoadd.w zero, t1, (t0)
6:	wfi
	j	6b

putc:	/* a0 = character; uses the legacy console (one SBI call per byte) */
	li	a7, SBI_LEGACY_PUTCHAR
	ecall
	ret

puts:	/* a0 = NUL-terminated string */
	addi	sp, sp, -16
	sd	ra, 8(sp)
	sd	s3, 0(sp)
	mv	s3, a0
7:	lbu	a0, 0(s3)
	beqz	a0, 8f
	call	putc
	addi	s3, s3, 1
	j	7b
8:	ld	s3, 0(sp)
	ld	ra, 8(sp)
	addi	sp, sp, 16
	ret

	.section .rodata
greeting:	.string "tern-sbi: hello from S-mode\n"
started:	.string "tern-sbi: secondary harts started: "

	.section .data
	.align 2
arrived:	.word 0

	.section .bss
	.align 12
stacks:	.space 4096
