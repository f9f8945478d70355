/*
 * start.S - entry for cpubench: hart 0 only, stack, zeroed .bss, FP on,
 * call main, then power off through the SiFive test finisher with main's
 * return value as the exit code (0x5555 = pass, 0x3333 | code << 16 = fail).
 */
	.equ FINISHER, 0x100000

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	csrr t0, mhartid
	bnez t0, park
	la sp, __stack_top
	la t0, __bss_start
	la t1, __bss_end
1:
	bgeu t0, t1, 2f
	sd zero, 0(t0)
	addi t0, t0, 8
	j 1b
2:
	li t0, 0x2000                 /* mstatus.FS = Initial: the compiler may use FP registers */
	csrs mstatus, t0
	call main
	li t1, FINISHER
	bnez a0, 3f
	li t0, 0x5555
	sw t0, 0(t1)
	j park
3:
	slli a0, a0, 16
	li t0, 0x3333
	or a0, a0, t0
	sw a0, 0(t1)
park:
	wfi
	j park
