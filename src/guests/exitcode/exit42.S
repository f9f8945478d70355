/*
 * exit42.S - powers off through the SiFive test finisher with exit code 42:
 * the finisher's FAIL command is 0x3333 with the code in bits 31:16.
 */
	.equ FINISHER, 0x100000
	.equ FINISHER_FAIL, 0x3333

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	li t0, FINISHER
	li t1, FINISHER_FAIL | (42 << 16)
	sw t1, 0(t0)
1:
	wfi
	j 1b
