/* diskcheck: writes checksummed, sequence-numbered records to a block device
 * or a file, and verifies them.
 *
 *     diskcheck <mode> [<records> [<target> [<seed>]]]
 *
 *   mode     write   write the records, flush, report
 *            verify  read them back and check them (the record count and
 *                    seed come from record 0 unless given)
 *            check   write, then verify
 *            watch   write, then verify every 5 seconds, forever
 *   records  how many 4 KiB records (default 256 = 1 MiB)
 *   target   a block device or file path (default /dev/vda), or ext2/ext4:
 *            mount /dev/vda with that filesystem on /mnt and use the file
 *            /mnt/diskcheck.dat (unmounted again unless watching)
 *   seed     payload seed (default 1)
 *
 * Record layout (4096 bytes, little-endian u64s):
 *   0 magic "TERNREC1" | 8 index | 16 record count | 24 seed |
 *   32..4087 payload (xorshift64* stream from seed and index) |
 *   4088 FNV-1a 64 of bytes 0..4087
 *
 * Output, one line each:
 *   diskcheck: OK <n> records written|verified <target>
 *   diskcheck: FAIL at record <k>: <reason> <target>
 * Exit status 0 on OK, 1 on FAIL.
 */
#include "rt.h"

#define REC 4096UL
#define MAGIC 0x314345524e524554UL /* "TERNREC1" read as a little-endian u64 */

static u64 buf[REC / 8] __attribute__((aligned(4096)));
static const char *target;
static u64 count, seed;

static void fail(u64 k, const char *why, long err)
{
    struct line l = {.n = 0};
    l_str(&l, "diskcheck: FAIL at record ");
    l_u64(&l, k);
    l_str(&l, ": ");
    l_str(&l, why);
    if (err < 0) {
        l_str(&l, " errno ");
        l_u64(&l, (u64)-err);
    }
    l_str(&l, " ");
    l_str(&l, target);
    l_end(&l);
}

static void ok(u64 n, const char *what)
{
    struct line l = {.n = 0};
    l_str(&l, "diskcheck: OK ");
    l_u64(&l, n);
    l_str(&l, " records ");
    l_str(&l, what);
    l_str(&l, " ");
    l_str(&l, target);
    l_end(&l);
}

static u64 fnv1a(const u8 *p, u64 n)
{
    u64 h = 0xcbf29ce484222325UL;
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3UL;
    }
    return h;
}

static void fill(u64 k)
{
    buf[0] = MAGIC;
    buf[1] = k;
    buf[2] = count;
    buf[3] = seed;
    u64 x = (seed * 0x9e3779b97f4a7c15UL) ^ (k + 1) * 0xbf58476d1ce4e5b9UL;
    if (!x) x = 1;
    for (u64 i = 4; i < REC / 8 - 1; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf[i] = x * 0x2545f4914f6cdd1dUL;
    }
    buf[REC / 8 - 1] = fnv1a((const u8 *)buf, REC - 8);
}

/* Full-length pread/pwrite at record k (lseek + loop over short transfers). */
static long xfer(int fd, u64 k, int writing)
{
    long r = sys_lseek(fd, (i64)(k * REC), SEEK_SET);
    if (r < 0) return r;
    u64 done = 0;
    while (done < REC) {
        r = writing ? sys_write(fd, (u8 *)buf + done, REC - done)
                    : sys_read(fd, (u8 *)buf + done, REC - done);
        if (r == -EINTR) continue;
        if (r < 0) return r;
        if (r == 0) return -1000; /* end of device or file */
        done += (u64)r;
    }
    return 0;
}

/* O_DIRECT so verify really reads the device, not the page cache; falls
 * back to buffered I/O where the target does not support it. */
static int open_target(int flags)
{
    long fd = sys_open(target, flags | O_DIRECT | O_CLOEXEC, 0644);
    if (fd == -EINVAL) fd = sys_open(target, flags | O_CLOEXEC, 0644);
    return (int)fd;
}

static int do_write(void)
{
    int fd = open_target(O_RDWR | O_CREAT);
    if (fd < 0) {
        fail(0, "open", fd);
        return 1;
    }
    u64 size = 0;
    if (sys_ioctl(fd, BLKGETSIZE64, &size) == 0 && size < count * REC) {
        fail(size / REC, "device too small", 0);
        sys_close(fd);
        return 1;
    }
    for (u64 k = 0; k < count; k++) {
        fill(k);
        long r = xfer(fd, k, 1);
        if (r < 0) {
            fail(k, r == -1000 ? "short write" : "write", r == -1000 ? 0 : r);
            sys_close(fd);
            return 1;
        }
    }
    long r = sys_fsync(fd);
    sys_close(fd);
    if (r < 0) {
        fail(count, "fsync", r);
        return 1;
    }
    ok(count, "written");
    return 0;
}

static int do_verify(int count_given, int seed_given)
{
    int fd = open_target(O_RDONLY);
    if (fd < 0) {
        fail(0, "open", fd);
        return 1;
    }
    u64 n = count;
    for (u64 k = 0; k < n; k++) {
        long r = xfer(fd, k, 0);
        if (r < 0) {
            fail(k, r == -1000 ? "short read" : "read", r == -1000 ? 0 : r);
            sys_close(fd);
            return 1;
        }
        if (k == 0) { /* record 0 tells the count and seed of the last write */
            if (buf[0] == MAGIC) {
                if (!count_given) n = count = buf[2];
                if (!seed_given) seed = buf[3];
            }
        }
        const char *why = 0;
        u64 sum = buf[REC / 8 - 1];
        if (buf[0] != MAGIC) why = "bad magic";
        else if (buf[1] != k) why = "wrong sequence number";
        else if (fnv1a((const u8 *)buf, REC - 8) != sum) why = "bad checksum";
        else if (buf[2] != count || buf[3] != seed) why = "from another run";
        else {
            static u64 got[REC / 8];
            memcpy(got, buf, REC);
            fill(k);
            for (u64 i = 0; i < REC / 8; i++)
                if (got[i] != buf[i]) {
                    why = "payload differs";
                    break;
                }
        }
        if (why) {
            fail(k, why, 0);
            sys_close(fd);
            return 1;
        }
    }
    sys_close(fd);
    ok(n, "verified");
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc < 2) {
        say("usage: diskcheck write|verify|check|watch [records [target [seed]]]", 0);
        return 2;
    }
    const char *mode = argv[1];
    int count_given = argc > 2 && argv[2][0];
    count = 256;
    if (count_given) parse_u64(argv[2], &count);
    if (count == 0) count = 1;
    target = argc > 3 && argv[3][0] ? argv[3] : "/dev/vda";
    int seed_given = argc > 4;
    seed = 1;
    if (seed_given) parse_u64(argv[4], &seed);

    int w = str_eq(mode, "write"), v = str_eq(mode, "verify");
    int c = str_eq(mode, "check"), watch = str_eq(mode, "watch");
    if (!(w || v || c || watch)) {
        say("diskcheck: unknown mode ", mode);
        return 2;
    }

    const char *fs = 0;
    if (str_eq(target, "ext2") || str_eq(target, "ext4")) {
        fs = target;
        sys_mkdir("/mnt", 0755);
        long r = sys_mount("/dev/vda", "/mnt", fs, v ? MS_RDONLY : 0, 0);
        target = "/mnt/diskcheck.dat";
        if (r < 0) {
            target = fs;
            fail(0, "mount /dev/vda on /mnt", r);
            return 1;
        }
    }

    int rc = 0;
    if (w || c || watch) rc = do_write();
    if (rc == 0 && (v || c || watch)) rc = do_verify(count_given || !v, seed_given || !v);
    while (watch && rc == 0) {
        sleep_ms(5000);
        rc = do_verify(1, 1);
    }
    if (fs) {
        sys_sync();
        long r = sys_umount("/mnt");
        if (r < 0) fail(count, "umount /mnt", r);
    }
    return rc;
}
