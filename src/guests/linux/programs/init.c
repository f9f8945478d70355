/* /init of Tern's Linux guest.
 *
 * Mounts /proc, /sys and /dev, prints what it found
 *
 *     tern-init: up, cmdline: <the kernel command line>
 *     tern-init: rdtime=<timer ticks since reset>
 *     tern-init: block=<devices> net=<interfaces> rng=<hw rng> cpus=<online>
 *
 * starts the helper programs that the kernel command line asks for, then
 * prints one heartbeat line per second forever:
 *
 *     tern-heartbeat <counter> uptime=<seconds.fraction>
 *
 * Command-line options (read from /proc/cmdline):
 *     tern.dirty=<MiB>,<pages-per-second>   run /bin/dirtier in the background
 *     tern.disk=<mode>[,<records>[,<target>]]
 *                                           run /bin/diskcheck in the background
 *                                           (mode: write|verify|check|watch;
 *                                           target: a path, or ext2/ext4 to use
 *                                           a file on /dev/vda mounted at /mnt)
 *     tern.poweroff=<n>                     power off after heartbeat n
 *     tern.devices                          list platform and virtio devices
 *                                           and the driver bound to each
 */
#include "rt.h"

static char cmdline[4096];
static char *child_env[] = {"PATH=/bin", 0};

/* Value of option `name` (e.g. "tern.dirty=") in the command line, copied
 * into out; 0 if absent. */
static int option(const char *name, char *out, u64 size)
{
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ' || *p == '\n') p++;
        if (str_starts(p, name)) {
            p += str_len(name);
            u64 n = 0;
            while (*p && *p != ' ' && *p != '\n' && n < size - 1) out[n++] = *p++;
            out[n] = 0;
            return 1;
        }
        while (*p && *p != ' ' && *p != '\n') p++;
    }
    return 0;
}

/* Splits s in place at commas into at most max fields. */
static int split(char *s, char **field, int max)
{
    int n = 0;
    field[n++] = s;
    for (; *s && n < max; s++)
        if (*s == ',') {
            *s = 0;
            field[n++] = s + 1;
        }
    return n;
}

static void start(char **argv)
{
    struct line l = {.n = 0};
    l_str(&l, "tern-init: starting");
    for (char **a = argv; *a; a++) {
        l_str(&l, " ");
        l_str(&l, *a);
    }
    l_end(&l);
    long pid = sys_fork();
    if (pid == 0) {
        long e = sys_execve(argv[0], argv, child_env);
        l_str(&l, "tern-init: exec ");
        l_str(&l, argv[0]);
        l_str(&l, " failed, errno ");
        l_u64(&l, (u64)-e);
        l_end(&l);
        sys_exit(127);
    }
    if (pid < 0) say("tern-init: fork failed", 0);
}

static void mount_or_warn(const char *src, const char *dst, const char *type)
{
    sys_mkdir(dst, 0755);
    long r = sys_mount(src, dst, type, 0, 0);
    if (r < 0 && r != -EBUSY) {
        struct line l = {.n = 0};
        l_str(&l, "tern-init: mount ");
        l_str(&l, dst);
        l_str(&l, " failed, errno ");
        l_u64(&l, (u64)-r);
        l_end(&l);
    }
}

/* First field of /proc/uptime, e.g. "12.34". */
static void read_uptime(char *out, u64 size)
{
    out[0] = '?';
    out[1] = 0;
    int fd = (int)sys_open("/proc/uptime", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return;
    long n = sys_read(fd, out, size - 1);
    sys_close(fd);
    if (n <= 0) {
        out[0] = '?';
        n = 1;
    }
    out[n] = 0;
    for (long i = 0; i < n; i++)
        if (out[i] == ' ' || out[i] == '\n') out[i] = 0;
}

/* Appends the entries of a sysfs directory (skipping dot entries). */
static void l_dir(struct line *l, const char *path)
{
    static u8 d[2048] __attribute__((aligned(8)));
    int fd = (int)sys_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    int any = 0;
    if (fd >= 0) {
        long n;
        while ((n = sys_getdents64(fd, d, sizeof d)) > 0)
            for (long off = 0; off < n;) {
                unsigned short reclen = *(unsigned short *)(d + off + 16);
                const char *name = (const char *)(d + off + 19);
                if (name[0] != '.') {
                    l_str(l, any ? "," : "");
                    l_str(l, name);
                    any = 1;
                }
                off += reclen;
            }
        sys_close(fd);
    }
    if (!any) l_str(l, "-");
}

/* With tern.devices: one line per device on the platform and virtio buses,
 * with the driver bound to it, e.g. "tern-init: device platform
 * 10000000.serial driver=of_serial". */
static void list_bus(const char *bus)
{
    static u8 d[4096] __attribute__((aligned(8)));
    char link[160];
    struct line l = {.n = 0};
    l_str(&l, "/sys/bus/");
    l_str(&l, bus);
    l_str(&l, "/devices");
    l.buf[l.n] = 0;
    int fd = (int)sys_open(l.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return;
    long n;
    while ((n = sys_getdents64(fd, d, sizeof d)) > 0)
        for (long off = 0; off < n; off += *(unsigned short *)(d + off + 16)) {
            const char *name = (const char *)(d + off + 19);
            if (name[0] == '.') continue;
            struct line p = {.n = 0};
            l_str(&p, "/sys/bus/");
            l_str(&p, bus);
            l_str(&p, "/devices/");
            l_str(&p, name);
            l_str(&p, "/driver");
            p.buf[p.n] = 0;
            long k = sys_readlink(p.buf, link, sizeof link - 1);
            const char *drv = "-";
            if (k > 0) {
                link[k] = 0;
                drv = link;
                for (long i = 0; i < k; i++)
                    if (link[i] == '/') drv = link + i + 1;
            }
            struct line o = {.n = 0};
            l_str(&o, "tern-init: device ");
            l_str(&o, bus);
            l_str(&o, " ");
            l_str(&o, name);
            l_str(&o, " driver=");
            l_str(&o, drv);
            l_end(&o);
        }
    sys_close(fd);
}

/* One line naming what Linux found: block and network devices, the
 * hardware RNG in use, and the harts online. */
static void report_devices(void)
{
    struct line l = {.n = 0};
    char buf[64];
    l_str(&l, "tern-init: block=");
    l_dir(&l, "/sys/class/block");
    l_str(&l, " net=");
    l_dir(&l, "/sys/class/net");
    const char *files[][2] = {{" rng=", "/sys/class/misc/hw_random/rng_current"},
                              {" cpus=", "/sys/devices/system/cpu/online"}};
    for (int i = 0; i < 2; i++) {
        l_str(&l, files[i][0]);
        int fd = (int)sys_open(files[i][1], O_RDONLY | O_CLOEXEC, 0);
        long n = fd >= 0 ? sys_read(fd, buf, sizeof buf - 1) : 0;
        if (fd >= 0) sys_close(fd);
        if (n <= 0) buf[n = 0] = '-', n = 1;
        buf[n] = 0;
        for (long j = 0; j < n; j++)
            if (buf[j] == '\n') buf[j] = 0;
        l_str(&l, buf);
    }
    l_end(&l);
}

int main(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    mount_or_warn("proc", "/proc", "proc");
    mount_or_warn("sysfs", "/sys", "sysfs");
    mount_or_warn("devtmpfs", "/dev", "devtmpfs");

    int fd = (int)sys_open("/proc/cmdline", O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
        long n = sys_read(fd, cmdline, sizeof cmdline - 1);
        cmdline[n > 0 ? n : 0] = 0;
        sys_close(fd);
    }
    for (char *p = cmdline; *p; p++)
        if (*p == '\n') *p = 0;
    say("tern-init: up, cmdline: ", cmdline);
    u64 ticks;
    __asm__ volatile("rdtime %0" : "=r"(ticks));
    struct line tl = {.n = 0};
    l_str(&tl, "tern-init: rdtime=");
    l_u64(&tl, ticks);
    l_end(&tl);
    report_devices();
    char opt[256];
    char *f[4];
    if (option("tern.devices", opt, sizeof opt)) {
        list_bus("platform");
        list_bus("virtio");
    }

    if (option("tern.dirty=", opt, sizeof opt)) {
        int n = split(opt, f, 2);
        char *av[] = {"/bin/dirtier", f[0], n > 1 ? f[1] : "100", 0};
        start(av);
    }
    if (option("tern.disk=", opt, sizeof opt)) {
        int n = split(opt, f, 3);
        char *av[] = {"/bin/diskcheck", f[0], n > 1 ? f[1] : 0, n > 2 ? f[2] : 0, 0};
        start(av);
    }
    u64 poweroff_at = 0;
    if (option("tern.poweroff=", opt, sizeof opt)) parse_u64(opt, &poweroff_at);

    u64 next = now_ns();
    for (u64 beat = 1;; beat++) {
        char up[64];
        read_uptime(up, sizeof up);
        struct line l = {.n = 0};
        l_str(&l, "tern-heartbeat ");
        l_u64(&l, beat);
        l_str(&l, " uptime=");
        l_str(&l, up);
        l_end(&l);

        /* Reap finished children (init is everyone's parent). */
        int status;
        while (sys_wait4(-1, &status, WNOHANG) > 0) {}

        if (poweroff_at && beat >= poweroff_at) {
            say("tern-init: powering off", 0);
            sys_sync();
            sys_poweroff();
            say("tern-init: power off failed", 0);
            poweroff_at = 0;
        }
        /* Fixed one-second cadence; after a long stall (a paused or
         * restored machine) start afresh instead of bursting to catch up. */
        next += 1000000000UL;
        u64 now = now_ns();
        if (now > next + 1000000000UL) next = now + 1000000000UL;
        sleep_until_ns(next);
    }
}
