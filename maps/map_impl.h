/* map_impl.h - what a lookup-table type implements (private to maps/).
 *
 * A type is a struct map_type in its own maps/TYPE.c, listed once in the
 * table of maps/map.c.  map.c does what every type shares: parsing
 * "type:name", the "proxy:" prefix, folding keys of fixed-key tables to
 * lower case, and keeping the spec for log lines.
 */
#ifndef POSTERN_MAP_IMPL_H
#define POSTERN_MAP_IMPL_H

#include <sys/stat.h>

#include "map.h"

struct strbuf;

#define MAP_FOLD_KEYS   0x100   /* map.c lowercases keys before lookup */

struct map {
    const struct map_type *type;
    char *spec;             /* "type:name" as given (without proxy:) */
    const char *name;       /* the part after "type:", inside spec; for
                               the proxy type the whole spec */
    unsigned flags;         /* MAP_PATTERN, MAP_CAN_ITERATE, MAP_FOLD_KEYS */
    unsigned options;       /* MAP_OPEN_* as the caller gave them */
    void *data;             /* the type's own state */
    char *file;             /* the file it was read from (file types), or NULL */
    struct stat file_seen;  /* that file just before it was read */
    /* a change map_changed() reported and the caller could not open
     * (the file as it was then, and when to say so again) */
    int change_reported;
    struct stat file_reported;
    double retry_at;        /* monotonic seconds */
};

struct map_type {
    const char *name;
    unsigned flags;
    /* Open the table called `name`; set map->data.  0, or -1 with err set. */
    int (*open)(struct map *map, const char *name, struct strbuf *err);
    /* MAP_FOUND (value set), MAP_NOTFOUND or MAP_RETRY. */
    int (*lookup)(struct map *map, const char *key, struct strbuf *value);
    /* Optional: n lookups at once, every map of this type (proxy: one
     * round trip to the lookup service); results as lookup's. */
    void (*lookup_several)(struct map *const *maps, const char *const *keys, size_t n,
                           struct strbuf *values, int *results);
    /* Every key and value, or NULL when the type cannot list. */
    int (*iterate)(struct map *map,
                   int (*fn)(const char *key, const char *value, void *ctx),
                   void *ctx);
    void (*close)(struct map *map);
    /* File types: what follows the name to make the file it reads ("" or
     * ".cdb"), for map_changed(); NULL for the other types. */
    const char *file_suffix;
};

/* lookup, iterate and close of the types whose map->data is a strtable
 * filled by their open() (texthash, inline); maps/memtable.c. */
int memtable_lookup(struct map *map, const char *key, struct strbuf *value);
int memtable_iterate(struct map *map,
                     int (*fn)(const char *key, const char *value, void *ctx),
                     void *ctx);
void memtable_close(struct map *map);

extern const struct map_type map_type_texthash;
extern const struct map_type map_type_cdb;      /* hash, btree and cdb */
extern const struct map_type map_type_pcre;
extern const struct map_type map_type_regexp;
extern const struct map_type map_type_cidr;
extern const struct map_type map_type_static;
extern const struct map_type map_type_inline;
extern const struct map_type map_type_unix;
extern const struct map_type map_type_fail;
extern const struct map_type map_type_pgsql;     /* maps/sql.c shares their work */
extern const struct map_type map_type_mysql;
extern const struct map_type map_type_sqlite;
extern const struct map_type map_type_ldap;     /* maps/ldap.c, also through maps/sql.c */
extern const struct map_type map_type_socketmap;
/* A socketmap reply at data[0..len): MAP_FOUND (value set), MAP_NOTFOUND,
 * MAP_RETRY (value: the server's words), SOCKETMAP_MORE when more bytes
 * are needed, SOCKETMAP_MALFORMED when it is no netstring; *used: the
 * bytes it took (maps/socketmap.c). */
#define SOCKETMAP_MORE          (-10)
#define SOCKETMAP_MALFORMED     (-11)
int socketmap_reply(const char *data, size_t len, size_t *used, struct strbuf *value);
extern const struct map_type map_type_proxy;    /* the lookup service's client */

/* The in-process implementations of service types (unix, SQL) this program
 * may use; NULL-ended (map_register_dynamic_types()). */
void map_set_dynamic_types(const struct map_type *const *types);

#endif
