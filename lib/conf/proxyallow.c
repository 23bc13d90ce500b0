/* proxyallow.c - the lookup service's allow-list from proxy_read_maps
 * (proxyallow.h). */
#include <string.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "proxyallow.h"
#include "strbuf.h"
#include "strlist.h"

void proxy_allowed_tables(struct strlist *out)
{
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
            strlist_add(out, name);
    }
    strlist_add(out, "unix:hosts.byname");
    strlist_free(&items);
    strbuf_free(&err);
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
