/* hugetext.h - a zygote's code and constants moved into huge pages that
 * its children share.
 *
 * On a VM with software page tables (this project's machines: Firecracker
 * with PVM), a process pays for every 4 kB page it touches for the first
 * time, whether or not the guest takes a page fault: a forked child that
 * reads 1,024 pages its parent had mapped costs ~7 ms of CPU, one that
 * reads the same 4 MB mapped as two 2 MB huge pages costs nothing more
 * than its fork (bench/README, "TLS: what a session costs").  smtpd's
 * code and constants are 6 MB (OpenSSL's), and a TLS session touches most
 * of it: each child paid for it again.
 *
 * hugetext_move() copies the program's read-only segments (code,
 * constants, and the RELRO data: the GOT and OpenSSL's method tables,
 * relocated at start) into anonymous memory with transparent huge pages,
 * laid out at the same offsets within a huge page, and moves the copy
 * over the original mapping with one mremap(2) (the code running
 * meanwhile is the same in both).  Where the linker left a gap up to a
 * huge-page boundary (smtpd is linked with -z max-page-size=0x200000), a
 * segment is stretched over it, so that code fills two huge pages and
 * the constants and the RELRO data one each.  Protections stay as they
 * were: nothing becomes writable or executable (the code's copy is
 * written through /proc/self/mem into a mapping that is executable and
 * never writable, which systemd's MemoryDenyWriteExecute allows).
 * fork(2) then shares each 2 MB with one entry.
 *
 * The price: the zygote's private memory grows by the huge pages (8 MB
 * for smtpd, shared with its children as the file's pages were), and
 * profilers no longer see the program's file behind its code.  Nothing
 * is done when transparent huge pages are off (the copy would only cost),
 * or when POSTERN_HUGETEXT=0 is in the environment (perf and callgrind
 * then name the functions of a zygote's children).  Call in the zygote,
 * once, before it forks children.  Returns the number of bytes now in
 * huge pages (0 when none), or -1 (errno) when a move failed; each
 * segment is moved whole or not at all (the others still are), and the
 * program goes on either way.  Call it before dropping root: the
 * /proc/self/mem of a process that gave root up is root's. */
#ifndef POSTERN_HUGETEXT_H
#define POSTERN_HUGETEXT_H

long hugetext_move(void);

#endif
