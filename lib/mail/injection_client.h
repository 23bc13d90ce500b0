/* injection_client.h - the one client of interface 2 (DESIGN.md,
 * doc/injection.md): how a program of ours hands a message to the
 * injection chain and learns its verdict.  smtpd, sendmail and
 * postern-bounce use it; local(8) forwarding and content-filter
 * re-injection are meant to.
 *
 *     struct injection_client inj;
 *     injection_start(&inj, &options, &err);       // the next stage runs
 *     injection_write(&inj, bytes, n);              // as often as needed
 *     injection_finish(&inj, &envelope, &verdict);  // K, Z or D
 *
 * The next stage is the queue stage (lib/mail/queuestage.c: the queue
 * service, or daemon_directory/postern-queue) or a program named in the
 * options (sendmail: postern-rewrite).  The message goes to its fd 0 as a
 * pipe the caller streams into, or as a regular file that already holds
 * it all (sendmail's memfd: no copy); the envelope goes to its fd 1 only
 * after the whole message (the envelope certifies the message); the
 * verdict comes back on its fd 3 and in its exit code: a `K` record
 * decides at once (the message is on disk), without waiting for the
 * stage to end; `Z`, `D` or no record wait for its exit.  With `rewrite`
 * set, rewrite runs in-process (DESIGN.md, Privileges): the message
 * passes through a rewrite stream on its way into the pipe, and the
 * envelope through rewrite_envelope() at the end; smtpd does this.
 */
#ifndef POSTERN_INJECTION_CLIENT_H
#define POSTERN_INJECTION_CLIENT_H

#include <stddef.h>

#include "outcome.h"
#include "queuestage.h"
#include "rewrite.h"
#include "strbuf.h"

struct envelope;

struct injection_options {
    /* NULL: the queue stage; else the absolute path of the next stage,
     * run with argv[0] only (its base name); it must outlive the
     * injection (messages name it) */
    const char *program;
    /* -1: the caller streams the message with injection_write(); else a
     * regular file holding the whole message from offset 0, given to the
     * stage as its fd 0 (the caller keeps and closes it) */
    int message_fd;
    /* not NULL (and message_fd -1): rewrite in-process with these
     * settings (they must outlive the injection) and this message
     * information; info.sender is rewritten here, the other fields must
     * outlive the injection */
    const struct rewrite_config *rewrite;
    struct rewrite_message_info info;
    /* 1: hold the bytes of injection_write() in a memory file instead of
     * passing them on (smtpd with milters); the caller reads them with
     * injection_held_fd() and passes the message on, perhaps changed,
     * with injection_release() before injection_finish() */
    int hold;
};

struct injection_client {
    struct queue_stage stage;
    const char *program;        /* for messages: "postern-queue", ... */
    int message_fd;             /* the write end of the stage's fd 0, or -1 */
    int envelope_fd;            /* the write end of the stage's fd 1 */
    int status_fd;              /* the read end of the stage's fd 3 */
    long long size;             /* bytes given to injection_write() */
    int cut_short;              /* the stage stopped reading: the rest is dropped */
    int write_errno;            /* a write error other than EPIPE, or 0 */
    int too_many_hops;          /* in-process rewrite found a mail loop */
    const struct rewrite_config *rewrite;
    struct rewrite_stream *stream;
    struct rewrite_message_info info;
    struct strbuf sender;       /* info.sender, rewritten */
    struct strbuf why;          /* rewrite's reason for a refusal */
    struct rewrite_actions actions; /* what header/body checks decided */
    int held_fd;                /* options.hold: the memory file, else -1 */
};

/* What the chain answered. */
struct injection_verdict {
    enum outcome outcome;       /* OUTCOME_SENT, _DEFERRED or _BOUNCED */
    int reply_code;             /* SMTP: 250; the stage's NNN; else 451 / 550 / 554 */
    struct strbuf text;         /* K: the queue id; Z/D: "X.Y.Z text" */
    int from_stage;             /* 1: text is the stage's own record */
    int exit_code;              /* the stage's exit code; -1 when killed */
    struct strbuf detail;       /* for the log, when not from_stage: "postern-queue
                                   exited with status 53", ...; else "" */
};
#define INJECTION_VERDICT_INIT { OUTCOME_PENDING, 0, STRBUF_INIT, 0, 0, STRBUF_INIT }

/* Start the next stage.  0, or -1 with the reason in err (nothing was
 * started; a temporary failure). */
int injection_start(struct injection_client *inj, const struct injection_options *options,
                    struct strbuf *err);
/* Give the next bytes of the message (only when options.message_fd was
 * -1).  0 while the stage reads; -1 once it stopped (the rest is dropped;
 * injection_finish() says why). */
int injection_write(struct injection_client *inj, const void *bytes, size_t n);
/* options.hold: the memory file holding what injection_write() got (-1
 * when it could not be made: injection_finish() then defers), and the
 * bytes to pass on instead (not counted in size). */
int injection_held_fd(const struct injection_client *inj);
int injection_release(struct injection_client *inj, const void *bytes, size_t n);
/* Write errors of a caller that writes into inj->message_fd itself
 * (without rewrite): EPIPE means the stage stopped reading early. */
void injection_write_failed(struct injection_client *inj, int errnum);
/* The message is complete: hand on the envelope (rewritten when rewrite
 * runs in-process; NULL to abandon the message: the stage stores
 * nothing), read the status channel and wait for the stage.  Returns the
 * verdict's outcome. */
enum outcome injection_finish(struct injection_client *inj, struct envelope *env,
                              struct injection_verdict *verdict);
/* Reach the queue service ahead of the first message (smtpd: when a
 * transaction starts), so that injection_start() is only a hand-over.
 * Optional; cheap when done already. */
void injection_prepare(void);
/* Give up: the envelope never gets its end record, so nothing is stored. */
void injection_abort(struct injection_client *inj);
void injection_verdict_free(struct injection_verdict *verdict);

#endif
