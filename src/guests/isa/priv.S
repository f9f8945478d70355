/*
 * priv.S - Zicsr and the machine/supervisor/user privileged architecture.
 *
 * CSR instructions (register and immediate forms, read-only CSRs, which
 * forms write), misa/mhartid, CSR privilege checks from S and U, ecall/
 * ebreak/illegal-instruction causes and tvals, mret/sret stacking of
 * xPP/xPIE/xIE, xRET from too low a mode, exception and interrupt
 * delegation to S (and interrupts to S being enabled in U), vectored
 * mtvec/stvec, pairwise interrupt priority, the CLINT timer with wfi,
 * mstatus.TVM/TW/TSR, counter enables, misaligned loads/stores (performed
 * in RAM, also across a page) and 2-byte aligned jump targets.
 * Behaviours QEMU 7.2 gets wrong live in strict.S.
 */
#include "test.h"

/* reg <- mstatus field */
.macro MSTATUS_FIELD reg, mask
	csrr \reg, mstatus
	li t5, \mask
	and \reg, \reg, t5
.endm

TEST_BEGIN
	/* ---------------- identification ---------------- */
	TEST 1                                   /* misa: RV64 with I M A F D C S U */
	csrr a0, misa
	srli a1, a0, 62
	CHECK a1, 2                              /* MXL = 2: XLEN 64 */
	li a2, (1 << 8) | (1 << 12) | (1 << 0) | (1 << 5) | (1 << 3) | (1 << 2) | (1 << 18) | (1 << 20)
	and a1, a0, a2
	CHECK_REG a1, a2
	TEST 2
	csrr a0, mhartid
	CHECK a0, 0
	csrr a0, mvendorid                       /* readable, any value */
	csrr a0, marchid
	csrr a0, mimpid

	/* ---------------- CSR instruction forms (on sscratch) ---------------- */
	TEST 3
	csrr s0, sscratch                        /* the S handler's pointer: restored below */
	li a1, 0x0123456789abcdef
	csrw sscratch, a1
	csrr a0, sscratch
	CHECK a0, 0x0123456789abcdef
	li a1, 0xff
	csrrw a0, sscratch, a1                   /* returns the old value */
	CHECK a0, 0x0123456789abcdef
	li a1, 0xf00
	csrrs a0, sscratch, a1
	CHECK a0, 0xff
	csrr a0, sscratch
	CHECK a0, 0xfff
	li a1, 0x0f0
	csrrc a0, sscratch, a1
	CHECK a0, 0xfff
	csrr a0, sscratch
	CHECK a0, 0xf0f
	csrrs a0, sscratch, x0                   /* rs1 = x0: pure read */
	CHECK a0, 0xf0f
	csrrc a0, sscratch, x0
	CHECK a0, 0xf0f
	li a0, 0x55
	csrrw a0, sscratch, a0                   /* rd == rs1: swap */
	CHECK a0, 0xf0f
	csrr a0, sscratch
	CHECK a0, 0x55
	TEST 4                                   /* immediate forms: 5-bit zero-extended uimm */
	csrrwi a0, sscratch, 31
	CHECK a0, 0x55
	csrr a0, sscratch
	CHECK a0, 31                             /* not sign-extended */
	csrrci a0, sscratch, 0x11
	CHECK a0, 31
	csrrsi a0, sscratch, 0x10
	CHECK a0, 0x0e
	csrr a0, sscratch
	CHECK a0, 0x1e
	csrrsi a0, sscratch, 0                   /* uimm = 0: no write */
	csrrci a0, sscratch, 0
	CHECK a0, 0x1e
	csrwi sscratch, 0
	csrr a0, sscratch
	CHECK a0, 0
	csrw sscratch, s0

	/* ---------------- read-only CSRs ---------------- */
	TEST 5
	csrrs a0, mhartid, x0                    /* reads are fine */
	csrrsi a0, mvendorid, 0
	csrrc a0, marchid, x0
	csrr a0, cycle
	csrr a0, instret
	csrr a0, time
	EXPECT_TRAP CAUSE_ILLEGAL, csrw mhartid, a0
	EXPECT_TRAP CAUSE_ILLEGAL, csrw mvendorid, x0       /* csrrw writes even with rs1 = x0 */
	EXPECT_TRAP CAUSE_ILLEGAL, csrrwi a0, mimpid, 0
	EXPECT_TRAP CAUSE_ILLEGAL, csrw cycle, a0
	EXPECT_TRAP CAUSE_ILLEGAL, csrrsi a0, instret, 1
	TEST 6                                   /* tval of an illegal CSR access is the instruction */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0xf1459073         /* csrw mhartid, a1 */
	CHECK_TF TF_TVAL, 0xf1459073

	/* ---------------- CSR privilege ---------------- */
	TEST 7                                   /* from U */
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, csrr a0, sstatus
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, csrr a0, mstatus
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, csrw sscratch, a0
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, csrr a0, satp
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, csrr a0, mhartid
	CHECK_TF TF_TVAL, 0xf1402573                        /* csrr a0, mhartid */
	TEST 8                                   /* from S */
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrr a0, mstatus
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrw mscratch, a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrr a0, mhartid
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrr a0, medeleg
	csrr s0, sscratch
	li a1, 0x1234
	IN_MODE_OK PRV_S, csrrw a0, sscratch, a1            /* S CSRs are fine in S */
	csrr a0, sscratch
	CHECK a0, 0x1234
	csrw sscratch, s0
	IN_MODE_OK PRV_S, csrr a0, sstatus
	IN_MODE_OK PRV_S, csrr a0, stvec

	/* ---------------- ecall / ebreak / illegal ---------------- */
	TEST 9
	EXPECT_TRAP CAUSE_ECALL_M, ecall
	CHECK_TF TF_TVAL, 0
	IN_MODE_TRAP PRV_S, CAUSE_ECALL_S, ecall
	CHECK_TF TF_TVAL, 0
	IN_MODE_TRAP PRV_U, CAUSE_ECALL_U, ecall
	CHECK_TF TF_TVAL, 0
	TEST 10                                  /* ebreak: cause 3, epc = its pc (tval: see strict.S) */
	EXPECT_TRAP CAUSE_BREAKPOINT, ebreak
	IN_MODE_TRAP PRV_U, CAUSE_BREAKPOINT, ebreak
	TEST 11                                  /* illegal instruction: tval = the instruction bits */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00007003         /* LOAD with funct3 = 7 */
	CHECK_TF TF_TVAL, 0x00007003
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0xfe000033         /* OP with funct7 = 0x7f */
	CHECK_TF TF_TVAL, 0xfe000033
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00000000
	CHECK_TF TF_TVAL, 0

	/* ---------------- mret ---------------- */
	TEST 12                                  /* mret to M: MIE <- MPIE, MPIE <- 1, MPP <- U */
	li a0, MSTATUS_MPP | MSTATUS_MPIE
	csrs mstatus, a0                         /* MPP = M, MPIE = 1; mie = 0 so no interrupt */
	csrci mstatus, MSTATUS_MIE
	la a0, 1f
	csrw mepc, a0
	mret
1:
	MSTATUS_FIELD a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP
	CHECK a0, MSTATUS_MIE | MSTATUS_MPIE
	li a0, MSTATUS_MPP
	csrs mstatus, a0
	li a0, MSTATUS_MPIE
	csrc mstatus, a0
	la a0, 2f
	csrw mepc, a0
	mret
2:
	MSTATUS_FIELD a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP
	CHECK a0, MSTATUS_MPIE
	csrci mstatus, MSTATUS_MIE
	TEST 13                                  /* mret lands in MPP: seen through the ecall cause */
	IN_MODE_TRAP PRV_S, CAUSE_ECALL_S, ecall
	CHECK_TF_MASK TF_STATUS, MSTATUS_MPP, (PRV_S << 11)
	IN_MODE_TRAP PRV_U, CAUSE_ECALL_U, ecall
	CHECK_TF_MASK TF_STATUS, MSTATUS_MPP, 0
	TEST 14                                  /* (mret clearing MPRV: see strict.S) */
	TEST 15                                  /* xRET from too low a mode is illegal */
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, mret
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, mret
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, sret

	/* ---------------- sret ---------------- */
	TEST 16                                  /* S -> U: SIE <- SPIE, SPIE <- 1, SPP <- U */
	ARM_HOST 2f
	ENTER_MODE PRV_S, 1f
1:
	li a0, MSTATUS_SPP                       /* in S: SPP = U, SPIE = 1 */
	csrc sstatus, a0
	li a0, MSTATUS_SPIE
	csrs sstatus, a0
	csrci sstatus, MSTATUS_SIE
	la a0, 3f
	csrw sepc, a0
	sret
3:
	ecall                                    /* from U */
2:
	CHECK_CAUSE CAUSE_ECALL_U
	CHECK_TF_ADDR TF_EPC, 3b
	CHECK_TF_MASK TF_STATUS, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SIE | MSTATUS_SPIE
	csrci sstatus, MSTATUS_SIE
	TEST 17                                  /* S -> S through sret with SPP = S */
	ARM_HOST 2f
	ENTER_MODE PRV_S, 1f
1:
	li a0, MSTATUS_SPP
	csrs sstatus, a0
	la a0, 3f
	csrw sepc, a0
	sret
3:
	ecall
2:
	CHECK_CAUSE CAUSE_ECALL_S
	CHECK_TF_MASK TF_STATUS, MSTATUS_SPP, 0           /* SPP <- U after sret */

	/* ---------------- exception delegation ---------------- */
	TEST 18                                  /* ecall from U delegated: taken by the S handler */
	li a0, 1 << CAUSE_ECALL_U
	csrw medeleg, a0
	ARM_HOST 2f                              /* S handler resumes in S at 2f */
	ENTER_MODE PRV_U, 1f
1:
	ecall
	j fail
2:                                         /* in S */
	CHECK_CAUSE CAUSE_ECALL_U
	CHECK_TF TF_LEVEL, 1
	CHECK_TF_ADDR TF_EPC, 1b
	CHECK_TF TF_TVAL, 0
	CHECK_TF_MASK TF_STATUS, MSTATUS_SPP, 0           /* came from U */
	ARM_HOST 3f                              /* back to M through a (not delegated) ecall from S */
	ecall
3:
	CHECK_CAUSE CAUSE_ECALL_S
	CHECK_TF TF_LEVEL, 3
	csrw medeleg, zero
	TEST 19                                  /* delegated illegal instruction from S; never from M */
	li a0, 1 << CAUSE_ILLEGAL
	csrw medeleg, a0
	csrsi sstatus, MSTATUS_SIE               /* SPIE must capture SIE = 1 */
	ARM_HOST 2f
	ENTER_MODE PRV_S, 1f
1:
	.word 0x00007003
	j fail
2:
	CHECK_CAUSE CAUSE_ILLEGAL
	CHECK_TF TF_LEVEL, 1
	CHECK_TF TF_TVAL, 0x00007003
	CHECK_TF_ADDR TF_EPC, 1b
	CHECK_TF_MASK TF_STATUS, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE
	ARM_HOST 3f
	ecall
3:
	CHECK_CAUSE CAUSE_ECALL_S
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00007003     /* in M: the M handler takes it */
	CHECK_TF TF_LEVEL, 3
	csrw medeleg, zero
	csrci sstatus, MSTATUS_SIE

	/* ---------------- interrupt delegation ---------------- */
	TEST 20                                  /* SSIP raised by M, delegated, taken in S */
	li a0, MIP_SSIP
	csrw mideleg, a0
	csrw mie, a0
	csrsi sstatus, MSTATUS_SIE
	csrs mip, a0
	ARM 2f                                   /* S handler resumes in S */
	ENTER_MODE PRV_S, 1f
1:
	AWAIT_INTERRUPT
2:
	CHECK_CAUSE INTR | IRQ_SSI
	CHECK_TF TF_LEVEL, 1
	csrci sip, MIP_SSIP                      /* S clears its own software interrupt */
	csrr a0, sip
	andi a0, a0, MIP_SSIP
	CHECK a0, 0
	ARM_HOST 3f
	ecall
3:
	CHECK_CAUSE CAUSE_ECALL_S
	TEST 21                                  /* in S with SIE = 0 it stays pending */
	csrci sstatus, MSTATUS_SIE
	li a0, MIP_SSIP
	csrs mip, a0
	IN_MODE_OK PRV_S, nop; nop; nop
	li a0, MIP_SSIP
	csrc mip, a0
	TEST 22                                  /* in U it is taken even with SIE = 0 */
	li a0, MIP_SSIP
	csrs mip, a0
	ARM_HOST 2f                              /* S handler resumes in S, where SIE = 0 */
	ENTER_MODE PRV_U, 1f
1:
	AWAIT_INTERRUPT
2:
	CHECK_CAUSE INTR | IRQ_SSI
	CHECK_TF TF_LEVEL, 1
	CHECK_TF_MASK TF_STATUS, MSTATUS_SPP, 0           /* interrupted U */
	csrci sip, MIP_SSIP
	ARM_HOST 3f
	ecall
3:
	CHECK_CAUSE CAUSE_ECALL_S
	TEST 23                                  /* a not-delegated M interrupt preempts S even with MIE = 0 */
	csrw mideleg, zero
	li a0, MIP_MSIP
	csrw mie, a0
	csrci mstatus, MSTATUS_MIE
	li a1, CLINT_MSIP
	li a2, 1
	sw a2, 0(a1)
	ARM_HOST 2f
	ENTER_MODE PRV_S, 1f
1:
	AWAIT_INTERRUPT
2:
	CHECK_CAUSE INTR | IRQ_MSI
	CHECK_TF TF_LEVEL, 3
	CHECK_TF_MASK TF_STATUS, MSTATUS_MPP, (PRV_S << 11)
	li a1, CLINT_MSIP
	sw zero, 0(a1)
	csrr a0, mip
	andi a0, a0, MIP_MSIP
	CHECK a0, 0
	csrw mie, zero

	/* ---------------- vectored trap vectors ---------------- */
	TEST 24                                  /* mtvec mode 1: interrupt n goes to base + 4n */
	la a0, m_vectors
	ori a0, a0, 1
	csrw mtvec, a0
	csrr a1, mtvec
	CHECK_REG a1, a0                         /* vectored mode is supported */
	li s11, -1
	li a0, MIP_MSIP
	csrw mie, a0
	li a1, CLINT_MSIP
	li a2, 1
	sw a2, 0(a1)
	ARM 2f
	csrsi mstatus, MSTATUS_MIE
	AWAIT_INTERRUPT
2:
	CHECK s11, IRQ_MSI                        /* arrived through vector 3 */
	CHECK_CAUSE INTR | IRQ_MSI
	li a1, CLINT_MSIP
	sw zero, 0(a1)
	csrw mie, zero
	li s11, -1
	EXPECT_TRAP CAUSE_ECALL_M, ecall          /* exceptions use the base */
	CHECK s11, 0
	la a0, m_trap_entry
	csrw mtvec, a0
	TEST 25                                  /* stvec mode 1 with a delegated interrupt */
	la a0, s_vectors
	ori a0, a0, 1
	csrw stvec, a0
	li a0, MIP_SSIP
	csrw mideleg, a0
	csrw mie, a0
	csrs mip, a0
	csrsi sstatus, MSTATUS_SIE
	li s11, -1
	ARM 2f
	ENTER_MODE PRV_S, 1f
1:
	AWAIT_INTERRUPT
2:
	CHECK s11, IRQ_SSI
	CHECK_CAUSE INTR | IRQ_SSI
	csrci sip, MIP_SSIP
	ARM_HOST 3f
	ecall
3:
	la a0, s_trap_entry
	csrw stvec, a0
	csrw mideleg, zero
	csrw mie, zero

	/* ---------------- interrupt priority (pairs; the full order is in strict.S) ---------------- */
	TEST 26                                  /* MSI before MTI before SEI */
	csrw mideleg, zero
	li a1, CLINT_MSIP
	li a2, 1
	sw a2, 0(a1)
	li a1, CLINT_MTIMECMP
	sd zero, 0(a1)                           /* mtime >= 0: MTIP pending */
	li a0, MIP_SEIP
	csrs mip, a0
	li a0, MIP_MSIP | MIP_MTIP | MIP_SEIP
	csrw mie, a0
	AWAIT_MIP MIP_MSIP | MIP_MTIP | MIP_SEIP
	TAKE_INTERRUPT IRQ_MSI
	li a1, CLINT_MSIP
	sw zero, 0(a1)
	TAKE_INTERRUPT IRQ_MTI
	li a1, CLINT_MTIMECMP
	li a2, -1
	sd a2, 0(a1)
	TAKE_INTERRUPT IRQ_SEI
	li a0, MIP_SEIP
	csrc mip, a0
	TEST 27                                  /* SSI before STI */
	li a0, MIP_SSIP | MIP_STIP
	csrs mip, a0
	csrw mie, a0
	AWAIT_MIP MIP_SSIP | MIP_STIP
	TAKE_INTERRUPT IRQ_SSI
	li a0, MIP_SSIP
	csrc mip, a0
	TAKE_INTERRUPT IRQ_STI
	li a0, MIP_STIP
	csrc mip, a0
	csrr a0, mip
	andi a0, a0, MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
	CHECK a0, 0
	csrw mie, zero

	/* ---------------- machine timer ---------------- */
	TEST 28                                  /* mtimecmp = mtime + small; wfi; MTI */
	li a0, MIP_MTIP
	csrw mie, a0
	li a1, CLINT_MTIME
	ld a2, 0(a1)
	ld a3, 0(a1)
	bgeu a3, a2, 1f                          /* mtime does not go backwards */
	j fail
1:
	li a4, 100000                            /* 10 ms at 10 MHz: "not yet" below cannot race */
	add a2, a3, a4
	li a1, CLINT_MTIMECMP
	sd a2, 0(a1)
	csrr a0, mip
	andi a0, a0, MIP_MTIP
	CHECK a0, 0                              /* not yet */
	ARM 3f
	csrsi mstatus, MSTATUS_MIE
2:
	wfi
	j 2b                                     /* wfi may return early; keep waiting */
3:
	CHECK_CAUSE INTR | IRQ_MTI
	li a1, CLINT_MTIME
	ld a3, 0(a1)
	bgeu a3, a2, 4f                          /* it fired no earlier than mtimecmp */
	j fail
4:
	li a1, CLINT_MTIMECMP
	li a2, -1
	sd a2, 0(a1)                             /* writing mtimecmp clears MTIP */
	csrr a0, mip
	andi a0, a0, MIP_MTIP
	CHECK a0, 0
	csrw mie, zero

	/* ---------------- mstatus.TVM / TW / TSR ---------------- */
	TEST 29
	IN_MODE_OK PRV_S, csrr a0, satp
	IN_MODE_OK PRV_S, sfence.vma
	li a0, MSTATUS_TVM
	csrs mstatus, a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrr a0, satp
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, csrw satp, zero
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, sfence.vma
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, sfence.vma a0, a1
	csrr a0, satp                            /* M is not affected */
	sfence.vma
	li a0, MSTATUS_TVM
	csrc mstatus, a0
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, sfence.vma      /* never allowed in U */
	TEST 30                                  /* TW: wfi in S traps; with TW = 0 it completes */
	li a0, MIP_SSIP                          /* a pending-and-enabled (delegated, SIE = 0) */
	csrw mideleg, a0                         /* interrupt lets wfi return without a trap */
	csrw mie, a0
	csrs mip, a0
	csrci sstatus, MSTATUS_SIE
	IN_MODE_OK PRV_S, wfi
	li a0, MSTATUS_TW
	csrs mstatus, a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, wfi
	CHECK_TF TF_TVAL, 0x10500073
	li a0, MSTATUS_TW
	csrc mstatus, a0
	li a0, MIP_SSIP
	csrc mip, a0
	csrw mie, zero
	csrw mideleg, zero
	TEST 31                                  /* TSR: sret in S traps */
	li a0, MSTATUS_TSR
	csrs mstatus, a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, sret
	li a0, MSTATUS_TSR
	csrc mstatus, a0

	/* ---------------- counter enables ---------------- */
	TEST 32                                  /* S needs mcounteren */
	csrw mcounteren, zero
	csrw scounteren, zero
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdcycle a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdtime a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdinstret a0
	csrwi mcounteren, 1                      /* CY */
	IN_MODE_OK PRV_S, rdcycle a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdtime a0
	csrwi mcounteren, 2                      /* TM */
	IN_MODE_OK PRV_S, rdtime a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdinstret a0
	csrwi mcounteren, 4                      /* IR */
	IN_MODE_OK PRV_S, rdinstret a0
	IN_MODE_TRAP PRV_S, CAUSE_ILLEGAL, rdcycle a0
	TEST 33                                  /* U needs mcounteren and scounteren */
	csrwi mcounteren, 7
	csrwi scounteren, 0
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, rdcycle a0
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, rdtime a0
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, rdinstret a0
	csrwi scounteren, 7
	IN_MODE_OK PRV_U, rdcycle a0
	IN_MODE_OK PRV_U, rdtime a0
	IN_MODE_OK PRV_U, rdinstret a0
	csrwi mcounteren, 5                      /* scounteren alone is not enough */
	IN_MODE_TRAP PRV_U, CAUSE_ILLEGAL, rdtime a0
	csrwi mcounteren, 0
	csrwi scounteren, 0
	csrr a0, cycle                           /* M is never gated */
	csrr a0, time
	csrr a0, instret
	TEST 34                                  /* counters count */
	csrr a0, minstret
	nop
	nop
	csrr a1, minstret
	bltu a0, a1, 1f
	j fail
1:
	csrr a0, mcycle
	li t0, 100
2:
	addi t0, t0, -1
	bnez t0, 2b
	csrr a1, mcycle
	bltu a0, a1, 3f
	j fail
3:
	csrr a0, instret                         /* the unprivileged aliases agree in direction */
	csrr a1, minstret
	bgeu a1, a0, 4f
	j fail
4:

	/* ---------------- misaligned loads and stores are performed in RAM ---------------- */
	TEST 35
	CLEAR_TRAP_COUNT
	la a1, mis_buf
	li a2, 0x0807060504030201
	sd a2, 0(a1)
	li a2, 0x100f0e0d0c0b0a09
	sd a2, 8(a1)
	lh a0, 1(a1)
	CHECK a0, 0x0302
	lhu a0, 7(a1)
	CHECK a0, 0x0908
	lw a0, 1(a1)
	CHECK a0, 0x05040302
	lw a0, 6(a1)
	CHECK a0, 0x0a090807
	lwu a0, 3(a1)
	CHECK a0, 0x07060504
	ld a0, 3(a1)
	CHECK a0, 0x0b0a090807060504
	ld a0, 7(a1)
	CHECK a0, 0x0f0e0d0c0b0a0908
	li a2, 0xffffffff
	sw a2, 0(a1)
	li a2, 0x8081
	sh a2, 5(a1)                             /* bytes 5, 6 */
	ld a0, 0(a1)
	CHECK a0, 0x08808105ffffffff
	li a2, 0xa1a2a3a4a5a6a7a8
	sd a2, 5(a1)                             /* bytes 5..12 */
	ld a0, 0(a1)
	CHECK a0, 0xa6a7a805ffffffff
	ld a0, 8(a1)
	CHECK a0, 0x100f0ea1a2a3a4a5
	li a2, 0x31323334
	sw a2, 13(a1)                            /* bytes 13..16 */
	ld a0, 8(a1)
	CHECK a0, 0x323334a1a2a3a4a5
	lb a0, 16(a1)
	CHECK a0, 0x31
	li a2, 0xfedcba98
	sw a2, 2(a1)
	lh a0, 3(a1)                             /* misaligned and sign-extended */
	CHECK a0, 0xffffffffffffdcba
	lw a0, 2(a1)
	CHECK a0, 0xfffffffffedcba98
	CHECK_TF TF_COUNT, 0
	TEST 36                                  /* across a 4 KiB page boundary */
	la a1, page_pair + 4096                  /* the boundary */
	li a2, 0x1122334455667788
	sd a2, -3(a1)
	ld a0, -3(a1)
	CHECK a0, 0x1122334455667788
	lbu a0, -1(a1)
	CHECK a0, 0x66
	lbu a0, 0(a1)
	CHECK a0, 0x55
	lw a0, -2(a1)
	CHECK a0, 0x44556677
	lhu a0, -1(a1)
	CHECK a0, 0x5566
	li a2, 0xaabb
	sh a2, -1(a1)
	ld a0, -3(a1)
	CHECK a0, 0x11223344aabb7788
	CHECK_TF TF_COUNT, 0
	TEST 37                                  /* FP loads and stores too */
	la a1, mis_buf
	li a2, 0x3ff0000000000000
	sd a2, 16(a1)
	fld fa0, 16(a1)
	fsd fa0, 3(a1)
	ld a0, 3(a1)
	CHECK a0, 0x3ff0000000000000
	flw fa1, 7(a1)
	fmv.x.w a0, fa1
	CHECK a0, 0x3ff00000
	CHECK_TF TF_COUNT, 0

	/* ---------------- control-flow alignment with C (xepc[0]: see strict.S) ---------------- */
	TEST 38                                  /* jumps to 2-byte aligned targets do not trap */
	CLEAR_TRAP_COUNT
	la a0, half_aligned
	li a1, 0
	jalr ra, 0(a0)
	CHECK a1, 0x99
	CHECK_TF TF_COUNT, 0
	csrw mideleg, zero
	csrw medeleg, zero
TEST_END

	/* ---- vector tables: record the vector number in s11, then the common handler ---- */
	.balign 256
m_vectors:
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	j m_vector_\n
	.endr
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
m_vector_\n:
	li s11, \n
	j m_trap_entry
	.endr

	.balign 256
s_vectors:
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	j s_vector_\n
	.endr
	.irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
s_vector_\n:
	li s11, \n
	j s_trap_entry
	.endr

	/* ---- a target at pc % 4 == 2 ---- */
	.option push
	.option rvc
	.balign 4
	c.nop
half_aligned:
	c.li a1, 0
	addi a1, a1, 0x99
	ret
	.option pop

	.data
	.align 4
mis_buf:
	.fill 32, 1, 0
	.balign 4096
page_pair:
	.fill 8192, 1, 0
