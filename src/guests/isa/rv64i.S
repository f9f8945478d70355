/*
 * rv64i.S - base integer ISA (RV64I + Zifencei).
 *
 * Register/immediate ALU ops with their wrap-around and sign edges, the
 * 32-bit "W" ops (operate on the low word, sign-extend the result), shift
 * amounts taken from the low 6 (or 5, for W) bits, lui/auipc, every branch
 * taken and not taken, jal/jalr linking (jalr clears bit 0), every load and
 * store width, x0 ignoring writes, and fence.i after self-modifying code.
 */
#include "test.h"

/* rd = op(v1, v2) with rd, rs1, rs2 distinct */
.macro T_RR n, op, exp, v1, v2
	TEST \n
	li a1, \v1
	li a2, \v2
	\op a0, a1, a2
	CHECK a0, \exp
.endm

/* same number: a further vector for the current test */
.macro V_RR op, exp, v1, v2
	li a1, \v1
	li a2, \v2
	\op a0, a1, a2
	CHECK a0, \exp
.endm

.macro V_RI op, exp, v1, imm
	li a1, \v1
	\op a0, a1, \imm
	CHECK a0, \exp
.endm

/* branch: a0 = 2 if taken, 1 if it fell through */
.macro V_BR op, taken, v1, v2
	li a1, \v1
	li a2, \v2
	li a0, 0
	\op a1, a2, .Lbt\@
	li a0, 1
	j .Lbd\@
.Lbt\@:
	li a0, 2
.Lbd\@:
	CHECK a0, (1 + \taken)
.endm

/* load from the test pattern in ld_data */
.macro V_LD op, off, exp
	la a1, ld_data
	\op a0, \off(a1)
	CHECK a0, \exp
.endm

TEST_BEGIN

	/* ---------------- register-register ---------------- */
	T_RR 1, add, 2, 1, 1
	V_RR add, 0x8000000000000000, 0x7fffffffffffffff, 1     /* wraps, no trap */
	V_RR add, 0, -1, 1
	V_RR add, 0x100000000, 0xffffffff, 1                    /* no 32-bit truncation */
	V_RR add, -3, -1, -2

	T_RR 2, sub, -2, 5, 7
	V_RR sub, 0x7fffffffffffffff, 0x8000000000000000, 1
	V_RR sub, 0x8000000000000000, 0, 0x8000000000000000
	V_RR sub, 0xffffffff00000000, 0, 0x100000000

	T_RR 3, sll, 0x8000000000000000, 1, 63
	V_RR sll, 0x100000000, 1, 32                             /* 32 is a real shift in RV64 */
	V_RR sll, 2, 1, 65                                        /* only rs2[5:0] counts */
	V_RR sll, 0x8000000000000000, 1, -1
	V_RR sll, 0xffffffffffffffff, 0xffffffffffffffff, 0
	V_RR sll, 0xf0f0f0f0f0f0f0f0, 0x0f0f0f0f0f0f0f0f, 4

	T_RR 4, slt, 1, -1, 1
	V_RR slt, 0, 1, -1
	V_RR slt, 1, 0x8000000000000000, 0x7fffffffffffffff
	V_RR slt, 0, 0x7fffffffffffffff, 0x8000000000000000
	V_RR slt, 0, 7, 7

	T_RR 5, sltu, 0, -1, 1
	V_RR sltu, 1, 1, -1
	V_RR sltu, 1, 0, 1
	V_RR sltu, 0, 0x8000000000000000, 0x7fffffffffffffff
	V_RR sltu, 0, 7, 7

	T_RR 6, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f
	T_RR 7, or,  0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f
	T_RR 8, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f

	T_RR 9, srl, 1, 0x8000000000000000, 63
	V_RR srl, 0x80000000, 0x8000000000000000, 32
	V_RR srl, 0x7fffffffffffffff, -1, 1
	V_RR srl, 0x0123456789abcdef, 0x123456789abcdef0, 68      /* 68 & 63 = 4 */
	V_RR srl, 0x8000000000000000, 0x8000000000000000, 0

	T_RR 10, sra, -1, 0x8000000000000000, 63
	V_RR sra, 0xffffffff80000000, 0x8000000000000000, 32
	V_RR sra, 1, 0x7fffffffffffffff, 62
	V_RR sra, 0xc000000000000000, 0x8000000000000000, 0xffffffffffffffc1 /* & 63 = 1 */
	V_RR sra, 0x0123456789abcdef, 0x0123456789abcdef, 0

	/* ---------------- W register-register: low 32 bits, sign-extended ---------------- */
	T_RR 11, addw, 0xffffffff80000000, 0x7fffffff, 1
	V_RR addw, 0, 0xffffffff, 1
	V_RR addw, 15, 0x123456780000000a, 5                      /* upper input bits ignored */
	V_RR addw, 0xffffffff80000000, 0x80000000, 0
	V_RR addw, 0x7fffffff, 0x80000000, 0xffffffff

	T_RR 12, subw, -1, 0, 1
	V_RR subw, 0x7fffffff, 0x80000000, 1
	V_RR subw, 2, 0xffffffff00000003, 0x0000000100000001
	V_RR subw, 0xffffffff80000000, 0, 0x80000000

	T_RR 13, sllw, 0xffffffff80000000, 1, 31
	V_RR sllw, 1, 1, 32                                       /* only rs2[4:0] counts */
	V_RR sllw, 0x10, 0xffffffff00000001, 4
	V_RR sllw, 0xffffffff80000000, 3, 31
	V_RR sllw, 0x12345678, 0x12345678, 0xffffffffffffffe0

	T_RR 14, srlw, 1, 0x80000000, 31
	V_RR srlw, 0xffffffff80000000, 0x80000000, 0              /* shift by 0 still sign-extends */
	V_RR srlw, 0x7fffffff, 0xffffffff, 1
	V_RR srlw, 1, 0x1234567800000010, 4
	V_RR srlw, 0x40000000, 0x80000000, 33

	T_RR 15, sraw, -1, 0x80000000, 31
	V_RR sraw, 1, 0x7fffffff, 30
	V_RR sraw, 0xfffffffff8000000, 0x0000000080000000, 4
	V_RR sraw, 0x7fffffff, 0x000000017fffffff, 32
	V_RR sraw, 0xffffffffc0000000, 0x0000000180000000, 1

	/* ---------------- register-immediate ---------------- */
	TEST 16
	V_RI addi, 0, 1, -1
	V_RI addi, 2047, 0, 2047
	V_RI addi, -2048, 0, -2048
	V_RI addi, 0x8000000000000000, 0x7fffffffffffffff, 1
	V_RI addi, 0x00000000ffffffff, 0x0000000100000000, -1

	TEST 17
	V_RI slti, 1, -1, 0
	V_RI slti, 0, 0, -1
	V_RI slti, 0, 5, 5
	V_RI slti, 1, 0x8000000000000000, -2048
	V_RI slti, 0, 0x7fffffffffffffff, 2047

	TEST 18
	V_RI sltiu, 1, 0, 1                                       /* seqz */
	V_RI sltiu, 0, 5, 1
	V_RI sltiu, 1, 5, -1                                      /* imm sign-extends, then unsigned */
	V_RI sltiu, 0, -1, -1
	V_RI sltiu, 1, 0x7fffffffffffffff, -2048

	TEST 19
	V_RI xori, 0xedcba9876543210f, 0x123456789abcdef0, -1      /* not */
	V_RI xori, 0x0ff0, 0x0f0f, 0x0ff
	V_RI ori,  0xfffffffffffff800, 0, -2048
	V_RI ori,  0x123456789abcdfff, 0x123456789abcdef0, 0x7ff
	V_RI andi, 0xff00, 0xffff, -256
	V_RI andi, 0x7ff, -1, 2047
	V_RI andi, 0, 0x123456789abcd800, 0x7ff

	TEST 20
	V_RI slli, 0x8000000000000000, 1, 63
	V_RI slli, 0x100000000, 1, 32
	V_RI slli, 0x123456789abcdef0, 0x123456789abcdef0, 0
	V_RI srli, 1, -1, 63
	V_RI srli, 0xffffffff, -1, 32
	V_RI srli, 0x0123456789abcdef, 0x123456789abcdef0, 4
	V_RI srai, 0xffffffff80000000, 0x8000000000000000, 32
	V_RI srai, -1, -2, 1
	V_RI srai, -1, 0x8000000000000000, 63
	V_RI srai, 0x3fffffffffffffff, 0x7fffffffffffffff, 1

	TEST 21
	V_RI addiw, 0xffffffff80000000, 0x7fffffff, 1
	V_RI addiw, 5, 0xffffffff00000005, 0                       /* sext.w */
	V_RI addiw, -1, 0x00000000ffffffff, 0
	V_RI addiw, -2048, 0, -2048
	V_RI addiw, 0x7fffffff, 0x80000000, -1

	TEST 22
	V_RI slliw, 0xffffffff80000000, 1, 31
	V_RI slliw, 0xffffffffffff0000, -1, 16
	V_RI slliw, 1, 0x100000001, 0
	V_RI srliw, 0xffffffff80000000, 0x80000000, 0
	V_RI srliw, 1, 0xffffffff80000000, 31
	V_RI srliw, 0x7fffffff, -1, 1
	V_RI srliw, 0x00012345, 0xabcdef0012345678, 12
	V_RI sraiw, -1, 0x80000000, 31
	V_RI sraiw, 1, 0x40000000, 30
	V_RI sraiw, 0xffffffffc0000000, 0x180000000, 1
	V_RI sraiw, 0x12345678, 0xffffffff12345678, 0

	/* ---------------- lui / auipc ---------------- */
	TEST 23
	lui a0, 0x80000
	CHECK a0, 0xffffffff80000000                              /* sign-extended */
	lui a0, 0x7ffff
	CHECK a0, 0x7ffff000
	lui a0, 0xfffff
	CHECK a0, 0xfffffffffffff000
	lui a0, 0
	CHECK a0, 0

	TEST 24
1:
	auipc a0, 0
	la a1, 1b
	CHECK_REG a0, a1
2:
	auipc a0, 1
	la a1, 2b
	li a2, 0x1000
	add a1, a1, a2
	CHECK_REG a0, a1
3:
	auipc a0, 0x80000                                         /* offset -2 GiB */
	la a1, 3b
	li a2, 0xffffffff80000000
	add a1, a1, a2
	CHECK_REG a0, a1
4:
	auipc a0, 0xfffff                                         /* offset -4 KiB */
	la a1, 4b
	addi a1, a1, -2048
	addi a1, a1, -2048
	CHECK_REG a0, a1

	/* ---------------- branches ---------------- */
	TEST 25
	V_BR beq, 1, 5, 5
	V_BR beq, 0, 5, 6
	V_BR beq, 0, 0x100000005, 5                               /* all 64 bits compared */
	TEST 26
	V_BR bne, 0, 5, 5
	V_BR bne, 1, 5, 6
	V_BR bne, 1, 0x100000005, 5
	TEST 27
	V_BR blt, 1, -1, 1
	V_BR blt, 0, 1, -1
	V_BR blt, 0, 3, 3
	V_BR blt, 1, 0x8000000000000000, 0x7fffffffffffffff
	TEST 28
	V_BR bge, 0, -1, 1
	V_BR bge, 1, 1, -1
	V_BR bge, 1, 3, 3                                         /* equal: taken */
	V_BR bge, 1, 0x7fffffffffffffff, 0x8000000000000000
	TEST 29
	V_BR bltu, 0, -1, 1
	V_BR bltu, 1, 1, -1
	V_BR bltu, 0, 3, 3
	V_BR bltu, 0, 0x8000000000000000, 0x7fffffffffffffff
	TEST 30
	V_BR bgeu, 1, -1, 1
	V_BR bgeu, 0, 1, -1
	V_BR bgeu, 1, 3, 3
	V_BR bgeu, 1, 0x8000000000000000, 0x7fffffffffffffff

	TEST 31                                                   /* backward branch: a loop */
	li a0, 0
	li a1, 10
1:
	addi a0, a0, 3
	addi a1, a1, -1
	bnez a1, 1b
	CHECK a0, 30

	/* ---------------- jal / jalr ---------------- */
	TEST 32
	li ra, 0
	li a0, 0
	jal ra, 1f
2:
	li a0, 1                                                  /* skipped */
1:
	la a1, 2b
	CHECK_REG ra, a1                                          /* link = pc + 4 */
	CHECK a0, 0
	jal x0, 3f                                                /* j: no link */
	li a0, 1
3:
	CHECK a0, 0
	CHECK_REG ra, a1

	TEST 33
	la t0, 1f
	li a0, 0
	jalr t1, 0(t0)
2:
	li a0, 1
1:
	la a1, 2b
	CHECK_REG t1, a1
	CHECK a0, 0
	la t0, 3f + 1                                             /* bit 0 of the target is cleared */
	jalr t1, 0(t0)
	li a0, 1
3:
	CHECK a0, 0
	la t0, 4f + 16                                            /* negative offset */
	jalr t1, -16(t0)
	li a0, 1
4:
	CHECK a0, 0
	la t0, 5f - 2044                                          /* large positive offset */
	jalr t1, 2044(t0)
	li a0, 1
5:
	CHECK a0, 0
	la ra, 6f                                                 /* rd == rs1: target uses the old value */
	jalr ra, 0(ra)
7:
	li a0, 1
6:
	CHECK a0, 0
	la a1, 7b
	CHECK_REG ra, a1

	TEST 34                                                   /* call/ret through a subroutine */
	li a0, 5
	call double_a0
	call double_a0
	CHECK a0, 20

	/* ---------------- loads (pattern in ld_data) ---------------- */
	TEST 35
	V_LD lb, 0, 0xffffffffffffff80
	V_LD lb, 1, 0x7f
	V_LD lb, 2, -1
	V_LD lbu, 0, 0x80
	V_LD lbu, 2, 0xff
	TEST 36
	V_LD lh, 0, 0x7f80
	V_LD lh, 2, 0x01ff
	V_LD lh, 4, 0xffffffffffff8000
	V_LD lh, 6, 0x1234
	V_LD lhu, 4, 0x8000
	V_LD lhu, 14, 0x8122
	TEST 37
	V_LD lw, 0, 0x01ff7f80
	V_LD lw, 4, 0x12348000
	V_LD lw, 12, 0xffffffff81223344
	V_LD lwu, 12, 0x81223344
	V_LD lwu, 0, 0x01ff7f80
	TEST 38
	V_LD ld, 0, 0x1234800001ff7f80
	V_LD ld, 8, 0x8122334455667788
	TEST 39                                                   /* negative offsets */
	la a1, ld_data + 8
	lb a0, -8(a1)
	CHECK a0, 0xffffffffffffff80
	lw a0, -4(a1)
	CHECK a0, 0x12348000
	lhu a0, -2(a1)
	CHECK a0, 0x1234
	ld a0, -8(a1)
	CHECK a0, 0x1234800001ff7f80
	TEST 40                                                   /* rd == rs1 */
	la a0, ld_data
	ld a0, 8(a0)
	CHECK a0, 0x8122334455667788

	/* ---------------- stores: only the addressed bytes change ---------------- */
	TEST 41
	la a1, st_data
	li a2, 0x0123456789abcdef
	sd a2, 0(a1)
	sd zero, 8(a1)
	li a2, 0xfffffffffffff0aa                                 /* only the low byte is stored */
	sb a2, 1(a1)
	ld a0, 0(a1)
	CHECK a0, 0x0123456789abaaef
	li a2, 0xffffffffffff1234
	sh a2, 2(a1)
	ld a0, 0(a1)
	CHECK a0, 0x012345671234aaef
	li a2, 0xdeadbeef11223344
	sw a2, 4(a1)
	ld a0, 0(a1)
	CHECK a0, 0x112233441234aaef
	ld a0, 8(a1)
	CHECK a0, 0
	TEST 42
	la a1, st_data + 16
	li a2, -1
	sd a2, -8(a1)
	sb zero, -1(a1)                                          /* negative offsets */
	sh zero, -8(a1)
	ld a0, -8(a1)
	CHECK a0, 0x00ffffffffff0000
	sw zero, -12(a1)                                         /* bytes 4..7 */
	ld a0, -16(a1)
	CHECK a0, 0x000000001234aaef
	la a1, st_data
	lbu a0, 3(a1)
	CHECK a0, 0x12

	/* ---------------- x0 ---------------- */
	TEST 43
	addi x0, x0, 5
	mv a0, x0
	CHECK a0, 0
	li a1, 7
	add x0, a1, a1
	lui x0, 0x12345
	auipc x0, 1
	la a2, ld_data
	ld x0, 0(a2)                                             /* load is done, result dropped */
	jal x0, 1f
1:
	sltu a0, x0, a1                                          /* snez */
	CHECK a0, 1
	add a0, x0, x0
	CHECK a0, 0
	sub a0, x0, a1                                           /* neg */
	CHECK a0, -7

	/* ---------------- aliasing: rd == rs1 == rs2 ---------------- */
	TEST 44
	li a0, 21
	add a0, a0, a0
	CHECK a0, 42
	sub a0, a0, a0
	CHECK a0, 0
	li a0, 3
	sll a0, a0, a0
	CHECK a0, 24
	li a0, -5
	slt a0, a0, a0
	CHECK a0, 0

	/* ---------------- fence, fence.i and self-modifying code ---------------- */
	TEST 45
	fence
	fence rw, rw
	fence.i
	la a1, smc_buf
	li a2, 0x00008067                                        /* jalr x0, 0(ra) */
	sw a2, 4(a1)
	li a2, 0x00100513                                        /* addi a0, x0, 1 */
	sw a2, 0(a1)
	fence.i
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 1
	li a2, 0x00200513                                        /* addi a0, x0, 2 */
	sw a2, 0(a1)
	fence.i                                                  /* the new instruction must be seen */
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 2

TEST_END

double_a0:
	add a0, a0, a0
	ret

	.data
	.align 3
ld_data:
	.dword 0x1234800001ff7f80                                /* bytes 80 7f ff 01 00 80 34 12 */
	.dword 0x8122334455667788
st_data:
	.dword 0, 0
	.align 3
smc_buf:
	.word 0, 0
