/*
 * rv64m.S - multiply/divide (RV64M).
 *
 * Low and high products for every signedness combination, the W forms
 * (low words in, sign-extended 32-bit result out), and the special cases
 * the spec defines instead of trapping: x / 0 = all ones, x % 0 = x,
 * INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0 (64- and 32-bit).
 */
#include "test.h"

.macro V_RR op, exp, v1, v2
	li a1, \v1
	li a2, \v2
	\op a0, a1, a2
	CHECK a0, \exp
.endm

TEST_BEGIN
	CLEAR_TRAP_COUNT
	TEST 1
	V_RR mul, 0x0000000000000015, 0x0000000000000003, 0x0000000000000007
	V_RR mul, 0xffffffffffffffeb, 0xfffffffffffffffd, 0x0000000000000007
	V_RR mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x0000000000000002
	V_RR mul, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
	V_RR mul, 0x2236d88fe5618cf0, 0x123456789abcdef0, 0x0fedcba987654321
	V_RR mul, 0x0000000000000000, 0x0000000000000000, 0xffffffffffffffff
	TEST 2
	V_RR mulh, 0x0000000000000000, 0xffffffffffffffff, 0xffffffffffffffff
	V_RR mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000
	V_RR mulh, 0xffffffffffffffff, 0xffffffffffffffff, 0x0000000000000001
	V_RR mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff
	V_RR mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff
	V_RR mulh, 0xfede05ff528828bd, 0x123456789abcdef0, 0xf0123456789abcdf
	V_RR mulh, 0x0000000000000000, 0x0000000000000003, 0x0000000000000007
	TEST 3
	V_RR mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x0000000000000001
	V_RR mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff
	V_RR mulhsu, 0x0000000000000000, 0x0000000000000001, 0xffffffffffffffff
	V_RR mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
	V_RR mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, 0xffffffffffffffff
	V_RR mulhsu, 0xffffffffffffffff, 0xfffffffffffffffe, 0x8000000000000000
	TEST 4
	V_RR mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff
	V_RR mulhu, 0x0000000000000001, 0x0000000100000000, 0x0000000100000000
	V_RR mulhu, 0x0000000000000000, 0x0000000000000003, 0x0000000000000007
	V_RR mulhu, 0x0000000000000001, 0x8000000000000000, 0x0000000000000002
	V_RR mulhu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210
	TEST 5
	V_RR mulw, 0xfffffffffffffffe, 0x000000007fffffff, 0x0000000000000002
	V_RR mulw, 0x000000000000000f, 0x0000000100000003, 0x0000000000000005
	V_RR mulw, 0x0000000000000000, 0x0000000000010000, 0x0000000000010000
	V_RR mulw, 0xffffffff80000000, 0x0000000000008000, 0x0000000000010000
	V_RR mulw, 0x0000000000000001, 0xffffffffffffffff, 0xffffffffffffffff
	V_RR mulw, 0x0000000000000000, 0x0000000080000000, 0x0000000080000000
	TEST 6
	V_RR div, 0x0000000000000003, 0x0000000000000014, 0x0000000000000006
	V_RR div, 0xfffffffffffffffd, 0xffffffffffffffec, 0x0000000000000006
	V_RR div, 0xfffffffffffffffd, 0x0000000000000014, 0xfffffffffffffffa
	V_RR div, 0x0000000000000003, 0xffffffffffffffec, 0xfffffffffffffffa
	V_RR div, 0xffffffffffffffff, 0x0000000000000014, 0x0000000000000000
	V_RR div, 0xffffffffffffffff, 0x0000000000000000, 0x0000000000000000
	V_RR div, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
	V_RR div, 0x8000000000000000, 0x8000000000000000, 0x0000000000000001
	V_RR div, 0x0000000000000000, 0xffffffffffffffff, 0x8000000000000000
	TEST 7
	V_RR divu, 0x0000000000000003, 0x0000000000000014, 0x0000000000000006
	V_RR divu, 0x7fffffffffffffff, 0xffffffffffffffff, 0x0000000000000002
	V_RR divu, 0xffffffffffffffff, 0x0000000000000014, 0x0000000000000000
	V_RR divu, 0x0000000000000000, 0x8000000000000000, 0xffffffffffffffff
	V_RR divu, 0x2aaaaaaaaaaaaaa7, 0xffffffffffffffec, 0x0000000000000006
	TEST 8
	V_RR rem, 0x0000000000000002, 0x0000000000000014, 0x0000000000000006
	V_RR rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0x0000000000000006
	V_RR rem, 0x0000000000000002, 0x0000000000000014, 0xfffffffffffffffa
	V_RR rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0xfffffffffffffffa
	V_RR rem, 0x0000000000000014, 0x0000000000000014, 0x0000000000000000
	V_RR rem, 0xffffffffffffffec, 0xffffffffffffffec, 0x0000000000000000
	V_RR rem, 0x0000000000000000, 0x8000000000000000, 0xffffffffffffffff
	V_RR rem, 0xfffffffffffffffe, 0x8000000000000000, 0x0000000000000003
	TEST 9
	V_RR remu, 0x0000000000000002, 0x0000000000000014, 0x0000000000000006
	V_RR remu, 0x0000000000000005, 0xffffffffffffffff, 0x000000000000000a
	V_RR remu, 0x0000000000000014, 0x0000000000000014, 0x0000000000000000
	V_RR remu, 0xffffffffffffffec, 0xffffffffffffffec, 0x0000000000000000
	V_RR remu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff
	TEST 10
	V_RR divw, 0xfffffffffffffffd, 0xffffffffffffffec, 0x0000000000000006
	V_RR divw, 0xffffffff80000000, 0x0000000080000000, 0xffffffffffffffff
	V_RR divw, 0xffffffffffffffff, 0x0000000000000014, 0x0000000000000000
	V_RR divw, 0x0000000000000003, 0xffffffff00000014, 0x0000000000000006
	V_RR divw, 0xffffffffffffffff, 0x0000000000000014, 0x0000000100000000
	V_RR divw, 0xffffffff80000001, 0x000000007fffffff, 0xffffffffffffffff
	V_RR divw, 0xffffffff80000000, 0x0000000080000000, 0x0000000000000001
	TEST 11
	V_RR divuw, 0x000000007fffffff, 0x00000000ffffffff, 0x0000000000000002
	V_RR divuw, 0xffffffff80000000, 0x0000000080000000, 0x0000000000000001
	V_RR divuw, 0xffffffffffffffff, 0x0000000000000014, 0x0000000000000000
	V_RR divuw, 0x0000000000000003, 0xffffffff00000014, 0x0000000000000006
	V_RR divuw, 0x0000000023456789, 0x0000000123456789, 0x0000000100000001
	TEST 12
	V_RR remw, 0xfffffffffffffffe, 0xffffffffffffffec, 0x0000000000000006
	V_RR remw, 0x0000000000000000, 0x0000000080000000, 0xffffffffffffffff
	V_RR remw, 0xffffffff80000000, 0x0000000180000000, 0x0000000000000000
	V_RR remw, 0x0000000000000002, 0x0000000000000014, 0xfffffffffffffffa
	V_RR remw, 0x0000000000000002, 0xffffffff00000014, 0x0000000000000006
	V_RR remw, 0xfffffffffffffff9, 0xfffffffffffffff9, 0x0000000100000000
	TEST 13
	V_RR remuw, 0x0000000000000005, 0x00000000ffffffff, 0x000000000000000a
	V_RR remuw, 0xffffffff80000001, 0x0000000080000001, 0x0000000000000000
	V_RR remuw, 0x0000000000000002, 0x0000000000000014, 0x0000000000000006
	V_RR remuw, 0x000000000000000f, 0x00000001ffffffff, 0x0000000100000010

	/* ---------------- register aliasing ---------------- */
	TEST 14
	li a0, -9
	mul a0, a0, a0                 /* rd == rs1 == rs2 */
	CHECK a0, 81
	li a1, 100
	li a0, 7
	div a1, a1, a0                 /* rd == rs1 */
	CHECK a1, 14
	li a1, 100
	rem a0, a1, a0                 /* rd == rs2 */
	CHECK a0, 2
	li a0, -1
	mulhu a0, a0, a0
	CHECK a0, 0xfffffffffffffffe
	li a1, 5
	div x0, a1, x0                 /* writes to x0 are dropped */
	mv a0, x0
	CHECK a0, 0

	/* ---------------- no arithmetic exceptions: nothing above trapped ---------------- */
	TEST 15
	CHECK_TF TF_COUNT, 0
TEST_END
