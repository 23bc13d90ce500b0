/* proxyallow.c - the lookup service's allow-list from proxy_read_maps
 * (proxyallow.h). */
#include <string.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "proxyallow.h"
#include "strbuf.h"
#include "strlist.h"

/* Add the tables of a proxy_read_maps value: entries written
 * proxy:TYPE:NAME and entries of a type a static program reaches only
 * through the service; with only_bare_service, only the latter, and of
 * the database types (pgsql:, mysql:, sqlite:). */
static void add_entries(struct strlist *out, const char *value, int only_bare_service)
{
    struct strlist items = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    if (list_split(value, &items, &err) != 0)
        msg_warn("proxy_read_maps: %s", err.s);
    for (size_t i = 0; i < items.count; i++) {
        const char *name = items.item[i];
        int proxied = 0;
        while (strncmp(name, "proxy:", 6) == 0) {
            name += 6;
            proxied = 1;
        }
        if (!strchr(name, ':'))
            continue;
        if (only_bare_service ? !proxied && map_is_service_type(name)
                                    && strncmp(name, "unix:", 5) != 0
                              : proxied || map_is_service_type(name))
            strlist_add(out, name);
    }
    strlist_free(&items);
    strbuf_free(&err);
}

void proxy_allowed_tables(struct strlist *out)
{
    add_entries(out, conf_str("proxy_read_maps"), 0);
    /* A main.cf that sets proxy_read_maps to its proxy: tables (seed 003)
     * may still have bare pgsql:, mysql:, sqlite: tables in relay_domains
     * & co: Postfix's programs open those themselves, ours only through
     * the service.  Those of the parameters Postfix's default lists stay
     * allowed (unix: tables must be listed, as before). */
    const struct param_def *def = param_find("proxy_read_maps");
    struct strbuf defaults = STRBUF_INIT, err = STRBUF_INIT;
    if (conf_is_set("proxy_read_maps") && def && def->default_value
        && conf_expand(def->default_value, &defaults, &err) == 0)
        add_entries(out, strbuf_str(&defaults), 1);
    strbuf_free(&defaults);
    strbuf_free(&err);
    strlist_add(out, "unix:hosts.byname");
}

int proxy_table_allowed(const char *table)
{
    while (strncmp(table, "proxy:", 6) == 0)
        table += 6;
    struct strlist allowed = STRLIST_INIT;
    proxy_allowed_tables(&allowed);
    int found = 0;
    for (size_t i = 0; i < allowed.count && !found; i++)
        found = strcmp(allowed.item[i], table) == 0;
    strlist_free(&allowed);
    return found;
}
