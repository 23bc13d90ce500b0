/* dns.h - the one DNS resolver of postern (libunbound).
 *
 * Every program that asks the DNS asks through this module: A, AAAA, MX,
 * NS, PTR and TXT records, with a deadline per lookup, and an answer that keeps
 * apart what Postfix keeps apart (its dns_lookup(3)):
 *   DNS_FOUND     the name has records of the type asked;
 *   DNS_NOTFOUND  it does not: NXDOMAIN, or the name exists without
 *                 records of that type (NODATA; `nxdomain` tells which);
 *   DNS_RETRY     no answer could be had: SERVFAIL, REFUSED, a timeout,
 *                 a server that cannot be reached.  Callers answer a
 *                 temporary failure (450/451), never a permanent one.
 * The resolver follows /etc/resolv.conf (and /etc/hosts), or, when
 * POSTERN_DNS_SERVER is set in the environment (tests: "127.0.0.1@5353",
 * several separated by commas or spaces), asks only those servers, as a
 * stub, with recursion desired.  The context is made once per process
 * (dns_open) and used for every lookup.
 *
 * libunbound is linked only into dynamically linked programs: its static
 * archive calls getpwnam, getaddrinfo and getservbyname (config_file.o,
 * listen_dnsport.o, str2wire.o), which the static per-connection programs
 * must not (Makefile, STATIC_PROGS).
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

enum dns_status { DNS_FOUND, DNS_NOTFOUND, DNS_RETRY };

enum dns_type { DNS_T_A = 1, DNS_T_NS = 2, DNS_T_PTR = 12, DNS_T_MX = 15, DNS_T_TXT = 16,
                DNS_T_AAAA = 28, DNS_T_TLSA = 52 };

/* One record: A/AAAA an address in text form, MX/PTR a host name without
 * the final dot (MX: `pref` its preference), TXT its strings joined, TLSA
 * "USAGE SELECTOR MTYPE HEX" (the association data in lower-case hex). */
struct dns_record {
    unsigned pref;
    char *text;
};

struct dns_answer {
    enum dns_status status;
    int nxdomain;               /* DNS_NOTFOUND: 1 NXDOMAIN, 0 NODATA */
    int rcode;                  /* the DNS rcode seen, -1 when none */
    const char *why;            /* DNS_RETRY: what went wrong, for logs */
    int secure;                 /* DNSSEC validated the answer (or the
                                   denial): only with a trust anchor */
    size_t count;
    struct dns_record *records; /* MX sorted by preference */
};

/* Make the process's resolver; timeout_ms bounds each lookup (0: the
 * environment's POSTERN_DNS_TIMEOUT_MS, else 10 s).  Returns 0,
 * or -1 with a warning logged (then every lookup answers DNS_RETRY). */
int dns_open(int timeout_ms);
/* DNSSEC: validate every answer against the trust anchors in `file` (DS
 * or DNSKEY records in zone-file form, as /usr/share/dns/root.key), from
 * the next dns_open() on.  Without it no answer is `secure`.  A bogus
 * answer (a signature that does not verify) is DNS_RETRY with why
 * "DNSSEC validation failed", never data. */
void dns_set_trust_anchor(const char *file);
/* Ask for records of `type` at `name` (a trailing dot is allowed). */
void dns_lookup(const char *name, enum dns_type type, struct dns_answer *answer);
/* The reverse name of an IPv4 or IPv6 address in text form
 * ("4.3.2.1.in-addr.arpa"); -1 when addr is not an address. */
int dns_reverse_name(const char *addr, char *out, size_t size);
/* The same without ".in-addr.arpa"/".ip6.arpa": what an RBL query puts
 * before the zone ("4.3.2.1"); -1 when addr is not an address.  These two
 * are in dnsname.c, which static programs can link. */
int dns_reverse_prefix(const char *addr, char *out, size_t size);
/* 1 when name is labels of letters, digits, '-' and '_', 1..63 bytes each,
 * separated by single dots (a final dot allowed), as Postfix's
 * valid_hostname() takes them. */
int dns_labels_valid(const char *name);
/* Release what a lookup left in answer. */
void dns_answer_free(struct dns_answer *answer);
/* The name of a record type ("MX"), for logs and the command line. */
const char *dns_type_name(enum dns_type type);
/* The type a name stands for; 0 when none. */
enum dns_type dns_type_by_name(const char *name);

/* The client's name as Postfix's smtpd finds it: the first PTR name of
 * addr (what getnameinfo gives Postfix), kept only when its A/AAAA records
 * include addr again (forward-confirmed).  DNS_FOUND with `name` set; DNS_NOTFOUND when
 * there is no PTR record or no name confirms (Postfix's "unknown",
 * reverse_status permanent when no PTR, forward_status permanent when
 * unconfirmed); DNS_RETRY when a lookup failed temporarily.  `reverse`
 * receives the first PTR name even when it is not confirmed ("" when
 * none), which reject_unknown_reverse_client_hostname needs. */
struct dns_client_name {
    /* the address asked about */
    char addr[64];
    enum dns_status reverse_status;   /* the PTR lookup */
    enum dns_status forward_status;   /* the confirmation */
    int forward_missing;              /* DNS_NOTFOUND there: 0 none of the name's
                                       * addresses is addr, 1 it has none
                                       * (NODATA), 2 it does not exist */
    char reverse[256];
    char name[256];
};
void dns_client_name(const char *addr, struct dns_client_name *out);

/* Asynchronous lookups, for a program with a poll loop (the lookup
 * service): start one, put dns_fd() in the loop, call dns_process() when
 * it is readable and at the time dns_next_deadline_ms() names.  The
 * callback is called exactly once (from dns_*_start itself when the
 * lookup cannot start, else from dns_process), unless the lookup is
 * cancelled first; the answer is the callback's to read, not to keep. */
struct dns_pending;
typedef void dns_lookup_done(void *arg, const struct dns_answer *answer);
typedef void dns_client_name_done(void *arg, const struct dns_client_name *name);
struct dns_pending *dns_lookup_start(const char *name, enum dns_type type,
                                     dns_lookup_done *done, void *arg);
struct dns_pending *dns_client_name_start(const char *addr,
                                          dns_client_name_done *done, void *arg);
/* Forget a lookup whose callback has not been called yet. */
void dns_cancel(struct dns_pending *pending);
/* The resolver's descriptor, -1 when there is none. */
int dns_fd(void);
/* Milliseconds until the nearest deadline, -1 when nothing is pending. */
int dns_next_deadline_ms(void);
/* Take the answers that came and time out the lookups past deadline. */
void dns_process(void);

#endif
