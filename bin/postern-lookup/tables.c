/* tables.c - what the lookup service may open and what it has opened:
 * the allow-list from proxy_read_maps (lib/conf/proxyallow.c: as
 * Postfix's proxymap reads it, only entries written "proxy:TYPE:NAME"
 * count, and, since a static program reaches them only through this
 * service, entries of the types that need it, such as "unix:NAME"), and
 * one open table per name and
 * options, kept until SIGHUP.  A file table is opened again when its file
 * changed (`postern map` rebuilt it), checked at most once a second. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "map.h"
#include "proxyallow.h"
#include "strbuf.h"
#include "strlist.h"
#include "xalloc.h"

struct open_table {
    char *name;
    unsigned options;
    struct map *map;
    time_t checked;                 /* when its file was last looked at */
    struct slow_table *slow;        /* MAP_SLOW: its thread (slow.c), once used */
};

static struct strlist approved = STRLIST_INIT;
static struct open_table *tables;
static size_t table_count;

/* Close a table: one with a thread is handed over to it (it answers what
 * it has queued first, and closes the table itself). */
static void close_table(struct open_table *t)
{
    if (t->slow)
        slow_table_retire(t->slow);
    else
        map_close(t->map);
    t->slow = NULL;
    t->map = NULL;
}

void tables_configure(void)
{
    for (size_t i = 0; i < table_count; i++) {
        close_table(&tables[i]);
        free(tables[i].name);
    }
    free(tables);
    tables = NULL;
    table_count = 0;
    strlist_free(&approved);
    proxy_allowed_tables(&approved);
}

/* 1 when proxy_read_maps lists the table. */
static int is_approved(const char *name)
{
    for (size_t i = 0; i < approved.count; i++)
        if (strcmp(approved.item[i], name) == 0)
            return 1;
    return 0;
}

/* Whether the table's file is not the one it was opened from
 * (map_changed's answer), looked at at most once a second. */
static int file_changed(struct open_table *t)
{
    time_t now = time(NULL);
    if (now == t->checked)
        return 0;
    t->checked = now;
    return map_changed(t->map);
}

/* The open table, opened now if it is not yet or its file changed; NULL
 * with err set. */
static struct open_table *open_table(const char *name, unsigned options, struct strbuf *err)
{
    struct open_table *t = NULL;
    for (size_t i = 0; i < table_count && !t; i++)
        if (tables[i].options == options && strcmp(tables[i].name, name) == 0)
            t = &tables[i];
    int changed = t ? file_changed(t) : 0;
    if (t && !changed)
        return t;
    struct map *map = map_open_flags(name, options, err);
    if (!map && t) {
        /* as the other programs: what was read keeps answering, the new
         * file is tried again later (map_changed), said once per change */
        if (changed == MAP_CHANGED)
            msg_warn("table %s has changed but cannot be opened (%s): still using what was read before",
                     name, strbuf_str(err));
        strbuf_reset(err);
        return t;
    }
    if (!map)
        return NULL;
    if (t) {
        msg_info("table %s has changed: opened again", name);
        close_table(t);
    } else {
        tables = xreallocarray(tables, table_count + 1, sizeof *tables);
        t = &tables[table_count++];
        t->name = xstrdup(name);
        t->options = options;
        t->slow = NULL;
    }
    t->map = map;
    t->checked = time(NULL);
    return t;
}

struct slowreq *tables_answer(const struct lookup_request *req, struct strbuf *out,
                              slow_done *done, void *arg, int direct_fd)
{
    const char *name = req->table;
    while (strncmp(name, "proxy:", 6) == 0)
        name += 6;
    struct strbuf printable = STRBUF_INIT;
    if (!is_approved(name)) {
        /* Postfix's proxymap says the same */
        const char *shown = log_printable(&printable, name, 200);
        msg_warn("request for unapproved table: \"%s\"", shown);
        msg_warn("to approve this table for read-only access, list proxy:%s in "
                 "main.cf:proxy_read_maps", shown);
        struct strbuf reason = STRBUF_INIT;
        strbuf_printf(&reason, "proxymap service is not configured for table \"%s\"", shown);
        lookup_reply_format(out, LOOKUP_DENIED, reason.s);
        strbuf_free(&reason);
        strbuf_free(&printable);
        return NULL;
    }
    struct strbuf err = STRBUF_INIT, value = STRBUF_INIT;
    struct slowreq *pending = NULL;
    struct open_table *t = open_table(name, req->options, &err);
    if (!t) {
        msg_warn("table %s: %s", log_printable(&printable, name, 200), err.s);
        lookup_reply_format(out, LOOKUP_RETRY, err.s);
    } else if (map_flags(t->map) & MAP_SLOW) {
        /* a database: in the table's thread, while the others are served */
        if (!t->slow)
            t->slow = slow_table_start(t->map);
        pending = slow_start(t->slow, req->key, done, arg, direct_fd);
    } else {
        switch (map_lookup(t->map, req->key, &value)) {
        case MAP_FOUND:
            lookup_reply_format(out, LOOKUP_FOUND, strbuf_str(&value));
            break;
        case MAP_NOTFOUND:
            lookup_reply_format(out, LOOKUP_NOTFOUND, "");
            break;
        default:
            lookup_reply_format(out, LOOKUP_RETRY, "the table cannot answer now");
            break;
        }
    }
    strbuf_free(&err);
    strbuf_free(&value);
    strbuf_free(&printable);
    return pending;
}
