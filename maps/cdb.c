/* cdb.c - the indexed table types hash, btree and cdb: all three are the
 * file NAME.cdb built by `postern map` (tinycdb).  Open maps the file
 * (cdb_init uses mmap) and reads nothing else, so opening is cheap and
 * lookups touch only the pages they need.  A rebuilt table is a new file
 * renamed over the old one, so a process keeps the table it opened.
 *
 * `postern map` never changes a table in place, but an administrator may
 * (cp over NAME.cdb truncates and rewrites it).  A file that shrinks under
 * a mapping would kill the process with SIGBUS, so every lookup checks the
 * open file first (one fstat): changed in place, it is mapped again; too
 * short or damaged, the lookup answers MAP_RETRY.
 *
 * In a zygote (hugemem_enable), a table is read whole into memory in huge
 * pages instead of mapped from its file: each forked child then reads it
 * without a page fault (hugemem.h).  The file stays open for the change
 * check; changed in place, it is read again (mapped, in a child).
 *
 * Keys are stored without a terminating NUL; tables that Postfix built
 * with one (postmap -N, postalias on some systems) are read too. */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hugemem.h"
#include "log.h"
#include "map_impl.h"
#include "strbuf.h"
#include "xalloc.h"

#define TRY_NO_NUL  0x01    /* keys stored as is */
#define TRY_NUL     0x02    /* keys stored with their NUL */

struct cdb_table {
    struct cdb db;
    char *path;             /* NAME.cdb */
    unsigned try;           /* which key forms to try; narrowed on a hit */
    off_t size;             /* of the file as mapped */
    struct timespec mtime;  /* of the file as mapped */
    int mapped;             /* db holds a mapping or a copy */
    const void *copy;       /* db's memory is this copy (hugemem), not a mapping */
};

/* tinycdb maps the whole file (cdb_init) and reads only through cdb_mem:
 * in a zygote the mapping is traded for a copy in huge pages.  The struct's
 * members are public in cdb.h, if marked private; cdb_free() would unmap a
 * copy, so table_unmap() is the only way a table lets go of its memory. */
static int table_map(struct cdb_table *table, int fd, off_t size)
{
    if (cdb_init(&table->db, fd) != 0)
        return -1;
    table->copy = size > 0 && (size_t)size == table->db.cdb_fsize ? hugemem_copy(fd, (size_t)size) : NULL;
    if (table->copy) {
        /* cdb_init checked the file; the copy is what it mapped */
        (void)munmap((void *)table->db.cdb_mem, table->db.cdb_fsize);
        table->db.cdb_mem = table->copy;
    }
    table->mapped = 1;
    return 0;
}

static void table_unmap(struct cdb_table *table)
{
    int fd = cdb_fileno(&table->db);
    if (!table->mapped)
        return;
    if (table->copy) {
        hugemem_release(table->copy);
        table->copy = NULL;
        memset(&table->db, 0, sizeof table->db);
    } else {
        cdb_free(&table->db);
    }
    table->db.cdb_fd = fd;
    table->mapped = 0;
}

/* Remember what was mapped, to notice changes made in place. */
static void remember_file(struct cdb_table *table, const struct stat *st)
{
    table->size = st->st_size;
    table->mtime = st->st_mtim;
}

/* Map NAME.cdb; warn when the source NAME is newer. */
static int cdb_open_table(struct map *map, const char *name, struct strbuf *err)
{
    struct cdb_table *table = xcalloc(1, sizeof *table);
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s.cdb", name);
    table->path = strbuf_detach(&path);
    int fd = open(table->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st, source;
    if (fd < 0 || fstat(fd, &st) != 0 || table_map(table, fd, st.st_size) != 0) {
        int saved = errno;
        strbuf_printf(err, "open database %s: %s", table->path,
                      saved == EPROTO || saved == 0 ? "not a cdb file" : strerror(saved));
        if (saved == ENOENT && stat(name, &source) == 0)
            strbuf_printf(err, " (build it with \"postern map %s\")", map->spec);
        if (fd >= 0)
            close(fd);
        free(table->path);
        free(table);
        return -1;
    }
    if (stat(name, &source) == 0
        && (source.st_mtim.tv_sec > st.st_mtim.tv_sec
            || (source.st_mtim.tv_sec == st.st_mtim.tv_sec
                && source.st_mtim.tv_nsec > st.st_mtim.tv_nsec)))
        msg_warn("database %s is older than source file %s", table->path, name);
    table->try = TRY_NO_NUL | TRY_NUL;
    remember_file(table, &st);
    map->data = table;
    return 0;
}

/* Is the mapping still that of the file?  Maps it again after a change in
 * place; 0 when lookups may go ahead, -1 (warned) when they may not. */
static int check_file(struct map *map, struct cdb_table *table)
{
    struct stat st;
    int fd = cdb_fileno(&table->db);
    if (fstat(fd, &st) != 0) {
        msg_warn("table %s: fstat %s: %s", map->spec, table->path, strerror(errno));
        return -1;
    }
    if (table->mapped && st.st_size == table->size
        && st.st_mtim.tv_sec == table->mtime.tv_sec
        && st.st_mtim.tv_nsec == table->mtime.tv_nsec)
        return 0;
    if (table->mapped) {
        msg_warn("table %s: %s was changed in place (use postern map, which replaces it whole)",
                 map->spec, table->path);
        table_unmap(table);
    }
    if (table_map(table, fd, st.st_size) != 0) {
        table->db.cdb_fd = fd;
        msg_warn("table %s: %s cannot be read now", map->spec, table->path);
        return -1;
    }
    table->try = TRY_NO_NUL | TRY_NUL;
    remember_file(table, &st);
    return 0;
}

/* Copy the value found, without a trailing NUL. */
static int copy_value(struct cdb_table *table, struct strbuf *value)
{
    unsigned len = cdb_datalen(&table->db);
    const char *data = cdb_get(&table->db, len, cdb_datapos(&table->db));
    if (!data)
        return MAP_RETRY;
    if (len && data[len - 1] == '\0')
        len--;
    strbuf_append(value, data, len);
    return MAP_FOUND;
}

/* Find the key in the forms this file may hold it in. */
static int cdb_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct cdb_table *table = map->data;
    if (check_file(map, table) != 0)
        return MAP_RETRY;
    size_t len = strlen(key);
    if (len >= 0xffffffffu)
        return MAP_NOTFOUND;
    static const unsigned forms[] = {TRY_NO_NUL, TRY_NUL};
    for (size_t i = 0; i < 2; i++) {
        if (!(table->try & forms[i]))
            continue;
        int found = cdb_find(&table->db, key, (unsigned)(len + (forms[i] == TRY_NUL)));
        if (found < 0) {
            struct strbuf shown = STRBUF_INIT;     /* keys come from mail */
            msg_warn("table %s: lookup of \"%s\": %s is damaged", map->spec,
                     log_printable(&shown, key, 200), table->path);
            strbuf_free(&shown);
            return MAP_RETRY;
        }
        if (found > 0) {
            table->try = forms[i];
            int result = copy_value(table, value);
            if (result == MAP_RETRY)
                msg_warn("table %s: %s is damaged", map->spec, table->path);
            return result;
        }
    }
    return MAP_NOTFOUND;
}

/* Every record in the order it was added. */
static int cdb_iterate(struct map *map,
                       int (*fn)(const char *key, const char *value, void *ctx),
                       void *ctx)
{
    struct cdb_table *table = map->data;
    if (check_file(map, table) != 0)
        return -1;
    struct strbuf key = STRBUF_INIT, value = STRBUF_INIT;
    unsigned pos;
    int more, result = 0;
    cdb_seqinit(&pos, &table->db);
    while ((more = cdb_seqnext(&pos, &table->db)) > 0) {
        unsigned klen = cdb_keylen(&table->db);
        const char *k = cdb_get(&table->db, klen, cdb_keypos(&table->db));
        if (!k) {
            more = -1;
            break;
        }
        if (klen && k[klen - 1] == '\0')
            klen--;
        strbuf_reset(&key);
        strbuf_append(&key, k, klen);
        strbuf_reset(&value);
        if (copy_value(table, &value) != MAP_FOUND) {
            more = -1;
            break;
        }
        if (fn(strbuf_str(&key), strbuf_str(&value), ctx))
            break;
    }
    if (more < 0) {
        msg_warn("table %s: %s is damaged", map->spec, table->path);
        result = -1;
    }
    strbuf_free(&key);
    strbuf_free(&value);
    return result;
}

/* Unmap and close. */
static void cdb_close_table(struct map *map)
{
    struct cdb_table *table = map->data;
    int fd = cdb_fileno(&table->db);
    table_unmap(table);
    close(fd);
    free(table->path);
    free(table);
}

const struct map_type map_type_cdb = {
    .name = "cdb",
    .flags = MAP_CAN_ITERATE | MAP_FOLD_KEYS,
    .open = cdb_open_table,
    .lookup = cdb_lookup,
    .iterate = cdb_iterate,
    .close = cdb_close_table,
    .file_suffix = ".cdb",
};
