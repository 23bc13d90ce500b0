/* smtpargs.c - SMTP command arguments without a connection (smtpargs.h):
 * paths, ESMTP parameters, xtext. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fdio.h"
#include "log.h"
#include "smtpargs.h"

char *smtp_command_split(char *line, char verb[SMTP_VERB_MAX])
{
    size_t verb_len = strcspn(line, " ");
    snprintf(verb, SMTP_VERB_MAX, "%.*s",
             (int)(verb_len < SMTP_VERB_MAX - 1 ? verb_len : SMTP_VERB_MAX - 1), line);
    return line + verb_len;
}

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

/* The path after keyword ("FROM:", "TO:"): the address without its
 * angle brackets into addr; the rest (parameters) returned, or NULL on a
 * syntax error. */
static char *parse_path(char *args, const char *keyword, struct strbuf *addr)
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
    if (addr->len > SMTP_ADDR_MAX)
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

/* The reply for a parameter nobody knows: "555 5.5.4 Unsupported option:
 * NAME=VALUE" (the '=' that next_param cut is put back). */
static void unsupported(struct strbuf *reply, char *name, char *value)
{
    struct strbuf text = STRBUF_INIT;
    if (value)
        value[-1] = '=';
    strbuf_printf(reply, "555 5.5.4 Unsupported option: %s", log_printable(&text, name, 100));
    strbuf_free(&text);
}

int smtp_parse_mail(char *args, int smtputf8_enable, struct smtp_mail_args *out,
                    struct strbuf *reply)
{
    struct strbuf addr = STRBUF_INIT, decoded = STRBUF_INIT;
    int result = -1;
    char *params;
    strbuf_reset(&out->sender);
    strbuf_reset(&out->attributes);
    out->size = 0;
    out->smtputf8 = out->utf8_address = out->requiretls = 0;
    strbuf_reset(reply);
    if (!(params = parse_path(args, "FROM:", &addr))) {
        strbuf_puts(reply, "501 5.5.4 Syntax: MAIL FROM:<address>");
        goto out;
    }
    if (!address_acceptable(&addr)) {
        strbuf_puts(reply, "501 5.1.7 Bad sender address syntax");
        goto out;
    }
    char *name, *value;
    while (next_param(&params, &name, &value)) {
        if (strcasecmp(name, "SIZE") == 0 && value) {
            char *end;
            errno = 0;
            long long size = strtoll(value, &end, 10);
            if (!*value || *end || size < 0 || errno) {
                strbuf_puts(reply, "501 5.5.4 Bad message size syntax");
                goto out;
            }
            out->size = size;
        } else if (strcasecmp(name, "BODY") == 0 && value
                   && (strcasecmp(value, "8BITMIME") == 0 || strcasecmp(value, "7BIT") == 0)) {
            record_putf(&out->attributes, 'A', "BODY=%s", toupper((unsigned char)value[0]) == '8' ? "8BITMIME" : "7BIT");
        } else if (strcasecmp(name, "RET") == 0) {
            if (!value || (strcasecmp(value, "FULL") != 0 && strcasecmp(value, "HDRS") != 0)) {
                strbuf_puts(reply, "501 5.5.4 Bad RET parameter syntax");
                goto out;
            }
            record_putf(&out->attributes, 'A', "RET=%s", toupper((unsigned char)value[0]) == 'F' ? "FULL" : "HDRS");
        } else if (strcasecmp(name, "ENVID") == 0) {
            strbuf_reset(&decoded);
            if (!value || !*value || strlen(value) > 100 || xtext_decode(value, &decoded) != 0
                || memchr(decoded.s, '\0', decoded.len)) {
                strbuf_puts(reply, "501 5.5.4 Bad ENVID parameter syntax");
                goto out;
            }
            record_putf(&out->attributes, 'A', "ENVID=%s", strbuf_str(&decoded));
        } else if (strcasecmp(name, "SMTPUTF8") == 0 && !value && smtputf8_enable) {
            out->smtputf8 = 1;
            record_put(&out->attributes, 'A', "SMTPUTF8=yes");
        } else if (strcasecmp(name, "REQUIRETLS") == 0 && !value) {
            if (!out->requiretls)
                record_put(&out->attributes, 'A', "REQUIRETLS=yes");
            out->requiretls = 1;
        } else if (strcasecmp(name, "AUTH") == 0 && value) {
            /* RFC 4954 AUTH=addr: the address the submitting client
             * authenticated (xtext), kept as Postfix's sasl_sender for the
             * queue file, its log line and a relay's MAIL; AUTH=<> says
             * nobody vouches for the sender, and is not kept */
            strbuf_reset(&decoded);
            if (!*value || strlen(value) > 1000 || xtext_decode(value, &decoded) != 0
                || memchr(decoded.s, '\0', decoded.len)) {
                strbuf_puts(reply, "501 5.5.4 Bad AUTH parameter syntax");
                goto out;
            }
            if (strcmp(strbuf_str(&decoded), "<>") != 0)
                record_putf(&out->attributes, 'A', "sasl_sender=%s", strbuf_str(&decoded));
        } else {
            unsupported(reply, name, value);
            goto out;
        }
    }
    out->utf8_address = address_is_utf8(&addr);
    address_internal(strbuf_str(&addr), &out->sender);
    result = 0;
out:
    strbuf_free(&addr);
    strbuf_free(&decoded);
    return result;
}

void smtp_mail_args_free(struct smtp_mail_args *a)
{
    strbuf_free(&a->sender);
    strbuf_free(&a->attributes);
}

int smtp_parse_rcpt(char *args, struct smtp_rcpt_args *out, struct strbuf *reply)
{
    struct strbuf addr = STRBUF_INIT, decoded = STRBUF_INIT;
    int result = -1;
    char *params;
    strbuf_reset(&out->recipient);
    strbuf_reset(&out->records);
    out->utf8_address = 0;
    strbuf_reset(reply);
    if (!(params = parse_path(args, "TO:", &addr))) {
        strbuf_puts(reply, "501 5.5.4 Syntax: RCPT TO:<address>");
        goto out;
    }
    if (!addr.len || !address_acceptable(&addr)) {
        strbuf_puts(reply, "501 5.1.3 Bad recipient address syntax");
        goto out;
    }
    char *name, *value;
    while (next_param(&params, &name, &value)) {
        if (strcasecmp(name, "NOTIFY") == 0) {
            if (!value || !notify_valid(value)) {
                strbuf_puts(reply, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
                goto out;
            }
            for (char *p = value; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            record_putf(&out->records, 'P', "NOTIFY=%s", value);
        } else if (strcasecmp(name, "ORCPT") == 0) {
            strbuf_reset(&decoded);
            char *semi = value ? strchr(value, ';') : NULL;
            /* addr-type is an atom (RFC 3461 4.2): no control or other odd
             * byte may reach the envelope (found by fuzz/smtp_command.c) */
            if (!semi || semi == value || strlen(value) > 500
                || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
                   != (size_t)(semi - value)
                || xtext_decode(semi + 1, &decoded) != 0 || !decoded.len) {
                strbuf_puts(reply, "501 5.5.4 Error: Bad ORCPT parameter syntax");
                goto out;
            }
            record_putf(&out->records, 'P', "ORCPT=%.*s;%s", (int)(semi - value), value, strbuf_str(&decoded));
        } else {
            unsupported(reply, name, value);
            goto out;
        }
    }
    out->utf8_address = address_is_utf8(&addr);
    address_internal(strbuf_str(&addr), &out->recipient);
    result = 0;
out:
    strbuf_free(&addr);
    strbuf_free(&decoded);
    return result;
}

void smtp_rcpt_args_free(struct smtp_rcpt_args *a)
{
    strbuf_free(&a->recipient);
    strbuf_free(&a->records);
}

void xtext_encode(const char *in, struct strbuf *out)
{
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            strbuf_printf(out, "+%02X", *p);
        else
            strbuf_putc(out, *p);
    }
}

void smtp_address_external(const char *address, struct strbuf *out)
{
    const char *at = strrchr(address, '@');
    size_t local_len = at ? (size_t)(at - address) : strlen(address);
    /* a dot-atom (RFC 5321 4.1.2) goes as it is; anything else is quoted */
    static const char atext[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789!#$%&'*+-/=?^_`{|}~";
    int plain = local_len > 0 && address[0] != '.' && address[local_len - 1] != '.';
    for (size_t i = 0; plain && i < local_len; i++) {
        unsigned char c = (unsigned char)address[i];
        if (c == '.' ? address[i + 1] == '.' : !(c >= 0x80 || strchr(atext, c)))
            plain = 0;
    }
    if (plain || local_len == 0) {
        strbuf_puts(out, address);
        return;
    }
    strbuf_putc(out, '"');
    for (size_t i = 0; i < local_len; i++) {
        if (address[i] == '"' || address[i] == '\\')
            strbuf_putc(out, '\\');
        strbuf_putc(out, address[i]);
    }
    strbuf_putc(out, '"');
    if (at)
        strbuf_puts(out, at);
}
