/* session.c - one SMTP or LMTP dialog with one server, for what is still
 * open of a batch: greeting, EHLO (HELO when EHLO is refused) or LHLO,
 * STARTTLS (tls.c), AUTH (sasl.c), MAIL FROM with SIZE/BODY/SMTPUTF8/RET/ENVID, RCPT TO
 * with NOTIFY/ORCPT, DATA and the message (LF to CR LF, dot-stuffed),
 * pipelined when the server offers PIPELINING.  Every reply that decides a
 * recipient's fate is kept as the server gave it, in Postfix's words:
 * "host mx.example.com[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO
 * command)".  A 5xx is final; a 4xx, a timeout or a lost connection leaves
 * the recipient open for the next server (main.c defers it at the end).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fdio.h"
#include "log.h"
#include "monotonic.h"
#include "map.h"
#include "mime_downgrade.h"
#include "rewrite_mime.h"
#include "smtp.h"
#include "smtpargs.h"
#include "xalloc.h"

/* A failed read or write: Postfix's "conversation with HOST timed out
 * while ..." or "lost connection with HOST while ...", for every recipient
 * still open. */
void io_failure(struct smtp_session *s, const char *relay, const char *doing)
{
    switch (s->conn.error) {
    case SMTP_IO_TIMEOUT:
        batch_result_open(s->batch, relay, 0, "4.4.2", "conversation with %s timed out while %s",
                          s->host, doing);
        break;
    case SMTP_IO_PROTOCOL:
        batch_result_open(s->batch, relay, 0, "4.5.0", "host %s sent a malformed reply while %s",
                          s->host, doing);
        break;
    default:
        batch_result_open(s->batch, relay, 0, "4.4.2", "lost connection with %s while %s",
                          s->host, doing);
        break;
    }
}

/* A reply that fails every open recipient: 5xx final, 4xx for the next server. */
static void site_failure(struct smtp_session *s, const char *command)
{
    batch_result_open(s->batch, s->relay, s->reply.code >= 500, s->reply.dsn,
                      "host %s said: %s (in reply to %s command)", s->host, s->reply.text.s,
                      command);
}

/* Send one command and read its reply; 0, or -1 after io_failure(). */
static int command(struct smtp_session *s, int timeout, const char *doing, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int command(struct smtp_session *s, int timeout, const char *doing, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&s->conn.out, fmt, ap);
    va_end(ap);
    strbuf_puts(&s->conn.out, "\r\n");
    if (smtp_flush(&s->conn, timeout) != 0 || smtp_read_reply(&s->conn, &s->reply, timeout) != 0) {
        io_failure(s, s->relay, doing);
        return -1;
    }
    return 0;
}

/* 1 when the text has a byte outside ASCII. */
static int non_ascii(const char *text)
{
    for (; *text; text++)
        if ((unsigned char)*text >= 0x80)
            return 1;
    return 0;
}

/* The greeting and EHLO/HELO/LHLO; 0 when the session may go on. */
static int handshake(struct smtp_session *s)
{
    const struct smtp_setup *setup = s->setup;
    if (smtp_read_reply(&s->conn, &s->reply, setup->helo_timeout) != 0) {
        io_failure(s, s->relay, "receiving the initial server greeting");
        return -1;
    }
    if (s->reply.code / 100 != 2) {
        int hard = s->reply.code >= 500 && !setup->skip_5xx_greeting;
        char dsn[sizeof s->reply.dsn];
        memcpy(dsn, s->reply.dsn, sizeof dsn);
        if (!hard)
            dsn[0] = '4';
        batch_result_open(s->batch, s->relay, hard, dsn, "host %s refused to talk to me: %s",
                          s->host, s->reply.text.s);
        return -1;
    }
    if (setup->lmtp) {
        if (command(s, setup->helo_timeout, "performing the LHLO handshake", "LHLO %s",
                    setup->helo_name) != 0)
            return -1;
        if (s->reply.code / 100 != 2) {
            site_failure(s, "LHLO");
            return -1;
        }
        s->esmtp = 1;
    } else {
        if (!setup->never_send_ehlo) {
            if (command(s, setup->helo_timeout, "performing the EHLO handshake", "EHLO %s",
                        setup->helo_name) != 0)
                return -1;
            s->esmtp = s->reply.code / 100 == 2;
        }
        if (!s->esmtp) {
            if (command(s, setup->helo_timeout, "performing the HELO handshake", "HELO %s",
                        setup->helo_name) != 0)
                return -1;
            if (s->reply.code / 100 != 2) {
                site_failure(s, "HELO");
                return -1;
            }
        }
        /* a server that greets with our own name is ourselves (Postfix's
         * loop check; not for LMTP) */
        const char *first = s->reply.lines.count ? s->reply.lines.line[0] : "";
        size_t n = strcspn(first, " ");
        if (n == strlen(setup->myhostname) && strncasecmp(first, setup->myhostname, n) == 0) {
            msg_warn("host %s replied to HELO/EHLO with my own hostname %s", s->host,
                     setup->myhostname);
            batch_result_open(s->batch, s->relay, s->target->best,
                              s->target->best ? "5.4.6" : "4.4.6",
                              "mail for %s loops back to myself", s->batch->nexthop);
            return -1;
        }
    }
    if (s->esmtp)
        return session_features(s);
    return 0;
}

int session_features(struct smtp_session *s)
{
    smtp_features_parse(&s->reply, &s->features);
    const struct smtp_setup *setup = s->setup;
    struct strbuf mapped = STRBUF_INIT;
    const char *list = setup->discard_ehlo;
    int found = setup->discard_ehlo_maps
                    ? maplist_lookup(setup->discard_ehlo_maps, s->target->addr, &mapped)
                    : MAP_NOTFOUND;
    if (found == MAP_RETRY) {
        msg_warn("%s: %s map lookup error for %s", s->batch->req->queue_id,
                 setup->lmtp ? "lmtp_discard_lhlo_keyword_address_maps"
                             : "smtp_discard_ehlo_keyword_address_maps", s->target->addr);
        batch_result_open(s->batch, s->relay, 0, "4.3.0", "table lookup failure");
        strbuf_free(&mapped);
        return -1;
    }
    if (found == MAP_FOUND)
        list = strbuf_str(&mapped);
    struct strlist words = STRLIST_INIT;
    struct strbuf bad = STRBUF_INIT;
    if (list_split(list, &words, &bad) < 0)
        msg_warn("%s: discard EHLO keywords \"%s\": %s", s->batch->req->queue_id, list, bad.s);
    strbuf_free(&bad);
    struct smtp_features *f = &s->features;
    static const struct {
        const char *name;
        size_t offset;
    } known[] = {
#define FEATURE(name, field) {name, offsetof(struct smtp_features, field)}
        FEATURE("pipelining", pipelining), FEATURE("8bitmime", eightbitmime),
        FEATURE("smtputf8", smtputf8), FEATURE("dsn", dsn), FEATURE("starttls", starttls),
        FEATURE("chunking", chunking), FEATURE("requiretls", requiretls),
        FEATURE("size", size_given),
#undef FEATURE
    };
    struct strbuf gone = STRBUF_INIT;
    int silent = 0;
    for (size_t i = 0; i < words.count; i++) {
        const char *word = words.item[i];
        int offered = 0;
        if (strcasecmp(word, "silent-discard") == 0)
            silent = 1;
        if (strcasecmp(word, "auth") == 0) {
            offered = f->auth.len > 0;
            strbuf_reset(&f->auth);
        }
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++) {
            if (strcasecmp(word, known[j].name) == 0) {
                int *flag = (int *)((char *)f + known[j].offset);
                offered = *flag;
                *flag = 0;
                if (flag == &f->size_given)
                    f->size = 0;
            }
        }
        if (offered) {
            if (gone.len)
                strbuf_putc(&gone, ' ');
            for (const char *c = word; *c; c++)
                strbuf_putc(&gone, (char)toupper((unsigned char)*c));
        }
    }
    if (gone.len && !silent)
        msg_info("%s: discarding EHLO keywords: %s", s->batch->req->queue_id, gone.s);
    strbuf_free(&gone);
    strlist_free(&words);
    strbuf_free(&mapped);
    return 0;
}

/* The message as DATA wants it: CR LF line ends, dot-stuffed, ".".  A CR
 * not followed by LF goes as a space (Postfix's smtp(8) does the same):
 * a bare CR is not allowed in SMTP.  For BDAT (chunk set) the same bytes
 * without the dot-stuffing, gathered in chunk to be counted before they
 * are sent. */
struct body_writer {
    struct smtp_session *s;
    int line_start, pending_cr;
    struct strbuf *chunk;       /* BDAT: the bytes of the next chunk */
};

static void put(struct body_writer *w, const char *bytes, size_t n)
{
    if (w->chunk)
        strbuf_append(w->chunk, bytes, n);
    else
        smtp_queue(&w->s->conn, bytes, n);
}

/* Queue message bytes (LF line ends) as DATA or BDAT wants them. */
static void body_bytes(void *context, const char *buf, size_t n)
{
    struct body_writer *w = context;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (w->pending_cr) {
            /* the CR before this byte (queued in no run): a line end
             * when LF follows, else a space */
            w->pending_cr = 0;
            if (c != '\n') {
                put(w, " ", 1);
                w->line_start = 0;
            }
        }
        if (c == '\r') {
            put(w, buf + start, i - start);
            start = i + 1;
            w->pending_cr = 1;
            continue;
        }
        if (w->line_start && c == '.' && !w->chunk) {
            put(w, buf + start, i - start);
            put(w, ".", 1);
            start = i;
        }
        w->line_start = 0;
        if (c == '\n') {
            put(w, buf + start, i - start);
            put(w, "\r\n", 2);
            start = i + 1;
            w->line_start = 1;
        }
    }
    put(w, buf + start, n - start);
}

/* Hand the message's content to `chunk` a buffer at a time, as read from
 * the queue file: 0 when all was handed over, 1 when `chunk` returned
 * non-zero (stop), -1 on a read error, -2 at an unexpected end of file. */
static int each_chunk(const struct runner_request *req,
                      int (*chunk)(void *arg, const char *buf, size_t n), void *arg)
{
    static char buf[65536];
    for (off_t done = 0; done < req->msg_length;) {
        size_t want = (size_t)(req->msg_length - done < (off_t)sizeof buf
                               ? req->msg_length - done : (off_t)sizeof buf);
        ssize_t n = pread_retry(req->msg_fd, buf, want, req->msg_offset + done);
        if (n <= 0)
            return n < 0 ? -1 : -2;
        done += n;
        if (chunk(arg, buf, (size_t)n))
            return 1;
    }
    return 0;
}

/* send_body's chunk: converted or queued as it is, sent when 64 KiB wait. */
struct body_sender {
    struct body_writer w;
    struct mime_downgrade *converter;
    unsigned mime_errors;
    int io_failed;
    int refused;                /* BDAT: a chunk's reply was not 2xx (in s->reply) */
};

#define BDAT_CHUNK 65536

/* Send one BDAT chunk (the last one with LAST); for any but the last,
 * read its reply.  0, or -1 (b->io_failed or b->refused set). */
static int send_bdat(struct body_sender *b, int last)
{
    struct smtp_session *s = b->w.s;
    struct strbuf *chunk = b->w.chunk;
    smtp_queuef(&s->conn, "BDAT %zu%s\r\n", chunk->len, last ? " LAST" : "");
    smtp_queue(&s->conn, chunk->s ? chunk->s : "", chunk->len);
    strbuf_reset(chunk);
    if (smtp_flush(&s->conn, s->setup->data_xfer_timeout) != 0) {
        b->io_failed = 1;
        return -1;
    }
    if (last)
        return 0;
    if (smtp_read_reply(&s->conn, &s->reply, s->setup->data_xfer_timeout) != 0) {
        b->io_failed = 1;
        return -1;
    }
    if (s->reply.code / 100 != 2) {
        b->refused = 1;
        return -1;
    }
    return 0;
}

static int send_chunk(void *arg, const char *buf, size_t n)
{
    struct body_sender *b = arg;
    struct smtp_session *s = b->w.s;
    if (b->converter)
        b->mime_errors = mime_downgrade_feed(b->converter, buf, n);
    else
        body_bytes(&b->w, buf, n);
    if (b->mime_errors)
        return 1;
    if (b->w.chunk)
        return b->w.chunk->len >= BDAT_CHUNK && send_bdat(b, 0) != 0;
    if (s->conn.out.len >= 65536 && smtp_flush(&s->conn, s->setup->data_xfer_timeout) != 0) {
        b->io_failed = 1;
        return 1;
    }
    return 0;
}

/* Send the message, after DATA's 354 or (bdat) as BDAT chunks; with
 * `downgrade`, converted to 7 bit on the way (mime_downgrade.h).  0 (the
 * final reply is the caller's to read), 1 when a BDAT chunk before the
 * last was refused (results given, the session usable), or -1 when the
 * session failed (results given; for a message that cannot be converted,
 * a bounce). */
static int send_body(struct smtp_session *s, int downgrade, int bdat,
                     const size_t *accepted, size_t n_accepted)
{
    const struct runner_request *req = s->batch->req;
    struct strbuf chunk = STRBUF_INIT;
    struct body_sender b = {{s, 1, 0, bdat ? &chunk : NULL}, NULL, 0, 0, 0};
    int rc = -1;
    if (downgrade)
        b.converter = mime_downgrade_begin(&s->setup->downgrade, body_bytes, &b.w);
    int read = each_chunk(req, send_chunk, &b);
    if (read < 0) {
        msg_warn("%s: read the queue file: %s", req->queue_id,
                 read == -1 ? "read error" : "unexpected end of file");
        batch_result_open(s->batch, s->relay, 0, "4.3.0", "error reading the queue file");
        mime_downgrade_free(b.converter);
        goto out;
    }
    if (b.io_failed) {
        io_failure(s, s->relay, "sending message body");
        mime_downgrade_free(b.converter);
        goto out;
    }
    if (b.refused) {
        /* RFC 3030: no more chunks; the transaction failed, the
         * session did not */
        for (size_t j = 0; j < n_accepted; j++)
            batch_result(s->batch, accepted[j], s->relay, s->reply.code >= 500, s->reply.dsn,
                         "host %s said: %s (in reply to BDAT command)", s->host,
                         s->reply.text.s);
        mime_downgrade_free(b.converter);
        rc = 1;
        goto out;
    }
    if (b.converter && !b.mime_errors)
        b.mime_errors = mime_downgrade_end(b.converter, NULL);
    else
        mime_downgrade_free(b.converter);
    if (b.mime_errors) {
        /* as Postfix: the message cannot be sent as 7 bit; the server
         * is inside DATA (or a BDAT transaction), so the connection is
         * dropped, not ended */
        batch_result_open(s->batch, s->relay, 1, "5.6.0", "%s", mime_error_text(b.mime_errors));
        goto out;
    }
    if (b.w.pending_cr) {
        put(&b.w, " ", 1);
        b.w.line_start = 0;
    }
    if (!b.w.line_start && req->msg_length > 0)
        put(&b.w, "\r\n", 2);
    if (bdat) {
        if (send_bdat(&b, 1) != 0) {
            io_failure(s, s->relay, "sending message body");
            goto out;
        }
        rc = 0;
        goto out;
    }
    smtp_queue(&s->conn, ".\r\n", 3);
    if (smtp_flush(&s->conn, s->setup->data_xfer_timeout) != 0) {
        io_failure(s, s->relay, "sending message body");
        goto out;
    }
    rc = 0;
out:
    strbuf_free(&chunk);
    return rc;
}

static void discard_bytes(void *context, const char *bytes, size_t n)
{
    (void)context, (void)bytes, (void)n;
}

/* declares_8bit's chunk: fed to a converter that writes nothing. */
struct body_scan {
    struct mime_downgrade *d;
    unsigned errors;
};

static int scan_chunk(void *arg, const char *buf, size_t n)
{
    struct body_scan *scan = arg;
    scan->errors = mime_downgrade_feed(scan->d, buf, n);
    return scan->errors != 0;
}

/* For a message that came with BODY=7BIT: 1 when an entity in it is
 * declared 8bit or binary all the same (Postfix's cleanup then records the
 * message as 8-bit, and its smtp(8) converts it).  A queue file that
 * cannot be read is send_body()'s to report. */
static int declares_8bit(const struct smtp_session *s)
{
    struct body_scan scan = {mime_downgrade_begin(&s->setup->downgrade, discard_bytes, NULL), 0};
    int read = each_chunk(s->batch->req, scan_chunk, &scan);
    int declared = 0;
    if (scan.errors || read < 0)
        mime_downgrade_free(scan.d);
    else
        mime_downgrade_end(scan.d, &declared);
    return declared;
}

/* XFORWARD (Postfix's XFORWARD_README) before MAIL FROM, when
 * smtp_send_xforward_command is set and the server offers it: the
 * attributes it names, of the client that gave us the message, xtext
 * encoded, "[UNAVAILABLE]" for what is not known.  0 when the server took
 * it (or none was sent), else -1 after the failure was recorded. */
static int send_xforward(struct smtp_session *s)
{
    unsigned offered = s->features.xforward;
    if (!s->setup->send_xforward || !offered)
        return 0;
    const struct runner_request *req = s->batch->req;
    const char *origin = runner_attr(&req->attrs, "origin");
    const struct { unsigned flag; const char *name, *value; } attrs[] = {
        {SMTP_XFORWARD_NAME, "NAME", runner_attr(&req->attrs, "client_name")},
        {SMTP_XFORWARD_ADDR, "ADDR", runner_attr(&req->attrs, "client_address")},
        {SMTP_XFORWARD_PORT, "PORT", runner_attr(&req->attrs, "client_port")},
        {SMTP_XFORWARD_PROTO, "PROTO", runner_attr(&req->attrs, "protocol")},
        {SMTP_XFORWARD_HELO, "HELO", runner_attr(&req->attrs, "helo_name")},
        {SMTP_XFORWARD_IDENT, "IDENT", *req->queue_id ? req->queue_id : NULL},
        {SMTP_XFORWARD_SOURCE, "SOURCE", origin && strcmp(origin, "local") == 0 ? "LOCAL" : "REMOTE"},
    };
    /* two commands, as Postfix's smtp(8), so that each stays short */
    for (size_t part = 0; part < 2; part++) {
        struct strbuf line = STRBUF_INIT;
        strbuf_puts(&line, "XFORWARD");
        for (size_t i = part ? 4 : 0; i < (part ? sizeof attrs / sizeof attrs[0] : 4); i++) {
            if (!(offered & attrs[i].flag))
                continue;
            strbuf_printf(&line, " %s=", attrs[i].name);
            if (attrs[i].value && *attrs[i].value)
                xtext_encode(attrs[i].value, &line);
            else
                strbuf_puts(&line, "[UNAVAILABLE]");
        }
        int empty = strcmp(strbuf_str(&line), "XFORWARD") == 0;
        int r = empty ? 0 : command(s, s->setup->mail_timeout, "sending XFORWARD", "%s", strbuf_str(&line));
        strbuf_free(&line);
        if (r != 0)
            return -1;
        if (!empty && s->reply.code / 100 != 2) {
            site_failure(s, "XFORWARD");
            return -1;
        }
    }
    return 0;
}

/* MAIL FROM with what the server supports of the message's attributes. */
static void queue_mail(struct smtp_session *s, int smtputf8, int downgrade)
{
    const struct runner_request *req = s->batch->req;
    struct strbuf addr = STRBUF_INIT;
    smtp_address_external(req->sender, &addr);
    smtp_queuef(&s->conn, "MAIL FROM:<%s>", addr.s ? addr.s : "");
    if (s->esmtp) {
        /* no SIZE when the message is converted (its size changes), as
         * Postfix */
        if (s->features.size_given && !downgrade)
            smtp_queuef(&s->conn, " SIZE=%lld", (long long)req->msg_length);
        const char *body = runner_attr(&req->attrs, "BODY");
        if (body && s->features.eightbitmime)
            smtp_queuef(&s->conn, " BODY=%s", strcasecmp(body, "8BITMIME") == 0 ? "8BITMIME" : "7BIT");
        if (smtputf8 && s->features.smtputf8)
            smtp_queue(&s->conn, " SMTPUTF8", 9);
        if (requiretls_wanted(s))       /* requiretls_server checked the offer */
            smtp_queue(&s->conn, " REQUIRETLS", 11);
        const char *ret = runner_attr(&req->attrs, "RET");
        const char *envid = runner_attr(&req->attrs, "ENVID");
        if (s->features.dsn && ret)
            smtp_queuef(&s->conn, " RET=%s", ret);
        if (s->features.dsn && envid) {
            strbuf_reset(&addr);
            xtext_encode(envid, &addr);
            smtp_queuef(&s->conn, " ENVID=%s", addr.s);
        }
    }
    smtp_queue(&s->conn, "\r\n", 2);
    strbuf_free(&addr);
}

/* RCPT TO with NOTIFY and ORCPT when the server supports DSN. */
static void queue_rcpt(struct smtp_session *s, size_t k)
{
    const struct runner_recipient *r = &s->batch->req->rcpt[s->batch->index[k]];
    struct strbuf addr = STRBUF_INIT;
    smtp_address_external(r->address, &addr);
    smtp_queuef(&s->conn, "RCPT TO:<%s>", addr.s);
    if (s->features.dsn) {
        const char *notify = runner_attr(&r->attrs, "NOTIFY");
        const char *orcpt = runner_attr(&r->attrs, "ORCPT");
        if (notify)
            smtp_queuef(&s->conn, " NOTIFY=%s", notify);
        const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
        if (semi) {
            strbuf_reset(&addr);
            xtext_encode(semi + 1, &addr);
            smtp_queuef(&s->conn, " ORCPT=%.*s;%s", (int)(semi - orcpt), orcpt, addr.s);
        }
    }
    smtp_queue(&s->conn, "\r\n", 2);
    strbuf_free(&addr);
}

/* The mail transaction for the open recipients. */
static void transaction(struct smtp_session *s)
{
    const struct smtp_setup *setup = s->setup;
    struct smtp_batch *b = s->batch;
    const struct runner_request *req = b->req;

    if (s->features.size && (unsigned long long)req->msg_length > s->features.size) {
        batch_result_open(b, s->relay, 1, "5.3.4", "message size %lld exceeds size limit %llu of server %s",
                          (long long)req->msg_length, s->features.size, s->host);
        return;
    }
    const char *utf8_attr = runner_attr(&req->attrs, "SMTPUTF8");
    int smtputf8 = utf8_attr && strcasecmp(utf8_attr, "no") != 0 && setup->smtputf8_enable;
    if (smtputf8 && !s->features.smtputf8) {
        int needed = non_ascii(req->sender);
        for (size_t k = 0; k < b->count && !needed; k++)
            needed = b->state[k] != RCPT_FINAL && non_ascii(req->rcpt[b->index[k]].address);
        if (needed) {
            batch_result_open(b, s->relay, 1, "5.6.7",
                              "SMTPUTF8 is required, but was not offered by host %s", s->host);
            return;
        }
    }
    int pipelining = s->esmtp && s->features.pipelining;
    /* an address verification probe ends after RCPT TO (postern-verify(8)),
     * and so does a sendmail -bv message (verify=report) */
    const char *verify_attr = runner_attr(&req->attrs, "verify");
    int probe = verify_attr && (strcmp(verify_attr, "yes") == 0 || strcmp(verify_attr, "report") == 0);
    size_t *accepted = xcalloc(b->count ? b->count : 1, sizeof *accepted);
    size_t *sent_rcpt = xcalloc(b->count ? b->count : 1, sizeof *sent_rcpt);
    size_t n_accepted = 0, n_sent = 0;
    for (size_t k = 0; k < b->count; k++)
        if (b->state[k] == RCPT_PENDING)
            sent_rcpt[n_sent++] = k;

    /* 8-bit to 7-bit conversion for a server without 8BITMIME, as
     * Postfix's smtp(8): unless the message is 7-bit (BODY=7BIT and no
     * entity declared 8bit or binary); only what is declared 8bit or
     * binary is converted */
    const char *body = runner_attr(&req->attrs, "BODY");
    int downgrade = setup->mime_output_conversion && !s->features.eightbitmime;
    if (downgrade && body && strcasecmp(body, "7BIT") == 0)
        downgrade = declares_8bit(s);

    /* the message goes as BDAT chunks where the server offers CHUNKING
     * (RFC 3030; smtp_discard_ehlo_keywords = chunking keeps DATA, which
     * is all Postfix's smtp(8) sends): no DATA command, no 354, no
     * dot-stuffing */
    int bdat = s->features.chunking && !probe;
    if (send_xforward(s) != 0)
        goto out;
    /* MAIL FROM */
    queue_mail(s, smtputf8, downgrade);
    if (pipelining) {
        for (size_t j = 0; j < n_sent; j++)
            queue_rcpt(s, sent_rcpt[j]);
        if (!probe && !bdat)
            smtp_queue(&s->conn, "DATA\r\n", 6);
    }
    if (smtp_flush(&s->conn, setup->mail_timeout) != 0) {
        io_failure(s, s->relay, "sending MAIL FROM");
        goto out;
    }
    if (smtp_read_reply(&s->conn, &s->reply, setup->mail_timeout) != 0) {
        io_failure(s, s->relay, "sending MAIL FROM");
        goto out;
    }
    if (s->reply.code / 100 != 2) {
        site_failure(s, "MAIL FROM");
        /* the pipelined RCPT and DATA replies are read and dropped */
        for (size_t j = 0; pipelining && j < n_sent + (!probe && !bdat); j++)
            if (smtp_read_reply(&s->conn, &s->reply, setup->rcpt_timeout) != 0)
                break;
        goto out;
    }
    /* RCPT TO */
    for (size_t j = 0; j < n_sent; j++) {
        size_t k = sent_rcpt[j];
        if (!pipelining) {
            queue_rcpt(s, k);
            if (smtp_flush(&s->conn, setup->rcpt_timeout) != 0) {
                io_failure(s, s->relay, "sending RCPT TO");
                goto out;
            }
        }
        if (smtp_read_reply(&s->conn, &s->reply, setup->rcpt_timeout) != 0) {
            io_failure(s, s->relay, "sending RCPT TO");
            goto out;
        }
        if (s->reply.code / 100 == 2 && probe) {
            /* deliverable: the reply as the server gave it */
            batch_result(b, k, s->relay, 1, s->reply.dsn, "%s", s->reply.text.s);
        } else if (s->reply.code / 100 == 2) {
            b->state[k] = RCPT_ACCEPTED;
            accepted[n_accepted++] = k;
        } else {
            batch_result(b, k, s->relay, s->reply.code >= 500, s->reply.dsn,
                         "host %s said: %s (in reply to RCPT TO command)", s->host,
                         s->reply.text.s);
        }
    }
    if (probe)
        goto out;
    /* DATA */
    if (!bdat && !pipelining && n_accepted > 0) {
        smtp_queue(&s->conn, "DATA\r\n", 6);
        if (smtp_flush(&s->conn, setup->data_init_timeout) != 0) {
            io_failure(s, s->relay, "sending DATA command");
            goto out;
        }
    }
    if (!bdat && (pipelining || n_accepted > 0)) {
        if (smtp_read_reply(&s->conn, &s->reply, setup->data_init_timeout) != 0) {
            if (n_accepted > 0)
                io_failure(s, s->relay, "sending DATA command");
            goto out;
        }
        if (n_accepted == 0) {
            /* the pipelined DATA should have been refused: nobody to send
             * to.  A server that said 354 all the same waits for content,
             * where a QUIT would be taken for the message: close instead */
            if (s->reply.code == 354)
                s->conn.error = SMTP_IO_LOST;
            goto out;
        }
        if (s->reply.code != 354) {
            /* only 4xx and 5xx refuse; any other reply sent no message
             * and must not count as delivered: try again later */
            int refused = s->reply.code >= 400;
            for (size_t j = 0; j < n_accepted; j++)
                batch_result(b, accepted[j], s->relay, s->reply.code >= 500,
                             refused ? s->reply.dsn : "4.5.0",
                             "host %s said: %s (in reply to DATA command)", s->host,
                             s->reply.text.s);
            if (!refused)
                s->conn.error = SMTP_IO_PROTOCOL;
            goto out;
        }
    }
    if (n_accepted == 0)
        goto out;
    int sent = send_body(s, downgrade, bdat, accepted, n_accepted);
    if (sent > 0)
        goto out;               /* a BDAT chunk refused: results given */
    if (sent < 0) {
        /* the server is inside DATA (or waits for a chunk's bytes):
         * a QUIT would be message content; close the connection instead */
        if (s->conn.error == SMTP_IO_OK)
            s->conn.error = SMTP_IO_LOST;
        goto out;
    }
    /* end of DATA (BDAT LAST): one reply (SMTP), or one per accepted
     * recipient (LMTP) */
    const char *end_command = bdat ? "BDAT" : "end of DATA";
    for (size_t j = 0; j < n_accepted; j++) {
        if (j == 0 || setup->lmtp) {
            if (smtp_read_reply(&s->conn, &s->reply, setup->data_done_timeout) != 0) {
                /* the server has the whole message and may have taken it:
                 * the recipients still waiting for a reply are deferred,
                 * never tried on the next server of this run (a duplicate
                 * at most later, not now) */
                io_failure(s, s->relay, "sending end of data -- message may be sent more than once");
                for (size_t w = j; w < n_accepted; w++)
                    b->state[accepted[w]] = RCPT_FINAL;
                goto out;
            }
        }
        if (s->reply.code / 100 == 2) {
            batch_result(b, accepted[j], s->relay, 1, s->reply.dsn, "%s", s->reply.text.s);
            b->server_dsn[accepted[j]] = (unsigned char)s->features.dsn;
        } else {
            batch_result(b, accepted[j], s->relay, s->reply.code >= 500, s->reply.dsn,
                         "host %s said: %s (in reply to %s command)", s->host,
                         s->reply.text.s, end_command);
        }
    }
out:
    free(accepted);
    free(sent_rcpt);
}

/* The end of a session: kept for the next request to the same next hop
 * (reuse.c), or QUIT and closed. */
static void session_end(struct smtp_session *s, int transaction_done)
{
    if (transaction_done && reuse_keep(s))
        return;
    session_close(s);
}

void session_close(struct smtp_session *s)
{
    /* QUIT without waiting for its reply (smtp_skip_quit_response) */
    if (s->conn.fd >= 0 && s->conn.error == SMTP_IO_OK) {
        smtp_queue(&s->conn, "QUIT\r\n", 6);
        smtp_flush(&s->conn, s->setup->quit_timeout < 5 ? s->setup->quit_timeout : 5);
    }
    smtp_close(&s->conn);
    smtp_reply_free(&s->reply);
    smtp_features_free(&s->features);
    tls_policy_free(&s->tls);
    free(s->own_target.host);
    free(s);
}

int session_again(struct smtp_session *s, struct smtp_batch *batch)
{
    s->batch = batch;
    s->final = 0;
    if (requiretls_wanted(s) && !(s->tls_verified && s->features.requiretls)) {
        /* not good enough for REQUIRETLS: a new connection is made */
        session_close(s);
        return 0;
    }
    smtp_queue(&s->conn, "RSET\r\n", 6);
    if (smtp_flush(&s->conn, s->setup->helo_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, s->setup->helo_timeout) != 0
        || s->reply.code / 100 != 2) {
        /* gone or unwilling: nothing was said about the recipients yet */
        if (s->conn.error == SMTP_IO_OK)
            s->conn.error = SMTP_IO_LOST;
        session_close(s);
        return 0;
    }
    transaction(s);
    session_end(s, 1);
    return 1;
}

static int one_session(const struct smtp_setup *setup, struct smtp_batch *batch,
                       const struct nexthop_target *target, int final, int plaintext);

int session_deliver(const struct smtp_setup *setup, struct smtp_batch *batch,
                    const struct nexthop_target *target, int final)
{
    int had = one_session(setup, batch, target, final, 0);
    if (had < 0)        /* "may" and the handshake failed: again in clear */
        had = one_session(setup, batch, target, final, 1);
    return had;
}

/* One connection; -1 when it should be made again without TLS. */
static int one_session(const struct smtp_setup *setup, struct smtp_batch *batch,
                       const struct nexthop_target *target, int final, int plaintext)
{
    struct smtp_session *s = xcalloc(1, sizeof *s);
    s->conn.fd = -1;                    /* no connection yet (session_close) */
    s->setup = setup;
    s->batch = batch;
    /* the session keeps its own copy: it may outlive the batch (reuse.c) */
    s->own_target = *target;
    s->own_target.host = xstrdup(target->host);
    s->target = &s->own_target;
    s->final = final;
    s->reply = (struct smtp_reply)SMTP_REPLY_INIT;
    s->features = (struct smtp_features)SMTP_FEATURES_INIT;
    snprintf(s->host, sizeof s->host, "%s[%s]", target->host, target->addr);
    if (target->port)
        snprintf(s->relay, sizeof s->relay, "%s:%d", s->host, target->port);
    else
        snprintf(s->relay, sizeof s->relay, "%s", s->host);
    const struct sockaddr *bind_addr = NULL;
    socklen_t bind_len = 0;
    if (target->sa.ss_family == AF_INET && setup->bind4_len) {
        bind_addr = (const struct sockaddr *)&setup->bind4;
        bind_len = setup->bind4_len;
    } else if (target->sa.ss_family == AF_INET6 && setup->bind6_len) {
        bind_addr = (const struct sockaddr *)&setup->bind6;
        bind_len = setup->bind6_len;
    }
    if (tls_policy_find(s) != 0 || requiretls_policy(s) != 0) {
        s->conn.error = SMTP_IO_LOST;
        session_close(s);
        return 0;
    }
    if (plaintext) {
        s->tls.level = TLS_NONE;
        s->plaintext_fallback = 1;      /* reuse.c keeps no such session */
    }
    struct strbuf why = STRBUF_INIT;
    if (smtp_connect(&s->conn, (const struct sockaddr *)&target->sa, target->sa_len, bind_addr,
                     bind_len, setup->connect_timeout, &why) != 0) {
        batch_result_open(batch, "none", 0, "4.4.1", "connect to %s: %s",
                          target->port ? s->relay : s->host, why.s);
        strbuf_free(&why);
        s->conn.error = SMTP_IO_LOST;
        session_close(s);
        return 0;
    }
    strbuf_free(&why);
    int had_session = 0, done = 0;
    if (handshake(s) == 0) {
        had_session = 1;
        if (tls_client_starttls(s) == 0 && requiretls_server(s) == 0 && sasl_client_login(s) == 0) {
            s->born_ms = monotonic_ms();
            transaction(s);
            done = 1;
        }
    }
    if (s->tls_retry_plain) {
        /* "may" and the handshake failed: closed, and made again in clear */
        session_close(s);
        return -1;
    }
    session_end(s, done);
    return had_session;
}
