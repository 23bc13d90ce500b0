/* rewrite_stream.c - copying a message through rewrite (rewrite.h): the
 * header one logical header at a time, missing headers added at its end,
 * then the body with large reads and writes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "linereader.h"
#include "log.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

#define OUT_FLUSH_AT 65536

struct rewrite_state {
    const struct rewrite_config *cfg;
    const struct rewrite_message_info *info;
    int out_fd;
    struct strbuf out;
    int write_errno;            /* first write error, 0 when none */
    int crlf;                   /* the input uses CRLF: convert the body */
    int pending_cr;             /* body: a CR ended the previous chunk */
    int resent;                 /* the message has Resent- headers */
    int seen_message_id[2], seen_date[2], seen_from[2];  /* [1]: Resent- */
    int truncated_logged;
    long hops;                  /* Received: headers seen */
};

/* Write what is buffered (once a write failed, everything is dropped). */
static void flush_out(struct rewrite_state *st)
{
    if (st->out.len && !st->write_errno && write_all(st->out_fd, st->out.s, st->out.len) < 0)
        st->write_errno = errno;
    strbuf_reset(&st->out);
}

/* Buffer output, writing when enough has gathered. */
static void emit(struct rewrite_state *st, const char *bytes, size_t n)
{
    strbuf_append(&st->out, bytes, n);
    if (st->out.len >= OUT_FLUSH_AT)
        flush_out(st);
}

/* RFC 5322 date in the local time zone, with the zone name as a comment. */
static void rfc5322_date(time_t when, struct strbuf *out)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&when, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    strbuf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld (%s)",
                  days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  sign, off / 60, off % 60, tm.tm_zone ? tm.tm_zone : "UTC");
}

/* Append a display name, quoted when it holds RFC 5322 specials. */
static void put_phrase(struct strbuf *out, const char *name)
{
    if (strcspn(name, "()<>[]:;@\\,.\"") == strlen(name)) {
        strbuf_puts(out, name);
        return;
    }
    strbuf_putc(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_putc(out, '\\');
        strbuf_putc(out, *p);
    }
    strbuf_putc(out, '"');
}

/* A Received: header for a local submission, as Postfix's pickup gives. */
static void emit_received(struct rewrite_state *st)
{
    struct strbuf h = STRBUF_INIT;
    strbuf_printf(&h, "Received: by %s (postern, from userid %s);\n\t",
                  st->cfg->myhostname, st->info->uid);
    rfc5322_date(time(NULL), &h);
    strbuf_putc(&h, '\n');
    emit(st, h.s, h.len);
    strbuf_free(&h);
}

/* Add the headers a local submission lacks, at the end of the header. */
static void emit_missing_headers(struct rewrite_state *st)
{
    if (!st->info->local && !st->cfg->always_add_missing_headers)
        return;
    struct strbuf h = STRBUF_INIT;
    time_t now = time(NULL);
    /* a resent message gets the Resent- forms, as Postfix's cleanup does */
    int r = st->resent;
    const char *prefix = r ? "Resent-" : "";
    if (!st->seen_message_id[r]) {
        unsigned char rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            memset(rnd, 0, sizeof rnd);
        struct tm tm;
        gmtime_r(&now, &tm);
        strbuf_printf(&h, "%sMessage-Id: <%04d%02d%02d%02d%02d%02d.%d.", prefix,
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, (int)getpid());
        for (size_t i = 0; i < sizeof rnd; i++)
            strbuf_printf(&h, "%02X", rnd[i]);
        strbuf_printf(&h, "@%s>\n", st->cfg->myhostname);
    }
    if (!st->seen_date[r]) {
        strbuf_printf(&h, "%sDate: ", prefix);
        rfc5322_date(now, &h);
        strbuf_putc(&h, '\n');
    }
    if (!st->seen_from[r]) {
        const char *sender = *st->info->sender ? st->info->sender : "MAILER-DAEMON";
        strbuf_printf(&h, "%sFrom: ", prefix);
        if (st->info->full_name && *st->info->full_name) {
            put_phrase(&h, st->info->full_name);
            strbuf_printf(&h, " <%s>\n", sender);
        } else {
            strbuf_printf(&h, "%s\n", sender);
        }
    }
    emit(st, h.s, h.len);
    strbuf_free(&h);
}

/* Process one complete logical header (folded lines joined by LF, no
 * final LF): drop, note, rewrite, and emit it. */
static void process_header(struct rewrite_state *st, const struct strbuf *header)
{
    size_t name_len;
    if (!header_field_name(header->s, header->len, &name_len)) {
        emit(st, header->s, header->len);
        emit(st, "\n", 1);
        return;
    }
    const char *name = header->s;
    for (size_t i = 0; i < st->cfg->drop_headers.count; i++) {
        const char *drop = st->cfg->drop_headers.item[i];
        if (strlen(drop) == name_len && strncasecmp(drop, name, name_len) == 0)
            return;         /* message_drop_headers: Bcc, Return-Path, ... */
    }
    int resent = name_len > 7 && strncasecmp(name, "Resent-", 7) == 0;
    if (resent) {
        st->resent = 1;
        name += 7;
        name_len -= 7;
    }
#define IS(literal) (name_len == sizeof literal - 1 && strncasecmp(name, literal, name_len) == 0)
    if (IS("Received") && !resent)
        st->hops++;
    else if (IS("Message-Id"))
        st->seen_message_id[resent] = 1;
    else if (IS("Date"))
        st->seen_date[resent] = 1;
    else if (IS("From"))
        st->seen_from[resent] = 1;
#undef IS
    name = header->s;
    name_len += resent ? 7 : 0;
    /* Companion issue: header_checks (REJECT, IGNORE, REPLACE, ...) are
     * applied here, to the whole logical header. */
    if (st->info->local && header_is_address(name, name_len)) {
        struct strbuf rewritten = STRBUF_INIT;
        size_t colon = (size_t)((char *)memchr(header->s, ':', header->len) - header->s);
        rewrite_address_header(st->cfg, header->s, colon + 1, &rewritten);
        strbuf_putc(&rewritten, '\n');
        emit(st, rewritten.s, rewritten.len);
        strbuf_free(&rewritten);
        return;
    }
    emit(st, header->s, header->len);
    emit(st, "\n", 1);
}

/* Copy body bytes, turning CRLF into LF when the input uses CRLF. */
static void emit_body(struct rewrite_state *st, const char *bytes, size_t n)
{
    if (!st->crlf) {
        flush_out(st);
        if (n && !st->write_errno && write_all(st->out_fd, bytes, n) < 0)
            st->write_errno = errno;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (st->pending_cr) {
            st->pending_cr = 0;
            if (bytes[i] != '\n')
                strbuf_putc(&st->out, '\r');
        }
        if (bytes[i] == '\r')
            st->pending_cr = 1;
        else
            strbuf_putc(&st->out, bytes[i]);
    }
    if (st->out.len >= OUT_FLUSH_AT)
        flush_out(st);
}

/* Read the rest of an over-long line and throw it away; returns the
 * line_read result of the last piece. */
static int discard_rest_of_line(struct line_reader *reader, struct strbuf *scratch, size_t max)
{
    int r;
    do
        r = line_read(reader, scratch, max);
    while (r == 2 && scratch->len == max);
    return r;
}

int rewrite_message(const struct rewrite_config *cfg,
                    const struct rewrite_message_info *info,
                    int in_fd, int out_fd, struct strbuf *err)
{
    struct rewrite_state st = {.cfg = cfg, .info = info, .out_fd = out_fd,
                               .out = STRBUF_INIT};
    struct line_reader *reader = xmalloc(sizeof *reader);
    struct strbuf line = STRBUF_INIT, header = STRBUF_INIT, scratch = STRBUF_INIT;
    size_t limit = cfg->header_size_limit;
    int status = 0, first = 1, in_header = 1;

    line_reader_init(reader, in_fd);
    if (info->local && info->uid)
        emit_received(&st);
    while (in_header) {
        int r = line_read(reader, &line, limit);
        if (r < 0)
            goto read_error;
        if (r == 0) {           /* end of input inside the header */
            if (header.len)
                process_header(&st, &header);
            emit_missing_headers(&st);
            in_header = 0;
            break;
        }
        int long_piece = r == 2 && line.len == limit;
        if (r == 1 && line.len && line.s[line.len - 1] == '\r') {
            strbuf_truncate(&line, line.len - 1);
            if (first)
                st.crlf = 1;
        }
        first = 0;
        size_t name_len;
        int continuation = line.len && (line.s[0] == ' ' || line.s[0] == '\t') && header.len;
        int field = !continuation && line.len && header_field_name(line.s, line.len, &name_len);
        if ((continuation || field) && long_piece) {
            /* a header line longer than header_size_limit: as Postfix,
             * keep the first part and discard the excess */
            if (!st.truncated_logged++)
                msg_warn("header line longer than header_size_limit %zu: excess discarded", limit);
            if (discard_rest_of_line(reader, &scratch, limit) < 0)
                goto read_error;
            r = 1;
        }
        if (continuation) {
            if (header.len + 1 + line.len <= limit) {
                strbuf_putc(&header, '\n');
                strbuf_append(&header, line.s, line.len);
            } else if (!st.truncated_logged++) {
                msg_warn("header longer than header_size_limit %zu: excess discarded", limit);
            }
            continue;
        }
        if (header.len)
            process_header(&st, &header);
        strbuf_reset(&header);
        if (field) {
            strbuf_append(&header, line.s, line.len);
            continue;
        }
        /* the end of the header: an empty line, or the first body line */
        emit_missing_headers(&st);
        emit(&st, "\n", 1);
        if (line.len || r == 2) {
            emit(&st, line.s ? line.s : "", line.len);
            if (r == 1)
                emit(&st, "\n", 1);
        }
        in_header = 0;
    }
    if (cfg->hopcount_limit > 0 && st.hops > cfg->hopcount_limit) {
        strbuf_printf(err, "Too many hops: %ld Received: headers", st.hops);
        status = REWRITE_TOO_MANY_HOPS;
        goto done;
    }
    size_t n;
    const char *rest = line_reader_take(reader, &n);
    emit_body(&st, rest, n);
    char *chunk = reader->buf;  /* reuse the reader's buffer for the body */
    for (;;) {
        if (st.write_errno)
            break;
        ssize_t got = read(in_fd, chunk, sizeof reader->buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto read_error;
        if (got == 0)
            break;
        emit_body(&st, chunk, (size_t)got);
    }
    if (st.pending_cr)
        strbuf_putc(&st.out, '\r');
    flush_out(&st);
    if (st.write_errno) {
        errno = st.write_errno;
        strbuf_printf(err, "write the message: %s", strerror(errno));
        status = -2;
    }
    goto done;
read_error:
    strbuf_printf(err, "read the message: %s", strerror(errno));
    status = -1;
done:
    strbuf_free(&line);
    strbuf_free(&header);
    strbuf_free(&scratch);
    strbuf_free(&st.out);
    free(reader);
    return status;
}
