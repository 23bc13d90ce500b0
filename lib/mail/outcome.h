/* outcome.h - postern's one outcome vocabulary: every way a program says
 * "done", "try again" or "failed", and the mapping between them (STYLE.md
 * habit 4).  Nothing else in the tree defines these numbers or letters.
 *
 *   outcome letters   K delivered / queued, Z try again, D failed: the
 *                     status channel of injection (doc/injection.md), the
 *                     results of delivery runners (doc/delivery.md) and qmgr
 *   injection exits   qmail-queue(8)'s codes, as every stage of interface 2
 *                     exits (0 success; 11, 31, 91 permanent; others
 *                     temporary)
 *   sysexits          <sysexits.h> (EX_TEMPFAIL 75, EX_NOUSER 67, ...): what
 *                     sendmail(1), runners in shell mode and postern exit
 *                     with, and what foreign programs (pipe, .forward) give
 *   queue file status the per-recipient status byte of doc/queue-format.md
 *   SMTP reply class  2, 3, 4, 5 of a three-digit reply code
 *   RFC 3463 codes    "X.Y.Z": class 2 / 4 / 5 gives the outcome
 */
#ifndef POSTERN_OUTCOME_H
#define POSTERN_OUTCOME_H

#include <stddef.h>
#include <sysexits.h>   /* the system's one definition of EX_* (64-78) */

struct strbuf;

/* K/Z/D, as the status channel and runner results spell them. */
enum outcome {
    OUTCOME_PENDING = 0,        /* no result yet */
    OUTCOME_SENT = 'K',         /* delivered or queued (2.x.x) */
    OUTCOME_DEFERRED = 'Z',     /* try again later (4.x.x) */
    OUTCOME_BOUNCED = 'D',      /* failed permanently (5.x.x) */
};

/* Exit codes of qmail-queue(8), as doc/injection.md lists them. */
enum inject_exit {
    INJECT_EXIT_OK = 0,
    INJECT_EXIT_ADDRESS_TOO_LONG = 11,  /* permanent */
    INJECT_EXIT_REFUSED = 31,           /* permanent: fd 3 says why */
    INJECT_EXIT_NO_MEMORY = 51,
    INJECT_EXIT_TIMEOUT = 52,
    INJECT_EXIT_WRITE_ERROR = 53,
    INJECT_EXIT_MESSAGE_READ = 54,
    INJECT_EXIT_ENVELOPE_READ = 55,
    INJECT_EXIT_REFUSED_FOR_NOW = 71,   /* fd 3 says why */
    INJECT_EXIT_INTERNAL = 81,
    INJECT_EXIT_ENVELOPE_FORMAT = 91,   /* permanent */
};

/* qmail's delivery-program codes (qmail-command(8)), for .forward and pipe
 * commands: 100 fails permanently, 111 temporarily. */
enum qmail_exit {
    QMAIL_EXIT_PERMANENT = 100,
    QMAIL_EXIT_TEMPORARY = 111,
};

/* The per-recipient status byte of a queue file (doc/queue-format.md). */
enum rcpt_status {
    RCPT_TODO = 'R',            /* not delivered yet */
    RCPT_BOUNCE = 'B',          /* failed; the notice is not sent yet */
    RCPT_DONE = 'D',            /* delivered, or failed and notified */
};

/* The class of an SMTP reply code (RFC 5321 section 4.2.1). */
enum smtp_reply_class {
    REPLY_POSITIVE = 2,
    REPLY_INTERMEDIATE = 3,
    REPLY_TRANSIENT = 4,
    REPLY_PERMANENT = 5,
};

/* 1 when an injection exit code is a permanent failure (11, 31, 91). */
int inject_exit_permanent(int code);
/* What an injection exit code means, in a few words ("envelope format
 * error"); "queue file write error" for codes without a meaning of their own. */
const char *inject_exit_text(int code);

/* The outcome of an RFC 3463 code's class: '2' sent, '5' bounced, anything
 * else deferred. */
enum outcome outcome_of_dsn(const char *dsn);
/* The outcome of a program's exit status: 0 sent; EX_TEMPFAIL, EX_OSERR,
 * QMAIL_EXIT_TEMPORARY and a signal (-1) deferred; the rest bounced. */
enum outcome outcome_of_exit(int code);
/* What a foreign program's sysexits code means, as Postfix's sys_exits
 * table says it: the text ("temporary failure") and its RFC 3463 code in
 * *dsn (EX_TEMPFAIL and EX_OSERR 4.3.0, EX_NOUSER 5.1.1, ...); NULL for a
 * code that is not one of EX_USAGE..EX_CONFIG. */
const char *sysexit_text(int code, const char **dsn);
/* "sent", "deferred", "bounced" (Postfix's status= words). */
const char *outcome_word(enum outcome outcome);

/* The class of a three-digit SMTP reply code; 0 when it is none. */
int smtp_reply_class(int code);

/* Length of the RFC 3463 code "X.Y.Z" at the start of text (class 2, 4 or
 * 5, then 1-3 and 1-3 digits, then a space or the end), or 0. */
size_t dsn_code_length(const char *text);
/* Split "X.Y.Z text" into code and text; without a valid code, fallback
 * is the code and the whole status the text. */
void dsn_split(const char *status, const char *fallback, struct strbuf *dsn,
               struct strbuf *text);
/* Split "[NNN ]X.Y.Z text" (a Z or D record of the status channel) into
 * the SMTP reply code (default_code when none is given) and the rest. */
const char *reply_split(const char *value, int default_code, int *code);

#endif
