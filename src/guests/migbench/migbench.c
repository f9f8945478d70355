/*
 * migbench.c - the live-migration benchmark guests (issue 7), one source built
 * six ways by build.sh:
 *
 *   idle.elf      busy-polls the timer; nothing but the program in memory
 *   ws.elf        writes a 192 MiB working set, then idles like idle.elf
 *   dirty1k.elf   writes the working set, then dirties 1,000 pages a second
 *   dirty10k.elf  ... 10,000 pages a second
 *   dirty50k.elf  ... 50,000 pages a second
 *   wfi.elf       sleeps in WFI on its CLINT timer between heartbeats
 *
 * Every 100 ms of guest time each prints a heartbeat line on the UART:
 *   migbench CASE hb N t MS dirtied D
 * (N counts up from 1, MS is mtime in milliseconds, D the pages dirtied so far).
 *
 * The working set (WS_PAGES pages at WS_BASE) holds a pattern that differs in
 * every page and every version of a page, and that LZ4 cannot shrink: word i of
 * page p at version v is base(p, i), except that one word per 64-byte line
 * (i % 8 == 0) is rotated by v.  Dirtying a page bumps its version (kept in
 * version[]) and rewrites those 64 words, so a migrated page can be recomputed
 * and compared word for word.  Each heartbeat checks a slice of VERIFY_SLICE
 * pages in turn; a 'v' on the UART checks every page and answers
 *   migbench verify ok pages P        or        migbench FAIL page P word W
 * The dirtying rate is paced by mtime (10 MHz on the 'virt' board); time owed
 * beyond 100 ms is forgiven, so a long pause (a migration's downtime) is not
 * followed by a burst.
 *
 * Runs the same on Tern and on qemu-system-riscv64 -M virt -bios none -m 256M.
 */
#include <stdint.h>

#ifndef WORKING_SET
#define WORKING_SET 0
#endif
#ifndef DIRTY_RATE
#define DIRTY_RATE 0 /* pages per second */
#endif
#ifndef USE_WFI
#define USE_WFI 0
#endif

#define UART_BASE 0x10000000UL
#define UART_RBR 0
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define CLINT_MTIMECMP 0x2004000UL
#define CLINT_MTIME 0x200BFF8UL
#define TIMEBASE 10000000ULL /* mtime ticks per second */

#define PAGE_WORDS 512
#define WS_BASE 0x82000000UL /* RAM + 32 MiB: above the program, below the device tree */
#define WS_PAGES (192u * 256u) /* 192 MiB of 4 KiB pages */
#define HEARTBEAT (TIMEBASE / 10)
#define VERIFY_SLICE 64u
#define STRIDE 7919u /* prime, coprime with WS_PAGES: dirtied pages spread over the set */

extern char __stack_top[];

static uint32_t version[WORKING_SET ? WS_PAGES : 1];

/* ---------------- platform ---------------- */

static void uart_putc(char c)
{
	volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
	while (!(uart[UART_LSR] & UART_LSR_THRE))
		;
	uart[UART_THR] = (uint8_t)c;
}

static int uart_getc(void)
{
	volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
	return (uart[UART_LSR] & UART_LSR_DR) ? uart[UART_RBR] : -1;
}

static void print(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static void print_u64(uint64_t v)
{
	char buf[21];
	int n = 0;
	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		uart_putc(buf[--n]);
}

static void print_hex(uint64_t v)
{
	print("0x");
	for (int i = 60; i >= 0; i -= 4)
		uart_putc("0123456789abcdef"[(v >> i) & 15]);
}

static inline uint64_t mtime(void)
{
	return *(volatile uint64_t *)CLINT_MTIME;
}

static const char *case_name(void)
{
	if (USE_WFI)
		return "wfi";
	if (DIRTY_RATE == 1000)
		return "1k";
	if (DIRTY_RATE == 10000)
		return "10k";
	if (DIRTY_RATE == 50000)
		return "50k";
	return WORKING_SET ? "ws" : "idle";
}

/* ---------------- the working set ---------------- */

static inline uint64_t *page_at(uint32_t p)
{
	return (uint64_t *)(WS_BASE + (uint64_t)p * 4096);
}

/* An arithmetic progression with large odd steps: never zero in a whole page,
 * distinct per page, and without the repeats LZ4 needs. */
static inline uint64_t base_word(uint32_t p, uint32_t i)
{
	return 0x9E3779B97F4A7C15ULL * (p + 1) + 0xD1B54A32D192ED03ULL * i;
}

static inline uint64_t line_word(uint32_t p, uint32_t i, uint32_t v)
{
	uint64_t b = base_word(p, i);
	uint32_t r = v & 63;
	return r ? (b << r) | (b >> (64 - r)) : b;
}

static void write_page(uint32_t p)
{
	uint64_t *w = page_at(p);
	for (uint32_t i = 0; i < PAGE_WORDS; i++)
		w[i] = base_word(p, i);
}

static void dirty_page(uint32_t p)
{
	uint64_t *w = page_at(p);
	uint32_t v = ++version[p];
	if ((v & 63) == 0)
		v = ++version[p]; /* a rotation by 64 would leave the words as they were */
	for (uint32_t i = 0; i < PAGE_WORDS; i += 8)
		w[i] = line_word(p, i, v);
}

/* Returns the first bad word's index, or -1 when the page is intact. */
static int check_page(uint32_t p)
{
	const uint64_t *w = page_at(p);
	uint32_t v = version[p];
	for (uint32_t i = 0; i < PAGE_WORDS; i++) {
		uint64_t want = (i % 8 == 0) ? line_word(p, i, v) : base_word(p, i);
		if (w[i] != want)
			return (int)i;
	}
	return -1;
}

static int verify(uint32_t first, uint32_t count)
{
	for (uint32_t k = 0; k < count; k++) {
		uint32_t p = (first + k) % WS_PAGES;
		int bad = check_page(p);
		if (bad >= 0) {
			/* The details tell a lost page (an older version's rotation) from a stray write. */
			uint32_t i = (uint32_t)bad;
			print("migbench FAIL page ");
			print_u64(p);
			print(" word ");
			print_u64(i);
			print(" version ");
			print_u64(version[p]);
			print(" found ");
			print_hex(page_at(p)[i]);
			print(" want ");
			print_hex(i % 8 == 0 ? line_word(p, i, version[p]) : base_word(p, i));
			print("\n");
			return 0;
		}
	}
	return 1;
}

/* ---------------- main loop ---------------- */

int main(void)
{
	const char *name = case_name();
	if ((uintptr_t)__stack_top > WS_BASE) {
		print("migbench FAIL the program overlaps the working set\n");
		return 1;
	}
	print("migbench ");
	print(name);
	print(" start\n");
	if (WORKING_SET) {
		for (uint32_t p = 0; p < WS_PAGES; p++)
			write_page(p);
	}
	print("migbench ");
	print(name);
	print(" ready pages ");
	print_u64(WORKING_SET ? WS_PAGES : 0);
	print("\n");

	uint64_t beat = 0, dirtied = 0, credit = 0;
	uint32_t next_dirty = 0, next_check = 0;
	uint64_t last = mtime();
	uint64_t next_beat = last + HEARTBEAT;
	for (;;) {
		uint64_t now = mtime();
		if (DIRTY_RATE) {
			/* credit counts pages owed, in units of 1/TIMEBASE of a page */
			credit += (now - last) * DIRTY_RATE;
			if (credit > (uint64_t)DIRTY_RATE * TIMEBASE / 10)
				credit = (uint64_t)DIRTY_RATE * TIMEBASE / 10;
			while (credit >= TIMEBASE) {
				dirty_page(next_dirty);
				next_dirty = (next_dirty + STRIDE) % WS_PAGES;
				credit -= TIMEBASE;
				dirtied++;
			}
		}
		last = now;
		if (now >= next_beat) {
			beat++;
			next_beat += HEARTBEAT;
			if (next_beat <= now) /* fell behind (paused): no burst of beats */
				next_beat = now + HEARTBEAT;
			if (WORKING_SET) {
				if (!verify(next_check, VERIFY_SLICE))
					return 2;
				next_check = (next_check + VERIFY_SLICE) % WS_PAGES;
			}
			print("migbench ");
			print(name);
			print(" hb ");
			print_u64(beat);
			print(" t ");
			print_u64(now / (TIMEBASE / 1000));
			print(" dirtied ");
			print_u64(dirtied);
			print("\n");
		}
		int c = uart_getc();
		if (c == 'v') {
			if (WORKING_SET && !verify(0, WS_PAGES))
				return 2;
			print("migbench verify ok pages ");
			print_u64(WORKING_SET ? WS_PAGES : 0);
			print("\n");
		}
		if (USE_WFI) {
			/* Sleep until the next heartbeat: MTIE enabled, global MIE off, so WFI
			 * wakes on the timer without taking a trap. */
			*(volatile uint64_t *)CLINT_MTIMECMP = next_beat;
			__asm__ volatile("csrs mie, %0" ::"r"(1UL << 7));
			while (mtime() < next_beat)
				__asm__ volatile("wfi");
		}
	}
}
