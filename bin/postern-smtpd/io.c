/* io.c - postern-smtpd's client I/O: buffered reads with smtpd_timeout
 * (per read, or per request with smtpd_per_request_deadline and
 * smtpd_min_data_rate, as Postfix 3.7), a deadline for the whole session
 * (smtpd_session_deadline), bounded lines, replies held back while
 * pipelined commands are waiting (RFC 2920) and written in one go before
 * the next wait. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "smtpd.h"
#include "monotonic.h"

void io_init(struct session *s, int in_fd, int out_fd)
{
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->in_start = s->in_end = 0;
}

/* The client sees the end of the session when its socket is shut down
 * here, not when the process's exit gets to its descriptors: the kernel
 * tears down the memory first (exit_mm before exit_files), ~450 µs that
 * the client waited for after the 221.  shutdown, not only close:
 * postern-accept keeps a copy of a connection it handed to a child forked
 * ahead until the child's end (zygote.h). */
void io_close(struct session *s)
{
    if (s->in_fd >= 0) {
        (void)shutdown(s->in_fd, SHUT_RDWR);    /* ENOTSOCK on a pipe (-S) */
        close(s->in_fd);
    }
    if (s->out_fd >= 0 && s->out_fd != s->in_fd)
        close(s->out_fd);
    s->in_fd = s->out_fd = -1;
}

void io_limits(struct session *s)
{
    s->timeout = conf_time("smtpd_timeout");
    s->per_request_deadline = conf_bool("smtpd_per_request_deadline");
    s->min_data_rate = conf_int("smtpd_min_data_rate");
    long long session = conf_time("smtpd_session_deadline");
    s->session_deadline = session > 0 ? monotonic_ms() + session * 1000 : 0;
    s->request_deadline = 0;
}

void io_request_begin(struct session *s)
{
    if (s->per_request_deadline && s->timeout > 0)
        s->request_deadline = monotonic_ms() + s->timeout * 1000;
}

/* How long the next read may wait, in ms for poll (-1: no limit); 0 when
 * a deadline has passed. */
static int wait_budget(const struct session *s)
{
    long long now = monotonic_ms(), limit = -1;
    if (s->timeout > 0)
        limit = s->per_request_deadline && s->request_deadline
                ? s->request_deadline - now : s->timeout * 1000;
    if (s->session_deadline) {
        long long left = s->session_deadline - now;
        if (limit < 0 || left < limit)
            limit = left;
    }
    if (limit < 0 && (s->timeout > 0 || s->session_deadline))
        return 0;
    return limit > 0x7fffffff ? 0x7fffffff : (int)limit;
}

int io_wait(struct session *s, int fd, short events)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int budget = wait_budget(s);
        int r = budget == 0 ? 0 : poll(&pfd, 1, budget);
        if (r < 0 && errno == EINTR)
            continue;
        return r != 0;
    }
}

/* Message text arrived: with per-request deadlines, n bytes buy n /
 * smtpd_min_data_rate seconds more, never more than smtpd_timeout ahead. */
static void data_arrived(struct session *s, size_t n)
{
    if (!s->in_data || !s->per_request_deadline || !s->request_deadline || s->min_data_rate < 1)
        return;
    long long cap = monotonic_ms() + s->timeout * 1000;
    s->request_deadline += (long long)n * 1000 / s->min_data_rate;
    if (s->request_deadline > cap)
        s->request_deadline = cap;
}

void reply(struct session *s, const char *fmt, ...)
{
    va_list ap;
    size_t start = s->out.len;
    va_start(ap, fmt);
    strbuf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    /* a 421 or 521 ends the session once the command is done (an access
     * table's "421 text", a policy service's), as Postfix's smtpd does */
    if (s->out.len >= start + 3 && (strncmp(s->out.s + start, "421", 3) == 0
                                     || strncmp(s->out.s + start, "521", 3) == 0))
        s->hangup = 1;
    strbuf_puts(&s->out, "\r\n");
    if (s->out.len > 32768)
        io_flush(s);
}

/* Write all of p, each wait for the client bounded as a read's
 * (smtpd_timeout per call or per request, the session deadline): 0, -1
 * when the client has gone, -2 when it did not read in time.  A pipe
 * (sendmail -bs) is written as before, without a bound. */
static int write_bounded(struct session *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(s->out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            return write_all(s->out_fd, p, n) == 0 ? 0 : -1;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};
            int budget = wait_budget(s);
            int r = budget == 0 ? 0 : poll(&pfd, 1, budget);
            if (r == 0)
                return -2;
            continue;
        }
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void io_flush(struct session *s)
{
    if (!s->out.len)
        return;
    int rc = s->tls ? tls_write(s, s->out.s, s->out.len) : write_bounded(s, s->out.s, s->out.len);
    strbuf_reset(&s->out);
    if (rc == -1)
        session_lost(s);
    if (rc == -2)
        session_write_timeout(s);
}

/* Fill the input buffer; 1 when bytes arrived, 0 at end of input. */
static int io_fill(struct session *s)
{
    if (s->in_start == s->in_end)
        s->in_start = s->in_end = 0;
    if (s->in_end == sizeof s->inbuf) {
        memmove(s->inbuf, s->inbuf + s->in_start, s->in_end - s->in_start);
        s->in_end -= s->in_start;
        s->in_start = 0;
    }
    io_flush(s);
    /* a transaction has begun: reach the queue service while the client
     * types, so that DATA is only a reply (submit.c) */
    if (s->tx.active && !s->tx.queue_prepared) {
        s->tx.queue_prepared = 1;   /* once a transaction: DATA tries again */
        submit_prepare();
    }
    if (s->tls) {
        ssize_t got = tls_read(s, s->inbuf + s->in_end, sizeof s->inbuf - s->in_end);
        if (got <= 0)
            return 0;
        s->in_end += (size_t)got;
        data_arrived(s, (size_t)got);
        return 1;
    }
    for (;;) {
        struct pollfd pfd = {.fd = s->in_fd, .events = POLLIN};
        int budget = wait_budget(s);
        int r = budget == 0 ? 0 : poll(&pfd, 1, budget);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            session_timeout(s);
        ssize_t n = read(s->in_fd, s->inbuf + s->in_end, sizeof s->inbuf - s->in_end);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return 0;
        s->in_end += (size_t)n;
        data_arrived(s, (size_t)n);
        return 1;
    }
}

int io_read_line(struct session *s, struct strbuf *line, size_t max, int *bare_lf)
{
    strbuf_reset(line);
    *bare_lf = 0;
    int last = -1;              /* the byte before LF, kept or not */
    size_t total = 0;
    for (;;) {
        if (s->in_start == s->in_end && !io_fill(s))
            return 0;
        unsigned char *start = s->inbuf + s->in_start;
        size_t avail = s->in_end - s->in_start;
        unsigned char *lf = memchr(start, '\n', avail);
        size_t take = lf ? (size_t)(lf - start) : avail;
        if (line->len < max)
            strbuf_append(line, start, take < max - line->len ? take : max - line->len);
        if (take)
            last = start[take - 1];
        total += take;
        s->in_start += take + (lf ? 1 : 0);
        if (lf)
            break;
    }
    if (last == '\r') {
        if (total <= max)
            strbuf_truncate(line, total - 1);
    } else {
        *bare_lf = 1;
    }
    return 1;
}

size_t io_read_chunk(struct session *s, struct strbuf *chunk, size_t max)
{
    strbuf_reset(chunk);
    while (chunk->len < max) {
        if (s->in_start == s->in_end && !io_fill(s))
            return 0;
        unsigned char *start = s->inbuf + s->in_start;
        size_t avail = s->in_end - s->in_start;
        if (avail > max - chunk->len)
            avail = max - chunk->len;
        unsigned char *lf = memchr(start, '\n', avail);
        size_t take = lf ? (size_t)(lf - start) + 1 : avail;
        strbuf_append(chunk, start, take);
        s->in_start += take;
        if (lf)
            break;
    }
    return chunk->len;
}

int io_read_exact(struct session *s, long long n,
                  void (*fn)(struct session *s, const unsigned char *p, size_t len, void *ctx),
                  void *ctx)
{
    while (n > 0) {
        if (s->in_start == s->in_end && !io_fill(s))
            return 0;
        size_t avail = s->in_end - s->in_start;
        size_t take = (long long)avail < n ? avail : (size_t)n;
        fn(s, s->inbuf + s->in_start, take, ctx);
        s->in_start += take;
        n -= (long long)take;
    }
    return 1;
}
