/* static.c - the static table type: every key finds the same value,
 * "static:value" (the whole rest of the name) or "static:{ text }" (the
 * text inside the braces, trimmed). */
#include <stdlib.h>
#include <string.h>

#include "map_impl.h"
#include "strbuf.h"
#include "xalloc.h"

/* Work out the value once. */
static int static_open(struct map *map, const char *name, struct strbuf *err)
{
    size_t len = strlen(name);
    if (len == 0) {
        strbuf_printf(err, "table \"static:\": need static:value");
        return -1;
    }
    if (name[0] != '{') {
        map->data = xstrdup(name);
        return 0;
    }
    if (name[len - 1] != '}') {
        strbuf_printf(err, "table \"static:%s\": missing '}'", name);
        return -1;
    }
    const char *start = name + 1, *end = name + len - 1;
    while (start < end && strchr(" \t\r\n", *start))
        start++;
    while (end > start && strchr(" \t\r\n", end[-1]))
        end--;
    map->data = xstrndup(start, (size_t)(end - start));
    return 0;
}

/* Always found. */
static int static_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)key;
    strbuf_set(value, map->data);
    return MAP_FOUND;
}

/* Free the value. */
static void static_close(struct map *map)
{
    free(map->data);
}

const struct map_type map_type_static = {
    .name = "static", .flags = 0, .open = static_open, .lookup = static_lookup,
    .close = static_close,
};
