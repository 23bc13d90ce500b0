/* hugemem.c - read-only copies of files, and memory the zygote fills
 * itself, in transparent huge pages that the children it forks share
 * (see hugemem.h). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hugemem.h"
#include "xalloc.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25        /* Linux 6.1 */
#endif

#define HUGE_SIZE (2UL << 20)
#define ALIGN 64                /* between copies in a block */

struct block {
    char *base;
    size_t size;                /* a multiple of HUGE_SIZE */
    size_t used;
    unsigned refs;              /* copies and allocations not yet released */
    int sealed;                 /* shared with a child: never written again */
    int writable;               /* hugemem_alloc's, not copies' */
    struct block *next;
};

/* A file's copy, shared by every table that opened the same file. */
struct copy {
    const char *data;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned refs;
    struct copy *next;
};

static struct block *blocks;    /* the newest first */
static struct copy *copies;
static int unsealed;            /* a block may be written */
static size_t total;            /* bytes in blocks */
static pid_t owner;             /* the zygote; 0: disabled */

int hugemem_available(void)
{
    const char *off = getenv("POSTERN_HUGETEXT");
    if (off && strcmp(off, "0") == 0)
        return 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
    char line[128] = "";
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    return strstr(line, "[always]") || strstr(line, "[madvise]");
}

/* pthread_atfork's prepare handler: a block the zygote wrote after a fork
 * would be copied for it (its huge pages split into small ones), so the
 * next copy after a fork goes into a new block. */
static void seal_all(void)
{
    /* written only when there is something to seal: after a fork, each
     * write to a page the children share costs the zygote a copy */
    if (!unsealed)
        return;
    for (struct block *b = blocks; b; b = b->next)
        b->sealed = 1;
    unsealed = 0;
}

void hugemem_enable(void)
{
    static int registered;
    owner = hugemem_available() ? getpid() : 0;
    if (owner && !registered)
        registered = pthread_atfork(seal_all, NULL, NULL) == 0;
    if (!registered)
        owner = 0;
}

/* A new block of at least n bytes, 2 MB-aligned and advised for huge
 * pages, or NULL. */
static struct block *block_new(size_t n, int writable)
{
    size_t size = (n + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
    if (size < n || total + size > HUGEMEM_CAP)
        return NULL;
    char *area = mmap(NULL, size + HUGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return NULL;
    uintptr_t base = ((uintptr_t)area + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1);
    /* what lies around the aligned block goes back */
    if (base > (uintptr_t)area)
        (void)munmap(area, base - (uintptr_t)area);
    if ((uintptr_t)area + size + HUGE_SIZE > base + size)
        (void)munmap((void *)(base + size), (uintptr_t)area + size + HUGE_SIZE - (base + size));
    if (madvise((void *)base, size, MADV_HUGEPAGE) < 0) {
        (void)munmap((void *)base, size);
        return NULL;
    }
    if (writable && mprotect((void *)base, size, PROT_READ | PROT_WRITE) < 0) {
        (void)munmap((void *)base, size);
        return NULL;
    }
    struct block *b = xcalloc(1, sizeof *b);
    b->base = (char *)base;
    b->size = size;
    b->writable = writable;
    b->next = blocks;
    blocks = b;
    total += size;
    return b;
}

static void block_free(struct block *b)
{
    for (struct block **p = &blocks; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    (void)munmap(b->base, b->size);
    total -= b->size;
    free(b);
}

/* Read size bytes from the start of fd into to: 0, or -1. */
static int read_whole(int fd, char *to, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, to + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* The newest block of the kind with room for need bytes that may still be
 * written, or a new one; NULL when there is none. */
static struct block *block_for(size_t need, int writable)
{
    for (struct block *b = blocks; b; b = b->next)
        if (b->writable == writable) {
            if (!b->sealed && b->size - b->used >= need)
                return b;
            break;
        }
    return block_new(need, writable);
}

/* Read the file into the newest block that may be written, or a new one. */
static const char *copy_into_block(int fd, size_t size)
{
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct block *b = block_for(need, 0);
    if (!b)
        return NULL;
    char *copy = b->base + b->used;
    /* the whole block changes protection, never a part: a part would split
     * the mapping, and the huge pages with it */
    if (mprotect(b->base, b->size, PROT_READ | PROT_WRITE) < 0)
        return NULL;
    int failed = read_whole(fd, copy, size);
    if (failed)
        memset(copy, 0, size);
    else
        /* huge pages now if the first touch did not get them (Linux 6.1) */
        (void)madvise(b->base, b->size, MADV_COLLAPSE);
    if (mprotect(b->base, b->size, PROT_READ) < 0)
        failed = 1;
    if (failed) {
        if (!b->refs)
            block_free(b);
        return NULL;
    }
    b->used += need;
    b->refs++;
    unsealed = 1;
    return copy;
}

/* The copy of this file as it is now, if one was made. */
static struct copy *find_copy(const struct stat *st)
{
    for (struct copy *c = copies; c; c = c->next)
        if (c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size
            && c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec)
            return c;
    return NULL;
}

const void *hugemem_copy(int fd, size_t size)
{
    struct stat st;
    if (!owner || size == 0 || size > HUGEMEM_CAP || getpid() != owner || fstat(fd, &st) != 0
        || st.st_size < 0 || (size_t)st.st_size != size)
        return NULL;
    struct copy *c = find_copy(&st);
    if (c) {
        c->refs++;
        return c->data;
    }
    const char *data = copy_into_block(fd, size);
    if (!data)
        return NULL;
    c = xcalloc(1, sizeof *c);
    *c = (struct copy){data, st.st_dev, st.st_ino, st.st_size, st.st_mtim, 1, copies};
    copies = c;
    return data;
}

void *hugemem_alloc(size_t size)
{
    if (!owner || size == 0 || size > HUGEMEM_CAP || getpid() != owner)
        return NULL;
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct block *b = block_for(need, 1);
    if (!b)
        return NULL;
    if (b->used == 0)
        /* one huge page now rather than small ones at the first touches */
        (void)madvise(b->base, b->size, MADV_COLLAPSE);
    char *at = b->base + b->used;
    b->used += need;
    b->refs++;
    unsealed = 1;
    return at;
}

void hugemem_release(const void *data)
{
    struct copy **p = &copies;
    while (*p && (*p)->data != data)
        p = &(*p)->next;
    if (*p) {
        if (--(*p)->refs > 0)
            return;
        struct copy *gone = *p;
        *p = gone->next;
        free(gone);
    }
    const char *copy = data;
    for (struct block *b = blocks; b; b = b->next)
        if (copy >= b->base && copy < b->base + b->size) {
            if (--b->refs == 0)
                block_free(b);
            return;
        }
}
