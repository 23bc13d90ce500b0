/* fail.c - the fail table type: not written yet (a stub that refuses to open). */
#include "map_impl.h"
#include "strbuf.h"

/* Refuse: the type is declared but not implemented. */
static int fail_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map;
    strbuf_printf(err, "table type fail is not implemented yet (%s)", name);
    return -1;
}

/* Never reached: open always fails. */
static int fail_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)map; (void)key; (void)value;
    return MAP_RETRY;
}

const struct map_type map_type_fail = {
    .name = "fail", .flags = 0, .open = fail_open, .lookup = fail_lookup,
};
