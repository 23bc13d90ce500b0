/* lookup_proto.h - the wire protocol of the lookup service, postern-lookup
 * (doc/lookup.md): what the proxy: client (maps/proxy.c) sends and what
 * the service answers, with the bounds both sides keep.
 *
 * A request is three NUL-terminated fields:
 *     'L' TABLE NUL  OPTIONS NUL  KEY NUL
 * TABLE is "type:name" (1..LOOKUP_TABLE_MAX bytes), OPTIONS a string of
 * option letters (LOOKUP_OPT_*; empty for none), KEY up to LOOKUP_KEY_MAX
 * bytes.  The answer is one NUL-terminated record, a status letter and
 * its text (up to LOOKUP_VALUE_MAX bytes):
 *     'F' VALUE   found          'N'          not found
 *     'R' REASON  try again      'D' REASON   table not in proxy_read_maps
 *     'B' REASON  bad request; the service closes the connection
 * A connection carries any number of requests, answered in order.
 */
#ifndef POSTERN_LOOKUP_PROTO_H
#define POSTERN_LOOKUP_PROTO_H

#include <stddef.h>

struct strbuf;

/* the service's socket, in queue_directory (doc/privileges.md) */
#define LOOKUP_SOCKET       "public/lookup"

#define LOOKUP_TABLE_MAX    1024
#define LOOKUP_OPTIONS_MAX  8
#define LOOKUP_KEY_MAX      4096
#define LOOKUP_VALUE_MAX    65536
/* the longest request: 'L', the three fields and their NULs */
#define LOOKUP_REQUEST_MAX  (1 + LOOKUP_TABLE_MAX + LOOKUP_OPTIONS_MAX + LOOKUP_KEY_MAX + 3)

#define LOOKUP_OPT_KEEP_CASE 'k'        /* MAP_OPEN_KEEP_CASE */
#define LOOKUP_OPT_NO_REGSUB 'r'        /* MAP_OPEN_NO_REGSUB */

#define LOOKUP_FOUND     'F'
#define LOOKUP_NOTFOUND  'N'
#define LOOKUP_RETRY     'R'
#define LOOKUP_DENIED    'D'
#define LOOKUP_BAD       'B'

/* One parsed request; the strings point into the parsed buffer. */
struct lookup_request {
    const char *table;
    const char *key;
    unsigned options;               /* MAP_OPEN_* */
};

/* Append a request to out.  -1 (nothing appended) when the table or key
 * is longer than the protocol allows or options has bits it cannot say. */
int lookup_request_format(struct strbuf *out, const char *table, unsigned options,
                          const char *key);
/* Parse the request at the start of buf[0..len).  1: one request, its
 * length in *used (the strings point into buf, which must be writable:
 * nothing is copied); 0: incomplete, more bytes needed; -1: malformed,
 * with the reason in err. */
int lookup_request_parse(char *buf, size_t len, struct lookup_request *req,
                         size_t *used, struct strbuf *err);

/* Append an answer record (status letter and text) to out; a text longer
 * than LOOKUP_VALUE_MAX becomes a 'R' answer saying so. */
void lookup_reply_format(struct strbuf *out, int status, const char *text);

#endif
