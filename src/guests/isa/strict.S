/*
 * strict.S - behaviours where Tern follows the specification (or its
 * documented choice) and QEMU 7.2, the reference the other programs are
 * checked against, does not.  Kept apart so every other program stays
 * verifiable on QEMU 7.2; on QEMU 7.2 this one is expected to fail test 1.
 *
 *   1. EBREAK / C.EBREAK write the pc to mtval.  The spec allows 0 or the
 *      pc; Tern (like Spike) writes the pc.  QEMU 7.2 writes 0.
 *   2. CSRRS/CSRRC with rs1 != x0 attempt a write even if the register is 0,
 *      so on a read-only CSR they are illegal.  QEMU 7.2 looks at the value.
 *   3. MRET to a mode below M clears mstatus.MPRV (priv 1.12).  QEMU 7.2
 *      leaves it set.
 *   4. Interrupt priority is MEI > MSI > MTI > SEI > SSI > STI.  QEMU 7.2
 *      without AIA takes the lowest-numbered pending interrupt first.
 *      (MEI is not exercised: raising it needs a PLIC.)
 *   5. mepc[0] and sepc[0] read as zero (IALIGN = 16 keeps bit 1).  QEMU 7.2
 *      returns the value written.
 */
#include "test.h"

TEST_BEGIN
	TEST 1                                   /* ebreak: tval = pc */
	EXPECT_TRAP CAUSE_BREAKPOINT, ebreak
	ARM 2f
1:
	ebreak
2:
	CHECK_CAUSE CAUSE_BREAKPOINT
	CHECK_TF_ADDR TF_TVAL, 1b
	ARM 4f
	.option push
	.option rvc
3:
	c.ebreak
	.option pop
4:
	CHECK_CAUSE CAUSE_BREAKPOINT
	CHECK_TF_ADDR TF_TVAL, 3b
	CHECK_TF_ADDR TF_EPC, 3b

	TEST 2                                   /* rs1 != x0 is a write, whatever its value */
	li a1, 0
	EXPECT_TRAP CAUSE_ILLEGAL, csrrs a0, mhartid, a1
	EXPECT_TRAP CAUSE_ILLEGAL, csrrc a0, mvendorid, a1
	EXPECT_TRAP CAUSE_ILLEGAL, csrrs a0, cycle, a1
	csrrs a0, mhartid, x0                    /* x0: a read */

	TEST 3                                   /* mret below M clears MPRV */
	li a0, MSTATUS_MPRV
	csrs mstatus, a0
	IN_MODE_TRAP PRV_U, CAUSE_ECALL_U, ecall
	CHECK_TF_MASK TF_STATUS, MSTATUS_MPRV, 0
	li a0, MSTATUS_MPRV
	csrs mstatus, a0
	IN_MODE_TRAP PRV_S, CAUSE_ECALL_S, ecall
	CHECK_TF_MASK TF_STATUS, MSTATUS_MPRV, 0
	li a0, MSTATUS_MPRV                      /* mret to M keeps it */
	csrs mstatus, a0
	li a0, MSTATUS_MPP
	csrs mstatus, a0
	li a0, MSTATUS_MPIE                      /* keep MIE = 0 after this mret */
	csrc mstatus, a0
	la a0, 5f
	csrw mepc, a0
	mret
5:
	csrr a0, mstatus
	li a1, MSTATUS_MPRV
	and a0, a0, a1
	CHECK a0, MSTATUS_MPRV
	csrc mstatus, a1

	TEST 4                                   /* MSI > MTI > SEI > SSI > STI, all pending at once */
	csrw mideleg, zero
	li a1, CLINT_MSIP
	li a2, 1
	sw a2, 0(a1)
	li a1, CLINT_MTIMECMP
	sd zero, 0(a1)
	li a0, MIP_SEIP | MIP_SSIP | MIP_STIP
	csrs mip, a0
	li a0, MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
	csrw mie, a0
	AWAIT_MIP MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
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
	TAKE_INTERRUPT IRQ_SSI
	li a0, MIP_SSIP
	csrc mip, a0
	TAKE_INTERRUPT IRQ_STI
	li a0, MIP_STIP
	csrc mip, a0
	csrw mie, zero

	TEST 5                                   /* xepc[0] is always zero */
	la a0, 6f + 1
	csrw mepc, a0
	csrr a1, mepc
	la a0, 6f
	CHECK_REG a1, a0
	la a0, 6f + 3
	csrw sepc, a0
	csrr a1, sepc
	la a0, 6f + 2
	CHECK_REG a1, a0
6:
TEST_END
