/*
 * vm.S - Sv39 virtual memory.
 *
 * M-mode builds page tables, then S-mode (and U-mode) code runs translated:
 * 4 KiB pages, 2 MiB megapages and 1 GiB gigapages; hardware A/D updates;
 * page faults (fetch 12, load 13, store 15, tval = faulting address) for an
 * invalid PTE, W without R, U pages from S without SUM, S pages from U,
 * execute-only pages with and without MXR, misaligned superpages, a non-leaf
 * PTE at level 0 and a non-canonical address; sfence.vma in all four operand
 * forms after changing a PTE; misaligned accesses and a 32-bit instruction
 * across two discontiguous pages (and one whose second half faults); MPRV
 * translating M-mode loads and stores; page faults delegated to S (stval).
 *
 * Virtual layout (everything else unmapped):
 *   0x80000000 + 2M   identity, 4 KiB pages (S RWX; .user_text pages U RX)
 *   0x00200000        2 MiB megapage  -> 0x80000000
 *   0x00400000 + n*4K the test pages of l0_test (see build_tables)
 *   0x00600000        2 MiB leaf with a misaligned PPN
 *   0x00800000        level-1 pointer to a table whose entry is a pointer again
 *   0x40000000        1 GiB gigapage  -> 0x80000000
 *   0xc0000000        1 GiB leaf with a misaligned PPN
 */
#include "test.h"

#define LEAF_S_RW  (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define LEAF_S_RWX (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)

#define TP(n)      (0x400000 + (n) * 0x1000)   /* virtual address of test page n */
#define MEGA_VA    0x200000
#define GIGA_VA    0x40000000
#define BADMEGA_VA 0x600000
#define NONLEAF_VA 0x800000
#define BADGIGA_VA 0xc0000000

/* table[index] <- PTE for the physical address of symbol, with flags */
.macro PTE_SYM table, index, sym, flags
	la t0, \sym
	srli t0, t0, 12
	slli t0, t0, 10
	ori t0, t0, \flags
	la t1, \table
	li t2, (\index) * 8
	add t1, t1, t2
	sd t0, 0(t1)
.endm

/* table[index] <- PTE for physical address pa (a constant), with flags */
.macro PTE_PA table, index, pa, flags
	li t0, ((\pa) >> 12) << 10 | (\flags)
	la t1, \table
	li t2, (\index) * 8
	add t1, t1, t2
	sd t0, 0(t1)
.endm

/* reg <- the PTE of test page n */
.macro LOAD_TEST_PTE reg, n
	la t0, l0_test
	ld \reg, (\n) * 8(t0)
.endm

/* Expect insn (which should use 0(a1)) on a1 = addr to fault with cause, tval = addr */
.macro EXPECT_FAULT cause, addr, insn:vararg
	li a1, \addr
	EXPECT_TRAP \cause, \insn
	CHECK_TF TF_TVAL, \addr
.endm

/* From M: run a .user_text routine in U; it ends in ecall or a fault. */
.macro IN_USER routine
	ARM_HOST .Lu\@
	ENTER_MODE PRV_U, \routine
.Lu\@:
.endm

/* l0_test[n] <- PTE of symbol (S, RW); flags variant for arbitrary bits */
.macro SET_TEST_PTE n, sym
	SET_TEST_PTE_FLAGS \n, \sym, LEAF_S_RW
.endm
.macro SET_TEST_PTE_FLAGS n, sym, flags
	la t0, \sym
	srli t0, t0, 12
	slli t0, t0, 10
	ori t0, t0, \flags
	la t1, l0_test
	sd t0, (\n) * 8(t1)
.endm

TEST_BEGIN
	call build_tables
	la a0, root_table
	srli a0, a0, 12
	li a1, SATP_SV39
	or a0, a0, a1
	csrw satp, a0
	csrr a1, satp
	CHECK_REG a1, a0                         /* Sv39 is supported */
	sfence.vma

	/* ================= S-mode, translated ================= */
	ENTER_MODE PRV_S, s_tests
	.text
s_tests:
	TEST 1                                   /* 4 KiB identity pages run this code; a 4 KiB test page */
	li a1, TP(0)
	ld a0, 0(a1)
	CHECK a0, 0x0123456789abcdef
	li a2, 0x5555
	sd a2, 8(a1)
	la a3, page_p0
	ld a0, 8(a3)
	CHECK a0, 0x5555

	TEST 2                                   /* 2 MiB megapage */
	la a3, mapped_word
	li a4, 0x80000000
	sub a3, a3, a4                           /* offset into RAM */
	li a1, MEGA_VA
	add a1, a1, a3
	ld a0, 0(a1)
	CHECK a0, 0xfeedfacecafebeef
	li a2, 0x77
	sd a2, 0(a1)
	la a5, mapped_word
	ld a0, 0(a5)
	CHECK a0, 0x77

	TEST 3                                   /* 1 GiB gigapage */
	li a1, GIGA_VA
	add a1, a1, a3
	ld a0, 0(a1)
	CHECK a0, 0x77
	li a2, 0x88
	sd a2, 0(a1)
	ld a0, 0(a5)
	CHECK a0, 0x88
	li a1, GIGA_VA                           /* execute through the gigapage alias */
	la a2, vm_code_page
	li a4, 0x80000000
	sub a2, a2, a4
	add a1, a1, a2
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 0x42

	TEST 4                                   /* invalid PTE */
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(1), ld a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(1) + 16, sd a0, 0(a1)
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(1) + 5, lbu a0, 0(a1)
	li a1, TP(1)
	ARM 1f
	jalr ra, 0(a1)
1:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, TP(1)
	CHECK_TF TF_EPC, TP(1)

	TEST 5                                   /* W without R is reserved: faults for any access */
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(2), ld a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(2), sd a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(2), amoadd.d a0, a0, (a1)

	TEST 6                                   /* a load fault leaves rd alone */
	li a0, 0x1234
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(1), ld a0, 0(a1)
	CHECK a0, 0x1234

	TEST 7                                   /* read-only page */
	li a1, TP(7)
	ld a0, 0(a1)
	CHECK a0, 0x0123456789abcdef
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(7) + 8, sd a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(7), amoswap.d a0, a0, (a1)

	TEST 8                                   /* U page from S: only with SUM, never executable */
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(3), ld a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(3), sd a0, 0(a1)
	li a0, MSTATUS_SUM
	csrs sstatus, a0
	li a1, TP(3)
	ld a0, 0(a1)
	CHECK a0, 0xa5a5a5a5a5a5a5a5
	li a2, 0x99
	sd a2, 8(a1)
	ld a0, 8(a1)
	CHECK a0, 0x99
	li a1, TP(13)                            /* U code: S may not fetch it, SUM or not */
	ARM 1f
	jalr ra, 0(a1)
1:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, TP(13)
	li a0, MSTATUS_SUM
	csrc sstatus, a0

	TEST 9                                   /* execute-only page: fetch yes, load only with MXR */
	li a1, TP(4)
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 0x42
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(4), lw a0, 0(a1)
	li a0, MSTATUS_MXR
	csrs sstatus, a0
	li a1, TP(4)
	lw a0, 0(a1)
	CHECK a0, 0x04200513                     /* li a0, 0x42 */
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(4), sw a0, 0(a1) /* MXR does not grant writes */
	li a0, MSTATUS_MXR
	csrc sstatus, a0

	TEST 10                                  /* fetch needs X */
	li a1, TP(8)
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 0x42
	li a1, TP(9)
	ld a0, 0(a1)                             /* readable... */
	ARM 1f
	jalr ra, 0(a1)                           /* ...but not executable */
1:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, TP(9)
	CHECK_TF TF_EPC, TP(9)

	TEST 11                                  /* hardware A bit: any access sets it, D untouched */
	LOAD_TEST_PTE a0, 5
	andi a0, a0, PTE_A | PTE_D
	CHECK a0, 0
	li a1, TP(5)
	ld a0, 0(a1)
	CHECK a0, 0x0a0a0a0a
	LOAD_TEST_PTE a0, 5
	andi a0, a0, PTE_A | PTE_D
	CHECK a0, PTE_A
	TEST 12                                  /* hardware D bit: a store sets it */
	LOAD_TEST_PTE a0, 6
	andi a0, a0, PTE_A | PTE_D
	CHECK a0, PTE_A
	li a1, TP(6)
	li a2, 0xd1d1
	sd a2, 0(a1)
	LOAD_TEST_PTE a0, 6
	andi a0, a0, PTE_A | PTE_D
	CHECK a0, PTE_A | PTE_D
	la a1, page_ad2
	ld a0, 0(a1)
	CHECK a0, 0xd1d1
	li a1, TP(5)                             /* a store to an A=0 page sets both */
	sd a2, 8(a1)
	LOAD_TEST_PTE a0, 5
	andi a0, a0, PTE_A | PTE_D
	CHECK a0, PTE_A | PTE_D

	TEST 13                                  /* misaligned superpages and a level-0 pointer */
	EXPECT_FAULT CAUSE_LOAD_PAGE, BADMEGA_VA, ld a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, BADMEGA_VA + 64, sd a0, 0(a1)
	EXPECT_FAULT CAUSE_LOAD_PAGE, BADGIGA_VA, ld a0, 0(a1)
	EXPECT_FAULT CAUSE_LOAD_PAGE, NONLEAF_VA, ld a0, 0(a1)
	li a1, BADMEGA_VA
	ARM 1f
	jalr ra, 0(a1)
1:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, BADMEGA_VA

	TEST 14                                  /* bits 63:39 must equal bit 38 */
	EXPECT_FAULT CAUSE_LOAD_PAGE, 0x0000004000000000, ld a0, 0(a1)
	EXPECT_FAULT CAUSE_STORE_PAGE, 0x8000000000400000, sd a0, 0(a1)

	TEST 15                                  /* sfence.vma, all four forms, after a PTE change */
	li a1, TP(12)
	li a2, 0                                 /* ASID 0 */
	ld a0, 0(a1)
	CHECK a0, 0x1111                         /* maps sf_x, translation now cached */
	SET_TEST_PTE 12, sf_y
	sfence.vma
	ld a0, 0(a1)
	CHECK a0, 0x2222
	SET_TEST_PTE 12, sf_x
	sfence.vma a1
	ld a0, 0(a1)
	CHECK a0, 0x1111
	SET_TEST_PTE 12, sf_y
	sfence.vma x0, a2
	ld a0, 0(a1)
	CHECK a0, 0x2222
	SET_TEST_PTE 12, sf_x
	sfence.vma a1, a2
	ld a0, 0(a1)
	CHECK a0, 0x1111
	SET_TEST_PTE_FLAGS 12, sf_x, 0           /* invalidate: the next access faults */
	sfence.vma a1
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(12), ld a0, 0(a1)
	SET_TEST_PTE 12, sf_x
	sfence.vma a1

	TEST 16                                  /* misaligned accesses across discontiguous pages */
	li a1, TP(11)                            /* TP(10) -> page_b, TP(11) -> page_a */
	ld a0, -4(a1)
	CHECK a0, 0xa3a2a1a0b7b6b5b4
	lw a0, -2(a1)
	CHECK a0, 0xffffffffa1a0b7b6
	li a2, 0x1122334455667788
	sd a2, -3(a1)
	la a3, page_b + 4096
	lbu a0, -1(a3)
	CHECK a0, 0x66
	lbu a0, -3(a3)
	CHECK a0, 0x88
	la a3, page_a
	lw a0, 0(a3)
	CHECK a0, 0x22334455
	la a3, trap_frame
	sd zero, TF_COUNT(a3)
	li a1, TP(11)
	ld a0, -8(a1)                            /* aligned neighbours still fine */
	CHECK_TF TF_COUNT, 0

	TEST 17                                  /* a 32-bit instruction split over two pages */
	li a1, TP(14) + 4092                     /* c.nop, then the split addi a0, zero, 0x123 */
	li a0, 0
	jalr ra, 0(a1)
	CHECK a0, 0x123
	TEST 18                                  /* ... whose second page faults: tval = second page */
	li a1, TP(16) + 4092
	li a0, 0
	ARM 1f
	jalr ra, 0(a1)
1:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_EPC, TP(16) + 4094           /* epc: the instruction */
	CHECK_TF TF_TVAL, TP(17)                 /* tval: the part that faulted */
	CHECK a0, 0

	ARM_HOST s_done                          /* back to M */
	ecall

	/* ================= back in M ================= */
s_done:
	CHECK_CAUSE CAUSE_ECALL_S

	TEST 19                                  /* U: its own pages yes, S pages no */
	li a1, TP(3)
	IN_USER user_load
	CHECK_CAUSE CAUSE_ECALL_U
	CHECK a0, 0xa5a5a5a5a5a5a5a5
	li a1, TP(0)
	IN_USER user_load
	CHECK_CAUSE CAUSE_LOAD_PAGE
	CHECK_TF TF_TVAL, TP(0)
	li a1, TP(8)                             /* S code page */
	IN_USER user_jump
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, TP(8)
	li a1, TP(13)                            /* U code page */
	li a0, 0
	IN_USER user_jump
	CHECK_CAUSE CAUSE_ECALL_U
	CHECK a0, 0x42
	li a1, TP(3)
	IN_USER user_store
	CHECK_CAUSE CAUSE_ECALL_U
	la a2, page_user
	ld a0, 8(a2)
	CHECK a0, TP(3)
	li a1, TP(7)                             /* S read-only page: U store faults as a store */
	IN_USER user_store
	CHECK_CAUSE CAUSE_STORE_PAGE
	CHECK_TF TF_TVAL, TP(7) + 8

	TEST 20                                  /* MPRV: M-mode loads and stores use MPP's translation */
	li a1, TP(0)
	li a0, MSTATUS_MPRV | (PRV_S << 11)
	csrs mstatus, a0
	ld a0, 0(a1)
	sd a0, 16(a1)
	li t0, MSTATUS_MPRV | MSTATUS_MPP
	csrc mstatus, t0
	CHECK a0, 0x0123456789abcdef
	la a3, page_p0
	ld a0, 16(a3)
	CHECK a0, 0x0123456789abcdef
	TEST 21                                  /* ... including faults, which are taken in M */
	ARM 1f                                   /* arm first: the harness data is not U-accessible */
	li a0, MSTATUS_MPRV | (PRV_S << 11)
	csrs mstatus, a0
	li a1, TP(1)
2:
	ld a0, 0(a1)
1:
	li t0, MSTATUS_MPRV | MSTATUS_MPP        /* (MPP is M after the trap anyway) */
	csrc mstatus, t0
	CHECK_CAUSE CAUSE_LOAD_PAGE
	CHECK_TF TF_TVAL, TP(1)
	CHECK_TF_ADDR TF_EPC, 2b
	TEST 22                                  /* MPP = U: U permissions apply */
	li a0, MSTATUS_MPRV | (PRV_U << 11)
	csrs mstatus, a0
	li a1, TP(3)
	ld a0, 0(a1)
	li t0, MSTATUS_MPRV | MSTATUS_MPP
	csrc mstatus, t0
	CHECK a0, 0xa5a5a5a5a5a5a5a5
	ARM 1f
	li a0, MSTATUS_MPRV | (PRV_U << 11)
	csrs mstatus, a0
	li a1, TP(0)
	ld a0, 0(a1)
1:
	li t0, MSTATUS_MPRV | MSTATUS_MPP
	csrc mstatus, t0
	CHECK_CAUSE CAUSE_LOAD_PAGE
	TEST 23                                  /* page faults delegated to S report through stval */
	li a0, (1 << CAUSE_FETCH_PAGE) | (1 << CAUSE_LOAD_PAGE) | (1 << CAUSE_STORE_PAGE)
	csrw medeleg, a0
	ENTER_MODE PRV_S, 1f
1:
	EXPECT_FAULT CAUSE_LOAD_PAGE, TP(1) + 8, ld a0, 0(a1)
	CHECK_TF TF_LEVEL, 1
	EXPECT_FAULT CAUSE_STORE_PAGE, TP(7), sd a0, 0(a1)
	CHECK_TF TF_LEVEL, 1
	li a1, TP(9)
	ARM 2f
	jalr ra, 0(a1)
2:
	CHECK_CAUSE CAUSE_FETCH_PAGE
	CHECK_TF TF_TVAL, TP(9)
	CHECK_TF TF_LEVEL, 1
	ARM_HOST 3f
	ecall
3:
	CHECK_CAUSE CAUSE_ECALL_S
	csrw medeleg, zero
	TEST 24                                  /* MPRV = 0: M-mode is untranslated */
	la a1, page_p0
	ld a0, 0(a1)
	CHECK a0, 0x0123456789abcdef
	csrw satp, zero
	sfence.vma
TEST_END

	/* ---- page table construction (M-mode, physical addresses) ---- */
build_tables:
	la t0, tables_start                      /* all tables start out invalid */
	la t1, tables_end
1:
	sd zero, 0(t0)
	addi t0, t0, 8
	bltu t0, t1, 1b
	/* root: 0 -> l1_test, 1 -> gigapage, 2 -> l1_ram, 3 -> misaligned gigapage */
	PTE_SYM root_table, 0, l1_test, PTE_V
	PTE_PA  root_table, 1, 0x80000000, LEAF_S_RWX
	PTE_SYM root_table, 2, l1_ram, PTE_V
	PTE_PA  root_table, 3, 0x80200000, LEAF_S_RW   /* PPN[1] != 0 */
	/* identity map of the first 2 MiB of RAM in 4 KiB pages */
	PTE_SYM l1_ram, 0, l0_ram, PTE_V
	la t0, l0_ram
	li t1, (0x80000000 >> 12) << 10 | LEAF_S_RWX
	li t2, 512
	li t3, 1 << 10                           /* one page in PTE units */
2:
	sd t1, 0(t0)
	add t1, t1, t3
	addi t0, t0, 8
	addi t2, t2, -1
	bnez t2, 2b
	/* the user code page: U, read + execute */
	la t0, user_text_page
	li t1, 0x80000000
	sub t0, t0, t1
	srli t0, t0, 12
	slli t0, t0, 3
	la t1, l0_ram
	add t1, t1, t0
	la t0, user_text_page
	srli t0, t0, 12
	slli t0, t0, 10
	ori t0, t0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A
	sd t0, 0(t1)
	/* l1_test: megapage, test pages, misaligned megapage, pointer chain */
	PTE_PA  l1_test, 1, 0x80000000, LEAF_S_RW
	PTE_SYM l1_test, 2, l0_test, PTE_V
	PTE_PA  l1_test, 3, 0x80001000, LEAF_S_RWX     /* PPN[0] != 0 */
	PTE_SYM l1_test, 4, l0_chain, PTE_V
	PTE_SYM l0_chain, 0, l0_test, PTE_V            /* a pointer at level 0 */
	/* the test pages */
	PTE_SYM l0_test, 0, page_p0, LEAF_S_RW
	/* 1: invalid */
	PTE_SYM l0_test, 2, page_p0, PTE_V | PTE_W | PTE_A | PTE_D
	PTE_SYM l0_test, 3, page_user, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D
	PTE_SYM l0_test, 4, vm_code_page, PTE_V | PTE_X | PTE_A
	PTE_SYM l0_test, 5, page_ad1, PTE_V | PTE_R | PTE_W
	PTE_SYM l0_test, 6, page_ad2, PTE_V | PTE_R | PTE_W | PTE_A
	PTE_SYM l0_test, 7, page_p0, PTE_V | PTE_R | PTE_A
	PTE_SYM l0_test, 8, vm_code_page, PTE_V | PTE_R | PTE_X | PTE_A
	PTE_SYM l0_test, 9, vm_code_page, PTE_V | PTE_R | PTE_A
	PTE_SYM l0_test, 10, page_b, LEAF_S_RW
	PTE_SYM l0_test, 11, page_a, LEAF_S_RW
	PTE_SYM l0_test, 12, sf_x, LEAF_S_RW
	PTE_SYM l0_test, 13, vm_code_page, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A
	PTE_SYM l0_test, 14, split_lo, PTE_V | PTE_R | PTE_X | PTE_A
	PTE_SYM l0_test, 15, split_hi, PTE_V | PTE_R | PTE_X | PTE_A
	PTE_SYM l0_test, 16, split_lo, PTE_V | PTE_R | PTE_X | PTE_A
	/* 17: invalid */
	/* data patterns */
	la t0, page_p0
	li t1, 0x0123456789abcdef
	sd t1, 0(t0)
	la t0, page_user
	li t1, 0xa5a5a5a5a5a5a5a5
	sd t1, 0(t0)
	la t0, page_ad1
	li t1, 0x0a0a0a0a
	sd t1, 0(t0)
	la t0, sf_x
	li t1, 0x1111
	sd t1, 0(t0)
	la t0, sf_y
	li t1, 0x2222
	sd t1, 0(t0)
	la t0, page_b + 4096
	li t1, 0xb7b6b5b4b3b2b1b0
	sd t1, -8(t0)
	la t0, page_a
	li t1, 0xa7a6a5a4a3a2a1a0
	sd t1, 0(t0)
	la t0, mapped_word
	li t1, 0xfeedfacecafebeef
	sd t1, 0(t0)
	ret

	/* ---- code pages ---- */
	.balign 4096
vm_code_page:                              /* mapped at several test addresses */
	li a0, 0x42
	ret

	/* A 32-bit "addi a0, zero, 0x123" (0x12300513) split over two pages:
		 split_lo ends with c.nop + the low half, split_hi starts with the high
		 half.  split_hi comes first in physical memory so that fetching the two
		 halves physically contiguously would find the wrong bytes. */
	.balign 4096
split_hi:
	.2byte 0x1230
	.2byte 0x8067, 0x0000                    /* ret */
	.balign 4096
split_lo:
	.skip 4092
	.2byte 0x0001                            /* c.nop */
	.2byte 0x0513
	.balign 4096
	.word 0, 0                               /* what physically follows split_lo */

	/* ---- U-mode code (own page, mapped U) ---- */
	.section .user_text, "ax", @progbits
	.balign 4096
user_text_page:
user_load:
	ld a0, 0(a1)
	ecall
user_store:
	sd a1, 8(a1)
	ecall
user_jump:
	jalr ra, 0(a1)
	ecall

	.data
	.balign 4096
tables_start:
root_table: .skip 4096
l1_ram:     .skip 4096
l0_ram:     .skip 4096
l1_test:    .skip 4096
l0_test:    .skip 4096
l0_chain:   .skip 4096
tables_end:
page_p0:    .skip 4096
page_user:  .skip 4096
page_ad1:   .skip 4096
page_ad2:   .skip 4096
page_a:     .skip 4096
page_b:     .skip 4096
sf_x:       .skip 4096
sf_y:       .skip 4096
mapped_word: .dword 0
