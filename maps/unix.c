/* unix.c - the unix table type: not written yet (a stub that refuses to open). */
#include "map_impl.h"
#include "strbuf.h"

/* Refuse: the type is declared but not implemented. */
static int unix_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map;
    strbuf_printf(err, "table type unix is not implemented yet (%s)", name);
    return -1;
}

/* Never reached: open always fails. */
static int unix_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)map; (void)key; (void)value;
    return MAP_RETRY;
}

const struct map_type map_type_unix = {
    .name = "unix", .flags = 0, .open = unix_open, .lookup = unix_lookup,
};
