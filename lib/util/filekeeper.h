/* filekeeper.h - a small process that keeps root for one job only: to open
 * again, for a program that has given root up, the few files it was
 * allowed to open while it had it.  postern-smtpd's zygote starts one
 * before it drops privileges (lib/util/zygote.h), naming its TLS
 * certificate and key files, so that SIGHUP can read a renewed
 * certificate and a key readable by root only (doc/privileges.md, "The
 * TLS key").
 *
 * The keeper is a child forked with the list in its memory; it keeps its
 * uid (root) but no capability other than CAP_DAC_READ_SEARCH (none under
 * the systemd units), sets no_new_privs, holds no
 * other descriptor than its end of a SOCK_SEQPACKET socketpair, parses
 * nothing but a path it compares byte for byte with the list, and never
 * reads a file: it opens it (read-only, a regular file only) and passes
 * the descriptor back (SCM_RIGHTS).  A path not on the list is refused
 * (EPERM).  It ends when the other end closes: when the zygote and
 * postern-accept, which keeps a copy of the zygote's end for the zygote
 * it starts after a crash (zygote.h), have both gone.
 * Protocol: request = the path's bytes; answer = an int32 errno (0: a
 * descriptor is attached).
 */
#ifndef POSTERN_FILEKEEPER_H
#define POSTERN_FILEKEEPER_H

#include <stddef.h>
#include <sys/types.h>

/* Fork the keeper with these paths (copied).  0, or -1 (errno).  Only one
 * keeper per process; a second call does nothing. */
int filekeeper_start(const char *const *paths, size_t count);
/* Open path read-only through the keeper when there is one, else
 * directly; a descriptor (close-on-exec), or -1 with errno. */
int filekeeper_open(const char *path);
/* Read a whole file opened by filekeeper_open into a buffer of at most
 * max bytes (malloc'ed, NUL added); 0, or -1 with errno (EFBIG when too
 * big). */
int filekeeper_read(const char *path, size_t max, char **data, size_t *len);
/* In a process that must not reach the keeper (a zygote's child): close
 * our end. */
void filekeeper_forget(void);
/* The keeper's pid, 0 without one (or one inherited). */
pid_t filekeeper_pid(void);
/* Our end of the keeper's socket, -1 without one. */
int filekeeper_descriptor(void);

/* A zygote that postern-accept starts after a crash has our end of the
 * first zygote's keeper in this variable (a descriptor number). */
#define FILEKEEPER_FD_VARIABLE "POSTERN_KEEPER_FD"
/* Take the keeper named by FILEKEEPER_FD_VARIABLE, when it is set (the
 * variable is removed); answers a zygote that died in the middle of a
 * request left behind are dropped. */
void filekeeper_inherit(void);

#endif
