/* hugetext.c - move a zygote's code and constants into huge pages that its
 * children share (see hugetext.h). */
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
};

struct segments {
    struct region region[REGIONS_MAX];
    size_t count;
    int seen;                   /* the first object (the program) was read */
};

/* Transparent huge pages can be had for an madvise(2)d range. */
static int huge_pages_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
    char line[128] = "";
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    return strstr(line, "[always]") || strstr(line, "[madvise]");
}

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
                                                    PROT_READ | (ph->p_flags & PF_X ? PROT_EXEC : 0)};
    }
    return 1;
}

/* Replace one region with an anonymous copy in huge pages: the copy is
 * made at an address with the same offset from a huge-page boundary, so
 * that mremap moves its huge pages whole.  A region is first stretched
 * to the next boundary over the unmapped gap the linker left before the
 * next segment (-z max-page-size=2M), if nothing else took that gap.
 * The bytes in whole huge pages, or -1. */
static long move_region(const struct region *r)
{
    unsigned long end = r->end;
    unsigned long stretched = (r->end + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
    if (r->limit && stretched > r->limit)
        stretched = r->limit;
    /* stretched only to a whole huge page that the segment fills at
     * least half of: the headers' 0.5 MB are not worth 2 MB */
    unsigned long last_page = stretched - HUGE_SIZE;
    if (stretched > end && !(stretched & (HUGE_SIZE - 1)) && last_page >= r->start
        && end - last_page >= HUGE_SIZE / 2) {
        void *gap = mmap((void *)end, stretched - end, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (gap == (void *)end)
            end = stretched;    /* ours now: the move below replaces it */
        else if (gap != MAP_FAILED)
            (void)munmap(gap, stretched - end);     /* a kernel without NOREPLACE */
    }
    size_t len = end - r->start;
    unsigned long first = (r->start + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
    unsigned long last = end & ~(HUGE_SIZE - 1);
    if (last <= first) {
        if (end > r->end)
            (void)munmap((void *)r->end, end - r->end);
        return 0;               /* no whole huge page inside: leave it */
    }
    char *area = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return -1;
    unsigned long base = (unsigned long)area;
    unsigned long copy = (base & ~(HUGE_SIZE - 1)) + (r->start & (HUGE_SIZE - 1));
    if (copy < base)
        copy += HUGE_SIZE;
    /* what lies around the copy goes back */
    if (copy > base)
        (void)munmap(area, copy - base);
    if (base + len + HUGE_SIZE > copy + len)
        (void)munmap((void *)(copy + len), base + len + HUGE_SIZE - (copy + len));
    if (madvise((void *)copy, len, MADV_HUGEPAGE) < 0)
        goto failed;
    memcpy((void *)copy, (const void *)r->start, r->end - r->start);
    /* huge pages now if the first touch did not get them (Linux 6.1) */
    (void)madvise((void *)(copy + (first - r->start)), last - first, MADV_COLLAPSE);
    if (mprotect((void *)copy, len, r->prot) < 0
        || mremap((void *)copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)r->start) == MAP_FAILED)
        goto failed;
    return (long)(last - first);
failed:;
    int saved = errno;
    (void)munmap((void *)copy, len);
    if (end > r->end)
        (void)munmap((void *)r->end, end - r->end);
    errno = saved;
    return -1;
}

long hugetext_move(void)
{
    const char *off = getenv("POSTERN_HUGETEXT");
    if ((off && strcmp(off, "0") == 0) || !huge_pages_available())
        return 0;
    struct segments segments = {.count = 0};
    dl_iterate_phdr(read_segments, &segments);
    long total = 0;
    for (size_t i = 0; i < segments.count; i++) {
        long moved = move_region(&segments.region[i]);
        if (moved < 0)
            return -1;
        total += moved;
    }
    return total;
}
