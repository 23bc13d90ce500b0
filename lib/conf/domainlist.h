/* domainlist.h - Postfix domain lists: mydestination, relay_domains,
 * virtual_alias_domains, virtual_mailbox_domains (and smtpd's checks that
 * reuse them).
 *
 * A list holds, in order: domain names ("example.com", ".example.com"),
 * lookup tables ("hash:/etc/postern/relay_domains": the domain is looked up
 * and a match is any key that is found, whatever its value), file names
 * ("/etc/postern/domains": the words of the file, '#' comments, are items
 * themselves) and negations ("!name": a match ends the search with "no").
 * Matching is case-insensitive.  Subdomains: ".example.com" always matches
 * every subdomain; "example.com" matches "sub.example.com" only when the
 * parameter is listed in parent_domain_matches_subdomains (for tables the
 * parents are looked up as "example.com" or ".example.com" accordingly).
 * mydestination, virtual_alias_domains and virtual_mailbox_domains are
 * Postfix's string lists instead: a name or table key must equal the
 * domain, and neither ".example.com" nor a parent matches a subdomain.
 */
#ifndef POSTERN_DOMAINLIST_H
#define POSTERN_DOMAINLIST_H

struct strbuf;
struct domainlist;

/* 1 when parameter `param_name` is listed in parent_domain_matches_subdomains. */
int domain_parent_matches(const char *param_name);

/* Build a list from an expanded parameter value.  `param_name` names the
 * parameter in error messages and decides the subdomain rule.  NULL with a
 * message in err when a table or file cannot be opened. */
struct domainlist *domainlist_open(const char *param_name, const char *value,
                                   struct strbuf *err);
/* The list of a parameter, from the current configuration. */
struct domainlist *domainlist_from_param(const char *param_name,
                                         struct strbuf *err);
/* 1 when the domain matches, 0 when not, -1 (MAP_RETRY) when a table could
 * not answer: the caller defers (4.3.0), never bounces. */
int domainlist_match(struct domainlist *list, const char *domain);
/* 1 when the list has no items (e.g. relay_domains unset). */
int domainlist_empty(const struct domainlist *list);
void domainlist_free(struct domainlist *list);
/* 1 when the file of a table in the list has changed since it was opened
 * (map_changed); the caller opens the list again. */
int domainlist_changed(const struct domainlist *list);

#endif
