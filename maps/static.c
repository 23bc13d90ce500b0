/* static.c - the static table type: not written yet (a stub that refuses to open). */
#include "map_impl.h"
#include "strbuf.h"

/* Refuse: the type is declared but not implemented. */
static int static_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map;
    strbuf_printf(err, "table type static is not implemented yet (%s)", name);
    return -1;
}

/* Never reached: open always fails. */
static int static_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)map; (void)key; (void)value;
    return MAP_RETRY;
}

const struct map_type map_type_static = {
    .name = "static", .flags = 0, .open = static_open, .lookup = static_lookup,
};
