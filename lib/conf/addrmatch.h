/* addrmatch.h - Postfix's client address-match lists: mynetworks,
 * smtpd_client_event_limit_exceptions, smtpd_authorized_xclient_hosts, ...
 *
 * A list holds, in order (split as conf_list() splits), items that are:
 *   1.2.3.4, 1.2.3.0/24, ::1, [::1], [2001:db8::]/32   an address or network
 *   type:table       the client address is looked up (then the name); a
 *                    key that is found matches, whatever its value
 *   /file/name       the words of the file are items themselves
 *   name, .domain    the client host name (".domain": any subdomain too;
 *                    "domain" also matches subdomains when the parameter is
 *                    listed in parent_domain_matches_subdomains)
 *   !item            a match ends the search with "no match"
 * IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are compared as IPv4.
 */
#ifndef POSTERN_ADDRMATCH_H
#define POSTERN_ADDRMATCH_H

struct strbuf;
struct addrmatch;

/* Build a list from an expanded parameter value; `param_name` names it in
 * messages.  NULL with a message in err when an item is malformed or a
 * table or file cannot be opened. */
struct addrmatch *addrmatch_open(const char *param_name, const char *value,
                                 struct strbuf *err);
/* 1 when the client (host name, may be "unknown"; address) matches, 0 when
 * not, -1 when a table could not answer (the caller defers). */
int addrmatch_match(struct addrmatch *list, const char *name, const char *address);
void addrmatch_free(struct addrmatch *list);
/* 1 when the file of a table in the list has changed since it was opened
 * (map_changed); the caller opens the list again. */
int addrmatch_changed(const struct addrmatch *list);

/* Parse an IPv4 or IPv6 address (brackets allowed, ::ffff:a.b.c.d turned
 * into IPv4) into 16 bytes (IPv4 in the first 4); returns the family
 * (AF_INET, AF_INET6) or 0 when it is not an address. */
int addr_parse(const char *text, unsigned char bytes[16]);
/* Write the address in its plain form (IPv4 for a mapped address); returns
 * 0, or -1 when `text` is not an address. */
int addr_normalize(const char *text, char *out, unsigned long size);

#endif
