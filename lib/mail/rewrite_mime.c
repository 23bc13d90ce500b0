/* rewrite_mime.c - the MIME structure of a message (rewrite_mime.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rewrite_mime.h"
#include "xalloc.h"

#define BOUNDARY_MAX 200            /* RFC 2046: at most 70; longer ones are kept up to this */

void mime_init(struct mime_state *ms, long nesting_limit)
{
    memset(ms, 0, sizeof *ms);
    ms->boundaries = (struct strlist)STRLIST_INIT;
    ms->limit = nesting_limit;
}

void mime_free(struct mime_state *ms)
{
    strlist_free(&ms->boundaries);
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

void mime_note_header(struct mime_state *ms, const char *header, size_t len)
{
    const char *end = header + len;
    if (len < 13 || strncasecmp(header, "Content-Type", 12) != 0)
        return;
    const char *p = header + 12;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= end || *p != ':')
        return;
    p = skip_space(p + 1, end);
    free(ms->next_boundary);
    ms->next_boundary = NULL;
    ms->next_message = 0;
    if ((size_t)(end - p) >= 14 && strncasecmp(p, "message/rfc822", 14) == 0) {
        ms->next_message = 1;
        return;
    }
    if ((size_t)(end - p) < 10 || strncasecmp(p, "multipart/", 10) != 0)
        return;
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
            stop = v;
            while (stop < end && !strchr(" \t\r\n;()<>@,:\\\"/[]?=", *stop))
                stop++;
        }
        size_t n = (size_t)(stop - v);
        if (n == 0 || n > BOUNDARY_MAX)
            return;
        ms->next_boundary = xmalloc(n + 1);
        memcpy(ms->next_boundary, v, n);
        ms->next_boundary[n] = '\0';
        return;
    }
}

int mime_section_end(struct mime_state *ms)
{
    int message = ms->next_message;
    if (ms->next_boundary && (ms->limit <= 0 || (long)ms->boundaries.count < ms->limit))
        strlist_add(&ms->boundaries, ms->next_boundary);
    free(ms->next_boundary);
    ms->next_boundary = NULL;
    ms->next_message = 0;
    return message;
}

/* Close the multiparts inside level `keep` (their boundaries go). */
static void close_to(struct mime_state *ms, size_t keep)
{
    while (ms->boundaries.count > keep)
        free(ms->boundaries.item[--ms->boundaries.count]);
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
            return MIME_CLOSE;
        }
        close_to(ms, k + 1);
        return MIME_PART;
    }
    return MIME_NONE;
}
