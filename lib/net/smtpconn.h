/* smtpconn.h - the client end of one SMTP or LMTP connection: connecting
 * (TCP with a timeout and a source address, or a unix socket), reading
 * replies and writing commands and the message, each step with its own
 * deadline, in clear or through TLS (tlsclient.h).  What went wrong is
 * kept apart as Postfix keeps it: a timeout, a lost connection, a reply
 * that does not parse (the caller words "conversation with HOST timed out
 * while ..." and "lost connection with HOST while ...").
 */
#ifndef POSTERN_SMTPCONN_H
#define POSTERN_SMTPCONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "smtpreply.h"
#include "strbuf.h"

#define SMTP_LINE_MAX   4096    /* bytes of one reply line kept (the rest is read and dropped) */

enum smtp_io_error {
    SMTP_IO_OK = 0,
    SMTP_IO_TIMEOUT,            /* the deadline passed */
    SMTP_IO_LOST,               /* EOF or a socket error */
    SMTP_IO_PROTOCOL,           /* a line that is no reply */
};

struct smtp_conn {
    int fd;
    void *tls;                  /* the SSL session once STARTTLS is done, else NULL */
    char in[8192];
    size_t in_start, in_end;
    struct strbuf out;          /* written by smtp_flush */
    enum smtp_io_error error;
    struct strbuf why;          /* the system's words for the last error */
};

/* Connect to addr (TCP, or AF_UNIX) within timeout seconds, from bind_addr
 * when not NULL.  0, or -1 with the reason ("Connection refused",
 * "Connection timed out") in why. */
int smtp_connect(struct smtp_conn *c, const struct sockaddr *addr, socklen_t len,
                 const struct sockaddr *bind_addr, socklen_t bind_len, int timeout,
                 struct strbuf *why);
/* Read one complete reply into r within timeout seconds (all its lines).
 * 0, or -1 with c->error set. */
int smtp_read_reply(struct smtp_conn *c, struct smtp_reply *r, int timeout);
/* Queue bytes for the server; smtp_flush writes them. */
void smtp_queue(struct smtp_conn *c, const void *bytes, size_t n);
void smtp_queuef(struct smtp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write what is queued within timeout seconds; 0 or -1 with c->error set. */
int smtp_flush(struct smtp_conn *c, int timeout);
/* Read and write through the TLS session from now on (tlsclient.c). */
void smtp_conn_set_tls(struct smtp_conn *c, void *ssl);
/* Close the connection (the TLS session first, without waiting). */
void smtp_close(struct smtp_conn *c);

#endif
