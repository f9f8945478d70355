/*
 * heartbeat.S - a guest that stays up and talks: prints
 *
 *     tern-heartbeat <n>
 *
 * once a second (CLINT mtime, 10 MHz), like the Linux guest's init, and
 * echoes what is typed on its console: each byte as it arrives, and at the
 * end of a line (CR or LF)
 *
 *     you typed: <the line>
 *
 * It is the demo's guest when no Linux image is at hand and the guest the
 * interactive-console tests type to. Between checks it sleeps in WFI on the
 * machine timer (mie.MTIE set, mstatus.MIE clear: WFI wakes, no trap is
 * taken), polling the UART every 10 ms, so an idle heartbeat guest costs
 * almost no host CPU. Only hart 0 runs; other harts park.
 */
	.equ UART0, 0x10000000        /* RBR/THR at 0; LSR at 5 */
	.equ LSR_DR, 0x01             /* a received byte is waiting */
	.equ LSR_THRE, 0x20           /* the transmitter can take a byte */
	.equ MTIME, 0x0200bff8
	.equ MTIMECMP0, 0x02004000
	.equ SECOND, 10000000         /* mtime ticks per second */
	.equ POLL, 100000             /* 10 ms */
	.equ LINE_MAX, 120
	.equ MIE_MTIE, 0x80

	.section .text.init, "ax", @progbits
	.globl _start
_start:
	csrr t0, mhartid
	bnez t0, park
	la sp, stack_top
	li s0, UART0
	li s1, MTIME
	li s2, MTIMECMP0
	li s3, 0                      /* heartbeats printed */
	li s4, SECOND
	ld s5, 0(s1)
	add s5, s5, s4                /* when the next heartbeat is due */
	li s6, 0                      /* bytes in the line buffer */
	la s7, line
	li t0, MIE_MTIE
	csrw mie, t0
	la a0, banner
	call puts

loop:
	lbu t0, 5(s0)
	andi t0, t0, LSR_DR
	beqz t0, timer
	lbu a0, 0(s0)
	li t1, '\r'
	beq a0, t1, endline
	li t1, '\n'
	beq a0, t1, endline
	li t1, LINE_MAX
	bgeu s6, t1, loop             /* a full buffer drops the rest of the line */
	add t1, s7, s6
	sb a0, 0(t1)
	addi s6, s6, 1
	call putc                     /* echo */
	j loop

endline:
	li a0, '\n'
	call putc
	beqz s6, loop
	add t1, s7, s6
	sb zero, 0(t1)
	la a0, typed
	call puts
	mv a0, s7
	call puts
	li a0, '\n'
	call putc
	li s6, 0
	j loop

timer:
	ld t0, 0(s1)
	bltu t0, s5, sleep
	addi s3, s3, 1
	add s5, s5, s4
	la a0, beat
	call puts
	mv a0, s3
	call putdec
	li a0, '\n'
	call putc
	j loop

sleep:
	li t1, POLL
	add t0, t0, t1
	bltu t0, s5, 1f
	mv t0, s5
1:
	sd t0, 0(s2)                  /* wake at the next poll or heartbeat */
	wfi
	j loop

park:
	wfi
	j park

/* putc(a0): one byte to the UART, once it can take it. */
putc:
	lbu t0, 5(s0)
	andi t0, t0, LSR_THRE
	beqz t0, putc
	sb a0, 0(s0)
	ret

/* puts(a0): a NUL-terminated string. */
puts:
	addi sp, sp, -16
	sd ra, 0(sp)
	sd s8, 8(sp)
	mv s8, a0
1:
	lbu a0, 0(s8)
	beqz a0, 2f
	call putc
	addi s8, s8, 1
	j 1b
2:
	ld ra, 0(sp)
	ld s8, 8(sp)
	addi sp, sp, 16
	ret

/* putdec(a0): an unsigned number in decimal. */
putdec:
	addi sp, sp, -48
	sd ra, 0(sp)
	addi t2, sp, 47
	sb zero, 0(t2)                /* digits are written backwards from here */
	li t3, 10
1:
	remu t4, a0, t3
	divu a0, a0, t3
	addi t4, t4, '0'
	addi t2, t2, -1
	sb t4, 0(t2)
	bnez a0, 1b
	mv a0, t2
	call puts
	ld ra, 0(sp)
	addi sp, sp, 48
	ret

	.section .rodata
banner:
	.asciz "tern heartbeat guest: type a line and it is echoed back\n"
beat:
	.asciz "tern-heartbeat "
typed:
	.asciz "you typed: "

	.section .bss
	.balign 16
line:
	.space LINE_MAX + 8
	.balign 16
	.space 4096
stack_top:
