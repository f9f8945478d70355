/* Tern guest runtime: the little each program needs, with raw Linux syscalls
 * (riscv64, generic syscall table). No libc: every program is one
 * translation unit that includes this header and defines main().
 */
#ifndef TERN_RT_H
#define TERN_RT_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;

/* Syscall numbers (asm-generic/unistd.h, as used by riscv64). */
#define SYS_mkdirat 34
#define SYS_umount2 39
#define SYS_mount 40
#define SYS_ioctl 29
#define SYS_getdents64 61
#define SYS_openat 56
#define SYS_close 57
#define SYS_lseek 62
#define SYS_readlinkat 78
#define SYS_read 63
#define SYS_write 64
#define SYS_sync 81
#define SYS_fsync 82
#define SYS_exit 93
#define SYS_exit_group 94
#define SYS_nanosleep 101
#define SYS_clock_gettime 113
#define SYS_clock_nanosleep 115
#define SYS_reboot 142
#define SYS_getpid 172
#define SYS_munmap 215
#define SYS_clone 220
#define SYS_execve 221
#define SYS_mmap 222
#define SYS_wait4 260

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_DIRECT 040000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define SEEK_SET 0
#define MS_RDONLY 1
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 2
#define MAP_ANONYMOUS 0x20
#define CLOCK_MONOTONIC 1
#define TIMER_ABSTIME 1
#define SIGCHLD 17
#define WNOHANG 1
#define EINTR 4
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define BLKGETSIZE64 0x80081272UL /* _IOR(0x12, 114, u64) */

struct timespec { i64 tv_sec; i64 tv_nsec; };

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long a7 __asm__("a7") = n;
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a3 __asm__("a3") = d;
    register long a4 __asm__("a4") = e;
    register long a5 __asm__("a5") = f;
    __asm__ volatile("ecall"
                     : "+r"(a0)
                     : "r"(a7), "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5)
                     : "memory");
    return a0;
}
#define sys0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static inline long sys_read(int fd, void *buf, u64 n) { return sys3(SYS_read, fd, buf, n); }
static inline long sys_write(int fd, const void *buf, u64 n) { return sys3(SYS_write, fd, buf, n); }
static inline long sys_open(const char *path, int flags, int mode) { return sys4(SYS_openat, AT_FDCWD, path, flags, mode); }
static inline long sys_close(int fd) { return sys1(SYS_close, fd); }
static inline long sys_lseek(int fd, i64 off, int whence) { return sys3(SYS_lseek, fd, off, whence); }
static inline long sys_fsync(int fd) { return sys1(SYS_fsync, fd); }
static inline long sys_sync(void) { return sys0(SYS_sync); }
static inline long sys_ioctl(int fd, u64 req, void *arg) { return sys3(SYS_ioctl, fd, req, arg); }
static inline long sys_mkdir(const char *path, int mode) { return sys3(SYS_mkdirat, AT_FDCWD, path, mode); }
static inline long sys_mount(const char *src, const char *dst, const char *type, u64 flags, const void *data)
{ return sys5(SYS_mount, src, dst, type, flags, data); }
static inline long sys_umount(const char *dst) { return sys2(SYS_umount2, dst, 0); }
static inline long sys_clock_gettime(int clk, struct timespec *ts) { return sys2(SYS_clock_gettime, clk, ts); }
static inline long sys_clock_nanosleep(int clk, int flags, const struct timespec *t)
{ return sys4(SYS_clock_nanosleep, clk, flags, t, 0); }
static inline long sys_mmap(u64 len)
{ return sys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); }
static inline long sys_fork(void) { return sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
static inline long sys_execve(const char *path, char *const argv[], char *const envp[])
{ return sys3(SYS_execve, path, argv, envp); }
static inline long sys_getdents64(int fd, void *buf, u64 n) { return sys3(SYS_getdents64, fd, buf, n); }
static inline long sys_readlink(const char *path, char *buf, u64 n) { return sys4(SYS_readlinkat, AT_FDCWD, path, buf, n); }
static inline long sys_wait4(int pid, int *status, int options) { return sys4(SYS_wait4, pid, status, options, 0); }
static inline long sys_getpid(void) { return sys0(SYS_getpid); }
static inline __attribute__((noreturn)) void sys_exit(int code)
{
    for (;;) sys1(SYS_exit_group, code);
}
static inline long sys_poweroff(void)
{ return sys4(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, 0); }

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *d, int c, u64 n)
{
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, u64 n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}

static inline u64 str_len(const char *s)
{
    u64 n = 0;
    while (s[n]) n++;
    return n;
}
static inline int str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}
static inline int str_starts(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return 1;
}
/* Parses a decimal number; returns the first character after it. */
static inline const char *parse_u64(const char *s, u64 *out)
{
    u64 v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (u64)(*s++ - '0');
    *out = v;
    return s;
}

/* Line buffer: a whole line goes out in one write, so lines of different
 * programs sharing the console do not interleave. */
struct line { char buf[256]; u64 n; };
static inline void l_str(struct line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1) l->buf[l->n++] = *s++;
}
static inline void l_u64(struct line *l, u64 v)
{
    char tmp[24];
    int i = 0;
    do tmp[i++] = (char)('0' + v % 10); while ((v /= 10) && i < 24);
    while (i && l->n < sizeof l->buf - 1) l->buf[l->n++] = tmp[--i];
}
static inline void l_hex(struct line *l, u64 v)
{
    l_str(l, "0x");
    for (int i = 60; i >= 0; i -= 4) {
        char c = "0123456789abcdef"[(v >> i) & 15];
        if (l->n < sizeof l->buf - 1) l->buf[l->n++] = c;
    }
}
static inline void l_end(struct line *l)
{
    l->buf[l->n++] = '\n';
    sys_write(1, l->buf, l->n);
    l->n = 0;
}
static inline void say(const char *a, const char *b)
{
    struct line l = {.n = 0};
    l_str(&l, a);
    if (b) l_str(&l, b);
    l_end(&l);
}

static inline u64 now_ns(void)
{
    struct timespec ts;
    sys_clock_gettime(CLOCK_MONOTONIC, &ts);
    return (u64)ts.tv_sec * 1000000000UL + (u64)ts.tv_nsec;
}
static inline void sleep_until_ns(u64 t)
{
    struct timespec ts = {(i64)(t / 1000000000UL), (i64)(t % 1000000000UL)};
    while (sys_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts) == -EINTR) {}
}
static inline void sleep_ms(u64 ms) { sleep_until_ns(now_ns() + ms * 1000000UL); }

int main(int argc, char **argv, char **envp);

/* Entry point: the kernel leaves argc, argv[], envp[] on the stack. */
__attribute__((used, noreturn)) static void cstart(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys_exit(main(argc, argv, argv + argc + 1));
}
__asm__(".section .text._start,\"ax\",@progbits\n"
        ".globl _start\n"
        "_start:\n"
        ".option push\n"
        ".option norelax\n"
        "  lla gp, __global_pointer$\n"
        ".option pop\n"
        "  mv a0, sp\n"
        "  andi sp, sp, -16\n"
        "  call cstart\n"
        ".previous\n");

#endif
