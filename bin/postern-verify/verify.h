/* verify.h - the parts of postern-verify: main.c (the service: socket,
 * requests, Postfix's rules for answering and probing), cache.c (the
 * address_verify_map cache), probe.c (probe messages into the queue). */
#ifndef POSTERN_VERIFY_H
#define POSTERN_VERIFY_H

#include <stddef.h>

struct strbuf;
struct verify_entry;

/* A probe without an answer for this long may be sent again (Postfix's
 * PROBE_TTL). */
#define VERIFY_PROBE_TTL 1000

struct verify_settings {
    long long positive_expire, positive_refresh;    /* seconds */
    long long negative_expire, negative_refresh;
    int negative_cache;
    long long cleanup_interval;
    long long sender_ttl;
    const char *sender;                             /* address_verify_sender */
    const char *myorigin;
};

/* cache.c */
/* Open address_verify_map (spec; "" keeps it in memory only), read what
 * a former run left and drop what has expired.  0, or -1 with err set. */
int cache_open(const char *spec, const struct verify_settings *s, struct strbuf *err);
/* The entry of an address, or NULL. */
const char *cache_get(const char *address);
void cache_put(const char *address, const struct verify_entry *entry);
void cache_delete(const char *address);
/* Remove expired entries and rewrite the journal. */
void cache_cleanup(long long now, const struct verify_settings *s);
size_t cache_count(void);
void cache_close(void);

/* probe.c: read main.cf's rewriting settings for probes (at start and
 * after SIGHUP; exits as a temporary failure when a table cannot be
 * opened). */
void probe_rewrite_load(void);
/* probe.c: send a probe for address into the queue; 0, or -1 (logged). */
int probe_send(const char *address, const struct verify_settings *s, long long now);
/* The probe sender for now: address_verify_sender with its time stamp
 * (address_verify_sender_ttl) and @$myorigin; "" for the null sender. */
void probe_sender(const struct verify_settings *s, long long now, struct strbuf *out);

#endif
