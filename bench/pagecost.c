/* pagecost.c - what a forked child pays per 4 kB page it touches on this
 * machine: the CPU (user + system, from the parent's RUSAGE_CHILDREN) of
 * ITERATIONS children, median and quartiles, each forked from a parent
 * that has 4 MB of memory mapped and written, as a zygote has.
 *
 *   cc -O2 -static -o /tmp/pagecost bench/pagecost.c
 *   /tmp/pagecost MODE PAGES [ITERATIONS]
 *
 * MODE: read (the child reads PAGES of the parent's pages: their entries
 * were copied at fork, no page fault), cow (writes them: a copy-on-write
 * fault each), cow-populate (the same after one MADV_POPULATE_WRITE over
 * them), fresh (writes PAGES pages of a new mapping: a zero-fill fault
 * each), fresh-populate (the same mapped with MAP_POPULATE), huge-read
 * (reads PAGES pages of parent memory in transparent huge pages).  PAGES
 * 0 gives the fork and exit alone.  bench/README ("TLS: what a session
 * costs") has this machine's figures; a figure is only as good as the
 * machine is quiet, but the differences between modes hold under load. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define REGION (4UL << 20)
#define PAGE 4096

static int by_value(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* The child's work for one mode. */
static void touch(const char *mode, char *parent, size_t pages)
{
    volatile char sum = 0;
    if (strcmp(mode, "read") == 0 || strcmp(mode, "huge-read") == 0) {
        for (size_t k = 0; k < pages; k++)
            sum += parent[k * PAGE];
    } else if (strcmp(mode, "cow") == 0 || strcmp(mode, "cow-populate") == 0) {
        if (mode[3] && pages)
            (void)madvise(parent, pages * PAGE, MADV_POPULATE_WRITE);
        for (size_t k = 0; k < pages; k++)
            parent[k * PAGE] = 2;
    } else {
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | (strcmp(mode, "fresh-populate") == 0 ? MAP_POPULATE : 0);
        char *fresh = pages ? mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0) : NULL;
        if (fresh == MAP_FAILED)
            _exit(1);
        for (size_t k = 0; k < pages; k++)
            fresh[k * PAGE] = 1;
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    static const char *const modes[] = {"read", "cow", "cow-populate", "fresh", "fresh-populate",
                                        "huge-read", NULL};
    int known = 0;
    for (int i = 0; argc >= 3 && modes[i]; i++)
        known |= strcmp(argv[1], modes[i]) == 0;
    if (!known) {
        fprintf(stderr, "usage: pagecost read|cow|cow-populate|fresh|fresh-populate|huge-read PAGES [ITERATIONS]\n");
        return 2;
    }
    size_t pages = strtoul(argv[2], NULL, 10);
    int iterations = argc > 3 ? atoi(argv[3]) : 200;
    if (pages > REGION / PAGE || iterations < 1)
        return 2;
    /* 4 MB on a huge-page boundary, written, so that every page is there */
    char *raw = mmap(NULL, 2 * REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return 1;
    char *parent = (char *)(((unsigned long)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
    (void)madvise(parent, REGION, strcmp(argv[1], "huge-read") == 0 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(parent, 1, REGION);
    long *cpu = calloc((size_t)iterations, sizeof *cpu);
    if (!cpu)
        return 1;
    for (int i = 0; i < iterations; i++) {
        struct rusage before, after;
        getrusage(RUSAGE_CHILDREN, &before);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            touch(argv[1], parent, pages);
        waitpid(pid, NULL, 0);
        getrusage(RUSAGE_CHILDREN, &after);
        cpu[i] = (after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec - before.ru_stime.tv_sec)
                 * 1000000L + after.ru_utime.tv_usec - before.ru_utime.tv_usec
                 + after.ru_stime.tv_usec - before.ru_stime.tv_usec;
    }
    qsort(cpu, (size_t)iterations, sizeof *cpu, by_value);
    printf("mode=%s pages=%zu child_cpu_us_median=%ld p25=%ld p75=%ld iterations=%d\n", argv[1], pages,
           cpu[iterations / 2], cpu[iterations / 4], cpu[3 * iterations / 4], iterations);
    return 0;
}
