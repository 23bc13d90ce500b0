/* addrlist.h - finding the addresses in an address header's value or in a
 * sendmail command-line argument: an RFC 5322 address-list read leniently
 * (display names, <angle addresses>, comments, quoted strings, groups),
 * with no more parsing than that. */
#ifndef POSTERN_ADDRLIST_H
#define POSTERN_ADDRLIST_H

#include <stddef.h>

/* Called once per address: the addr-spec occupies text[start..end) (for
 * "Joe <joe@example.com>" the part between the angle brackets), and
 * `address` is that span with comments and white space removed. */
typedef void addrlist_fn(const char *text, size_t start, size_t end,
                         const char *address, void *ctx);

/* Call fn for each non-empty address in text; returns how many. */
size_t addrlist_scan(const char *text, addrlist_fn *fn, void *ctx);

#endif
