/* serviceconn.h - one client of a long-running service behind a unix
 * socket that answers requests in its own poll loop (postern-lookup,
 * postern-verify): its descriptor, what it sent and what is not yet sent
 * back, and who it is (SO_PEERCRED).  Each service keeps a table of these
 * and decides itself what a request is and when a client is done. */
#ifndef POSTERN_SERVICECONN_H
#define POSTERN_SERVICECONN_H

#include <sys/types.h>

#include "strbuf.h"

struct service_conn {
    int fd;                     /* -1: a free slot */
    struct strbuf in, out;      /* received, not yet used; answers not yet sent */
    long long last_active;      /* ms on the monotonic clock (monotonic_ms) */
    int closing;                /* a bad request: close once answered */
    pid_t pid;                  /* SO_PEERCRED, for log lines and rights */
    uid_t uid;
};

/* Accept one waiting client into c (non-blocking, close-on-exec, empty
 * buffers, active now).  1, or 0 when none waits; another accept error
 * is logged as "WHAT: reason". */
int service_conn_accept(struct service_conn *c, int listen_fd, const char *what);
/* Close the client and free its buffers; the slot is free again. */
void service_conn_close(struct service_conn *c);
/* Append what the client sent (at most chunk bytes) to c->in: the count
 * (the client is active), 0 at the end of its input, -1 when nothing is
 * there yet, -2 on an error (close it). */
ssize_t service_conn_recv(struct service_conn *c, size_t chunk);
/* Send what waits in c->out, as much as the socket takes: 0 (the client
 * is active when it took some), or -1 on an error (close it). */
int service_conn_send(struct service_conn *c);

#endif
