/* listenfds.h - systemd's socket activation protocol (sd_listen_fds(3)),
 * read by hand for the static-pie programs that cannot link libsystemd
 * (postern-smtpd, postern-queue): descriptors from 3 on, counted by
 * LISTEN_FDS when LISTEN_PID is this process. */
#ifndef POSTERN_LISTENFDS_H
#define POSTERN_LISTENFDS_H

/* How many descriptors (from fd 3) systemd passed to this process: 0 when
 * none (or they were meant for another process), -1 when LISTEN_FDS is
 * malformed.  The variables are removed, so programs we start do not take
 * them for theirs. */
int listen_fds_take(void);

#endif
