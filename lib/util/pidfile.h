/* pidfile.h - a daemon's pid file, locked (flock) for the daemon's whole
 * life, so that a second daemon of the same kind on the same queue refuses
 * to run: qmgr, the queue service, the runner services.  `postern
 * start/stop` read the pid from it. */
#ifndef POSTERN_PIDFILE_H
#define POSTERN_PIDFILE_H

#include <stddef.h>

/* Open (creating it 0644) and lock path, trying `attempts` times 100 ms
 * apart; the descriptor (close-on-exec), or -1 with errno: EWOULDBLOCK
 * when another process holds the lock, and then holder (holder_size
 * bytes) gets the pid the file names ("" when none). */
int pidfile_lock(const char *path, int attempts, char *holder, size_t holder_size);
/* Write our pid into the locked file: we are ready.  0, or -1 (errno). */
int pidfile_publish(int fd);

#endif
