/* nexthop.h - where the smtp and lmtp runners connect for a next hop, as
 * Postfix's smtp(8) finds it (its smtp_addr.c):
 *
 *   domain, domain:port        MX records in preference order (records of
 *                              equal preference in random order), else the
 *                              domain's own A/AAAA records; a null MX
 *                              (RFC 7505) bounces 5.1.10; MX hosts whose
 *                              address is ours (own_address) are dropped
 *                              with every worse one, and when the best is
 *                              ours the mail "loops back to myself" (5.4.6)
 *   [host], [host]:port        no MX lookup: the host's A/AAAA records, or
 *                              the address itself ([192.0.2.1], [ipv6:...])
 *   unix:/path (lmtp)          a unix-domain socket
 *   inet:host:port (lmtp)      host:port without MX lookup
 *
 * Several next hops may be given, separated by commas or white space
 * (Postfix 3.5's relayhost lists): their addresses follow one another.
 * Ports are numbers or the names smtp, submission, smtps, lmtp.  DNS
 * through lib/net/dns.c; inet_protocols chooses A, AAAA or both.
 */
#ifndef POSTERN_NEXTHOP_H
#define POSTERN_NEXTHOP_H

#include <stddef.h>
#include <sys/socket.h>

#include "strbuf.h"

struct nexthop_target {
    char *host;                     /* "mx1.example.com", the address for literals,
                                       $myhostname for a unix socket */
    char addr[108];                 /* "192.0.2.1", "2001:db8::1", "/path" */
    int port;                       /* 0 for a unix socket */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    unsigned pref;                  /* MX preference (0 without MX) */
    int best;                       /* among the most preferred (or no MX) */
    char *dest;                     /* the next hop of a list it came from
                                       ("example.com", "[mx.example.com]:587") */
    int from_mx;                    /* host came from an MX record */
    int mx_secure;                  /* that MX RRset was DNSSEC-validated */
    int addr_secure;                /* the host's A/AAAA RRset was validated
                                       (0 for a literal address or a socket) */
};

struct nexthop_options {
    int lmtp;                       /* LMTP: no MX lookups, unix: and inet: forms */
    int default_port;               /* smtp_tcp_port / lmtp_tcp_port */
    int use_mx;                     /* MX lookups for bare names (smtp) */
    int ipv4, ipv6;                 /* inet_protocols */
    int prefer_ipv6;                /* smtp_address_preference = ipv6 */
    int randomize;                  /* smtp_randomize_addresses */
    size_t address_limit;           /* smtp_mx_address_limit, 0: none */
    const char *myhostname;
    const char *base_directory;     /* relative unix: names start here
                                       (queue_directory), or NULL */
    /* 1 when an address (AF_INET: 4 bytes, AF_INET6: 16) is this machine's */
    int (*own_address)(int family, const void *bytes, void *arg);
    void *own_arg;
};

struct nexthop_list {
    struct nexthop_target *target;
    size_t count;
    int self_mx;                    /* one of the MX hosts is this machine (a
                                       backup MX: no smtp_fallback_relay) */
};

enum nexthop_result {
    NEXTHOP_OK,                     /* targets found */
    NEXTHOP_DEFER,                  /* try again later: dsn and why say why */
    NEXTHOP_BOUNCE,                 /* no way to deliver: dsn and why */
};

/* Find the targets of a next hop, in the order to try them.  NEXTHOP_OK
 * with at least one target, else the outcome with an RFC 3463 code in dsn
 * and Postfix's words in why ("Host or domain name not found. Name service
 * error for name=example.invalid type=A: Host not found"). */
enum nexthop_result nexthop_find(const char *nexthop, const struct nexthop_options *opt,
                                 struct nexthop_list *out, struct strbuf *dsn,
                                 struct strbuf *why);
/* Parse a port: a number or a service name; -1 when neither. */
int nexthop_port(const char *text);
void nexthop_list_free(struct nexthop_list *list);

#endif
