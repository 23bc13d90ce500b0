/* maptext.c - the "key whitespace value" source format (see maptext.h). */
#include <ctype.h>
#include <string.h>

#include "maptext.h"
#include "strbuf.h"
#include "textlines.h"

/* White space as Postfix's postmap splits on it. */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int maptext_parse(const char *file, const char *buf, size_t len,
                  unsigned flags, maptext_entry_fn entry, void *ctx,
                  struct strbuf *err)
{
    struct textlines tl;
    struct strbuf line = STRBUF_INIT;
    int lineno;
    textlines_init(&tl, file, buf, len, TEXTLINES_MAX, 0);
    while (textlines_next(&tl, &line, &lineno, err)) {
        char *key = line.s;
        char *p = key;
        while (*p && !is_blank(*p))
            p++;
        if (*p)
            *p++ = '\0';
        while (is_blank(*p))
            p++;
        char *value = p;
        char *end = value + strlen(value);
        while (end > value && is_blank(end[-1]))
            *--end = '\0';
        if (!*value) {
            textlines_problem(&tl, lineno, err, "expected format: key whitespace value");
            continue;
        }
        if (!(flags & MAPTEXT_KEEP_CASE))
            for (char *k = key; *k; k++)
                *k = (char)tolower((unsigned char)*k);
        entry(key, value, lineno, ctx);
    }
    textlines_finish(&tl, err);
    strbuf_free(&line);
    return tl.problems;
}
