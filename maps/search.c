/* search.c - Postfix's search orders for addresses, domains and client IP
 * addresses (see map.h): not written yet, every search finds nothing. */
#include "map.h"
#include "strbuf.h"

int map_search_address(struct maplist *maps, const char *address,
                       const char *delimiters, int local_domain,
                       struct strbuf *value, enum addr_key_form *form)
{
    (void)delimiters; (void)local_domain; (void)form;
    return maplist_lookup(maps, address, value);
}

int map_search_domain(struct maplist *maps, const char *domain,
                      int parent_matches, struct strbuf *value)
{
    (void)parent_matches;
    return maplist_lookup(maps, domain, value);
}

int map_search_client_ip(struct maplist *maps, const char *ip,
                         struct strbuf *value)
{
    return maplist_lookup(maps, ip, value);
}
