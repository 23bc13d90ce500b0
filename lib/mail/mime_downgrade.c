/* mime_downgrade.c - 8-bit to 7-bit conversion for a server without
 * 8BITMIME (mime_downgrade.h): lines in, each header section held one
 * logical header at a time (its Content-Transfer-Encoding replaced at the
 * section's end when it declared 8bit or binary), body lines copied or
 * re-encoded quoted-printable as the structure (rewrite_mime.c) says. */
#include <stdlib.h>
#include <string.h>

#include "mime_downgrade.h"
#include "rewrite.h"
#include "rewrite_mime.h"
#include "strbuf.h"
#include "xalloc.h"

#define QP_SOFT_AT 72           /* a soft line break once a line is longer */
#define PIECE_MIN 4096          /* body lines are handled in pieces of this */

struct mime_downgrade {
    struct mime_state mime;
    mime_downgrade_out out;
    void *context;
    size_t header_limit;
    size_t piece;               /* the longest body piece held */
    int in_header;              /* in a header section (the message's, a
                                   part's, an attached message's) */
    int mid_line;               /* the last piece did not end its line */
    int header_line;            /* the line being read is in a header section */
    int qp_line;                /* the line being read is re-encoded */
    int declared_8bit;          /* an entity was declared 8bit or binary */
    struct strbuf line;         /* the piece being collected */
    struct strbuf header;       /* the logical header being collected */
    struct strbuf qp;           /* the quoted-printable line being built */
};

static void put(struct mime_downgrade *d, const char *bytes, size_t n)
{
    if (n)
        d->out(d->context, bytes, n);
}

/* A nesting error is noted in the parser's state (mime.errors). */
static void note_error(void *context, unsigned code, const char *text, size_t len)
{
    (void)context, (void)code, (void)text, (void)len;
}

struct mime_downgrade *mime_downgrade_begin(const struct mime_downgrade_limits *limits,
                                            mime_downgrade_out out, void *context)
{
    struct mime_downgrade *d = xcalloc(1, sizeof *d);
    mime_init(&d->mime, limits->nesting_limit);
    mime_report(&d->mime, MIME_ERR_NESTING, limits->boundary_limit, note_error, d);
    d->out = out;
    d->context = context;
    d->header_limit = limits->header_limit ? limits->header_limit : 102400;
    d->piece = d->mime.boundary_limit + 4 > PIECE_MIN ? d->mime.boundary_limit + 4 : PIECE_MIN;
    d->in_header = 1;
    d->line = (struct strbuf)STRBUF_INIT;
    d->header = (struct strbuf)STRBUF_INIT;
    d->qp = (struct strbuf)STRBUF_INIT;
    return d;
}

void mime_downgrade_free(struct mime_downgrade *d)
{
    if (!d)
        return;
    mime_free(&d->mime);
    strbuf_free(&d->line);
    strbuf_free(&d->header);
    strbuf_free(&d->qp);
    free(d);
}

/* Quoted-printable, as Postfix's smtp(8) writes it: a soft break ("=")
 * once the line is over 72 characters, every byte outside printable
 * ASCII (but TAB) and "=" as =XX, white space at the end of a line as
 * =XX too. */
static void qp_bytes(struct mime_downgrade *d, const char *bytes, size_t n, int ended)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (d->qp.len > QP_SOFT_AT) {
            strbuf_puts(&d->qp, "=\n");
            put(d, d->qp.s, d->qp.len);
            strbuf_reset(&d->qp);
        }
        if ((c < 32 && c != '\t') || c == '=' || c > 126) {
            char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
            strbuf_append(&d->qp, enc, 3);
        } else {
            strbuf_putc(&d->qp, (char)c);
        }
    }
    if (!ended)
        return;
    if (d->qp.len && (d->qp.s[d->qp.len - 1] == ' ' || d->qp.s[d->qp.len - 1] == '\t')) {
        unsigned char c = (unsigned char)d->qp.s[d->qp.len - 1];
        strbuf_truncate(&d->qp, d->qp.len - 1);
        char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
        strbuf_append(&d->qp, enc, 3);
    }
    strbuf_putc(&d->qp, '\n');
    put(d, d->qp.s, d->qp.len);
    strbuf_reset(&d->qp);
}

/* One logical header of a section: noted, then written unless it is the
 * Content-Transfer-Encoding that the section's end replaces.  "Name :"
 * is written "Name:", as Postfix's MIME parser normalizes it. */
static void flush_header(struct mime_downgrade *d)
{
    struct strbuf *h = &d->header;
    if (!h->len)
        return;
    mime_note_header(&d->mime, h->s, h->len);
    if (!(mime_header_is_encoding(h->s, h->len) && mime_section_downgrade(&d->mime) != MIME_KEEP)) {
        size_t name_len;
        if (header_field_name(h->s, h->len, &name_len) && h->s[name_len] != ':') {
            const char *colon = memchr(h->s, ':', h->len);
            put(d, h->s, name_len);
            put(d, colon, h->len - (size_t)(colon - h->s));
        } else {
            put(d, h->s, h->len);
        }
        put(d, "\n", 1);
    }
    strbuf_reset(h);
}

/* The Content-Transfer-Encoding of a header section that declared 8bit
 * or binary, at its end. */
static void new_encoding(struct mime_downgrade *d)
{
    int how = mime_section_downgrade(&d->mime);
    if (how != MIME_KEEP)
        d->declared_8bit = 1;
    if (how == MIME_TO_7BIT)
        put(d, "Content-Transfer-Encoding: 7bit\n", 32);
    else if (how == MIME_TO_QP)
        put(d, "Content-Transfer-Encoding: quoted-printable\n", 44);
}

/* The header section ends: its new Content-Transfer-Encoding, then the
 * body (or an attached message's header section) follows. */
static void end_section(struct mime_downgrade *d)
{
    flush_header(d);
    new_encoding(d);
    d->in_header = mime_section_end(&d->mime);
}

static void body_piece(struct mime_downgrade *d, const char *bytes, size_t n, int ended,
                       int at_start);

/* A line piece in a header section (at_start: it begins a line). */
static void header_piece(struct mime_downgrade *d, const char *bytes, size_t n, int ended,
                         int at_start)
{
    size_t name_len;
    if (!at_start) {
        /* the rest of a long header line: kept up to header_size_limit */
        if (d->header.len < d->header_limit)
            strbuf_append(&d->header, bytes,
                          n < d->header_limit - d->header.len ? n : d->header_limit - d->header.len);
        return;
    }
    if (n && (bytes[0] == ' ' || bytes[0] == '\t') && d->header.len) {
        if (d->header.len + 1 < d->header_limit) {
            strbuf_putc(&d->header, '\n');
            size_t room = d->header_limit - d->header.len;
            strbuf_append(&d->header, bytes, n < room ? n : room);
        }
        return;
    }
    flush_header(d);
    if (n && header_field_name(bytes, n, &name_len)) {
        strbuf_append(&d->header, bytes, n < d->header_limit ? n : d->header_limit);
        return;
    }
    end_section(d);
    if (n == 0 && ended) {
        put(d, "\n", 1);
        return;
    }
    /* a line that is no header ends the section and is a body line (no
     * empty line is put in between: Postfix 3.7 sent none) */
    d->in_header = d->header_line = 0;
    body_piece(d, bytes, n, ended, 1);
}

/* A body line piece: a boundary opens a part's header section; other
 * lines are copied, or re-encoded when the body is declared 8-bit. */
static void body_piece(struct mime_downgrade *d, const char *bytes, size_t n, int ended,
                       int at_start)
{
    if (at_start) {
        int boundary = mime_boundary(&d->mime, bytes, n);
        d->qp_line = boundary == MIME_NONE && mime_body_8bit(&d->mime);
        if (boundary == MIME_PART)
            d->in_header = 1;
    }
    if (d->qp_line) {
        qp_bytes(d, bytes, n, ended);
        return;
    }
    put(d, bytes, n);
    if (ended)
        put(d, "\n", 1);
}

/* One piece of a line (without its LF; `ended` when the LF followed):
 * the pieces of one line all go where its first went. */
static void piece(struct mime_downgrade *d, const char *bytes, size_t n, int ended)
{
    int at_start = !d->mid_line;
    d->mid_line = !ended;
    if (at_start)
        d->header_line = d->in_header;
    if (d->header_line)
        header_piece(d, bytes, n, ended, at_start);
    else
        body_piece(d, bytes, n, ended, at_start);
}

unsigned mime_downgrade_feed(struct mime_downgrade *d, const char *bytes, size_t n)
{
    while (n && !d->mime.errors) {
        const char *lf = memchr(bytes, '\n', n);
        size_t take = lf ? (size_t)(lf - bytes) : n;
        size_t room = d->piece - d->line.len;
        if (take > room || (!lf && take == room)) {
            /* a long line: hand on a piece (headers collect it whole) */
            strbuf_append(&d->line, bytes, room);
            bytes += room;
            n -= room;
            piece(d, d->line.s, d->line.len, 0);
            strbuf_reset(&d->line);
            continue;
        }
        strbuf_append(&d->line, bytes, take);
        bytes += take;
        n -= take;
        if (!lf)
            break;
        bytes++;
        n--;
        piece(d, d->line.s ? d->line.s : "", d->line.len, 1);
        strbuf_reset(&d->line);
    }
    return d->mime.errors;
}

unsigned mime_downgrade_end(struct mime_downgrade *d, int *declared_8bit)
{
    if (!d->mime.errors) {
        if (d->line.len || d->mid_line)
            piece(d, d->line.s ? d->line.s : "", d->line.len, 1);
        if (d->in_header) {
            /* the input ended inside a header section */
            flush_header(d);
            new_encoding(d);
        }
    }
    if (declared_8bit)
        *declared_8bit = d->declared_8bit;
    unsigned errors = d->mime.errors;
    mime_downgrade_free(d);
    return errors;
}
