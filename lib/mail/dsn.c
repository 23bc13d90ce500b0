/* dsn.c - build RFC 3464 delivery status notifications (see dsn.h).
 *
 * The layout and the fields follow Postfix's bounce(8); the human-readable
 * wording is postern's own.  Every line written is kept below 998 bytes:
 * generated text is wrapped at 79 columns where it has spaces and cut with
 * a folding space where it has none; lines of the returned original longer
 * than DSN_MAX_LINE are cut the same way (as Postfix's SMTP client does
 * with smtp_line_length_limit), and NUL bytes in it become '?'.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "fdio.h"
#include "strbuf.h"

#define DSN_MAX_LINE    990     /* longest line written, without its LF */
#define WRAP_WIDTH      79      /* generated text, as Postfix's line_wrap */
#define WRAP_INDENT     4
#define FLUSH_AT        65536
#define READ_CHUNK      65536

/* The report being written: a buffer flushed to the descriptor. */
struct writer {
    int fd;
    struct strbuf buf;
    int failed;             /* a write failed; errno saved */
    int saved_errno;
};

/* Flush the buffer to the descriptor. */
static void writer_flush(struct writer *w)
{
    if (!w->failed && w->buf.len && write_all(w->fd, w->buf.s, w->buf.len) < 0) {
        w->failed = 1;
        w->saved_errno = errno;
    }
    strbuf_reset(&w->buf);
}

/* Flush when the buffer has grown large. */
static void writer_maybe_flush(struct writer *w)
{
    if (w->buf.len >= FLUSH_AT)
        writer_flush(w);
}

/* Write one line, cut into pieces of at most DSN_MAX_LINE bytes, each
 * continuation starting with a space (a fold in a header field). */
static void put_line(struct writer *w, const char *s, size_t n)
{
    size_t room = DSN_MAX_LINE;
    while (n > room) {
        strbuf_append(&w->buf, s, room);
        strbuf_puts(&w->buf, "\n ");
        s += room;
        n -= room;
        room = DSN_MAX_LINE - 1;
    }
    strbuf_append(&w->buf, s, n);
    strbuf_putc(&w->buf, '\n');
    writer_maybe_flush(w);
}

/* put_line for a C string. */
static void put_str(struct writer *w, const char *s)
{
    put_line(w, s, strlen(s));
}

/* put_line with printf formatting. */
static void put_fmt(struct writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_fmt(struct writer *w, const char *fmt, ...)
{
    struct strbuf line = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&line, fmt, ap);
    va_end(ap);
    put_line(w, line.s ? line.s : "", line.len);
    strbuf_free(&line);
}

/* Start a part of the multipart/report: the boundary after an empty line,
 * its description and type, "8bit" when it holds 8-bit text, and the empty
 * line that ends its header. */
static void put_part_start(struct writer *w, const char *boundary, const char *description,
                           const char *content_type, int eight_bit)
{
    put_str(w, "");
    put_fmt(w, "--%s", boundary);
    put_fmt(w, "Content-Description: %s", description);
    put_fmt(w, "Content-Type: %s", content_type);
    if (eight_bit)
        put_str(w, "Content-Transfer-Encoding: 8bit");
    put_str(w, "");
}

/* Write text wrapped at WRAP_WIDTH on spaces, continuation lines indented
 * by WRAP_INDENT (a fold in a header field, as Postfix's line_wrap). */
static void put_wrapped(struct writer *w, const char *text)
{
    size_t len = strlen(text);
    size_t start = 0;
    int indent = 0;
    while (start < len) {
        size_t width = WRAP_WIDTH - (size_t)indent;
        size_t end = len;
        if (len - start > width) {
            /* break at the last space within the width, else the next one */
            size_t cut = start + width;
            while (cut > start && text[cut] != ' ')
                cut--;
            if (cut == start) {
                cut = start + width;
                while (cut < len && text[cut] != ' ')
                    cut++;
            }
            end = cut;
        }
        struct strbuf line = STRBUF_INIT;
        for (int i = 0; i < indent; i++)
            strbuf_putc(&line, ' ');
        strbuf_append(&line, text + start, end - start);
        put_line(w, line.s, line.len);
        strbuf_free(&line);
        start = end;
        while (start < len && text[start] == ' ')
            start++;
        indent = WRAP_INDENT;
    }
}

/* Append s with control characters (and non-ASCII bytes unless utf8 is
 * allowed) replaced by '?': text from the network, made safe to report. */
static void append_clean(struct strbuf *out, const char *s, int allow_utf8)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\t')
            strbuf_putc(out, ' ');
        else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !allow_utf8))
            strbuf_putc(out, '?');
        else
            strbuf_putc(out, *p);
    }
}

/* A cleaned copy of s in a static-lifetime buffer owned by the caller. */
static const char *clean(struct strbuf *out, const char *s, int allow_utf8)
{
    strbuf_reset(out);
    append_clean(out, s ? s : "", allow_utf8);
    return strbuf_str(out);
}

/* 1 when s has a byte outside US-ASCII. */
static int has_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* Append an address in RFC 5322 form: the local part quoted when it holds
 * characters that an atom may not (as Postfix's quote_822_local). */
static void append_address(struct strbuf *out, const char *address, int allow_utf8)
{
    struct strbuf cleaned = STRBUF_INIT;
    const char *a = clean(&cleaned, address, allow_utf8);
    const char *at = strrchr(a, '@');
    size_t local_len = at ? (size_t)(at - a) : strlen(a);
    int needs_quotes = local_len == 0 && at;
    for (size_t i = 0; i < local_len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x80 && !strchr("!#$%&'*+-/=?^_`{|}~.", c)
            && !(c >= '0' && c <= '9') && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
            needs_quotes = 1;
    }
    if (local_len && (a[0] == '.' || a[local_len - 1] == '.' || memmem(a, local_len, "..", 2)))
        needs_quotes = 1;
    if (needs_quotes) {
        strbuf_putc(out, '"');
        for (size_t i = 0; i < local_len; i++) {
            if (a[i] == '"' || a[i] == '\\')
                strbuf_putc(out, '\\');
            strbuf_putc(out, a[i]);
        }
        strbuf_putc(out, '"');
        strbuf_puts(out, a + local_len);
    } else {
        strbuf_puts(out, a);
    }
    strbuf_free(&cleaned);
}

void dsn_date(struct strbuf *out, time_t when)
{
    struct tm tm;
    char text[80];
    if (localtime_r(&when, &tm) == NULL
        || strftime(text, sizeof text, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        snprintf(text, sizeof text, "Thu,  1 Jan 1970 00:00:00 +0000 (UTC)");
    strbuf_puts(out, text);
}

const char *dsn_default_action(enum dsn_kind kind)
{
    switch (kind) {
    case DSN_DELAY:
        return "delayed";
    case DSN_SUCCESS:
        return "delivered";
    case DSN_VERIFY:
        return "deliverable";
    default:
        return "failed";
    }
}

/* The default status code of a kind. */
static const char *default_status(enum dsn_kind kind)
{
    switch (kind) {
    case DSN_DELAY:
        return "4.0.0";
    case DSN_SUCCESS:
    case DSN_VERIFY:
        return "2.0.0";
    default:
        return "5.0.0";
    }
}

/* 1 when s is an RFC 3463 status code: class.subject.detail. */
static int valid_status(const char *s)
{
    if (!s || !s[0] || !strchr("245", s[0]) || s[1] != '.')
        return 0;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = strspn(p, "0123456789");
        if (digits < 1 || digits > 3)
            return 0;
        p += digits;
        if (part == 0 && *p++ != '.')
            return 0;
    }
    return *p == '\0';
}

/* "4 hour(s)": a duration in the largest whole unit, for people. */
static void append_duration(struct strbuf *out, long long seconds)
{
    static const struct { long long size; const char *name; } units[] = {
        {7 * 86400, "week"}, {86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds >= units[i].size || units[i].size == 1) {
            if (units[i].size == 7 * 86400 && seconds % (7 * 86400) != 0)
                continue;       /* "10 day(s)" reads better than "1 week(s)" */
            strbuf_printf(out, "%lld %s(s)", seconds / units[i].size, units[i].name);
            return;
        }
    }
}

/* The words above the per-recipient list (not in postmaster copies). */
static void put_boilerplate(struct writer *w, const struct dsn_report *r)
{
    struct strbuf host = STRBUF_INIT;
    put_fmt(w, "This is the mail system at host %s.", clean(&host, r->myhostname, 0));
    strbuf_free(&host);
    put_str(w, "");
    switch (r->kind) {
    case DSN_FAILURE:
        put_str(w, "I regret to tell you that your message could not be delivered");
        put_str(w, "to one or more of its recipients. A copy of it is attached below.");
        put_str(w, "");
        put_str(w, "If you need help, write to postmaster and include this report.");
        put_str(w, "You may remove your own text from the returned message first.");
        break;
    case DSN_DELAY: {
        struct strbuf line = STRBUF_INIT;
        put_str(w, "#################################################################");
        put_str(w, "# ONLY A WARNING: THERE IS NO NEED TO SEND YOUR MESSAGE AGAIN.  #");
        put_str(w, "#################################################################");
        put_str(w, "");
        strbuf_puts(&line, "Your message has not been delivered for more than ");
        append_duration(&line, r->delay_warning > 0 ? r->delay_warning : 0);
        strbuf_putc(&line, '.');
        put_str(w, line.s);
        strbuf_set(&line, "It will be tried again until it is ");
        append_duration(&line, r->queue_lifetime > 0 ? r->queue_lifetime : 0);
        strbuf_puts(&line, " old.");
        put_str(w, line.s);
        strbuf_free(&line);
        put_str(w, "");
        put_str(w, "If you need help, write to postmaster and include this report.");
        put_str(w, "You may remove your own text from the message headers below.");
        break;
    }
    case DSN_SUCCESS:
        put_str(w, "Your message reached the destinations listed below. Where it was");
        put_str(w, "put into a mailbox, no further notice will follow; where it was");
        put_str(w, "passed on to another system, that system may still report");
        put_str(w, "problems on the way.");
        break;
    case DSN_VERIFY:
        /* Postfix's words for a sendmail -bv report */
        put_str(w, "Enclosed is the mail delivery report that you requested.");
        break;
    }
    put_str(w, "");
    put_str(w, "                   The mail system");
}

/* The address inside an ORCPT value "rfc822;addr", or NULL. */
static const char *orcpt_address(const char *orcpt)
{
    if (!orcpt)
        return NULL;
    const char *semi = strchr(orcpt, ';');
    if (!semi)
        return NULL;
    semi++;
    while (*semi == ' ')
        semi++;
    return *semi ? semi : NULL;
}

/* The human-readable line for one recipient. */
static void put_recipient_text(struct writer *w, const struct dsn_report *r,
                               const struct dsn_recipient *rcpt)
{
    struct strbuf line = STRBUF_INIT;
    const char *orig = orcpt_address(rcpt->orcpt);
    strbuf_putc(&line, '<');
    append_clean(&line, rcpt->address, r->smtputf8);
    strbuf_putc(&line, '>');
    if (orig && strcasecmp(orig, rcpt->address) != 0) {
        strbuf_puts(&line, " (expanded from <");
        append_clean(&line, orig, r->smtputf8);
        strbuf_puts(&line, ">)");
    }
    strbuf_puts(&line, ": ");
    if (rcpt->text && *rcpt->text)
        append_clean(&line, rcpt->text, 0);
    else
        append_clean(&line, valid_status(rcpt->status) ? rcpt->status : default_status(r->kind), 0);
    put_str(w, "");
    put_wrapped(w, line.s);
    strbuf_free(&line);
}

/* The Diagnostic-Code value: given, or "smtp; REPLY" taken from a reason of
 * the form "host H said: 550 ... (in reply to ...)", or "X-NAME; reason". */
static void append_diagnostic(struct strbuf *out, const struct dsn_report *r,
                              const struct dsn_recipient *rcpt)
{
    if (rcpt->diagnostic && *rcpt->diagnostic) {
        append_clean(out, rcpt->diagnostic, 0);
        return;
    }
    const char *text = rcpt->text && *rcpt->text ? rcpt->text
                       : valid_status(rcpt->status) ? rcpt->status : default_status(r->kind);
    const char *said = strstr(text, " said: ");
    if (said && strncmp(text, "host ", 5) == 0 && strspn(said + 7, "0123456789") == 3) {
        const char *reply = said + 7;
        const char *end = strstr(reply, " (in reply to ");
        struct strbuf copy = STRBUF_INIT;
        strbuf_append(&copy, reply, end ? (size_t)(end - reply) : strlen(reply));
        strbuf_puts(out, "smtp; ");
        append_clean(out, strbuf_str(&copy), 0);
        strbuf_free(&copy);
        return;
    }
    strbuf_puts(out, "X-");
    for (const char *p = r->mail_name && *r->mail_name ? r->mail_name : "Postern"; *p; p++)
        strbuf_putc(out, (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f
                    || strchr("()<>@,;:\\\".[]", *p) ? '-' : *p);
    strbuf_puts(out, "; ");
    append_clean(out, text, 0);
}

/* The per-recipient fields of message/delivery-status. */
static void put_recipient_dsn(struct writer *w, const struct dsn_report *r,
                              const struct dsn_recipient *rcpt)
{
    struct strbuf field = STRBUF_INIT;
    int utf8 = r->smtputf8 && has_non_ascii(rcpt->address);
    put_str(w, "");
    strbuf_printf(&field, "Final-Recipient: %s; ", utf8 ? "utf-8" : "rfc822");
    append_clean(&field, rcpt->address, utf8);
    put_wrapped(w, field.s);
    if (rcpt->orcpt && *rcpt->orcpt) {
        strbuf_set(&field, "Original-Recipient: ");
        append_clean(&field, rcpt->orcpt, r->smtputf8);
        put_wrapped(w, field.s);
    }
    const char *action = rcpt->action && *rcpt->action ? rcpt->action : dsn_default_action(r->kind);
    if (r->kind == DSN_FAILURE)
        action = "failed";
    strbuf_set(&field, "Action: ");
    append_clean(&field, action, 0);
    put_str(w, field.s);
    put_fmt(w, "Status: %s", valid_status(rcpt->status) ? rcpt->status : default_status(r->kind));
    if (rcpt->remote_mta && *rcpt->remote_mta) {
        strbuf_set(&field, "Remote-MTA: ");
        if (!strchr(rcpt->remote_mta, ';'))
            strbuf_puts(&field, "dns; ");
        append_clean(&field, rcpt->remote_mta, 0);
        put_wrapped(w, field.s);
    }
    strbuf_set(&field, "Diagnostic-Code: ");
    append_diagnostic(&field, r, rcpt);
    put_wrapped(w, field.s);
    if (r->kind == DSN_DELAY && r->arrival > 0 && r->queue_lifetime > 0) {
        strbuf_set(&field, "Will-Retry-Until: ");
        dsn_date(&field, (time_t)(r->arrival + r->queue_lifetime));
        put_str(w, field.s);
    }
    strbuf_free(&field);
}

/* What the first pass over the original found. */
struct original_scan {
    off_t header_end;       /* bytes of header (up to the first non-header line) */
    int eight_bit_header;   /* a byte >= 0x80 in the header */
    int eight_bit_all;      /* ... anywhere */
};

/* Scan the original: where its header ends, and whether it has 8-bit
 * bytes.  Stops after the header when only the header is returned.
 * Returns 0, or -1 on a read error (errno). */
static int scan_original(const struct dsn_report *r, int headers_only,
                         struct original_scan *scan)
{
    enum { LINE_START, NAME, BEFORE_COLON, IN_LINE, BODY } state = LINE_START;
    static const char name_chars[] =
        "!\"#$%&'()*+,-./0123456789;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
        "abcdefghijklmnopqrstuvwxyz{|}~";
    char buf[READ_CHUNK];
    off_t done = 0, line_start = 0;
    memset(scan, 0, sizeof *scan);
    scan->header_end = r->content_length;
    while (done < r->content_length) {
        size_t want = sizeof buf;
        if ((off_t)want > r->content_length - done)
            want = (size_t)(r->content_length - done);
        ssize_t got = pread_retry(r->content_fd, buf, want, r->content_offset + done);
        if (got < 0)
            return -1;
        if (got == 0)
            break;      /* shorter than announced: take what is there */
        for (ssize_t i = 0; i < got; i++) {
            unsigned char c = (unsigned char)buf[i];
            off_t at = done + i;
            if (c >= 0x80) {
                scan->eight_bit_all = 1;
                if (state != BODY)
                    scan->eight_bit_header = 1;
            }
            switch (state) {
            case LINE_START:
                line_start = at;
                if (c == ' ' || c == '\t')
                    state = IN_LINE;
                else if (c != '\n' && c != ':' && memchr(name_chars, c, sizeof name_chars - 1))
                    state = NAME;
                else
                    state = BODY;
                break;
            case NAME:
                if (c == ':')
                    state = IN_LINE;
                else if (c == ' ' || c == '\t')
                    state = BEFORE_COLON;
                else if (!memchr(name_chars, c, sizeof name_chars - 1))
                    state = BODY;
                break;
            case BEFORE_COLON:
                if (c == ':')
                    state = IN_LINE;
                else if (c != ' ' && c != '\t')
                    state = BODY;
                break;
            case IN_LINE:
                if (c == '\n')
                    state = LINE_START;
                break;
            case BODY:
                break;
            }
            if (state == BODY && scan->header_end == r->content_length) {
                scan->header_end = line_start;
                if (headers_only)
                    return 0;
            }
        }
        done += got;
    }
    if (state != BODY && done < scan->header_end)
        scan->header_end = done;
    return 0;
}

/* Copy length bytes of the original, cutting over-long lines and replacing
 * NUL bytes, so that the part stays valid.  Ends with a LF.  0 or -1. */
static int copy_original(struct writer *w, const struct dsn_report *r, off_t length)
{
    char buf[READ_CHUNK];
    off_t done = 0;
    size_t column = 0;
    while (done < length) {
        size_t want = sizeof buf;
        if ((off_t)want > length - done)
            want = (size_t)(length - done);
        ssize_t got = pread_retry(r->content_fd, buf, want, r->content_offset + done);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            char c = buf[i];
            if (c == '\n') {
                column = 0;
            } else {
                if (column >= DSN_MAX_LINE) {
                    strbuf_puts(&w->buf, "\n ");
                    column = 1;
                }
                column++;
                if (c == '\0')
                    c = '?';
            }
            strbuf_putc(&w->buf, c);
        }
        writer_maybe_flush(w);
        done += got;
    }
    if (column > 0)
        strbuf_putc(&w->buf, '\n');
    return 0;
}

/* The MIME boundary: the caller's unique text and the host name, limited to
 * the characters and the length RFC 2046 allows. */
static void make_boundary(struct strbuf *out, const struct dsn_report *r)
{
    static const char allowed[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?";
    struct strbuf raw = STRBUF_INIT;
    strbuf_printf(&raw, "%s/%s", r->boundary_salt ? r->boundary_salt : "0",
                  r->myhostname ? r->myhostname : "localhost");
    for (size_t i = 0; i < raw.len && out->len < 70; i++)
        strbuf_putc(out, strchr(allowed, raw.s[i]) && raw.s[i] ? raw.s[i] : '-');
    strbuf_free(&raw);
}

/* The Subject: of a notice. */
static const char *subject(const struct dsn_report *r)
{
    switch (r->kind) {
    case DSN_DELAY:
        return r->postmaster_copy ? "Postmaster Warning: Delayed Mail"
                                  : "Delayed Mail (still being retried)";
    case DSN_SUCCESS:
        return "Successful Mail Delivery Report";
    case DSN_VERIFY:
        return "Mail Delivery Status Report";
    default:
        return r->postmaster_copy ? "Postmaster Copy: Undelivered Mail"
                                  : "Undelivered Mail Returned to Sender";
    }
}

/* The message header and the start of the text part. */
static void put_header(struct writer *w, const struct dsn_report *r,
                       const char *boundary, int eight_bit)
{
    struct strbuf field = STRBUF_INIT, host = STRBUF_INIT;
    const char *hostname = clean(&host, r->myhostname, 0);
    put_fmt(w, "From: Mail Delivery System <MAILER-DAEMON@%s>", hostname);
    put_fmt(w, "Subject: %s", subject(r));
    strbuf_puts(&field, "To: <");
    append_address(&field, r->to, r->smtputf8);
    strbuf_putc(&field, '>');
    put_wrapped(w, field.s);
    put_fmt(w, "Auto-Submitted: %s", r->postmaster_copy ? "auto-generated" : "auto-replied");
    strbuf_set(&field, "Date: ");
    dsn_date(&field, r->now);
    put_str(w, field.s);
    struct tm tm;
    char stamp[32] = "19700101000000";
    if (gmtime_r(&r->now, &tm))
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    strbuf_reset(&field);
    for (const char *p = r->boundary_salt ? r->boundary_salt : "0"; *p; p++)
        strbuf_putc(&field, strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-_", *p)
                    ? *p : '-');
    put_fmt(w, "Message-Id: <%s.%s@%s>", stamp, field.s, hostname);
    put_str(w, "MIME-Version: 1.0");
    put_str(w, "Content-Type: multipart/report; report-type=delivery-status;");
    put_fmt(w, "\tboundary=\"%s\"", boundary);
    if (eight_bit)
        put_str(w, "Content-Transfer-Encoding: 8bit");
    put_str(w, "");
    put_str(w, "This is a MIME-encapsulated message.");
    put_part_start(w, boundary, "Notification",
                   r->smtputf8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
                   r->smtputf8);
    strbuf_free(&field);
    strbuf_free(&host);
}

/* The per-message fields of message/delivery-status. */
static void put_message_dsn(struct writer *w, const struct dsn_report *r, const char *boundary)
{
    struct strbuf field = STRBUF_INIT, name = STRBUF_INIT;
    for (const char *p = r->mail_name && *r->mail_name ? r->mail_name : "Postern"; *p; p++)
        strbuf_putc(&name, (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f
                    || strchr("()<>@,;:\\\".[]", *p) ? '-' : *p);
    put_part_start(w, boundary, "Delivery report",
                   r->smtputf8 ? "message/global-delivery-status" : "message/delivery-status",
                   r->smtputf8);
    strbuf_set(&field, "Reporting-MTA: dns; ");
    append_clean(&field, r->myhostname, 0);
    put_wrapped(w, field.s);
    if (r->envid && *r->envid) {
        strbuf_set(&field, "Original-Envelope-Id: ");
        append_clean(&field, r->envid, 0);
        put_wrapped(w, field.s);
    }
    strbuf_reset(&field);
    strbuf_printf(&field, "X-%s-Queue-ID: ", name.s);
    append_clean(&field, r->queue_id, 0);
    put_wrapped(w, field.s);
    strbuf_reset(&field);
    int utf8 = r->smtputf8 && has_non_ascii(r->sender);
    strbuf_printf(&field, "X-%s-Sender: %s; ", name.s, utf8 ? "utf-8" : "rfc822");
    if (*r->sender)
        append_address(&field, r->sender, utf8);
    else
        strbuf_puts(&field, "MAILER-DAEMON");
    put_wrapped(w, field.s);
    if (r->arrival > 0) {
        strbuf_set(&field, "Arrival-Date: ");
        dsn_date(&field, (time_t)r->arrival);
        put_str(w, field.s);
    }
    strbuf_free(&field);
    strbuf_free(&name);
}

int dsn_write(const struct dsn_report *r, int fd, struct strbuf *err)
{
    struct writer w = {.fd = fd, .buf = STRBUF_INIT};
    struct strbuf boundary = STRBUF_INIT, field = STRBUF_INIT;
    struct original_scan scan = {0, 0, 0};
    int available = r->content_fd >= 0 && r->content_length >= 0;

    /* the whole message or only its header (Postfix: also when it is empty
     * or larger than bounce_size_limit, so MIME is never cut in the middle) */
    int headers_only = r->ret_headers;
    if (r->size_limit > 0 && (r->content_length <= 0 || r->content_length > r->size_limit))
        headers_only = 1;
    if (available && scan_original(r, headers_only, &scan) < 0) {
        strbuf_printf(err, "read the original message: %s", strerror(errno));
        return -1;
    }
    int original_8bit = r->eight_bit || (headers_only ? scan.eight_bit_header : scan.eight_bit_all);
    make_boundary(&boundary, r);

    put_header(&w, r, boundary.s, original_8bit || r->smtputf8);
    if (!r->postmaster_copy)
        put_boilerplate(&w, r);
    for (size_t i = 0; i < r->rcpt_count; i++)
        put_recipient_text(&w, r, &r->rcpt[i]);

    put_message_dsn(&w, r, boundary.s);
    for (size_t i = 0; i < r->rcpt_count; i++)
        put_recipient_dsn(&w, r, &r->rcpt[i]);

    const char *description = r->kind != DSN_SUCCESS && r->kind != DSN_VERIFY
        ? (headers_only ? "Undelivered Message Headers" : "Undelivered Message")
        : (headers_only ? "Message Headers" : "Message");
    const char *type = r->smtputf8
        ? (headers_only ? "message/global-headers" : "message/global")
        : (headers_only ? "text/rfc822-headers" : "message/rfc822");
    put_part_start(&w, boundary.s, description, type, original_8bit);
    if (!available) {
        put_str(&w, "\t--- The original message is not available ---");
    } else {
        strbuf_set(&field, "Return-Path: <");
        append_clean(&field, r->sender, r->smtputf8);
        strbuf_putc(&field, '>');
        put_str(&w, field.s);
        if (copy_original(&w, r, headers_only ? scan.header_end : r->content_length) < 0) {
            strbuf_printf(err, "read the original message: %s", strerror(errno));
            strbuf_free(&w.buf);
            strbuf_free(&boundary);
            strbuf_free(&field);
            return -1;
        }
    }
    put_str(&w, "");
    put_fmt(&w, "--%s--", boundary.s);
    writer_flush(&w);
    strbuf_free(&w.buf);
    strbuf_free(&boundary);
    strbuf_free(&field);
    if (w.failed) {
        errno = w.saved_errno;
        strbuf_printf(err, "write the notice: %s", strerror(errno));
        return -1;
    }
    return 0;
}
