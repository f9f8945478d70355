/*
 * fail.S - an ISA program that deliberately fails test 3, so the test runner
 * itself is tested: Tern must report exit code 3 (tohost = 7), QEMU exits 3.
 */
#include "test.h"

TEST_BEGIN
	TEST 1
	li a0, 1
	CHECK a0, 1
	TEST 2
	li a0, 2
	CHECK a0, 2
	TEST 3
	li a0, 3
	CHECK a0, 4                  /* wrong on purpose */
	TEST 4
TEST_END
