/* fuzz/smtp_command.c - arbitrary bytes as SMTP command lines, the most
 * exposed input postern has: each line (split at LF, CR and NUL dropped as
 * smtpd's reader does) goes through the verb split and, for MAIL and RCPT,
 * the path and ESMTP parameter parser of lib/mail/smtpargs.c.  A command
 * is accepted or refused with a reply of Postfix's form; what is accepted
 * holds no byte an envelope record cannot carry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpargs.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when text (len bytes) holds a control byte (envelope records are
 * NUL-terminated lines). */
static int has_control(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 32 || text[i] == 127)
            return 1;
    return 0;
}

/* A refusal is "NNN X.Y.Z text" with a 4xx or 5xx code. */
static void check_reply(const struct strbuf *reply)
{
    const char *r = strbuf_str(reply);
    if (strlen(r) < 8 || (r[0] != '4' && r[0] != '5') || r[3] != ' ')
        abort();
}

/* The records of one kind in buf: each "Xvalue\0" with a printable value. */
static void check_records(const struct strbuf *buf, int type)
{
    size_t i = 0;
    while (i < buf->len) {
        const char *rec = buf->s + i;
        size_t n = strlen(rec);
        if (rec[0] != type || has_control(rec + 1, n - 1))
            abort();
        i += n + 1;
    }
}

static void one_command(char *line)
{
    char verb[SMTP_VERB_MAX];
    char *args = smtp_command_split(line, verb);
    if (strlen(verb) >= SMTP_VERB_MAX || args < line || args > line + strlen(line))
        abort();
    struct strbuf reply = STRBUF_INIT;
    if (strcasecmp(verb, "MAIL") == 0) {
        for (int utf8 = 0; utf8 <= 1; utf8++) {
            char *copy = strdup(args);
            struct smtp_mail_args mail = SMTP_MAIL_ARGS_INIT;
            if (!copy)
                abort();
            if (smtp_parse_mail(copy, utf8, &mail, &reply) == 0) {
                if (has_control(strbuf_str(&mail.sender), mail.sender.len) || mail.size < 0
                    || (mail.smtputf8 && !utf8) || mail.sender.len > SMTP_ADDR_MAX)
                    abort();
                /* REQUIRETLS is flagged exactly when its record is there */
                int requiretls_records = 0;
                for (size_t at = 0; at < mail.attributes.len; at += strlen(mail.attributes.s + at) + 1)
                    requiretls_records += strcmp(mail.attributes.s + at, "AREQUIRETLS=yes") == 0;
                if (requiretls_records != (mail.requiretls ? 1 : 0))
                    abort();
                check_records(&mail.attributes, 'A');
            } else {
                check_reply(&reply);
            }
            smtp_mail_args_free(&mail);
            free(copy);
        }
    } else if (strcasecmp(verb, "RCPT") == 0) {
        struct smtp_rcpt_args rcpt = SMTP_RCPT_ARGS_INIT;
        if (smtp_parse_rcpt(args, &rcpt, &reply) == 0) {
            if (has_control(strbuf_str(&rcpt.recipient), rcpt.recipient.len)
                || rcpt.recipient.len > SMTP_ADDR_MAX)
                abort();
            check_records(&rcpt.records, 'P');
        } else {
            check_reply(&reply);
        }
        smtp_rcpt_args_free(&rcpt);
    } else if (strcasecmp(verb, "XCLIENT") == 0 || strcasecmp(verb, "XFORWARD") == 0) {
        /* attribute values are xtext */
        for (char *p = strtok(args, " "); p; p = strtok(NULL, " ")) {
            char *eq = strchr(p, '=');
            struct strbuf decoded = STRBUF_INIT;
            if (eq && xtext_decode(eq + 1, &decoded) == 0 && has_control(decoded.s, decoded.len))
                abort();
            strbuf_free(&decoded);
        }
    }
    strbuf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i] != '\r' && data[i] != '\0')
            text[n++] = (char)data[i];
    text[n] = '\0';
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        one_command(line);
    }
    free(text);
    return 0;
}
