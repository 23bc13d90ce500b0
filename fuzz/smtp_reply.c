/* fuzz/smtp_reply.c - arbitrary bytes as what a remote SMTP or LMTP server
 * answers the smtp runner: each line (split at LF, a CR before it dropped
 * as lib/net/smtpconn.c does) goes into lib/net/smtpreply.c's reply parser,
 * and a complete positive reply is read as EHLO keywords.  A reply holds a
 * code of 200-599, an RFC 3463 code of its class, and text without control
 * bytes or broken UTF-8 (it reaches logs, bounces and result records). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpreply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a complete reply must look like. */
static void check(const struct smtp_reply *r)
{
    if (r->code < 200 || r->code > 599 || r->dsn[0] != '0' + r->code / 100 % 10
        && !(r->code / 100 == 3 && r->dsn[0] == '4'))
        __builtin_trap();
    for (size_t i = 0; i < r->text.len; i++)
        if ((unsigned char)r->text.s[i] < ' ' || r->text.s[i] == 0x7f)
            __builtin_trap();
    if (r->text.len > SMTP_REPLY_MAX_TEXT || r->lines.count > SMTP_REPLY_MAX_LINES)
        __builtin_trap();
    /* bytes outside ASCII only as whole, well-formed UTF-8 sequences */
    const unsigned char *t = (const unsigned char *)(r->text.s ? r->text.s : "");
    for (size_t i = 0; i < r->text.len;) {
        size_t n = t[i] < 0x80 ? 1 : (t[i] & 0xe0) == 0xc0 ? 2 : (t[i] & 0xf0) == 0xe0 ? 3
                 : (t[i] & 0xf8) == 0xf0 ? 4 : 0;
        if (!n || i + n > r->text.len)
            __builtin_trap();
        for (size_t k = 1; k < n; k++)
            if ((t[i + k] & 0xc0) != 0x80)
                __builtin_trap();
        i += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_reply reply = SMTP_REPLY_INIT;
    struct smtp_features features = SMTP_FEATURES_INIT;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len && p[len - 1] == '\r')
            len--;
        int k = smtp_reply_add(&reply, p, len);
        if (k > 0) {
            check(&reply);
            if (reply.code / 100 == 2)
                smtp_features_parse(&reply, &features);
        } else if (k < 0) {
            smtp_reply_reset(&reply);
        }
        p += nl ? (size_t)(nl - p) + 1 : len;
        if (!nl)
            break;
    }
    smtp_reply_free(&reply);
    smtp_features_free(&features);
    return 0;
}
