/* supervise.h - the daemons of a self-contained instance, as one table
 * (supervise.c), and the small supervisor `postern start` leaves running:
 * it restarts a daemon that died, with backoff, and records what it
 * restarted and when for `postern status`.  Under systemd the units'
 * Restart= does this job instead. */
#ifndef POSTERN_SUPERVISE_H
#define POSTERN_SUPERVISE_H

#include <stddef.h>
#include <sys/types.h>

/* One daemon: add it to daemons_init() in supervise.c (or a service
 * behind a unix socket to the table of services.c) to have `postern start`
 * start it, the supervisor keep it running and `postern stop` stop it (in
 * the reverse order). */
struct daemon {
    const char *name;           /* in messages and the status: "qmgr" */
    int (*start)(size_t which); /* start it unless it runs (one line on stdout);
                                 * 0, or 1 with the reason */
    int (*running)(size_t which);   /* 1 when it runs (every process of it) */
    int (*stop)(size_t which);  /* stop it (one line); 0, or 1 */
    size_t which;               /* passed to the three: one of several alike */
};

/* `postern start`: every daemon in order (stopping at the first that
 * fails), then the supervisor; with a supervisor running, it is asked to
 * start what is down now, and this waits until all run.  0 or 1. */
int instance_start(void);
/* `postern stop`: the supervisor, then every daemon in reverse order;
 * 0, or 1 when one was not running or did not stop. */
int instance_stop(void);
/* `postern status`: the supervisor's line and what it restarted. */
void supervisor_status(void);

#endif
