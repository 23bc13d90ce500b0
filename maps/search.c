/* search.c - Postfix's search orders for addresses, domains and client IP
 * addresses (see map.h).
 *
 * A search tries a sequence of keys, most specific first; each key is
 * tried in every table of the list before the next key.  Only the first
 * key (the whole address, domain or IP address) is shown to pattern tables
 * (pcre, regexp, cidr): the partial keys are for fixed-key tables, as in
 * Postfix.  A table that answers MAP_RETRY ends the search at once, so a
 * broken table never lets a less specific key answer in its place.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

#define KEY_FULL    0           /* every table */
#define KEY_PARTIAL 1           /* fixed-key tables only */

/* Look one key up in the tables of the list that take it. */
static int lookup_key(struct maplist *maps, const char *key, int partial,
                      struct strbuf *value)
{
    for (size_t i = 0; i < maplist_count(maps); i++) {
        struct map *map = maplist_at(maps, i);
        if (partial && (map_flags(map) & MAP_PATTERN))
            continue;
        int result = map_lookup(map, key, value);
        if (result != MAP_NOTFOUND)
            return result;
    }
    strbuf_reset(value);
    return MAP_NOTFOUND;
}

/* Where the extension of a localpart starts (at its delimiter), or 0 when
 * the localpart is not split: Postfix never splits postmaster,
 * mailer-daemon, double-bounce, nor (when '-' is a delimiter) owner-* and
 * *-request, nor at a leading delimiter. */
static size_t extension_offset(const char *local, size_t local_len,
                               const char *delimiters)
{
    static const char *const reserved[] = {"postmaster", "mailer-daemon",
                                           "double-bounce"};
    if (!delimiters || !*delimiters)
        return 0;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == local_len
            && strncasecmp(local, reserved[i], local_len) == 0)
            return 0;
    if (strchr(delimiters, '-')) {
        if (local_len >= 6 && strncasecmp(local, "owner-", 6) == 0)
            return 0;
        if (local_len > 8 && strncasecmp(local + local_len - 8, "-request", 8) == 0)
            return 0;
    }
    size_t n = 0;
    while (n < local_len && !strchr(delimiters, local[n]))
        n++;
    return n < local_len ? n : 0;
}

/* The parts of an address that the searches build keys from. */
struct address_parts {
    const char *at;             /* the last '@', or NULL */
    size_t local_len;           /* bytes before it (all of it without '@') */
    size_t ext;                 /* offset of the extension delimiter; 0: none */
};

/* Split an address at its last '@' and its extension delimiter. */
static void split_address(const char *address, const char *delimiters,
                          struct address_parts *parts)
{
    parts->at = strrchr(address, '@');
    parts->local_len = parts->at ? (size_t)(parts->at - address) : strlen(address);
    parts->ext = extension_offset(address, parts->local_len, delimiters);
}

/* Try one key built from the first `len` bytes of address and a suffix. */
static int lookup_built(struct maplist *maps, struct strbuf *key,
                        const char *address, size_t len, const char *suffix,
                        struct strbuf *value)
{
    strbuf_reset(key);
    strbuf_append(key, address, len);
    strbuf_puts(key, suffix);
    return lookup_key(maps, key->s, KEY_PARTIAL, value);
}

int map_search_address(struct maplist *maps, const char *address,
                       const char *delimiters, int local_domain,
                       struct strbuf *value, enum addr_key_form *form)
{
    struct address_parts parts;
    struct strbuf key = STRBUF_INIT;
    enum addr_key_form tried = ADDR_KEY_FULL;
    split_address(address, delimiters, &parts);
    int result = lookup_key(maps, address, KEY_FULL, value);
    if (result == MAP_NOTFOUND && parts.ext) {
        /* user@domain, or user for an address without a domain */
        tried = parts.at ? ADDR_KEY_NOEXT : ADDR_KEY_LOCAL;
        result = lookup_built(maps, &key, address, parts.ext,
                              parts.at ? parts.at : "", value);
    }
    if (result == MAP_NOTFOUND && parts.at && local_domain && parts.local_len) {
        tried = parts.ext ? ADDR_KEY_LOCAL_EXT : ADDR_KEY_LOCAL;
        result = lookup_built(maps, &key, address, parts.local_len, "", value);
        if (result == MAP_NOTFOUND && parts.ext) {
            tried = ADDR_KEY_LOCAL;
            result = lookup_built(maps, &key, address, parts.ext, "", value);
        }
    }
    if (result == MAP_NOTFOUND && parts.at && parts.at[1] && parts.local_len) {
        tried = ADDR_KEY_DOMAIN;
        result = lookup_key(maps, parts.at, KEY_PARTIAL, value);
    }
    strbuf_free(&key);
    if (form && result == MAP_FOUND)
        *form = tried;
    return result;
}

/* The domain, then its parents ("example.com" or ".example.com" keys);
 * `partial` says whether the domain itself is a partial key already. */
static int search_domain(struct maplist *maps, const char *domain,
                         int parent_matches, int partial, struct strbuf *value)
{
    const char *name = domain;
    while (*name) {
        int result = lookup_key(maps, name, partial, value);
        if (result != MAP_NOTFOUND)
            return result;
        const char *next = strchr(name + 1, '.');
        if (!next || next[1] == '\0')
            break;
        name = parent_matches ? next + 1 : next;
        partial = KEY_PARTIAL;
    }
    strbuf_reset(value);
    return MAP_NOTFOUND;
}

int map_search_domain(struct maplist *maps, const char *domain,
                      int parent_matches, struct strbuf *value)
{
    return search_domain(maps, domain, parent_matches, KEY_FULL, value);
}

int map_search_domain_fixed(struct maplist *maps, const char *domain,
                            int parent_matches, struct strbuf *value)
{
    return search_domain(maps, domain, parent_matches, KEY_PARTIAL, value);
}

int map_search_mail_access(struct maplist *maps, const char *address,
                           const char *delimiters, int parent_matches,
                           struct strbuf *value)
{
    struct address_parts parts;
    struct strbuf key = STRBUF_INIT;
    split_address(address, delimiters, &parts);
    int result = lookup_key(maps, address, KEY_FULL, value);
    if (!parts.at) {
        strbuf_free(&key);
        return result;
    }
    if (result == MAP_NOTFOUND && parts.ext)
        result = lookup_built(maps, &key, address, parts.ext, parts.at, value);
    if (result == MAP_NOTFOUND && parts.at[1])
        result = search_domain(maps, parts.at + 1, parent_matches, KEY_PARTIAL,
                               value);
    if (result == MAP_NOTFOUND && parts.local_len)
        result = lookup_built(maps, &key, address, parts.local_len, "@", value);
    if (result == MAP_NOTFOUND && parts.ext)
        result = lookup_built(maps, &key, address, parts.ext, "@", value);
    strbuf_free(&key);
    return result;
}

int map_search_client_ip(struct maplist *maps, const char *ip,
                         struct strbuf *value)
{
    unsigned char bytes[16];
    char canonical[INET6_ADDRSTRLEN];
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, ip, bytes) != 1)
        return lookup_key(maps, ip, KEY_FULL, value);  /* not an address: no prefixes */
    /* IPv6 prefixes are cut from the compressed lower-case form */
    if (family == AF_INET6 && inet_ntop(AF_INET6, bytes, canonical, sizeof canonical))
        ip = canonical;
    char *key = xstrdup(ip);
    int partial = KEY_FULL, result;
    for (;;) {
        result = lookup_key(maps, key, partial, value);
        if (result != MAP_NOTFOUND)
            break;
        char *cut = strrchr(key, family == AF_INET6 ? ':' : '.');
        if (!cut || cut == key)
            break;
        *cut = '\0';
        partial = KEY_PARTIAL;
    }
    free(key);
    return result;
}
