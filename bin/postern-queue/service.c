/* service.c - the queue service, `postern-queue -S` (postern-queue(8),
 * doc/injection.md "The queue service"): main.cf is read once; clients of
 * the unix socket queue_directory/public/queue (bound here, or passed by
 * systemd) hand it the descriptors of one message at a time, and a
 * persistent worker - a child forked without exec that runs the injection
 * of injection_server.c one message after another - stores each.
 *
 * Protocol (service to client: a tag byte, then its payload):
 *   on accept           'R'
 *   client request      'Q' with the message, envelope and optional status
 *                       descriptors (SCM_RIGHTS)
 *   when it is stored   'S' and the injection's wait status (int, host order)
 *   when stopping       'X': send no more requests on this connection
 * A client may send one request after another on one connection (smtpd:
 * one connection per session, made at MAIL), each after the status of the
 * one before.  A connection closed without a status means a temporary
 * failure.  The client's uid (SO_PEERCRED) is the caller's uid of a
 * set-group-id injector.
 *
 * Workers: at most default_process_limit, one message at a time each; one
 * idle worker is kept ready (forked off the client's path); a worker
 * retires after max_use messages and an idle one beyond the first after
 * max_idle; a worker that dies is replaced, and the message it held gets
 * its wait status (killed: a temporary failure), so no other message
 * shares its fate.  Requests that find no free worker wait, in order. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdpass.h"
#include "listenfds.h"
#include "log.h"
#include "privdrop.h"
#include "queue.h"
#include "queuefile.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"
#include "monotonic.h"

#define CLOSE_GRACE_MS      1000    /* after 'X', for a request already on its way */
#define LISTEN_BACKLOG      128
#define CONNECTIONS_PER_WORKER 10   /* sessions hold connections; workers are few */
#define REQUEST_BYTE        'Q'
#define READY_BYTE          'R'
#define STATUS_BYTE         'S'
#define CLOSING_BYTE        'X'

enum client_state {
    CLIENT_IDLE,                    /* between requests */
    CLIENT_WAITING,                 /* a request waits for a worker */
    CLIENT_BUSY,                    /* a worker stores its message */
};

/* One client connection. */
struct client {
    int conn;                       /* -1: free */
    uid_t uid;                      /* SO_PEERCRED */
    enum client_state state;
    int fds[3];                     /* WAITING: the request's descriptors */
    int fd_count;
    unsigned long long arrival;     /* WAITING: order of arrival */
    int closing;                    /* 'X' sent */
    long long close_deadline;       /* ms */
};

/* One worker. */
struct worker {
    pid_t pid;                      /* 0: free */
    int ctl;                        /* our end of its socketpair; -1: retiring */
    struct client *client;          /* the request it serves, or NULL */
    long uses;
    long long idle_since;           /* ms */
};

/* What a worker gets with the descriptors of a request. */
struct worker_request {
    uint32_t uid;
    uint8_t record_caller;          /* the uid attribute is uid */
    uint8_t fd_count;
};

static struct {
    int listen_fd;
    int signal_fd;
    int bound;                      /* we bound the socket (not systemd) */
    char *socket_path;
    char *pid_path;
    int pid_fd;
    struct client *clients;
    size_t client_limit, clients_used;
    struct worker *workers;
    size_t worker_limit;
    long max_use;
    long long max_idle_ms;
    unsigned long long arrivals;
    int stopping;
    uid_t trusted_uid;              /* -t: smtpd's user, trusted as our own */
} service = {.listen_fd = -1, .signal_fd = -1, .pid_fd = -1, .trusted_uid = (uid_t)-1};

void service_trust(uid_t uid)
{
    service.trusted_uid = uid;
}

#define LISTEN_FDS_START    3       /* sd_listen_fds(3) */

static int systemd_fds;             /* how many sockets systemd passed */

int service_prepare_fds(void)
{
    int fd = -1;
    systemd_fds = listen_fds_take();
    if (systemd_fds == 1) {
        fd = fcntl(LISTEN_FDS_START, F_DUPFD_CLOEXEC, 10);
        if (fd < 0)
            _exit(INJECT_EXIT_INTERNAL);
        close(LISTEN_FDS_START);
    }
    for (int i = 0; i <= 3; i++)
        if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) != i)
            _exit(INJECT_EXIT_INTERNAL);
    return fd;
}

/* The pid file queue_directory/pid/queue.pid, locked for our whole life: a
 * second service on the same queue refuses to run. */
static void write_pid_file(const char *queue_dir)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/pid/queue.pid", queue_dir);
    service.pid_path = strbuf_detach(&path);
    service.pid_fd = pid_file_lock(service.pid_path, &err);
    if (service.pid_fd < 0)
        msg_fatal_temp("queue service: %s", err.s);
    strbuf_free(&err);
}

/* Bind and listen on queue_directory/public/queue with this mode. */
static int bind_socket(const char *queue_dir, mode_t mode)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_SERVICE, queue_dir);
    service.socket_path = strbuf_detach(&path);
    /* the pid file's lock says no other service uses it: a socket left by
     * a killed one goes */
    int fd = unix_listen(service.socket_path, mode, (uid_t)-1, (gid_t)-1, LISTEN_BACKLOG, &err);
    if (fd < 0)
        msg_fatal_temp("%s", err.s);
    service.bound = 1;
    strbuf_free(&err);
    return fd;
}

/* Stop taking connections (SIGTERM): new clients find no socket and
 * run the set-group-id injector; those already connected are served. */
static void stop_listening(void)
{
    if (service.stopping)
        return;
    service.stopping = 1;
    /* EACCES: run by root as another user (-u), in a directory that is
     * not ours; whoever started us removes it (postern stop) */
    if (service.bound && unlink(service.socket_path) < 0 && errno != ENOENT && errno != EACCES)
        msg_warn_errno("remove %s", service.socket_path);
}

/* Close a client's connection (and a waiting request's descriptors). */
static void client_close(struct client *c)
{
    for (int i = 0; i < c->fd_count; i++)
        close(c->fds[i]);
    c->fd_count = 0;
    close(c->conn);
    c->conn = -1;
    service.clients_used--;
}

/* Send a tag and its payload to a client; -1 when it is gone. */
static int client_send(struct client *c, char tag, const void *payload, size_t len)
{
    char buf[1 + sizeof(int32_t)];
    buf[0] = tag;
    if (len)
        memcpy(buf + 1, payload, len);
    return send(c->conn, buf, 1 + len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)(1 + len) ? 0 : -1;
}

/* A request is done (stored, refused or its worker died): its wait status
 * to the client, which may send the next one. */
static void client_done(struct client *c, int wait_status)
{
    int32_t word = wait_status;
    c->state = CLIENT_IDLE;
    if (client_send(c, STATUS_BYTE, &word, sizeof word) < 0) {
        /* a client that had its K need not wait for the status: smtpd
         * ends its session at QUIT without reading the last one */
        if (errno != EPIPE && errno != ECONNRESET)
            msg_warn_errno("queue service: status to a client");
        client_close(c);
        return;
    }
    if (service.stopping && !c->closing) {
        c->closing = 1;
        c->close_deadline = monotonic_ms() + CLOSE_GRACE_MS;
        if (client_send(c, CLOSING_BYTE, NULL, 0) < 0)
            client_close(c);
    }
}

/* Accept the connections waiting, while there is room. */
static void accept_clients(void)
{
    while (service.clients_used < service.client_limit) {
        struct ucred cred;
        struct strbuf err = STRBUF_INIT;
        int conn = unix_accept(service.listen_fd, SOCK_CLOEXEC | SOCK_NONBLOCK, &cred, &err);
        if (conn < 0) {
            if (err.len)
                msg_warn("queue service: %s", err.s);
            strbuf_free(&err);
            return;
        }
        if (cred.uid == (uid_t)-1) {
            msg_warn("queue service: the client's uid cannot be read (SO_PEERCRED)");
            close(conn);
            continue;
        }
        /* ready: the client may pass its descriptors whenever it likes */
        static const char ready = READY_BYTE;
        if (send(conn, &ready, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
            close(conn);            /* the client gave up waiting */
            continue;
        }
        for (size_t i = 0; i < service.client_limit; i++) {
            struct client *c = &service.clients[i];
            if (c->conn < 0) {
                *c = (struct client){.conn = conn, .uid = cred.uid, .state = CLIENT_IDLE};
                service.clients_used++;
                break;
            }
        }
    }
}

/* Read a client's request: the byte 'Q' with the message, envelope and
 * (optional) status descriptors; the client then waits for a worker.  A
 * client that went away or sent something else is closed. */
static void receive_request(struct client *c)
{
    char byte[4];
    int got[FDPASS_MAX_FDS];
    size_t count = 0;
    ssize_t n = fdpass_recv(c->conn, byte, sizeof byte, got, &count);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n != 1 || byte[0] != REQUEST_BYTE || count < 2 || count > 3) {
        if (n > 0 || count > 0)
            msg_warn("queue service: malformed request from a client");
        for (size_t i = 0; i < count; i++)
            close(got[i]);
        client_close(c);
        return;
    }
    memcpy(c->fds, got, count * sizeof(int));
    c->fd_count = (int)count;
    c->state = CLIENT_WAITING;
    c->arrival = ++service.arrivals;
}

/* In a worker: forget the service's descriptors. */
static void worker_close_inherited(int own_ctl)
{
    for (size_t i = 0; i < service.client_limit; i++)
        if (service.clients[i].conn >= 0) {
            for (int j = 0; j < service.clients[i].fd_count; j++)
                close(service.clients[i].fds[j]);
            close(service.clients[i].conn);
        }
    for (size_t i = 0; i < service.worker_limit; i++)
        if (service.workers[i].pid > 0 && service.workers[i].ctl >= 0
            && service.workers[i].ctl != own_ctl)
            close(service.workers[i].ctl);
    if (service.listen_fd >= 0)
        close(service.listen_fd);
    close(service.signal_fd);
    if (service.pid_fd >= 0)
        close(service.pid_fd);
}

/* Put the request's descriptors on 0, 1 and 3 (none there: fd 3 closed,
 * so the injection skips the status channel).  0 or -1. */
static int worker_place_fds(const int *fds, int count)
{
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0
        || (count == 3 ? dup2(fds[2], 3) < 0 : close(3) < 0))
        return -1;
    for (int i = 0; i < count; i++)
        close(fds[i]);
    return 0;
}

/* Between messages: /dev/null on 0, 1 and 3, so nothing of the last
 * message stays open and no descriptor received lands there. */
static int worker_clear_fds(int null_fd)
{
    return dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 3) < 0 ? -1 : 0;
}

/* A worker: one request after another from ctl until the service closes
 * it (retired, or stopping).  Each message is stored by inject_message()
 * exactly as a postern-queue process would; its exit code goes back as
 * a wait status. */
static _Noreturn void worker_main(int ctl, pid_t service_pid)
{
    /* only the service reports our results to its clients: should it
     * die, so do we, before storing a message its client would be told
     * had failed (a 451 for a stored message is a duplicate later) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != service_pid)
        _exit(INJECT_EXIT_INTERNAL);
    worker_close_inherited(ctl);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        _exit(INJECT_EXIT_INTERNAL);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0 || worker_clear_fds(null_fd) < 0)
        _exit(INJECT_EXIT_INTERNAL);
    for (;;) {
        struct worker_request req;
        int fds[FDPASS_MAX_FDS];
        size_t count = 0;
        ssize_t n;
        do
            n = fdpass_recv(ctl, &req, sizeof req, fds, &count);
        while (n < 0 && errno == EINTR);
        if (n == 0)
            exit(0);                /* retired */
        if (n != (ssize_t)sizeof req || count != req.fd_count || count < 2 || count > 3)
            _exit(INJECT_EXIT_INTERNAL);
        if (worker_place_fds(fds, (int)count) < 0)
            _exit(INJECT_EXIT_INTERNAL);
        if (req.record_caller)
            inject_record_caller((uid_t)req.uid);
        int code = inject_message();
        if (worker_clear_fds(null_fd) < 0)
            _exit(INJECT_EXIT_INTERNAL);
        int32_t word = (code & 0xff) << 8;      /* as waitpid reports an exit */
        if (send(ctl, &word, sizeof word, MSG_NOSIGNAL) != (ssize_t)sizeof word)
            _exit(INJECT_EXIT_INTERNAL);
    }
}

/* Fork a worker into a free place; NULL when at the limit or fork fails. */
static struct worker *spawn_worker(void)
{
    struct worker *w = NULL;
    for (size_t i = 0; i < service.worker_limit && !w; i++)
        if (service.workers[i].pid == 0)
            w = &service.workers[i];
    if (!w)
        return NULL;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        msg_warn_errno("queue service: socketpair");
        return NULL;
    }
    pid_t service_pid = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(pair[0]);
        worker_main(pair[1], service_pid);
    }
    close(pair[1]);
    if (pid < 0) {
        msg_warn_errno("queue service: fork");
        close(pair[0]);
        return NULL;
    }
    *w = (struct worker){.pid = pid, .ctl = pair[0], .idle_since = monotonic_ms()};
    return w;
}

/* Ask a worker to go when it is idle: it exits when it reads the end. */
static void retire(struct worker *w)
{
    if (w->ctl >= 0)
        close(w->ctl);
    w->ctl = -1;
}

/* An idle worker, or NULL. */
static struct worker *idle_worker(void)
{
    for (size_t i = 0; i < service.worker_limit; i++) {
        struct worker *w = &service.workers[i];
        if (w->pid > 0 && w->ctl >= 0 && !w->client)
            return w;
    }
    return NULL;
}

/* The waiting request that came first, or NULL. */
static struct client *first_waiting(void)
{
    struct client *first = NULL;
    for (size_t i = 0; i < service.client_limit; i++) {
        struct client *c = &service.clients[i];
        if (c->conn >= 0 && c->state == CLIENT_WAITING && (!first || c->arrival < first->arrival))
            first = c;
    }
    return first;
}

/* Hand waiting requests to idle workers (forking one when none is idle
 * and the limit allows). */
static void dispatch(void)
{
    struct client *c;
    while ((c = first_waiting())) {
        struct worker *w = idle_worker();
        if (!w)
            w = spawn_worker();
        if (!w)
            return;             /* all busy: it waits for the next to finish */
        struct worker_request req = {.uid = (uint32_t)c->uid, .fd_count = (uint8_t)c->fd_count,
                                     .record_caller = c->uid != 0 && c->uid != geteuid()
                                                      && c->uid != service.trusted_uid};
        if (fdpass_send(w->ctl, &req, sizeof req, c->fds, (size_t)c->fd_count)
            != (ssize_t)sizeof req) {
            msg_warn_errno("queue service: pass a request to worker %ld", (long)w->pid);
            retire(w);          /* it died, or will: reaped below */
            continue;
        }
        for (int i = 0; i < c->fd_count; i++)
            close(c->fds[i]);
        c->fd_count = 0;
        c->state = CLIENT_BUSY;
        w->client = c;
    }
}

/* A worker's answer: the request's wait status, to its client. */
static void worker_answered(struct worker *w)
{
    int32_t word;
    ssize_t n = recv(w->ctl, &word, sizeof word, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n != (ssize_t)sizeof word) {
        retire(w);              /* it died: reap_workers tells its client */
        return;
    }
    struct client *c = w->client;
    w->client = NULL;
    w->uses++;
    w->idle_since = monotonic_ms();
    if (c)
        client_done(c, word);
    if (w->uses >= service.max_use || service.stopping)
        retire(w);
}

/* Workers that ended: a request one held gets its wait status (a
 * temporary failure); the place is free for a new worker. */
static void reap_workers(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < service.worker_limit; i++) {
            struct worker *w = &service.workers[i];
            if (w->pid != pid)
                continue;
            if (WIFSIGNALED(status))
                msg_warn("queue service: worker %ld killed by signal %d", (long)pid,
                         WTERMSIG(status));
            else if (w->client || w->ctl >= 0)
                msg_warn("queue service: worker %ld exited with status %d", (long)pid,
                         WEXITSTATUS(status));
            if (w->client)
                client_done(w->client, status);
            if (w->ctl >= 0)
                close(w->ctl);
            *w = (struct worker){.pid = 0, .ctl = -1};
            break;
        }
    }
}

/* Keep one idle worker ready (off the clients' path), and let idle ones
 * beyond it go after max_idle; returns the ms until the next check, or -1. */
static long long tend_workers(long long now)
{
    size_t idle = 0;
    long long next = -1;
    for (size_t i = 0; i < service.worker_limit; i++) {
        struct worker *w = &service.workers[i];
        if (w->pid <= 0 || w->ctl < 0 || w->client)
            continue;
        if (service.stopping) {
            retire(w);
            continue;
        }
        if (idle++ == 0)
            continue;
        long long due = w->idle_since + service.max_idle_ms;
        if (due <= now)
            retire(w);
        else if (next < 0 || due - now < next)
            next = due - now;
    }
    if (idle == 0 && !service.stopping)
        (void)spawn_worker();
    return next;
}

/* Workers still running (busy or retiring). */
static size_t workers_alive(void)
{
    size_t n = 0;
    for (size_t i = 0; i < service.worker_limit; i++)
        n += service.workers[i].pid > 0;
    return n;
}

/* Read the signals that arrived: workers to reap, a request to stop. */
static void handle_signals(void)
{
    struct signalfd_siginfo info;
    while (read(service.signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
            stop_listening();
        else if (info.ssi_signo == SIGHUP)
            msg_info("queue service: SIGHUP ignored; restart the service to read main.cf");
    }
    reap_workers();
}

/* Stopping: every idle client is told to send no more ('X') and closed
 * when it closes or after CLOSE_GRACE_MS (a request already on its way is
 * still served). */
static void tell_clients_closing(long long now)
{
    for (size_t i = 0; i < service.client_limit; i++) {
        struct client *c = &service.clients[i];
        if (c->conn < 0 || c->state != CLIENT_IDLE)
            continue;
        if (!c->closing) {
            c->closing = 1;
            c->close_deadline = now + CLOSE_GRACE_MS;
            if (client_send(c, CLOSING_BYTE, NULL, 0) < 0)
                client_close(c);
        } else if (c->close_deadline <= now) {
            client_close(c);
        }
    }
}

/* One round: wait for a signal, a client, a request or a worker's answer. */
static void serve_once(void)
{
    long long now = monotonic_ms();
    if (service.stopping)
        tell_clients_closing(now);
    long long timeout = tend_workers(now);
    if (service.stopping && (timeout < 0 || timeout > 500))
        timeout = 500;          /* the clients' grace */
    size_t max = service.client_limit + service.worker_limit + 2, n = 0;
    static struct pollfd *fds;
    static struct client **clients;
    static struct worker **workers;
    if (!fds) {
        fds = xcalloc(max, sizeof *fds);
        clients = xcalloc(max, sizeof *clients);
        workers = xcalloc(max, sizeof *workers);
    }
    memset(clients, 0, max * sizeof *clients);
    memset(workers, 0, max * sizeof *workers);
    fds[n++] = (struct pollfd){.fd = service.signal_fd, .events = POLLIN};
    int listening = service.listen_fd >= 0 && service.clients_used < service.client_limit;
    if (listening)
        fds[n++] = (struct pollfd){.fd = service.listen_fd, .events = POLLIN};
    for (size_t i = 0; i < service.client_limit; i++) {
        struct client *c = &service.clients[i];
        if (c->conn < 0 || c->state != CLIENT_IDLE)
            continue;
        clients[n] = c;
        fds[n++] = (struct pollfd){.fd = c->conn, .events = POLLIN};
    }
    for (size_t i = 0; i < service.worker_limit; i++) {
        struct worker *w = &service.workers[i];
        if (w->pid <= 0 || w->ctl < 0)
            continue;
        workers[n] = w;
        fds[n++] = (struct pollfd){.fd = w->ctl, .events = POLLIN};
    }
    if (poll(fds, n, timeout < 0 ? -1 : (int)(timeout + 1)) < 0) {
        if (errno != EINTR)
            msg_fatal_errno("queue service: poll");
    } else {
        for (size_t i = 1; i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (workers[i] && workers[i]->ctl == fds[i].fd)
                worker_answered(workers[i]);
            else if (clients[i] && clients[i]->conn == fds[i].fd && clients[i]->state == CLIENT_IDLE)
                receive_request(clients[i]);
        }
        if (fds[0].revents)
            handle_signals();
        dispatch();
        if (listening && fds[1].revents && !service.stopping)
            accept_clients();
    }
}

void service_run(int listen_fd, mode_t socket_mode, uid_t uid, gid_t gid)
{
    const char *queue_dir = conf_str("queue_directory");
    if (systemd_fds < 0 || systemd_fds > 1)
        msg_fatal("queue service: systemd passed %d sockets; expected one", systemd_fds);
    service.worker_limit = (size_t)conf_int("default_process_limit");
    service.client_limit = service.worker_limit * CONNECTIONS_PER_WORKER;
    /* a connection, and while it waits three descriptors; a worker one:
     * the soft descriptor limit is raised as far as that needs and the
     * hard limit allows, and the connections bounded by what it is then */
    struct rlimit files;
    rlim_t wanted = (rlim_t)(service.client_limit * 4 + service.worker_limit + 32);
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
        if (files.rlim_cur < wanted && files.rlim_max > files.rlim_cur) {
            files.rlim_cur = files.rlim_max == RLIM_INFINITY || files.rlim_max > wanted
                             ? wanted : files.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &files);
            (void)getrlimit(RLIMIT_NOFILE, &files);
        }
        long long spare = (long long)files.rlim_cur - 32 - (long long)service.worker_limit;
        size_t room = spare > 32 ? (size_t)(spare / 4) : 8;
        if (service.client_limit > room)
            service.client_limit = room;
    }
    service.max_use = conf_int("max_use");
    service.max_idle_ms = conf_time("max_idle") * 1000;
    service.clients = xcalloc(service.client_limit, sizeof *service.clients);
    for (size_t i = 0; i < service.client_limit; i++)
        service.clients[i].conn = -1;
    service.workers = xcalloc(service.worker_limit, sizeof *service.workers);
    for (size_t i = 0; i < service.worker_limit; i++)
        service.workers[i].ctl = -1;
    if (listen_fd < 0) {
        write_pid_file(queue_dir);
        listen_fd = bind_socket(queue_dir, socket_mode);
    }
    /* -u: started by root (`postern start`), which binds in a directory
     * the service's user may not write; then that user for good */
    if (uid != (uid_t)-1) {
        struct strbuf drop_err = STRBUF_INIT;
        if ((service.socket_path && chown(service.socket_path, uid, gid) < 0)
            || privileges_drop(uid, gid, &gid, 1, &drop_err) < 0)
            msg_fatal("queue service: cannot become uid %ld gid %ld: %s", (long)uid, (long)gid,
                      drop_err.len ? drop_err.s : strerror(errno));
        strbuf_free(&drop_err);
    }
    struct strbuf err = STRBUF_INIT;
    if (listener_prepare(listen_fd, &err) < 0)
        msg_fatal("queue service: %s", err.s);
    strbuf_free(&err);
    service.listen_fd = listen_fd;
    static const int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    service.signal_fd = signal_fd_open(signals, sizeof signals / sizeof signals[0]);
    if (service.signal_fd < 0)
        msg_fatal_errno("signalfd");
    if (service.pid_fd >= 0 && pid_file_publish(service.pid_fd) < 0)
        msg_fatal_temp_errno("write %s", service.pid_path);
    msg_info("queue service: ready on %s (process limit %zu)",
             service.socket_path ? service.socket_path : "the socket systemd passed",
             service.worker_limit);
    while (!service.stopping || service.clients_used > 0 || workers_alive() > 0) {
        serve_once();
        if (service.stopping && service.listen_fd >= 0) {
            accept_clients();       /* those already connected are served */
            close(service.listen_fd);
            service.listen_fd = -1;
        }
    }
    if (service.pid_fd >= 0 && unlink(service.pid_path) < 0 && errno != EACCES)
        msg_warn_errno("remove %s", service.pid_path);
    msg_info("queue service: stopped");
    exit(0);
}
