/* resolve.c - recipient address → address class, transport and nexthop,
 * as Postfix's trivial-rewrite resolves them (see resolve.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "domainlist.h"
#include "log.h"
#include "map.h"
#include "monotonic.h"
#include "resolve.h"
#include "strbuf.h"
#include "xalloc.h"

struct own_address {
    int family;
    unsigned char bytes[16];
};

struct resolver {
    struct domainlist *mydestination;
    struct domainlist *virtual_alias_domains;
    struct domainlist *virtual_mailbox_domains;
    struct domainlist *relay_domains;
    struct maplist *transport_maps;
    struct maplist *relocated_maps;
    struct maplist *sender_relayhost_maps;     /* sender_dependent_relayhost_maps */
    struct maplist *sender_transport_maps;     /* sender_dependent_default_transport_maps */
    char *empty_relayhost_key, *empty_transport_key;   /* their keys for <> */
    char *myorigin;
    int transport_parent_matches;
    struct strlist defer_transports;
    char *local_transport, *virtual_transport, *relay_transport, *default_transport;
    char *relayhost, *myhostname, *recipient_delimiter;
    int swap_bangpath, allow_percent_hack, resolve_dequoted_address;
    struct own_address *own;
    size_t own_count;
    int own_all;            /* inet_interfaces = all: ask the kernel each time */
    unsigned long generation;   /* which resolver the last answer came from */
};

const char *address_class_name(enum address_class address_class)
{
    switch (address_class) {
    case ADDR_CLASS_LOCAL: return "local";
    case ADDR_CLASS_VIRTUAL_ALIAS: return "virtual alias";
    case ADDR_CLASS_VIRTUAL_MAILBOX: return "virtual mailbox";
    case ADDR_CLASS_RELAY: return "relay";
    case ADDR_CLASS_DEFAULT: return "default";
    }
    return "default";
}

/* Add one numeric address to the resolver's own addresses. */
static void own_add(struct resolver *r, int family, const void *bytes)
{
    r->own = xreallocarray(r->own, r->own_count + 1, sizeof *r->own);
    struct own_address *a = &r->own[r->own_count++];
    memset(a, 0, sizeof *a);
    a->family = family;
    memcpy(a->bytes, bytes, family == AF_INET ? 4 : 16);
}

/* Add the addresses of one inet_interfaces/proxy_interfaces item: an IP
 * address is read as it is; a host name is asked of the name service
 * through the table unix:hosts.byname, which a static program reaches
 * through the lookup service (it must not call getaddrinfo itself). */
static void own_add_item(struct resolver *r, const char *item)
{
    if (strcasecmp(item, "all") == 0) {
        r->own_all = 1;
        return;
    }
    if (strcasecmp(item, "loopback-only") == 0) {
        struct in_addr v4;
        inet_pton(AF_INET, "127.0.0.1", &v4);
        own_add(r, AF_INET, &v4);
        own_add(r, AF_INET6, &in6addr_loopback);
        return;
    }
    char *host = xstrdup(item);
    size_t n = strlen(host);
    if (host[0] == '[' && n > 1 && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    unsigned char bytes[16];
    if (inet_pton(AF_INET, host, bytes) == 1) {
        own_add(r, AF_INET, bytes);
    } else if (inet_pton(AF_INET6, host, bytes) == 1) {
        own_add(r, AF_INET6, bytes);
    } else {
        struct strbuf err = STRBUF_INIT, addresses = STRBUF_INIT;
        struct map *hosts = map_open("unix:hosts.byname", &err);
        int found = hosts ? map_lookup(hosts, host, &addresses) : MAP_RETRY;
        if (found == MAP_FOUND) {
            for (char *a = strtok(addresses.s, " "); a; a = strtok(NULL, " "))
                if (inet_pton(AF_INET, a, bytes) == 1)
                    own_add(r, AF_INET, bytes);
                else if (inet_pton(AF_INET6, a, bytes) == 1)
                    own_add(r, AF_INET6, bytes);
        } else {
            msg_warn("inet_interfaces or proxy_interfaces: cannot find the addresses of \"%s\"%s%s%s",
                     host, found == MAP_NOTFOUND ? ": no such host" : "",
                     err.len ? ": " : "", err.len ? err.s : "");
        }
        map_close(hosts);
        strbuf_free(&err);
        strbuf_free(&addresses);
    }
    free(host);
}

/* Open one domain list parameter; 0 or -1 with err set. */
static int open_list(const char *param, struct domainlist **out, struct strbuf *err)
{
    *out = domainlist_from_param(param, err);
    return *out ? 0 : -1;
}

/* A routing parameter: the address_verify_ override of it for probes
 * (address_verify_transport_maps, ..._relayhost, ...), whose defaults
 * name the parameter itself. */
static const char *verify_routing_param(int probes, const char *name)
{
    if (!probes)
        return conf_str(name);
    char full[96];
    snprintf(full, sizeof full, "address_verify_%s", name);
    return conf_str(full);
}

struct resolver *resolver_open(struct strbuf *err)
{
    return resolver_open_routing(0, err);
}

struct resolver *resolver_open_routing(int probes, struct strbuf *err)
{
    struct resolver *r = xcalloc(1, sizeof *r);
    static unsigned long generations;
    r->generation = ++generations;
    if (open_list("mydestination", &r->mydestination, err) != 0
        || open_list("virtual_alias_domains", &r->virtual_alias_domains, err) != 0
        || open_list("virtual_mailbox_domains", &r->virtual_mailbox_domains, err) != 0
        || open_list("relay_domains", &r->relay_domains, err) != 0) {
        resolver_close(r);
        return NULL;
    }
    struct strbuf map_err = STRBUF_INIT;
    r->transport_maps = maplist_open(verify_routing_param(probes, "transport_maps"), &map_err);
    if (!r->transport_maps) {
        strbuf_printf(err, "transport_maps: %s", strbuf_str(&map_err));
        strbuf_free(&map_err);
        resolver_close(r);
        return NULL;
    }
    /* relocated_maps defaults to "": unset, smtpd pays nothing for it */
    r->relocated_maps = conf_is_set("relocated_maps")
        ? maplist_open(conf_str("relocated_maps"), &map_err) : maplist_open("", &map_err);
    if (!r->relocated_maps) {
        strbuf_printf(err, "relocated_maps: %s", strbuf_str(&map_err));
        strbuf_free(&map_err);
        resolver_close(r);
        return NULL;
    }
    /* the sender-dependent tables: only when set */
    static const struct {
        const char *param;
        size_t offset;
    } sender_maps[] = {
        {"sender_dependent_relayhost_maps", offsetof(struct resolver, sender_relayhost_maps)},
        {"sender_dependent_default_transport_maps", offsetof(struct resolver, sender_transport_maps)},
    };
    for (size_t i = 0; i < sizeof sender_maps / sizeof sender_maps[0]; i++) {
        struct maplist **slot = (struct maplist **)((char *)r + sender_maps[i].offset);
        *slot = maplist_open(verify_routing_param(probes, sender_maps[i].param), &map_err);
        if (!*slot) {
            strbuf_printf(err, "%s: %s", sender_maps[i].param, strbuf_str(&map_err));
            strbuf_free(&map_err);
            resolver_close(r);
            return NULL;
        }
    }
    r->empty_relayhost_key = xstrdup(conf_str("empty_address_relayhost_maps_lookup_key"));
    r->empty_transport_key = xstrdup(conf_str("empty_address_default_transport_maps_lookup_key"));
    strbuf_free(&map_err);
    r->myorigin = xstrdup(maplist_count(r->relocated_maps) ? conf_str("myorigin") : "");
    r->transport_parent_matches = domain_parent_matches("transport_maps");
    conf_list("defer_transports", &r->defer_transports);
    r->local_transport = xstrdup(verify_routing_param(probes, "local_transport"));
    r->virtual_transport = xstrdup(verify_routing_param(probes, "virtual_transport"));
    r->relay_transport = xstrdup(verify_routing_param(probes, "relay_transport"));
    r->default_transport = xstrdup(verify_routing_param(probes, "default_transport"));
    r->relayhost = xstrdup(verify_routing_param(probes, "relayhost"));
    r->myhostname = xstrdup(conf_str("myhostname"));
    r->recipient_delimiter = xstrdup(conf_str("recipient_delimiter"));
    /* the routing parameters are read when an address first needs them */
    r->swap_bangpath = r->allow_percent_hack = r->resolve_dequoted_address = -1;
    struct strlist items = STRLIST_INIT;
    conf_list("inet_interfaces", &items);
    conf_list("proxy_interfaces", &items);
    for (size_t i = 0; i < items.count; i++)
        own_add_item(r, items.item[i]);
    strlist_free(&items);
    return r;
}

int resolver_changed(const struct resolver *r)
{
    return r && (domainlist_changed(r->mydestination) || domainlist_changed(r->virtual_alias_domains)
                 || domainlist_changed(r->virtual_mailbox_domains) || domainlist_changed(r->relay_domains)
                 || maplist_changed(r->transport_maps) || maplist_changed(r->relocated_maps)
                 || maplist_changed(r->sender_relayhost_maps) || maplist_changed(r->sender_transport_maps));
}

void resolver_close(struct resolver *r)
{
    if (!r)
        return;
    domainlist_free(r->mydestination);
    domainlist_free(r->virtual_alias_domains);
    domainlist_free(r->virtual_mailbox_domains);
    domainlist_free(r->relay_domains);
    maplist_close(r->transport_maps);
    if (r->relocated_maps)
        maplist_close(r->relocated_maps);
    if (r->sender_relayhost_maps)
        maplist_close(r->sender_relayhost_maps);
    if (r->sender_transport_maps)
        maplist_close(r->sender_transport_maps);
    free(r->empty_relayhost_key);
    free(r->empty_transport_key);
    free(r->myorigin);
    strlist_free(&r->defer_transports);
    free(r->local_transport);
    free(r->virtual_transport);
    free(r->relay_transport);
    free(r->default_transport);
    free(r->relayhost);
    free(r->myhostname);
    free(r->recipient_delimiter);
    free(r->own);
    free(r);
}

/* Is "[ip]" (or "[ipv6:...]") an address of this machine? */
static int is_own_literal(const struct resolver *r, const char *domain)
{
    size_t n = strlen(domain);
    if (n < 3 || domain[0] != '[' || domain[n - 1] != ']')
        return 0;
    char *text = xstrndup(domain + 1, n - 2);
    const char *addr = text;
    if (strncasecmp(addr, "ipv6:", 5) == 0)
        addr += 5;
    unsigned char bytes[16];
    int family = 0;
    if (inet_pton(AF_INET, addr, bytes) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, addr, bytes) == 1)
        family = AF_INET6;
    free(text);
    if (!family)
        return 0;
    return resolver_own_address(r, family, bytes);
}

int resolver_own_address(const struct resolver *r, int family, const void *bytes)
{
    size_t len = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < r->own_count; i++)
        if (r->own[i].family == family && memcmp(r->own[i].bytes, bytes, len) == 0)
            return 1;
    if (!r->own_all)
        return 0;
    struct ifaddrs *ifs = NULL;
    int found = 0;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != family)
                continue;
            const void *p = family == AF_INET
                ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
            found = memcmp(p, bytes, len) == 0;
        }
        freeifaddrs(ifs);
    }
    return found;
}

/* Match one domain list; on a table failure say which list in reason. */
static int list_match(struct domainlist *list, const char *param,
                      const char *domain, struct strbuf *reason)
{
    int m = domainlist_match(list, domain);
    if (m == MAP_RETRY && reason)
        strbuf_printf(reason, "4.3.0 %s lookup failure for domain %s", param, domain);
    return m;
}

int resolve_domain_class(struct resolver *r, const char *domain,
                         enum address_class *out, struct strbuf *reason)
{
    if (!domain || !*domain || is_own_literal(r, domain)) {
        *out = ADDR_CLASS_LOCAL;
        return RESOLVE_OK;
    }
    static const struct {
        size_t offset;
        const char *param;
        enum address_class address_class;
    } order[] = {
        {offsetof(struct resolver, mydestination), "mydestination", ADDR_CLASS_LOCAL},
        {offsetof(struct resolver, virtual_alias_domains), "virtual_alias_domains", ADDR_CLASS_VIRTUAL_ALIAS},
        {offsetof(struct resolver, virtual_mailbox_domains), "virtual_mailbox_domains", ADDR_CLASS_VIRTUAL_MAILBOX},
        {offsetof(struct resolver, relay_domains), "relay_domains", ADDR_CLASS_RELAY},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        struct domainlist *list = *(struct domainlist **)((char *)r + order[i].offset);
        int m = list_match(list, order[i].param, domain, reason);
        if (m == MAP_RETRY)
            return RESOLVE_RETRY;
        if (m) {
            *out = order[i].address_class;
            return RESOLVE_OK;
        }
    }
    *out = ADDR_CLASS_DEFAULT;
    return RESOLVE_OK;
}

/* Split text at the separator `at` points to (NULL: there is none, and
 * all of text is left). */
static void split_at(const char *text, const char *at, struct strbuf *left,
                     struct strbuf *right)
{
    strbuf_reset(left);
    strbuf_reset(right);
    if (!at) {
        strbuf_puts(left, text);
        return;
    }
    strbuf_append(left, text, (size_t)(at - text));
    strbuf_puts(right, at + 1);
}

/* Split "transport:nexthop" into its parts (either may be empty). */
static void split_transport(const char *spec, struct strbuf *transport,
                            struct strbuf *nexthop)
{
    split_at(spec, strchr(spec, ':'), transport, nexthop);
}

/* Look a partial key up in the fixed-key tables only (pattern tables see
 * the whole address only, as Postfix's transport lookups). */
static int lookup_fixed(struct maplist *list, const char *key, struct strbuf *value)
{
    for (size_t i = 0; i < maplist_count(list); i++) {
        struct map *map = maplist_at(list, i);
        if (map_flags(map) & MAP_PATTERN)
            continue;
        int m = map_lookup(map, key, value);
        if (m != MAP_NOTFOUND)
            return m;
    }
    return MAP_NOTFOUND;
}

/* Search transport_maps for the address; MAP_FOUND with the value. */
static int transport_lookup(struct resolver *r, const char *address,
                            const char *domain, struct strbuf *value)
{
    int m = maplist_lookup(r->transport_maps, address, value);
    if (m != MAP_NOTFOUND)
        return m;
    /* user+ext@domain: then user@domain */
    const char *at = strrchr(address, '@');
    if (at && *r->recipient_delimiter) {
        size_t local_len = (size_t)(at - address);
        size_t ext = strcspn(address, r->recipient_delimiter);
        if (ext < local_len && ext > 0) {
            struct strbuf key = STRBUF_INIT;
            strbuf_append(&key, address, ext);
            strbuf_puts(&key, at);
            m = lookup_fixed(r->transport_maps, strbuf_str(&key), value);
            strbuf_free(&key);
            if (m != MAP_NOTFOUND)
                return m;
        }
    }
    if (*domain) {
        /* the domain and its parents: fixed-key tables only (transport(5)) */
        m = map_search_domain_fixed(r->transport_maps, domain, r->transport_parent_matches, value);
        if (m != MAP_NOTFOUND)
            return m;
    }
    return lookup_fixed(r->transport_maps, "*", value);
}

/* Split address at its last '@' into local part and domain (lower case,
 * without trailing dots); an address without '@' has domain "". */
static void split_address(const char *address, struct strbuf *localpart, struct strbuf *domain)
{
    split_at(address, strrchr(address, '@'), localpart, domain);
    while (domain->len && domain->s[domain->len - 1] == '.')
        strbuf_truncate(domain, domain->len - 1);
    for (size_t i = 0; i < domain->len; i++)
        domain->s[i] = (char)tolower((unsigned char)domain->s[i]);
}

/* A routing parameter of the resolver, read from main.cf on first use. */
static int routing_param(int *cached, const char *name)
{
    if (*cached < 0)
        *cached = conf_bool(name);
    return *cached;
}

int resolve_route(struct resolver *r, const char *address, struct resolution *out)
{
    struct strbuf work = STRBUF_INIT, next = STRBUF_INIT;
    const char *p = address;
    strbuf_reset(&out->reason);
    out->routed = out->rerouted = 0;
    /* a source route (@a,@b:user@domain) is dropped */
    if (*p == '@' && strchr(p, ':')) {
        p = strchr(p, ':') + 1;
        out->rerouted = 1;
    }
    strbuf_set(&work, p);
    for (int round = 0; round < RESOLVE_MAX_ROUTING; round++) {
        split_address(strbuf_str(&work), &out->localpart, &out->domain);
        if (resolve_domain_class(r, strbuf_str(&out->domain), &out->address_class,
                                 &out->reason) != RESOLVE_OK) {
            strbuf_free(&work);
            strbuf_free(&next);
            return RESOLVE_RETRY;
        }
        if (out->address_class != ADDR_CLASS_LOCAL)
            break;
        /* ours: the local part may route on (trivial-rewrite's order) */
        const char *lp = strbuf_str(&out->localpart);
        const char *bang = strchr(lp, '!');
        const char *percent = strrchr(lp, '%');
        strbuf_reset(&next);
        if (strchr(lp, '@') && routing_param(&r->resolve_dequoted_address,
                                             "resolve_dequoted_address"))
            strbuf_puts(&next, lp);                 /* "user@other"@ours */
        else if (bang && routing_param(&r->swap_bangpath, "swap_bangpath"))
            strbuf_printf(&next, "%s@%.*s", bang + 1, (int)(bang - lp), lp);   /* other!user@ours */
        else if (percent && routing_param(&r->allow_percent_hack, "allow_percent_hack"))
            strbuf_printf(&next, "%.*s@%s", (int)(percent - lp), lp, percent + 1); /* user%other@ours */
        else
            break;
        strbuf_set(&work, strbuf_str(&next));
        out->rerouted = 1;
    }
    /* a non-local domain whose local part still routes elsewhere */
    if (out->address_class != ADDR_CLASS_LOCAL && strpbrk(strbuf_str(&out->localpart), "@!%"))
        out->routed = 1;
    strbuf_reset(&out->address);
    if (out->rerouted) {
        strbuf_puts(&out->address, strbuf_str(&out->localpart));
        if (out->domain.len)
            strbuf_printf(&out->address, "@%s", strbuf_str(&out->domain));
    }
    strbuf_free(&work);
    strbuf_free(&next);
    return RESOLVE_OK;
}

int resolve_relocated(struct resolver *r, const char *address, enum address_class address_class,
                      struct strbuf *new_address)
{
    if (!r->relocated_maps || maplist_count(r->relocated_maps) == 0)
        return MAP_NOTFOUND;
    const char *at = strrchr(address, '@');
    /* the bare local part is a key for our own domains, as mail_addr_find */
    int local = address_class == ADDR_CLASS_LOCAL || !at || strcasecmp(at + 1, r->myorigin) == 0;
    return map_search_address(r->relocated_maps, address, r->recipient_delimiter, local,
                              new_address, NULL);
}

/* A sender-dependent table's answer for sender (NULL: unknown, no
 * answer): the address, user@domain without its extension, @domain; the
 * null sender as empty_key.  DUNNO ends the search without an answer
 * (Postfix 2.6).  MAP_FOUND, MAP_NOTFOUND, or MAP_RETRY with the reason
 * (naming param) in out->reason. */
static int sender_lookup(struct resolver *r, struct maplist *maps, const char *param,
                         const char *sender, const char *empty_key, struct strbuf *value,
                         struct resolution *out)
{
    if (!sender || !maps || maplist_count(maps) == 0)
        return MAP_NOTFOUND;
    int m = *sender ? map_search_address(maps, sender, r->recipient_delimiter, 0, value, NULL)
                    : maplist_lookup(maps, empty_key, value);
    if (m == MAP_FOUND && (strcasecmp(strbuf_str(value), "DUNNO") == 0 || value->len == 0))
        m = MAP_NOTFOUND;
    if (m == MAP_RETRY)
        strbuf_printf(&out->reason, "4.3.0 %s lookup failure for %s", param, sender);
    return m;
}

int resolve_address(struct resolver *r, const char *address, struct resolution *out)
{
    return resolve_address_from(r, NULL, address, out);
}

static int resolve_uncached(struct resolver *r, const char *sender, const char *address,
                            struct resolution *out)
{
    strbuf_reset(&out->transport);
    strbuf_reset(&out->nexthop);
    out->deferred_transport = 0;
    if (resolve_route(r, address, out) != RESOLVE_OK)
        return RESOLVE_RETRY;
    /* from here on the address is where routing led */
    if (out->rerouted)
        address = strbuf_str(&out->address);
    const char *domain = strbuf_str(&out->domain);

    const char *spec = r->default_transport;
    switch (out->address_class) {
    case ADDR_CLASS_LOCAL: spec = r->local_transport; break;
    case ADDR_CLASS_VIRTUAL_ALIAS: spec = NULL; break;
    case ADDR_CLASS_VIRTUAL_MAILBOX: spec = r->virtual_transport; break;
    case ADDR_CLASS_RELAY: spec = r->relay_transport; break;
    case ADDR_CLASS_DEFAULT: spec = r->default_transport; break;
    }
    if (!spec) {
        /* a virtual alias domain without an alias for this address */
        strbuf_set(&out->transport, "error");
        strbuf_set(&out->nexthop, "5.1.1 User unknown in virtual alias table");
        return RESOLVE_OK;
    }
    struct strbuf by_sender = STRBUF_INIT;
    int by = MAP_NOTFOUND;
    /* sender_dependent_default_transport_maps overrides default_transport */
    if (out->address_class == ADDR_CLASS_DEFAULT)
        by = sender_lookup(r, r->sender_transport_maps, "sender_dependent_default_transport_maps",
                           sender, r->empty_transport_key, &by_sender, out);
    if (by == MAP_FOUND)
        spec = strbuf_str(&by_sender);
    if (by != MAP_RETRY)
        split_transport(spec, &out->transport, &out->nexthop);
    /* sender_dependent_relayhost_maps, then relayhost */
    if (by != MAP_RETRY && out->nexthop.len == 0
        && (out->address_class == ADDR_CLASS_RELAY || out->address_class == ADDR_CLASS_DEFAULT)) {
        by = sender_lookup(r, r->sender_relayhost_maps, "sender_dependent_relayhost_maps", sender,
                           r->empty_relayhost_key, &by_sender, out);
        if (by == MAP_FOUND)
            strbuf_set(&out->nexthop, strbuf_str(&by_sender));
    }
    strbuf_free(&by_sender);
    if (by == MAP_RETRY)
        return RESOLVE_RETRY;
    if (out->nexthop.len == 0) {
        if ((out->address_class == ADDR_CLASS_RELAY
             || out->address_class == ADDR_CLASS_DEFAULT) && *r->relayhost)
            strbuf_set(&out->nexthop, r->relayhost);
        else if (out->address_class == ADDR_CLASS_LOCAL)
            strbuf_set(&out->nexthop, r->myhostname);
        else
            strbuf_set(&out->nexthop, domain);
    }

    if (maplist_count(r->transport_maps) > 0) {
        struct strbuf value = STRBUF_INIT;
        int m = transport_lookup(r, address, domain, &value);
        if (m == MAP_RETRY) {
            strbuf_printf(&out->reason, "4.3.0 transport_maps lookup failure for %s", address);
            strbuf_free(&value);
            return RESOLVE_RETRY;
        }
        if (m == MAP_FOUND) {
            struct strbuf transport = STRBUF_INIT, nexthop = STRBUF_INIT;
            split_transport(strbuf_str(&value), &transport, &nexthop);
            if (transport.len) {
                strbuf_set(&out->transport, strbuf_str(&transport));
                /* a transport without a nexthop resets it to the domain */
                strbuf_set(&out->nexthop, nexthop.len ? strbuf_str(&nexthop) : domain);
            } else if (nexthop.len) {
                strbuf_set(&out->nexthop, strbuf_str(&nexthop));
            }
            strbuf_free(&transport);
            strbuf_free(&nexthop);
        }
        strbuf_free(&value);
    }
    struct strbuf moved = STRBUF_INIT;
    int m = resolve_relocated(r, address, out->address_class, &moved);
    if (m == MAP_RETRY) {
        strbuf_printf(&out->reason, "4.3.0 relocated_maps lookup failure for %s", address);
        strbuf_free(&moved);
        return RESOLVE_RETRY;
    }
    if (m == MAP_FOUND) {
        /* whatever the class: the error transport bounces it */
        strbuf_set(&out->transport, "error");
        strbuf_reset(&out->nexthop);
        strbuf_printf(&out->nexthop, "5.1.6 User has moved to %s", strbuf_str(&moved));
    }
    strbuf_free(&moved);
    out->deferred_transport = resolver_transport_deferred(r, strbuf_str(&out->transport));
    return RESOLVE_OK;
}

int resolver_transport_deferred(const struct resolver *resolver, const char *transport)
{
    for (size_t i = 0; i < resolver->defer_transports.count; i++)
        if (strcmp(resolver->defer_transports.item[i], transport) == 0)
            return 1;
    return 0;
}

/* The last answer, as Postfix's resolve client keeps its last one: qmgr
 * routes the recipients of a queue of mail for one address once a second
 * at most, not once per message (with SQL tables each resolution is a
 * query or two).  Only a resolver's own answers, never a failure, and for
 * a second: a table changed meanwhile is seen after it. */
#define LAST_ANSWER_MS 1000
static struct {
    unsigned long generation;
    int has_sender;
    char *sender, *address;
    long long at_ms;
    struct resolution res;
} last = {.res = RESOLUTION_INIT};

static void resolution_copy(struct resolution *to, const struct resolution *from)
{
    to->address_class = from->address_class;
    strbuf_set(&to->transport, strbuf_str(&from->transport));
    strbuf_set(&to->nexthop, strbuf_str(&from->nexthop));
    strbuf_set(&to->domain, strbuf_str(&from->domain));
    to->deferred_transport = from->deferred_transport;
    strbuf_set(&to->reason, strbuf_str(&from->reason));
    strbuf_set(&to->localpart, strbuf_str(&from->localpart));
    strbuf_set(&to->address, strbuf_str(&from->address));
    to->rerouted = from->rerouted;
    to->routed = from->routed;
}

int resolve_address_from(struct resolver *r, const char *sender, const char *address,
                         struct resolution *out)
{
    long long now = monotonic_ms();
    if (last.generation == r->generation && now - last.at_ms < LAST_ANSWER_MS
        && last.has_sender == (sender != NULL) && strcmp(last.address, address) == 0
        && (!sender || strcmp(last.sender, sender) == 0)) {
        resolution_copy(out, &last.res);
        return RESOLVE_OK;
    }
    int status = resolve_uncached(r, sender, address, out);
    if (status != RESOLVE_OK)
        return status;
    free(last.sender);
    free(last.address);
    last.generation = r->generation;
    last.has_sender = sender != NULL;
    last.sender = sender ? xstrdup(sender) : NULL;
    last.address = xstrdup(address);
    last.at_ms = now;
    resolution_copy(&last.res, out);
    return RESOLVE_OK;
}

void resolution_free(struct resolution *res)
{
    strbuf_free(&res->transport);
    strbuf_free(&res->nexthop);
    strbuf_free(&res->domain);
    strbuf_free(&res->reason);
    strbuf_free(&res->localpart);
    strbuf_free(&res->address);
}
