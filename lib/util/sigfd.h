/* sigfd.h - the daemons' signal handling (qmgr, postern-accept, the queue
 * and runner services): the signals they react to are blocked and read
 * from a signalfd in their poll loop, so no handler runs in between. */
#ifndef POSTERN_SIGFD_H
#define POSTERN_SIGFD_H

#include <stddef.h>

/* Block the `count` signals and return a non-blocking, close-on-exec
 * signalfd that reads them; a failure is fatal (the daemon cannot run).
 * Programs started afterwards inherit the blocked mask: reset it for them
 * (posix_spawnattr_setsigmask, sigprocmask after fork). */
int sigfd_open(const int *signals, size_t count);

#endif
