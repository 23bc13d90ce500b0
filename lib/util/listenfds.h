/* listenfds.h - systemd's socket activation protocol (sd_listen_fds(3)),
 * read by hand for the static-pie programs that cannot link libsystemd
 * (postern-smtpd, postern-queue): descriptors from 3 on, counted by
 * LISTEN_FDS when LISTEN_PID is this process. */
#ifndef POSTERN_LISTENFDS_H
#define POSTERN_LISTENFDS_H

#include <sys/types.h>

/* How many descriptors (from fd 3) systemd passed to this process: 0 when
 * none (or they were meant for another process), -1 when LISTEN_FDS is
 * malformed.  The variables are removed, so programs we start do not take
 * them for theirs. */
int listen_fds_take(void);
/* Our own listening unix stream socket at path (close-on-exec), for when
 * systemd passes none.  It is made under path.new with `mode` and, unless
 * they are -1, `owner` and `group`, listens, and is then renamed to path,
 * so a client never finds it half made (and a socket file a killed daemon
 * left is replaced: the caller's pid file lock says no one uses it).  The
 * descriptor, or -1 with errno (ENAMETOOLONG for a path that does not fit
 * sun_path). */
int listen_unix(const char *path, mode_t mode, uid_t owner, gid_t group, int backlog);

#endif
