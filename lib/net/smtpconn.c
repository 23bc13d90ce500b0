/* smtpconn.c - one client connection to an SMTP/LMTP server: connect with
 * a timeout, replies read line by line with a deadline, commands queued and
 * flushed with a deadline, in clear or through OpenSSL (smtpconn.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "monotonic.h"
#include "smtpconn.h"
#include "sockconnect.h"

int smtp_connect(struct smtp_conn *c, const struct sockaddr *addr, socklen_t len,
                 const struct sockaddr *bind_addr, socklen_t bind_len, int timeout,
                 struct strbuf *why)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        strbuf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind_addr && bind(c->fd, bind_addr, bind_len) != 0) {
        strbuf_printf(why, "bind: %s", strerror(errno));
        goto fail;
    }
    if (connect(c->fd, addr, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            strbuf_puts(why, strerror(errno));
            goto fail;
        }
        int r = sock_wait(c->fd, POLLOUT, monotonic_ms() + (long long)timeout * 1000);
        if (r == 0) {
            strbuf_puts(why, strerror(ETIMEDOUT));
            goto fail;
        }
        int err = 0;
        socklen_t err_len = sizeof err;
        if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err) {
            strbuf_puts(why, strerror(err ? err : errno));
            goto fail;
        }
    }
    return 0;
fail:
    close(c->fd);
    c->fd = -1;
    return -1;
}

void smtp_conn_set_tls(struct smtp_conn *c, void *ssl)
{
    c->tls = ssl;
    c->in_start = c->in_end = 0;    /* nothing read in clear counts after STARTTLS */
}

/* Record an I/O failure. */
static int io_fail(struct smtp_conn *c, enum smtp_io_error e, const char *why)
{
    c->error = e;
    strbuf_set(&c->why, why ? why : "");
    return -1;
}

/* Read more bytes into the input buffer before the deadline; 0 or -1. */
static int fill(struct smtp_conn *c, long long deadline)
{
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    if (c->in_end == sizeof c->in) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    for (;;) {
        ssize_t n;
        short want = POLLIN;
        if (c->tls) {
            ERR_clear_error();
            int r = SSL_read(c->tls, c->in + c->in_end, (int)(sizeof c->in - c->in_end));
            if (r > 0) {
                c->in_end += (size_t)r;
                return 0;
            }
            int e = SSL_get_error(c->tls, r);
            if (e == SSL_ERROR_WANT_WRITE)
                want = POLLOUT;
            else if (e != SSL_ERROR_WANT_READ)
                return io_fail(c, SMTP_IO_LOST, e == SSL_ERROR_ZERO_RETURN ? "" : "TLS error");
        } else {
            n = read(c->fd, c->in + c->in_end, sizeof c->in - c->in_end);
            if (n > 0) {
                c->in_end += (size_t)n;
                return 0;
            }
            if (n == 0)
                return io_fail(c, SMTP_IO_LOST, "");
            if (errno != EAGAIN && errno != EINTR)
                return io_fail(c, SMTP_IO_LOST, strerror(errno));
        }
        int r = sock_wait(c->fd, want, deadline);
        if (r == 0)
            return io_fail(c, SMTP_IO_TIMEOUT, "");
        if (r < 0)
            return io_fail(c, SMTP_IO_LOST, strerror(errno));
    }
}

/* One line (CR LF or LF removed, at most SMTP_LINE_MAX bytes kept). */
static int read_line(struct smtp_conn *c, struct strbuf *line, long long deadline)
{
    strbuf_reset(line);
    for (;;) {
        char *start = c->in + c->in_start;
        size_t avail = c->in_end - c->in_start;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        size_t take = nl ? (size_t)(nl - start) : avail;
        if (line->len < SMTP_LINE_MAX)
            strbuf_append(line, start, take < SMTP_LINE_MAX - line->len ? take
                                                                     : SMTP_LINE_MAX - line->len);
        c->in_start += nl ? take + 1 : take;
        if (nl) {
            if (line->len && line->s[line->len - 1] == '\r')
                strbuf_truncate(line, line->len - 1);
            return 0;
        }
        if (fill(c, deadline) != 0)
            return -1;
    }
}

int smtp_read_reply(struct smtp_conn *c, struct smtp_reply *r, int timeout)
{
    struct strbuf line = STRBUF_INIT;
    smtp_reply_reset(r);
    int result = -1;
    /* one deadline for the whole reply: a server dribbling a line at a
     * time must not stretch it to SMTP_REPLY_MAX_LINES timeouts */
    long long deadline = monotonic_ms() + (long long)timeout * 1000;
    for (;;) {
        if (read_line(c, &line, deadline) != 0)
            break;
        int k = smtp_reply_add(r, line.s ? line.s : "", line.len);
        if (k < 0) {
            io_fail(c, SMTP_IO_PROTOCOL, "");
            break;
        }
        if (k > 0) {
            result = 0;
            break;
        }
    }
    strbuf_free(&line);
    return result;
}

void smtp_queue(struct smtp_conn *c, const void *bytes, size_t n)
{
    strbuf_append(&c->out, bytes, n);
}

void smtp_queuef(struct smtp_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&c->out, fmt, ap);
    va_end(ap);
}

int smtp_flush(struct smtp_conn *c, int timeout)
{
    long long deadline = monotonic_ms() + (long long)timeout * 1000;
    size_t done = 0;
    int result = 0;
    while (done < c->out.len) {
        short want = POLLOUT;
        if (c->tls) {
            ERR_clear_error();
            int r = SSL_write(c->tls, c->out.s + done, (int)(c->out.len - done > 65536 ? 65536
                                                                  : c->out.len - done));
            if (r > 0) {
                done += (size_t)r;
                continue;
            }
            int e = SSL_get_error(c->tls, r);
            if (e == SSL_ERROR_WANT_READ)
                want = POLLIN;
            else if (e != SSL_ERROR_WANT_WRITE) {
                result = io_fail(c, SMTP_IO_LOST, "TLS error");
                break;
            }
        } else {
            ssize_t n = send(c->fd, c->out.s + done, c->out.len - done, MSG_NOSIGNAL);
            if (n > 0) {
                done += (size_t)n;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                result = io_fail(c, SMTP_IO_LOST, strerror(errno));
                break;
            }
        }
        int r = sock_wait(c->fd, want, deadline);
        if (r <= 0) {
            result = io_fail(c, r == 0 ? SMTP_IO_TIMEOUT : SMTP_IO_LOST,
                             r == 0 ? "" : strerror(errno));
            break;
        }
    }
    strbuf_reset(&c->out);
    return result;
}

void smtp_close(struct smtp_conn *c)
{
    if (c->tls) {
        SSL_shutdown(c->tls);
        SSL_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    strbuf_free(&c->out);
    strbuf_free(&c->why);
}
