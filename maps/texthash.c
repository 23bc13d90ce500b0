/* texthash.c - the texthash table type: a postmap(1) source file read into
 * memory when the table is opened (no indexed file).  A line without a
 * value makes the open fail with file:line; a duplicate key is warned about
 * and the first one wins, as in Postfix. */
#include <stdlib.h>

#include "log.h"
#include "map_impl.h"
#include "maptext.h"
#include "strbuf.h"
#include "strtable.h"
#include "textlines.h"

struct load_ctx {
    struct strtable *table;
    const char *file;
};

/* Keep the first value of every key. */
static void add_entry(const char *key, const char *value, int lineno, void *ctx)
{
    struct load_ctx *load = ctx;
    if (!strtable_put(load->table, key, value, 0))
        msg_warn("%s, line %d: duplicate entry: \"%s\"", load->file, lineno, key);
}

/* Read and parse the whole file. */
static int texthash_open(struct map *map, const char *name, struct strbuf *err)
{
    struct strbuf text = STRBUF_INIT, problems = STRBUF_INIT;
    if (textlines_read_file(name, &text, err) != 0) {
        strbuf_free(&text);
        return -1;
    }
    struct load_ctx load = {strtable_new(), name};
    unsigned flags = (map->flags & MAP_FOLD_KEYS) ? 0 : MAPTEXT_KEEP_CASE;
    int bad = maptext_parse(name, text.s, text.len, flags, add_entry, &load, &problems);
    strbuf_free(&text);
    if (bad) {
        strbuf_trim_end(&problems);
        strbuf_append(err, problems.s, problems.len);
        strbuf_free(&problems);
        strtable_free(load.table);
        return -1;
    }
    strbuf_free(&problems);
    map->data = load.table;
    return 0;
}

const struct map_type map_type_texthash = {
    .name = "texthash",
    .flags = MAP_CAN_ITERATE | MAP_FOLD_KEYS,
    .open = texthash_open,
    .lookup = memtable_lookup,
    .iterate = memtable_iterate,
    .close = memtable_close,
    .file_suffix = "",
};
