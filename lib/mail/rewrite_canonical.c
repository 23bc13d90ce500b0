/* rewrite_canonical.c - the one-to-one address mappings of cleanup(8)
 * (rewrite.h): canonical_maps, sender_canonical_maps and
 * recipient_canonical_maps, each for the address classes its *_classes
 * parameter names, then masquerade_domains (with masquerade_exceptions,
 * for masquerade_classes).  An address is first qualified in its context:
 * the envelope and local header rewriting append @$myorigin and
 * .$mydomain, remote header rewriting appends
 * @$remote_header_rewrite_domain to an address without a domain.
 * Also the table search that virtual alias expansion shares: virtual(5)
 * and canonical(5) order, bare local parts only for our own domains. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "map.h"
#include "resolve.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

/* Rounds of canonical mapping of one address (Postfix's cleanup_map11). */
#define CANONICAL_MAX_ROUNDS 10

/* 1 when the address's domain is one of ours for the bare-localpart
 * keys (virtual(5): $myorigin, $mydestination, $inet_interfaces,
 * $proxy_interfaces); -1 when that cannot be told now. */
static int local_domain(const struct rewrite_config *cfg, const char *address)
{
    const char *at = strrchr(address, '@');
    if (!at)
        return 1;
    if (strcasecmp(at + 1, cfg->myorigin) == 0)
        return 1;
    enum address_class address_class;
    if (resolve_domain_class(cfg->resolver, at + 1, &address_class, NULL) != RESOLVE_OK)
        return -1;
    return address_class == ADDR_CLASS_LOCAL;
}

int rewrite_map_search(const struct rewrite_config *cfg, struct maplist *maps,
                       const char *address, struct strbuf *value, enum addr_key_form *form)
{
    int local = local_domain(cfg, address);
    if (local < 0)
        return MAP_RETRY;
    return map_search_address(maps, address, cfg->recipient_delimiter, local, value, form);
}

void rewrite_extension(const struct rewrite_config *cfg, const char *address, struct strbuf *ext)
{
    strbuf_reset(ext);
    if (!cfg->recipient_delimiter || !*cfg->recipient_delimiter)
        return;
    const char *at = strrchr(address, '@');
    size_t local_len = at ? (size_t)(at - address) : strlen(address);
    size_t cut = strcspn(address, cfg->recipient_delimiter);
    if (cut > 0 && cut < local_len)
        strbuf_append(ext, address + cut, local_len - cut);
}

void rewrite_crunch_result(const struct rewrite_config *cfg, const char *value,
                           const char *extension, struct strlist *out)
{
    struct strlist words = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT, address = STRBUF_INIT;
    if (list_split(value, &words, &err) != 0)
        strlist_add(&words, value);
    for (size_t i = 0; i < words.count; i++) {
        char *word = words.item[i];
        size_t len = strlen(word);
        if (len >= 2 && word[0] == '<' && word[len - 1] == '>') {
            word[len - 1] = '\0';
            word++;
        }
        strbuf_reset(&address);
        rewrite_address(cfg, word, &address);
        if (*extension) {
            const char *at = strrchr(strbuf_str(&address), '@');
            size_t local_len = at ? (size_t)(at - address.s) : address.len;
            struct strbuf extended = STRBUF_INIT;
            strbuf_append(&extended, address.s, local_len);
            strbuf_puts(&extended, extension);
            strbuf_puts(&extended, address.s + local_len);
            strbuf_set(&address, strbuf_str(&extended));
            strbuf_free(&extended);
        }
        strlist_add(out, strbuf_str(&address));
    }
    strlist_free(&words);
    strbuf_free(&err);
    strbuf_free(&address);
}

/* Map addr in place through one canonical table: the first address of
 * the result, again until it maps to itself or nothing.  0 or -1 (a table
 * could not answer: logged). */
static int map11(const struct rewrite_config *cfg, struct maplist *maps, const char *title,
                 struct strbuf *addr)
{
    struct strbuf value = STRBUF_INIT, ext = STRBUF_INIT;
    int status = 0;
    for (int round = 0;; round++) {
        if (round >= CANONICAL_MAX_ROUNDS) {
            msg_warn("unreasonable %s map nesting for %s", title, strbuf_str(addr));
            break;
        }
        enum addr_key_form form = ADDR_KEY_FULL;
        int r = rewrite_map_search(cfg, maps, strbuf_str(addr), &value, &form);
        if (r == MAP_RETRY) {
            msg_warn("%s map lookup problem for %s -- message not accepted, try again later",
                     title, strbuf_str(addr));
            status = -1;
            break;
        }
        if (r != MAP_FOUND)
            break;
        strbuf_reset(&ext);
        if (cfg->propagate_canonical && (form == ADDR_KEY_NOEXT || form == ADDR_KEY_LOCAL))
            rewrite_extension(cfg, strbuf_str(addr), &ext);
        struct strlist results = STRLIST_INIT;
        rewrite_crunch_result(cfg, strbuf_str(&value), strbuf_str(&ext), &results);
        if (results.count == 0) {
            strlist_free(&results);
            break;
        }
        if (results.count > 1)
            msg_warn("multi-valued %s entry for %s", title, strbuf_str(addr));
        int same = strcasecmp(results.item[0], strbuf_str(addr)) == 0;
        strbuf_set(addr, results.item[0]);
        strlist_free(&results);
        if (same)
            break;
    }
    strbuf_free(&value);
    strbuf_free(&ext);
    return status;
}

/* masquerade_domains: strip the subdomain of a listed domain ("!name":
 * leave that domain alone), unless the local part is excepted. */
static void masquerade(const struct rewrite_config *cfg, struct strbuf *addr)
{
    const char *at = strrchr(strbuf_str(addr), '@');
    if (!at)
        return;
    size_t local_len = (size_t)(at - addr->s);
    for (size_t i = 0; i < cfg->masquerade_exceptions.count; i++) {
        const char *name = cfg->masquerade_exceptions.item[i];
        if (strlen(name) == local_len && strncasecmp(name, addr->s, local_len) == 0)
            return;
    }
    const char *domain = at + 1;
    size_t domain_len = strlen(domain);
    for (size_t i = 0; i < cfg->masquerade_domains.count; i++) {
        const char *masq = cfg->masquerade_domains.item[i];
        int keep = *masq == '!';
        masq += keep;
        size_t masq_len = strlen(masq);
        if (!masq_len)
            continue;
        if (masq_len == domain_len && strcasecmp(masq, domain) == 0)
            return;             /* the domain itself: nothing to strip */
        if (masq_len < domain_len && domain[domain_len - masq_len - 1] == '.'
            && strcasecmp(masq, domain + domain_len - masq_len) == 0) {
            if (!keep) {
                char *masked = xstrdup(masq);
                strbuf_truncate(addr, local_len + 1);
                strbuf_puts(addr, masked);
                free(masked);
            }
            return;
        }
    }
}

int rewrite_address_class(const struct rewrite_config *cfg, enum rewrite_context context,
                          unsigned address_class, const char *address, struct strbuf *out)
{
    struct strbuf addr = STRBUF_INIT;
    if (context == REWRITE_CONTEXT_REMOTE) {
        strbuf_puts(&addr, address);
        if (*address && !strchr(address, '@'))
            strbuf_printf(&addr, "@%s", cfg->remote_header_rewrite_domain);
    } else {
        rewrite_address(cfg, address, &addr);
    }
    int status = 0;
    if (*address) {
        int sender = (address_class & (REWRITE_ENV_FROM | REWRITE_HDR_FROM)) != 0;
        struct maplist *own = sender ? cfg->sender_canonical_maps : cfg->recipient_canonical_maps;
        unsigned own_classes = sender ? cfg->sender_canonical_classes : cfg->recipient_canonical_classes;
        if (own && (own_classes & address_class))
            status = map11(cfg, own, sender ? "sender_canonical_maps" : "recipient_canonical_maps", &addr);
        if (status == 0 && cfg->canonical_maps && (cfg->canonical_classes & address_class))
            status = map11(cfg, cfg->canonical_maps, "canonical_maps", &addr);
        if (status == 0 && cfg->masquerade_domains.count && (cfg->masquerade_classes & address_class))
            masquerade(cfg, &addr);
    }
    strbuf_append(out, addr.s ? addr.s : "", addr.len);
    strbuf_free(&addr);
    return status;
}
