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
 * hugetext_move() copies the program's read-only segments (headers,
 * code, constants: the PT_LOAD segments that are not writable) into
 * anonymous memory with transparent huge pages, laid out at the same
 * offsets within a huge page, and moves the copy over the original
 * mapping with one mremap(2) (the code running meanwhile is the same in
 * both).  Adjacent segments are moved as one read+exec region, so that
 * the huge pages that straddle code and constants are whole: the
 * constants become executable, as they were in every program linked
 * before binutils 2.31 separated them; nothing is ever writable and
 * executable, and the relocated read-only data (RELRO, in the writable
 * segment) stays as it is.  fork(2) then shares each 2 MB with one entry.
 *
 * The price: the zygote's private memory grows by the size of the
 * segments (shared with its children, as the file's pages were), and
 * profilers no longer see the program's file behind its code.  Nothing
 * is done when transparent huge pages are off (the copy would only cost),
 * or when POSTERN_HUGETEXT=0 is in the environment (perf and callgrind
 * then name the functions of a zygote's children).  Call in the zygote,
 * once, before it forks children.  Returns the number of bytes now in
 * huge pages (0 when none), or -1 (errno) when the move failed; the
 * program goes on with its mappings unchanged either way. */
#ifndef POSTERN_HUGETEXT_H
#define POSTERN_HUGETEXT_H

long hugetext_move(void);

#endif
