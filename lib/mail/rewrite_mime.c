/* rewrite_mime.c - the MIME structure of a message (rewrite_mime.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rewrite_mime.h"
#include "xalloc.h"

#define BOUNDARY_LIMIT 2048         /* mime_boundary_length_limit's default */

/* Content types (ctype) and the message subtypes (stype) that matter. */
enum { CTYPE_TEXT, CTYPE_MULTIPART, CTYPE_MESSAGE, CTYPE_OTHER };
enum { STYPE_OTHER, STYPE_RFC822, STYPE_PARTIAL, STYPE_EXTERNAL };
/* Encodings; the domain of each is 7bit, 8bit or binary (RFC 2045). */
enum { ENC_7BIT, ENC_8BIT, ENC_BINARY, ENC_QP, ENC_BASE64 };

static const struct encoding {
    const char *name;
    int encoding, domain;
} encodings[] = {
    {"7bit", ENC_7BIT, ENC_7BIT}, {"8bit", ENC_8BIT, ENC_8BIT},
    {"binary", ENC_BINARY, ENC_8BIT}, {"quoted-printable", ENC_QP, ENC_7BIT},
    {"base64", ENC_BASE64, ENC_7BIT},
};

static int domain_of(int encoding)
{
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++)
        if (encodings[i].encoding == encoding)
            return encodings[i].domain;
    return ENC_7BIT;
}

static const char *encoding_name(int encoding)
{
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++)
        if (encodings[i].encoding == encoding)
            return encodings[i].name;
    return "unknown";
}

/* A new section: text/plain in 7bit until its headers say otherwise. */
static void section_start(struct mime_state *ms)
{
    ms->ctype = CTYPE_TEXT;
    ms->stype = STYPE_OTHER;
    ms->encoding = ENC_7BIT;
}

void mime_init(struct mime_state *ms, long nesting_limit)
{
    memset(ms, 0, sizeof *ms);
    ms->boundaries = (struct strlist)STRLIST_INIT;
    ms->limit = nesting_limit;
    ms->boundary_limit = BOUNDARY_LIMIT;
    section_start(ms);
    ms->body_encoding = ENC_7BIT;
}

void mime_report(struct mime_state *ms, unsigned report, size_t boundary_limit,
                 mime_error_fn fn, void *context)
{
    ms->report = fn ? report : 0;
    ms->boundary_limit = boundary_limit ? boundary_limit : BOUNDARY_LIMIT;
    ms->error = fn;
    ms->error_context = context;
}

/* Record an error and report it when asked to. */
static void error(struct mime_state *ms, unsigned code, const char *text, size_t len)
{
    if (!(ms->report & code))
        return;
    ms->errors |= code;
    ms->error(ms->error_context, code, text, len);
}

const char *mime_error_text(unsigned errors)
{
    if (errors & MIME_ERR_NESTING)
        return "MIME nesting exceeds safety limit";
    if (errors & MIME_ERR_8BIT_IN_HEADER)
        return "improper use of 8-bit data in message header";
    if (errors & MIME_ERR_8BIT_IN_7BIT_BODY)
        return "improper use of 8-bit data in message body";
    return "invalid message/* or multipart/* encoding domain";
}

/* 1 when the bytes hold one with the high bit set. */
static int has_8bit(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] & 0x80)
            return 1;
    return 0;
}

void mime_free(struct mime_state *ms)
{
    strlist_free(&ms->boundaries);
    free(ms->digest);
    ms->digest = NULL;
    free(ms->next_boundary);
    ms->next_boundary = NULL;
}

int mime_header_name(const char *name, size_t len)
{
    return (len > 8 && strncasecmp(name, "Content-", 8) == 0)
           || (len == 12 && strncasecmp(name, "MIME-Version", 12) == 0);
}

/* Skip white space and (comments) in a header value. */
static const char *skip_space(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
        } else if (*p == '(') {
            int depth = 0;
            for (; p < end; p++) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                else if (*p == '(')
                    depth++;
                else if (*p == ')' && --depth == 0) {
                    p++;
                    break;
                }
            }
        } else {
            break;
        }
    }
    return p;
}

/* The token at p (RFC 2045: no tspecials, no white space); its length. */
static size_t token_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && !strchr(" \t\r\n;()<>@,:\\\"/[]?=", *q) && (unsigned char)*q > ' ')
        q++;
    return (size_t)(q - p);
}

/* 1 when the token at p of length n is `word` (any case). */
static int token_is(const char *p, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

/* The value after "Name:" of a header named `name`, or NULL. */
static const char *header_value(const char *header, const char *end, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(end - header) < n + 1 || strncasecmp(header, name, n) != 0)
        return NULL;
    const char *p = header + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= end || *p != ':')
        return NULL;
    return skip_space(p + 1, end);
}

/* Content-Transfer-Encoding: the section's encoding, when known. */
static void note_encoding(struct mime_state *ms, const char *p, const char *end)
{
    size_t n = token_len(p, end);
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++)
        if (token_is(p, n, encodings[i].name))
            ms->encoding = encodings[i].encoding;
}

/* Content-Type: the section's type, and a multipart's boundary. */
static void note_type(struct mime_state *ms, const char *header, const char *p, const char *end)
{
    free(ms->next_boundary);
    ms->next_boundary = NULL;
    ms->next_message = 0;
    ms->next_digest = 0;
    size_t n = token_len(p, end);
    const char *type = p;
    const char *sub = skip_space(p + n, end);
    size_t sub_len = 0;
    if (sub < end && *sub == '/') {
        sub = skip_space(sub + 1, end);
        sub_len = token_len(sub, end);
    }
    if (token_is(type, n, "text")) {
        ms->ctype = CTYPE_TEXT;
        return;
    }
    if (token_is(type, n, "message")) {
        ms->ctype = CTYPE_MESSAGE;
        ms->stype = token_is(sub, sub_len, "rfc822") ? STYPE_RFC822
                    : token_is(sub, sub_len, "partial") ? STYPE_PARTIAL
                    : token_is(sub, sub_len, "external-body") ? STYPE_EXTERNAL : STYPE_OTHER;
        ms->next_message = ms->stype == STYPE_RFC822;
        return;
    }
    if (!token_is(type, n, "multipart")) {
        ms->ctype = CTYPE_OTHER;
        return;
    }
    ms->ctype = CTYPE_MULTIPART;
    ms->next_digest = token_is(sub, sub_len, "digest");
    /* the boundary parameter, quoted or a token */
    for (const char *q = p; q + 9 <= end; q++) {
        if (strncasecmp(q, "boundary", 8) != 0 || (q > p && q[-1] != ';' && q[-1] != ' '
                                                   && q[-1] != '\t' && q[-1] != '\n'))
            continue;
        const char *v = skip_space(q + 8, end);
        if (v >= end || *v != '=')
            continue;
        v = skip_space(v + 1, end);
        const char *stop;
        if (v < end && *v == '"') {
            v++;
            stop = memchr(v, '"', (size_t)(end - v));
            if (!stop)
                stop = end;
        } else {
            stop = v + token_len(v, end);
        }
        size_t len = (size_t)(stop - v);
        if (len == 0)
            return;
        /* Postfix opens at most mime_nesting_limit + 2 multiparts (found
         * against Postfix 3.7: t/data/postfix-3.7-mime-errors.txt) */
        if (ms->limit > 0 && (long)ms->boundaries.count > ms->limit + 1) {
            error(ms, MIME_ERR_NESTING, header, (size_t)(end - header));
            return;
        }
        /* compared on the first mime_boundary_length_limit bytes only */
        if (len > ms->boundary_limit)
            len = ms->boundary_limit;
        ms->next_boundary = xmemdup0(v, len);
        return;
    }
}

void mime_note_header(struct mime_state *ms, const char *header, size_t len)
{
    const char *end = header + len, *value;
    if ((value = header_value(header, end, "Content-Type")))
        note_type(ms, header, value, end);
    else if ((value = header_value(header, end, "Content-Transfer-Encoding")))
        note_encoding(ms, value, end);
    if ((ms->report & MIME_ERR_8BIT_IN_HEADER) && !(ms->errors & MIME_ERR_8BIT_IN_HEADER)
        && has_8bit(header, len))
        error(ms, MIME_ERR_8BIT_IN_HEADER, header, len);
}

int mime_section_end(struct mime_state *ms)
{
    int message = ms->next_message;
    /* a multipart or a message may only be in its domain's identity
     * encoding (message/partial and external-body only in 7bit) */
    int bad_domain = ms->ctype == CTYPE_MESSAGE && (ms->stype == STYPE_PARTIAL
                                                     || ms->stype == STYPE_EXTERNAL)
                     ? domain_of(ms->encoding) != ENC_7BIT
                     : (ms->ctype == CTYPE_MESSAGE || ms->ctype == CTYPE_MULTIPART)
                       && domain_of(ms->encoding) != ms->encoding;
    if (bad_domain) {
        const char *name = encoding_name(ms->encoding);
        error(ms, MIME_ERR_ENCODING_DOMAIN, name, strlen(name));
    }
    /* the body that follows: a multipart's preamble is 7bit */
    ms->body_encoding = ms->ctype == CTYPE_MULTIPART ? ENC_7BIT : ms->encoding;
    if (ms->next_boundary) {
        strlist_add(&ms->boundaries, ms->next_boundary);
        ms->digest = xrealloc(ms->digest, ms->boundaries.count);
        ms->digest[ms->boundaries.count - 1] = (char)ms->next_digest;
    }
    ms->next_digest = 0;
    free(ms->next_boundary);
    ms->next_boundary = NULL;
    ms->next_message = 0;
    section_start(ms);
    if (message)
        ms->body_encoding = ENC_7BIT;
    return message;
}

/* Close the multiparts inside level `keep` (their boundaries go). */
static void close_to(struct mime_state *ms, size_t keep)
{
    while (ms->boundaries.count > keep)
        free(ms->boundaries.item[--ms->boundaries.count]);
}

void mime_body_line(struct mime_state *ms, const char *line, size_t len)
{
    if ((ms->report & MIME_ERR_8BIT_IN_7BIT_BODY) && ms->body_encoding == ENC_7BIT
        && !(ms->errors & MIME_ERR_8BIT_IN_7BIT_BODY) && has_8bit(line, len))
        error(ms, MIME_ERR_8BIT_IN_7BIT_BODY, line, len);
}

int mime_boundary(struct mime_state *ms, const char *line, size_t len)
{
    if (len < 3 || line[0] != '-' || line[1] != '-' || !ms->boundaries.count)
        return MIME_NONE;
    for (size_t k = ms->boundaries.count; k-- > 0;) {
        const char *b = ms->boundaries.item[k];
        size_t n = strlen(b);
        if (len < 2 + n || memcmp(line + 2, b, n) != 0)
            continue;
        if (len >= 4 + n && line[2 + n] == '-' && line[3 + n] == '-') {
            close_to(ms, k);
            ms->body_encoding = ENC_7BIT;   /* the epilogue */
            return MIME_CLOSE;
        }
        close_to(ms, k + 1);
        section_start(ms);
        if (ms->digest[k]) {
            /* RFC 2046 5.1.5: in a digest, a part without Content-Type
             * is message/rfc822 (as Postfix's mime_state) */
            ms->ctype = CTYPE_MESSAGE;
            ms->stype = STYPE_RFC822;
            ms->next_message = 1;
        }
        return MIME_PART;
    }
    return MIME_NONE;
}

int mime_section_downgrade(const struct mime_state *ms)
{
    if (domain_of(ms->encoding) == ENC_7BIT)
        return MIME_KEEP;
    return ms->ctype == CTYPE_MESSAGE || ms->ctype == CTYPE_MULTIPART ? MIME_TO_7BIT : MIME_TO_QP;
}

int mime_body_8bit(const struct mime_state *ms)
{
    return domain_of(ms->body_encoding) != ENC_7BIT;
}

int mime_header_is_encoding(const char *header, size_t len)
{
    return header_value(header, header + len, "Content-Transfer-Encoding") != NULL;
}
