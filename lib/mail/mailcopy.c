/* mailcopy.c - copying a message into a mailbox file: the prepended lines,
 * mbox "From " quoting, size limits, and the status of a failure (see
 * mailbox.h).  Maildir copies go through copy_file_range (no user-space
 * copy); mbox copies are read in large blocks and quoted on the way. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "mailbox.h"
#include "strbuf.h"

#define COPY_BLOCK 65536

void mailbox_status_set(struct mailbox_status *status, const char *dsn,
                        const char *fmt, ...)
{
    snprintf(status->dsn, sizeof status->dsn, "%s", dsn);
    strbuf_reset(&status->text);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&status->text, fmt, ap);
    va_end(ap);
}

const char *mail_errno_dsn(int err, const char *fallback)
{
    if (err == EAGAIN || err == ESTALE)
        return "4.2.0";
    if (err == ENOSPC)
        return "4.3.0";
    if (err == EDQUOT || err == EFBIG)
        return "5.2.2";
    return fallback;
}

void mail_copy_status(struct mailbox_status *status, enum mail_copy_result result,
                      int err)
{
    if (result == MAIL_COPY_READ_ERROR) {
        /* the queue file is ours: a read problem is never the recipient's */
        if (err)
            mailbox_status_set(status, "4.3.0", "error reading message: %s", strerror(err));
        else
            mailbox_status_set(status, "4.3.0", "error reading message: unexpected end of file");
    } else {
        mailbox_status_set(status, mail_errno_dsn(err, "5.3.0"),
                           "error writing message: %s", strerror(err));
    }
}

/* Whether a local part needs quotes in an RFC 5322 address. */
static int local_part_needs_quotes(const char *local, size_t n)
{
    if (n == 0)
        return 0;
    int after_dot = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)local[i];
        if (c == '.') {
            if (after_dot)
                return 1;
            after_dot = 1;
            continue;
        }
        after_dot = 0;
        if (c < 0x21 || c == 0x7f || strchr("\"(),:;<>@[\\]", c))
            return 1;
    }
    return after_dot;
}

void mail_quote_local(struct strbuf *out, const char *local, size_t n)
{
    if (!local_part_needs_quotes(local, n)) {
        strbuf_append(out, local, n);
        return;
    }
    strbuf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (local[i] == '"' || local[i] == '\\')
            strbuf_putc(out, '\\');
        strbuf_putc(out, local[i]);
    }
    strbuf_putc(out, '"');
}

/* Append an address with its local part quoted when it must be (as
 * Postfix's quote_822_local); `fold` lowers the case. */
static void put_address(struct strbuf *out, const char *addr, int fold)
{
    const char *at = strrchr(addr, '@');
    size_t local_len = at ? (size_t)(at - addr) : strlen(addr);
    size_t start = out->len;
    mail_quote_local(out, addr, local_len);
    if (at)
        strbuf_puts(out, at);
    if (fold)
        for (size_t i = start; i < out->len; i++)
            out->s[i] = (char)tolower((unsigned char)out->s[i]);
}

void mail_prefix(struct strbuf *out, const struct mail_source *src, int mbox_from)
{
    if (mbox_from) {
        time_t now = time(NULL);
        struct tm tm;
        char date[64];
        localtime_r(&now, &tm);
        strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
        strbuf_puts(out, "From ");
        if (*src->sender)
            put_address(out, src->sender, 0);
        else
            strbuf_puts(out, "MAILER-DAEMON");
        strbuf_printf(out, "  %s\n", date);
    }
    strbuf_puts(out, "Return-Path: <");
    if (*src->sender)
        put_address(out, src->sender, 0);
    strbuf_puts(out, ">\n");
    if (src->orig_rcpt && *src->orig_rcpt) {
        strbuf_puts(out, "X-Original-To: ");
        put_address(out, src->orig_rcpt, 0);
        strbuf_putc(out, '\n');
    }
    if (src->delivered_to && *src->delivered_to) {
        strbuf_puts(out, "Delivered-To: ");
        put_address(out, src->delivered_to, 1);
        strbuf_putc(out, '\n');
    }
}

/* Read up to `want` bytes (no more than *left) at *pos into buf and
 * advance *pos and *left.  The count, or 0 for a read error or an early
 * end of the file (errno 0 then). */
static size_t read_some(int fd, char *buf, size_t want, off_t *pos, off_t *left)
{
    if ((off_t)want > *left)
        want = (size_t)*left;
    ssize_t n = pread_retry(fd, buf, want, *pos);
    if (n <= 0) {
        if (n == 0)
            errno = 0;
        return 0;
    }
    *pos += n;
    *left -= n;
    return (size_t)n;
}

/* Copy length bytes at offset from in to out's position without quoting:
 * copy_file_range where the kernel can, else read and write. */
static enum mail_copy_result copy_plain(int out, int in, off_t offset, off_t length)
{
    off_t in_pos = offset, left = length;
    int use_cfr = 1;
    static char buf[COPY_BLOCK];
    while (left > 0) {
        if (use_cfr) {
            ssize_t n = copy_file_range(in, &in_pos, out, NULL, (size_t)left, 0);
            if (n > 0) {
                left -= n;
                continue;
            }
            if (n == 0) {
                errno = 0;
                return MAIL_COPY_READ_ERROR;
            }
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS
                && errno != EOPNOTSUPP && errno != EBADF)
                return errno == EIO ? MAIL_COPY_READ_ERROR : MAIL_COPY_WRITE_ERROR;
            use_cfr = 0;        /* not between these files: copy by hand */
        }
        size_t n = read_some(in, buf, sizeof buf, &in_pos, &left);
        if (n == 0)
            return MAIL_COPY_READ_ERROR;
        if (write_all(out, buf, n) != 0)
            return MAIL_COPY_WRITE_ERROR;
    }
    return MAIL_COPY_OK;
}

/* Write out's pending bytes, counting them against room. */
static int flush_counted(int fd, struct strbuf *pending, off_t *room)
{
    if (*room >= 0) {
        if ((off_t)pending->len > *room) {
            errno = EFBIG;
            return -1;
        }
        *room -= (off_t)pending->len;
    }
    if (write_all(fd, pending->s, pending->len) != 0)
        return -1;
    strbuf_reset(pending);
    return 0;
}

/* Copy with mbox quoting: ">From " for lines starting "From ", a final
 * newline when missing, and the empty line that ends an mbox message. */
static enum mail_copy_result copy_mbox(int out, const struct mail_source *src,
                                       struct strbuf *pending, off_t *room)
{
    static char in[COPY_BLOCK];
    size_t have = 0;
    off_t in_pos = src->offset, left = src->length;
    int at_line_start = 1;
    char last = '\n';
    while (left > 0 || have > 0) {
        if (left > 0) {
            size_t n = read_some(src->fd, in + have, sizeof in - have, &in_pos, &left);
            if (n == 0)
                return MAIL_COPY_READ_ERROR;
            have += n;
        }
        int eof = left == 0;
        size_t p = 0;
        while (p < have) {
            if (at_line_start) {
                if (have - p < 5 && !eof)
                    break;          /* "From " may continue in the next block */
                if (have - p >= 5 && memcmp(in + p, "From ", 5) == 0)
                    strbuf_putc(pending, '>');
                at_line_start = 0;
            }
            char *nl = memchr(in + p, '\n', have - p);
            size_t end = nl ? (size_t)(nl - in) + 1 : have;
            strbuf_append(pending, in + p, end - p);
            p = end;
            if (nl)
                at_line_start = 1;
        }
        if (p > 0)
            last = in[p - 1];
        memmove(in, in + p, have - p);
        have -= p;
        if (pending->len >= COPY_BLOCK && flush_counted(out, pending, room) != 0)
            return MAIL_COPY_WRITE_ERROR;
    }
    if (last != '\n')
        strbuf_putc(pending, '\n');
    strbuf_putc(pending, '\n');
    if (flush_counted(out, pending, room) != 0)
        return MAIL_COPY_WRITE_ERROR;
    return MAIL_COPY_OK;
}

enum mail_copy_result mail_copy(int out, const struct mail_source *src,
                                const struct strbuf *prefix, int mbox,
                                off_t room)
{
    if (!mbox) {
        if (room >= 0 && (off_t)prefix->len + src->length > room) {
            errno = EFBIG;
            return MAIL_COPY_WRITE_ERROR;
        }
        if (write_all(out, prefix->s, prefix->len) != 0)
            return MAIL_COPY_WRITE_ERROR;
        return copy_plain(out, src->fd, src->offset, src->length);
    }
    struct strbuf pending = STRBUF_INIT;
    strbuf_append(&pending, prefix->s, prefix->len);
    enum mail_copy_result result = copy_mbox(out, src, &pending, &room);
    int saved = errno;
    strbuf_free(&pending);
    errno = saved;
    return result;
}
