/* destination.c - where a recipient address goes, for relay control, the
 * way Postfix's trivial-rewrite resolves it: a source route is dropped
 * (@a,@b:user@domain), a domain's trailing dot is dropped, and while the
 * domain is one of ours (local class) the local part is looked at again:
 * user@other (resolve_dequoted_address, the quotes are gone already),
 * other!user (swap_bangpath) and user%other (allow_percent_hack) route on
 * to "other".  A local part of a non-local domain that still holds such
 * routing is flagged, so that relay_domains does not relay it unless
 * allow_untrusted_routing.  The class of a domain comes from lib/mail/resolve.c
 * (local, virtual alias, virtual mailbox, relay, default).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "smtpd.h"

#include "resolve.h"

/* The resolver, opened on first use; NULL (logged once) when a domain
 * list or table cannot be opened: every answer is then "try again". */
static struct resolver *shared_resolver(void)
{
    static struct resolver *resolver;
    static int failed;
    if (!resolver && !failed) {
        struct strbuf err = STRBUF_INIT;
        resolver = resolver_open(&err);
        if (!resolver) {
            msg_warn("address classes unavailable: %s", strbuf_str(&err));
            failed = 1;
        }
        strbuf_free(&err);
    }
    return resolver;
}

int destination_domain_class(const char *domain, enum dest_class *out)
{
    enum address_class cls;
    struct resolver *resolver = shared_resolver();
    if (!resolver || resolve_domain_class(resolver, domain, &cls, NULL) != RESOLVE_OK)
        return -1;
    switch (cls) {
    case ADDR_CLASS_LOCAL: *out = DEST_LOCAL; break;
    case ADDR_CLASS_VIRTUAL_ALIAS: *out = DEST_VIRTUAL_ALIAS; break;
    case ADDR_CLASS_VIRTUAL_MAILBOX: *out = DEST_VIRTUAL_MAILBOX; break;
    case ADDR_CLASS_RELAY: *out = DEST_RELAY; break;
    default: *out = DEST_DEFAULT; break;
    }
    return 0;
}

/* 1 when the local part still routes mail elsewhere. */
static int localpart_routes(const char *localpart)
{
    return strpbrk(localpart, "@!%") != NULL;
}

/* Split the address at its last '@' into localpart and domain (lower
 * case, without trailing dots); an address without '@' has domain "". */
static void split_address(const char *address, struct strbuf *localpart, struct strbuf *domain)
{
    const char *at = strrchr(address, '@');
    strbuf_reset(localpart);
    strbuf_reset(domain);
    if (!at) {
        strbuf_puts(localpart, address);
        return;
    }
    strbuf_append(localpart, address, (size_t)(at - address));
    strbuf_puts(domain, at + 1);
    while (domain->len && domain->s[domain->len - 1] == '.')
        strbuf_truncate(domain, domain->len - 1);
    for (size_t i = 0; i < domain->len; i++)
        domain->s[i] = (char)tolower((unsigned char)domain->s[i]);
}

int destination_resolve(const char *address, struct destination *out)
{
    struct strbuf work = STRBUF_INIT;
    const char *p = address;
    if (*p == '@') {
        const char *colon = strchr(p, ':');
        if (colon)
            p = colon + 1;
    }
    strbuf_set(&work, p);
    out->routed = 0;
    for (int round = 0; round < 20; round++) {
        split_address(strbuf_str(&work), &out->localpart, &out->domain);
        if (destination_domain_class(strbuf_str(&out->domain), &out->dest_class) != 0) {
            strbuf_free(&work);
            return -1;
        }
        if (out->dest_class != DEST_LOCAL)
            break;
        /* ours: look at the local part again */
        const char *lp = strbuf_str(&out->localpart);
        struct strbuf next = STRBUF_INIT;
        const char *bang = strchr(lp, '!');
        const char *percent = strrchr(lp, '%');
        if (strchr(lp, '@') && conf_bool("resolve_dequoted_address")) {
            strbuf_puts(&next, lp);
        } else if (bang && conf_bool("swap_bangpath")) {
            /* host!user -> user@host */
            strbuf_printf(&next, "%s@%.*s", bang + 1, (int)(bang - lp), lp);
        } else if (percent && conf_bool("allow_percent_hack")) {
            strbuf_printf(&next, "%.*s@%s", (int)(percent - lp), lp, percent + 1);
        } else {
            strbuf_free(&next);
            break;
        }
        strbuf_set(&work, strbuf_str(&next));
        strbuf_free(&next);
    }
    if (out->dest_class != DEST_LOCAL && localpart_routes(strbuf_str(&out->localpart)))
        out->routed = 1;
    strbuf_free(&work);
    return 0;
}

void destination_free(struct destination *d)
{
    strbuf_free(&d->localpart);
    strbuf_free(&d->domain);
}
