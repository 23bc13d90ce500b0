/* runner_client.c - qmgr's client side of interface 4 (lib/mail/runner.c is
 * the runner side): starting runner processes as doc/delivery.md says (fd 0 the
 * queue file read-only, fd 3 the request, fd 1 the results), collecting
 * their results and applying them when the process has ended.  Notices
 * (postern-bounce) are jobs too and use the same code. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "qmgr.h"
#include "strlist.h"
#include "xalloc.h"


int message_sync(struct qmgr_message *msg)
{
    if (!msg->dirty)
        return 0;
    if (queue_file_sync(msg->fd) != 0) {
        msg_warn_errno("%s: sync queue file", msg->id);
        return -1;
    }
    msg->dirty = 0;
    return 0;
}

/* The request records of a delivery job. */
static void delivery_request(struct strbuf *req, struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    request_common(req, msg, job->dest->nexthop);
    /* more mail waits for this destination: a runner that can keep its
     * connection open for it (postern-smtp's connection cache) does */
    size_t waiting = 0;
    for (const struct qmgr_job *j = job->dest->todo_head; j && waiting < 1000; j = j->next)
        waiting++;
    if (waiting)
        record_putf(req, 'W', "%zu", waiting);
    for (size_t k = 0; k < job->rcpt_count; k++) {
        struct queue_recipient *r = &msg->qf.rcpt[job->rcpt[k]];
        record_put(req, 'T', job->part_address ? job->part_address
                             : r->routed ? r->routed : r->address);
        if (r->orcpt)
            record_putf(req, 'P', "ORCPT=%s", r->orcpt);
        if (r->notify)
            record_putf(req, 'P', "NOTIFY=%s", r->notify);
    }
    record_end(req);
}

/* The environment for runners: ours without systemd's notify socket and
 * watchdog variables, which belong to qmgr. */
static char **runner_environment(void)
{
    static char **env;
    if (env)
        return env;
    size_t n = 0;
    while (environ[n])
        n++;
    env = xcalloc(n + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0
            && strncmp(environ[i], "WATCHDOG_USEC=", 14) != 0
            && strncmp(environ[i], "WATCHDOG_PID=", 13) != 0)
            env[k++] = environ[i];
    return env;
}

int high_fd(int fd)
{
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return moved;
}

/* The pid of the runner that serves a job (for its log lines). */
static long job_pid(const struct qmgr_job *job)
{
    return job->runner ? (long)job->runner->pid : (long)job->pid;
}

/* Defer every recipient of a job that could not run. */
static void job_fail(struct qmgr_job *job, const char *status)
{
    for (size_t k = 0; k < job->rcpt_count; k++)
        recipient_outcome(job->msg, job->dest->transport->name, 0, job->rcpt[k],
                          job->part_address, OUTCOME_DEFERRED, "none", NULL, "4.3.0", status);
}

pid_t runner_spawn(const char *program, const char *mode, const char *service,
                   const struct strlist *options, posix_spawn_file_actions_t *actions)
{
    size_t argc = 0;
    size_t option_count = options ? options->count : 0;
    char **argv = xcalloc(8 + 2 * (qmgr.overrides.count + option_count), sizeof *argv);
    argv[argc++] = (char *)program;
    argv[argc++] = (char *)mode;
    if (service) {
        argv[argc++] = (char *)"-n";
        argv[argc++] = (char *)service;
    }
    argv[argc++] = (char *)"-c";
    argv[argc++] = (char *)config_dir();
    for (size_t i = 0; i < qmgr.overrides.count; i++) {
        argv[argc++] = (char *)"-o";
        argv[argc++] = qmgr.overrides.item[i];
    }
    for (size_t i = 0; i < option_count; i++) {
        argv[argc++] = (char *)"-o";
        argv[argc++] = options->item[i];
    }
    argv[argc] = NULL;

    /* posix_spawn (vfork-like in glibc): no copy of qmgr's page tables per
     * runner.  The runner starts with no blocked signals, SIGPIPE default. */
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, program, actions, &attr, argv, runner_environment());
    posix_spawnattr_destroy(&attr);
    free(argv);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* Spawn `program -R -c DIR [-o ...]` with the request; 0 or -1 (errno). */
int job_spawn(struct qmgr_job *job, const char *program, struct strbuf *req)
{
    struct strbuf path = STRBUF_INIT;
    int request_pipe[2], result_pipe[2];
    int file_fd = openat(qmgr.queue_fd, (strbuf_printf(&path, "%s/%s", QUEUE_ACTIVE, job->msg->id),
                                        strbuf_str(&path)), O_RDONLY | O_CLOEXEC);
    strbuf_free(&path);
    if (file_fd < 0)
        return -1;
    if (pipe2(request_pipe, O_CLOEXEC) != 0) {
        close(file_fd);
        return -1;
    }
    if (pipe2(result_pipe, O_CLOEXEC) != 0) {
        close(file_fd);
        close(request_pipe[0]);
        close(request_pipe[1]);
        return -1;
    }
    file_fd = high_fd(file_fd);
    request_pipe[0] = high_fd(request_pipe[0]);
    result_pipe[1] = high_fd(result_pipe[1]);

    pid_t pid = -1;
    int saved = EBADF;
    if (file_fd >= 0 && request_pipe[0] >= 0 && result_pipe[1] >= 0) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, file_fd, 0);
        posix_spawn_file_actions_adddup2(&actions, result_pipe[1], 1);
        posix_spawn_file_actions_adddup2(&actions, request_pipe[0], 3);
        /* a master.cf smtp or lmtp service's settings, for its own runner */
        const struct strlist *options = job->kind == JOB_DELIVERY && job->dest
                                        ? &job->dest->transport->options : NULL;
        pid = runner_spawn(program, "-R", NULL, options, &actions);
        saved = errno;
        posix_spawn_file_actions_destroy(&actions);
    }
    close(file_fd);
    close(request_pipe[0]);
    close(result_pipe[1]);
    if (pid < 0) {
        close(request_pipe[1]);
        close(result_pipe[0]);
        errno = saved;
        return -1;
    }
    /* The whole request goes into the pipe at once, so that a runner that
     * hangs before reading it cannot block qmgr: a request larger than the
     * default pipe buffer (many recipients) gets a larger buffer. */
    if (req->len > 65536 && fcntl(request_pipe[1], F_SETPIPE_SZ, (int)req->len) < 0)
        msg_warn_errno("%s: enlarge the request pipe to %zu bytes", job->msg->id, req->len);
    fcntl(request_pipe[1], F_SETFL, O_NONBLOCK);
    if (write_all(request_pipe[1], req->s, req->len) != 0 && errno != EPIPE) {
        /* the runner gets a truncated request and must fail; its
         * recipients are deferred as for any runner without results */
        msg_warn_errno("%s: write request to %s", job->msg->id, program);
    }
    close(request_pipe[1]);
    fcntl(result_pipe[0], F_SETFL, O_NONBLOCK);
    job->pid = pid;
    job->result_fd = result_pipe[0];
    return 0;
}

int job_start(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    /* delivered recipients are on disk before any further attempt */
    message_sync(msg);
    gettimeofday(&job->handoff, NULL);
    struct strbuf req = STRBUF_INIT;
    const char *program = job->dest->transport->program;
    delivery_request(&req, job);
    int result = pool_start(job, &req);
    strbuf_free(&req);
    if (result != 0) {
        struct strbuf why = STRBUF_INIT;
        const char *socket_path = job->dest->transport->service_socket;
        if (socket_path)
            strbuf_printf(&why, "cannot connect to the runner service %s: %s", socket_path,
                          strerror(errno));
        else
            strbuf_printf(&why, "cannot start %s: %s", program, strerror(errno));
        msg_warn("%s: %s", msg->id, strbuf_str(&why));
        job_fail(job, strbuf_str(&why));
        strbuf_free(&why);
        msg->outstanding--;
        job_free(job);
        if (msg->outstanding == 0)
            message_round_done(msg);
        return -1;
    }
    job->deadline = monotonic_now() + (double)job->dest->transport->time_limit;
    msg_debug("%s: handed to %s pid %ld for %zu recipient(s), nexthop %s", msg->id, program,
              (long)job->pid, job->rcpt_count, job->dest->nexthop);
    job_running_add(job);
    return 0;
}

double jobs_check_timeouts(double now)
{
    double next = 0;
    for (struct qmgr_job *job = qmgr.running; job; job = job->next) {
        if (job->exited || job->deadline <= 0)
            continue;
        if (now >= job->deadline && !job->timed_out) {
            const char *program = job->kind == JOB_DELIVERY ? job->dest->transport->program
                                                            : "postern-bounce";
            if (job->runner && job->runner->service) {
                /* no process of ours: take what it wrote, close its channel
                 * (the job ends in pool_check) */
                msg_warn("%s: closing the channel to %s behind %s: time limit exceeded",
                         job->msg->id, program, job->dest->transport->service_socket);
                struct qmgr_runner *r = job->runner;
                pool_io(r, POLLIN);
                pool_stop(r);
            } else {
                msg_warn("%s: killing %s (pid %ld): time limit exceeded", job->msg->id,
                         program, (long)job->pid);
                kill(job->pid, SIGKILL);    /* its results are read when it is reaped */
            }
            job->timed_out = 1;
        } else if (!job->timed_out && (next == 0 || job->deadline < next)) {
            next = job->deadline;
        }
    }
    return next;
}

void job_running_add(struct qmgr_job *job)
{
    job->next = qmgr.running;
    qmgr.running = job;
    qmgr.running_count++;
}

void job_read(struct qmgr_job *job)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(job->result_fd, buf, sizeof buf);
        if (n > 0) {
            if (job->results.len + (size_t)n <= QMGR_MAX_RESULTS)
                strbuf_append(&job->results, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        job->eof = 1;
        return;
    }
}

void job_reap(pid_t pid, int status)
{
    for (struct qmgr_job *job = qmgr.running; job; job = job->next)
        if (job->pid == pid) {
            job->exited = 1;
            job->wait_status = status;
            return;
        }
}

void job_free(struct qmgr_job *job)
{
    if (job->result_fd >= 0)
        close(job->result_fd);
    strbuf_free(&job->results);
    free(job->rcpt);
    free(job->part_address);
    free(job);
}

/* Why a runner gave no result for a recipient. */
static void missing_reason(struct qmgr_job *job, struct strbuf *why)
{
    const char *program = job->dest->transport->program;
    const char *name = strrchr(program, '/');
    name = name ? name + 1 : program;
    if (job->timed_out)
        strbuf_printf(why, "delivery agent %s exceeded its time limit (%llds)", name,
                      (long long)job->dest->transport->time_limit);
    else if (job->lost)
        strbuf_printf(why, "delivery agent %s behind %s ended without a result", name,
                      job->dest->transport->service_socket);
    else if (WIFSIGNALED(job->wait_status))
        strbuf_printf(why, "delivery agent crashed (%s: signal %d)", name,
                      WTERMSIG(job->wait_status));
    else
        strbuf_printf(why, "delivery agent %s exited with status %d without a result",
                      name, WEXITSTATUS(job->wait_status));
}

/* One hand-over part of recipient i: "transport:nexthop" for `address`
 * (NULL: the recipient's own).  A new job in this round, unless the job
 * that hands it over is itself a hand-over, or hands it back to its own
 * transport (a loop: deferred). */
static void handover(struct qmgr_job *job, size_t i, const char *address, const char *route,
                     const struct strbuf *relay)
{
    struct qmgr_message *msg = job->msg;
    struct queue_recipient *r = &msg->qf.rcpt[i];
    size_t name_len = strcspn(route, ":");
    struct strbuf transport = STRBUF_INIT, why = STRBUF_INIT;
    strbuf_append(&transport, route, name_len);
    if (name_len == 0 || job->handover || strcmp(transport.s, job->dest->transport->name) == 0) {
        strbuf_puts(&why, "mail forwarding loop: handed over to ");
        log_printable(&why, route, 300);
        strbuf_puts(&why, name_len == 0 ? " (no transport)" : " again");
        recipient_outcome(msg, job->dest->transport->name, job_pid(job), i,
                          address ? address : job->part_address, OUTCOME_DEFERRED,
                          strbuf_str(relay), &job->handoff, "4.3.0", strbuf_str(&why));
    } else {
        msg_debug("%s: %s handed <%s> over to %s", msg->id, job->dest->transport->name,
                  address ? address : r->address, route);
        schedule_handover(msg, i, address, transport.s, route[name_len] ? route + name_len + 1 : "");
    }
    strbuf_free(&transport);
    strbuf_free(&why);
}

/* The hand-over parts of one recipient, collected until its own result. */
struct parts {
    struct strlist route, address;      /* address "" for the recipient's own */
};

/* Apply a recipient's own result (K/Z/D; outcome 0 for E: none of its
 * own) and its hand-over parts (doc/delivery.md, "Hand-over"). */
static void recipient_done(struct qmgr_job *job, size_t i, struct parts *parts,
                           enum outcome outcome, const struct strbuf *relay,
                           const char *dsn, const char *text)
{
    struct qmgr_message *msg = job->msg;
    struct queue_recipient *r = &msg->qf.rcpt[i];
    const char *agent = job->dest->transport->name;
    if (!parts->route.count || outcome == OUTCOME_DEFERRED) {
        /* a deferral repeats the whole recipient, hand-overs too (as in
         * Postfix's local: its parts are one delivery) */
        if (!outcome) {
            outcome = OUTCOME_DEFERRED;
            dsn = "4.3.0";
            text = "delivery agent protocol error";
        }
        recipient_outcome(msg, agent, job_pid(job), i, job->part_address, outcome,
                          strbuf_str(relay), &job->handoff, dsn, text);
    } else {
        /* the results to come for it: its own (now) and one per part; a
         * job that is itself one part of it stands for one of them */
        unsigned results = (unsigned)parts->route.count + (outcome ? 1 : 0);
        if (r->parts) {
            r->parts += results - 1;
        } else {
            r->parts = results;
            r->part_outcome = 0;
        }
        if (outcome)
            recipient_outcome(msg, agent, job_pid(job), i, job->part_address, outcome,
                              strbuf_str(relay), &job->handoff, dsn, text);
        for (size_t p = 0; p < parts->route.count; p++)
            handover(job, i, *parts->address.item[p] ? parts->address.item[p] : job->part_address,
                     parts->route.item[p], relay);
    }
    strlist_free(&parts->route);
    strlist_free(&parts->address);
}

/* Apply the results of a finished delivery job. */
static void delivery_done(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    /* the relay= of the log line: the transport name, unless the runner
     * names the host it talked to in an R record before the results */
    struct strbuf relay = STRBUF_INIT;
    strbuf_puts(&relay, job->dest->transport->name);
    size_t pos = 0, k = 0;
    int site = 0, relayed = 0;
    struct strbuf dsn = STRBUF_INIT, text = STRBUF_INIT, why = STRBUF_INIT;
    struct parts parts = {STRLIST_INIT, STRLIST_INIT};
    const char *member = "";
    struct strbuf site_dsn = STRBUF_INIT, site_text = STRBUF_INIT;
    while (k < job->rcpt_count && pos < job->results.len) {
        const char *rec = job->results.s + pos;
        size_t len = strnlen(rec, job->results.len - pos);
        if (pos + len >= job->results.len)
            break;                  /* no NUL: an incomplete record */
        pos += len + 1;
        if (rec[0] == 'R') {
            strbuf_reset(&relay);
            log_printable(&relay, len > 1 ? rec + 1 : job->dest->transport->name, 300);
            continue;
        }
        if (rec[0] == 'U') {
            member = rec + 1;
            continue;
        }
        if (rec[0] == 'H') {
            strlist_add(&parts.route, rec + 1);
            strlist_add(&parts.address, member);
            member = "";
            continue;
        }
        if (rec[0] == 'L') {
            /* the next delivery was relayed (doc/delivery.md) */
            relayed = strcmp(rec + 1, "relayed") == 0 ? 1 : strcmp(rec + 1, "notified") == 0 ? 2 : 0;
            continue;
        }
        if (rec[0] == 'S') {
            /* the next hop failed as a whole (suspend.c) */
            site = 1;
            dsn_split(rec + 1, "4.4.1", &site_dsn, &site_text);
            continue;
        }
        enum outcome outcome;
        const char *fallback;
        switch (rec[0]) {
        case 'K': outcome = OUTCOME_SENT; fallback = "2.0.0"; break;
        case 'D': outcome = OUTCOME_BOUNCED; fallback = "5.0.0"; break;
        case 'Z': outcome = OUTCOME_DEFERRED; fallback = "4.0.0"; break;
        case 'E': outcome = OUTCOME_PENDING; fallback = ""; break;
        default:
            outcome = OUTCOME_DEFERRED;
            fallback = "4.3.0";
            rec = "Z4.3.0 delivery agent protocol error";
        }
        dsn_split(rec + 1, fallback, &dsn, &text);
        msg->qf.rcpt[job->rcpt[k]].relayed = outcome == OUTCOME_SENT && relayed == 1;
        if (outcome == OUTCOME_SENT && relayed == 2)
            /* the next hop sends the success notice (in memory: a
             * restart before the round ends may send one more) */
            msg->qf.rcpt[job->rcpt[k]].success_noticed = 1;
        relayed = 0;
        recipient_done(job, job->rcpt[k], &parts, outcome, &relay, strbuf_str(&dsn),
                       strbuf_str(&text));
        k++;
    }
    strlist_free(&parts.route);
    strlist_free(&parts.address);
    if (k < job->rcpt_count) {
        missing_reason(job, &why);
        for (; k < job->rcpt_count; k++)
            recipient_outcome(msg, job->dest->transport->name, job_pid(job), job->rcpt[k],
                              job->part_address, OUTCOME_DEFERRED, strbuf_str(&relay),
                              &job->handoff, "4.3.0", strbuf_str(&why));
    }
    /* a job that ended without results (a crash) says nothing of the site */
    if (site || job->results.len > 0)
        destination_job_done(job->dest, site, strbuf_str(&site_dsn), strbuf_str(&site_text));
    strbuf_free(&dsn);
    strbuf_free(&text);
    strbuf_free(&why);
    strbuf_free(&relay);
    strbuf_free(&site_dsn);
    strbuf_free(&site_text);
}

void jobs_check_done(void)
{
    struct qmgr_job **link = &qmgr.running;
    while (*link) {
        struct qmgr_job *job = *link;
        if (job->result_fd >= 0 && !job->eof && job->exited)
            job_read(job);          /* drain what is left in the pipe */
        if (job->kind == JOB_DELIVERY ? !job->complete : !(job->eof && job->exited)) {
            link = &job->next;
            continue;
        }
        *link = job->next;
        qmgr.running_count--;
        struct qmgr_message *msg = job->msg;
        msg_debug("%s: pid %ld ended (status 0x%x), %zu bytes of results", msg->id,
                  (long)job->pid, (unsigned)job->wait_status, job->results.len);
        if (job->kind == JOB_DELIVERY) {
            job->dest->busy--;
            job->dest->transport->busy--;
            qmgr.destinations_idle = 1;
            delivery_done(job);
        } else {
            notice_done(job);
        }
        job_free(job);
        msg->outstanding--;
        if (msg->outstanding == 0)
            message_round_done(msg);
    }
}
