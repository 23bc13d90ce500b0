/* serviceconn.c - a client of a service's poll loop (serviceconn.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"
#include "serviceconn.h"
#include "unixservice.h"

int service_conn_accept(struct service_conn *c, int listen_fd, const char *what)
{
    struct ucred cred;
    struct strbuf err = STRBUF_INIT;
    int fd = unix_accept(listen_fd, SOCK_CLOEXEC | SOCK_NONBLOCK, &cred, &err);
    if (fd < 0) {
        if (err.len)
            msg_warn("%s: %s", what, err.s);
        strbuf_free(&err);
        return 0;
    }
    *c = (struct service_conn){.fd = fd, .in = STRBUF_INIT, .out = STRBUF_INIT,
                               .last_active = monotonic_ms(), .pid = cred.pid, .uid = cred.uid};
    return 1;
}

void service_conn_close(struct service_conn *c)
{
    close(c->fd);
    c->fd = -1;
    strbuf_free(&c->in);
    strbuf_free(&c->out);
}

ssize_t service_conn_recv(struct service_conn *c, size_t chunk)
{
    char buf[16384];
    ssize_t n = recv(c->fd, buf, chunk < sizeof buf ? chunk : sizeof buf, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    c->last_active = monotonic_ms();
    strbuf_append(&c->in, buf, (size_t)n);
    return n;
}

int service_conn_send(struct service_conn *c)
{
    ssize_t n = send(c->fd, c->out.s, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n > 0)
        c->last_active = monotonic_ms();    /* it reads: not idle */
    memmove(c->out.s, c->out.s + n, c->out.len - (size_t)n);
    strbuf_truncate(&c->out, c->out.len - (size_t)n);
    return 0;
}
