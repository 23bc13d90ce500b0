/* pool.c - runners in reuse mode (doc/delivery.md, "Reuse mode"): qmgr
 * starts a runner once (`postern-NAME -S`) and hands it request after
 * request on a unix stream socket, each request with its queue file
 * attached as SCM_RIGHTS; the runner answers with the usual result records
 * and an empty record after each request's results.  A runner retires (qmgr
 * closes the channel; the runner sees EOF and exits 0) after max_use
 * requests, after max_idle seconds idle, after a reload (SIGHUP), and when
 * qmgr stops.  qmgr never blocks on a runner: its end of the channel is
 * non-blocking, and request bytes that do not fit are sent when poll says
 * the socket is writable.  A runner that dies while it serves a request
 * leaves the request's missing results deferred, as a one-shot runner.
 *
 * A transport of privileged_transports is reached through its runner
 * service instead (postern-spawn(8)): qmgr connects to
 * queue_directory/private/NAME, the service starts the runner there with
 * the connection as its channel, and the protocol is the same.  Such a
 * runner is no child of qmgr (pid 0): it is gone when its channel closes,
 * and qmgr stops it by closing the channel, never by a signal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

/* Close a runner's channel (it sees EOF, or is gone already).  A runner
 * behind a service has then ended as far as qmgr can tell. */
static void runner_close(struct qmgr_runner *r)
{
    if (r->fd >= 0 && close(r->fd) != 0)
        msg_warn_errno("close channel to %s pid %ld", r->program, (long)r->pid);
    r->fd = -1;
    if (r->service)
        r->exited = 1;
    if (r->out_file >= 0)
        close(r->out_file);
    r->out_file = -1;
    strbuf_reset(&r->out);
    r->out_pos = 0;
}

/* Forget a runner that is not on the list any more. */
static void runner_free(struct qmgr_runner *r)
{
    runner_close(r);
    if (r->job)
        r->job->runner = NULL;
    strbuf_free(&r->out);
    free(r->program);
    free(r->last_nexthop);
    free(r);
    qmgr.runner_count--;
}

/* The idle runner that may take a request for t: one whose last request
 * went to the same next hop first (it may hold a connection there: the
 * smtp runner's connection cache), else the most recently used. */
static struct qmgr_runner *runner_idle(const struct qmgr_transport *t, const char *nexthop)
{
    struct qmgr_runner *best = NULL;
    int best_same = 0;
    for (struct qmgr_runner *r = qmgr.runners; r; r = r->next) {
        if (r->transport != t || r->job || r->fd < 0 || r->exited
            || r->generation != qmgr.generation || r->uses >= qmgr.conf.max_use
            || strcmp(r->program, t->program) != 0
            || r->service != (t->service_socket != NULL))
            continue;
        int same = r->last_nexthop && nexthop && strcmp(r->last_nexthop, nexthop) == 0;
        if (!best || same > best_same || (same == best_same && r->idle_since > best->idle_since)) {
            best = r;
            best_same = same;
        }
    }
    return best;
}

/* A new runner record for t on channel fd (pid 0: behind a service). */
static struct qmgr_runner *runner_add(struct qmgr_transport *t, int fd, pid_t pid)
{
    struct qmgr_runner *r = xcalloc(1, sizeof *r);
    r->pid = pid;
    r->service = pid == 0;
    r->fd = fd;
    r->transport = t;
    r->program = xstrdup(t->program);
    r->generation = qmgr.generation;
    r->out_file = -1;
    r->idle_since = monotonic_now();
    r->next = qmgr.runners;
    qmgr.runners = r;
    qmgr.runner_count++;
    return r;
}

/* Connect to t's runner service, which starts a runner for this channel;
 * NULL with errno when it does not answer (a full backlog too: qmgr never
 * waits for it). */
static struct qmgr_runner *runner_connect(struct qmgr_transport *t)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(t->service_socket) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(sun.sun_path, t->service_socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    msg_debug("connected to the runner service %s", t->service_socket);
    return runner_add(t, fd, 0);
}

/* Start a runner for t in reuse mode: fd 3 its end of the channel, fd 0
 * and 1 /dev/null (or connect to its service).  NULL with errno when it
 * cannot be started. */
static struct qmgr_runner *runner_new(struct qmgr_transport *t)
{
    if (t->service_socket)
        return runner_connect(t);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    int child = high_fd(sv[1]);
    if (child < 0 || fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
        int saved = errno;
        close(sv[0]);
        if (child >= 0)
            close(child);
        errno = saved;
        return NULL;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, child, 3);
    pid_t pid = runner_spawn(t->program, "-S", t->pipe_service ? t->name : NULL, &t->options,
                             &actions);
    int saved = errno;
    posix_spawn_file_actions_destroy(&actions);
    close(child);
    if (pid < 0) {
        close(sv[0]);
        errno = saved;
        return NULL;
    }
    struct qmgr_runner *r = runner_add(t, sv[0], pid);
    msg_debug("started %s pid %ld in reuse mode", r->program, (long)pid);
    return r;
}

/* Send what fits of the pending request (the queue file goes with its
 * first byte); 0, or -1 with errno when the runner cannot take it. */
static int runner_send(struct qmgr_runner *r)
{
    while (r->out_pos < r->out.len) {
        ssize_t n = fdpass_send(r->fd, r->out.s + r->out_pos, r->out.len - r->out_pos,
                                &r->out_file, r->out_file >= 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        r->out_pos += (size_t)n;
        if (r->out_file >= 0) {
            close(r->out_file);
            r->out_file = -1;
        }
    }
    strbuf_reset(&r->out);
    r->out_pos = 0;
    return 0;
}

int pool_start(struct qmgr_job *job, const struct strbuf *req)
{
    struct qmgr_transport *t = job->dest->transport;
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", QUEUE_ACTIVE, job->msg->id);
    int file_fd = openat(qmgr.queue_fd, strbuf_str(&path), O_RDONLY | O_CLOEXEC);
    strbuf_free(&path);
    if (file_fd < 0)
        return -1;
    /* an idle runner may have died unnoticed: then try a fresh one */
    for (int attempt = 0;; attempt++) {
        struct qmgr_runner *r = attempt == 0 ? runner_idle(t, job->dest->nexthop) : NULL;
        if (!r && !(r = runner_new(t))) {
            int saved = errno;
            close(file_fd);
            errno = saved;
            return -1;
        }
        r->job = job;
        r->uses++;
        free(r->last_nexthop);
        r->last_nexthop = xstrdup(job->dest->nexthop);
        r->scan_pos = 0;
        strbuf_reset(&r->out);
        strbuf_append(&r->out, req->s, req->len);
        r->out_pos = 0;
        r->out_file = file_fd;      /* the runner's from here on */
        job->runner = r;
        job->pid = r->pid;
        job->result_fd = -1;
        if (runner_send(r) == 0)
            return 0;
        msg_warn_errno("%s: hand request to %s pid %ld", job->msg->id, r->program,
                       (long)r->pid);
        if (attempt == 0 && r->out_pos == 0 && r->out_file >= 0) {
            /* nothing reached it: retire it, take the job to a new runner */
            file_fd = r->out_file;
            r->out_file = -1;
            r->job = NULL;
            job->runner = NULL;
            runner_close(r);
            continue;
        }
        /* the job ends when the runner is seen gone (pool_check) */
        runner_close(r);
        return 0;
    }
}

/* Whether the job's results now include the empty record that ends them. */
static int results_ended(struct qmgr_runner *r)
{
    struct strbuf *res = &r->job->results;
    while (r->scan_pos < res->len) {
        const char *rec = res->s + r->scan_pos;
        const char *nul = memchr(rec, '\0', res->len - r->scan_pos);
        if (!nul)
            return 0;
        r->scan_pos += (size_t)(nul - rec) + 1;
        if (nul == rec)
            return 1;
    }
    return 0;
}

/* Read what the runner wrote: results of its request, the end of them, or
 * EOF when it is gone. */
static void runner_read(struct qmgr_runner *r)
{
    char buf[8192];
    while (r->fd >= 0) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            runner_close(r);        /* EOF (or an error): the runner is gone */
            return;
        }
        struct qmgr_job *job = r->job;
        if (!job || job->results.len + (size_t)n > QMGR_MAX_RESULTS) {
            msg_warn("%s pid %ld: %s; stopping it", r->program, (long)r->pid,
                     job ? "too many result bytes" : "output while idle");
            pool_stop(r);
            return;
        }
        strbuf_append(&job->results, buf, (size_t)n);
        if (results_ended(r)) {
            job->complete = 1;
            job->runner = NULL;
            r->job = NULL;
            r->idle_since = monotonic_now();
        }
    }
}

void pool_stop(struct qmgr_runner *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGKILL);
    runner_close(r);
}

short pool_events(const struct qmgr_runner *r)
{
    if (r->fd < 0)
        return 0;
    return (short)(POLLIN | (r->out_pos < r->out.len ? POLLOUT : 0));
}

void pool_io(struct qmgr_runner *r, short revents)
{
    if ((revents & POLLOUT) && r->fd >= 0 && runner_send(r) != 0) {
        msg_warn_errno("%s pid %ld: send request", r->program, (long)r->pid);
        runner_close(r);
    }
    if (revents & (POLLIN | POLLHUP | POLLERR))
        runner_read(r);
}

int pool_reap(pid_t pid, int status)
{
    for (struct qmgr_runner *r = qmgr.runners; r; r = r->next)
        if (r->pid == pid && !r->exited) {
            r->exited = 1;
            r->wait_status = status;
            return 1;
        }
    return 0;
}

double pool_check(double now)
{
    double next = 0;
    struct qmgr_runner **link = &qmgr.runners;
    while (*link) {
        struct qmgr_runner *r = *link;
        if (r->job && r->exited) {
            runner_read(r);         /* what it wrote before it died */
            runner_close(r);        /* nothing more can come */
            if (r->job) {
                /* gone in the middle of a request: the rest is deferred */
                struct qmgr_job *job = r->job;
                job->complete = 1;
                job->exited = 1;
                job->wait_status = r->wait_status;
                job->lost = r->service;
                job->runner = NULL;
                r->job = NULL;
            }
        }
        if (!r->job) {
            double due = r->idle_since + (double)qmgr.conf.max_idle;
            if (r->fd < 0 || r->exited || qmgr.stopping || r->generation != qmgr.generation
                || r->uses >= qmgr.conf.max_use || now >= due
                || strcmp(r->program, r->transport->program) != 0
                || r->service != (r->transport->service_socket != NULL)) {
                msg_debug("%s pid %ld retires after %lld request(s)", r->program,
                          (long)r->pid, r->uses);
                *link = r->next;
                runner_free(r);
                continue;
            }
            if (next == 0 || due < next)
                next = due;
        }
        link = &r->next;
    }
    return next;
}

void pool_shutdown(void)
{
    while (qmgr.runners) {
        struct qmgr_runner *r = qmgr.runners;
        qmgr.runners = r->next;
        runner_free(r);
    }
}
