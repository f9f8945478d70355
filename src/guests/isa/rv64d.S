/*
 * rv64d.S - double-precision floating point (D).
 *
 * The double counterparts of rv64f.S: arithmetic, fused ops, fflags, the
 * five rounding modes (static and frm), canonical NaNs, fmin/fmax, saturating
 * conversions (including the 32-bit edges only a double can express),
 * fclass, comparisons, sign injection, fmv.x.d/fmv.d.x, fld/fsd, and the
 * single<->double conversions with their NaN-boxing rules; FS = Off traps.
 */
#include "test.h"

#define ONE     0x3ff0000000000000
#define TWO     0x4000000000000000
#define THREE   0x4008000000000000
#define FOUR    0x4010000000000000
#define FIVE    0x4014000000000000
#define SIX     0x4018000000000000
#define SEVEN   0x401c000000000000
#define HALF    0x3fe0000000000000
#define M_HALF  0xbfe0000000000000
#define M_ONE   0xbff0000000000000
#define M_TWO   0xc000000000000000
#define ONE_5   0x3ff8000000000000
#define M_ONE_5 0xbff8000000000000
#define TWO_5   0x4004000000000000
#define M_TWO_5 0xc004000000000000
#define PZERO   0x0000000000000000
#define NZERO   0x8000000000000000
#define PINF    0x7ff0000000000000
#define NINF    0xfff0000000000000
#define QNAN    0x7ff8000000000000      /* the canonical NaN */
#define SNAN    0x7ff4000000000000
#define NQNAN_P 0xfff8000000012345      /* negative quiet NaN with a payload */
#define MAXD    0x7fefffffffffffff
#define M_MAXD  0xffefffffffffffff
#define MINNORM 0x0010000000000000
#define MINSUB  0x0000000000000001
#define THIRD   0x3fd5555555555555      /* 1/3 rounded to nearest (and down) */
#define THIRD_U 0x3fd5555555555556      /* 1/3 rounded up */
#define M_THIRD 0xbfd5555555555555
#define M_THIRD_D 0xbfd5555555555556
#define ULP1    0x3ff0000000000001      /* 1 + 2^-52 */
#define HULP    0x3ca0000000000000      /* 2^-53: half an ulp of 1.0 */

#define NX FFLAG_NX
#define UF FFLAG_UF
#define OF FFLAG_OF
#define DZ FFLAG_DZ
#define NV FFLAG_NV

TEST_BEGIN
	/* ---------------- arithmetic ---------------- */
	TEST 1
	V_D2 fadd.d, THREE, ONE, TWO, 0
	V_D2 fadd.d, PZERO, TWO_5, M_TWO_5, 0
	V_D2 fadd.d, NZERO, TWO_5, M_TWO_5, 0, rdn     /* x + -x is -0 only when rounding down */
	V_D2 fadd.d, QNAN, PINF, NINF, NV
	V_D2 fadd.d, QNAN, QNAN, ONE, 0
	V_D2 fadd.d, QNAN, SNAN, ONE, NV
	V_D2 fadd.d, QNAN, NQNAN_P, ONE, 0             /* canonical NaN out */
	V_D2 fadd.d, 0x4340000000000000, 0x4340000000000000, ONE, NX /* 2^53 + 1 */
	TEST 2
	V_D2 fsub.d, TWO, THREE, ONE, 0
	V_D2 fsub.d, NZERO, NZERO, PZERO, 0
	V_D2 fsub.d, QNAN, PINF, PINF, NV
	TEST 3
	V_D2 fmul.d, SIX, TWO, THREE, 0
	V_D2 fmul.d, NZERO, M_TWO, PZERO, 0
	V_D2 fmul.d, QNAN, PINF, PZERO, NV
	V_D2 fmul.d, PINF, MAXD, TWO, OF | NX
	TEST 4
	V_D2 fdiv.d, THIRD, ONE, THREE, NX
	V_D2 fdiv.d, TWO, SIX, THREE, 0
	V_D2 fdiv.d, PINF, ONE, PZERO, DZ
	V_D2 fdiv.d, NINF, ONE, NZERO, DZ
	V_D2 fdiv.d, QNAN, PZERO, PZERO, NV
	V_D2 fdiv.d, QNAN, PINF, PINF, NV
	V_D2 fdiv.d, NZERO, M_ONE, PINF, 0
	TEST 5
	V_D1 fsqrt.d, TWO, FOUR, 0
	V_D1 fsqrt.d, 0x3ff6a09e667f3bcd, TWO, NX
	V_D1 fsqrt.d, QNAN, M_ONE, NV
	V_D1 fsqrt.d, NZERO, NZERO, 0
	V_D1 fsqrt.d, PINF, PINF, 0

	/* ---------------- fmin / fmax ---------------- */
	TEST 6
	V_D2 fmin.d, ONE, ONE, TWO, 0
	V_D2 fmax.d, TWO, ONE, TWO, 0
	V_D2 fmin.d, NZERO, PZERO, NZERO, 0
	V_D2 fmax.d, PZERO, NZERO, PZERO, 0
	V_D2 fmin.d, ONE, QNAN, ONE, 0
	V_D2 fmax.d, ONE, ONE, QNAN, 0
	V_D2 fmin.d, ONE, SNAN, ONE, NV
	V_D2 fmin.d, QNAN, QNAN, NQNAN_P, 0
	V_D2 fmax.d, QNAN, SNAN, SNAN, NV

	/* ---------------- fused multiply-add ---------------- */
	TEST 7
	V_D3 fmadd.d, SEVEN, TWO, THREE, ONE, 0
	V_D3 fmsub.d, FIVE, TWO, THREE, ONE, 0
	V_D3 fnmsub.d, 0xc014000000000000, TWO, THREE, ONE, 0
	V_D3 fnmadd.d, 0xc01c000000000000, TWO, THREE, ONE, 0
	/* one rounding only: (1+2^-52)(1-2^-52) - 1 = -2^-104 */
	V_D3 fmsub.d, 0xb970000000000000, ULP1, 0x3feffffffffffffe, ONE, 0
	V_D3 fnmsub.d, 0x3970000000000000, ULP1, 0x3feffffffffffffe, ONE, 0
	TEST 8
	V_D3 fmadd.d, QNAN, PINF, PZERO, QNAN, NV      /* inf * 0 invalid even with a quiet NaN addend */
	V_D3 fmadd.d, QNAN, PZERO, NINF, ONE, NV
	V_D3 fmadd.d, QNAN, ONE, ONE, SNAN, NV
	V_D3 fmadd.d, QNAN, QNAN, ONE, ONE, 0
	V_D3 fmadd.d, ULP1, ONE, ONE, HULP, NX, rup

	/* ---------------- sign injection ---------------- */
	TEST 9
	V_D2 fsgnj.d, M_ONE, ONE, M_TWO, 0
	V_D2 fsgnjn.d, ONE, ONE, M_TWO, 0
	V_D2 fsgnjx.d, ONE, M_ONE, M_TWO, 0
	V_D2 fsgnjx.d, M_ONE, M_ONE, TWO, 0
	V_D2 fsgnj.d, 0xfff8000000000000, QNAN, M_ONE, 0
	V_D2 fsgnjn.d, 0xfff0000000000001, 0x7ff0000000000001, ONE, 0
	V_D1 fabs.d, 0x7ff8000000012345, NQNAN_P, 0
	V_D1 fneg.d, NZERO, PZERO, 0

	/* ---------------- fmv.x.d / fmv.d.x / fld / fsd: raw bits ---------------- */
	TEST 10
	li a1, 0xfff0000000000001
	fmv.d.x fa0, a1
	fmv.x.d a0, fa0
	CHECK a0, 0xfff0000000000001
	la a2, fdata
	fld fa1, 8(a2)
	CHECK_D fa1, 0x7ff0000000000123               /* signaling NaN loads unchanged */
	la a3, fbuf + 16
	sd zero, -16(a3)
	sd zero, -8(a3)
	fsd fa1, -8(a3)
	ld a0, -8(a3)
	CHECK a0, 0x7ff0000000000123
	ld a0, -16(a3)
	CHECK a0, 0
	fld fa0, 0(a2)
	CHECK_D fa0, M_TWO_5
	CHECK_FLAGS 0

	/* ---------------- single <-> double ---------------- */
	TEST 11
	V_D1 fcvt.d.s, 0x3ff0000000000000, 0xffffffff3f800000, 0
	V_D1 fcvt.d.s, 0x36a0000000000000, 0xffffffff00000001, 0 /* 2^-149 is exact in double */
	V_D1 fcvt.d.s, QNAN, 0xffffffff7fa00000, NV    /* signaling single NaN */
	V_D1 fcvt.d.s, QNAN, 0xffffffffffc12345, 0     /* canonical, payload dropped */
	V_D1 fcvt.d.s, QNAN, 0x000000003f800000, 0     /* unboxed input is the canonical NaN */
	V_D1 fcvt.d.s, NINF, 0xffffffffff800000, 0
	TEST 12
	V_D1 fcvt.s.d, 0xffffffff3f800000, ONE, 0      /* result is NaN-boxed */
	V_D1 fcvt.s.d, 0xffffffff3eaaaaab, THIRD, NX
	V_D1 fcvt.s.d, 0xffffffff3eaaaaaa, THIRD, NX, rtz
	V_D1 fcvt.s.d, 0xffffffff7f800000, MAXD, OF | NX
	V_D1 fcvt.s.d, 0xffffffff7f7fffff, MAXD, OF | NX, rtz
	V_D1 fcvt.s.d, 0xffffffff00000000, 0x358dee7a4ad4b81f, UF | NX /* 1e-50 */
	V_D1 fcvt.s.d, 0xffffffff7fc00000, NQNAN_P, 0
	V_D1 fcvt.s.d, 0xffffffff7fc00000, SNAN, NV
	V_D1 fcvt.s.d, 0xffffffff80000000, NZERO, 0
	TEST 13                                         /* a boxed single is a NaN as a double */
	V_D2 fadd.d, QNAN, 0xffffffff3f800000, ONE, 0

	/* ---------------- conversions to integer ---------------- */
	TEST 14
	V_D2X fcvt.w.d, 2, ONE_5, NX
	V_D2X fcvt.w.d, -2, M_ONE_5, NX
	V_D2X fcvt.w.d, 0x7fffffff, 0x41dfffffffc00000, 0 /* 2^31 - 1 exactly */
	V_D2X fcvt.w.d, 0x7fffffff, 0x41dfffffffe00000, NV /* 2^31 - 0.5 rounds up out of range */
	V_D2X fcvt.w.d, 0x7fffffff, 0x41dfffffffe00000, NX, rtz
	V_D2X fcvt.w.d, 0xffffffff80000000, 0xc1e0000000100000, NX /* -2^31 - 0.5: tie to even, in range */
	V_D2X fcvt.w.d, 0xffffffff80000000, 0xc1e0000000100000, NV, rdn
	V_D2X fcvt.w.d, 0x7fffffff, 0x41e65a0bc0000000, NV /* 3e9 */
	V_D2X fcvt.w.d, 0x7fffffff, QNAN, NV
	V_D2X fcvt.w.d, 0x7fffffff, PINF, NV
	V_D2X fcvt.w.d, 0xffffffff80000000, NINF, NV
	TEST 15
	V_D2X fcvt.wu.d, 0xffffffffb2d05e00, 0x41e65a0bc0000000, 0 /* sign-extended 32-bit result */
	V_D2X fcvt.wu.d, 0xffffffffffffffff, 0x41f0000000000000, NV /* 2^32 */
	V_D2X fcvt.wu.d, 0, M_ONE, NV
	V_D2X fcvt.wu.d, 0, M_HALF, NX, rtz
	V_D2X fcvt.wu.d, 0xffffffffffffffff, QNAN, NV
	V_D2X fcvt.wu.d, 0, NINF, NV
	TEST 16
	V_D2X fcvt.l.d, 10000000000, 0x4202a05f20000000, 0
	V_D2X fcvt.l.d, 0x7fffffffffffffff, 0x43e0000000000000, NV /* 2^63 */
	V_D2X fcvt.l.d, 0x8000000000000000, 0xc3e0000000000000, 0  /* -2^63 */
	V_D2X fcvt.l.d, 0x7fffffffffffffff, QNAN, NV
	V_D2X fcvt.l.d, 0x8000000000000000, NINF, NV
	V_D2X fcvt.l.d, 0x20000000000002, 0x4340000000000001, 0   /* 2^53 + 2 */
	TEST 17
	V_D2X fcvt.lu.d, 0x8000000000000000, 0x43e0000000000000, 0
	V_D2X fcvt.lu.d, 0xffffffffffffffff, 0x43f0000000000000, NV /* 2^64 */
	V_D2X fcvt.lu.d, 0, M_ONE, NV
	V_D2X fcvt.lu.d, 0xffffffffffffffff, QNAN, NV
	V_D2X fcvt.lu.d, 0xffffffffffffffff, PINF, NV

	/* ---------------- conversions from integer ---------------- */
	TEST 18
	V_X2D fcvt.d.w, 0x41dfffffffc00000, 0x7fffffff, 0  /* every int32 is exact */
	V_X2D fcvt.d.w, 0xc1e0000000000000, 0xffffffff80000000, 0
	V_X2D fcvt.d.w, ONE, 0x1234567800000001, 0     /* low word only */
	V_X2D fcvt.d.wu, 0x41efffffffe00000, 0xffffffff, 0
	V_X2D fcvt.d.l, 0xc3e0000000000000, 0x8000000000000000, 0
	V_X2D fcvt.d.l, 0x4340000000000000, 0x20000000000001, NX /* 2^53 + 1: tie to even */
	V_X2D fcvt.d.l, 0x4340000000000001, 0x20000000000001, NX, rup
	V_X2D fcvt.d.l, 0xc340000000000001, -0x20000000000001, NX, rdn
	V_X2D fcvt.d.lu, 0x43f0000000000000, 0xffffffffffffffff, NX
	V_X2D fcvt.d.lu, 0x43efffffffffffff, 0xffffffffffffffff, NX, rtz

	/* ---------------- comparisons ---------------- */
	TEST 19
	V_DCMP feq.d, 1, ONE, ONE, 0
	V_DCMP feq.d, 1, NZERO, PZERO, 0
	V_DCMP flt.d, 1, ONE, TWO, 0
	V_DCMP flt.d, 0, NZERO, PZERO, 0
	V_DCMP fle.d, 1, TWO, TWO, 0
	V_DCMP fle.d, 0, TWO, ONE, 0
	V_DCMP feq.d, 0, QNAN, QNAN, 0
	V_DCMP feq.d, 0, SNAN, ONE, NV
	V_DCMP flt.d, 0, QNAN, ONE, NV
	V_DCMP fle.d, 0, ONE, QNAN, NV

	/* ---------------- fclass ---------------- */
	TEST 20
	V_D2X fclass.d, 1 << 0, NINF, 0
	V_D2X fclass.d, 1 << 1, M_ONE, 0
	V_D2X fclass.d, 1 << 2, 0x800fffffffffffff, 0
	V_D2X fclass.d, 1 << 3, NZERO, 0
	V_D2X fclass.d, 1 << 4, PZERO, 0
	V_D2X fclass.d, 1 << 5, MINSUB, 0
	V_D2X fclass.d, 1 << 6, MINNORM, 0
	V_D2X fclass.d, 1 << 7, PINF, 0
	V_D2X fclass.d, 1 << 8, SNAN, 0
	V_D2X fclass.d, 1 << 9, QNAN, 0

	/* ---------------- rounding modes: static ---------------- */
	TEST 21
	V_D2X fcvt.w.d, 2, TWO_5, NX, rne
	V_D2X fcvt.w.d, 2, TWO_5, NX, rtz
	V_D2X fcvt.w.d, 2, TWO_5, NX, rdn
	V_D2X fcvt.w.d, 3, TWO_5, NX, rup
	V_D2X fcvt.w.d, 3, TWO_5, NX, rmm
	V_D2X fcvt.l.d, -2, M_TWO_5, NX, rne
	V_D2X fcvt.l.d, -2, M_TWO_5, NX, rtz
	V_D2X fcvt.l.d, -3, M_TWO_5, NX, rdn
	V_D2X fcvt.l.d, -2, M_TWO_5, NX, rup
	V_D2X fcvt.l.d, -3, M_TWO_5, NX, rmm
	TEST 22
	V_D2 fdiv.d, THIRD, ONE, THREE, NX, rne
	V_D2 fdiv.d, THIRD, ONE, THREE, NX, rtz
	V_D2 fdiv.d, THIRD, ONE, THREE, NX, rdn
	V_D2 fdiv.d, THIRD_U, ONE, THREE, NX, rup
	V_D2 fdiv.d, THIRD, ONE, THREE, NX, rmm
	V_D2 fdiv.d, M_THIRD_D, M_ONE, THREE, NX, rdn
	V_D2 fdiv.d, M_THIRD, M_ONE, THREE, NX, rup
	V_D2 fadd.d, ONE, ONE, HULP, NX, rne           /* exact tie */
	V_D2 fadd.d, ONE, ONE, HULP, NX, rtz
	V_D2 fadd.d, ONE, ONE, HULP, NX, rdn
	V_D2 fadd.d, ULP1, ONE, HULP, NX, rup
	V_D2 fadd.d, ULP1, ONE, HULP, NX, rmm
	TEST 23
	V_D2 fmul.d, PINF, MAXD, TWO, OF | NX, rne
	V_D2 fmul.d, MAXD, MAXD, TWO, OF | NX, rtz
	V_D2 fmul.d, MAXD, MAXD, TWO, OF | NX, rdn
	V_D2 fmul.d, PINF, MAXD, TWO, OF | NX, rup
	V_D2 fmul.d, NINF, M_MAXD, TWO, OF | NX, rdn
	V_D2 fmul.d, M_MAXD, M_MAXD, TWO, OF | NX, rup
	V_D2 fmul.d, PZERO, MINSUB, HALF, UF | NX, rne
	V_D2 fmul.d, MINSUB, MINSUB, HALF, UF | NX, rup
	V_D2 fmul.d, MINSUB, MINSUB, HALF, UF | NX, rmm
	V_D2 fmul.d, 0x0008000000000000, MINNORM, HALF, 0

	/* ---------------- rounding modes: dynamic ---------------- */
	TEST 24
	fsrmi 1
	V_D2X fcvt.l.d, -2, M_TWO_5, NX
	V_D2 fmul.d, MAXD, MAXD, TWO, OF | NX
	fsrmi 2
	V_D2X fcvt.l.d, -3, M_TWO_5, NX
	V_D2 fdiv.d, M_THIRD_D, M_ONE, THREE, NX
	fsrmi 3
	V_D2X fcvt.w.d, 3, TWO_5, NX
	V_D2 fdiv.d, THIRD_U, ONE, THREE, NX
	V_D1 fcvt.s.d, 0xffffffff3eaaaaab, THIRD, NX
	fsrmi 4
	V_D2X fcvt.w.d, 3, TWO_5, NX
	V_D2 fadd.d, ULP1, ONE, HULP, NX
	V_D3 fmadd.d, ULP1, ONE, ONE, HULP, NX
	fsrmi 0
	V_D2 fadd.d, ONE, ONE, HULP, NX
	fsrmi 6
	EXPECT_TRAP CAUSE_ILLEGAL, fadd.d fa2, fa0, fa1
	EXPECT_TRAP CAUSE_ILLEGAL, fcvt.d.l fa2, a0, dyn
	fsrmi 0
	CHECK_FLAGS 0
	TEST 25                                         /* reserved static rm = 5 on fmul.d fa2, fa0, fa1 */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x12b55653
	CHECK_TF TF_TVAL, 0x12b55653

	/* ---------------- mstatus.FS = Off ---------------- */
	TEST 26
	FLI_D fs1, SEVEN
	li a1, MSTATUS_FS
	csrc mstatus, a1
	la a2, fdata
	EXPECT_TRAP CAUSE_ILLEGAL, fadd.d fa2, fa0, fa1
	EXPECT_TRAP CAUSE_ILLEGAL, fld fa0, 0(a2)
	EXPECT_TRAP CAUSE_ILLEGAL, fsd fa0, 0(a2)
	EXPECT_TRAP CAUSE_ILLEGAL, fmv.d.x fa0, a0
	EXPECT_TRAP CAUSE_ILLEGAL, fmv.x.d a0, fa0
	EXPECT_TRAP CAUSE_ILLEGAL, fcvt.s.d fa0, fa1
	EXPECT_TRAP CAUSE_ILLEGAL, fclass.d a0, fa0
	EXPECT_TRAP CAUSE_ILLEGAL, fsgnj.d fa0, fa1, fa1
	li a1, FS_INITIAL
	csrs mstatus, a1
	CHECK_D fs1, SEVEN
	fadd.d fa0, fs1, fs1
	csrr a0, mstatus
	li a1, MSTATUS_FS
	and a0, a0, a1
	CHECK a0, FS_DIRTY
TEST_END

	.data
	.align 3
fdata:
	.dword M_TWO_5, 0x7ff0000000000123
fbuf:
	.dword 0, 0, 0, 0
