/* clientlist.h - client address-match lists: mynetworks,
 * smtpd_client_event_limit_exceptions and the like.
 *
 * Syntax is Postfix's (postconf(5) mynetworks): items split on commas and
 * white space; an IPv4 address or network (192.0.2.1, 192.0.2.0/24); an IPv6
 * address or network, bracketed or not ([::1], [2001:db8::]/32); `!item`
 * negates (a match on it ends the search with "no match"); `/file/name` reads
 * more items from a file (# comments); `type:table` looks the client's
 * address up in a table (cidr:, texthash:, ...; found = match).  The first
 * item that matches decides.  Host and domain names are Postfix patterns on
 * the client's verified name; postern's callers here know only addresses, so
 * such items never match and are reported once as a warning at parse time.
 * A network with host bits set (10.1.2.3/8) is an error, as in Postfix.
 *
 * TODO(lead): postern-smtpd needs the same for mynetworks; unify with the
 * smtpd branch's list when both are in main (this API is the proposal).
 */
#ifndef POSTERN_CLIENTLIST_H
#define POSTERN_CLIENTLIST_H

#include <sys/socket.h>

struct strbuf;
struct clientlist;

/* Parse an expanded value; `what` names it in messages (the parameter).
 * NULL with a message in err for a syntax error or a table that cannot be
 * opened; items that can never match are described in `warnings` (one line
 * each, may be NULL). */
struct clientlist *clientlist_parse(const char *value, const char *what,
                                struct strbuf *err, struct strbuf *warnings);
/* 1 when the address matches, 0 when not, -1 when a table could not answer
 * (MAP_RETRY: the caller decides, usually "not exempt" plus a warning).
 * IPv4-mapped IPv6 addresses are matched as IPv4. */
int clientlist_match(const struct clientlist *list, const struct sockaddr *addr);
/* The same for an address in text form; 0 for text that is no address. */
int clientlist_match_text(const struct clientlist *list, const char *address);
/* 1 when the list has no items (matches nothing, cheaply). */
int clientlist_empty(const struct clientlist *list);
void clientlist_free(struct clientlist *list);

#endif
