/* rewrite_stream.c - a message through rewrite (rewrite.h), pushed in
 * pieces of any size (rewrite_stream_feed) or pulled from a descriptor
 * (rewrite_message): the header one logical header at a time, bounded by
 * header_size_limit, missing headers added at its end, then the body
 * copied with large writes.  The output does not depend on how the input
 * was cut into pieces. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "fdio.h"
#include "log.h"
#include "rewrite.h"
#include "rewrite_mime.h"
#include "strbuf.h"
#include "xalloc.h"

#define OUT_FLUSH_AT 65536
#define REWRITE_READ_SIZE 65536

/* Where the input stands. */
enum stream_phase {
    IN_HEADER,                  /* collecting header lines */
    DISCARDING,                 /* the rest of an over-long header line */
    IN_BODY,                    /* copying */
    STOPPED,                    /* too many hops or deferred: nothing more
                                   is written */
};

struct rewrite_stream {
    const struct rewrite_config *cfg;
    const struct rewrite_message_info *info;
    int out_fd;
    enum stream_phase phase;
    struct strbuf out;
    struct strbuf line;         /* the piece of a header line read so far */
    struct strbuf header;       /* the logical header being collected */
    int write_errno;            /* first write error, 0 when none */
    int first;                  /* no header line piece seen yet */
    int crlf;                   /* the input uses CRLF: convert the body */
    int pending_cr;             /* body: a CR ended the previous chunk */
    int resent;                 /* the message has Resent- headers */
    int seen_message_id[2], seen_date[2], seen_from[2];  /* [1]: Resent- */
    int truncated_logged;
    long hops;                  /* Received: headers seen */
    int deferred;               /* a table could not answer */
    int rejected;               /* header_checks or body_checks REJECT */
    struct strbuf reject;       /* its "X.Y.Z text" */
    struct strbuf body_line;    /* body_checks: the line being collected */
    size_t body_offset;         /* body bytes seen (body_checks_size_limit) */
    /* MIME (cfg->mime): the structure, and the header section of a part or
     * an attached message being read in the body */
    struct mime_state mime;
    int part_section;           /* 0, or CHECKS_MIME (a part's headers) or
                                   CHECKS_NESTED (an attached message's) */
    struct strbuf part_header;  /* the logical header being collected there */
    int mid_line;               /* the last body piece did not end its line */
    int checks;                 /* header_checks and body_checks apply (not
                                   internal mail, or its class is filtered) */
};

/* Write what is buffered (once a write failed, everything is dropped). */
static void flush_out(struct rewrite_stream *st)
{
    if (st->out.len && !st->write_errno && write_all(st->out_fd, st->out.s, st->out.len) < 0)
        st->write_errno = errno;
    strbuf_reset(&st->out);
}

/* Buffer output, writing when enough has gathered. */
static void emit(struct rewrite_stream *st, const char *bytes, size_t n)
{
    strbuf_append(&st->out, bytes, n);
    if (st->out.len >= OUT_FLUSH_AT)
        flush_out(st);
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
static void emit_received(struct rewrite_stream *st)
{
    struct strbuf h = STRBUF_INIT;
    strbuf_printf(&h, "Received: by %s (postern, from userid %s);\n\t",
                  st->cfg->myhostname, st->info->uid);
    dsn_date(&h, time(NULL));
    strbuf_putc(&h, '\n');
    emit(st, h.s, h.len);
    strbuf_free(&h);
}

/* The header's rewrite context: remote only when
 * remote_header_rewrite_domain is set, as Postfix. */
static enum rewrite_context header_context(const struct rewrite_stream *st)
{
    if (st->info->local && st->info->context != REWRITE_CONTEXT_REMOTE)
        return REWRITE_CONTEXT_LOCAL;   /* (sendmail -G: remote) */
    if (st->info->context == REWRITE_CONTEXT_REMOTE && !*st->cfg->remote_header_rewrite_domain)
        return REWRITE_CONTEXT_NONE;
    return st->info->context;
}

/* Add the headers a local submission lacks, at the end of the header. */
static void emit_missing_headers(struct rewrite_stream *st)
{
    if (header_context(st) == REWRITE_CONTEXT_NONE && !st->cfg->always_add_missing_headers)
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
        dsn_date(&h, now);
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

static void process_checked_header(struct rewrite_stream *st, const struct strbuf *header);

/* Process one complete logical header (folded lines joined by LF, no
 * final LF) of the section `section` (CHECKS_HEADER: the message's own;
 * CHECKS_MIME, CHECKS_NESTED: in the body): check it (header_checks, or
 * mime_header_checks for MIME headers and parts, nested_header_checks for
 * an attached message), then emit it (the message's own: drop, note,
 * rewrite first). */
static void process_section_header(struct rewrite_stream *st, const struct strbuf *header_in,
                                   int section)
{
    const struct strbuf *header = header_in;
    struct strbuf replaced = STRBUF_INIT;
    int which = section;
    if (st->cfg->mime) {
        size_t name_len;
        mime_note_header(&st->mime, header_in->s, header_in->len);
        if (header_field_name(header_in->s, header_in->len, &name_len)
            && mime_header_name(header_in->s, name_len))
            which = CHECKS_MIME;
    }
    struct maplist *maps = !st->checks ? NULL
                           : which == CHECKS_MIME ? st->cfg->mime_header_checks
                           : which == CHECKS_NESTED ? st->cfg->nested_header_checks
                           : st->cfg->header_checks;
    if (maps) {
        struct strbuf prepend = STRBUF_INIT;
        int action = rewrite_check(st->cfg, st->info, which, strbuf_str(header_in), &replaced,
                                   &prepend, &st->reject);
        if (prepend.len) {
            emit(st, prepend.s, prepend.len);
            emit(st, "\n", 1);
        }
        strbuf_free(&prepend);
        if (action == CHECK_REJECT) {
            st->rejected = 1;
            strbuf_reset(&st->out);     /* nothing more reaches the next stage */
            st->phase = STOPPED;
        }
        if (action == CHECK_REJECT || action == CHECK_IGNORE) {
            strbuf_free(&replaced);
            return;
        }
        if (action == CHECK_REPLACE)
            header = &replaced;
    }
    if (section == CHECKS_HEADER) {
        process_checked_header(st, header);
    } else {
        emit(st, header->s ? header->s : "", header->len);
        emit(st, "\n", 1);
    }
    strbuf_free(&replaced);
}

/* One logical header of the message's own header. */
static void process_header(struct rewrite_stream *st, const struct strbuf *header)
{
    process_section_header(st, header, CHECKS_HEADER);
}

/* MIME: a body line inside or at the start of a header section of a part
 * or of an attached message.  1 when the line was taken (collected or
 * emitted), 0 when it is a body line (it may have ended a section). */
static int mime_line(struct rewrite_stream *st, struct strbuf *line, int ended)
{
    int at_start = !st->mid_line;
    st->mid_line = !ended;
    if (!at_start)
        return 0;
    if (st->part_section) {
        size_t name_len;
        int continuation = line->len && (line->s[0] == ' ' || line->s[0] == '\t')
                           && st->part_header.len;
        int field = !continuation && line->len && header_field_name(line->s, line->len, &name_len);
        if (ended && continuation) {
            if (st->part_header.len + 1 + line->len <= st->cfg->header_size_limit) {
                strbuf_putc(&st->part_header, '\n');
                strbuf_append(&st->part_header, line->s, line->len);
            }
            strbuf_reset(line);
            return 1;
        }
        if (st->part_header.len)
            process_section_header(st, &st->part_header, st->part_section);
        strbuf_reset(&st->part_header);
        if (st->phase == STOPPED)
            return 1;
        if (ended && field) {
            strbuf_append(&st->part_header, line->s, line->len);
            strbuf_reset(line);
            return 1;
        }
        /* the section ends: an empty line, or a line that is no header */
        st->part_section = mime_section_end(&st->mime) ? CHECKS_NESTED : 0;
        return 0;
    }
    if (ended && mime_boundary(&st->mime, line->s ? line->s : "", line->len) == MIME_PART) {
        strbuf_append(&st->out, line->s, line->len);
        strbuf_putc(&st->out, '\n');
        strbuf_reset(line);
        st->part_section = CHECKS_MIME;
        return 1;
    }
    return 0;
}

/* Process one logical header after header_checks. */
static void process_checked_header(struct rewrite_stream *st, const struct strbuf *header)
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
    unsigned address_class;
    enum rewrite_context context = header_context(st);
    if (context != REWRITE_CONTEXT_NONE && (address_class = header_address_class(name, name_len))) {
        struct strbuf rewritten = STRBUF_INIT;
        size_t colon = (size_t)((char *)memchr(header->s, ':', header->len) - header->s);
        if (rewrite_address_header(st->cfg, context, address_class, header->s, colon + 1,
                                   &rewritten) != 0)
            st->deferred = 1;
        strbuf_putc(&rewritten, '\n');
        emit(st, rewritten.s, rewritten.len);
        strbuf_free(&rewritten);
        return;
    }
    emit(st, header->s, header->len);
    emit(st, "\n", 1);
}

/* body_checks: one body line (without its LF; `ended` when the LF
 * followed) through the checks, then out. */
static void check_body_line(struct rewrite_stream *st, struct strbuf *line, int ended)
{
    size_t len = line->len;
    if (ended && st->crlf && len && line->s[len - 1] == '\r')
        strbuf_truncate(line, --len);
    if (st->cfg->mime && mime_line(st, line, ended)) {
        if (st->out.len >= OUT_FLUSH_AT)
            flush_out(st);
        return;
    }
    if (st->phase == STOPPED)
        return;
    if (st->cfg->mime)
        mime_body_line(&st->mime, line->s ? line->s : "", line->len);
    const struct strbuf *out = line;
    struct strbuf replaced = STRBUF_INIT, prepend = STRBUF_INIT;
    int action = CHECK_DUNNO;
    if (st->cfg->body_checks && st->checks
        && (st->body_offset < st->cfg->body_checks_size_limit || !st->cfg->body_checks_size_limit))
        action = rewrite_check(st->cfg, st->info, 1, strbuf_str(line), &replaced, &prepend,
                               &st->reject);
    st->body_offset += len + (ended ? 1 : 0);
    if (prepend.len) {
        strbuf_append(&st->out, prepend.s, prepend.len);
        strbuf_putc(&st->out, '\n');
    }
    if (action == CHECK_REJECT) {
        st->rejected = 1;
        strbuf_reset(&st->out);
        st->phase = STOPPED;
    } else if (action != CHECK_IGNORE) {
        if (action == CHECK_REPLACE)
            out = &replaced;
        strbuf_append(&st->out, out->s ? out->s : "", out->len);
        if (ended)
            strbuf_putc(&st->out, '\n');
    }
    strbuf_free(&replaced);
    strbuf_free(&prepend);
    strbuf_reset(line);
    if (st->out.len >= OUT_FLUSH_AT)
        flush_out(st);
}

/* body_checks: cut the body into lines (long ones into pieces of
 * line_length_limit, as Postfix reads them). */
static void emit_body_lines(struct rewrite_stream *st, const char *bytes, size_t n)
{
    size_t limit = st->cfg->line_length_limit;
    while (n && st->phase == IN_BODY) {
        const char *lf = memchr(bytes, '\n', n);
        size_t take = lf ? (size_t)(lf - bytes) : n;
        size_t room = limit > st->body_line.len ? limit - st->body_line.len : 0;
        if (take > room) {
            strbuf_append(&st->body_line, bytes, room);
            bytes += room;
            n -= room;
            check_body_line(st, &st->body_line, 0);
            continue;
        }
        strbuf_append(&st->body_line, bytes, take);
        bytes += take;
        n -= take;
        if (lf) {
            bytes++;
            n--;
            check_body_line(st, &st->body_line, 1);
        }
    }
}

/* Copy body bytes, turning CRLF into LF when the input uses CRLF; small
 * pieces gather in the output buffer, large ones are written at once. */
static void emit_body(struct rewrite_stream *st, const char *bytes, size_t n)
{
    if (st->cfg->body_checks || st->cfg->mime) {
        emit_body_lines(st, bytes, n);
        return;
    }
    if (!st->crlf) {
        if (st->out.len + n < OUT_FLUSH_AT) {
            strbuf_append(&st->out, bytes, n);
            return;
        }
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

/* The header is over: check the hop count, then go on with the body. */
static void end_of_header(struct rewrite_stream *st)
{
    if (st->rejected || st->deferred
        || (st->cfg->hopcount_limit > 0 && st->hops > st->cfg->hopcount_limit)) {
        strbuf_reset(&st->out);         /* nothing more reaches the next stage */
        st->phase = STOPPED;
        return;
    }
    if (st->cfg->mime && mime_section_end(&st->mime))
        st->part_section = CHECKS_NESTED;   /* message/rfc822: a message follows */
    st->phase = IN_BODY;
}

/* One piece of a header line (in st->line, without its LF): `ended` when
 * the line's LF followed, else the piece is header_size_limit bytes long
 * or the input ended without a final LF.  Rewrites and emits what is
 * complete; may end the header. */
static void header_piece(struct rewrite_stream *st, int ended)
{
    struct strbuf *line = &st->line, *header = &st->header;
    size_t limit = st->cfg->header_size_limit;
    int long_piece = !ended && line->len == limit;
    if (ended && line->len && line->s[line->len - 1] == '\r') {
        strbuf_truncate(line, line->len - 1);
        if (st->first)
            st->crlf = 1;
    }
    st->first = 0;
    size_t name_len;
    int continuation = line->len && (line->s[0] == ' ' || line->s[0] == '\t') && header->len;
    int field = !continuation && line->len && header_field_name(line->s, line->len, &name_len);
    if ((continuation || field) && long_piece) {
        /* a header line longer than header_size_limit: as Postfix, keep
         * the first part and discard the excess */
        if (!st->truncated_logged++)
            msg_warn("header line longer than header_size_limit %zu: excess discarded", limit);
        st->phase = DISCARDING;
        ended = 1;
    }
    if (continuation) {
        if (header->len + 1 + line->len <= limit) {
            strbuf_putc(header, '\n');
            strbuf_append(header, line->s, line->len);
        } else if (!st->truncated_logged++) {
            msg_warn("header longer than header_size_limit %zu: excess discarded", limit);
        }
        return;
    }
    if (header->len)
        process_header(st, header);
    strbuf_reset(header);
    if (st->phase == STOPPED)
        return;                 /* header_checks REJECT */
    if (field) {
        strbuf_append(header, line->s, line->len);
        return;
    }
    /* the end of the header: an empty line, or the first body line */
    emit_missing_headers(st);
    emit(st, "\n", 1);
    if (line->len || !ended) {
        emit(st, line->s ? line->s : "", line->len);
        if (ended)
            emit(st, "\n", 1);
    }
    end_of_header(st);
}

/* Header bytes: cut them into line pieces of at most header_size_limit
 * bytes; returns how many bytes were used (the header may end before). */
static size_t feed_header(struct rewrite_stream *st, const char *bytes, size_t n)
{
    size_t used = 0, limit = st->cfg->header_size_limit;
    while (used < n && (st->phase == IN_HEADER || st->phase == DISCARDING)) {
        const char *from = bytes + used;
        size_t avail = n - used;
        if (st->phase == DISCARDING) {
            const char *lf = memchr(from, '\n', avail);
            used += lf ? (size_t)(lf - from) + 1 : avail;
            if (lf)
                st->phase = IN_HEADER;
            continue;
        }
        size_t room = limit - st->line.len;
        size_t span = avail < room ? avail : room;
        const char *lf = memchr(from, '\n', span);
        size_t take = lf ? (size_t)(lf - from) : span;
        strbuf_append(&st->line, from, take);
        used += take + (lf ? 1 : 0);
        if (lf || st->line.len >= limit) {
            header_piece(st, lf != NULL);
            strbuf_reset(&st->line);
        }
    }
    return used;
}

/* A MIME error (rewrite_mime.h): logged now, the message refused at its
 * end (Postfix's cleanup goes on reading and logs each error). */
static void stream_mime_error(void *context, unsigned code, const char *text, size_t len)
{
    struct rewrite_stream *st = context;
    rewrite_log_mime_error(st->info, mime_error_text(code), text, len);
}

struct rewrite_stream *rewrite_stream_begin(const struct rewrite_config *cfg,
                                            const struct rewrite_message_info *info,
                                            int out_fd)
{
    struct rewrite_stream *st = xcalloc(1, sizeof *st);
    st->cfg = cfg;
    st->info = info;
    st->out_fd = out_fd;
    st->checks = rewrite_content_checked(cfg, info->internal);
    st->phase = IN_HEADER;
    st->first = 1;
    st->out = (struct strbuf)STRBUF_INIT;
    st->line = (struct strbuf)STRBUF_INIT;
    st->header = (struct strbuf)STRBUF_INIT;
    st->reject = (struct strbuf)STRBUF_INIT;
    st->body_line = (struct strbuf)STRBUF_INIT;
    st->part_header = (struct strbuf)STRBUF_INIT;
    mime_init(&st->mime, cfg->mime_nesting_limit);
    mime_report(&st->mime, cfg->mime_report, cfg->mime_boundary_length_limit,
                stream_mime_error, st);
    if (info->local && info->uid)
        emit_received(st);
    return st;
}

/* The stream's result so far: 0, -2 or REWRITE_TOO_MANY_HOPS. */
static int stream_status(const struct rewrite_stream *st)
{
    if (st->phase == STOPPED)
        return st->rejected ? REWRITE_REJECTED : st->deferred ? REWRITE_DEFERRED
                                                              : REWRITE_TOO_MANY_HOPS;
    return st->write_errno ? -2 : 0;
}

int rewrite_stream_feed(struct rewrite_stream *st, const void *bytes, size_t n)
{
    if (stream_status(st))
        return stream_status(st);
    size_t used = 0;
    if (st->phase != IN_BODY)
        used = feed_header(st, bytes, n);
    if (st->phase == IN_BODY && used < n)
        emit_body(st, (const char *)bytes + used, n - used);
    return stream_status(st);
}

void rewrite_stream_free(struct rewrite_stream *st)
{
    if (!st)
        return;
    strbuf_free(&st->out);
    strbuf_free(&st->line);
    strbuf_free(&st->header);
    strbuf_free(&st->reject);
    strbuf_free(&st->body_line);
    strbuf_free(&st->part_header);
    mime_free(&st->mime);
    free(st);
}

int rewrite_stream_end(struct rewrite_stream *st, struct strbuf *err)
{
    if (st->phase == IN_HEADER || st->phase == DISCARDING) {
        if (st->phase == IN_HEADER && st->line.len)
            header_piece(st, 0);        /* the last line had no LF */
        if (st->phase != IN_BODY && st->phase != STOPPED) {
            /* end of input inside the header */
            if (st->header.len)
                process_header(st, &st->header);
            emit_missing_headers(st);
            end_of_header(st);
        }
    }
    if (st->phase == IN_BODY && st->body_line.len)
        check_body_line(st, &st->body_line, 0);     /* the last line had no LF */
    if (st->phase == IN_BODY && st->part_header.len) {
        /* the message ended inside a part's header section */
        process_section_header(st, &st->part_header, st->part_section);
        strbuf_reset(&st->part_header);
    }
    if (st->phase != STOPPED && st->mime.errors) {
        /* a MIME error refuses the message, unless a check's REJECT came
         * first (its reason stays, as in Postfix): 5.6.0 and the most
         * serious error's text */
        st->rejected = 1;
        strbuf_printf(&st->reject, "5.6.0 %s", mime_error_text(st->mime.errors));
        strbuf_reset(&st->out);
        st->phase = STOPPED;
    }
    if (st->phase != STOPPED) {
        if (st->pending_cr)
            strbuf_putc(&st->out, '\r');
        flush_out(st);
    }
    int status = stream_status(st);
    if (status == REWRITE_REJECTED) {
        strbuf_puts(err, strbuf_str(&st->reject));
    } else if (status == REWRITE_DEFERRED) {
        strbuf_puts(err, REWRITE_EXPANSION_ERROR);
    } else if (status == REWRITE_TOO_MANY_HOPS) {
        strbuf_printf(err, "Too many hops: %ld Received: headers", st->hops);
    } else if (status) {
        errno = st->write_errno;
        strbuf_printf(err, "write the message: %s", strerror(errno));
    }
    int saved = errno;
    rewrite_stream_free(st);
    errno = saved;
    return status;
}

int rewrite_message(const struct rewrite_config *cfg,
                    const struct rewrite_message_info *info,
                    int in_fd, int out_fd, struct strbuf *err)
{
    struct rewrite_stream *st = rewrite_stream_begin(cfg, info, out_fd);
    char *chunk = xmalloc(REWRITE_READ_SIZE);
    for (;;) {
        ssize_t got = read(in_fd, chunk, REWRITE_READ_SIZE);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            strbuf_printf(err, "read the message: %s", strerror(errno));
            rewrite_stream_free(st);
            free(chunk);
            return -1;
        }
        if (got == 0 || rewrite_stream_feed(st, chunk, (size_t)got) != 0)
            break;
    }
    free(chunk);
    return rewrite_stream_end(st, err);
}
