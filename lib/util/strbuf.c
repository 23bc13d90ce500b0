/* strbuf.c - the counted, growable string buffer (see strbuf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "xalloc.h"

/* Make room for `more` bytes and the final NUL, growing geometrically. */
void strbuf_grow(struct strbuf *sb, size_t more)
{
    if (more > (size_t)-1 / 2 - sb->len)
        die_nomem();
    size_t need = sb->len + more + 1;
    if (need <= sb->size)
        return;
    size_t size = sb->size ? sb->size : 64;
    while (size < need)
        size *= 2;
    sb->s = xrealloc(sb->s, size);
    sb->size = size;
}

void strbuf_append(struct strbuf *sb, const void *bytes, size_t n)
{
    strbuf_grow(sb, n);
    if (n)
        memcpy(sb->s + sb->len, bytes, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_putc(struct strbuf *sb, int c)
{
    strbuf_grow(sb, 1);
    sb->s[sb->len++] = (char)c;
    sb->s[sb->len] = '\0';
}

void strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n < sizeof small) {
        strbuf_append(sb, small, (size_t)n);
    } else {
        strbuf_grow(sb, (size_t)n);
        vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, again);
        sb->len += (size_t)n;
    }
    va_end(again);
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_set(struct strbuf *sb, const char *s)
{
    strbuf_reset(sb);
    strbuf_puts(sb, s);
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->s)
        sb->s[0] = '\0';
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->s[len] = '\0';
    }
}

void strbuf_trim_end(struct strbuf *sb)
{
    while (sb->len > 0 && strchr(" \t\r\n", sb->s[sb->len - 1]))
        sb->len--;
    if (sb->s)
        sb->s[sb->len] = '\0';
}

const char *strbuf_str(const struct strbuf *sb)
{
    return sb->s ? sb->s : "";
}

char *strbuf_detach(struct strbuf *sb)
{
    char *s = sb->s ? sb->s : xstrdup("");
    sb->s = NULL;
    sb->len = sb->size = 0;
    return s;
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = sb->size = 0;
}
