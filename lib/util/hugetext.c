/* hugetext.c - move a zygote's code and constants into huge pages that its
 * children share (see hugetext.h). */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hugemem.h"
#include "hugetext.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25        /* Linux 6.1 */
#endif

#define HUGE_SIZE (2UL << 20)
#define REGIONS_MAX 8

struct region {
    unsigned long start, end;   /* page-aligned */
    unsigned long limit;        /* where the next segment begins, 0: none */
    int prot;
    int backward;               /* stretched down, not up (RELRO) */
};

struct segments {
    struct region region[REGIONS_MAX];
    size_t count;
    int seen;                   /* the first object (the program) was read */
};

/* dl_iterate_phdr's callback: the program's read-only PT_LOAD segments,
 * each with the address where the next segment begins. */
static int read_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct segments *out = data;
    if (out->seen++)
        return 1;
    unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !ph->p_memsz)
            continue;
        unsigned long start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        unsigned long end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        if (out->count && !out->region[out->count - 1].limit)
            out->region[out->count - 1].limit = start;
        if ((ph->p_flags & PF_W) || out->count == REGIONS_MAX)
            continue;
        out->region[out->count++] = (struct region){start, end, 0,
                                                    PROT_READ | (ph->p_flags & PF_X ? PROT_EXEC : 0), 0};
    }
    /* the relocated read-only data (the GOT, OpenSSL's method tables),
     * which every child reads: it ends on the writable segment's first
     * page, so it can only grow down, over the gap before it */
    for (size_t i = 0; i < info->dlpi_phnum && out->count < REGIONS_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        unsigned long start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        unsigned long end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
        if (ph->p_type == PT_GNU_RELRO && end > start)
            out->region[out->count++] = (struct region){start, end, 0, PROT_READ, 1};
    }
    return 1;
}

/* Reserve the unmapped gap [from, to) (MAP_FIXED_NOREPLACE): 1 when it
 * was free and is ours now, so that the move below may cover it. */
static int reserve_gap(unsigned long from, unsigned long to)
{
    if (to <= from)
        return 0;
    void *gap = mmap((void *)from, to - from, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (gap == (void *)from)
        return 1;
    if (gap != MAP_FAILED)
        (void)munmap(gap, to - from);       /* a kernel without NOREPLACE put it elsewhere */
    return 0;
}

/* Write n bytes at addr through /proc/self/mem (fd mem), which may write
 * a mapping that is not writable.  0, or -1. */
static int write_through(int mem, unsigned long addr, const char *from, size_t n)
{
    while (n > 0) {
        ssize_t done = pwrite(mem, from, n, (off_t)addr);
        if (done <= 0)
            return -1;
        addr += (size_t)done;
        from += done;
        n -= (size_t)done;
    }
    return 0;
}

/* Replace one region with an anonymous copy in huge pages: the copy is
 * made at an address with the same offset from a huge-page boundary, so
 * that mremap moves its huge pages whole.  A region is first stretched to
 * a huge-page boundary over the unmapped gap the linker left beside it
 * (-z max-page-size=2M), if nothing else took that gap: up to the next
 * segment where the region fills at least half of its last huge page
 * (the headers' 0.5 MB are not worth 2 MB), down for the RELRO data.
 * Code is copied into a mapping that is executable and never writable,
 * through /proc/self/mem (fd mem, when it could be opened): systemd's
 * MemoryDenyWriteExecute refuses to make memory executable after it was
 * made (mprotect with PROT_EXEC), which the other way needs.  The bytes
 * in whole huge pages, or -1. */
static long move_region(const struct region *r, int mem)
{
    unsigned long lo = r->start, hi = r->end;
    if (r->backward) {
        unsigned long down = r->start & ~(HUGE_SIZE - 1);
        if (reserve_gap(down, r->start))
            lo = down;
    } else {
        unsigned long up = (r->end + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
        if (r->limit && up > r->limit)
            up = r->limit;
        unsigned long last_page = up - HUGE_SIZE;
        if (up > hi && !(up & (HUGE_SIZE - 1)) && last_page >= r->start && hi - last_page >= HUGE_SIZE / 2
            && reserve_gap(hi, up))
            hi = up;
    }
    size_t len = hi - lo;
    unsigned long first = (lo + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
    unsigned long last = hi & ~(HUGE_SIZE - 1);
    int direct = (r->prot & PROT_EXEC) && mem >= 0;
    char *area = last > first ? mmap(NULL, len + HUGE_SIZE, direct ? r->prot : PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
    if (!area || area == MAP_FAILED) {
        /* no whole huge page inside (leave it), or no memory */
        if (lo < r->start)
            (void)munmap((void *)lo, r->start - lo);
        if (hi > r->end)
            (void)munmap((void *)r->end, hi - r->end);
        return area ? -1 : 0;
    }
    unsigned long base = (unsigned long)area;
    unsigned long copy = (base & ~(HUGE_SIZE - 1)) + (lo & (HUGE_SIZE - 1));
    if (copy < base)
        copy += HUGE_SIZE;
    /* what lies around the copy goes back */
    if (copy > base)
        (void)munmap(area, copy - base);
    if (base + len + HUGE_SIZE > copy + len)
        (void)munmap((void *)(copy + len), base + len + HUGE_SIZE - (copy + len));
    if (madvise((void *)copy, len, MADV_HUGEPAGE) < 0)
        goto failed;
    if (direct) {
        if (write_through(mem, copy + (r->start - lo), (const char *)r->start, r->end - r->start) < 0)
            goto failed;
    } else {
        memcpy((void *)(copy + (r->start - lo)), (const void *)r->start, r->end - r->start);
        /* huge pages now if the first touch did not get them (Linux 6.1) */
        (void)madvise((void *)(copy + (first - lo)), last - first, MADV_COLLAPSE);
    }
    if ((!direct && mprotect((void *)copy, len, r->prot) < 0)
        || mremap((void *)copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)lo) == MAP_FAILED)
        goto failed;
    return (long)(last - first);
failed:;
    int saved = errno;
    (void)munmap((void *)copy, len);
    if (lo < r->start)
        (void)munmap((void *)lo, r->start - lo);
    if (hi > r->end)
        (void)munmap((void *)r->end, hi - r->end);
    errno = saved;
    return -1;
}

long hugetext_move(void)
{
    if (!hugemem_available())
        return 0;
    struct segments segments = {.count = 0};
    dl_iterate_phdr(read_segments, &segments);
    int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    long total = 0;
    int failed = 0;
    for (size_t i = 0; i < segments.count; i++) {
        long moved = move_region(&segments.region[i], mem);
        if (moved < 0 && mem >= 0 && (segments.region[i].prot & PROT_EXEC))
            moved = move_region(&segments.region[i], -1);      /* /proc/self/mem refused */
        if (moved < 0)
            failed = errno;
        else
            total += moved;
    }
    if (mem >= 0)
        close(mem);
    if (failed) {
        errno = failed;
        return -1;
    }
    return total;
}
