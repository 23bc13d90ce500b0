/* runner.h - what every delivery runner shares (interface 4, doc/delivery.md).
 *
 * A runner (postern-virtual, later -local, -smtp, -lmtp, -pipe) is started
 * by qmgr in reuse mode (-S: request after request on the socket on fd 3,
 * each with its queue file as SCM_RIGHTS, results on the same socket), in
 * one-shot request mode (-R: request records on fd 3, the queue file on
 * fd 0, results on fd 1; postern-bounce) or by a person in shell mode
 * (-f SENDER [-q QUEUEID] RECIPIENT... < message).  This module hides the
 * difference: it parses the command line (with -c, -o, -v through
 * config_common_option), loads main.cf once, reads the request, presents
 * the message as a descriptor with an offset and a length, and writes each
 * recipient's result the way the mode wants it.  A runner's main is:
 *
 *     struct runner_request req;
 *     runner_start(argc, argv, "virtual", NULL, &req); // also opens the log
 *     do {
 *         for (size_t i = 0; i < req.rcpt_count; i++)
 *             deliver(&req, i);          // calls runner_result(&req, i, ...)
 *     } while (runner_next(&req));
 *     return runner_finish(&req);
 *
 * runner_next() ends a request and, in reuse mode, reads the next one: a
 * runner's per-request state must be released inside the loop (and the
 * process must not keep anything of a request, such as a changed euid), as
 * one process serves up to max_use requests.  With -R and in shell mode
 * there is one request and it returns 0.  With -S, SIGTERM is blocked
 * except while runner_next() waits for a request: it ends the runner
 * between requests (as EOF does), never in the middle of one (a program a
 * runner starts must unblock it).
 */
#ifndef POSTERN_RUNNER_H
#define POSTERN_RUNNER_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "outcome.h"

struct strbuf;

struct strbuf;

/* Bounds on what a request may hold (a request beyond them is a protocol
 * error: the runner exits without results and qmgr defers). */
#define RUNNER_MAX_RECORD       4096    /* bytes per request record */
#define RUNNER_MAX_RECIPIENTS   10000   /* recipients per request */
#define RUNNER_MAX_ATTRS        64      /* A or P records per owner */


struct runner_recipient {
    char *address;              /* as given (T record / command line) */
    struct strlist attrs;       /* its P records, "NAME=value" */
    struct strlist records;     /* other records after its T, type byte
                                   first: a notice's "S5.1.1 text" */
    enum outcome outcome;       /* as the result records spell it */
};

struct runner_request {
    int request_mode;           /* 1: -R or -S (records on fd 3); 0: shell mode */
    char *queue_id;             /* "" when none was given */
    char *sender;               /* "" is the null sender */
    char *nexthop;              /* "" when none */
    time_t arrival;             /* A arrival=, else the start time */
    struct strlist attrs;       /* message attributes, "NAME=value" */
    struct strlist records;     /* other records before the first T, type
                                   byte first: a notice's "Xfailure" */
    /* the message content: length bytes at offset in msg_fd (read it with
     * pread or copy_file_range; never rely on the descriptor's position) */
    int msg_fd;
    off_t msg_offset;
    off_t msg_length;
    struct runner_recipient *rcpt;
    size_t rcpt_count;
    /* shell mode tallies for the exit status */
    size_t sent, deferred, bounced;
};

/* Options of a runner's own, beside -R -f -q -c -o -v (NULL: none). */
struct runner_options {
    const char *letters;                        /* getopt letters, "d:" */
    int (*take)(int opt, const char *arg);      /* 1 when it took opt */
};

/* Parse argv, open the log (as postern/PROGRAM; copied to stderr in shell
 * mode), load main.cf, read the first request.  `program` names the
 * runner ("virtual").  Exits with a usage message (64, EX_USAGE) on a bad
 * command line; exits without results (75) on a malformed request, which
 * qmgr turns into deferrals; with -S exits 0 when the channel ends before
 * a first request. */
void runner_start(int argc, char **argv, const char *program,
                  const struct runner_options *options,
                  struct runner_request *request);
/* Report recipient `index`: `dsn` is an RFC 3463 code whose class (2, 4 or
 * 5) gives the outcome; the text follows printf `fmt`.  Written at once (a
 * K/Z/D record on fd 1, or "RECIPIENT: dsn=..., status=... (text)" on
 * stdout and in the log in shell mode).  A second result for the same
 * recipient is a programming error (fatal). */
void runner_result(struct runner_request *request, size_t index,
                   const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Hand one mailbox part of recipient `index` over to another transport
 * (postern-local's mailbox_transport and fallback_transport, as Postfix's
 * deliver_pass): `route` is "transport:nexthop", `address` the member to
 * deliver to (an alias's "\\user"), or NULL for the recipient itself.  In
 * request mode a U and an H record that qmgr acts on (doc/delivery.md,
 * "Hand-over"), and 0; the recipient's own result must follow, with
 * runner_result() or runner_handover_end() when it has none.  In shell
 * mode, where no qmgr can pass it on, nothing is written and -1 returned:
 * the caller defers the recipient instead. */
int runner_handover(struct runner_request *request, size_t index, const char *address,
                    const char *route);
/* End recipient `index` after its hand-overs when nothing else was done
 * for it (an E record: the hand-overs are its result). */
void runner_handover_end(struct runner_request *request, size_t index);
/* Name the host the next results come from ("mx.example.com[192.0.2.1]:25",
 * or NULL/"" for none): an R record before them in request mode (the log's
 * relay=), the relay= of the shell-mode log line.  Written only when it
 * changes. */
void runner_relay(struct runner_request *request, const char *relay);
/* Say that the next result, a delivery, handed the mail on to a system
 * that sends no delivery notices (pipe(8) without the X flag): its
 * success notice says "Action: relayed" instead of "delivered" (an L
 * record before the K).  Nothing in shell mode. */
void runner_next_relayed(struct runner_request *request);
/* Say that the next result, a delivery, went to a system that got the
 * recipient's NOTIFY and sends its own notices (an SMTP server that offered
 * DSN): qmgr sends no success notice for it (an L record "notified"). */
void runner_next_notified(struct runner_request *request);
/* Say, before the results, that the next hop as a whole failed (no server
 * could be reached or would talk): an S record that qmgr counts towards
 * TRANSPORT_destination_concurrency_failed_cohort_limit, after which it
 * holds the destination's other mail back ("delivery temporarily
 * suspended: text").  Nothing in shell mode. */
void runner_site_failure(struct runner_request *request, const char *dsn, const char *text);
/* Give every recipient without a result a deferral with `dsn` and `text`
 * (a runner's catch-all for an error that ends the whole request). */
void runner_defer_rest(struct runner_request *request, const char *dsn,
                       const char *text);
/* The value of attribute NAME in a list of "NAME=value" (case-insensitive
 * name), or NULL. */
const char *runner_attr(const struct strlist *attrs, const char *name);
/* End the current request (recipients without a result are deferred; with
 * -S the empty record ends its results and its queue file is closed) and
 * read the next into `request` (freeing the previous one): 1 when there is
 * one, 0 when the process has served its last request (-S: qmgr closed the
 * channel). */
int runner_next(struct runner_request *request);
/* -S: while runner_next() waits for the next request, also watch fd (-1:
 * none) for input or hang-up, and the monotonic deadline (milliseconds of
 * CLOCK_MONOTONIC; 0: none); fn is called once when either comes (a
 * cached SMTP session the server closed, or that idled too long), and the
 * watch ends.  fn NULL ends it. */
void runner_idle_watch(int fd, long long deadline_ms, void (*fn)(void));
/* The one reader of the request records for a program that takes a
 * runner's request but answers otherwise (postern-bounce -R: one result
 * for the whole request): read the records on fd up to the empty one,
 * the message being msg_fd.  0, or -1 with the reason in err (a
 * malformed request). */
int runner_request_read(int fd, int msg_fd, struct runner_request *request,
                        struct strbuf *err);
/* The value of the last record of this type in a records list, or NULL. */
const char *runner_record(const struct strlist *records, int type);
/* Free what runner_request_read() filled, and close its msg_fd (unless 0). */
void runner_request_free(struct runner_request *request);
/* Flush and free; returns the exit status: 0 in request mode; in shell mode
 * 0 when every recipient was delivered, 67 (EX_NOUSER) when any bounced,
 * else 75 (EX_TEMPFAIL) when any was deferred. */
int runner_finish(struct runner_request *request);
/* Take a user's ids for the next file operations of a runner that runs
 * as root (effective ids only, as Postfix's set_eugid: the process goes
 * back to root for the next recipient).  Order: groups, gid, uid; fatal
 * (a temporary failure) when a switch fails. */
void runner_become(uid_t uid, gid_t gid);
/* Back to root after runner_become(). */
void runner_become_root(void);
/* The runner program of a transport (doc/delivery.md, "Which program"),
 * appended to out: daemon_directory/postern-pipe for a master.cf unix
 * service of that name whose command is pipe (the runner then takes
 * `-n TRANSPORT`: the function returns 1); postern-smtp or postern-lmtp
 * for one whose command is smtp or lmtp (FILTER_README's "scan"), whose
 * -o settings are appended to options (when not NULL) as "name=value",
 * for the runner's -o; else daemon_directory/postern-NAME (relay:
 * postern-smtp; returns 0).  *maxproc (when not NULL) gets that master.cf
 * entry's maxproc, -1 when there is none or it is "-" or 0.  qmgr starts
 * it; postern-spawn starts it for qmgr. */
struct strlist;
int runner_program_path(struct strbuf *out, const char *daemon_directory, const char *transport,
                        long *maxproc, struct strlist *options);

#endif
