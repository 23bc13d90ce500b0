/* destination.c - where a recipient address goes, for relay control and
 * reject_unlisted_recipient: lib/mail/resolve.c's resolve_route(), the
 * same routing rules qmgr resolves with (source routes, trailing dots,
 * user@other, other!user and user%other through our own domains), so
 * smtpd never accepts for one place what qmgr delivers to another.  A
 * local part of a non-local domain that still holds such routing is
 * flagged, so that relay_domains does not relay it unless
 * allow_untrusted_routing.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"
#include "smtpd.h"

#include "map.h"
#include "resolve.h"

/* The resolver, opened on first use (in a zygote, before the fork:
 * destination_prepare); NULL (logged once) when a domain list or table
 * cannot be opened: every answer is then "try again". */
static struct resolver *opened_resolver;
static int failed;

static struct resolver *shared_resolver(void)
{
    if (!opened_resolver && !failed) {
        struct strbuf err = STRBUF_INIT;
        opened_resolver = resolver_open(&err);
        if (!opened_resolver) {
            msg_warn("address classes unavailable: %s", strbuf_str(&err));
            failed = 1;
        }
        strbuf_free(&err);
    }
    return opened_resolver;
}

/* smtpd's name for an address class. */
static enum dest_class dest_class_of(enum address_class cls)
{
    switch (cls) {
    case ADDR_CLASS_LOCAL: return DEST_LOCAL;
    case ADDR_CLASS_VIRTUAL_ALIAS: return DEST_VIRTUAL_ALIAS;
    case ADDR_CLASS_VIRTUAL_MAILBOX: return DEST_VIRTUAL_MAILBOX;
    case ADDR_CLASS_RELAY: return DEST_RELAY;
    default: return DEST_DEFAULT;
    }
}

void destination_prepare(void)
{
    (void)shared_resolver();
    failed = 0;                 /* each child tries again, and says why */
}

int destination_refresh(void)
{
    if (!resolver_changed(opened_resolver))
        return 0;
    msg_info("a table of the address classes has changed: opened again");
    resolver_close(opened_resolver);
    opened_resolver = NULL;
    destination_prepare();
    return 1;
}

int destination_domain_class(const char *domain, enum dest_class *out)
{
    enum address_class cls;
    struct resolver *resolver = shared_resolver();
    if (!resolver || resolve_domain_class(resolver, domain, &cls, NULL) != RESOLVE_OK)
        return -1;
    *out = dest_class_of(cls);
    return 0;
}

int destination_own_address(const char *address)
{
    struct resolver *resolver = shared_resolver();
    unsigned char bytes[16];
    if (!resolver)
        return -1;
    if (strncasecmp(address, "::ffff:", 7) == 0 && strchr(address, '.'))
        address += 7;
    if (inet_pton(AF_INET, address, bytes) == 1)
        return resolver_own_address(resolver, AF_INET, bytes);
    if (inet_pton(AF_INET6, address, bytes) == 1)
        return resolver_own_address(resolver, AF_INET6, bytes);
    return 0;
}

int destination_resolve(const char *address, struct destination *out)
{
    struct resolver *resolver = shared_resolver();
    struct resolution res = RESOLUTION_INIT;
    if (!resolver || resolve_route(resolver, address, &res) != RESOLVE_OK) {
        resolution_free(&res);
        return -1;
    }
    out->dest_class = dest_class_of(res.address_class);
    out->routed = res.routed;
    /* the strings move over */
    destination_free(out);
    out->localpart = res.localpart;
    out->domain = res.domain;
    res.localpart = (struct strbuf)STRBUF_INIT;
    res.domain = (struct strbuf)STRBUF_INIT;
    resolution_free(&res);
    return 0;
}

int destination_relocated(const char *address, enum dest_class dest_class, struct strbuf *moved)
{
    struct resolver *resolver = shared_resolver();
    if (!resolver)
        return MAP_RETRY;
    return resolve_relocated(resolver, address,
                             dest_class == DEST_LOCAL ? ADDR_CLASS_LOCAL : ADDR_CLASS_DEFAULT, moved);
}

void destination_free(struct destination *d)
{
    strbuf_free(&d->localpart);
    strbuf_free(&d->domain);
}
