/* zygote.c - fork an initialised per-connection program instead of exec'ing
 * it per connection (see zygote.h): the zygote's loop, its children forked
 * ahead, and the two message functions postern-accept uses. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "privdrop.h"
#include "strbuf.h"
#include "xalloc.h"
#include "zygote.h"

/* Variables that describe a connection: the child gets only the new ones. */
static const char *const connection_variables[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
    "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCPCONNNUM",
    "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID",
    "REMOTE_ADDR", "REMOTE_PORT", "POSTERN_STRESS",
};

static struct zygote_hooks hooks;

/* How long after handing a connection to a waiting child the zygote
 * forks the next, while others still wait: long enough for the child's
 * greeting and EHLO, which a fork beside them slowed by ~0.3 ms at c=1
 * on 2 cores (bench/steps.py); short beside a session. */
#define REFILL_DELAY_MS 3

void zygote_set_hooks(const struct zygote_hooks *h)
{
    hooks = *h;
}

/* Milliseconds of the monotonic clock. */
static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zygote_send_connection(int zygote_fd, int conn, const char *variables, size_t len)
{
    return fdpass_send(zygote_fd, variables, len, &conn, 1) == (ssize_t)len ? 0 : -1;
}

int zygote_read_report(int zygote_fd, struct zygote_report *report)
{
    ssize_t n;
    do
        n = recv(zygote_fd, report, sizeof *report, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (n < 0)
        return -1;
    if (n != (ssize_t)sizeof *report) {
        errno = EPROTO;
        return -1;
    }
    return 1;
}

/* The program's refresh, if a second has passed since the last; 1 when
 * it read something again. */
static int refresh(void)
{
    static time_t refreshed;
    struct timespec now;
    if (!hooks.refresh || clock_gettime(CLOCK_MONOTONIC_COARSE, &now) != 0 || now.tv_sec == refreshed)
        return 0;
    refreshed = now.tv_sec;
    return hooks.refresh();
}

/* ---- children forked ahead ---- */

/* A child waiting for its connection on the other end of `fd`. */
struct waiting_child {
    pid_t pid;
    int fd;
};
static struct waiting_child *waiting;  /* hooks.pool slots */
static size_t waiting_count;
/* Children forked ahead that have not taken a connection: postern-accept
 * never heard of them, so their end is not reported. */
static pid_t *unreported;
static size_t unreported_count, unreported_size;

static void unreported_add(pid_t pid)
{
    if (unreported_count == unreported_size) {
        unreported_size = unreported_size ? unreported_size * 2 : 8;
        unreported = xreallocarray(unreported, unreported_size, sizeof *unreported);
    }
    unreported[unreported_count++] = pid;
}

/* Remove pid from the unreported; 1 when it was there. */
static int unreported_take(pid_t pid)
{
    for (size_t i = 0; i < unreported_count; i++)
        if (unreported[i] == pid) {
            unreported[i] = unreported[--unreported_count];
            return 1;
        }
    return 0;
}

/* The waiting children end (they read the end of their socket): they hold
 * what the zygote had before a reload, a tick or a changed table. */
static void retire_waiting(void)
{
    for (size_t i = 0; i < waiting_count; i++)
        close(waiting[i].fd);
    waiting_count = 0;
}

/* A waiting child has ended: it leaves the pool. */
static void waiting_ended(pid_t pid)
{
    for (size_t i = 0; i < waiting_count; i++)
        if (waiting[i].pid == pid) {
            close(waiting[i].fd);
            waiting[i] = waiting[--waiting_count];
            return;
        }
}

/* Pass the connection to a waiting child: its pid, or -1 when none is
 * left (a child that died while waiting is passed over). */
static pid_t hand_out(const char *variables, size_t len, int conn)
{
    while (waiting_count) {
        struct waiting_child child = waiting[--waiting_count];
        ssize_t sent = fdpass_send(child.fd, variables, len, &conn, 1);
        close(child.fd);        /* what was sent stays queued for the child */
        if (sent == (ssize_t)len) {
            unreported_take(child.pid);
            return child.pid;
        }
    }
    return -1;
}

/* Send a report to postern-accept; it going away ends the zygote. */
static void report(int fd, int type, pid_t pid, int status)
{
    struct zygote_report r = {type, (int32_t)pid, status};
    if (send(fd, &r, sizeof r, MSG_NOSIGNAL) != (ssize_t)sizeof r)
        _exit(0);
}

/* Receive one connection: its fd, and its variables into buf.  Returns
 * the fd, -2 at end (postern-accept gone), -1 for a malformed message
 * (lost or extra descriptors are closed: fdpass_recv). */
static int receive_connection(int fd, char *buf, size_t size, size_t *len)
{
    int fds[FDPASS_MAX_FDS];
    size_t count;
    ssize_t n = fdpass_recv(fd, buf, size - 1, fds, &count);
    if (n == 0)
        return -2;
    if (n < 0)
        return errno == EAGAIN || errno == EPROTO ? -1 : -2;
    for (size_t i = 1; i < count; i++)
        close(fds[i]);
    buf[n] = '\0';
    *len = (size_t)n;
    return count ? fds[0] : -1;
}

extern char **environ;

/* The zygote's environment without the variables of a connection, made
 * once: a child's environment is this plus its connection's variables. */
static char **base_env;
static size_t base_count;

static void make_base_environment(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    base_env = xreallocarray(NULL, n + 1, sizeof *base_env);
    for (size_t i = 0; i < n; i++) {
        size_t name_len = strcspn(environ[i], "=");
        int stale = 0;
        for (size_t j = 0; j < sizeof connection_variables / sizeof connection_variables[0]; j++)
            if (strlen(connection_variables[j]) == name_len
                && strncmp(environ[i], connection_variables[j], name_len) == 0)
                stale = 1;
        if (!stale)
            base_env[base_count++] = environ[i];
    }
    base_env[base_count] = NULL;
}

/* In every child, right after the fork: what belongs to the zygote goes
 * (its sockets, the other waiting children's sockets, whose end must be
 * seen when the zygote closes them), and the signal mask of the program. */
static void leave_zygote(int fd, int sigfd, const sigset_t *old)
{
    close(fd);
    close(sigfd);
    for (size_t i = 0; i < waiting_count; i++)
        close(waiting[i].fd);
    waiting_count = 0;
    sigprocmask(SIG_SETMASK, old, NULL);
}

/* In the child: the connection on 0 and 1, its variables in the environment
 * (the "NAME=value" strings received, pointed to where they lie). */
static void become_connection(int conn, char *variables, size_t len)
{
    if (dup2(conn, 0) < 0 || dup2(conn, 1) < 0)
        _exit(EX_TEMPFAIL);
    close(conn);
    size_t count = 0;
    for (size_t at = 0; at < len; at += strlen(variables + at) + 1)
        count++;
    char **env = xreallocarray(NULL, base_count + count + 1, sizeof *env);
    memcpy(env, base_env, base_count * sizeof *env);
    size_t n = base_count;
    for (size_t at = 0; at < len; at += strlen(variables + at) + 1)
        if (variables[at] != '=' && strchr(variables + at, '='))
            env[n++] = variables + at;
    env[n] = NULL;
    environ = env;
}

/* Fork a child that waits for one connection: 0 in the zygote (the
 * child is in the pool, or fork failed: -1), 1 in the child once its
 * connection has come. */
static int fork_ahead(int fd, int sigfd, const sigset_t *old, char *variables, size_t size)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        msg_warn_errno("zygote: socketpair");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        msg_warn_errno("zygote: fork");
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid > 0) {
        close(pair[1]);
        waiting[waiting_count++] = (struct waiting_child){pid, pair[0]};
        unreported_add(pid);
        return 0;
    }
    leave_zygote(fd, sigfd, old);
    close(pair[0]);
    size_t len = 0;
    int conn = receive_connection(pair[1], variables, size, &len);
    if (conn < 0)
        _exit(0);               /* retired, or the zygote has gone */
    close(pair[1]);
    become_connection(conn, variables, len);
    return 1;
}

void zygote_wait(void)
{
    const char *value = getenv(ZYGOTE_FD_VARIABLE);
    if (!value)
        return;
    int fd = atoi(value);
    unsetenv(ZYGOTE_FD_VARIABLE);
    const char *ids = getenv(ZYGOTE_USER_VARIABLE);
    if (ids) {
        char *end;
        long uid = strtol(ids, &end, 10), gid = *end == ':' ? strtol(end + 1, &end, 10) : -1;
        if (uid < 0 || gid < 0 || *end)
            msg_fatal("zygote: bad %s value \"%s\"", ZYGOTE_USER_VARIABLE, ids);
        /* a zygote restarted after postern-accept dropped its privileges
         * has them already */
        if ((uid_t)uid != geteuid() || (gid_t)gid != getegid()) {
            struct strbuf err = STRBUF_INIT;
            gid_t group = (gid_t)gid;
            if (privileges_drop((uid_t)uid, (gid_t)gid, &group, 1, &err) < 0)
                msg_fatal("zygote: drop to %s: %s", ids, strbuf_str(&err));
            strbuf_free(&err);
        }
        unsetenv(ZYGOTE_USER_VARIABLE);
    }
    /* the time zone is read here once, not by every child's first log line */
    tzset();
    make_base_environment();
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigaddset(&chld, SIGHUP);       /* postern-accept passes its SIGHUP on */
    if (sigprocmask(SIG_BLOCK, &chld, &old) < 0)
        msg_fatal_errno("zygote: sigprocmask");
    int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        msg_fatal_errno("zygote: signalfd");
    static char variables[ZYGOTE_MESSAGE_MAX];
    if (hooks.pool)
        waiting = xreallocarray(NULL, hooks.pool, sizeof *waiting);
    long long next_tick = hooks.tick && hooks.tick_seconds ? monotonic_ms() + hooks.tick_seconds * 1000LL : 0;
    /* not before: a while after a hand-out, so that the fork does not
     * take the CPU from the child that has just begun its session (its
     * greeting and EHLO); a second after a failed fork */
    long long refill_after = 0;
    for (;;) {
        struct pollfd fds[2] = {{fd, POLLIN, 0}, {sigfd, POLLIN, 0}};
        long long wait = next_tick ? next_tick - monotonic_ms() : -1;
        if (next_tick && wait < 0)
            wait = 0;
        /* a connection that is waiting goes first; the pool is filled
         * when none is */
        long long now = monotonic_ms();
        int refill = waiting_count < hooks.pool && now >= refill_after;
        if (refill)
            wait = 0;
        else if (waiting_count < hooks.pool && (wait < 0 || refill_after - now < wait))
            wait = refill_after - now;
        int ready = poll(fds, 2, wait > 1000000000 ? 1000000000 : (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal_errno("zygote: poll");
        }
        if (next_tick && monotonic_ms() >= next_tick) {
            hooks.tick();
            next_tick = monotonic_ms() + hooks.tick_seconds * 1000LL;
            retire_waiting();   /* they hold the keys before the tick */
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            int hup = 0;
            while (read(sigfd, &info, sizeof info) > 0)
                hup |= info.ssi_signo == SIGHUP;
            if (hup && hooks.reload) {
                hooks.reload();
                retire_waiting();
            }
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (!unreported_take(pid)) {
                    report(fd, ZYGOTE_ENDED, pid, status);
                    continue;
                }
                waiting_ended(pid);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                    msg_warn("zygote: child %ld forked ahead ended with status 0x%x",
                             (long)pid, (unsigned)status);
            }
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int forked = refill ? fork_ahead(fd, sigfd, &old, variables, sizeof variables) : 0;
            if (forked > 0)
                return;         /* a child, with its connection */
            if (forked < 0)
                refill_after = monotonic_ms() + 1000;
            continue;
        }
        size_t len = 0;
        int conn = receive_connection(fd, variables, sizeof variables, &len);
        if (conn == -2)
            _exit(0);           /* postern-accept has stopped */
        if (conn < 0) {
            report(fd, ZYGOTE_FAILED, 0, 0);
            continue;
        }
        /* a child forked ahead serves with what the zygote had then */
        if (refresh() | (hooks.changed && hooks.changed()))
            retire_waiting();
        pid_t pid = hand_out(variables, len, conn);
        if (pid > 0 && waiting_count)
            refill_after = monotonic_ms() + REFILL_DELAY_MS;
        if (pid < 0) {
            pid = fork();
            if (pid == 0) {
                leave_zygote(fd, sigfd, &old);
                become_connection(conn, variables, len);
                return;
            }
        }
        close(conn);
        if (pid < 0) {
            msg_warn_errno("zygote: fork");
            report(fd, ZYGOTE_FAILED, 0, 0);
        } else {
            report(fd, ZYGOTE_STARTED, pid, 0);
        }
    }
}
