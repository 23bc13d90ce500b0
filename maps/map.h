/* map.h - lookup tables: one interface for every `type:name`.
 *
 * A table is opened by its Postfix name ("hash:/etc/postern/virtual",
 * "pcre:/etc/postern/helo.pcre", "inline:{ a=b, c=d }", "proxy:..." is
 * accepted and means the same table).  A lookup answers one of three things,
 * and callers must keep them apart:
 *   MAP_FOUND     the key is there; its value is in `value`
 *   MAP_NOTFOUND  the key is not there
 *   MAP_RETRY     the table could not answer now (a database is down, a file
 *                 vanished): the caller turns this into a 4xx / deferral,
 *                 never a 5xx and never "not found".
 * Errors in the table's own text (a regex that does not compile, a line
 * without a value) are configuration errors found at open time, reported
 * with file:line.
 *
 * Each type lives in its own maps/TYPE.c and registers a struct map_type in
 * maps/map.c.  The search orders Postfix applies to addresses, domains and
 * client IP addresses are functions here, so every caller searches alike.
 */
#ifndef POSTERN_MAP_H
#define POSTERN_MAP_H

#include <stddef.h>

struct strbuf;

enum map_result {
    MAP_RETRY = -1,
    MAP_NOTFOUND = 0,
    MAP_FOUND = 1,
};

/* What a table is, for callers that search by partial keys. */
#define MAP_PATTERN     0x01    /* pcre, regexp, cidr: matched against the
                                   whole key; partial keys are not tried */
#define MAP_CAN_ITERATE 0x02    /* map_iterate() works (postern map -s) */
#define MAP_SLOW        0x04    /* pgsql, mysql, sqlite: a lookup may wait on a
                                   server; the lookup service runs it in the
                                   table's own thread (doc/lookup.md) */

struct map;

/* Open a table by "type:name".  NULL with a message in err (including
 * file:line for syntax errors) when the table cannot be used. */
struct map *map_open(const char *spec, struct strbuf *err);
/* map_open() with options:
 *   MAP_OPEN_KEEP_CASE  keep keys as they are given and as the table holds
 *                       them instead of folding them to lower case
 *                       (postern map -f);
 *   MAP_OPEN_NO_REGSUB  refuse a pcre or regexp table whose results use
 *                       $1-style substitution (Postfix's DICT_FLAG_NO_REGSUB,
 *                       part of its "paranoid" flags): for tables whose
 *                       answer must not be chosen by whoever chooses the
 *                       key (virtual_mailbox_maps, virtual_uid_maps,
 *                       virtual_gid_maps).  The open fails with file:line;
 *                       other types have nothing to refuse. */
#define MAP_OPEN_KEEP_CASE 0x1000
#define MAP_OPEN_NO_REGSUB 0x2000
struct map *map_open_flags(const char *spec, unsigned options, struct strbuf *err);
/* Look a key up.  Keys of fixed-key tables are folded to lower case, as
 * Postfix does; pattern tables see the key as given.  With MAP_NOTFOUND,
 * value is empty or says what the table knows of the absence (the lookup
 * service's DNS tables: "nxdomain" or "nodata"). */
int map_lookup(struct map *map, const char *key, struct strbuf *value);
/* n lookups, as map_lookup each (values[i], results[i]); those in proxy:
 * tables are asked of the lookup service together, in one round trip, and
 * it resolves DNS tables' lookups concurrently. */
void map_lookup_several(struct map *const *maps, const char *const *keys, size_t n,
                        struct strbuf *values, int *results);
void map_close(struct map *map);
/* The spec the table was opened with, for log lines. */
const char *map_spec(const struct map *map);
/* Whether the file a file table (texthash, hash/btree/cdb, pcre, regexp,
 * cidr) was read from has changed since (Postfix's "table has changed"):
 * another inode, size or modification time.  One stat(2).
 *   0                  unchanged; also for the other types, for a file
 *                      that is gone (what was read keeps answering), and
 *                      for a change said before, until it is time to try
 *                      again;
 *   MAP_CHANGED        a change not said before: open the table again
 *                      (and say so when that fails);
 *   MAP_CHANGED_AGAIN  the same change, MAP_REOPEN_RETRY_SECONDS after it
 *                      was said: the caller's new table could not be
 *                      opened then; try again, quietly.
 * A caller that keeps the old table when the new one cannot be opened so
 * tries at most once per MAP_REOPEN_RETRY_SECONDS and warns once per
 * change. */
#define MAP_CHANGED 1
#define MAP_CHANGED_AGAIN 2
#define MAP_REOPEN_RETRY_SECONDS 10
int map_changed(struct map *map);
/* From now on a change not said before reads as MAP_CHANGED_AGAIN: the
 * table is opened again, and a failure is not said, because another
 * process says it (a zygote's child rechecks what the zygote watches). */
void map_changes_quiet(void);

unsigned map_flags(const struct map *map);
/* Call fn for every key and value; stops early when fn returns non-zero.
 * Returns 0, or -1 when the type cannot be listed. */
int map_iterate(struct map *map,
                int (*fn)(const char *key, const char *value, void *ctx),
                void *ctx);
/* The registered type names, in order, for `postern conf -m`; NULL-ended. */
const char *const *map_type_names(void);

/* Where the lookup service listens (queue_directory/public/lookup; set by
 * config_load()).  proxy: tables connect there on their first lookup;
 * when it cannot be reached a lookup answers MAP_RETRY. */
void map_set_lookup_socket(const char *path);
/* From map_memo_enable() on, this process remembers the lookup service's
 * definite answers (found, not found; never a failure, never dns:), up to
 * 64, until map_memo_forget(): smtpd asks once per transaction what its
 * checks at RCPT and rewriting at the end of DATA both want to know. */
void map_memo_enable(void);
void map_memo_forget(void);
/* Tables whose type needs the name service or a client library (unix:,
 * pgsql:, mysql:, sqlite:) are opened in this process only after this call, which links their
 * code in: only dynamically linked programs make it (postern-lookup,
 * postern).  Everywhere else such a table, with or without proxy:, is
 * looked up through the lookup service, so that no static program calls
 * NSS (glibc would load libnss_* modules into it). */
void map_register_dynamic_types(void);
/* 1 when the type of "type:name" is one of those (unix, pgsql, mysql,
 * sqlite, ldap, dns). */
int map_is_service_type(const char *spec);

/* A parameter's value is often a list of tables ("hash:a, pcre:b"): they
 * are searched in order and the first that finds (or fails) answers. */
struct maplist;
/* Open every table named in an expanded parameter value (split as
 * list_split() does).  An empty value gives an empty list.  NULL with err
 * set when a table cannot be opened. */
struct maplist *maplist_open(const char *value, struct strbuf *err);
/* maplist_open() with map_open_flags() options for every table. */
struct maplist *maplist_open_flags(const char *value, unsigned options,
                                   struct strbuf *err);
int maplist_lookup(struct maplist *list, const char *key, struct strbuf *value);
size_t maplist_count(const struct maplist *list);
struct map *maplist_at(const struct maplist *list, size_t i);
void maplist_close(struct maplist *list);
/* When any table of the list has changed: MAP_CHANGED when one has a
 * change not said before, else MAP_CHANGED_AGAIN when one is due to be
 * tried again, else 0 (map_changed). */
int maplist_changed(const struct maplist *list);

/* ---- Postfix's search orders ---- */

/* Which key form answered an address search. */
enum addr_key_form {
    ADDR_KEY_FULL,          /* user+ext@domain (or the whole key for patterns) */
    ADDR_KEY_NOEXT,         /* user@domain */
    ADDR_KEY_LOCAL_EXT,     /* user+ext */
    ADDR_KEY_LOCAL,         /* user */
    ADDR_KEY_DOMAIN,        /* @domain */
};

/* Search an address as virtual(5), canonical(5) and aliases do:
 * user+ext@domain, user@domain, user+ext, user, @domain.  Extensions are
 * split at the first of the characters in `delimiters` (recipient_delimiter;
 * "" or NULL: no extensions).  The bare localpart forms are tried only when
 * `local_domain` is set (the domain is one of ours: $myorigin,
 * $mydestination, ...).  Pattern tables get the whole address only.  An
 * address without '@' is searched as localpart only.  `form`, when not
 * NULL, says which key answered. */
int map_search_address(struct maplist *maps, const char *address,
                       const char *delimiters, int local_domain,
                       struct strbuf *value, enum addr_key_form *form);

/* Search a domain: the domain itself, then its parents.  With
 * `parent_matches` (the parameter is listed in
 * parent_domain_matches_subdomains) a key "example.com" also matches
 * "sub.example.com"; without it only ".example.com" keys match
 * subdomains.  Pattern tables get the domain only. */
int map_search_domain(struct maplist *maps, const char *domain,
                      int parent_matches, struct strbuf *value);
/* The same with the domain as a partial key, which pattern tables never
 * see (transport(5): they get the whole address only). */
int map_search_domain_fixed(struct maplist *maps, const char *domain,
                            int parent_matches, struct strbuf *value);

/* Search a mail address as access(5) does (check_sender_access,
 * check_recipient_access): user+ext@domain, user@domain, the domain and
 * its parents (as map_search_domain), user+ext@, user@.  Extensions as in
 * map_search_address.  Pattern tables get the whole address only; an
 * address without '@' (the null sender's lookup key "<>") is looked up
 * whole and nothing else. */
int map_search_mail_access(struct maplist *maps, const char *address,
                           const char *delimiters, int parent_matches,
                           struct strbuf *value);

/* Search a client IP address as access(5) does: the full address, then
 * shorter prefixes ("1.2.3.4", "1.2.3", "1.2", "1"; for IPv6 the same by
 * ':'-separated groups of the compressed form: "2001:db8::1",
 * "2001:db8:", "2001:db8", "2001").  Pattern tables (cidr) get the full
 * address.  A string that is not an IP address is looked up whole only.
 * ::ffff:1.2.3.4 stays an IPv6 address: callers that want IPv4 keys for
 * mapped addresses convert them first, as Postfix's smtpd does. */
int map_search_client_ip(struct maplist *maps, const char *ip,
                         struct strbuf *value);

#endif
