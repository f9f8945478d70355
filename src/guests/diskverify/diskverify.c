/*
 * diskverify.c - the disk-verifier guest (issue 6): proves that no acknowledged
 * write to its disk is ever lost, across restarts on other hosts, mirror legs
 * lost and partitions healed.
 *
 * The disk (the first virtio-blk device on the board, modern or legacy MMIO)
 * holds one 512-byte record per sector from sector 1 on; record seq S lives in
 * sector S:
 *
 *   offset  size  field
 *        0     8  magic "TERNDV01"
 *        8     8  seq (1, 2, 3, ...)
 *       16     8  boot: how many boots wrote this disk before this record's
 *       24   484  payload: a stream derived from seq alone
 *      508     4  CRC32C of bytes 0..507
 *
 * On boot it reads the records in order up to the first sector without the
 * magic (the end; a torn, never acknowledged tail is simply overwritten) and
 * prints one line:
 *
 *   VERIFY ok last=N boot=B          every record 1..N is intact
 *   VERIFY bad seq=K REASON          record K is damaged (crc, seq, payload) or
 *                                    was written by an older boot than the
 *                                    record before it (boot: a stale writer)
 *
 * then appends records from N+1 with boot B (one more than the newest boot
 * found), BATCH records per write request, a virtio FLUSH after each batch,
 * and prints
 *
 *   ACK N                            records 1..N are durable
 *
 * only once the flush has completed. Batches follow each other every
 * INTERVAL_MS of guest time; between them the hart sleeps in WFI on its timer
 * (an idle verifier costs no host CPU). A failed request prints
 *   EIO seq=K                        (K: the batch's first record)
 * and the program writes no more (it keeps running). A full disk prints
 *   FULL last=N
 *
 * Runs the same on Tern and on qemu-system-riscv64 -M virt -bios none
 * -drive file=disk.img,format=raw,if=none,id=d -device virtio-blk-device,drive=d.
 */
#include <stdint.h>

#ifndef BATCH
#define BATCH 8u
#endif
#ifndef INTERVAL_MS
#define INTERVAL_MS 100u
#endif

#define UART_BASE 0x10000000UL
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define CLINT_MTIMECMP 0x2004000UL
#define CLINT_MTIME 0x200BFF8UL
#define TICKS_PER_MS 10000ULL /* mtime runs at 10 MHz on the 'virt' board */
#define MIE_MTIE 0x80

#define VIRTIO_BASE 0x10001000UL
#define VIRTIO_STRIDE 0x1000UL
#define VIRTIO_SLOTS 8

/* virtio-mmio registers */
#define VM_MAGIC 0x000
#define VM_VERSION 0x004
#define VM_DEVICE_ID 0x008
#define VM_DEVICE_FEATURES 0x010
#define VM_DEVICE_FEATURES_SEL 0x014
#define VM_DRIVER_FEATURES 0x020
#define VM_DRIVER_FEATURES_SEL 0x024
#define VM_GUEST_PAGE_SIZE 0x028 /* legacy */
#define VM_QUEUE_SEL 0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM 0x038
#define VM_QUEUE_ALIGN 0x03c /* legacy */
#define VM_QUEUE_PFN 0x040   /* legacy */
#define VM_QUEUE_READY 0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_INTERRUPT_STATUS 0x060
#define VM_INTERRUPT_ACK 0x064
#define VM_STATUS 0x070
#define VM_QUEUE_DESC_LOW 0x080
#define VM_QUEUE_DESC_HIGH 0x084
#define VM_QUEUE_DRIVER_LOW 0x090
#define VM_QUEUE_DRIVER_HIGH 0x094
#define VM_QUEUE_DEVICE_LOW 0x0a0
#define VM_QUEUE_DEVICE_HIGH 0x0a4
#define VM_CONFIG 0x100 /* virtio-blk: capacity in sectors, 64 bits */

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define F_BLK_FLUSH 9
#define F_VERSION_1_HI 0 /* bit 32: bit 0 of the high feature word */

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

#define QSIZE 8
#define SECTOR 512u
#define READ_CHUNK 32u /* sectors per read request while scanning */

#define MAGIC 0x3130564444524554ULL /* "TERNDV01" little-endian */
#define PAYLOAD_WORDS 121u          /* 484 bytes */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct record {
	uint64_t magic;
	uint64_t seq;
	uint64_t boot;
	uint32_t payload[PAYLOAD_WORDS];
	uint32_t crc;
};

_Static_assert(sizeof(struct record) == SECTOR, "a record is one sector");

/* The queue in the layout a legacy device computes from QueuePFN: descriptors,
 * then the available ring, then the used ring at the next 4 KiB boundary. A
 * modern device is given the same three addresses. */
static struct {
	struct desc desc[QSIZE];
	uint16_t avail_flags;
	uint16_t avail_idx;
	uint16_t avail_ring[QSIZE];
	uint16_t used_event;
	uint8_t pad[4096 - QSIZE * 16 - 6 - 2 * QSIZE];
	uint16_t used_flags;
	volatile uint16_t used_idx;
	struct {
		uint32_t id;
		uint32_t len;
	} used_ring[QSIZE];
	uint16_t avail_event;
} vq __attribute__((aligned(4096)));

static struct req_header header;
static volatile uint8_t status_byte;
static struct record buf[READ_CHUNK > BATCH ? READ_CHUNK : BATCH] __attribute__((aligned(16)));
static uint32_t crc_table[256];
static uintptr_t dev;
static uint16_t last_used;
static uint64_t capacity; /* sectors */

/* ---------------- platform ---------------- */

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
	char digits[21];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		uart_putc(digits[--n]);
}

static inline uint64_t mtime(void)
{
	return *(volatile uint64_t *)CLINT_MTIME;
}

/* Sleeps until mtime reaches 'when' (mie.MTIE set, mstatus.MIE clear: the
 * timer wakes WFI without a trap). */
static void sleep_until(uint64_t when)
{
	volatile uint64_t *cmp = (volatile uint64_t *)CLINT_MTIMECMP;
	while (mtime() < when) {
		*cmp = when;
		__asm__ volatile("wfi");
	}
	*cmp = ~0ULL;
}

static inline uint32_t reg_read(uint32_t off)
{
	return *(volatile uint32_t *)(dev + off);
}

static inline void reg_write(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(dev + off) = v;
}

/* ---------------- records ---------------- */

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* Castagnoli, reflected */
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const void *data, uint32_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xFFFFFFFFu;
	while (len--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* splitmix64: the payload of a record depends on its seq only. */
static uint32_t payload_word(uint64_t seq, uint32_t i)
{
	uint64_t z = seq * 0x9E3779B97F4A7C15ULL + (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (uint32_t)(z ^ (z >> 31));
}

static void make_record(struct record *r, uint64_t seq, uint64_t boot)
{
	r->magic = MAGIC;
	r->seq = seq;
	r->boot = boot;
	for (uint32_t i = 0; i < PAYLOAD_WORDS; i++)
		r->payload[i] = payload_word(seq, i);
	r->crc = crc32c(r, SECTOR - 4);
}

/* NULL when the record is intact, else why not. */
static const char *check_record(const struct record *r, uint64_t seq)
{
	if (crc32c(r, SECTOR - 4) != r->crc)
		return "crc";
	if (r->seq != seq)
		return "seq";
	for (uint32_t i = 0; i < PAYLOAD_WORDS; i++)
		if (r->payload[i] != payload_word(seq, i))
			return "payload";
	return 0;
}

/* ---------------- virtio-blk ---------------- */

static int find_disk(void)
{
	for (int i = 0; i < VIRTIO_SLOTS; i++) {
		dev = VIRTIO_BASE + (uintptr_t)i * VIRTIO_STRIDE;
		if (reg_read(VM_MAGIC) == 0x74726976 && reg_read(VM_DEVICE_ID) == 2)
			return 1;
	}
	return 0;
}

/* The initialization sequence of the virtio 1.2 specification (3.1.1), or its
 * legacy form (4.2.4) on a version 1 device. */
static int init_disk(void)
{
	uint32_t version = reg_read(VM_VERSION);
	reg_write(VM_STATUS, 0);
	reg_write(VM_STATUS, S_ACKNOWLEDGE);
	reg_write(VM_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	reg_write(VM_DEVICE_FEATURES_SEL, 0);
	if (!(reg_read(VM_DEVICE_FEATURES) & (1u << F_BLK_FLUSH)))
		return 0;
	reg_write(VM_DRIVER_FEATURES_SEL, 0);
	reg_write(VM_DRIVER_FEATURES, 1u << F_BLK_FLUSH);
	if (version == 1) {
		reg_write(VM_GUEST_PAGE_SIZE, 4096);
	} else {
		reg_write(VM_DRIVER_FEATURES_SEL, 1);
		reg_write(VM_DRIVER_FEATURES, 1u << F_VERSION_1_HI);
		reg_write(VM_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
		if (!(reg_read(VM_STATUS) & S_FEATURES_OK))
			return 0;
	}
	reg_write(VM_QUEUE_SEL, 0);
	if (reg_read(VM_QUEUE_NUM_MAX) < QSIZE)
		return 0;
	reg_write(VM_QUEUE_NUM, QSIZE);
	uint64_t base = (uint64_t)(uintptr_t)&vq;
	if (version == 1) {
		reg_write(VM_QUEUE_ALIGN, 4096);
		reg_write(VM_QUEUE_PFN, (uint32_t)(base >> 12));
	} else {
		uint64_t avail = (uint64_t)(uintptr_t)&vq.avail_flags;
		uint64_t used = (uint64_t)(uintptr_t)&vq.used_flags;
		reg_write(VM_QUEUE_DESC_LOW, (uint32_t)base);
		reg_write(VM_QUEUE_DESC_HIGH, (uint32_t)(base >> 32));
		reg_write(VM_QUEUE_DRIVER_LOW, (uint32_t)avail);
		reg_write(VM_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
		reg_write(VM_QUEUE_DEVICE_LOW, (uint32_t)used);
		reg_write(VM_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
		reg_write(VM_QUEUE_READY, 1);
	}
	capacity = *(volatile uint64_t *)(dev + VM_CONFIG);
	reg_write(VM_STATUS, reg_read(VM_STATUS) | S_DRIVER_OK);
	return 1;
}

/* One request, waited for by polling the used ring (no interrupt handler). 'data'
 * may be 0 for a flush. Returns the status byte (0 = OK). */
static int request(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	header.type = type;
	header.reserved = 0;
	header.sector = sector;
	status_byte = 0xFF;
	uint16_t n = 0;
	vq.desc[n] = (struct desc){(uint64_t)(uintptr_t)&header, sizeof header, VRING_DESC_F_NEXT, 1};
	n++;
	if (data) {
		vq.desc[n] = (struct desc){(uint64_t)(uintptr_t)data, len,
					   (uint16_t)(VRING_DESC_F_NEXT | (type == T_IN ? VRING_DESC_F_WRITE : 0)), 2};
		n++;
	}
	vq.desc[n] = (struct desc){(uint64_t)(uintptr_t)&status_byte, 1, VRING_DESC_F_WRITE, 0};
	vq.avail_ring[vq.avail_idx % QSIZE] = 0;
	__sync_synchronize();
	vq.avail_idx++;
	__sync_synchronize();
	reg_write(VM_QUEUE_NOTIFY, 0);
	while (vq.used_idx == last_used)
		__sync_synchronize();
	last_used++;
	__sync_synchronize();
	reg_write(VM_INTERRUPT_ACK, reg_read(VM_INTERRUPT_STATUS));
	return status_byte;
}

/* ---------------- main ---------------- */

/* Reads records from sector 1 up to the end (the first sector without the
 * magic). Sets *last and *boot (the newest boot seen); returns 1 when all are
 * intact, else prints VERIFY bad and returns 0. */
static int scan(uint64_t *last, uint64_t *boot)
{
	uint64_t seq = 1, newest = 0;
	while (seq < capacity) {
		uint64_t n = capacity - seq < READ_CHUNK ? capacity - seq : READ_CHUNK;
		if (request(T_IN, seq, buf, (uint32_t)(n * SECTOR)) != 0) {
			print("VERIFY bad seq=");
			print_u64(seq);
			print(" read error\n");
			return 0;
		}
		for (uint64_t i = 0; i < n; i++, seq++) {
			const struct record *r = &buf[i];
			if (r->magic != MAGIC) {
				*last = seq - 1;
				*boot = newest;
				return 1;
			}
			const char *why = check_record(r, seq);
			if (!why && r->boot < newest)
				why = "boot"; /* an older incarnation wrote after a newer one */
			if (why) {
				print("VERIFY bad seq=");
				print_u64(seq);
				print(" ");
				print(why);
				print("\n");
				return 0;
			}
			newest = r->boot;
		}
	}
	*last = seq - 1;
	*boot = newest;
	return 1;
}

int main(void)
{
	crc_init();
	__asm__ volatile("csrw mie, %0" ::"r"(MIE_MTIE));
	*(volatile uint64_t *)CLINT_MTIMECMP = ~0ULL;
	print("diskverify: batch ");
	print_u64(BATCH);
	print(" every ");
	print_u64(INTERVAL_MS);
	print(" ms\n");
	if (!find_disk() || !init_disk()) {
		print("diskverify: no usable virtio-blk disk\n");
		for (;;)
			sleep_until(~0ULL - 1);
	}
	uint64_t last = 0, boot = 0;
	if (!scan(&last, &boot))
		for (;;)
			sleep_until(~0ULL - 1);
	boot++;
	print("VERIFY ok last=");
	print_u64(last);
	print(" boot=");
	print_u64(boot);
	print("\n");

	uint64_t next = mtime();
	uint64_t seq = last + 1;
	for (;;) {
		if (seq >= capacity) {
			print("FULL last=");
			print_u64(seq - 1);
			print("\n");
			break;
		}
		uint64_t n = capacity - seq < BATCH ? capacity - seq : BATCH;
		for (uint64_t i = 0; i < n; i++)
			make_record(&buf[i], seq + i, boot);
		if (request(T_OUT, seq, buf, (uint32_t)(n * SECTOR)) != 0 || request(T_FLUSH, 0, 0, 0) != 0) {
			print("EIO seq=");
			print_u64(seq);
			print("\n");
			break;
		}
		seq += n;
		print("ACK ");
		print_u64(seq - 1);
		print("\n");
		next += INTERVAL_MS * TICKS_PER_MS;
		uint64_t now = mtime();
		if (next < now)
			next = now; /* a long pause (a restart, a stopped host) is not followed by a burst */
		sleep_until(next);
	}
	for (;;)
		sleep_until(~0ULL - 1);
}
