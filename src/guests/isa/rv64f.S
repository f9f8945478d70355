/*
 * rv64f.S - single-precision floating point (F).
 *
 * Arithmetic and fused multiply-add results and fflags (NX UF OF DZ NV),
 * all five rounding modes both as static rm and through frm (dynamic),
 * reserved rounding modes (illegal), canonical NaN results, fmin/fmax with
 * NaNs and signed zeros, saturating conversions, fclass, comparisons,
 * sign injection, fmv.x.w sign extension, NaN boxing (an improperly boxed
 * operand reads as the canonical NaN, transfers ignore boxing), flw/fsw,
 * and mstatus.FS: Dirty after FP writes, every FP instruction illegal when Off.
 */
#include "test.h"

#define ONE     0x3f800000
#define TWO     0x40000000
#define THREE   0x40400000
#define FOUR    0x40800000
#define FIVE    0x40a00000
#define SIX     0x40c00000
#define SEVEN   0x40e00000
#define HALF    0x3f000000
#define M_ONE   0xbf800000
#define M_TWO   0xc0000000
#define ONE_5   0x3fc00000      /* 1.5 */
#define M_ONE_5 0xbfc00000
#define TWO_5   0x40200000      /* 2.5 */
#define M_TWO_5 0xc0200000
#define PZERO   0x00000000
#define NZERO   0x80000000
#define PINF    0x7f800000
#define NINF    0xff800000
#define QNAN    0x7fc00000      /* the canonical NaN */
#define SNAN    0x7fa00000
#define NQNAN_P 0xffc12345      /* negative quiet NaN with a payload */
#define MAXF    0x7f7fffff
#define M_MAXF  0xff7fffff
#define MINNORM 0x00800000
#define MINSUB  0x00000001
#define THIRD_RN 0x3eaaaaab
#define THIRD_RZ 0x3eaaaaaa
#define M_THIRD_RN 0xbeaaaaab
#define M_THIRD_RZ 0xbeaaaaaa
#define ULP1    0x3f800001      /* 1 + 2^-23 */
#define HULP    0x33800000      /* 2^-24: half an ulp of 1.0 */

#define NX FFLAG_NX
#define UF FFLAG_UF
#define OF FFLAG_OF
#define DZ FFLAG_DZ
#define NV FFLAG_NV

TEST_BEGIN
	/* ---------------- arithmetic ---------------- */
	TEST 1
	V_S2 fadd.s, THREE, ONE, TWO, 0
	V_S2 fadd.s, PZERO, TWO_5, M_TWO_5, 0          /* x + -x = +0 ... */
	V_S2 fadd.s, NZERO, TWO_5, M_TWO_5, 0, rdn     /* ... except rounding down: -0 */
	V_S2 fadd.s, NZERO, NZERO, NZERO, 0
	V_S2 fadd.s, QNAN, PINF, NINF, NV              /* inf - inf */
	V_S2 fadd.s, QNAN, QNAN, ONE, 0                /* quiet NaN in: no flag */
	V_S2 fadd.s, QNAN, SNAN, ONE, NV               /* signaling NaN in: NV */
	V_S2 fadd.s, QNAN, NQNAN_P, ONE, 0             /* result NaN is canonical, payload dropped */
	V_S2 fadd.s, PINF, PINF, ONE, 0
	TEST 2
	V_S2 fsub.s, TWO, THREE, ONE, 0
	V_S2 fsub.s, PZERO, ONE, ONE, 0
	V_S2 fsub.s, NZERO, NZERO, PZERO, 0
	V_S2 fsub.s, QNAN, PINF, PINF, NV
	V_S2 fsub.s, NINF, NINF, PINF, 0
	TEST 3
	V_S2 fmul.s, SIX, TWO, THREE, 0
	V_S2 fmul.s, NZERO, M_TWO, PZERO, 0
	V_S2 fmul.s, QNAN, PINF, PZERO, NV
	V_S2 fmul.s, PINF, MAXF, TWO, OF | NX
	V_S2 fmul.s, QNAN, SNAN, TWO, NV
	TEST 4
	V_S2 fdiv.s, THIRD_RN, ONE, THREE, NX
	V_S2 fdiv.s, TWO, SIX, THREE, 0
	V_S2 fdiv.s, PINF, ONE, PZERO, DZ
	V_S2 fdiv.s, NINF, M_ONE, PZERO, DZ
	V_S2 fdiv.s, NINF, ONE, NZERO, DZ
	V_S2 fdiv.s, QNAN, PZERO, PZERO, NV
	V_S2 fdiv.s, QNAN, PINF, NINF, NV
	V_S2 fdiv.s, PZERO, ONE, PINF, 0
	V_S2 fdiv.s, PINF, PINF, ONE, 0                /* inf / finite: no DZ */
	TEST 5
	V_S1 fsqrt.s, TWO, FOUR, 0
	V_S1 fsqrt.s, 0x3fb504f3, TWO, NX
	V_S1 fsqrt.s, QNAN, M_ONE, NV
	V_S1 fsqrt.s, NZERO, NZERO, 0                  /* sqrt(-0) = -0 */
	V_S1 fsqrt.s, PINF, PINF, 0
	V_S1 fsqrt.s, QNAN, NINF, NV

	/* ---------------- fmin / fmax ---------------- */
	TEST 6
	V_S2 fmin.s, ONE, ONE, TWO, 0
	V_S2 fmax.s, TWO, ONE, TWO, 0
	V_S2 fmin.s, M_TWO, ONE, M_TWO, 0
	V_S2 fmin.s, NZERO, NZERO, PZERO, 0            /* -0 < +0 for min/max */
	V_S2 fmin.s, NZERO, PZERO, NZERO, 0
	V_S2 fmax.s, PZERO, NZERO, PZERO, 0
	V_S2 fmax.s, PZERO, PZERO, NZERO, 0
	V_S2 fmin.s, NINF, NINF, FIVE, 0
	V_S2 fmax.s, PINF, FIVE, PINF, 0
	TEST 7                                          /* NaN operands */
	V_S2 fmin.s, ONE, QNAN, ONE, 0                 /* one NaN: the number wins */
	V_S2 fmax.s, ONE, ONE, QNAN, 0
	V_S2 fmin.s, ONE, SNAN, ONE, NV                /* ... but a signaling NaN raises NV */
	V_S2 fmax.s, M_ONE, M_ONE, SNAN, NV
	V_S2 fmin.s, QNAN, QNAN, QNAN, 0               /* both NaN: canonical NaN */
	V_S2 fmax.s, QNAN, NQNAN_P, QNAN, 0
	V_S2 fmax.s, QNAN, SNAN, QNAN, NV

	/* ---------------- fused multiply-add ---------------- */
	TEST 8
	V_S3 fmadd.s, SEVEN, TWO, THREE, ONE, 0        /*  a*b + c */
	V_S3 fmsub.s, FIVE, TWO, THREE, ONE, 0         /*  a*b - c */
	V_S3 fnmsub.s, 0xc0a00000, TWO, THREE, ONE, 0  /* -a*b + c = -5 */
	V_S3 fnmadd.s, 0xc0e00000, TWO, THREE, ONE, 0  /* -a*b - c = -7 */
	TEST 9                                          /* single rounding: (1+2^-23)(1-2^-23) - 1 = -2^-46 */
	V_S3 fmsub.s, 0xa8800000, ULP1, 0x3f7ffffe, ONE, 0
	V_S3 fmadd.s, 0xa8800000, ULP1, 0x3f7ffffe, M_ONE, 0
	V_S3 fnmsub.s, 0x28800000, ULP1, 0x3f7ffffe, ONE, 0
	TEST 10
	V_S3 fmadd.s, QNAN, PINF, PZERO, QNAN, NV      /* inf * 0 is invalid even with a quiet NaN addend */
	V_S3 fmadd.s, QNAN, PINF, PZERO, ONE, NV
	V_S3 fmadd.s, QNAN, ONE, ONE, SNAN, NV
	V_S3 fmadd.s, QNAN, PINF, ONE, NINF, NV        /* inf - inf */
	V_S3 fmadd.s, QNAN, QNAN, ONE, ONE, 0
	V_S3 fmadd.s, PINF, MAXF, TWO, ONE, OF | NX

	/* ---------------- sign injection (no NaN canonicalisation, no flags) ---------------- */
	TEST 11
	V_S2 fsgnj.s, M_ONE, ONE, M_TWO, 0
	V_S2 fsgnj.s, ONE, M_ONE, TWO, 0
	V_S2 fsgnjn.s, ONE, ONE, M_TWO, 0
	V_S2 fsgnjn.s, M_ONE, ONE, TWO, 0
	V_S2 fsgnjx.s, ONE, M_ONE, M_TWO, 0
	V_S2 fsgnjx.s, M_ONE, M_ONE, TWO, 0
	V_S2 fsgnjx.s, M_ONE, ONE, M_TWO, 0
	V_S2 fsgnj.s, 0xffc00000, QNAN, M_ONE, 0       /* NaN keeps its payload */
	V_S2 fsgnjn.s, 0xff800001, 0x7f800001, ONE, 0  /* signaling NaN: no NV */
	V_S1 fabs.s, 0x7fc12345, NQNAN_P, 0
	V_S1 fneg.s, PZERO, NZERO, 0
	V_S1 fmv.s, NQNAN_P, NQNAN_P, 0

	/* ---------------- NaN boxing ---------------- */
	TEST 12                                         /* 1.0 without the all-ones upper half */
	li a1, 0x000000003f800000
	fmv.d.x fa0, a1
	FLI_S fa1, TWO
	csrw fflags, x0
	fadd.s fa2, fa0, fa1                           /* reads the canonical NaN */
	CHECK_S fa2, QNAN
	CHECK_FLAGS 0                                  /* it is a quiet NaN: no NV */
	fmin.s fa2, fa0, fa1                           /* NaN vs number: the number */
	CHECK_S fa2, TWO
	fsgnj.s fa2, fa0, fa0
	CHECK_S fa2, QNAN
	fsgnjn.s fa2, fa1, fa0                         /* sign from the canonical NaN (+), negated */
	CHECK_S fa2, M_TWO
	fclass.s a0, fa0
	CHECK a0, 0x200                                /* quiet NaN */
	feq.s a0, fa0, fa0
	CHECK a0, 0
	CHECK_FLAGS 0
	fcvt.w.s a0, fa0
	CHECK a0, 0x7fffffff
	CHECK_FLAGS NV
	fcvt.d.s fa2, fa0
	CHECK_D fa2, 0x7ff8000000000000
	CHECK_FLAGS 0
	TEST 13                                         /* one zero bit in the upper half is enough */
	li a1, 0xfffffffe3f800000
	fmv.d.x fa0, a1
	fadd.s fa2, fa0, fa0
	CHECK_S fa2, QNAN
	fclass.s a0, fa0
	CHECK a0, 0x200
	li a1, 0xffffffff3f800000                      /* properly boxed: plain 1.0 */
	fmv.d.x fa0, a1
	fadd.s fa2, fa0, fa0
	CHECK_S fa2, TWO
	TEST 14                                         /* transfers ignore the upper half */
	li a1, 0x12345678bf800000
	fmv.d.x fa0, a1
	fmv.x.w a0, fa0                                /* low 32 bits, sign-extended */
	CHECK a0, 0xffffffffbf800000
	la a2, fbuf
	li a3, -1
	sd a3, 0(a2)
	fsw fa0, 0(a2)                                 /* low 32 bits, upper word of memory untouched */
	ld a0, 0(a2)
	CHECK a0, 0xffffffffbf800000
	CHECK_FLAGS 0
	TEST 15                                         /* results are boxed */
	li a1, 0x3f800000
	fmv.w.x fa0, a1
	fmv.x.d a0, fa0
	CHECK a0, 0xffffffff3f800000
	li a1, 0x123456783f800000                      /* fmv.w.x takes the low word */
	fmv.w.x fa0, a1
	fmv.x.d a0, fa0
	CHECK a0, 0xffffffff3f800000
	li a1, 3
	fcvt.s.w fa0, a1
	fmv.x.d a0, fa0
	CHECK a0, 0xffffffff40400000
	la a2, fdata
	flw fa0, 4(a2)
	fmv.x.d a0, fa0
	CHECK a0, 0xffffffffc0000000

	/* ---------------- fmv.x.w / fmv.w.x ---------------- */
	TEST 16
	FLI_S fa0, NZERO
	fmv.x.w a0, fa0
	CHECK a0, 0xffffffff80000000
	FLI_S fa0, QNAN
	fmv.x.w a0, fa0
	CHECK a0, 0x7fc00000
	FLI_S fa0, 0xff800001                          /* NaN bits move unchanged */
	fmv.x.w a0, fa0
	CHECK a0, 0xffffffffff800001
	CHECK_FLAGS 0

	/* ---------------- flw / fsw ---------------- */
	TEST 17
	la a2, fdata
	flw fa0, 0(a2)
	CHECK_S fa0, ONE
	flw fa1, 8(a2)                                 /* signaling NaN loads unchanged, no flag */
	CHECK_S fa1, 0x7f800001
	la a3, fbuf + 16
	sd zero, -16(a3)
	sd zero, -8(a3)
	fsw fa1, -12(a3)
	fsw fa0, -8(a3)
	ld a0, -16(a3)
	CHECK a0, 0x7f80000100000000
	ld a0, -8(a3)
	CHECK a0, 0x000000003f800000
	CHECK_FLAGS 0

	/* ---------------- conversions to integer (saturating) ---------------- */
	TEST 18
	V_S2X fcvt.w.s, 2, ONE_5, NX
	V_S2X fcvt.w.s, -2, M_ONE_5, NX
	V_S2X fcvt.w.s, 2, TWO_5, NX                   /* ties to even */
	V_S2X fcvt.w.s, 0xffffffff80000000, 0xcf000000, 0 /* -2^31 exactly */
	V_S2X fcvt.w.s, 0x7fffffff, 0x4f000000, NV     /* 2^31 */
	V_S2X fcvt.w.s, 0x7fffffff, 0x4f32d05e, NV     /* 3e9 */
	V_S2X fcvt.w.s, 0xffffffff80000000, 0xcf32d05e, NV
	V_S2X fcvt.w.s, 0x7fffffff, PINF, NV
	V_S2X fcvt.w.s, 0xffffffff80000000, NINF, NV
	V_S2X fcvt.w.s, 0x7fffffff, QNAN, NV           /* NaN saturates to the maximum */
	V_S2X fcvt.w.s, 0x7fffffff, NQNAN_P, NV
	V_S2X fcvt.w.s, 0, NZERO, 0
	TEST 19
	V_S2X fcvt.wu.s, 0xffffffffb2d05e00, 0x4f32d05e, 0 /* 3e9: 32-bit result sign-extended */
	V_S2X fcvt.wu.s, 0, M_ONE, NV
	V_S2X fcvt.wu.s, 0, 0xbf000000, NX, rtz        /* -0.5 truncates to 0: in range */
	V_S2X fcvt.wu.s, 0xffffffffffffffff, 0x4f800000, NV /* 2^32 */
	V_S2X fcvt.wu.s, 0xffffffffffffffff, PINF, NV
	V_S2X fcvt.wu.s, 0, NINF, NV
	V_S2X fcvt.wu.s, 0xffffffffffffffff, QNAN, NV
	V_S2X fcvt.wu.s, 1, ONE, 0
	TEST 20
	V_S2X fcvt.l.s, 10000000000, 0x501502f9, 0
	V_S2X fcvt.l.s, 0x7fffffffffffffff, 0x5f000000, NV /* 2^63 */
	V_S2X fcvt.l.s, 0x8000000000000000, 0xdf000000, 0  /* -2^63 exactly */
	V_S2X fcvt.l.s, 0x7fffffffffffffff, QNAN, NV
	V_S2X fcvt.l.s, 0x7fffffffffffffff, PINF, NV
	V_S2X fcvt.l.s, 0x8000000000000000, NINF, NV
	V_S2X fcvt.l.s, -2, M_TWO_5, NX
	TEST 21
	V_S2X fcvt.lu.s, 0x8000000000000000, 0x5f000000, 0
	V_S2X fcvt.lu.s, 0xffffffffffffffff, 0x5f800000, NV /* 2^64 */
	V_S2X fcvt.lu.s, 0, M_ONE, NV
	V_S2X fcvt.lu.s, 0xffffffffffffffff, QNAN, NV
	V_S2X fcvt.lu.s, 0xffffffffffffffff, PINF, NV
	V_S2X fcvt.lu.s, 0, NINF, NV
	V_S2X fcvt.lu.s, 3, TWO_5, NX, rup

	/* ---------------- conversions from integer ---------------- */
	TEST 22
	V_X2S fcvt.s.w, M_ONE, -1, 0
	V_X2S fcvt.s.w, 0x4f000000, 0x7fffffff, NX     /* rounds to 2^31 */
	V_X2S fcvt.s.w, ONE, 0xffffffff00000001, 0     /* only the low word is read */
	V_X2S fcvt.s.w, 0xcf000000, 0x80000000, 0
	V_X2S fcvt.s.w, PZERO, 0, 0
	V_X2S fcvt.s.wu, 0x4f800000, 0xffffffff, NX    /* 2^32 - 1 rounds to 2^32 */
	V_X2S fcvt.s.wu, 0x4f000000, 0xffffffff80000000, 0
	V_X2S fcvt.s.l, 0xdf000000, 0x8000000000000000, 0
	V_X2S fcvt.s.l, 0x4b800000, 16777217, NX       /* 2^24 + 1: tie, to even */
	V_X2S fcvt.s.l, 0x4b800001, 16777217, NX, rup
	V_X2S fcvt.s.l, 0xcb800001, -16777217, NX, rdn
	V_X2S fcvt.s.l, 0xcb800000, -16777217, NX, rtz
	V_X2S fcvt.s.lu, 0x5f800000, 0xffffffffffffffff, NX
	V_X2S fcvt.s.lu, 0x5f7fffff, 0xffffffffffffffff, NX, rtz

	/* ---------------- comparisons ---------------- */
	TEST 23
	V_SCMP feq.s, 1, ONE, ONE, 0
	V_SCMP feq.s, 0, ONE, TWO, 0
	V_SCMP feq.s, 1, NZERO, PZERO, 0
	V_SCMP flt.s, 1, ONE, TWO, 0
	V_SCMP flt.s, 0, TWO, ONE, 0
	V_SCMP flt.s, 0, NZERO, PZERO, 0
	V_SCMP flt.s, 1, NINF, PINF, 0
	V_SCMP fle.s, 1, TWO, TWO, 0
	V_SCMP fle.s, 1, NZERO, PZERO, 0
	V_SCMP fle.s, 0, TWO, ONE, 0
	TEST 24                                         /* feq is quiet, flt/fle signal on any NaN */
	V_SCMP feq.s, 0, QNAN, ONE, 0
	V_SCMP feq.s, 0, QNAN, QNAN, 0
	V_SCMP feq.s, 0, SNAN, ONE, NV
	V_SCMP flt.s, 0, QNAN, ONE, NV
	V_SCMP flt.s, 0, ONE, QNAN, NV
	V_SCMP fle.s, 0, QNAN, ONE, NV
	V_SCMP fle.s, 0, ONE, SNAN, NV

	/* ---------------- fclass ---------------- */
	TEST 25
	V_S2X fclass.s, 1 << 0, NINF, 0
	V_S2X fclass.s, 1 << 1, M_ONE, 0
	V_S2X fclass.s, 1 << 2, 0x807fffff, 0          /* negative subnormal */
	V_S2X fclass.s, 1 << 3, NZERO, 0
	V_S2X fclass.s, 1 << 4, PZERO, 0
	V_S2X fclass.s, 1 << 5, MINSUB, 0
	V_S2X fclass.s, 1 << 6, MINNORM, 0
	V_S2X fclass.s, 1 << 7, PINF, 0
	V_S2X fclass.s, 1 << 8, SNAN, 0
	V_S2X fclass.s, 1 << 9, QNAN, 0
	V_S2X fclass.s, 1 << 9, NQNAN_P, 0

	/* ---------------- rounding modes: static rm ---------------- */
	TEST 26                                         /* fcvt.w.s of +-2.5 separates all five */
	V_S2X fcvt.w.s, 2, TWO_5, NX, rne
	V_S2X fcvt.w.s, 2, TWO_5, NX, rtz
	V_S2X fcvt.w.s, 2, TWO_5, NX, rdn
	V_S2X fcvt.w.s, 3, TWO_5, NX, rup
	V_S2X fcvt.w.s, 3, TWO_5, NX, rmm
	V_S2X fcvt.w.s, -2, M_TWO_5, NX, rne
	V_S2X fcvt.w.s, -2, M_TWO_5, NX, rtz
	V_S2X fcvt.w.s, -3, M_TWO_5, NX, rdn
	V_S2X fcvt.w.s, -2, M_TWO_5, NX, rup
	V_S2X fcvt.w.s, -3, M_TWO_5, NX, rmm
	TEST 27                                         /* 1/3 and -1/3 */
	V_S2 fdiv.s, THIRD_RN, ONE, THREE, NX, rne
	V_S2 fdiv.s, THIRD_RZ, ONE, THREE, NX, rtz
	V_S2 fdiv.s, THIRD_RZ, ONE, THREE, NX, rdn
	V_S2 fdiv.s, THIRD_RN, ONE, THREE, NX, rup
	V_S2 fdiv.s, THIRD_RN, ONE, THREE, NX, rmm
	V_S2 fdiv.s, M_THIRD_RN, M_ONE, THREE, NX, rne
	V_S2 fdiv.s, M_THIRD_RZ, M_ONE, THREE, NX, rtz
	V_S2 fdiv.s, M_THIRD_RN, M_ONE, THREE, NX, rdn
	V_S2 fdiv.s, M_THIRD_RZ, M_ONE, THREE, NX, rup
	V_S2 fdiv.s, M_THIRD_RN, M_ONE, THREE, NX, rmm
	TEST 28                                         /* an exact tie: 1 + 2^-24 */
	V_S2 fadd.s, ONE, ONE, HULP, NX, rne
	V_S2 fadd.s, ONE, ONE, HULP, NX, rtz
	V_S2 fadd.s, ONE, ONE, HULP, NX, rdn
	V_S2 fadd.s, ULP1, ONE, HULP, NX, rup
	V_S2 fadd.s, ULP1, ONE, HULP, NX, rmm
	TEST 29                                         /* overflow: infinity or the largest finite */
	V_S2 fmul.s, PINF, MAXF, TWO, OF | NX, rne
	V_S2 fmul.s, MAXF, MAXF, TWO, OF | NX, rtz
	V_S2 fmul.s, MAXF, MAXF, TWO, OF | NX, rdn
	V_S2 fmul.s, PINF, MAXF, TWO, OF | NX, rup
	V_S2 fmul.s, PINF, MAXF, TWO, OF | NX, rmm
	V_S2 fmul.s, NINF, M_MAXF, TWO, OF | NX, rne
	V_S2 fmul.s, M_MAXF, M_MAXF, TWO, OF | NX, rtz
	V_S2 fmul.s, NINF, M_MAXF, TWO, OF | NX, rdn
	V_S2 fmul.s, M_MAXF, M_MAXF, TWO, OF | NX, rup
	TEST 30                                         /* underflow: half the smallest subnormal */
	V_S2 fmul.s, PZERO, MINSUB, HALF, UF | NX, rne
	V_S2 fmul.s, PZERO, MINSUB, HALF, UF | NX, rtz
	V_S2 fmul.s, PZERO, MINSUB, HALF, UF | NX, rdn
	V_S2 fmul.s, MINSUB, MINSUB, HALF, UF | NX, rup
	V_S2 fmul.s, MINSUB, MINSUB, HALF, UF | NX, rmm
	V_S2 fmul.s, 0x00400000, MINNORM, HALF, 0      /* exact subnormal result: no UF */

	/* ---------------- rounding modes: dynamic (frm) ---------------- */
	TEST 31
	fsrmi 0                                        /* rne */
	V_S2X fcvt.w.s, 2, TWO_5, NX
	V_S2 fdiv.s, M_THIRD_RN, M_ONE, THREE, NX
	fsrmi 1                                        /* rtz */
	V_S2X fcvt.w.s, 2, TWO_5, NX
	V_S2 fdiv.s, M_THIRD_RZ, M_ONE, THREE, NX
	fsrmi 2                                        /* rdn */
	V_S2X fcvt.w.s, -3, M_TWO_5, NX
	V_S2 fdiv.s, THIRD_RZ, ONE, THREE, NX
	V_S2 fadd.s, NZERO, TWO_5, M_TWO_5, 0
	fsrmi 3                                        /* rup */
	V_S2X fcvt.w.s, 3, TWO_5, NX
	V_S2 fdiv.s, M_THIRD_RZ, M_ONE, THREE, NX
	V_S2 fmul.s, MINSUB, MINSUB, HALF, UF | NX
	fsrmi 4                                        /* rmm */
	V_S2X fcvt.w.s, -3, M_TWO_5, NX
	V_S2 fadd.s, ULP1, ONE, HULP, NX
	V_X2S fcvt.s.l, 0x4b800001, 16777217, NX
	V_S3 fmadd.s, ULP1, ONE, ONE, HULP, NX         /* fused ops honour frm too */
	TEST 32                                         /* a static rm overrides frm */
	fsrmi 3
	V_S2X fcvt.w.s, 2, TWO_5, NX, rne
	fsrmi 0
	V_S2X fcvt.w.s, 3, TWO_5, NX, rup

	/* ---------------- fcsr, frm, fflags ---------------- */
	TEST 33
	csrw fcsr, zero
	fsrmi a0, 3                                    /* swap: returns the old frm */
	CHECK a0, 0
	csrr a0, fcsr
	CHECK a0, 0x60                                 /* frm lives in fcsr[7:5] */
	frrm a0
	CHECK a0, 3
	csrwi fflags, 0x1f
	csrr a0, fcsr
	CHECK a0, 0x7f
	li a1, 0x85
	csrw fcsr, a1                                  /* frm = 4, fflags = NX|OF */
	csrr a0, frm
	CHECK a0, 4
	csrr a0, fflags
	CHECK a0, 0x05
	fsflags a0, x0
	CHECK a0, 0x05
	csrr a0, fcsr
	CHECK a0, 0x80
	csrw fcsr, zero
	TEST 34                                         /* flags accrue until cleared */
	FLI_S fa0, ONE
	FLI_S fa1, PZERO
	FLI_S fa3, THREE
	fdiv.s fa2, fa0, fa1                           /* DZ */
	fdiv.s fa2, fa0, fa3                           /* NX */
	fdiv.s fa2, fa0, fa0                           /* exact: nothing */
	CHECK_FLAGS DZ | NX
	fsqrt.s fa2, fa1
	CHECK_FLAGS 0
	FLI_S fa0, MAXF
	fadd.s fa2, fa0, fa0                           /* OF NX */
	FLI_S fa0, SNAN
	fle.s a0, fa0, fa0                             /* NV */
	FLI_S fa0, MINSUB
	FLI_S fa1, HALF
	fmul.s fa2, fa0, fa1                           /* UF NX */
	CHECK_FLAGS NV | OF | UF | NX

	/* ---------------- reserved rounding modes are illegal ---------------- */
	TEST 35
	csrw fcsr, zero
	FLI_S fa0, ONE
	FLI_S fa1, TWO
	/* fadd.s fa2, fa0, fa1 with rm = 5 / 6 */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00b55653
	CHECK_TF TF_TVAL, 0x00b55653                   /* tval = the instruction */
	EXPECT_TRAP CAUSE_ILLEGAL, .word 0x00b56653
	CHECK_TF TF_TVAL, 0x00b56653
	TEST 36                                         /* frm = 5..7 makes dynamic-rm instructions illegal */
	fsrmi 5
	EXPECT_TRAP CAUSE_ILLEGAL, fadd.s fa2, fa0, fa1
	fsrmi 7
	EXPECT_TRAP CAUSE_ILLEGAL, fcvt.w.s a0, fa0
	fadd.s fa2, fa0, fa1, rne                      /* static rm still works */
	CHECK_S fa2, THREE
	fsgnj.s fa2, fa0, fa1                          /* no rounding: no trap */
	fmv.x.w a0, fa0
	fsrmi 0
	CHECK_FLAGS 0

	/* ---------------- mstatus.FS ---------------- */
	TEST 37                                         /* writing FP state makes FS Dirty (and SD) */
	li a1, MSTATUS_FS
	csrc mstatus, a1
	li a1, FS_INITIAL
	csrs mstatus, a1
	FLI_S fa0, ONE
	csrr a0, mstatus
	li a1, MSTATUS_FS
	and a2, a0, a1
	CHECK a2, FS_DIRTY
	srli a2, a0, 63
	CHECK a2, 1
	li a1, MSTATUS_FS
	csrc mstatus, a1
	li a1, FS_CLEAN
	csrs mstatus, a1
	csrwi fflags, 1                                /* fcsr is FP state too */
	csrr a0, mstatus
	li a1, MSTATUS_FS
	and a2, a0, a1
	CHECK a2, FS_DIRTY
	csrw fflags, x0
	TEST 38                                         /* FS = Off: every FP instruction is illegal */
	FLI_S fs0, SEVEN
	li a1, MSTATUS_FS
	csrc mstatus, a1
	csrr a0, mstatus
	srli a2, a0, 63
	CHECK a2, 0                                    /* SD clear with FS Off */
	EXPECT_TRAP CAUSE_ILLEGAL, fadd.s fa2, fa0, fa1
	CHECK_TF TF_TVAL, 0x00b57653                   /* fadd.s fa2, fa0, fa1 (dyn) */
	la a2, fdata
	EXPECT_TRAP CAUSE_ILLEGAL, flw fa0, 0(a2)
	EXPECT_TRAP CAUSE_ILLEGAL, fsw fa0, 0(a2)
	EXPECT_TRAP CAUSE_ILLEGAL, fmv.w.x fa0, a0
	EXPECT_TRAP CAUSE_ILLEGAL, fmv.x.w a0, fa0
	EXPECT_TRAP CAUSE_ILLEGAL, fcvt.s.w fa0, a0
	EXPECT_TRAP CAUSE_ILLEGAL, fmadd.s fa0, fa1, fa2, fa3
	EXPECT_TRAP CAUSE_ILLEGAL, feq.s a0, fa0, fa1
	EXPECT_TRAP CAUSE_ILLEGAL, csrr a0, fflags
	EXPECT_TRAP CAUSE_ILLEGAL, csrw frm, a0
	EXPECT_TRAP CAUSE_ILLEGAL, csrr a0, fcsr
	li a1, FS_INITIAL
	csrs mstatus, a1
	CHECK_S fs0, SEVEN                             /* state survived while Off */
TEST_END

	.data
	.align 3
fdata:
	.word ONE, M_TWO, 0x7f800001, 0
fbuf:
	.dword 0, 0, 0, 0
