/* aliastext.c - the aliases(5) source format (see maptext.h).
 *
 *   name: value, value, ...     name may be "quoted" (then it may hold
 *                               white space, ':' and '@'); unquoted it must
 *                               be a local name (no '@').
 * Values are split at the commas that are outside "quotes", (comments) and
 * <brackets>, each element trimmed, and joined again with ", " - the form
 * in which Postfix's postalias stores them.
 */
#include <ctype.h>
#include <string.h>

#include "maptext.h"
#include "strbuf.h"
#include "textlines.h"

/* White space in alias lines. */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Parse the name at the start of `line` into name; returns a pointer just
 * after its ':' or NULL with *problem set. */
static const char *parse_name(const char *line, struct strbuf *name,
                              const char **problem)
{
    const char *p = line;
    strbuf_reset(name);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            strbuf_putc(name, *p);
        }
        if (*p != '"') {
            *problem = "unterminated quoted name";
            return NULL;
        }
        p++;
        while (is_blank(*p))
            p++;
        if (*p != ':') {
            *problem = *p == '@' ? "name must be local" : "need name:value pair";
            return NULL;
        }
        return p + 1;
    }
    const char *colon = strchr(p, ':');
    if (!colon) {
        *problem = "need name:value pair";
        return NULL;
    }
    const char *end = colon;
    while (end > p && is_blank(end[-1]))
        end--;
    strbuf_append(name, p, (size_t)(end - p));
    if (memchr(p, '@', (size_t)(end - p))) {
        *problem = "name must be local";
        return NULL;
    }
    return colon + 1;
}

/* Append the element [s, e) trimmed, separated from what is there by ", ". */
static void add_element(struct strbuf *value, const char *s, const char *e, int first)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if (!first)
        strbuf_puts(value, ", ");
    strbuf_append(value, s, (size_t)(e - s));
}

/* Normalise the value: elements split at top-level commas, trimmed. */
static void parse_value(const char *p, struct strbuf *value)
{
    strbuf_reset(value);
    int quoted = 0, comment = 0, angle = 0, first = 1;
    const char *start = p;
    for (; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (comment) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '(')
                comment++;
            else if (*p == ')')
                comment--;
        } else if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == '(') {
            comment = 1;
        } else if (*p == '<') {
            angle = 1;
        } else if (*p == '>') {
            angle = 0;
        } else if (*p == ',' && !angle) {
            add_element(value, start, p, first);
            first = 0;
            start = p + 1;
        }
    }
    add_element(value, start, p, first);
}

int aliases_parse(const char *file, const char *buf, size_t len,
                  unsigned flags, maptext_entry_fn entry, void *ctx,
                  struct strbuf *err)
{
    struct textlines tl;
    struct strbuf line = STRBUF_INIT, name = STRBUF_INIT, value = STRBUF_INIT;
    int lineno;
    textlines_init(&tl, file, buf, len, TEXTLINES_MAX, 0);
    while (textlines_next(&tl, &line, &lineno, err)) {
        const char *problem = NULL;
        const char *rest = parse_name(line.s, &name, &problem);
        if (rest && name.len == 0)
            problem = "empty name", rest = NULL;
        if (rest) {
            while (is_blank(*rest))
                rest++;
            if (!*rest)
                problem = "need name:value pair", rest = NULL;
        }
        if (!rest) {
            textlines_problem(&tl, lineno, err, "%s", problem);
            continue;
        }
        parse_value(rest, &value);
        if (!(flags & MAPTEXT_KEEP_CASE))
            for (size_t i = 0; i < name.len; i++)
                name.s[i] = (char)tolower((unsigned char)name.s[i]);
        entry(strbuf_str(&name), strbuf_str(&value), lineno, ctx);
    }
    textlines_finish(&tl, err);
    strbuf_free(&line);
    strbuf_free(&name);
    strbuf_free(&value);
    return tl.problems;
}
