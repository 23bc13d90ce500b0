/* milter_proto.c - building the MTA's milter packets and parsing the
 * milter's (milter_proto.h). */
#include <string.h>

#include "milter_proto.h"

void milter_packet_begin(struct strbuf *out, int command)
{
    strbuf_reset(out);
    strbuf_append(out, "\0\0\0\0", 4);
    strbuf_putc(out, command);
}

void milter_packet_u32(struct strbuf *out, uint32_t value)
{
    unsigned char b[4] = {(unsigned char)(value >> 24), (unsigned char)(value >> 16),
                          (unsigned char)(value >> 8), (unsigned char)value};
    strbuf_append(out, b, 4);
}

void milter_packet_u16(struct strbuf *out, uint16_t value)
{
    unsigned char b[2] = {(unsigned char)(value >> 8), (unsigned char)value};
    strbuf_append(out, b, 2);
}

void milter_packet_string(struct strbuf *out, const char *s)
{
    strbuf_append(out, s, strlen(s) + 1);
}

void milter_packet_bytes(struct strbuf *out, const void *bytes, size_t n)
{
    strbuf_append(out, bytes, n);
}

void milter_packet_end(struct strbuf *out)
{
    uint32_t len = (uint32_t)(out->len - 4);
    out->s[0] = (char)(len >> 24);
    out->s[1] = (char)(len >> 16);
    out->s[2] = (char)(len >> 8);
    out->s[3] = (char)len;
}

uint32_t milter_packet_length(const unsigned char h[4])
{
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* A 4-byte number in network order at p. */
static uint32_t get_u32(const unsigned char *p)
{
    return milter_packet_length(p);
}

/* The NUL-terminated string at *at, within len: copied into out and *at
 * moved past its NUL; -1 when no NUL ends it. */
static int get_string(const unsigned char *data, size_t len, size_t *at, struct strbuf *out)
{
    const unsigned char *nul = *at < len ? memchr(data + *at, 0, len - *at) : NULL;
    if (!nul)
        return -1;
    strbuf_reset(out);
    strbuf_append(out, data + *at, (size_t)(nul - (data + *at)));
    *at = (size_t)(nul - data) + 1;
    return 0;
}

int milter_optneg_parse(const unsigned char *data, size_t len, struct milter_optneg *out,
                        struct strbuf *why)
{
    for (int i = 0; i < MILTER_STAGE_COUNT; i++) {
        strbuf_reset(&out->macros[i]);
        out->macros_set[i] = 0;
    }
    if (len < 12) {
        strbuf_set(why, "SMFIC_OPTNEG reply too short");
        return -1;
    }
    out->version = get_u32(data);
    out->actions = get_u32(data + 4);
    out->protocol = get_u32(data + 8);
    size_t at = 12;
    struct strbuf list = STRBUF_INIT;
    while (at < len) {
        if (len - at < 4) {
            strbuf_set(why, "SMFIC_OPTNEG reply: truncated macro list");
            strbuf_free(&list);
            return -1;
        }
        uint32_t stage = get_u32(data + at);
        at += 4;
        if (get_string(data, len, &at, &list) < 0) {
            strbuf_set(why, "SMFIC_OPTNEG reply: macro list without a null terminator");
            strbuf_free(&list);
            return -1;
        }
        if (stage >= MILTER_STAGE_COUNT)
            continue;           /* a stage we do not know: no macros there */
        strbuf_set(&out->macros[stage], strbuf_str(&list));
        out->macros_set[stage] = 1;
    }
    strbuf_free(&list);
    return 0;
}

void milter_optneg_free(struct milter_optneg *neg)
{
    for (int i = 0; i < MILTER_STAGE_COUNT; i++)
        strbuf_free(&neg->macros[i]);
}

/* An SMTP reply as Postfix takes it from a milter: "4xx" or "5xx", a
 * space or hyphen, then an enhanced status code of the same class; "%%"
 * becomes "%" and a lone "%" goes.  0, or -1. */
static int reply_code_check(struct strbuf *text)
{
    const char *s = strbuf_str(text);
    if (text->len < 5 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9'
        || s[2] < '0' || s[2] > '9' || (s[3] != ' ' && s[3] != '-') || s[4] != s[0])
        return -1;
    char *r = text->s, *w = text->s;
    while (*r) {
        char c = *r++;
        if (c == '%') {
            if (*r != '%')
                continue;
            r++;
        }
        *w++ = c;
    }
    *w = 0;
    text->len = (size_t)(w - text->s);
    return 0;
}

int milter_reply_parse(const unsigned char *packet, size_t len, struct milter_reply *out,
                       struct strbuf *why)
{
    strbuf_reset(&out->name);
    strbuf_reset(&out->value);
    out->index = 0;
    if (len < 1) {
        strbuf_set(why, "empty reply packet");
        return -1;
    }
    out->command = packet[0];
    const unsigned char *data = packet + 1;
    size_t n = len - 1, at = 0;
    switch (out->command) {
    case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_DISCARD: case SMFIR_PROGRESS:
    case SMFIR_REJECT: case SMFIR_TEMPFAIL: case SMFIR_SKIP: case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        if (n) {
            strbuf_printf(why, "reply '%c' with %zu bytes of data", out->command, n);
            return -1;
        }
        return 0;
    case SMFIR_REPLYCODE:
        if (get_string(data, n, &at, &out->name) < 0 || at != n) {
            strbuf_set(why, "SMFIR_REPLYCODE without a null terminator");
            return -1;
        }
        if (reply_code_check(&out->name) < 0) {
            strbuf_printf(why, "malformed reply: %.200s", strbuf_str(&out->name));
            return -1;
        }
        return 0;
    case SMFIR_QUARANTINE:
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
        if (get_string(data, n, &at, &out->name) < 0 || at != n) {
            strbuf_printf(why, "reply '%c': bad string", out->command);
            return -1;
        }
        return 0;
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        /* the address, then optionally its ESMTP arguments */
        if (get_string(data, n, &at, &out->name) < 0
            || (at < n && (get_string(data, n, &at, &out->value) < 0 || at != n))) {
            strbuf_printf(why, "reply '%c': bad string", out->command);
            return -1;
        }
        return 0;
    case SMFIR_ADDHEADER:
        if (get_string(data, n, &at, &out->name) < 0 || get_string(data, n, &at, &out->value) < 0
            || at != n || !out->name.len) {
            strbuf_set(why, "SMFIR_ADDHEADER: bad header");
            return -1;
        }
        return 0;
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        if (n < 4) {
            strbuf_printf(why, "reply '%c' too short", out->command);
            return -1;
        }
        out->index = get_u32(data);
        at = 4;
        if (get_string(data, n, &at, &out->name) < 0 || get_string(data, n, &at, &out->value) < 0
            || at != n || !out->name.len) {
            strbuf_printf(why, "reply '%c': bad header", out->command);
            return -1;
        }
        return 0;
    case SMFIR_REPLBODY:
        strbuf_append(&out->value, data, n);
        return 0;
    default:
        strbuf_printf(why, "unknown reply command 0x%02x", out->command);
        return -1;
    }
}

void milter_reply_free(struct milter_reply *reply)
{
    strbuf_free(&reply->name);
    strbuf_free(&reply->value);
}
