/* fail.c - the fail table type: every lookup answers "try again"
 * (MAP_RETRY), as Postfix's fail:name does; for testing what callers do when
 * a table is unavailable. */
#include "map_impl.h"
#include "strbuf.h"

/* Any name will do. */
static int fail_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map; (void)name; (void)err;
    return 0;
}

/* Always unavailable. */
static int fail_lookup(struct map *map, const char *key, struct strbuf *value)
{
    (void)map; (void)key; (void)value;
    return MAP_RETRY;
}

const struct map_type map_type_fail = {
    .name = "fail", .flags = 0, .open = fail_open, .lookup = fail_lookup,
};
