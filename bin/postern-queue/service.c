/* service.c - the queue service, `postern-queue -S` (postern-queue(8),
 * doc/injection.md "The queue service"): main.cf is read once; for each
 * client of the unix socket queue_directory/public/queue (bound here, or
 * passed by systemd) one child is forked, without exec, that runs the
 * injection of injection_server.c on the descriptors the client passed, and the
 * child's wait status goes back to the client when it ends.
 *
 * Protocol, per connection: the service sends one byte 'R' when it accepts
 * (it has a slot for the client); the client then sends one byte 'Q' with
 * two or three descriptors (SCM_RIGHTS): the message, the envelope and,
 * optionally, the status channel; the service answers with the child's
 * wait status as a 4-byte int (host order) and closes.  (A client that
 * gets no 'R' in time may give up and run postern-queue itself: it has
 * passed nothing yet.)  A connection closed without a
 * status means a temporary failure.  The client's uid (SO_PEERCRED) is the
 * caller's uid of a set-group-id injector.  At most default_process_limit
 * connections are served at once; beyond that the service stops accepting
 * until a child ends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

#define REQUEST_TIMEOUT_MS  10000   /* a client sends its descriptors at once */
#define LISTEN_BACKLOG      128
#define REQUEST_BYTE        'Q'
#define READY_BYTE          'R'

/* One client connection: waiting for its descriptors (pid 0), or served
 * by a child (pid > 0). */
struct slot {
    int conn;                       /* -1: free */
    pid_t pid;
    uid_t uid;                      /* SO_PEERCRED */
    long long deadline;             /* ms, while waiting */
};

static struct {
    int listen_fd;
    int signal_fd;
    int bound;                      /* we bound the socket (not systemd) */
    char *socket_path;
    char *pid_path;
    int pid_fd;
    struct slot *slots;
    size_t limit, used;
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

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* A free slot, or NULL. */
static struct slot *free_slot(void)
{
    for (size_t i = 0; i < service.limit; i++)
        if (service.slots[i].conn < 0)
            return &service.slots[i];
    return NULL;
}

/* Close a connection and free its slot. */
static void release(struct slot *s)
{
    close(s->conn);
    s->conn = -1;
    s->pid = 0;
    service.used--;
}

/* Accept the connections waiting, while slots are free. */
static void accept_clients(void)
{
    while (service.used < service.limit) {
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
        /* ready: only now may the client pass its descriptors */
        static const char ready = READY_BYTE;
        if (send(conn, &ready, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
            close(conn);            /* the client gave up waiting */
            continue;
        }
        struct slot *s = free_slot();
        *s = (struct slot){.conn = conn, .uid = cred.uid,
                           .deadline = now_ms() + REQUEST_TIMEOUT_MS};
        service.used++;
    }
}

/* Read a client's request: the byte 'Q' with the message, envelope and
 * (optional) status descriptors.  Their count (2 or 3) in fds; 0 when
 * nothing has come yet; -1 when the client went away or sent something
 * else (what came is closed). */
static int receive_request(int conn, int fds[3])
{
    char byte[4];
    int got[FDPASS_MAX_FDS];
    size_t count = 0;
    ssize_t n = fdpass_recv(conn, byte, sizeof byte, got, &count);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n != 1 || byte[0] != REQUEST_BYTE || count < 2 || count > 3) {
        if (n != 0)
            msg_warn("queue service: malformed request from a client");
        for (size_t i = 0; i < count; i++)
            close(got[i]);
        return -1;
    }
    memcpy(fds, got, count * sizeof(int));
    return (int)count;
}

/* In the child: the client's descriptors on 0, 1 and 3 (none there: fd 3
 * closed, so the injection skips the status channel), nothing of the
 * service's left open but the log; then the injection, trusting the
 * client as a set-group-id injector trusts its caller. */
static _Noreturn void run_child(struct slot *self, int fds[3], int count, pid_t service_pid)
{
    /* only the service reports our exit status to the client: should it
     * die, so do we, before storing a message the client would be told
     * had failed (a 451 for a stored message is a duplicate later) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != service_pid)
        _exit(INJECT_EXIT_INTERNAL);
    for (size_t i = 0; i < service.limit; i++)
        if (service.slots[i].conn >= 0)
            close(service.slots[i].conn);
    if (service.listen_fd >= 0)
        close(service.listen_fd);
    close(service.signal_fd);
    if (service.pid_fd >= 0)
        close(service.pid_fd);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        _exit(INJECT_EXIT_INTERNAL);
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0
        || (count == 3 ? dup2(fds[2], 3) < 0 : close(3) < 0))
        _exit(INJECT_EXIT_INTERNAL);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    if (self->uid != 0 && self->uid != geteuid() && self->uid != service.trusted_uid)
        inject_record_caller(self->uid);
    inject_run();
}

/* A client's descriptors have arrived (or it went away): fork its child. */
static void serve(struct slot *s)
{
    int fds[3];
    int count = receive_request(s->conn, fds);
    if (count == 0)
        return;
    if (count < 0) {
        release(s);
        return;
    }
    pid_t service_pid = getpid();
    pid_t pid = fork();
    if (pid == 0)
        run_child(s, fds, count, service_pid);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    if (pid < 0) {
        msg_warn_errno("queue service: fork");
        release(s);             /* the client sees a temporary failure */
        return;
    }
    s->pid = pid;
}

/* Children that ended: their wait status to their clients. */
static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < service.limit; i++) {
            struct slot *s = &service.slots[i];
            if (s->conn < 0 || s->pid != pid)
                continue;
            if (WIFSIGNALED(status))
                msg_warn("queue service: child %ld killed by signal %d", (long)pid,
                         WTERMSIG(status));
            int32_t word = status;
            if (send(s->conn, &word, sizeof word, MSG_NOSIGNAL) != (ssize_t)sizeof word)
                msg_warn_errno("queue service: status of child %ld to its client", (long)pid);
            release(s);
            break;
        }
    }
}

/* Read the signals that arrived: children to reap, a request to stop. */
static void handle_signals(void)
{
    struct signalfd_siginfo info;
    while (read(service.signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
            stop_listening();
        else if (info.ssi_signo == SIGHUP)
            msg_info("queue service: SIGHUP ignored; restart the service to read main.cf");
    }
    reap_children();
}

/* One round: wait for a signal, a client or a request, and handle it. */
static void serve_once(void)
{
    size_t max = service.limit + 2, n = 0;
    struct pollfd *fds = xcalloc(max, sizeof *fds);
    struct slot **waiting = xcalloc(max, sizeof *waiting);
    long long now = now_ms(), next_deadline = -1;
    fds[n++] = (struct pollfd){.fd = service.signal_fd, .events = POLLIN};
    int listening = service.listen_fd >= 0 && service.used < service.limit;
    if (listening)
        fds[n++] = (struct pollfd){.fd = service.listen_fd, .events = POLLIN};
    size_t first_client = n;
    for (size_t i = 0; i < service.limit; i++) {
        struct slot *s = &service.slots[i];
        if (s->conn < 0 || s->pid != 0)
            continue;
        if (s->deadline <= now) {
            msg_warn("queue service: client sent no request within %d seconds",
                     REQUEST_TIMEOUT_MS / 1000);
            release(s);
            continue;
        }
        if (next_deadline < 0 || s->deadline < next_deadline)
            next_deadline = s->deadline;
        waiting[n] = s;
        fds[n++] = (struct pollfd){.fd = s->conn, .events = POLLIN};
    }
    int timeout = next_deadline < 0 ? -1 : (int)(next_deadline - now + 1);
    if (poll(fds, n, timeout) < 0) {
        if (errno != EINTR)
            msg_fatal_errno("queue service: poll");
    } else {
        if (fds[0].revents)
            handle_signals();
        for (size_t i = first_client; i < n; i++)
            if (fds[i].revents && waiting[i]->conn >= 0 && waiting[i]->pid == 0)
                serve(waiting[i]);
        if (listening && fds[1].revents && !service.stopping)
            accept_clients();
    }
    free(fds);
    free(waiting);
}

void service_run(int listen_fd, mode_t socket_mode, uid_t uid, gid_t gid)
{
    const char *queue_dir = conf_str("queue_directory");
    if (systemd_fds < 0 || systemd_fds > 1)
        msg_fatal("queue service: systemd passed %d sockets; expected one", systemd_fds);
    service.limit = (size_t)conf_int("default_process_limit");
    service.slots = xcalloc(service.limit, sizeof *service.slots);
    for (size_t i = 0; i < service.limit; i++)
        service.slots[i].conn = -1;
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
             service.limit);
    while (!service.stopping || service.used > 0) {
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
