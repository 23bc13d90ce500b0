/* texthash.c - the texthash table type: not written yet (a stub that refuses to open). */
#include "map_impl.h"
#include "strbuf.h"

/* Refuse: the type is declared but not implemented. */
static int texthash_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map;
    strbuf_printf(err, "table type texthash is not implemented yet (%s)", name);
    return -1;
}

/* Never reached: open always fails. */
static int texthash_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)map; (void)key; (void)value;
    return MAP_RETRY;
}

const struct map_type map_type_texthash = {
    .name = "texthash", .flags = 0, .open = texthash_open, .lookup = texthash_lookup,
};
