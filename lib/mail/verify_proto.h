/* verify_proto.h - the address verification service, postern-verify
 * (Postfix's verify(8)): its wire protocol, the client smtpd and qmgr use,
 * and the cache entries it keeps (postern-verify(8)).
 *
 * A connection carries any number of requests, each answered in order;
 * every field ends with a NUL byte:
 *     'Q' ADDRESS NUL                    what is known about ADDRESS
 *     'U' STATUS ADDRESS NUL TEXT NUL    a probe's outcome (qmgr)
 * The answer is one record, a status letter and a text:
 *     Q: STATUS TEXT NUL    K deliverable, Z undeliverable for now, D
 *                           undeliverable, P a probe is under way
 *     U: 'K' NUL            taken
 *     'B' REASON NUL        a bad or refused request; the service closes
 * ADDRESS is 1..VERIFY_ADDRESS_MAX bytes without NUL, LF or TAB; TEXT up
 * to VERIFY_TEXT_MAX bytes.  Only the service's own user and root may
 * send U (SO_PEERCRED): anyone else could write the cache.
 */
#ifndef POSTERN_VERIFY_PROTO_H
#define POSTERN_VERIFY_PROTO_H

#include <stddef.h>

#include "outcome.h"

struct strbuf;

/* the service's socket, in queue_directory */
#define VERIFY_SOCKET       "public/verify"

#define VERIFY_ADDRESS_MAX  1024
#define VERIFY_TEXT_MAX     1024
#define VERIFY_REQUEST_MAX  (2 + VERIFY_ADDRESS_MAX + VERIFY_TEXT_MAX + 2)

/* What is known about an address: the outcome letters of outcome.h, and
 * P while the first probe is out (Postfix's DEL_RCPT_STAT_TODO). */
enum verify_status {
    VERIFY_OK = OUTCOME_SENT,
    VERIFY_DEFER = OUTCOME_DEFERRED,
    VERIFY_BOUNCE = OUTCOME_BOUNCED,
    VERIFY_TODO = 'P',
};

#define VERIFY_QUERY    'Q'
#define VERIFY_UPDATE   'U'
#define VERIFY_BAD      'B'

/* One parsed request; the strings point into the parsed buffer. */
struct verify_request {
    int type;                   /* VERIFY_QUERY or VERIFY_UPDATE */
    int status;                 /* U: enum verify_status (not TODO) */
    const char *address;
    const char *text;           /* U only */
};

/* Parse the request at the start of buf (len bytes).  Returns the bytes
 * it takes (> 0), 0 when more bytes are needed, -1 when it is malformed
 * (the reason in err).  buf must stay as it is while req is used. */
long verify_request_parse(const char *buf, size_t len, struct verify_request *req,
                          struct strbuf *err);

/* A cache entry in Postfix's form "STATUS:PROBED:UPDATED:TEXT": STATUS
 * 0 deliverable, 1 undeliverable for now, 2 undeliverable, 3 probe out;
 * PROBED the time the probe under way was sent (0: none); UPDATED the
 * time the last outcome came (0: none yet). */
struct verify_entry {
    int status;                 /* enum verify_status */
    long long probed, updated;
    const char *text;           /* points into the parsed value */
};
/* 0, or -1 when value is not an entry (or both times are 0). */
int verify_entry_parse(const char *value, struct verify_entry *entry);
/* Append the entry's form to out. */
void verify_entry_format(const struct verify_entry *entry, struct strbuf *out);

/* Ask the service at socket_path about address; 0 with *status and text
 * set, or -1 with the reason in text and errno set: the service could not
 * be reached or did not answer within timeout_s seconds (errno from
 * connect, send or read), or answered nonsense (EPROTO). */
int verify_query(const char *socket_path, const char *address, int timeout_s, int *status,
                 struct strbuf *text);
/* Tell the service a probe's outcome; 0, -1 with the reason in why when
 * the service could not be reached or did not answer within timeout_s
 * seconds, -2 with the reason in why when it (or this side) refused the
 * update. */
int verify_update(const char *socket_path, const char *address, int status, const char *text,
                  int timeout_s, struct strbuf *why);

#endif
