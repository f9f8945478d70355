/* dirtier: keeps a settable amount of memory dirty at a settable rate, for
 * testing dirty-page tracking, snapshots and live migration.
 *
 *     dirtier <MiB> <pages-per-second>      (0 pages per second: flat out)
 *
 * It maps <MiB> of anonymous memory and walks it page by page, round and
 * round. Each visit checks the 8 words it wrote on the previous visit to that
 * page (spread 512 bytes apart) and writes new ones, so every visit dirties
 * the page and any page that comes back wrong (a lost or stale page after a
 * restore or a migration) is reported:
 *
 *     dirtier: FAIL page <k> pass <p> word <w>: expected <x> got <y>
 *
 * Every 10 seconds: `dirtier: <n> pages touched, pass <p>, OK`.
 */
#include "rt.h"

#define PAGE 4096UL
#define WORDS 8
#define STRIDE (PAGE / 8 / WORDS) /* in u64s: 512 bytes */

static u64 value(u64 page, u64 pass, u64 word)
{
    /* Distinct per page, pass and word; never zero (fresh pages are zero). */
    u64 x = (page << 20) ^ (pass << 4) ^ word ^ 0x7465726e00000000UL;
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15UL;
    return x | 1;
}

int main(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc < 3) {
        say("usage: dirtier <MiB> <pages-per-second>", 0);
        return 2;
    }
    u64 mib, rate;
    parse_u64(argv[1], &mib);
    parse_u64(argv[2], &rate);
    if (mib == 0) mib = 1;
    u64 pages = mib * 256;
    long base = sys_mmap(pages * PAGE);
    if (base < 0 && base > -4096) {
        say("dirtier: FAIL cannot map memory", 0);
        return 1;
    }
    u64 *mem = (u64 *)base;

    struct line l = {.n = 0};
    l_str(&l, "dirtier: ");
    l_u64(&l, mib);
    l_str(&l, " MiB (");
    l_u64(&l, pages);
    l_str(&l, " pages) at ");
    if (rate) {
        l_u64(&l, rate);
        l_str(&l, " pages/s");
    } else {
        l_str(&l, "full speed");
    }
    l_end(&l);

    u64 start = now_ns(), report = start + 10000000000UL;
    u64 touched = 0, page = 0, pass = 0;
    int failed = 0;
    for (;;) {
        /* How many pages the rate allows by now; 10 ms slices when limited. */
        u64 now = now_ns();
        u64 due = rate ? (now - start) / 1000 * rate / 1000000 : touched + 4096;
        while (touched < due) {
            u64 *p = mem + page * (PAGE / 8);
            for (u64 w = 0; w < WORDS; w++) {
                u64 want = pass ? value(page, pass - 1, w) : 0;
                u64 got = p[w * STRIDE];
                if (got != want && !failed) {
                    failed = 1;
                    l_str(&l, "dirtier: FAIL page ");
                    l_u64(&l, page);
                    l_str(&l, " pass ");
                    l_u64(&l, pass);
                    l_str(&l, " word ");
                    l_u64(&l, w);
                    l_str(&l, ": expected ");
                    l_hex(&l, want);
                    l_str(&l, " got ");
                    l_hex(&l, got);
                    l_end(&l);
                }
                p[w * STRIDE] = value(page, pass, w);
            }
            touched++;
            if (++page == pages) {
                page = 0;
                pass++;
            }
        }
        if (now >= report) {
            l_str(&l, "dirtier: ");
            l_u64(&l, touched);
            l_str(&l, " pages touched, pass ");
            l_u64(&l, pass);
            l_str(&l, failed ? ", FAILED" : ", OK");
            l_end(&l);
            report += 10000000000UL;
            if (report < now) report = now + 10000000000UL;
        }
        if (rate) sleep_ms(10);
    }
}
