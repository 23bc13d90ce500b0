/* cachefile.h - a small cache that short-lived processes share through one
 * file: keys to values with an expiry time, read under a shared flock and
 * rewritten in place under an exclusive one.  It holds what Postfix keeps
 * in tlsmgr's and the SASL client's databases (smtp_tls_session_cache_*,
 * smtp_sasl_auth_cache_*) for the smtp runners, which live for a few
 * messages only.  A cache, not a store: no fsync, a torn or strange file
 * reads as fewer entries, and every failure means "not cached".
 *
 * The file is one line per entry, "EXPIRES KEY HEXVALUE\n" (unix time,
 * a key of printable bytes without white space, the value in hex); it is
 * made 0600 and used only when it is a regular file that belongs to the
 * caller's uid and nobody else may read (the values are secrets: TLS
 * master keys).  At most CACHEFILE_MAX_ENTRIES entries: the ones closest
 * to expiring go first.
 */
#ifndef POSTERN_CACHEFILE_H
#define POSTERN_CACHEFILE_H

#include <stddef.h>

#include "strbuf.h"

#define CACHEFILE_MAX_ENTRIES 1000
#define CACHEFILE_MAX_KEY 512
#define CACHEFILE_MAX_VALUE 16384        /* bytes, before hex */

/* The value of key, unexpired at `now` (unix time): 1 with the bytes in
 * out, 0 when there is none, -1 when the file cannot be used (errno;
 * EPERM: owner or mode wrong). */
int cachefile_get(const char *path, const char *key, long long now, struct strbuf *out);
/* Store key's value until `expires` (replacing an older one; expired
 * entries are dropped).  0, or -1 (errno; EINVAL: a key or value out of
 * bounds). */
int cachefile_put(const char *path, const char *key, const void *value, size_t len,
                  long long expires, long long now);
/* Forget key.  0, or -1 (errno). */
int cachefile_delete(const char *path, const char *key, long long now);

#endif
