/* milter_client.h - the MTA's side of Sendmail milters (MILTER_README):
 * a list of milters (smtpd_milters, non_smtpd_milters) connected and
 * negotiated, each event sent to them in order with its stage's macros,
 * their answers read as Postfix's milter8 client reads them, and at the
 * end of a message the header and body sent and the changes they ask
 * for applied to the message and envelope.  The wire format is
 * milter_proto.h; what a caller says to its client (an SMTP reply, a
 * status on fd 3) and how it logs a verdict stays with the caller
 * (bin/postern-smtpd/milter.c, bin/postern-rewrite.c).
 *
 * An answer is NULL (go on), "D" (discard), "H" (hold), "S" (shut down:
 * 421), or an SMTP reply ("550 5.7.1 text").  A milter that fails
 * (connect, timeout, protocol error) answers with milter_default_action
 * from then on.
 */
#ifndef POSTERN_MILTER_CLIENT_H
#define POSTERN_MILTER_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"
#include "milter_proto.h"
#include "rewrite.h"
#include "strbuf.h"
#include "strlist.h"

/* The value of a Sendmail macro ("j", "{client_addr}") now: 1 with out
 * set, 0 when it has none (milter_macro_defaults may then give one). */
typedef int (*milter_macro_fn)(void *ctx, const char *name, struct strbuf *out);

struct milter;

/* The milters of one session or submission. */
struct milter_set {
    struct milter *list;
    size_t count;
    milter_macro_fn macro_value;
    void *macro_ctx;
    struct strbuf reply;        /* a milter's reply, kept until the next one */
};
#define MILTER_SET_INIT { NULL, 0, NULL, NULL, STRBUF_INIT }

/* Read milter_macro_defaults (once per process). */
void milter_macro_defaults_load(void);
/* Add the milters a list parameter names ("smtpd_milters",
 * "non_smtpd_milters": "inet:host:port", "unix:path", or "{ name,
 * key=value ... }"); nothing is connected yet. */
void milter_set_add(struct milter_set *set, const char *param);
/* Connect and negotiate each milter, then send CONNECT (client name,
 * address, port) until one answers other than "go on". */
const char *milter_set_connect(struct milter_set *set, const char *client_name,
                               const char *client_addr, unsigned port);
/* Send an event (SMFIC_HELO, _MAIL, _RCPT, _DATA, _UNKNOWN) to every milter
 * still listening, after the macros of `stage` (-1: none); `skip` is the
 * event's SMFIP_NO* bit, `noreply` its SMFIP_NR_* bit.  `message_event`:
 * a milter that accepted the message hears no more of it. */
const char *milter_set_event(struct milter_set *set, int event, uint32_t skip, uint32_t noreply,
                             int stage, const struct strbuf *data, int message_event);
/* What an answer of the calls above means, for smtpd and for local
 * submissions alike: the log line's action ("milter-hold",
 * "milter-discard", "milter-reject", or "reject" for an answer that makes
 * no sense) and its text, and the reply to give, or NULL for a hold or a
 * discard, after which the mail goes on. */
const char *milter_answer_reply(const char *answer, const char **action, const char **text);
/* SMFIC_ABORT: the transaction ends; the milters wait for the next. */
void milter_set_abort(struct milter_set *set);
/* SMFIC_QUIT and close every milter. */
void milter_set_quit(struct milter_set *set);
/* Close and forget every milter. */
void milter_set_free(struct milter_set *set);

/* MAIL or RCPT data: "<path>" then each ESMTP argument of `args` (the
 * text after the path), NUL-terminated. */
void milter_envelope_data(struct strbuf *data, const char *path, const char *args);

/* The message as the milters see and change it: header fields, one
 * "Name: value\n" string each (continuation lines kept; the first `own`
 * are the MTA's and hidden from the milters), and the body. */
struct milter_message {
    struct strlist headers;
    size_t own;
    int held_fd;                /* the text as given */
    int body_fd;                /* held_fd, or a memfd of a replaced body */
    off_t body_offset;
};
#define MILTER_MESSAGE_INIT { STRLIST_INIT, 0, -1, -1, 0 }

/* milter_header_checks for one message: what the tables decided about
 * the header fields the milters added or changed. */
struct milter_checks {
    const struct rewrite_config *cfg;   /* NULL: no milter_header_checks */
    struct rewrite_message_info info;
    struct rewrite_actions actions;     /* DISCARD, HOLD, FILTER, REDIRECT, BCC, log lines */
    struct strbuf reject;               /* REJECT's "X.Y.Z text" */
    int rejected;
};

/* The end of a message: the text on fd (its first own_bytes are the
 * MTA's own header fields) to each milter in order, each milter's changes
 * applied to msg and env (and checked by mc), until one refuses.  The
 * answer (NULL, "D", or a reply; never "H": *hold is set instead).  The
 * caller writes msg (milter_message_write) and frees it.  A msg already
 * read (milter_message_read) is taken as it is. */
const char *milter_set_message(struct milter_set *set, int fd, size_t own_bytes,
                               struct milter_message *msg, struct envelope *env,
                               struct milter_checks *mc, int *hold);
/* Read the text on fd (its first own_bytes the MTA's own header fields)
 * into msg, which starts as MILTER_MESSAGE_INIT: 0, or -1 on a read
 * error.  milter_set_message does it itself. */
int milter_message_read(int fd, size_t own_bytes, struct milter_message *msg);
/* Write the message, changed, through put (0, or -1 to stop): 0, or -1. */
int milter_message_write(const struct milter_message *msg,
                         int (*put)(void *ctx, const void *bytes, size_t n), void *ctx);
void milter_message_free(struct milter_message *msg);

#endif
