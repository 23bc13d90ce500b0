/* sockconnect.h - connect to a server ("inet:host:port", "unix:path")
 * before a deadline without NSS, and wait on a socket (sockconnect.c). */
#ifndef POSTERN_SOCKCONNECT_H
#define POSTERN_SOCKCONNECT_H

#include "strbuf.h"

/* Wait for fd to be ready for events until deadline_ms (monotonic_ms): 1
 * ready, 0 the time is up (errno ETIMEDOUT), -1 an error. */
int sock_wait(int fd, short events, long long deadline_ms);
/* Connect to "inet:host:port" (or "host:port") or "unix:path" (relative:
 * in queue_directory) before the deadline: the socket (non-blocking,
 * close-on-exec), or -1 with why. */
int sock_connect(const char *spec, long long deadline_ms, struct strbuf *why);

#endif
