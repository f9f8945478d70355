/*
 * cpubench.c - a CPU-bound bare-metal benchmark guest for Tern.
 *
 * A CoreMark-like mix of integer work, repeated a fixed number of times:
 *   - linked-list processing (find, reverse, merge sort by value),
 *   - a small integer matrix multiply-accumulate,
 *   - a state machine that classifies tokens in a byte string,
 *   - CRC-16 over everything produced, which becomes the checksum.
 * The checksum is compared against the value recorded when the program was
 * written, so the run also tells whether the CPU computed correctly.
 * Output goes to the NS16550A UART; the exit code goes to the finisher.
 *
 * Freestanding: no libc, no OS, M-mode only.  Total work is about three
 * billion instructions (measured with minstret under QEMU -icount).
 */
#include <stddef.h>
#include <stdint.h>

#ifndef ITERATIONS
#define ITERATIONS 48000
#endif
/* CRC of the whole run; a mismatch means something computed wrongly. */
#define EXPECTED_CHECKSUM 0x14c6u

/* ---------------- platform ---------------- */

#define UART_BASE 0x10000000UL
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20

static void uart_putc(char c)
{
	volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
	while (!(uart[UART_LSR] & UART_LSR_THRE))
		;
	uart[UART_THR] = (uint8_t)c;
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

static void print_hex(uint64_t v, int digits)
{
	print("0x");
	for (int i = digits - 1; i >= 0; i--)
		uart_putc("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

static inline uint64_t read_instret(void)
{
	uint64_t v;
	__asm__ volatile("csrr %0, minstret" : "=r"(v));
	return v;
}

static inline uint64_t read_cycle(void)
{
	uint64_t v;
	__asm__ volatile("csrr %0, mcycle" : "=r"(v));
	return v;
}

/* The compiler may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

/* ---------------- helpers ---------------- */

static uint32_t rng_state;

static uint32_t rng(void)
{
	/* 32-bit LCG (Numerical Recipes constants); the high bits are the good ones. */
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

/* CRC-16/ARC (reflected polynomial 0xA001), bit at a time: branchy on purpose. */
static uint16_t crc16_byte(uint8_t data, uint16_t crc)
{
	crc ^= data;
	for (int i = 0; i < 8; i++)
		crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001u) : (uint16_t)(crc >> 1);
	return crc;
}

static uint16_t crc16_u32(uint32_t v, uint16_t crc)
{
	for (int i = 0; i < 4; i++)
		crc = crc16_byte((uint8_t)(v >> (8 * i)), crc);
	return crc;
}

/* ---------------- linked list ---------------- */

#define LIST_N 160

struct node {
	struct node *next;
	int32_t key;
	int32_t value;
};

static struct node nodes[LIST_N];

static struct node *list_build(void)
{
	static uint16_t order[LIST_N];
	for (int i = 0; i < LIST_N; i++)
		order[i] = (uint16_t)i;
	for (int i = LIST_N - 1; i > 0; i--) { /* shuffle so the walk jumps around memory */
		int j = (int)(rng() % (uint32_t)(i + 1));
		uint16_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < LIST_N; i++) {
		struct node *n = &nodes[order[i]];
		n->key = i;
		n->value = (int32_t)(rng() & 0xffff) - 0x8000;
		n->next = (i + 1 < LIST_N) ? &nodes[order[i + 1]] : NULL;
	}
	return &nodes[order[0]];
}

static struct node *list_reverse(struct node *head)
{
	struct node *prev = NULL;
	while (head) {
		struct node *next = head->next;
		head->next = prev;
		prev = head;
		head = next;
	}
	return prev;
}

static int list_find(const struct node *head, int32_t key)
{
	int pos = 0;
	for (; head; head = head->next, pos++)
		if (head->key == key)
			return pos;
	return -1;
}

/* Bottom-up merge sort by (value, key): O(n log n) pointer chasing. */
static struct node *list_sort(struct node *head)
{
	for (int width = 1;; width *= 2) {
		struct node *p = head, *tail = NULL;
		int merges = 0;
		head = NULL;
		while (p) {
			merges++;
			struct node *q = p;
			int psize = 0;
			for (int i = 0; i < width && q; i++) {
				psize++;
				q = q->next;
			}
			int qsize = width;
			while (psize > 0 || (qsize > 0 && q)) {
				struct node *e;
				if (psize == 0) {
					e = q; q = q->next; qsize--;
				} else if (qsize == 0 || !q) {
					e = p; p = p->next; psize--;
				} else if (p->value < q->value || (p->value == q->value && p->key <= q->key)) {
					e = p; p = p->next; psize--;
				} else {
					e = q; q = q->next; qsize--;
				}
				if (tail)
					tail->next = e;
				else
					head = e;
				tail = e;
			}
			p = q;
		}
		tail->next = NULL;
		if (merges <= 1)
			return head;
	}
}

static uint32_t list_work(struct node **headp, uint32_t iter)
{
	struct node *head = *headp;
	uint32_t acc = 0;
	for (int k = 0; k < 4; k++)
		acc += (uint32_t)list_find(head, (int32_t)((iter * 7 + (uint32_t)k * 41) % (LIST_N + 8)));
	head = list_reverse(head);
	for (const struct node *n = head; n; n = n->next)
		acc = acc * 31 + (uint32_t)n->value;
	head = list_sort(head);
	/* perturb a few values so every iteration sorts something new */
	int i = 0;
	for (struct node *n = head; n; n = n->next, i++)
		if ((i & 7) == (int)(iter & 7))
			n->value ^= (int32_t)((iter * 2654435761u) >> 20);
	acc ^= (uint32_t)head->value;
	*headp = head;
	return acc;
}

/* ---------------- matrix ---------------- */

#define MAT_N 14

static int16_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N];
static int32_t mat_c[MAT_N][MAT_N];

static void matrix_init(void)
{
	for (int i = 0; i < MAT_N; i++)
		for (int j = 0; j < MAT_N; j++) {
			mat_a[i][j] = (int16_t)((rng() & 0xff) - 128);
			mat_b[i][j] = (int16_t)((rng() & 0xff) - 128);
		}
}

static uint32_t matrix_work(uint32_t iter)
{
	int16_t bias = (int16_t)(iter & 0x3f);
	for (int i = 0; i < MAT_N; i++)
		for (int j = 0; j < MAT_N; j++) {
			int32_t s = 0;
			for (int k = 0; k < MAT_N; k++)
				s += (int32_t)mat_a[i][k] * (int32_t)(int16_t)(mat_b[k][j] + bias);
			mat_c[i][j] = s;
		}
	uint32_t acc = 0;
	for (int i = 0; i < MAT_N; i++)
		for (int j = 0; j < MAT_N; j++) {
			int32_t v = mat_c[i][j];
			acc += (uint32_t)(v > 0 ? v : -v) >> (j & 3);
			if (v > 10000)
				acc ^= (uint32_t)(i * MAT_N + j);
		}
	/* feed the result back so the next product differs */
	mat_a[iter % MAT_N][(iter / MAT_N) % MAT_N] = (int16_t)(acc & 0xff);
	return acc;
}

/* ---------------- state machine ---------------- */

enum state { ST_START, ST_SIGN, ST_INT, ST_DOT, ST_FRAC, ST_EXP, ST_EXPSIGN, ST_SCI, ST_HEX, ST_BAD, ST_COUNT };

#define TEXT_N 320
static uint8_t text[TEXT_N];

static const char *const tokens[] = {
	"5012", "-87", "+3.25", "1.5e+12", "0x1F", "7E-3", "..", "42.", "-0.001", "abc", "9e9", "+", "0xBAD",
};

static void text_init(void)
{
	int n = 0;
	while (n < TEXT_N - 1) {
		const char *t = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
		while (*t && n < TEXT_N - 1)
			text[n++] = (uint8_t)*t++;
		if (n < TEXT_N - 1)
			text[n++] = (rng() & 3) ? ',' : ' ';
	}
	text[TEXT_N - 1] = 0;
}

static enum state step(enum state s, uint8_t c)
{
	int digit = c >= '0' && c <= '9';
	switch (s) {
	case ST_START:
		if (digit) return c == '0' ? ST_HEX : ST_INT;
		if (c == '+' || c == '-') return ST_SIGN;
		if (c == '.') return ST_DOT;
		return ST_BAD;
	case ST_SIGN:
		if (digit) return ST_INT;
		if (c == '.') return ST_DOT;
		return ST_BAD;
	case ST_INT:
		if (digit) return ST_INT;
		if (c == '.') return ST_DOT;
		if (c == 'e' || c == 'E') return ST_EXP;
		return ST_BAD;
	case ST_DOT:
		return digit ? ST_FRAC : ST_BAD;
	case ST_FRAC:
		if (digit) return ST_FRAC;
		if (c == 'e' || c == 'E') return ST_EXP;
		return ST_BAD;
	case ST_EXP:
		if (c == '+' || c == '-') return ST_EXPSIGN;
		return digit ? ST_SCI : ST_BAD;
	case ST_EXPSIGN:
	case ST_SCI:
		return digit ? ST_SCI : ST_BAD;
	case ST_HEX:
		if (c == 'x' || c == 'X' || digit || (c >= 'A' && c <= 'F')) return ST_HEX;
		if (c == '.') return ST_DOT;
		return ST_BAD;
	default:
		return ST_BAD;
	}
}

static uint32_t state_work(uint32_t iter)
{
	uint32_t final_counts[ST_COUNT] = {0};
	uint32_t transitions = 0;
	enum state s = ST_START;
	for (int i = 0; i < TEXT_N && text[i]; i++) {
		uint8_t c = text[i];
		if (c == ',' || c == ' ') {
			final_counts[s]++;
			s = ST_START;
			continue;
		}
		enum state t = step(s, c);
		transitions += (t != s);
		s = t;
	}
	final_counts[s]++;
	/* corrupt one character so the next pass sees different input */
	uint32_t pos = (iter * 97) % (TEXT_N - 1);
	if (text[pos] != ',' && text[pos] != ' ')
		text[pos] = (uint8_t)("0123456789.e+-xA"[iter & 15]);
	uint32_t acc = transitions;
	for (int i = 0; i < ST_COUNT; i++)
		acc = acc * 131 + final_counts[i];
	return acc;
}

/* ---------------- main ---------------- */

int main(void)
{
	rng_state = 0x5eed1234u;
	struct node *head = list_build();
	matrix_init();
	text_init();

	uint64_t instret0 = read_instret();
	uint64_t cycle0 = read_cycle();
	uint16_t crc = 0;
	for (uint32_t iter = 0; iter < ITERATIONS; iter++) {
		crc = crc16_u32(list_work(&head, iter), crc);
		crc = crc16_u32(matrix_work(iter), crc);
		crc = crc16_u32(state_work(iter), crc);
	}
	uint64_t instret = read_instret() - instret0;
	uint64_t cycles = read_cycle() - cycle0;

	print("cpubench: iterations ");
	print_u64(ITERATIONS);
	print("\ncpubench: checksum ");
	print_hex(crc, 4);
	print("\ncpubench: instret ");
	print_u64(instret);
	print("\ncpubench: cycles ");
	print_u64(cycles);
	print("\n");
	if (crc != EXPECTED_CHECKSUM) {
		print("cpubench: checksum MISMATCH, expected ");
		print_hex(EXPECTED_CHECKSUM, 4);
		print("\n");
		return 1;
	}
	print("cpubench: OK\n");
	return 0;
}
