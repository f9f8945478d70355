/*
 * hello.S - smallest useful guest: print a line on the NS16550A UART and
 * power off through the SiFive test finisher (QEMU virt compatible).
 */
	.equ UART0, 0x10000000        /* THR at offset 0; LSR at offset 5 */
	.equ LSR_THRE, 0x20           /* transmit holding register empty */
	.equ FINISHER, 0x100000
	.equ FINISHER_PASS, 0x5555

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	li t0, UART0
	la t1, message
1:
	lbu t2, 0(t1)
	beqz t2, 3f
2:
	lbu t3, 5(t0)                 /* wait until the UART can take a byte */
	andi t3, t3, LSR_THRE
	beqz t3, 2b
	sb t2, 0(t0)
	addi t1, t1, 1
	j 1b
3:
	li t0, FINISHER
	li t1, FINISHER_PASS
	sw t1, 0(t0)
4:
	wfi                           /* not reached if the finisher exists */
	j 4b

	.section .rodata
message:
	.asciz "Hello from Tern\n"
