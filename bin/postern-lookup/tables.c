/* tables.c - what the lookup service may open and what it has opened:
 * the allow-list from proxy_read_maps, as Postfix's proxymap reads it
 * (only entries written "proxy:TYPE:NAME" count, and, since a static
 * program reaches them only through this service, entries of the types
 * that need it, such as "unix:NAME"), and one open table per name and
 * options, kept until SIGHUP. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "map.h"
#include "strbuf.h"
#include "strlist.h"
#include "xalloc.h"

struct open_table {
    char *name;
    unsigned options;
    struct map *map;
};

static struct strlist approved = STRLIST_INIT;
static struct open_table *tables;
static size_t table_count;

/* The resolver's own table (inet_interfaces names): it tells no more
 * than the name service tells anyone. */
static const char *const always_approved[] = {"unix:hosts.byname"};

void tables_configure(void)
{
    for (size_t i = 0; i < table_count; i++) {
        map_close(tables[i].map);
        free(tables[i].name);
    }
    free(tables);
    tables = NULL;
    table_count = 0;
    strlist_free(&approved);
    struct strlist items = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    if (list_split(conf_str("proxy_read_maps"), &items, &err) != 0)
        msg_warn("proxy_read_maps: %s", err.s);
    for (size_t i = 0; i < items.count; i++) {
        const char *name = items.item[i];
        int proxied = 0;
        while (strncmp(name, "proxy:", 6) == 0) {
            name += 6;
            proxied = 1;
        }
        if (strchr(name, ':') && (proxied || map_is_service_type(name)))
            strlist_add(&approved, name);
    }
    for (size_t i = 0; i < sizeof always_approved / sizeof always_approved[0]; i++)
        strlist_add(&approved, always_approved[i]);
    strlist_free(&items);
    strbuf_free(&err);
}

/* 1 when proxy_read_maps lists the table. */
static int is_approved(const char *name)
{
    for (size_t i = 0; i < approved.count; i++)
        if (strcmp(approved.item[i], name) == 0)
            return 1;
    return 0;
}

/* The open table, opened now if it is not yet; NULL with err set. */
static struct map *open_table(const char *name, unsigned options, struct strbuf *err)
{
    for (size_t i = 0; i < table_count; i++)
        if (tables[i].options == options && strcmp(tables[i].name, name) == 0)
            return tables[i].map;
    struct map *map = map_open_flags(name, options, err);
    if (!map)
        return NULL;
    tables = xreallocarray(tables, table_count + 1, sizeof *tables);
    tables[table_count++] = (struct open_table){xstrdup(name), options, map};
    return map;
}

void tables_answer(const struct lookup_request *req, struct strbuf *out)
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
        return;
    }
    struct strbuf err = STRBUF_INIT, value = STRBUF_INIT;
    struct map *map = open_table(name, req->options, &err);
    if (!map) {
        msg_warn("table %s: %s", log_printable(&printable, name, 200), err.s);
        lookup_reply_format(out, LOOKUP_RETRY, err.s);
    } else {
        switch (map_lookup(map, req->key, &value)) {
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
}
