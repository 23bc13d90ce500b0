/* mail.c - MAIL FROM and RCPT TO: paths, their ESMTP parameters (SIZE,
 * BODY, RET, ENVID, SMTPUTF8, NOTIFY, ORCPT) turned into envelope records
 * (doc/injection.md), the size and free-space checks, and the restrictions
 * at RCPT with Postfix's replies and "NOQUEUE: reject" log lines. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "queuefile.h"
#include "smtpd.h"

int xtext_decode(const char *in, struct strbuf *out)
{
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return -1;
            char hex[3] = {p[1], p[2], 0};
            int v = (int)strtol(hex, NULL, 16);
            if (v < 32 || v == 127)
                return -1;          /* no control bytes: they would break the envelope */
            strbuf_putc(out, v);
            p += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        } else {
            strbuf_putc(out, c);
        }
    }
    return 0;
}

/* The internal form of an address: source route removed, the quotes of a
 * quoted local part taken away (RFC 5321 quoting is only transport). */
static void address_internal(const char *external, struct strbuf *out)
{
    const char *p = external;
    if (*p == '@') {                        /* @a,@b:user@domain */
        const char *colon = strchr(p, ':');
        if (colon)
            p = colon + 1;
    }
    int quoted = 0;
    for (; *p; p++) {
        if (*p == '"') {
            quoted = !quoted;
            continue;
        }
        if (*p == '\\' && quoted && p[1]) {
            strbuf_putc(out, *++p);
            continue;
        }
        strbuf_putc(out, *p);
    }
}

char *parse_path(char *args, const char *keyword, struct strbuf *addr)
{
    strbuf_reset(addr);
    char *p = args;
    while (*p == ' ')
        p++;
    size_t klen = strlen(keyword);
    if (strncasecmp(p, keyword, klen) != 0)
        return NULL;
    p += klen;
    while (*p == ' ')
        p++;
    if (*p == '<') {
        char *start = ++p;
        int quoted = 0;
        for (; *p; p++) {
            if (*p == '\\' && quoted && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
            else if (*p == '>' && !quoted)
                break;
        }
        if (*p != '>')
            return NULL;
        strbuf_append(addr, start, (size_t)(p - start));
        p++;
        if (*p && *p != ' ')
            return NULL;
    } else {
        /* Postfix accepts a path without <> unless strict_rfc821_envelopes */
        size_t n = strcspn(p, " ");
        if (!n)
            return NULL;
        strbuf_append(addr, p, n);
        p += n;
    }
    while (*p == ' ')
        p++;
    return p;
}

/* 1 when an address has no byte that may not be in an envelope. */
static int address_acceptable(const struct strbuf *addr)
{
    if (addr->len > SMTPD_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < addr->len; i++) {
        unsigned char c = (unsigned char)addr->s[i];
        if (c < 32 || c == 127)
            return 0;
    }
    return 1;
}

/* 1 when an address has bytes outside ASCII (needs SMTPUTF8). */
static int address_is_utf8(const struct strbuf *addr)
{
    for (size_t i = 0; i < addr->len; i++)
        if ((unsigned char)addr->s[i] & 0x80)
            return 1;
    return 0;
}

/* Next "NAME[=VALUE]" parameter from text; 0 when none is left. */
static int next_param(char **text, char **name, char **value)
{
    char *p = *text;
    while (*p == ' ')
        p++;
    if (!*p)
        return 0;
    *name = p;
    p += strcspn(p, " ");
    if (*p)
        *p++ = '\0';
    *text = p;
    char *eq = strchr(*name, '=');
    *value = NULL;
    if (eq) {
        *eq = '\0';
        *value = eq + 1;
    }
    return 1;
}

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
    struct strbuf addr = STRBUF_INIT, decoded = STRBUF_INIT, text = STRBUF_INIT;
    char *params;
    if (s->helo_required && !s->helo.len) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto failed;
    }
    if (tx->active) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        goto failed;
    }
    if (s->tls_required) {
        reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        goto failed;
    }
    if (!(params = parse_path(args, "FROM:", &addr))) {
        reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        goto failed;
    }
    if (!address_acceptable(&addr)) {
        reply(s, "501 5.1.7 Bad sender address syntax");
        goto failed;
    }
    strbuf_reset(&tx->attributes);
    tx->declared_size = 0;
    tx->smtputf8 = 0;
    char *name, *value;
    while (next_param(&params, &name, &value)) {
        if (strcasecmp(name, "SIZE") == 0 && value) {
            char *end;
            errno = 0;
            long long size = strtoll(value, &end, 10);
            if (!*value || *end || size < 0 || errno) {
                reply(s, "501 5.5.4 Bad message size syntax");
                goto failed;
            }
            tx->declared_size = size;
        } else if (strcasecmp(name, "BODY") == 0 && value
                   && (strcasecmp(value, "8BITMIME") == 0 || strcasecmp(value, "7BIT") == 0)) {
            record_putf(&tx->attributes, 'A', "BODY=%s", toupper((unsigned char)value[0]) == '8' ? "8BITMIME" : "7BIT");
        } else if (strcasecmp(name, "RET") == 0) {
            if (!value || (strcasecmp(value, "FULL") != 0 && strcasecmp(value, "HDRS") != 0)) {
                reply(s, "501 5.5.4 Bad RET parameter syntax");
                goto failed;
            }
            record_putf(&tx->attributes, 'A', "RET=%s", toupper((unsigned char)value[0]) == 'F' ? "FULL" : "HDRS");
        } else if (strcasecmp(name, "ENVID") == 0) {
            strbuf_reset(&decoded);
            if (!value || !*value || strlen(value) > 100 || xtext_decode(value, &decoded) != 0
                || memchr(decoded.s, '\0', decoded.len)) {
                reply(s, "501 5.5.4 Bad ENVID parameter syntax");
                goto failed;
            }
            record_putf(&tx->attributes, 'A', "ENVID=%s", strbuf_str(&decoded));
        } else if (strcasecmp(name, "SMTPUTF8") == 0 && !value && conf_bool("smtputf8_enable")) {
            tx->smtputf8 = 1;
            record_put(&tx->attributes, 'A', "SMTPUTF8=yes");
        } else if (strcasecmp(name, "AUTH") == 0 && value) {
            /* AUTH=<> or AUTH=addr: accepted and ignored without SASL */
        } else {
            if (value)
                value[-1] = '=';
            strbuf_reset(&text);
            reply(s, "555 5.5.4 Unsupported option: %s", log_printable(&text, name, 100));
            goto failed;
        }
    }
    if (s->message_size_limit > 0 && tx->declared_size > s->message_size_limit) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit");
        goto failed;
    }
    if (address_is_utf8(&addr) && !tx->smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        goto failed;
    }
    if (storage_short(tx->declared_size, s->message_size_limit)) {
        msg_warn("not enough free space in queue directory %s for %s", conf_str("queue_directory"),
                 s->client.namaddr);
        reply(s, "452 4.3.1 Insufficient system storage");
        goto failed;
    }
    strbuf_reset(&tx->sender);
    address_internal(strbuf_str(&addr), &tx->sender);
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
    tx->active = 1;
    reply(s, "250 2.1.0 Ok");
    goto done;
failed:
    s->command_failed[CMD_MAIL]++;
    session_error(s);
done:
    strbuf_free(&addr);
    strbuf_free(&decoded);
    strbuf_free(&text);
}

/* 1 when a NOTIFY value is NEVER or a list of SUCCESS, DELAY, FAILURE. */
static int notify_valid(const char *value)
{
    if (strcasecmp(value, "NEVER") == 0)
        return 1;
    if (!*value)
        return 0;
    const char *p = value;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (!((n == 7 && strncasecmp(p, "SUCCESS", 7) == 0) || (n == 5 && strncasecmp(p, "DELAY", 5) == 0)
              || (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)))
            return 0;
        p += n;
        if (*p == ',' && !*++p)
            return 0;
    }
    return 1;
}

void cmd_rcpt(struct session *s, char *args)
{
    struct transaction *tx = &s->tx;
    struct strbuf addr = STRBUF_INIT, internal = STRBUF_INIT, records = STRBUF_INIT;
    struct strbuf decoded = STRBUF_INIT, text = STRBUF_INIT;
    char *params;
    if (!tx->active) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        goto failed;
    }
    if (!(params = parse_path(args, "TO:", &addr))) {
        reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        goto failed;
    }
    if (!addr.len || !address_acceptable(&addr)) {
        reply(s, "501 5.1.3 Bad recipient address syntax");
        goto failed;
    }
    if ((long long)tx->recipient_count >= s->recipient_limit) {
        reply(s, "452 4.5.3 Error: too many recipients");
        goto failed;
    }
    char *name, *value;
    while (next_param(&params, &name, &value)) {
        if (strcasecmp(name, "NOTIFY") == 0) {
            if (!value || !notify_valid(value)) {
                reply(s, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
                goto failed;
            }
            for (char *p = value; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            record_putf(&records, 'P', "NOTIFY=%s", value);
        } else if (strcasecmp(name, "ORCPT") == 0) {
            strbuf_reset(&decoded);
            char *semi = value ? strchr(value, ';') : NULL;
            if (!semi || semi == value || strlen(value) > 500
                || xtext_decode(semi + 1, &decoded) != 0 || !decoded.len) {
                reply(s, "501 5.5.4 Error: Bad ORCPT parameter syntax");
                goto failed;
            }
            record_putf(&records, 'P', "ORCPT=%.*s;%s", (int)(semi - value), value, strbuf_str(&decoded));
        } else {
            if (value)
                value[-1] = '=';
            reply(s, "555 5.5.4 Unsupported option: %s", log_printable(&text, name, 100));
            goto failed;
        }
    }
    if (address_is_utf8(&addr) && !tx->smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        goto failed;
    }
    address_internal(strbuf_str(&addr), &internal);
    strbuf_reset(&text);
    if (policy_check_rcpt(s, strbuf_str(&internal), &text)) {
        struct strbuf p1 = STRBUF_INIT, p2 = STRBUF_INIT;
        msg_info("NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
                 s->client.namaddr, strbuf_str(&text),
                 log_printable(&p1, strbuf_str(&tx->sender), 0),
                 log_printable(&p2, strbuf_str(&internal), 0), s->protocol, strbuf_str(&s->helo));
        strbuf_free(&p1);
        strbuf_free(&p2);
        reply(s, "%s", strbuf_str(&text));
        goto failed;
    }
    record_put(&tx->recipients, 'T', strbuf_str(&internal));
    strbuf_append(&tx->recipients, records.s ? records.s : "", records.len);
    tx->recipient_count++;
    strbuf_set(&tx->last_recipient, strbuf_str(&internal));
    reply(s, "250 2.1.5 Ok");
    goto done;
failed:
    s->command_failed[CMD_RCPT]++;
    session_error(s);
done:
    strbuf_free(&addr);
    strbuf_free(&internal);
    strbuf_free(&records);
    strbuf_free(&decoded);
    strbuf_free(&text);
}
