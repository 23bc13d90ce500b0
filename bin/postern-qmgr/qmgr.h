/* qmgr.h - the parts of postern-qmgr and what they share: messages in the
 * active queue, transports and destinations, jobs (one runner or notice
 * process each).  See doc/postern-qmgr.8 for the behaviour. */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <spawn.h>
#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

#include "config.h"
#include "monotonic.h"
#include "queuefile.h"
#include "strbuf.h"

/* Result bytes kept per job (more is a runner out of control). */
#define QMGR_MAX_RESULTS (1024 * 1024)

struct resolver;
struct qmgr_job;
struct stat;
struct qmgr_runner;

/* Per-recipient state for the current round (one stay in active/). */
enum round_state {
    ROUND_NONE = 0,     /* not attempted this round (or not to do) */
    ROUND_QUEUED,       /* in a job */
    ROUND_SENT,         /* delivered this round */
    ROUND_DEFERRED,     /* deferred this round */
};

enum message_phase { PHASE_DELIVER, PHASE_NOTIFY };

struct qmgr_message {
    char *id;
    int fd;                     /* active/ID, read-write */
    ino_t ino;                  /* its inode (a slot's, doc/queue-format.md) */
    struct queue_file qf;
    struct timeval active_time; /* when this round started */
    int flush;                  /* taken by a flush: deliver defer_transports too */
    int outstanding;            /* jobs not finished */
    int dirty;                  /* status bytes written, not yet synced */
    enum message_phase phase;
    unsigned char *round;       /* enum round_state per recipient */
    struct qmgr_message *prev, *next;
};

struct qmgr_destination;

struct qmgr_transport {
    char *name;
    char *program;              /* daemon_directory/postern-NAME */
    int pipe_service;           /* a master.cf pipe service: postern-pipe -n NAME */
    struct strlist options;     /* a master.cf smtp or lmtp service's -o
                                   settings, given to each of its runners */
    char *service_socket;       /* privileged_transports: queue_directory/private/NAME
                                 * of its runner service (postern-spawn), else NULL */
    int busy;                   /* running jobs */
    int process_limit;
    int recipient_limit;
    int concurrency_limit;
    int failed_cohort_limit;    /* site failures in a row before a destination is suspended */
    long long time_limit;       /* seconds a runner may take */
    struct qmgr_destination *destinations;
    struct qmgr_transport *next;
};

struct qmgr_destination {
    char *name;                 /* nexthop, or the recipient when the limit is 1 */
    char *nexthop;
    struct qmgr_transport *transport;
    int busy;
    struct qmgr_job *todo_head, *todo_tail;
    double failed_cohorts;      /* failed cohorts in a row (suspend.c) */
    double suspended_until;     /* monotonic time; 0: not suspended */
    char *suspended_dsn, *suspended_text;   /* "delivery temporarily suspended: ..." */
    struct qmgr_destination *next;      /* the transport's list */
    struct qmgr_destination *hash_next; /* the lookup table's chain */
};

enum job_kind { JOB_DELIVERY, JOB_NOTICE };

struct qmgr_job {
    enum job_kind kind;
    const char *notice_kind;    /* "failure", "delay", "success" */
    struct qmgr_message *msg;
    struct qmgr_destination *dest;  /* JOB_DELIVERY */
    size_t *rcpt;               /* indexes into msg->qf.rcpt */
    size_t rcpt_count;
    char *part_address;         /* a hand-over job (one recipient): the
                                   address it delivers to, or NULL */
    int handover;               /* a hand-over job: a further H is a loop */
    pid_t pid;
    int result_fd;              /* one-shot (-R) runner's results pipe, else -1 */
    struct qmgr_runner *runner; /* the reused (-S) runner serving it, else NULL */
    int complete;               /* -S: results ended, or the runner is gone */
    struct strbuf results;
    struct timeval handoff;
    int eof, exited, wait_status;
    double deadline;            /* monotonic time after which it is killed */
    int timed_out;
    int lost;                   /* its runner service's channel closed early */
    struct qmgr_job *next;      /* destination todo list, or running list */
};

/* Configuration, read at start and on SIGHUP. */
struct qmgr_conf {
    char *queue_directory;
    char *daemon_directory;
    long long minimal_backoff_time, maximal_backoff_time, queue_run_delay;
    long long maximal_queue_lifetime, bounce_queue_lifetime, delay_warning_time;
    long long message_active_limit;
    int default_process_limit;
    int soft_bounce;            /* bounces become deferrals (4.x.x) */
    long long max_use;          /* requests a runner serves before it exits */
    long long max_idle;         /* seconds an idle runner is kept */
};

/* A runner process in reuse mode (-S): started once, handed request after
 * request on a socket until max_use or max_idle (pool.c). */
struct qmgr_runner {
    pid_t pid;
    int fd;                     /* our end of the request channel; -1 at EOF */
    struct qmgr_transport *transport;
    char *program;              /* as started */
    unsigned generation;        /* qmgr.generation when started */
    long long uses;             /* requests handed over */
    double idle_since;          /* monotonic time the last request ended */
    struct qmgr_job *job;       /* the request it serves; NULL when idle */
    char *last_nexthop;         /* the next hop of its last request */
    struct strbuf out;          /* request bytes not yet sent */
    size_t out_pos;
    int out_file;               /* the queue file to send with the first byte, or -1 */
    size_t scan_pos;            /* results parsed so far (job->results) */
    int exited, wait_status;
    int service;                /* reached through its runner service (pid 0) */
    struct qmgr_runner *next;
};

struct qmgr {
    struct qmgr_conf conf;
    struct resolver *resolver;
    struct resolver *probe_resolver;    /* address_verify_* routing, opened on use */
    struct strlist overrides;   /* -o arguments, passed on to runners */
    int queue_fd;               /* queue_directory */
    struct qmgr_message *messages;  /* the active queue */
    size_t message_count;
    size_t deferred_count;      /* files in deferred/ at the last scan */
    struct qmgr_transport *transports;
    struct qmgr_job *running;
    size_t running_count;
    struct qmgr_runner *runners;    /* reuse-mode runner processes, busy or idle */
    size_t runner_count;
    unsigned generation;        /* bumped on SIGHUP: older runners retire */
    int stopping;               /* SIGTERM: start nothing new */
    int active_leftover;        /* active/ may hold files not yet taken */
    int room_freed;             /* the active queue was full and has room again */
    int destinations_idle;      /* a job ended: some destination may be idle */
};

extern struct qmgr qmgr;

/* main.c */
/* Read the parameters qmgr uses and (re)open the resolver's tables. */
void qmgr_read_conf(void);
/* Monotonic time in seconds (timers, runner deadlines). */

/* scan.c: taking messages into the active queue */
/* Take the files a crash left in active/ (and those left for lack of room). */
void scan_active(void);
/* Take new mail from incoming/ (and remove stale injector temporaries). */
void scan_incoming(void);
/* Take deferred/ files whose next attempt time has come; all on a flush. */
void scan_deferred(int flush);
/* Keep recycle/'s slots made and name the committed messages no queue
 * name links (a crash before their link), empty what dead writers left
 * (doc/queue-format.md, "Commit"): at start and every queue_run_delay. */
int scan_slots(void);       /* the number of messages it named */
/* Take the deferred/ files with a recipient still to do in one of these
 * domains, as a flush (defer_transports delivered too). */
void scan_deferred_sites(const struct strlist *domains);
/* Open a queue subdirectory (O_DIRECTORY), -1 on error. */
int queue_dir_fd(const char *name);
/* Rename queue/id to to_queue/id in the queue directory; 0, or -1 with
 * errno set (the caller says what it was doing). */
int queue_move(const char *id, const char *from_queue, const char *to_queue);
/* Forget a message: close its file and free it (the file stays). */
void message_free(struct qmgr_message *msg);

/* due.c: the next attempt time of deferred/ files */
/* Make `when` the next attempt time of the open file of id (its mtime;
 * kept in memory when the kernel refuses because qmgr does not own the
 * file: never earlier than asked, logged once). */
void due_set(int fd, const char *id, time_t when);
/* Whether the deferred/ file id, with this stat, is due at now. */
int due_now(const char *id, const struct stat *st, time_t now);
/* Forget what due_set kept for id (the message left deferred/). */
void due_forget(const char *id);
/* Around a scan of deferred/ that calls due_now for every file: what was
 * kept for files no longer there is dropped at the end. */
void due_scan_begin(void);
void due_scan_end(void);

/* schedule.c: resolving recipients and starting jobs */
/* Resolve a new message's recipients into jobs or immediate outcomes. */
void schedule_message(struct qmgr_message *msg);
/* Put recipient i, which a runner handed over (an H result), into a job
 * of its own for transport:nexthop within the current round (the caller's
 * job still counts in msg->outstanding); address: the member to deliver
 * to instead of the recipient (an alias's "\\user"), or NULL. */
void schedule_handover(struct qmgr_message *msg, size_t i, const char *address,
                       const char *transport, const char *nexthop);
/* Start every job the concurrency and process limits allow. */
void schedule_run(void);
/* The transport of this name, created with its limits on first use. */
struct qmgr_transport *transport_find(const char *name);
/* Re-read every transport's limits (after SIGHUP). */
void transports_reset(void);
/* Call fn for every destination there is. */
void destinations_each(void (*fn)(struct qmgr_destination *));

/* suspend.c: destinations that are down (Postfix's dead destinations) */
/* Note the end of a delivery job (d->busy no longer counts it): site (the
 * runner's S record: no server of the next hop could be reached) counts
 * towards the transport's failed-cohort limit, after which the destination is suspended for
 * minimal_backoff_time and its queued jobs deferred ("delivery
 * temporarily suspended: TEXT"); any other end resets the count. */
void destination_job_done(struct qmgr_destination *d, int site, const char *dsn, const char *text);
/* 1 when d is suspended now; its recipients are then deferred at once. */
int destination_suspended(struct qmgr_destination *d);
/* Defer every job queued for a suspended destination ("delivery
 * temporarily suspended: ..."); a message's round ends with its last job. */
void destination_defer_all(struct qmgr_destination *d);
/* A flush of the whole queue (postern queue flush, sendmail -q): every
 * suspended destination is tried again, as Postfix's postqueue -f resets
 * its qmgr's dead destinations. */
void destinations_revive(void);

/* runner_client.c: runner processes (qmgr's client side of interface 4) */
/* Start a delivery job's runner; -1 (recipients deferred, job freed) on failure. */
int job_start(struct qmgr_job *job);
/* Spawn PROGRAM -R with the queue file on fd 0, req on fd 3, results on fd 1. */
int job_spawn(struct qmgr_job *job, const char *program, struct strbuf *req);
/* posix_spawn `PROGRAM MODE [-n SERVICE] -c DIR [-o ...]` (qmgr's -o, then
 * options: a master.cf service's) with these file actions (our
 * environment without systemd's variables, signals at their defaults);
 * the pid, or -1 with errno. */
pid_t runner_spawn(const char *program, const char *mode, const char *service,
                   const struct strlist *options,
                   posix_spawn_file_actions_t *actions);
/* Move fd to 10 or above, close-on-exec (the old fd is closed); -1 on error. */
int high_fd(int fd);
/* Put a started job on the running list. */
void job_running_add(struct qmgr_job *job);
/* Note that a child exited (from SIGCHLD). */
void job_reap(pid_t pid, int status);
/* Read what a runner wrote on its results pipe. */
void job_read(struct qmgr_job *job);
/* Free a job (its pipe is closed). */
void job_free(struct qmgr_job *job);
/* Apply the results of every job whose runner exited and closed its pipe. */
void jobs_check_done(void);
/* Kill runners past their time limit; returns the next deadline (0: none). */
double jobs_check_timeouts(double now);
/* fdatasync the queue file when status bytes changed; 0 or -1. */
int message_sync(struct qmgr_message *msg);

/* pool.c: reuse-mode runners (doc/delivery.md, "Reuse mode") */
/* Hand a delivery job's request to an idle runner of its transport, or to
 * a new one; 0, or -1 with errno (nothing was started). */
int pool_start(struct qmgr_job *job, const struct strbuf *req);
/* Note a child's exit; 1 when it was a pooled runner. */
int pool_reap(pid_t pid, int status);
/* Stop a runner now (a time limit, a runaway): SIGKILL to a child of ours,
 * and the channel closed (all a runner behind a service gets). */
void pool_stop(struct qmgr_runner *runner);
/* Send what is pending to a runner and read what it wrote (poll said so). */
void pool_io(struct qmgr_runner *runner, short revents);
/* The poll events a runner waits for (0: none). */
short pool_events(const struct qmgr_runner *runner);
/* Finish jobs whose runner died, retire idle runners past max_use or
 * max_idle, older than a reload, or all idle ones when stopping; returns
 * the next time a runner will be due to retire (0: none). */
double pool_check(double now);
/* Close every runner's channel (they see EOF and exit) and forget them. */
void pool_shutdown(void);

/* status.c: a recipient's outcome (enum outcome of outcome.h), logged as
 * Postfix does */
/* 1 when the message is an address verification probe (the message
 * attribute verify=yes, postern-verify(8)): each recipient's outcome goes
 * to the verify service and the recipient is done; local, virtual and
 * pipe transports are not run for it (schedule.c). */
int message_is_probe(const struct qmgr_message *msg);
/* 1 for a sendmail -bv message (verify=report): a probe whose outcomes go
 * back to its sender as a "Mail Delivery Status Report" (postern-bounce -k
 * verify), routed as ordinary mail. */
int message_is_report(const struct qmgr_message *msg);
/* Log a recipient's outcome and record it in the queue file.  agent is
 * the Postfix daemon whose line it is ("virtual", "error", ...; NULL:
 * qmgr), agent_pid the pid of the runner that decided it, or 0; address
 * the to= of the line (NULL: the recipient's; a hand-over part's member
 * otherwise).  While the recipient has parts outstanding (r->parts), the
 * outcome is one part's: logged, and combined with the others until the
 * last, whose combination (the worst) is recorded. */
void recipient_outcome(struct qmgr_message *msg, const char *agent, long agent_pid,
                       size_t index, const char *address, enum outcome outcome,
                       const char *relay, const struct timeval *handoff, const char *dsn,
                       const char *text);
/* Append a delay as Postfix formats it (two significant digits). */
void format_delay(struct strbuf *out, double seconds);

/* retry.c: the end of a round */
/* All jobs of the message ended: expiry, notices, then removal or deferred/. */
void message_round_done(struct qmgr_message *msg);

/* notify.c: non-delivery, delay and success notices through postern-bounce */
/* Ask postern-bounce for a notice of `kind` about these recipients. */
int notice_start(struct qmgr_message *msg, const char *kind, size_t *rcpt,
                 size_t count);
/* Record what a finished notice job achieved. */
void notice_done(struct qmgr_job *job);
/* The request records shared by runners and notices (Q F [H] M A...). */
void request_common(struct strbuf *req, struct qmgr_message *msg, const char *nexthop);

#endif
