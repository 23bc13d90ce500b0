/* inline.c - the inline table type (Postfix 3.0 inline_table(5)):
 *   inline:{ key=value, { key = text with spaces }, ... }
 * Items are separated by commas or white space; an item in braces may hold
 * both, and white space around its '=' is dropped.  Keys are folded to lower
 * case; a repeated key replaces the earlier one, as in Postfix. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "map_impl.h"
#include "strbuf.h"
#include "strtable.h"
#include "xalloc.h"

/* Separators between items. */
static int is_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim white space from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* Add the item [s, e) ("key=value") to the table; 0 or -1 with err set. */
static int add_item(struct map *map, struct strtable *table, const char *s,
                    const char *e, struct strbuf *err)
{
    if (*s == '{' && e[-1] == '}') {
        s++, e--;
        trim(&s, &e);
    }
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq) {
        strbuf_printf(err, "table \"%s\": missing '=' in \"%.*s\"; need inline:{name=value...}",
                      map->spec, (int)(e - s), s);
        return -1;
    }
    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ks == ke || vs == ve) {
        strbuf_printf(err, "table \"%s\": empty %s in \"%.*s\"", map->spec,
                      ks == ke ? "key" : "value", (int)(e - s), s);
        return -1;
    }
    char *key = xstrndup(ks, (size_t)(ke - ks));
    char *value = xstrndup(vs, (size_t)(ve - vs));
    if (map->flags & MAP_FOLD_KEYS)
        for (char *p = key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    strtable_put(table, key, value, 1);
    free(key);
    free(value);
    return 0;
}

/* Parse the items between the outer braces. */
static int inline_open(struct map *map, const char *name, struct strbuf *err)
{
    const char *s = name, *e = name + strlen(name);
    trim(&s, &e);
    if (e - s < 2 || *s != '{' || e[-1] != '}') {
        strbuf_printf(err, "table \"%s\": bad syntax; need inline:{name=value...}", map->spec);
        return -1;
    }
    s++, e--;
    struct strtable *table = strtable_new();
    while (s < e) {
        while (s < e && is_separator(*s))
            s++;
        if (s == e)
            break;
        const char *start = s;
        int depth = 0;
        for (; s < e && (depth > 0 || !is_separator(*s)); s++) {
            if (*s == '{')
                depth++;
            else if (*s == '}' && --depth < 0)
                break;
        }
        if (depth != 0) {
            strbuf_printf(err, "table \"%s\": unbalanced braces", map->spec);
            strtable_free(table);
            return -1;
        }
        if (add_item(map, table, start, s, err) != 0) {
            strtable_free(table);
            return -1;
        }
    }
    if (strtable_count(table) == 0) {
        strbuf_printf(err, "table \"%s\": empty; need inline:{name=value...}", map->spec);
        strtable_free(table);
        return -1;
    }
    map->data = table;
    return 0;
}

const struct map_type map_type_inline = {
    .name = "inline",
    .flags = MAP_CAN_ITERATE | MAP_FOLD_KEYS,
    .open = inline_open,
    .lookup = memtable_lookup,
    .iterate = memtable_iterate,
    .close = memtable_close,
};
