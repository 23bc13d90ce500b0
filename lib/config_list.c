/* config_list.c - lists and typed values: splitting a value on commas and
 * white space with `{ ... }` grouping, and yes/no, time and size parsing.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "strbuf.h"
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

int parse_bool(const char *s)
{
    if (strcasecmp(s, "yes") == 0)
        return 1;
    if (strcasecmp(s, "no") == 0)
        return 0;
    return -1;
}

/* Digits with an optional one-letter suffix; the number, or -1.  *suffix
 * gets the suffix ('\0' when none). */
static long long parse_number(const char *s, char *suffix)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    *suffix = *end;
    if (*end && end[1])
        return -1;
    return n;
}

/* n * factor, or -1 on overflow. */
static long long scale(long long n, long long factor)
{
    if (n > LLONG_MAX / factor)
        return -1;
    return n * factor;
}

long long parse_time(const char *s, char unit)
{
    char suffix;
    long long n = parse_number(s, &suffix);
    if (n < 0)
        return -1;
    switch (suffix ? suffix : unit) {
    case 's': return n;
    case 'm': return scale(n, 60);
    case 'h': return scale(n, 3600);
    case 'd': return scale(n, 86400);
    case 'w': return scale(n, 7 * 86400);
    default:  return -1;
    }
}

long long parse_size(const char *s)
{
    char suffix;
    long long n = parse_number(s, &suffix);
    if (n < 0)
        return -1;
    switch (suffix) {
    case '\0':           return n;
    case 'k': case 'K':  return scale(n, 1024);
    case 'm': case 'M':  return scale(n, 1024 * 1024);
    case 'g': case 'G':  return scale(n, 1024 * 1024 * 1024);
    default:             return -1;
    }
}
