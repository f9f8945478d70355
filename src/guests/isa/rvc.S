/*
 * rvc.S - compressed instructions (C), RV64 encodings.
 *
 * Every RV64C instruction (written with explicit c.* mnemonics so the
 * assembler cannot choose a 32-bit form), immediates at their range ends,
 * sign extension of loads and W ops, c.jalr linking pc + 2, control flow
 * to targets that are 2 but not 4 byte aligned, 32-bit instructions at
 * such addresses and across a page boundary, and the reserved encodings
 * (all-zero halfword, zero immediates, rd = x0 forms) raising illegal
 * instruction with tval = the 16-bit instruction.
 */
#include "test.h"

/* A compressed encoding must be illegal, reported with its bits in tval. */
/* A 2-byte nop outside the .option rvc region. */
.macro CNOP
	.option push
	.option rvc
	c.nop
	.option pop
.endm

/* Move to an address that is 2 mod 4.  (.balign must be given in rvc mode:
	 with norvc the assembler assumes 4-byte alignment and emits nothing.) */
.macro ODD_ALIGN
	.option push
	.option rvc
	.balign 4
	c.nop
	.option pop
.endm

.macro ILLEGAL16 bits
	EXPECT_TRAP CAUSE_ILLEGAL, .2byte \bits
	CHECK_TF TF_TVAL, \bits
.endm

TEST_BEGIN
	.option push
	.option rvc

	/* ---------------- stack-pointer based ---------------- */
	TEST 1                                   /* c.addi4spn: rd' = sp + nzuimm */
	la sp, cbuf
	c.addi4spn a0, sp, 4
	sub a0, a0, sp
	CHECK a0, 4
	c.addi4spn s1, sp, 1020
	sub s1, s1, sp
	CHECK s1, 1020
	TEST 2                                   /* c.addi16sp */
	la sp, cbuf + 1024
	mv a1, sp
	c.addi16sp sp, -512
	sub a0, a1, sp
	CHECK a0, 512
	c.addi16sp sp, 496
	sub a0, a1, sp
	CHECK a0, 16
	c.addi16sp sp, 16
	CHECK_REG sp, a1
	TEST 3                                   /* c.lwsp / c.ldsp / c.swsp / c.sdsp */
	la sp, cbuf
	li a1, 0xffffffff80000001
	c.sdsp a1, 504(sp)
	c.swsp a1, 252(sp)
	c.lwsp a0, 252(sp)                       /* sign-extended */
	CHECK a0, 0xffffffff80000001
	c.ldsp a2, 504(sp)
	CHECK a2, 0xffffffff80000001
	li a1, 0x0123456789abcdef
	c.sdsp a1, 0(sp)
	c.lwsp ra, 4(sp)
	CHECK ra, 0x01234567
	c.swsp zero, 4(sp)
	c.ldsp a3, 0(sp)
	CHECK a3, 0x89abcdef
	TEST 4                                   /* c.fldsp / c.fsdsp */
	la sp, cbuf
	li a1, 0x400921fb54442d18
	fmv.d.x ft3, a1
	c.fsdsp ft3, 496(sp)
	ld a0, 496(sp)
	CHECK a0, 0x400921fb54442d18
	c.fldsp fa5, 496(sp)
	fmv.x.d a0, fa5
	CHECK a0, 0x400921fb54442d18

	/* ---------------- register based loads/stores (x8..x15, f8..f15) ---------------- */
	TEST 5
	la s0, cbuf
	li a1, 0x80000000
	c.sw a1, 124(s0)
	c.lw a0, 124(s0)
	CHECK a0, 0xffffffff80000000
	li a1, 0x7edcba9876543210
	c.sd a1, 248(s0)
	c.ld a2, 248(s0)
	CHECK a2, 0x7edcba9876543210
	c.lw a3, 252 - 128(s0)
	CHECK a3, 0xffffffff80000000
	la a5, cbuf + 8
	c.sd a1, 0(a5)
	c.lw a4, 4(a5)
	CHECK a4, 0x7edcba98
	c.ld a5, 0(a5)                           /* rd' == rs1' */
	CHECK a5, 0x7edcba9876543210
	TEST 6                                   /* c.fld / c.fsd */
	la a0, cbuf
	li a1, 0xc00921fb54442d18
	sd a1, 240(a0)
	c.fld fs0, 240(a0)
	c.fsd fs0, 8(a0)
	ld a2, 8(a0)
	CHECK a2, 0xc00921fb54442d18
	fmv.x.d a2, fs0
	CHECK a2, 0xc00921fb54442d18

	/* ---------------- immediates ---------------- */
	TEST 7                                   /* c.li, c.addi, c.nop */
	c.li a0, -32
	CHECK a0, -32
	c.li a0, 31
	CHECK a0, 31
	c.li t3, 0
	CHECK t3, 0
	c.addi a0, -32
	CHECK a0, -1
	c.addi a0, 31
	CHECK a0, 30
	li t4, 0xffffffffffffffff
	c.addi t4, 1                             /* full 64-bit add */
	CHECK t4, 0
	c.nop
	TEST 8                                   /* c.addiw: 32-bit add, sign-extended */
	li a0, 0x7fffffff
	c.addiw a0, 1
	CHECK a0, 0xffffffff80000000
	li a0, 0x12345678ffffffff
	c.addiw a0, 0                            /* sext.w */
	CHECK a0, -1
	li a0, 0x80000000
	c.addiw a0, -1
	CHECK a0, 0x7fffffff
	TEST 9                                   /* c.lui: 6-bit immediate, sign-extended */
	c.lui a0, 1
	CHECK a0, 0x1000
	c.lui a0, 0x1f
	CHECK a0, 0x1f000
	c.lui a0, 0xfffe0
	CHECK a0, 0xfffffffffffe0000
	c.lui t1, 0xfffff
	CHECK t1, 0xfffffffffffff000
	TEST 10                                  /* c.slli / c.srli / c.srai / c.andi */
	li a0, 1
	c.slli a0, 63
	CHECK a0, 0x8000000000000000
	li t2, 0x00000000ffffffff
	c.slli t2, 32
	CHECK t2, 0xffffffff00000000
	li s0, 0x8000000000000000
	c.srli s0, 63
	CHECK s0, 1
	li s0, 0x8000000000000000
	c.srli s0, 1
	CHECK s0, 0x4000000000000000
	li s1, 0x8000000000000000
	c.srai s1, 63
	CHECK s1, -1
	li s1, 0x8000000000000000
	c.srai s1, 32
	CHECK s1, 0xffffffff80000000
	li a1, 0x123456789abcdef0
	c.andi a1, -32                           /* sign-extended mask */
	CHECK a1, 0x123456789abcdee0
	li a1, 0x123456789abcdeff
	c.andi a1, 31
	CHECK a1, 0x1f
	c.andi a1, 0
	CHECK a1, 0

	/* ---------------- register-register ---------------- */
	TEST 11
	li a0, 10
	li a1, 3
	c.sub a0, a1
	CHECK a0, 7
	li a0, 0xff00ff00ff00ff00
	li a1, 0x0ff00ff00ff00ff0
	c.xor a0, a1
	CHECK a0, 0xf0f0f0f0f0f0f0f0
	li a0, 0xff00ff00ff00ff00
	c.or a0, a1
	CHECK a0, 0xfff0fff0fff0fff0
	li a0, 0xff00ff00ff00ff00
	c.and a0, a1
	CHECK a0, 0x0f000f000f000f00
	TEST 12                                  /* W forms sign-extend */
	li a2, 0x7fffffff
	li a3, 1
	c.addw a2, a3
	CHECK a2, 0xffffffff80000000
	li a2, 0x1234567800000000
	c.subw a2, a3
	CHECK a2, -1
	li a2, 0x80000000
	c.subw a2, a3
	CHECK a2, 0x7fffffff
	li s0, 0x0000000100000005
	li s1, 0x0000000200000006
	c.addw s0, s1
	CHECK s0, 11
	TEST 13                                  /* c.mv / c.add (any registers) */
	li a7, 0x1122334455667788
	c.mv t0, a7
	CHECK t0, 0x1122334455667788
	li ra, 5
	c.add ra, t0
	CHECK ra, 0x112233445566778d
	li a6, 21
	c.add a6, a6                             /* rd == rs2 */
	CHECK a6, 42

	/* ---------------- control transfer ---------------- */
	TEST 14                                  /* c.j forward and backward */
	li a0, 0
	c.j 2f
1:
	addi a0, a0, 1
	c.j 3f
2:
	addi a0, a0, 10
	c.j 1b
3:
	CHECK a0, 11
	TEST 15                                  /* c.beqz / c.bnez */
	li s0, 0
	li a0, 0
	c.beqz s0, 1f
	li a0, 1
1:
	CHECK a0, 0
	li s0, 1
	c.beqz s0, 2f
	li a0, 2
2:
	CHECK a0, 2
	li s0, 0x100000000                       /* whole register is tested */
	c.bnez s0, 3f
	li a0, 3
3:
	CHECK a0, 2
	li a5, 4                                 /* backward: count down */
	li a0, 0
4:
	addi a0, a0, 1
	addi a5, a5, -1
	c.bnez a5, 4b
	CHECK a0, 4
	TEST 16                                  /* c.jr / c.jalr (link = pc + 2) */
	la a0, 1f
	li a1, 0
	c.jr a0
	li a1, 1
1:
	CHECK a1, 0
	la t1, 2f
	c.jalr t1
3:
	li a1, 1                                 /* must be skipped */
2:
	la a2, 3b
	CHECK_REG ra, a2
	CHECK a1, 0
	la ra, 4f                                /* c.jalr ra: target read before the link is written */
	c.jalr ra
5:
	li a1, 1
4:
	la a2, 5b
	CHECK_REG ra, a2
	CHECK a1, 0
	TEST 17                                  /* c.ebreak */
	EXPECT_TRAP CAUSE_BREAKPOINT, c.ebreak

	/* ---------------- 2-byte aligned targets: no misaligned-fetch exception ---------------- */
	TEST 18
	CLEAR_TRAP_COUNT
	.balign 4
	c.j 1f
	c.nop
1:                                         /* 4-byte aligned */
	jal ra, odd_target                       /* 32-bit jal to pc % 4 == 2 */
	CHECK a0, 0x5a
	la t0, odd_target
	andi t1, t0, 3
	CHECK t1, 2
	li a0, 0
	jalr ra, 0(t0)
	CHECK a0, 0x5a
	li a0, 0
	jalr ra, 1(t0)                           /* bit 0 dropped, bit 1 kept */
	CHECK a0, 0x5a
	la t0, odd_branch_target
	andi t1, t0, 3
	CHECK t1, 2
	li a0, 0
	beq zero, zero, odd_branch_target
odd_branch_back:
	CHECK a0, 0x77
	CHECK_TF TF_COUNT, 0

	TEST 19                                  /* a 32-bit instruction straddling a page boundary */
	li a0, 0
	call straddle
	CHECK a0, 0x123

	/* ---------------- reserved and illegal encodings ---------------- */
	TEST 20
	ILLEGAL16 0x0000                         /* all zero: defined illegal */
	ILLEGAL16 0x0004                         /* c.addi4spn s1, sp, 0: nzuimm = 0 */
	TEST 21
	ILLEGAL16 0x6101                         /* c.addi16sp sp, 0 */
	ILLEGAL16 0x6501                         /* c.lui a0, 0 */
	TEST 22
	ILLEGAL16 0x4002                         /* c.lwsp x0 */
	ILLEGAL16 0x6002                         /* c.ldsp x0 */
	ILLEGAL16 0x8002                         /* c.jr x0 */
	ILLEGAL16 0x2001                         /* c.addiw x0 */
	TEST 23                                  /* 32-bit reserved encodings report all 32 bits */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00007003 /* LOAD with funct3 = 7 */
	CHECK_TF TF_TVAL, 0x00007003
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x40001033 /* sll with funct7 = 0x20 */
	CHECK_TF TF_TVAL, 0x40001033
	.option pop
TEST_END

	/* ---- targets at pc % 4 == 2, holding 32-bit instructions ---- */
	ODD_ALIGN
odd_target:                                /* address % 4 == 2 */
	li a0, 0x5a
	ret
	ODD_ALIGN
odd_branch_target:
	li a0, 0x77
	j odd_branch_back

	/* ---- a 32-bit instruction whose halves sit in different pages ---- */
	.balign 4096
	.skip 4096 - 4
straddle:
	CNOP                                     /* page end - 4 */
	li a0, 0x123                             /* page end - 2 .. next page + 2 */
	ret

	.data
	.align 4
cbuf:
	.skip 1024 + 16
