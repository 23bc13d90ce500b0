/* envelope.h - the injection envelope of doc/injection.md in memory:
 * reading it from a descriptor, changing it, writing it out again.
 * Records this code does not know are kept and written back in order. */
#ifndef POSTERN_ENVELOPE_H
#define POSTERN_ENVELOPE_H

#include <stddef.h>

#include "config.h"

struct strbuf;

/* Limits of doc/injection.md. */
#define ENVELOPE_RECORD_MAX     8192            /* bytes a record (longer: 91) */
#define ENVELOPE_ADDRESS_MAX    2048            /* bytes an F or T value (strict: 11) */
#define ENVELOPE_TOTAL_MAX      (16L << 20)     /* bytes in all (more: 91) */

struct envelope {
    char *sender;               /* F value ("" = null sender) */
    struct strlist records;     /* every record after F, type byte first:
                                   "Tbob@example.com", "PNOTIFY=NEVER",
                                   "Aorigin=local" */
};
#define ENVELOPE_INIT { NULL, STRLIST_INIT }

/* How closely envelope_read() looks. */
enum envelope_check {
    /* a stage that passes the envelope on (rewrite, a filter): records
     * it does not know are kept; an envelope that ends early is 91 */
    ENVELOPE_LENIENT,
    /* the queue, which stores it: also F and T at most
     * ENVELOPE_ADDRESS_MAX bytes (11), T not empty, P only after T or P,
     * P and A in "name=value" form, no record type the queue does not
     * know (91); an envelope that ends early is a read error (55) */
    ENVELOPE_STRICT,
};

/* Read an envelope up to its empty record.  Returns 0, or the injection
 * exit code (INJECT_EXIT_* of outcome.h) with the reason in err: 55
 * (cannot read it), 91 (format error: no F first, no T, a record with LF,
 * too long, no end record), 11 (strict: an address too long).  An
 * envelope with no byte at all was withdrawn by its writer, which has said
 * why itself: the exit code is the same, but err is left empty. */
int envelope_read(int fd, struct envelope *env, enum envelope_check check,
                  struct strbuf *err);
/* Append the envelope as records (with the end record) to out. */
void envelope_write(const struct envelope *env, struct strbuf *out);
/* The value of message attribute `name` (A record), or NULL. */
const char *envelope_attr(const struct envelope *env, const char *name);
/* Add records. */
void envelope_add(struct envelope *env, int type, const char *value);
/* Remove every message attribute `name` (A record); returns how many. */
size_t envelope_remove_attr(struct envelope *env, const char *name);
void envelope_free(struct envelope *env);

#endif
