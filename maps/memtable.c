/* memtable.c - lookup, iterate and close for the table types that keep
 * their entries in memory in a strtable (texthash, inline): map->data is
 * the strtable, filled by the type's own open(). */
#include "map_impl.h"
#include "strbuf.h"
#include "strtable.h"

/* A hash lookup in memory; the table never goes away, so never RETRY. */
int memtable_lookup(struct map *map, const char *key, struct strbuf *value)
{
    const char *found = strtable_get(map->data, key);
    if (!found)
        return MAP_NOTFOUND;
    strbuf_set(value, found);
    return MAP_FOUND;
}

/* Every entry in the order it was first added. */
int memtable_iterate(struct map *map,
                     int (*fn)(const char *key, const char *value, void *ctx),
                     void *ctx)
{
    struct strtable *table = map->data;
    for (size_t i = 0; i < strtable_count(table); i++)
        if (fn(strtable_key(table, i), strtable_value(table, i), ctx))
            break;
    return 0;
}

/* Free the in-memory table. */
void memtable_close(struct map *map)
{
    strtable_free(map->data);
}
