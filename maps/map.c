/* map.c - open tables by "type:name", look keys up, keep lists of tables.
 *
 * The per-type work is in maps/TYPE.c; this file holds the table of types
 * and what they all share (see map_impl.h).  Which process opens a table:
 * "proxy:TYPE:NAME" is asked of the lookup service (maps/proxy.c), and so
 * is a type that needs the name service or a client library (unix:,
 * pgsql:, mysql:, sqlite:, ldap:) in a
 * program that has not registered it with map_register_dynamic_types():
 * the static per-connection programs never link such code.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "strlist.h"
#include "map_impl.h"
#include "monotonic.h"
#include "strbuf.h"
#include "xalloc.h"

static const struct {
    const char *name;
    const struct map_type *type;
} map_types[] = {
    {"btree", &map_type_cdb},
    {"cdb", &map_type_cdb},
    {"cidr", &map_type_cidr},
    {"fail", &map_type_fail},
    {"hash", &map_type_cdb},
    {"inline", &map_type_inline},
    {"ldap", NULL},
    {"mysql", NULL},            /* service types: see service_types */
    {"pcre", &map_type_pcre},
    {"pgsql", NULL},
    {"regexp", &map_type_regexp},
    {"socketmap", &map_type_socketmap},
    {"sqlite", NULL},
    {"static", &map_type_static},
    {"texthash", &map_type_texthash},
    {"unix", NULL},             /* a service type: see service_types */
};
#define MAP_TYPE_COUNT (sizeof map_types / sizeof map_types[0])

/* The types that need the name service or a client library, with the
 * flags their implementation has (the implementation itself is linked
 * only by map_register_dynamic_types(), maps/dynamic_types.c). */
static const struct {
    const char *name;
    unsigned flags;
} service_types[] = {
    {"unix", MAP_FOLD_KEYS},
    {"pgsql", MAP_FOLD_KEYS | MAP_SLOW},
    {"mysql", MAP_FOLD_KEYS | MAP_SLOW},
    {"sqlite", MAP_FOLD_KEYS | MAP_SLOW},
    {"ldap", MAP_FOLD_KEYS | MAP_SLOW},
    {"dns", 0},                 /* DNS lookups, answered by the service only (doc/dns.md) */
};
static const struct map_type *const *dynamic_types;    /* NULL-ended */

void map_set_dynamic_types(const struct map_type *const *types)
{
    dynamic_types = types;
}

int map_is_service_type(const char *spec)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    for (size_t i = 0; i < sizeof service_types / sizeof service_types[0]; i++)
        if (strlen(service_types[i].name) == len
            && strncmp(service_types[i].name, spec, len) == 0)
            return 1;
    return 0;
}

/* The in-process implementation of a type, by name (len bytes), or NULL;
 * *service set when it is a service type (with its flags in *flags). */
static const struct map_type *find_type(const char *name, size_t len, int *service,
                                        unsigned *flags)
{
    *service = 0;
    for (size_t i = 0; i < sizeof service_types / sizeof service_types[0]; i++)
        if (strlen(service_types[i].name) == len
            && strncmp(service_types[i].name, name, len) == 0) {
            *service = 1;
            *flags = service_types[i].flags;
            for (size_t j = 0; dynamic_types && dynamic_types[j]; j++)
                if (strcmp(dynamic_types[j]->name, service_types[i].name) == 0)
                    return dynamic_types[j];
            return NULL;
        }
    for (size_t i = 0; i < MAP_TYPE_COUNT; i++)
        if (map_types[i].type && strlen(map_types[i].name) == len
            && strncmp(map_types[i].name, name, len) == 0) {
            *flags = map_types[i].type->flags;
            return map_types[i].type;
        }
    return NULL;
}

const char *const *map_type_names(void)
{
    static const char *names[MAP_TYPE_COUNT + 2];
    if (!names[0]) {
        for (size_t i = 0; i < MAP_TYPE_COUNT; i++)
            names[i] = map_types[i].name;
        names[MAP_TYPE_COUNT] = "proxy";
    }
    return names;
}

struct map *map_open(const char *spec, struct strbuf *err)
{
    return map_open_flags(spec, 0, err);
}

struct map *map_open_flags(const char *spec, unsigned options, struct strbuf *err)
{
    /* proxy: asks the lookup service, as Postfix's proxymap */
    int proxied = 0;
    while (strncmp(spec, "proxy:", 6) == 0) {
        spec += 6;
        proxied = 1;
    }
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec) {
        strbuf_printf(err, "table \"%s\": expected type:name", spec);
        return NULL;
    }
    size_t type_len = (size_t)(colon - spec);
    int service = 0;
    unsigned flags = 0;
    const struct map_type *type = find_type(spec, type_len, &service, &flags);
    if (!type && !service) {
        strbuf_printf(err, "table \"%s\": unsupported type \"%.*s\" (postern conf -m lists the types)",
                      spec, (int)type_len, spec);
        return NULL;
    }
    struct map *map = xcalloc(1, sizeof *map);
    map->spec = xstrdup(spec);
    if (proxied || !type) {
        /* the service answers as the type would, but cannot list */
        map->type = &map_type_proxy;
        map->name = map->spec;
        flags &= ~(unsigned)MAP_CAN_ITERATE;
    } else {
        map->type = type;
        map->name = map->spec + type_len + 1;
    }
    map->flags = flags;
    map->options = options;
    if (options & MAP_OPEN_KEEP_CASE)
        map->flags &= ~(unsigned)MAP_FOLD_KEYS;
    /* the file as it is before it is read: a change during the read is
     * seen by the next map_changed() */
    if (map->type->file_suffix) {
        struct strbuf file = STRBUF_INIT;
        strbuf_printf(&file, "%s%s", map->name, map->type->file_suffix);
        map->file = strbuf_detach(&file);
        if (stat(map->file, &map->file_seen) != 0)
            memset(&map->file_seen, 0, sizeof map->file_seen);
    }
    if (map->type->open(map, map->name, err) != 0) {
        free(map->file);
        free(map->spec);
        free(map);
        return NULL;
    }
    return map;
}

/* 1 when two stats of a file differ in inode, size or modification time. */
static int file_differs(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_dev != b->st_dev || a->st_size != b->st_size
           || a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* map_changes_quiet(): another process (the zygote) says the changes */
static int changes_quiet;

void map_changes_quiet(void)
{
    changes_quiet = 1;
}

int map_changed(struct map *map)
{
    struct stat st;
    if (!map || !map->file || stat(map->file, &st) != 0)
        return 0;               /* gone: keep answering from what was read */
    if (!file_differs(&st, &map->file_seen))
        return 0;
    double now = monotonic_now();
    if (map->change_reported && !file_differs(&st, &map->file_reported)) {
        /* said before and the caller kept this table: not every time */
        if (now < map->retry_at)
            return 0;
        map->retry_at = now + MAP_REOPEN_RETRY_SECONDS;
        return MAP_CHANGED_AGAIN;
    }
    map->change_reported = 1;
    map->file_reported = st;
    map->retry_at = now + MAP_REOPEN_RETRY_SECONDS;
    return changes_quiet ? MAP_CHANGED_AGAIN : MAP_CHANGED;
}

int maplist_changed(const struct maplist *list)
{
    int changed = 0;
    for (size_t i = 0; list && i < maplist_count(list); i++) {
        int c = map_changed(maplist_at(list, i));
        if (c == MAP_CHANGED)
            return c;
        if (c)
            changed = c;
    }
    return changed;
}

int map_lookup(struct map *map, const char *key, struct strbuf *value)
{
    strbuf_reset(value);
    if (!(map->flags & MAP_FOLD_KEYS))
        return map->type->lookup(map, key, value);
    char *folded = xstrdup(key);
    for (char *p = folded; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int result = map->type->lookup(map, folded, value);
    free(folded);
    return result;
}

void map_lookup_several(struct map *const *maps, const char *const *keys, size_t n,
                        struct strbuf *values, int *results)
{
    struct map **batch = xcalloc(n ? n : 1, sizeof *batch);
    const char **batch_keys = xcalloc(n ? n : 1, sizeof *batch_keys);
    size_t *where = xcalloc(n ? n : 1, sizeof *where), count = 0;
    const struct map_type *type = NULL;
    for (size_t i = 0; i < n; i++) {
        /* the ones a type can ask together */
        if (maps[i]->type->lookup_several && (!type || maps[i]->type == type)) {
            type = maps[i]->type;
            batch[count] = maps[i];
            char *key = xstrdup(keys[i]);
            if (maps[i]->flags & MAP_FOLD_KEYS)
                for (char *p = key; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
            batch_keys[count] = key;
            where[count++] = i;
        } else {
            results[i] = map_lookup(maps[i], keys[i], &values[i]);
        }
    }
    if (count) {
        struct strbuf *got = xcalloc(count, sizeof *got);
        int *got_results = xcalloc(count, sizeof *got_results);
        type->lookup_several(batch, batch_keys, count, got, got_results);
        for (size_t j = 0; j < count; j++) {
            strbuf_set(&values[where[j]], strbuf_str(&got[j]));
            results[where[j]] = got_results[j];
            strbuf_free(&got[j]);
            free((char *)batch_keys[j]);
        }
        free(got);
        free(got_results);
    }
    free(batch);
    free(batch_keys);
    free(where);
}

void map_close(struct map *map)
{
    if (!map)
        return;
    if (map->type->close)
        map->type->close(map);
    free(map->file);
    free(map->spec);
    free(map);
}

const char *map_spec(const struct map *map)
{
    return map->spec;
}

unsigned map_flags(const struct map *map)
{
    return map->flags & (MAP_PATTERN | MAP_CAN_ITERATE | MAP_SLOW);
}

int map_iterate(struct map *map,
                int (*fn)(const char *key, const char *value, void *ctx),
                void *ctx)
{
    if (!map->type->iterate)
        return -1;
    return map->type->iterate(map, fn, ctx);
}

struct maplist {
    struct map **maps;
    size_t count;
};

struct maplist *maplist_open(const char *value, struct strbuf *err)
{
    return maplist_open_flags(value, 0, err);
}

struct maplist *maplist_open_flags(const char *value, unsigned options,
                                   struct strbuf *err)
{
    struct strlist items = STRLIST_INIT;
    if (list_split(value, &items, err) != 0) {
        strlist_free(&items);
        return NULL;
    }
    struct maplist *list = xcalloc(1, sizeof *list);
    list->maps = xcalloc(items.count ? items.count : 1, sizeof *list->maps);
    for (size_t i = 0; i < items.count; i++) {
        struct map *map = map_open_flags(items.item[i], options, err);
        if (!map) {
            maplist_close(list);
            strlist_free(&items);
            return NULL;
        }
        list->maps[list->count++] = map;
    }
    strlist_free(&items);
    return list;
}

int maplist_lookup(struct maplist *list, const char *key, struct strbuf *value)
{
    for (size_t i = 0; i < list->count; i++) {
        int result = map_lookup(list->maps[i], key, value);
        if (result != MAP_NOTFOUND)
            return result;
    }
    strbuf_reset(value);
    return MAP_NOTFOUND;
}

size_t maplist_count(const struct maplist *list)
{
    return list->count;
}

struct map *maplist_at(const struct maplist *list, size_t i)
{
    return i < list->count ? list->maps[i] : NULL;
}

void maplist_close(struct maplist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        map_close(list->maps[i]);
    free(list->maps);
    free(list);
}
