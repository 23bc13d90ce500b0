/* smtpreply.c - SMTP replies line by line, and EHLO keywords (smtpreply.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "outcome.h"
#include "smtpreply.h"
#include "xalloc.h"

void smtp_reply_reset(struct smtp_reply *r)
{
    for (size_t i = 0; i < r->lines.count; i++)
        free(r->lines.line[i]);
    free(r->lines.line);
    r->lines.line = NULL;
    r->lines.count = 0;
    strbuf_reset(&r->text);
    r->code = 0;
    r->dsn[0] = '\0';
    r->done = 0;
}

void smtp_reply_free(struct smtp_reply *r)
{
    smtp_reply_reset(r);
    strbuf_free(&r->text);
}

/* The RFC 3463 code of the first line when its class matches the reply's,
 * else "C.0.0" with C the reply's class (Postfix does the same). */
static void take_dsn(struct smtp_reply *r, const char *text)
{
    size_t n = dsn_code_length(text);
    if (n > 0 && n < sizeof r->dsn && text[0] == '0' + r->code / 100) {
        memcpy(r->dsn, text, n);
        r->dsn[n] = '\0';
        return;
    }
    int cls = r->code / 100;
    r->dsn[0] = (char)('0' + (cls == 2 || cls == 4 || cls == 5 ? cls : 4));
    memcpy(r->dsn + 1, ".0.0", 5);
}

/* What the server sent, made safe for logs, bounces and records as
 * Postfix's printable() makes it (with smtputf8_enable, its default): a
 * control byte, DEL, or a byte that is not part of well-formed UTF-8
 * becomes '?'; well-formed UTF-8 stays. */
static void printable(char *text, size_t len)
{
    unsigned char *s = (unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && n > 1) {      /* no overlong forms, surrogates or > U+10FFFF */
            unsigned cp = n == 2 ? (c & 0x1f) << 6 | (s[i + 1] & 0x3f)
                        : n == 3 ? (c & 0x0f) << 12 | (s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f)
                                 : (c & 0x07) << 18 | (s[i + 1] & 0x3f) << 12
                                       | (s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
            ok = cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff
                 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (!ok || (n == 1 && (c < ' ' || c == 0x7f))) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

int smtp_reply_add(struct smtp_reply *r, const char *line, size_t len)
{
    if (r->done)
        smtp_reply_reset(r);
    if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1])
        || !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return -1;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 200 || code > 599 || (r->code && code != r->code)
        || r->lines.count >= SMTP_REPLY_MAX_LINES)
        return -1;
    const char *text = len > 4 ? line + 4 : "";
    size_t text_len = len > 4 ? len - 4 : 0;
    r->lines.line = xreallocarray(r->lines.line, r->lines.count + 1, sizeof *r->lines.line);
    char *copy = xmemdup0(text, text_len);
    printable(copy, text_len);
    r->lines.line[r->lines.count++] = copy;
    if (!r->code) {
        r->code = code;
        take_dsn(r, copy);
    }
    if (r->text.len < SMTP_REPLY_MAX_TEXT) {
        if (r->text.len)
            strbuf_putc(&r->text, ' ');
        size_t room = SMTP_REPLY_MAX_TEXT - r->text.len;
        size_t head = len < 4 ? len : 4;
        strbuf_append(&r->text, line, head < room ? head : room);
        if (head < room) {
            size_t take = text_len < room - head ? text_len : room - head;
            while (take > 0 && take < text_len && ((unsigned char)copy[take] & 0xc0) == 0x80)
                take--;         /* never half a UTF-8 character */
            strbuf_append(&r->text, copy, take);
        }
        strbuf_trim_end(&r->text);
    }
    r->done = len == 3 || line[3] == ' ';
    return r->done;
}

void smtp_features_parse(const struct smtp_reply *r, struct smtp_features *f)
{
    static const struct name_flag xforward_names[] = {
        {"NAME", SMTP_XFORWARD_NAME}, {"ADDR", SMTP_XFORWARD_ADDR}, {"PORT", SMTP_XFORWARD_PORT},
        {"PROTO", SMTP_XFORWARD_PROTO}, {"HELO", SMTP_XFORWARD_HELO},
        {"IDENT", SMTP_XFORWARD_IDENT}, {"SOURCE", SMTP_XFORWARD_SOURCE},
    };
    f->pipelining = f->eightbitmime = f->smtputf8 = f->dsn = f->starttls = 0;
    f->chunking = f->size_given = f->requiretls = 0;
    f->xforward = 0;
    f->size = 0;
    strbuf_reset(&f->auth);
    for (size_t i = 1; i < r->lines.count; i++) {
        const char *kw = r->lines.line[i];
        size_t n = strcspn(kw, " =");
        const char *arg = kw + n;
        while (*arg == ' ' || *arg == '=')
            arg++;
#define IS(word) (n == sizeof word - 1 && strncasecmp(kw, word, n) == 0)
        if (IS("PIPELINING"))
            f->pipelining = 1;
        else if (IS("8BITMIME"))
            f->eightbitmime = 1;
        else if (IS("SMTPUTF8"))
            f->smtputf8 = 1;
        else if (IS("DSN"))
            f->dsn = 1;
        else if (IS("STARTTLS"))
            f->starttls = 1;
        else if (IS("CHUNKING"))
            f->chunking = 1;
        else if (IS("REQUIRETLS"))
            f->requiretls = 1;
        else if (IS("XFORWARD"))
            /* attributes a newer server names are not ours to send */
            f->xforward = name_mask("XFORWARD", arg, xforward_names,
                                    sizeof xforward_names / sizeof xforward_names[0],
                                    NAME_MASK_ANY_CASE | NAME_MASK_IGNORE);
        else if (IS("SIZE")) {
            f->size_given = 1;
            char *end;
            unsigned long long v = strtoull(arg, &end, 10);
            f->size = end != arg && isdigit((unsigned char)*arg) ? v : 0;
        } else if (IS("AUTH")) {
            if (f->auth.len)
                strbuf_putc(&f->auth, ' ');
            strbuf_puts(&f->auth, arg);
        }
#undef IS
    }
}

void smtp_features_free(struct smtp_features *f)
{
    strbuf_free(&f->auth);
}
