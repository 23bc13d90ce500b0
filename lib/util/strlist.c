/* strlist.c - a list of strings, and list_split(): Postfix's list syntax
 * (commas and white space, `{ ... }` grouping).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "strlist.h"
#include "xalloc.h"

/* List separators, as Postfix's. */
static int is_separator(int c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int list_split(const char *value, struct strlist *out, struct strbuf *err)
{
    const char *p = value;
    size_t initial_count = out->count;
    for (;;) {
        while (*p && is_separator((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        const char *start = p;
        int depth = 0;
        for (; *p && (depth > 0 || !is_separator((unsigned char)*p)); p++) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && --depth < 0)
                break;
        }
        if (depth != 0) {
            int shown = (int)(p - start) + (*p != '\0');
            strbuf_printf(err, "unbalanced '%c' in list item \"%.*s\"", depth > 0 ? '{' : '}',
                          shown > 200 ? 200 : shown, start);
            while (out->count > initial_count)     /* leave out as it was */
                free(out->item[--out->count]);
            return -1;
        }
        const char *end = p;
        /* an item that is all one {...} loses its braces and inner space */
        if (*start == '{' && end[-1] == '}') {
            const char *inner = start + 1, *inner_end = end - 1;
            int whole = 1;
            int d = 0;
            for (const char *q = start; q < end; q++) {
                if (*q == '{')
                    d++;
                else if (*q == '}' && --d == 0 && q != end - 1)
                    whole = 0;
            }
            if (whole) {
                while (inner < inner_end && isspace((unsigned char)*inner))
                    inner++;
                while (inner_end > inner && isspace((unsigned char)inner_end[-1]))
                    inner_end--;
                char *item = xstrndup(inner, (size_t)(inner_end - inner));
                strlist_add(out, item);
                free(item);
                continue;
            }
        }
        char *item = xstrndup(start, (size_t)(end - start));
        strlist_add(out, item);
        free(item);
    }
}

void strlist_add(struct strlist *list, const char *s)
{
    list->item = xreallocarray(list->item, list->count + 1, sizeof *list->item);
    list->item[list->count++] = xstrdup(s);
}

void strlist_free(struct strlist *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->item[i]);
    free(list->item);
    list->item = NULL;
    list->count = 0;
}

