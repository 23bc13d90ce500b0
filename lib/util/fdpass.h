/* fdpass.h - bytes with a descriptor attached (SCM_RIGHTS) on a unix
 * socket (stream or seqpacket): how qmgr hands a reused runner each request
 * together with its queue file (doc/delivery.md, "Reuse mode"), and
 * postern-accept its zygote each connection (zygote.h). */
#ifndef POSTERN_FDPASS_H
#define POSTERN_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX_FDS 4        /* descriptors taken per receive */

/* Send up to len bytes of buf on sock, with the nfds descriptors of fds
 * attached (none when nfds is 0; at most FDPASS_MAX_FDS), never SIGPIPE.
 * Returns the count sent (the descriptors went with it when > 0), or -1
 * with errno (EAGAIN on a full non-blocking socket). */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
/* Receive up to len bytes into buf; descriptors that came with them are
 * stored in fds (close-on-exec), their number in *fd_count (at most
 * FDPASS_MAX_FDS; fds must have room for that many).  Returns the count
 * received, 0 at end of input, -1 with errno (EPROTO when more descriptors
 * came than fit: they are closed). */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t *fd_count);

#endif
