/* hugemem.h - read-only data a zygote shares with its children, kept in
 * transparent huge pages.
 *
 * hugetext.h says why: on a VM with software page tables a forked child
 * pays ~5-7 µs for each 4 kB page it touches for the first time, even a
 * page its parent had mapped, and nothing more for a 2 MB huge page that
 * fork(2) shares with one entry.  Code and constants are handled there;
 * this is for data files that every child reads and none writes: the
 * indexed tables (maps/cdb.c), which a file mapping would make each child
 * fault in page by page (seed 004's four 10,000-entry tables cost a
 * session ~22 faults and ~1 ms of CPU that way, bench/README).
 *
 * hugemem_enable() is called once by a zygote, before it opens its
 * tables; from then on, in that process only (its children see it
 * disabled, so that a table reopened in a child is mapped as before, not
 * copied), hugemem_copy() reads a whole file into memory that is packed
 * with other such copies into 2 MB-aligned blocks advised for huge pages.
 * A copy is read-only (mprotect), and hugemem_release() gives it back: a
 * block is unmapped when the last copy in it is released.  A block is
 * never written after the zygote has forked (the write would split its
 * huge pages): a table the zygote reopens later goes into a new one.  The total is
 * capped (HUGEMEM_CAP): a table past it, or any table when transparent
 * huge pages are off or POSTERN_HUGETEXT=0 is set, gets NULL and the
 * caller maps the file as before.
 *
 * hugemem_alloc() is the same for memory the zygote fills itself and its
 * children read (the packed configuration, lib/conf/config.c): writable,
 * in blocks of its own, released with hugemem_release().  A child may
 * write to it, but each 2 MB it writes to first costs it ~150 us (the
 * kernel splits the huge page to copy the small one written): use it
 * only for what children read.
 *
 * hugemem_available() says whether transparent huge pages can be had for
 * an madvise(2)d range at all (hugetext.c asks it too). */
#ifndef POSTERN_HUGEMEM_H
#define POSTERN_HUGEMEM_H

#include <stddef.h>

#define HUGEMEM_CAP (64UL << 20)    /* bytes of copies a zygote holds at most */

int hugemem_available(void);
void hugemem_enable(void);
const void *hugemem_copy(int fd, size_t size);
void *hugemem_alloc(size_t size);
void hugemem_release(const void *copy);

#endif
