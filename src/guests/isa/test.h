/*
 * test.h - Tern's harness for bare-metal ISA test programs.
 *
 * Every program in src/guests/isa/ includes this header, then writes:
 *
 *     TEST_BEGIN
 *       TEST 1
 *       ... instructions ...
 *       CHECK a0, 42
 *       ...
 *     TEST_END
 *
 * Conventions
 *   - Linked at 0x80000000 (link.ld), entry _start, runs in M-mode.
 *   - gp (x3) holds the current test number (1..254).  The QEMU finisher
 *     exit status is only 8 bits wide, so a larger number could alias 0
 *     ("pass"); TEST refuses it at assembly time.  255 means "failed before
 *     the first numbered test".
 *   - t5 and t6 are the harness's scratch registers: tests may use any
 *     other register, but must not expect t5/t6 to survive a macro (a few
 *     wait macros also use t0, t1, a0; each says so).
 *   - mscratch and sscratch point at trap_frame for the trap handlers; a
 *     test that changes them must put them back.
 *   - Pass: tohost <- 1, then SiFive test finisher (0x100000) <- 0x5555.
 *   - Fail: a message on the UART, tohost <- (n << 1) | 1, then
 *     finisher <- 0x3333 | (n << 16).  Tern stops at the tohost write
 *     (HTIF); QEMU's virt board has no HTIF, so the finisher write is what
 *     ends it there, with exit status n.
 *
 * Traps
 *   Both the M-mode and the S-mode handler record cause/tval/epc/status in
 *   trap_frame and preserve every register.  A trap is "expected" when a
 *   resume address is armed (ARM / ARM_HOST); an unexpected trap fails the
 *   current test and prints the trap CSRs.  After a resumed interrupt the
 *   handler clears xPIE, so the interrupted code continues with interrupts
 *   globally disabled instead of re-trapping on a still-pending source.
 *   fail is reached from any privilege mode by an ecall with a magic a7.
 */
#ifndef TERN_ISA_TEST_H
#define TERN_ISA_TEST_H

#define TESTNUM gp

/* ---- platform (QEMU virt compatible) ---- */
#define RAM_BASE        0x80000000
#define FINISHER        0x100000
#define FINISHER_PASS   0x5555
#define FINISHER_FAIL   0x3333
#define UART0           0x10000000
#define CLINT_MSIP      0x2000000
#define CLINT_MTIMECMP  0x2004000
#define CLINT_MTIME     0x200bff8

/* ---- privilege modes (mstatus.MPP encoding) ---- */
#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* ---- mstatus / sstatus ---- */
#define MSTATUS_SIE   0x2
#define MSTATUS_MIE   0x8
#define MSTATUS_SPIE  0x20
#define MSTATUS_MPIE  0x80
#define MSTATUS_SPP   0x100
#define MSTATUS_MPP   0x1800
#define MSTATUS_FS    0x6000
#define FS_OFF        0x0000
#define FS_INITIAL    0x2000
#define FS_CLEAN      0x4000
#define FS_DIRTY      0x6000
#define MSTATUS_MPRV  0x20000
#define MSTATUS_SUM   0x40000
#define MSTATUS_MXR   0x80000
#define MSTATUS_TVM   0x100000
#define MSTATUS_TW    0x200000
#define MSTATUS_TSR   0x400000
#define MSTATUS_SD    0x8000000000000000

/* ---- exception causes ---- */
#define CAUSE_MISALIGNED_FETCH  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL           2
#define CAUSE_BREAKPOINT        3
#define CAUSE_MISALIGNED_LOAD   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_MISALIGNED_STORE  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_ECALL_U           8
#define CAUSE_ECALL_S           9
#define CAUSE_ECALL_M           11
#define CAUSE_FETCH_PAGE        12
#define CAUSE_LOAD_PAGE         13
#define CAUSE_STORE_PAGE        15

/* ---- interrupts: mip/mie bit numbers; mcause = INTR | number ---- */
#define INTR     0x8000000000000000
#define IRQ_SSI  1
#define IRQ_MSI  3
#define IRQ_STI  5
#define IRQ_MTI  7
#define IRQ_SEI  9
#define IRQ_MEI  11
#define MIP_SSIP (1 << IRQ_SSI)
#define MIP_MSIP (1 << IRQ_MSI)
#define MIP_STIP (1 << IRQ_STI)
#define MIP_MTIP (1 << IRQ_MTI)
#define MIP_SEIP (1 << IRQ_SEI)
#define MIP_MEIP (1 << IRQ_MEI)

/* ---- trap_frame layout ---- */
#define TF_MT0     0     /* M handler's saved t0..t2 */
#define TF_MT1     8
#define TF_MT2     16
#define TF_ST0     24    /* S handler's saved t0..t2 */
#define TF_ST1     32
#define TF_ST2     40
#define TF_RESUME  48    /* armed resume pc (bit 0: resume in the handler's mode) */
#define TF_CAUSE   56    /* xcause of the last trap */
#define TF_TVAL    64    /* xtval */
#define TF_EPC     72    /* xepc */
#define TF_STATUS  80    /* mstatus / sstatus as it was on handler entry */
#define TF_LEVEL   88    /* 3 = taken by the M handler, 1 = by the S handler */
#define TF_COUNT   96    /* number of traps taken */
#define TF_SIZE    104

/* a7 values that the trap handlers treat as requests, not as tests */
#define MAGIC_FAIL        0x7e4afa11
#define MAGIC_FAIL_VALUE  0x7e4afa12
#define MAGIC_S_UNEXPECTED 0x7e4afa13

#define SATP_SV39 0x8000000000000000

/* PTE bits */
#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80

#ifdef __ASSEMBLER__

/* 32-bit encodings unless a test opts in to compressed code locally, and no
	 linker relaxation: the code is laid out exactly as written. */
.option norvc
.option norelax

/* ---------------- test bookkeeping ---------------- */

/* Start test number n. */
.macro TEST n
	.if (\n < 1) || (\n > 254)
		.error "test numbers must be in 1..254"
	.endif
	li TESTNUM, \n
.endm

/* Fail the current test unless reg == val (64-bit compare). */
.macro CHECK reg, val
	.ifc \reg, t6
		.error "CHECK cannot test t6 (harness scratch)"
	.endif
	li t6, \val
	beq \reg, t6, .Lck\@
	mv t5, \reg                 /* t5 = actual, t6 = expected, for the message */
	j fail_value
.Lck\@:
.endm

/* Fail unless two registers are equal. */
.macro CHECK_REG reg, reg2
	beq \reg, \reg2, .Lcr\@
	mv t5, \reg
	mv t6, \reg2
	j fail_value
.Lcr\@:
.endm

/* Fail unless the 32-bit FP register holds bit pattern val (NaN-boxed). */
.macro CHECK_S freg, val
	fmv.x.d t5, \freg
	li t6, (0xffffffff00000000 | (\val))
	beq t5, t6, .Lcs\@
	j fail_value
.Lcs\@:
.endm

/* Fail unless the FP register holds 64-bit pattern val. */
.macro CHECK_D freg, val
	fmv.x.d t5, \freg
	li t6, \val
	beq t5, t6, .Lcd\@
	j fail_value
.Lcd\@:
.endm

/* Fail unless the accrued fflags equal val; clears fflags. */
.macro CHECK_FLAGS val
	csrrw t5, fflags, x0
	li t6, \val
	beq t5, t6, .Lcf\@
	j fail_value
.Lcf\@:
.endm

/* ---------------- floating point ---------------- */

#define FFLAG_NX 0x01
#define FFLAG_UF 0x02
#define FFLAG_OF 0x04
#define FFLAG_DZ 0x08
#define FFLAG_NV 0x10

/* Load a bit pattern into an FP register (single: NaN-boxed by fmv.w.x). */
.macro FLI_S freg, bits
	li t5, \bits
	fmv.w.x \freg, t5
.endm
.macro FLI_D freg, bits
	li t5, \bits
	fmv.d.x \freg, t5
.endm

/* Emit "op dst, srcs" with an optional static rounding mode. */
.macro FP_OP rm, op, operands:vararg
	.ifb \rm
		\op \operands
	.else
		\op \operands, \rm
	.endif
.endm

/* fa2 = op(fa0[, fa1[, fa2]]) for single (S) / double (D); check bits and fflags */
.macro V_S1 op, exp, a, flags, rm
	csrw fflags, x0
	FLI_S fa0, \a
	FP_OP \rm, \op, fa2, fa0
	CHECK_S fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_S2 op, exp, a, b, flags, rm
	csrw fflags, x0
	FLI_S fa0, \a
	FLI_S fa1, \b
	FP_OP \rm, \op, fa2, fa0, fa1
	CHECK_S fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_S3 op, exp, a, b, c, flags, rm
	csrw fflags, x0
	FLI_S fa0, \a
	FLI_S fa1, \b
	FLI_S fa3, \c
	FP_OP \rm, \op, fa2, fa0, fa1, fa3
	CHECK_S fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_D1 op, exp, a, flags, rm
	csrw fflags, x0
	FLI_D fa0, \a
	FP_OP \rm, \op, fa2, fa0
	CHECK_D fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_D2 op, exp, a, b, flags, rm
	csrw fflags, x0
	FLI_D fa0, \a
	FLI_D fa1, \b
	FP_OP \rm, \op, fa2, fa0, fa1
	CHECK_D fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_D3 op, exp, a, b, c, flags, rm
	csrw fflags, x0
	FLI_D fa0, \a
	FLI_D fa1, \b
	FLI_D fa3, \c
	FP_OP \rm, \op, fa2, fa0, fa1, fa3
	CHECK_D fa2, \exp
	CHECK_FLAGS \flags
.endm

/* integer result: a0 = op(fa0[, fa1]) */
.macro V_S2X op, exp, a, flags, rm       /* one single source */
	csrw fflags, x0
	FLI_S fa0, \a
	FP_OP \rm, \op, a0, fa0
	CHECK a0, \exp
	CHECK_FLAGS \flags
.endm
.macro V_D2X op, exp, a, flags, rm
	csrw fflags, x0
	FLI_D fa0, \a
	FP_OP \rm, \op, a0, fa0
	CHECK a0, \exp
	CHECK_FLAGS \flags
.endm
.macro V_SCMP op, exp, a, b, flags
	csrw fflags, x0
	FLI_S fa0, \a
	FLI_S fa1, \b
	li a0, 0x55
	\op a0, fa0, fa1
	CHECK a0, \exp
	CHECK_FLAGS \flags
.endm
.macro V_DCMP op, exp, a, b, flags
	csrw fflags, x0
	FLI_D fa0, \a
	FLI_D fa1, \b
	li a0, 0x55
	\op a0, fa0, fa1
	CHECK a0, \exp
	CHECK_FLAGS \flags
.endm

/* FP result from an integer: fa2 = op(a0) */
.macro V_X2S op, exp, a, flags, rm
	csrw fflags, x0
	li a0, \a
	FP_OP \rm, \op, fa2, a0
	CHECK_S fa2, \exp
	CHECK_FLAGS \flags
.endm
.macro V_X2D op, exp, a, flags, rm
	csrw fflags, x0
	li a0, \a
	FP_OP \rm, \op, fa2, a0
	CHECK_D fa2, \exp
	CHECK_FLAGS \flags
.endm

/* ---------------- expected traps ---------------- */

/* Arm a resume address: the next trap continues at label, in the mode that trapped. */
.macro ARM label
	la t6, \label
	la t5, trap_frame
	sd t6, TF_RESUME(t5)
	li t6, -1
	sd t6, TF_CAUSE(t5)          /* "no trap yet" sentinel */
.endm

/* Arm a resume address: the next trap continues at label in the handler's own
	 mode (M for the M handler, S for the S handler). Used to come back up from
	 code deliberately run in a lower mode. */
.macro ARM_HOST label
	la t6, \label + 1
	la t5, trap_frame
	sd t6, TF_RESUME(t5)
	li t6, -1
	sd t6, TF_CAUSE(t5)
.endm

/* Disarm and check that the last trap had cause val (fails if none happened). */
.macro CHECK_CAUSE val
	la t5, trap_frame
	sd zero, TF_RESUME(t5)
	ld t5, TF_CAUSE(t5)
	li t6, \val
	beq t5, t6, .Lcc\@
	j fail_value
.Lcc\@:
.endm

/* Fail unless trap_frame field off holds val. */
.macro CHECK_TF off, val
	la t5, trap_frame
	ld t5, \off(t5)
	li t6, \val
	beq t5, t6, .Lct\@
	j fail_value
.Lct\@:
.endm

/* Fail unless trap_frame field off holds the address of label. */
.macro CHECK_TF_ADDR off, label
	la t5, trap_frame
	ld t5, \off(t5)
	la t6, \label
	beq t5, t6, .Lca\@
	j fail_value
.Lca\@:
.endm

/* Fail unless trap_frame field off equals register reg. */
.macro CHECK_TF_REG off, reg
	la t5, trap_frame
	ld t5, \off(t5)
	beq t5, \reg, .Lcq\@
	mv t6, \reg
	j fail_value
.Lcq\@:
.endm

/* Fail unless (trap_frame field off) & mask == val. */
.macro CHECK_TF_MASK off, mask, val
	la t5, trap_frame
	ld t5, \off(t5)
	li t6, \mask
	and t5, t5, t6
	li t6, \val
	beq t5, t6, .Lcm\@
	j fail_value
.Lcm\@:
.endm

/* Run one instruction that must trap with the given cause; checks the
	 cause and that xepc points at the instruction, resumes after it. */
.macro EXPECT_TRAP cause, insn:vararg
	ARM .Ler\@
.Lei\@:
	\insn
.Ler\@:
	CHECK_CAUSE \cause
	CHECK_TF_ADDR TF_EPC, .Lei\@
.endm

/* Reset the trap counter. */
.macro CLEAR_TRAP_COUNT
	la t5, trap_frame
	sd zero, TF_COUNT(t5)
.endm

/* ---------------- privilege changes ---------------- */

/* From M-mode: continue at target in mode (PRV_U/PRV_S/PRV_M) via mret.
	 MPIE is cleared so that MIE stays 0 across the round trip (M -> lower mode
	 -> trap back to M), rather than mret quietly enabling M interrupts. */
.macro ENTER_MODE mode, target
	li t6, MSTATUS_MPP | MSTATUS_MPIE
	csrc mstatus, t6
	li t6, (\mode << 11)
	csrs mstatus, t6
	la t6, \target
	csrw mepc, t6
	mret
.endm

/* From S-mode: continue at target in mode (PRV_U/PRV_S) via sret (SPIE cleared). */
.macro ENTER_MODE_S mode, target
	li t6, MSTATUS_SPP | MSTATUS_SPIE
	csrc sstatus, t6
	li t6, (\mode << 8)
	csrs sstatus, t6
	la t6, \target
	csrw sepc, t6
	sret
.endm

/* ---------------- running code in lower modes ---------------- */

/* Run insn in mode (PRV_U/PRV_S); it must trap into M with cause. */
.macro IN_MODE_TRAP mode, cause, insn:vararg
	ARM_HOST .Lb\@
	ENTER_MODE \mode, .Li\@
.Li\@:
	\insn
	j fail
.Lb\@:
	CHECK_CAUSE \cause
	CHECK_TF_ADDR TF_EPC, .Li\@
.endm

/* Run insn in mode; it must not trap (the ecall that follows is the only trap). */
.macro IN_MODE_OK mode, insn:vararg
	ARM_HOST .Lb\@
	ENTER_MODE \mode, .Li\@
.Li\@:
	\insn
.Le\@:
	ecall
.Lb\@:
	CHECK_CAUSE (CAUSE_ECALL_U + \mode)
	CHECK_TF_ADDR TF_EPC, .Le\@
.endm

/* Spin briefly; an interrupt is expected to arrive and resume elsewhere. */
.macro AWAIT_INTERRUPT
	li t5, 10000
.Law\@:
	addi t5, t5, -1
	bnez t5, .Law\@
	j fail
.endm

/* Wait (bounded) until all bits of mask are pending in mip: the CLINT timer
	 compare need not be visible immediately.  Clobbers t0, t1, a0. */
.macro AWAIT_MIP mask
	li t0, 100000
	li t1, \mask
.Lam\@:
	csrr a0, mip
	and a0, a0, t1
	beq a0, t1, .Lad\@
	addi t0, t0, -1
	bnez t0, .Lam\@
	j fail
.Lad\@:
.endm

/* Enable MIE; the interrupt irq must be taken (the handler returns with MIE = 0). */
.macro TAKE_INTERRUPT irq
	ARM .Lti\@
	csrsi mstatus, MSTATUS_MIE
	AWAIT_INTERRUPT
.Lti\@:
	CHECK_CAUSE INTR | \irq
.endm

/* ---------------- program skeleton ---------------- */

.macro TEST_BEGIN
	.section .text.init, "ax", @progbits
	.globl _start
_start:
	/* Only hart 0 runs the test (QEMU may be started with -smp N). */
	csrr t0, mhartid
	bnez t0, harness_park
	/* Optional CSRs below are written with a skip-on-trap handler installed,
		 so an implementation without them still starts. */
	la t0, harness_skip_trap
	csrw mtvec, t0
	/* PMP: one NAPOT entry covering everything, RWX.  With PMP implemented and
		 no entry matching, S/U accesses would fail (QEMU enforces this). */
	li t0, -1
	csrw pmpaddr0, t0
	li t0, 0x1f
	csrw pmpcfg0, t0
	/* The real handlers. */
	la t0, trap_frame
	csrw mscratch, t0
	csrw sscratch, t0
	la t0, m_trap_entry
	csrw mtvec, t0
	la t0, s_trap_entry
	csrw stvec, t0
	csrw satp, zero
	csrw medeleg, zero
	csrw mideleg, zero
	csrw mie, zero
	csrw mip, zero
	/* FP on (Initial) so F/D tests can run; everything else in mstatus 0. */
	li t0, FS_INITIAL
	csrw mstatus, t0
	csrw fcsr, zero
	/* Quiet timer: MTIP must not be pending at start. */
	li t0, CLINT_MTIMECMP
	li t1, -1
	sd t1, 0(t0)
	li t0, CLINT_MSIP
	sw zero, 0(t0)
	la sp, harness_stack_top
	li TESTNUM, 0
	/* Clear the general registers the tests use so nothing depends on the loader. */
	li ra, 0
	li tp, 0
	li t0, 0
	li t1, 0
	li t2, 0
	li s0, 0
	li s1, 0
	li a0, 0
	li a1, 0
	li a2, 0
	li a3, 0
	li a4, 0
	li a5, 0
	li a6, 0
	li a7, 0
	li s2, 0
	li s3, 0
	li s4, 0
	li s5, 0
	li s6, 0
	li s7, 0
	li s8, 0
	li s9, 0
	li s10, 0
	li s11, 0
	li t3, 0
	li t4, 0
	li t5, 0
	li t6, 0
	j test_main

harness_park:
	wfi
	j harness_park

	.align 2
harness_skip_trap:
	csrr t0, mepc
	addi t0, t0, 4
	csrw mepc, t0
	mret

	.text
test_main:
.endm

.macro TEST_END
	/* All tests passed; tests always finish in M-mode. */
	j pass
	HARNESS_RUNTIME
.endm

/* Shared runtime: trap handlers, pass/fail, UART printing, data. */
.macro HARNESS_RUNTIME
	.text
	.globl pass
pass:
	fence
	li t0, 1
	la t1, tohost
	sd t0, 0(t1)
	li t0, FINISHER_PASS
	li t1, FINISHER
	sw t0, 0(t1)
1:
	wfi
	j 1b

	/* Check failures come here from any mode: the ecall brings us to M. */
fail:
	li a7, MAGIC_FAIL
	ecall
1: j 1b
fail_value:
	li a7, MAGIC_FAIL_VALUE
	ecall
1: j 1b

	/* ---- M-mode trap handler ---- */
	.align 6
m_trap_entry:
	csrrw t0, mscratch, t0
	sd t1, TF_MT1(t0)
	sd t2, TF_MT2(t0)
	csrr t1, mscratch
	sd t1, TF_MT0(t0)
	csrw mscratch, t0
	csrr t1, mcause
	sd t1, TF_CAUSE(t0)
	csrr t1, mtval
	sd t1, TF_TVAL(t0)
	csrr t1, mepc
	sd t1, TF_EPC(t0)
	csrr t1, mstatus
	sd t1, TF_STATUS(t0)
	li t1, 3
	sd t1, TF_LEVEL(t0)
	ld t1, TF_COUNT(t0)
	addi t1, t1, 1
	sd t1, TF_COUNT(t0)
	/* ecalls carrying a harness request take precedence over arming */
	csrr t1, mcause
	li t2, CAUSE_ECALL_U
	beq t1, t2, m_trap_ecall
	li t2, CAUSE_ECALL_S
	beq t1, t2, m_trap_ecall
	li t2, CAUSE_ECALL_M
	beq t1, t2, m_trap_ecall
m_trap_armed:
	ld t1, TF_RESUME(t0)
	beqz t1, m_trap_unexpected
	sd zero, TF_RESUME(t0)
	andi t2, t1, 1
	beqz t2, 1f
	andi t1, t1, -2
	li t2, MSTATUS_MPP          /* resume in M */
	csrs mstatus, t2
1:
	csrw mepc, t1
	csrr t1, mcause
	bgez t1, 2f
	li t2, MSTATUS_MPIE         /* interrupt: come back with MIE clear */
	csrc mstatus, t2
2:
	ld t2, TF_MT2(t0)
	ld t1, TF_MT1(t0)
	ld t0, TF_MT0(t0)
	mret
m_trap_ecall:
	li t2, MAGIC_FAIL
	beq a7, t2, harness_fail_check
	li t2, MAGIC_FAIL_VALUE
	beq a7, t2, harness_fail_value
	li t2, MAGIC_S_UNEXPECTED
	beq a7, t2, harness_fail_strap
	j m_trap_armed
m_trap_unexpected:
	j harness_fail_mtrap

	/* ---- S-mode trap handler (used when medeleg/mideleg delegate) ---- */
	.align 6
s_trap_entry:
	csrrw t0, sscratch, t0
	sd t1, TF_ST1(t0)
	sd t2, TF_ST2(t0)
	csrr t1, sscratch
	sd t1, TF_ST0(t0)
	csrw sscratch, t0
	/* Harness requests from U are forwarded to M by a second ecall. */
	csrr t1, scause
	li t2, CAUSE_ECALL_U
	bne t1, t2, 1f
	li t2, MAGIC_FAIL
	beq a7, t2, s_trap_forward
	li t2, MAGIC_FAIL_VALUE
	beq a7, t2, s_trap_forward
1:
	sd t1, TF_CAUSE(t0)
	csrr t1, stval
	sd t1, TF_TVAL(t0)
	csrr t1, sepc
	sd t1, TF_EPC(t0)
	csrr t1, sstatus
	sd t1, TF_STATUS(t0)
	li t1, 1
	sd t1, TF_LEVEL(t0)
	ld t1, TF_COUNT(t0)
	addi t1, t1, 1
	sd t1, TF_COUNT(t0)
	ld t1, TF_RESUME(t0)
	beqz t1, s_trap_unexpected
	sd zero, TF_RESUME(t0)
	andi t2, t1, 1
	beqz t2, 1f
	andi t1, t1, -2
	li t2, MSTATUS_SPP          /* resume in S */
	csrs sstatus, t2
1:
	csrw sepc, t1
	csrr t1, scause
	bgez t1, 2f
	li t2, MSTATUS_SPIE
	csrc sstatus, t2
2:
	ld t2, TF_ST2(t0)
	ld t1, TF_ST1(t0)
	ld t0, TF_ST0(t0)
	sret
s_trap_forward:
	ecall
s_trap_unexpected:
	li a7, MAGIC_S_UNEXPECTED
	ecall

	/* ---- failure reporting (M-mode, via the handler) ---- */
harness_fail_check:
	la sp, harness_stack_top
	call harness_fail_header
	j harness_fail_exit
harness_fail_value:
	la sp, harness_stack_top
	mv s0, t5
	mv s1, t6
	call harness_fail_header
	la a0, harness_msg_got
	call harness_puts
	mv a0, s0
	call harness_puthex
	la a0, harness_msg_expected
	call harness_puts
	mv a0, s1
	call harness_puthex
	j harness_fail_exit
harness_fail_mtrap:
	la sp, harness_stack_top
	call harness_fail_header
	la a0, harness_msg_mtrap
	call harness_puts
	csrr a0, mcause
	call harness_puthex
	la a0, harness_msg_epc
	call harness_puts
	csrr a0, mepc
	call harness_puthex
	la a0, harness_msg_tval
	call harness_puts
	csrr a0, mtval
	call harness_puthex
	la a0, harness_msg_status
	call harness_puts
	csrr a0, mstatus
	call harness_puthex
	j harness_fail_exit
harness_fail_strap:
	la sp, harness_stack_top
	call harness_fail_header
	la a0, harness_msg_strap
	call harness_puts
	csrr a0, scause
	call harness_puthex
	la a0, harness_msg_epc
	call harness_puts
	csrr a0, sepc
	call harness_puthex
	la a0, harness_msg_tval
	call harness_puts
	csrr a0, stval
	call harness_puthex
	j harness_fail_exit

harness_fail_header:
	addi sp, sp, -16
	sd ra, 0(sp)
	bnez TESTNUM, 1f
	li TESTNUM, 255             /* failed outside any numbered test */
1:
	la a0, harness_msg_fail
	call harness_puts
	mv a0, TESTNUM
	call harness_putdec
	ld ra, 0(sp)
	addi sp, sp, 16
	ret

harness_fail_exit:
	li a0, '\n'
	call harness_putc
	fence
	slli t0, TESTNUM, 1
	ori t0, t0, 1
	la t1, tohost
	sd t0, 0(t1)
	slli t0, TESTNUM, 16
	li t1, FINISHER_FAIL
	or t0, t0, t1
	li t1, FINISHER
	sw t0, 0(t1)
1:
	wfi
	j 1b

	/* ---- UART output (NS16550A THR; QEMU needs no setup) ---- */
harness_putc:
	li t0, UART0
	sb a0, 0(t0)
	ret
harness_puts:
	mv t1, a0
	li t0, UART0
1:
	lbu t2, 0(t1)
	beqz t2, 2f
	sb t2, 0(t0)
	addi t1, t1, 1
	j 1b
2:
	ret
harness_puthex:                /* "0x" + 16 hex digits */
	li t0, UART0
	li t1, '0'
	sb t1, 0(t0)
	li t1, 'x'
	sb t1, 0(t0)
	li t2, 60
1:
	srl t1, a0, t2
	andi t1, t1, 15
	addi t1, t1, '0'
	li t3, '9'
	ble t1, t3, 2f
	addi t1, t1, 'a' - '9' - 1
2:
	sb t1, 0(t0)
	addi t2, t2, -4
	bgez t2, 1b
	ret
harness_putdec:                /* a0 < 1000; no M extension needed */
	li t0, UART0
	la t4, harness_pow10
	li t3, 0                     /* a digit has been printed */
1:
	ld t1, 0(t4)
	beqz t1, 5f
	li t2, 0
2:
	bltu a0, t1, 3f
	sub a0, a0, t1
	addi t2, t2, 1
	j 2b
3:
	bnez t2, 4f
	bnez t3, 4f
	li t5, 1
	bne t1, t5, 6f               /* skip leading zeros, but print "0" */
4:
	addi t2, t2, '0'
	sb t2, 0(t0)
	li t3, 1
6:
	addi t4, t4, 8
	j 1b
5:
	ret

	.section .rodata.harness, "a", @progbits
	.align 3
harness_pow10:        .dword 100, 10, 1, 0
harness_msg_fail:     .asciz "\nFAIL: test "
harness_msg_got:      .asciz ": got "
harness_msg_expected: .asciz ", expected "
harness_msg_mtrap:    .asciz ": unexpected trap mcause="
harness_msg_strap:    .asciz ": unexpected S-mode trap scause="
harness_msg_epc:      .asciz " epc="
harness_msg_tval:     .asciz " tval="
harness_msg_status:   .asciz " mstatus="

	/* HTIF mailbox, in its own section (Tern watches the tohost symbol). */
	.section .tohost, "aw", @progbits
	.align 6
	.globl tohost
tohost: .dword 0
	.align 6
	.globl fromhost
fromhost: .dword 0

	.data
	.align 6
	.globl trap_frame
trap_frame: .fill TF_SIZE / 8, 8, 0
	.bss
	.align 4
harness_stack: .skip 4096
harness_stack_top:
	.text
.endm

#endif /* __ASSEMBLER__ */
#endif /* TERN_ISA_TEST_H */
