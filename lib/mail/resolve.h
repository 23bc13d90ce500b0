/* resolve.h - where a recipient address goes: Postfix's trivial-rewrite
 * resolve service (ADDRESS_CLASS_README, transport(5)).
 *
 * Address classes, tried in this order on the recipient's domain:
 *   local            the domain is in mydestination, or is an [ip] literal
 *                    of this machine (inet_interfaces, proxy_interfaces);
 *                    an address without a domain is local too
 *   virtual alias    virtual_alias_domains (mail that reaches the queue for
 *                    such a domain was not aliased: it bounces 5.1.1)
 *   virtual mailbox  virtual_mailbox_domains
 *   relay            relay_domains
 *   default          everything else
 * Each class has a transport parameter (local_transport, virtual_transport,
 * relay_transport, default_transport), in the form "transport" or
 * "transport:nexthop".  The nexthop, when the parameter has none, is: for
 * local the transport's own default ($myhostname is in local_transport's
 * default), for virtual the recipient domain, for relay and default
 * $relayhost, else the recipient domain.  Then transport_maps may override
 * (transport(5)): keys user+ext@domain, user@domain, domain, parent domains
 * (".parent", or "parent" when transport_maps is listed in
 * parent_domain_matches_subdomains), "*"; results "transport:nexthop",
 * "transport:" (nexthop reset to the recipient domain), ":nexthop"
 * (transport kept), ":" or empty (no change), "error:text", "discard:text".
 * A transport listed in defer_transports is flagged, not changed.
 *
 * Callers: qmgr (every recipient) and smtpd.  For reject_unauth_destination
 * smtpd needs only resolve_domain_class(): the destination is authorized
 * when the class is not ADDR_CLASS_DEFAULT and the local part holds no
 * sender-specified routing ('@', '!', '%'); RESOLVE_RETRY is a 450 4.3.0.
 * reject_unlisted_recipient picks its table by class (local: local_recipient_maps,
 * virtual alias: virtual_alias_maps, virtual mailbox: virtual_mailbox_maps,
 * relay: relay_recipient_maps).  Open a resolver once per process (tables
 * stay open), resolve many times; after SIGHUP, close and open again.
 * `postern-qmgr -r ADDRESS...` prints resolutions for administrators and
 * tests (t/50-qmgr-resolve.t).
 */
#ifndef POSTERN_RESOLVE_H
#define POSTERN_RESOLVE_H

#include "strbuf.h"

enum address_class {
    ADDR_CLASS_LOCAL,
    ADDR_CLASS_VIRTUAL_ALIAS,
    ADDR_CLASS_VIRTUAL_MAILBOX,
    ADDR_CLASS_RELAY,
    ADDR_CLASS_DEFAULT,
};

#define RESOLVE_OK      0
#define RESOLVE_RETRY   (-1)    /* a table could not answer: defer 4.3.0 */

/* Rounds of routing through our own domains before resolution stops. */
#define RESOLVE_MAX_ROUTING 20

struct resolution {
    enum address_class address_class;
    struct strbuf transport;    /* "virtual", "smtp", "error", "discard", ... */
    struct strbuf nexthop;      /* "example.com", "[192.0.2.1]:587", error text */
    struct strbuf domain;       /* recipient domain, lower case, "" when none */
    int deferred_transport;     /* the transport is listed in defer_transports */
    struct strbuf reason;       /* RESOLVE_RETRY: "4.3.0 ..." for the log */
    struct strbuf localpart;    /* of the routed address */
    struct strbuf address;      /* where routing led, localpart@domain
                                   (set only when rerouted) */
    int rerouted;               /* routing changed the address (source
                                   route, @ ! % through our domains) */
    int routed;                 /* a non-local domain whose local part
                                   still routes (@ ! %): untrusted routing */
};
#define RESOLUTION_INIT { ADDR_CLASS_DEFAULT, STRBUF_INIT, STRBUF_INIT, \
                          STRBUF_INIT, 0, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, 0, 0 }

struct resolver;

/* Read the parameters above and open their lists and tables.  NULL with a
 * message in err when a table or list cannot be opened (a configuration
 * error: the caller exits as a temporary failure). */
struct resolver *resolver_open(struct strbuf *err);
/* The same with probes set: the routing of address verification probes,
 * where address_verify_transport_maps, address_verify_relayhost,
 * address_verify_{local,virtual,relay,default}_transport and
 * address_verify_sender_dependent_{relayhost,default_transport}_maps
 * stand for the parameters without the prefix (postern-verify(8)). */
struct resolver *resolver_open_routing(int probes, struct strbuf *err);
void resolver_close(struct resolver *resolver);
/* 1 when the file of one of its tables has changed since it was opened
 * (map_changed): a long-lived caller opens a new resolver. */
int resolver_changed(const struct resolver *resolver);

/* Where an address routes, as trivial-rewrite resolves it and before any
 * transport: a source route (@a,@b:user@domain) is dropped, the domain
 * loses its trailing dots and case, and while the domain is local the
 * local part routes on: user@other (resolve_dequoted_address; the
 * quotes are gone already), other!user (swap_bangpath) and user%other
 * (allow_percent_hack, the last '%').  Fills address_class, localpart,
 * domain, address, rerouted and routed.  smtpd (relay control,
 * reject_unlisted_recipient) and qmgr (through resolve_address) both
 * route with this, so they agree.  RESOLVE_OK or RESOLVE_RETRY. */
int resolve_route(struct resolver *resolver, const char *address,
                  struct resolution *out);
/* Resolve one recipient address: resolve_route(), then the class's
 * transport and nexthop and transport_maps for the routed address.
 * RESOLVE_OK with `out` filled, or RESOLVE_RETRY with out->reason set
 * ("4.3.0 ..."). */
int resolve_address(struct resolver *resolver, const char *address,
                    struct resolution *out);
/* The same for mail from sender ("" the null sender; NULL: unknown):
 * for the default class sender_dependent_default_transport_maps may
 * replace default_transport, and for the relay and default classes, when
 * the transport names no nexthop, sender_dependent_relayhost_maps comes
 * before relayhost (keys: the sender, user@domain, @domain; the null
 * sender as empty_address_*_lookup_key; DUNNO: no answer), as Postfix's
 * trivial-rewrite resolves with a sender.  transport_maps still decides
 * last.  qmgr routes every recipient with its message's sender. */
int resolve_address_from(struct resolver *resolver, const char *sender, const char *address,
                         struct resolution *out);
/* relocated_maps (relocated(5)): where a user or domain has moved.
 * MAP_FOUND with the table's text ("new@example.com", or any text) in
 * new_address, MAP_NOTFOUND, or MAP_RETRY.  Keys as virtual(5), the bare
 * local part for our own domains (the class is local, or $myorigin).
 * resolve_address() sends such a recipient to the error transport with
 * "5.1.6 User has moved to TEXT", whatever its class; smtpd refuses it at
 * RCPT with the same text, as Postfix. */
int resolve_relocated(struct resolver *resolver, const char *address,
                      enum address_class address_class, struct strbuf *new_address);
/* Only the address class of a domain ("" or NULL: local).  RESOLVE_OK or
 * RESOLVE_RETRY (reason in `reason` when not NULL). */
int resolve_domain_class(struct resolver *resolver, const char *domain,
                         enum address_class *out, struct strbuf *reason);
/* 1 when an address (AF_INET: 4 bytes, AF_INET6: 16) is this machine's:
 * one of inet_interfaces or proxy_interfaces, or any interface's address
 * when inet_interfaces = all (the smtp runner's MX loop check). */
int resolver_own_address(const struct resolver *resolver, int family, const void *bytes);

/* 1 when transport is listed in defer_transports (a FILTER's transport, a
 * hand-over's, as well as a resolved one). */
int resolver_transport_deferred(const struct resolver *resolver, const char *transport);
/* "local", "virtual alias", "virtual mailbox", "relay", "default". */
const char *address_class_name(enum address_class address_class);
void resolution_free(struct resolution *res);

#endif
