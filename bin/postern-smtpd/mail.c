/* mail.c - MAIL FROM and RCPT TO: their paths and ESMTP parameters
 * (parsed into envelope records by lib/mail/smtpargs.c), the size and
 * free-space checks, and the restrictions at RCPT with Postfix's replies
 * and "NOQUEUE: reject" log lines. */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "queuefile.h"
#include "smtpargs.h"
#include "smtpd.h"

/* Too little free space in the queue file system for a message of size
 * bytes (0: not declared)?  Postfix's rule, as the queue applies it again
 * when the message arrives; when statvfs fails the queue decides. */
static int storage_short(long long size, long long message_size_limit)
{
    struct statvfs fs;
    if (statvfs(conf_str("queue_directory"), &fs) != 0)
        return 0;
    return queue_space_short((unsigned long long)fs.f_bavail * fs.f_frsize,
                             conf_size("queue_minfree"), message_size_limit, size);
}

void cmd_mail(struct session *s, char *args)
{
    struct transaction *tx = &s->tx;
    struct smtp_mail_args mail = SMTP_MAIL_ARGS_INIT;
    struct strbuf text = STRBUF_INIT, original = STRBUF_INIT;
    strbuf_set(&original, args);        /* for the milters: the parser cuts it up */
    if (s->helo_required && !s->helo.len) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto failed;
    }
    if (tx->active) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        goto failed;
    }
    if (!s->local_submission && client_rate_exceeded(s, CLIENT_MAIL, 1)) {
        reply(s, "450 4.7.1 Error: too much mail from %s", s->client.address);
        goto failed;
    }
    if (smtp_parse_mail(args, conf_bool("smtputf8_enable"), &mail, &text) != 0) {
        reply(s, "%s", strbuf_str(&text));
        goto failed;
    }
    if (mail.requiretls && !conf_bool("smtpd_requiretls_enable")) {
        reply(s, "555 5.5.4 Unsupported option: REQUIRETLS");
        goto failed;
    }
    if (mail.requiretls && !s->tls) {
        /* RFC 8689 section 2: only over TLS (REQUIRETLS is not even
         * offered in the clear); 5.7.10 "Encryption needed" (RFC 5248) */
        reply(s, "530 5.7.10 REQUIRETLS needs an encrypted session: issue STARTTLS first");
        goto failed;
    }
    strbuf_reset(&tx->attributes);
    strbuf_append(&tx->attributes, mail.attributes.s ? mail.attributes.s : "", mail.attributes.len);
    tx->declared_size = mail.size;
    tx->smtputf8 = mail.smtputf8;
    if (s->message_size_limit > 0 && tx->declared_size > s->message_size_limit) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit");
        goto failed;
    }
    if (mail.utf8_address && !tx->smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        goto failed;
    }
    if (storage_short(tx->declared_size, s->message_size_limit)) {
        msg_warn("not enough free space in queue directory %s for %s", conf_str("queue_directory"),
                 s->client.namaddr);
        reply(s, "452 4.3.1 Insufficient system storage");
        goto failed;
    }
    strbuf_set(&tx->sender, strbuf_str(&mail.sender));
    if (!conf_bool("smtpd_delay_reject")) {
        strbuf_reset(&text);
        if (policy_check_mail(s, strbuf_str(&tx->sender), &text)) {
            struct strbuf printable = STRBUF_INIT;
            msg_info("NOQUEUE: reject: MAIL from %s: %s; from=<%s> proto=%s helo=<%s>",
                     s->client.namaddr, strbuf_str(&text),
                     log_printable(&printable, strbuf_str(&tx->sender), 0), s->protocol,
                     strbuf_str(&s->helo));
            strbuf_free(&printable);
            reply(s, "%s", strbuf_str(&text));
            goto failed;
        }
    }
    const char *refusal = milter_mail(s, strbuf_str(&tx->sender), strbuf_str(&original));
    if (refusal) {
        reply(s, "%s", refusal);
        goto failed;
    }
    tx->active = 1;
    reply(s, "250 2.1.0 Ok");
    goto done;
failed:
    s->command_failed[CMD_MAIL]++;
    session_error(s);
done:
    smtp_mail_args_free(&mail);
    strbuf_free(&text);
    strbuf_free(&original);
}

void cmd_rcpt(struct session *s, char *args)
{
    struct transaction *tx = &s->tx;
    struct smtp_rcpt_args rcpt = SMTP_RCPT_ARGS_INIT;
    struct strbuf text = STRBUF_INIT, original = STRBUF_INIT;
    strbuf_set(&original, args);
    if (!tx->active) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        goto failed;
    }
    if (!s->local_submission && client_rate_exceeded(s, CLIENT_RCPT, 1)) {
        reply(s, "450 4.7.1 Error: too many recipients from %s", s->client.address);
        goto failed;
    }
    if (smtp_parse_rcpt(args, &rcpt, &text) != 0) {
        reply(s, "%s", strbuf_str(&text));
        goto failed;
    }
    if ((long long)tx->recipient_count >= s->recipient_limit) {
        reply(s, "452 4.5.3 Error: too many recipients");
        goto failed;
    }
    if (rcpt.utf8_address && !tx->smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        goto failed;
    }
    strbuf_reset(&text);
    if (policy_check_rcpt(s, strbuf_str(&rcpt.recipient), &text)) {
        struct strbuf p1 = STRBUF_INIT, p2 = STRBUF_INIT;
        msg_info("NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
                 s->client.namaddr, strbuf_str(&text),
                 log_printable(&p1, strbuf_str(&tx->sender), 0),
                 log_printable(&p2, strbuf_str(&rcpt.recipient), 0), s->protocol, strbuf_str(&s->helo));
        strbuf_free(&p1);
        strbuf_free(&p2);
        reply(s, "%s", strbuf_str(&text));
        goto failed;
    }
    const char *refusal = milter_rcpt(s, strbuf_str(&rcpt.recipient), strbuf_str(&original));
    if (refusal) {
        reply(s, "%s", refusal);
        goto failed;
    }
    record_put(&tx->recipients, 'T', strbuf_str(&rcpt.recipient));
    strbuf_append(&tx->recipients, rcpt.records.s ? rcpt.records.s : "", rcpt.records.len);
    tx->recipient_count++;
    strbuf_set(&tx->last_recipient, strbuf_str(&rcpt.recipient));
    reply(s, "250 2.1.5 Ok");
    goto done;
failed:
    s->command_failed[CMD_RCPT]++;
    session_error(s);
done:
    smtp_rcpt_args_free(&rcpt);
    strbuf_free(&text);
    strbuf_free(&original);
}
