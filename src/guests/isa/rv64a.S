/*
 * rv64a.S - atomics (RV64A) on a single hart.
 *
 * LR/SC: success, failure without a reservation, SC always clearing the
 * reservation (so a second SC fails), a newer LR to another address moving
 * the reservation, LR.W sign extension and SC.W writing only a word.
 * Every AMO in .w and .d form: returned old value (sign-extended for .w),
 * memory result, neighbours untouched, signed vs unsigned min/max, rd = x0.
 * Misaligned AMO/SC-class accesses trap with store/AMO address misaligned
 * (6) and a misaligned LR with load address misaligned (4); tval = address.
 */
#include "test.h"

/* Fail unless reg != 0 (SC failure codes are any nonzero value). */
.macro CHECK_NZ reg
	bnez \reg, .Lnz\@
	mv t5, \reg
	li t6, 1
	j fail_value
.Lnz\@:
.endm

/* mem64 at label <- val */
.macro SET64 label, val
	la t0, \label
	li t1, \val
	sd t1, 0(t0)
.endm

.macro CHECK_MEM64 label, val
	la t0, \label
	ld t1, 0(t0)
	CHECK t1, \val
.endm

/* AMO .d test: mem = init; op rd=a0, rs2=v; check returned old value and mem */
.macro V_AMO_D op, init, v, newmem
	SET64 amo_d, \init
	la a1, amo_d
	li a2, \v
	\op a0, a2, (a1)
	CHECK a0, \init
	CHECK_MEM64 amo_d, \newmem
.endm

/* AMO .w test on the low word of amo_w (the high word is a guard):
	 old value comes back sign-extended; guard word must not change. */
.macro V_AMO_W op, init, v, old, newmem
	la t0, amo_w
	li t1, (0x5a5a5a5a00000000 | (\init))
	sd t1, 0(t0)
	la a1, amo_w
	li a2, \v
	\op a0, a2, (a1)
	CHECK a0, \old
	CHECK_MEM64 amo_w, (0x5a5a5a5a00000000 | (\newmem))
.endm

TEST_BEGIN
	/* ---------------- LR/SC ---------------- */
	TEST 1                                   /* LR then SC succeeds */
	SET64 amo_d, 5
	la a1, amo_d
	lr.d a0, (a1)
	CHECK a0, 5
	li a2, 7
	sc.d a3, a2, (a1)
	CHECK a3, 0
	CHECK_MEM64 amo_d, 7

	TEST 2                                   /* SC right after a successful SC: no reservation */
	la a1, amo_d
	li a2, 9
	li a3, 0
	sc.d a3, a2, (a1)
	CHECK_NZ a3
	CHECK_MEM64 amo_d, 7

	TEST 3                                   /* a failed SC also clears the reservation */
	la a1, amo_d
	la a4, amo_d2
	SET64 amo_d2, 11
	lr.d a0, (a1)
	lr.d a0, (a4)                            /* reservation moves to amo_d2 */
	CHECK a0, 11
	li a2, 13
	sc.d a3, a2, (a1)                        /* not the reserved address: fails */
	CHECK_NZ a3
	CHECK_MEM64 amo_d, 7
	sc.d a3, a2, (a4)                        /* reservation already gone */
	CHECK_NZ a3
	CHECK_MEM64 amo_d2, 11

	TEST 4                                   /* the newest LR's address is the reservation */
	la a1, amo_d
	la a4, amo_d2
	lr.d a0, (a1)
	lr.d a0, (a4)
	li a2, 17
	sc.d a3, a2, (a4)
	CHECK a3, 0
	CHECK_MEM64 amo_d2, 17
	CHECK_MEM64 amo_d, 7

	TEST 5                                   /* LR.W sign-extends; SC.W writes 32 bits only */
	SET64 amo_w, 0x1111111180000000
	la a1, amo_w
	lr.w a0, (a1)
	CHECK a0, 0xffffffff80000000
	li a2, 0xffffffff22222222
	sc.w a3, a2, (a1)
	CHECK a3, 0
	CHECK_MEM64 amo_w, 0x1111111122222222
	li a2, 0x33333333
	sc.w a3, a2, (a1)                        /* no reservation any more */
	CHECK_NZ a3
	CHECK_MEM64 amo_w, 0x1111111122222222

	TEST 6                                   /* ordering bits do not change the semantics */
	SET64 amo_d, 40
	la a1, amo_d
	lr.d.aq a0, (a1)
	addi a0, a0, 2
	sc.d.rl a3, a0, (a1)
	CHECK a3, 0
	CHECK_MEM64 amo_d, 42
	lr.d.aqrl a0, (a1)
	sc.d.aqrl a3, x0, (a1)
	CHECK a3, 0
	CHECK_MEM64 amo_d, 0

	TEST 7                                   /* an LR/SC retry loop (atomic increment) */
	SET64 amo_d, 100
	la a1, amo_d
	li a4, 10
1:
	lr.d a0, (a1)
	addi a0, a0, 1
	sc.d a3, a0, (a1)
	bnez a3, 1b
	addi a4, a4, -1
	bnez a4, 1b
	CHECK_MEM64 amo_d, 110

	/* ---------------- AMO .d ---------------- */
	TEST 8
	V_AMO_D amoswap.d, 0x123456789abcdef0, 0x0fedcba987654321, 0x0fedcba987654321
	V_AMO_D amoadd.d,  0x7fffffffffffffff, 1, 0x8000000000000000
	V_AMO_D amoadd.d,  5, -7, -2
	TEST 9
	V_AMO_D amoand.d,  0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0x0f000f000f000f00
	V_AMO_D amoor.d,   0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xfff0fff0fff0fff0
	V_AMO_D amoxor.d,  0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0
	TEST 10                                  /* signed vs unsigned min/max */
	V_AMO_D amomin.d,  0x8000000000000000, 1, 0x8000000000000000
	V_AMO_D amomin.d,  1, 0x8000000000000000, 0x8000000000000000
	V_AMO_D amomin.d,  -1, 3, -1
	V_AMO_D amomax.d,  0x8000000000000000, 1, 1
	V_AMO_D amomax.d,  -5, -3, -3
	V_AMO_D amominu.d, 0x8000000000000000, 1, 1
	V_AMO_D amominu.d, -1, 3, 3
	V_AMO_D amomaxu.d, 0x8000000000000000, 1, 0x8000000000000000
	V_AMO_D amomaxu.d, 3, -1, -1

	/* ---------------- AMO .w: 32-bit op, sign-extended old value ---------------- */
	TEST 11
	V_AMO_W amoswap.w, 0x80000001, 0x1234567822222222, 0xffffffff80000001, 0x22222222
	V_AMO_W amoadd.w,  0x7fffffff, 1, 0x7fffffff, 0x80000000
	V_AMO_W amoadd.w,  0x80000000, 0, 0xffffffff80000000, 0x80000000
	V_AMO_W amoadd.w,  0xffffffff, 1, 0xffffffffffffffff, 0          /* carry does not leave the word */
	TEST 12
	V_AMO_W amoand.w,  0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0x0f000f00
	V_AMO_W amoor.w,   0x0f00ff00, 0xfff00ff0, 0x0f00ff00, 0xfff0fff0
	V_AMO_W amoxor.w,  0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xf0f0f0f0
	TEST 13                                  /* comparisons use the low 32 bits only */
	V_AMO_W amomin.w,  0x80000000, 0x0000000100000001, 0xffffffff80000000, 0x80000000
	V_AMO_W amomin.w,  1, 0xffffffff, 1, 0xffffffff
	V_AMO_W amomax.w,  0x80000000, 1, 0xffffffff80000000, 1
	V_AMO_W amomax.w,  0x7fffffff, 0x80000000, 0x7fffffff, 0x7fffffff
	V_AMO_W amominu.w, 0x80000000, 1, 0xffffffff80000000, 1
	V_AMO_W amominu.w, 0xffffffff, 0x1fffffffe, 0xffffffffffffffff, 0xfffffffe
	V_AMO_W amomaxu.w, 0x80000000, 1, 0xffffffff80000000, 0x80000000
	V_AMO_W amomaxu.w, 5, 0xffffffff, 5, 0xffffffff

	TEST 14                                  /* the high word of a doubleword as a .w target */
	SET64 amo_w, 0x0000000100000002
	la a1, amo_w + 4
	li a2, 10
	amoadd.w a0, a2, (a1)
	CHECK a0, 1
	CHECK_MEM64 amo_w, 0x0000000b00000002

	/* ---------------- register corner cases ---------------- */
	TEST 15
	SET64 amo_d, 100
	la a1, amo_d
	li a2, 5
	amoadd.d x0, a2, (a1)                    /* rd = x0: memory still updated */
	CHECK_MEM64 amo_d, 105
	li a0, 77
	amoswap.d a0, a0, (a1)                   /* rd == rs2: old value out, old rs2 in */
	CHECK a0, 105
	CHECK_MEM64 amo_d, 77
	la a1, amo_d
	li a2, 1
	amoadd.d a1, a2, (a1)                    /* rd == rs1 */
	CHECK a1, 77
	CHECK_MEM64 amo_d, 78
	la a1, amo_d
	amoadd.w.aqrl a0, x0, (a1)
	amoor.d.aq a0, x0, (a1)

	/* ---------------- misaligned atomics trap ---------------- */
	TEST 16
	SET64 amo_d, 0x1111111111111111
	la a1, amo_d + 2
	li a2, 1
	li a0, 0x77
	EXPECT_TRAP CAUSE_MISALIGNED_STORE, amoadd.w a0, a2, (a1)
	CHECK_TF_REG TF_TVAL, a1
	CHECK a0, 0x77                           /* rd not written */
	CHECK_MEM64 amo_d, 0x1111111111111111    /* memory not written */
	TEST 17
	la a1, amo_d + 4
	EXPECT_TRAP CAUSE_MISALIGNED_STORE, amoswap.d a0, a2, (a1)
	CHECK_TF_REG TF_TVAL, a1
	la a1, amo_d + 1
	EXPECT_TRAP CAUSE_MISALIGNED_STORE, amomaxu.d a0, a2, (a1)
	CHECK_TF_REG TF_TVAL, a1
	la a1, amo_d + 6
	EXPECT_TRAP CAUSE_MISALIGNED_STORE, amominu.w a0, a2, (a1)
	CHECK_TF_REG TF_TVAL, a1
	CHECK a0, 0x77
	CHECK_MEM64 amo_d, 0x1111111111111111
	TEST 18
	la a1, amo_d + 4
	EXPECT_TRAP CAUSE_MISALIGNED_LOAD, lr.d a0, (a1)
	CHECK_TF_REG TF_TVAL, a1
	la a1, amo_d + 2
	EXPECT_TRAP CAUSE_MISALIGNED_LOAD, lr.w a0, (a1)
	CHECK_TF_REG TF_TVAL, a1
	CHECK a0, 0x77
TEST_END

	.data
	.align 4
amo_d:  .dword 0, 0
amo_d2: .dword 0, 0
amo_w:  .dword 0, 0
