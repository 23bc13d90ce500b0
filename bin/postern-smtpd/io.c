/* io.c - postern-smtpd's client I/O: buffered reads with smtpd_timeout,
 * bounded lines, replies held back while pipelined commands are waiting
 * (RFC 2920) and written in one go before the next wait. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "smtpd.h"

void io_init(struct session *s, int in_fd, int out_fd)
{
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->in_start = s->in_end = 0;
}

void reply(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    strbuf_puts(&s->out, "\r\n");
    if (s->out.len > 32768)
        io_flush(s);
}

void io_flush(struct session *s)
{
    if (!s->out.len)
        return;
    if ((s->tls ? tls_write(s, s->out.s, s->out.len) : write_all(s->out_fd, s->out.s, s->out.len)) != 0) {
        strbuf_reset(&s->out);
        session_lost(s);
    }
    strbuf_reset(&s->out);
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
    if (s->tls) {
        ssize_t got = tls_read(s, s->inbuf + s->in_end, sizeof s->inbuf - s->in_end);
        s->in_end += (size_t)got;
        return got > 0;
    }
    for (;;) {
        struct pollfd pfd = {.fd = s->in_fd, .events = POLLIN};
        int r = poll(&pfd, 1, s->timeout > 0 ? (int)(s->timeout * 1000) : -1);
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
