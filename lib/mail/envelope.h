/* envelope.h - the injection envelope of doc/injection.md in memory:
 * reading it from a descriptor, changing it, writing it out again.
 * Records this code does not know are kept and written back in order. */
#ifndef POSTERN_ENVELOPE_H
#define POSTERN_ENVELOPE_H

#include <stddef.h>

#include "config.h"

struct strbuf;

/* Longest record accepted (an address, an attribute). */
#define ENVELOPE_RECORD_MAX 8192

struct envelope {
    char *sender;               /* F value ("" = null sender) */
    struct strlist records;     /* every record after F, type byte first:
                                   "Tbob@example.com", "PNOTIFY=NEVER",
                                   "Aorigin=local" */
};
#define ENVELOPE_INIT { NULL, STRLIST_INIT }

/* Read an envelope up to its empty record.  Returns 0, or the injection
 * exit code with the reason in err: 55 (cannot read it), 91 (format
 * error: no F first, no T, a record with LF, no end record). */
int envelope_read(int fd, struct envelope *env, struct strbuf *err);
/* Append the envelope as records (with the end record) to out. */
void envelope_write(const struct envelope *env, struct strbuf *out);
/* The value of message attribute `name` (A record), or NULL. */
const char *envelope_attr(const struct envelope *env, const char *name);
/* Add records. */
void envelope_add(struct envelope *env, int type, const char *value);
void envelope_free(struct envelope *env);

#endif
