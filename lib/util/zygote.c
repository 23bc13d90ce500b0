/* zygote.c - fork an initialised per-connection program instead of exec'ing
 * it per connection (see zygote.h): the zygote's loop, its children forked
 * ahead, and the two message functions postern-accept uses. */
#include <errno.h>
#include <fcntl.h>
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
#include "filekeeper.h"
#include "log.h"
#include "privdrop.h"
#include "strbuf.h"
#include "xalloc.h"
#include "zygote.h"
#include "monotonic.h"

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

int zygote_read_report(int zygote_fd, struct zygote_report *report, int *fd)
{
    int fds[FDPASS_MAX_FDS];
    size_t count = 0;
    ssize_t n = fdpass_recv(zygote_fd, report, sizeof *report, fds, &count);
    *fd = -1;
    if (n <= 0)
        return n == 0 ? 0 : -1;
    for (size_t i = 1; i < count; i++)
        close(fds[i]);
    if (n != (ssize_t)sizeof *report) {
        if (count)
            close(fds[0]);
        errno = EPROTO;
        return -1;
    }
    if (count)
        *fd = fds[0];
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

/* A child waiting for its connection; `taken` is the read end of a pipe
 * whose write end the child closes when its connection has come (or it
 * ended); `sock` is postern-accept's end of its socket until it is sent
 * (ZYGOTE_READY), -1 after. */
struct waiting_child {
    pid_t pid;
    int taken;
    int sock;
};
static struct waiting_child *waiting;  /* hooks.pool slots */
static size_t waiting_count;
static size_t announced;                /* of them, those sent to postern-accept */
/* changes with everything that replaces the waiting children */
static int32_t generation;
/* a child not yet announced waits at most this long, while postern-accept
 * still has others: its ZYGOTE_READY goes with the next report (the end
 * of a session), so that postern-accept wakes once for both */
#define ANNOUNCE_HOLD_MS 200
static long long announce_by;

static void announce_waiting(int sock);

/* Send a report (with a descriptor when fd >= 0) to postern-accept; it
 * going away ends the zygote. */
static void report_fd(int sock, int type, pid_t pid, int status, int fd)
{
    struct zygote_report r = {type, (int32_t)pid, status};
    if (fdpass_send(sock, &r, sizeof r, &fd, fd >= 0 ? 1 : 0) != (ssize_t)sizeof r)
        _exit(0);
}

/* A report, after the waiting children not yet announced. */
static void report(int sock, int type, pid_t pid, int status)
{
    announce_waiting(sock);
    report_fd(sock, type, pid, status, -1);
}

/* Send postern-accept the sockets of the children not yet announced. */
static void announce_waiting(int sock)
{
    for (size_t i = 0; i < waiting_count; i++)
        if (waiting[i].sock >= 0) {
            report_fd(sock, ZYGOTE_READY, waiting[i].pid, generation, waiting[i].sock);
            close(waiting[i].sock);     /* the child sees its end when postern-accept closes it */
            waiting[i].sock = -1;
            announced++;
        }
    announce_by = 0;
}

/* The waiting children are replaced: they hold what the zygote had before
 * a reload, a tick or a changed table.  postern-accept closes the
 * sockets of those it has when it reads the new generation, those not
 * announced are closed here, and they end. */
static void retire_waiting(int sock, int answering_reload)
{
    for (size_t i = 0; i < waiting_count; i++) {
        close(waiting[i].taken);
        if (waiting[i].sock >= 0)
            close(waiting[i].sock);
    }
    waiting_count = announced = 0;
    announce_by = 0;
    generation++;
    report_fd(sock, ZYGOTE_RETIRE, answering_reload ? 1 : 0, generation, -1);
}

/* A waiting child has been taken or has ended: it leaves the pool.
 * Returns 1 when postern-accept had been told of it. */
static int waiting_remove(size_t i)
{
    int told = waiting[i].sock < 0;
    close(waiting[i].taken);
    if (told)
        announced--;
    else
        close(waiting[i].sock);
    waiting[i] = waiting[--waiting_count];
    return told;
}

/* A child has ended: 0 when it was not waiting, 1 when it was (it leaves
 * the pool), 2 when it was and postern-accept never heard of it. */
static int waiting_ended(pid_t pid)
{
    for (size_t i = 0; i < waiting_count; i++)
        if (waiting[i].pid == pid)
            return waiting_remove(i) ? 1 : 2;
    return 0;
}

/* Receive one connection: its fd, and its variables into buf.  Returns
 * the fd, -2 at end (postern-accept gone), -3 for a message without a
 * descriptor (postern-accept's "reload", in buf), -1 for a malformed
 * message (lost or extra descriptors are closed: fdpass_recv). */
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
    return count ? fds[0] : -3;
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
 * (its socket, its signalfd, the pipes of the other waiting children),
 * and the signal mask of the program. */
static void leave_zygote(int fd, int sigfd, const sigset_t *old)
{
    close(fd);
    close(sigfd);
    /* waiting_count stays as it is: the child never looks at it again,
     * and writing it would copy a page it shares with the zygote */
    for (size_t i = 0; i < waiting_count; i++)
        close(waiting[i].taken);
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

/* Fork a child that waits for one connection from postern-accept, and
 * hand postern-accept its socket: 0 in the zygote (the child is in the
 * pool; -1: it could not be made), 1 in the child once its connection has
 * come. */
static int fork_ahead(int fd, int sigfd, const sigset_t *old, char *variables, size_t size)
{
    int pair[2], taken[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        msg_warn_errno("zygote: socketpair");
        return -1;
    }
    if (pipe2(taken, O_CLOEXEC) < 0) {
        msg_warn_errno("zygote: pipe");
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        msg_warn_errno("zygote: fork");
        close(pair[0]);
        close(pair[1]);
        close(taken[0]);
        close(taken[1]);
        return -1;
    }
    if (pid > 0) {
        close(pair[1]);
        close(taken[1]);
        waiting[waiting_count++] = (struct waiting_child){pid, taken[0], pair[0]};
        /* at once when postern-accept has no child left, else with the
         * next report or after a while */
        if (announced == 0)
            announce_waiting(fd);
        else if (!announce_by)
            announce_by = monotonic_ms() + ANNOUNCE_HOLD_MS;
        return 0;
    }
    leave_zygote(fd, sigfd, old);
    close(pair[0]);
    close(taken[0]);
    size_t len = 0;
    int conn = receive_connection(pair[1], variables, size, &len);
    if (conn < 0)
        _exit(0);               /* retired, or postern-accept has gone */
    close(taken[1]);            /* the zygote forks the next */
    close(pair[1]);
    become_connection(conn, variables, len);
    /* a table or the hosts file changed since the fork: this connection
     * sees the change (the zygote reads it again for the next children) */
    if (hooks.refresh)
        (void)hooks.refresh();
    if (hooks.changed)
        (void)hooks.changed();
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
    /* the TLS file keeper outlives us: postern-accept keeps its socket
     * for the zygote it starts after us */
    if (filekeeper_descriptor() >= 0)
        report_fd(fd, ZYGOTE_KEEPER, 0, 0, filekeeper_descriptor());
    /* the time zone is read here once, not by every child's first log line */
    tzset();
    make_base_environment();
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigaddset(&chld, SIGHUP);       /* a reload asked of the zygote itself */
    if (sigprocmask(SIG_BLOCK, &chld, &old) < 0)
        msg_fatal_errno("zygote: sigprocmask");
    int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        msg_fatal_errno("zygote: signalfd");
    static char variables[ZYGOTE_MESSAGE_MAX];
    if (hooks.pool)
        waiting = xreallocarray(NULL, hooks.pool, sizeof *waiting);
    /* kept for good: freeing it in a child would write to pages it
     * shares with the zygote (copy-on-write faults) */
    static struct pollfd *fds;
    fds = xreallocarray(NULL, 2 + (size_t)hooks.pool, sizeof *fds);
    long long next_tick = hooks.tick && hooks.tick_seconds ? monotonic_ms() + hooks.tick_seconds * 1000LL : 0;
    /* not before: a while after a child was taken, so that the fork does
     * not take the CPU from the child that has just begun its session
     * (its greeting and EHLO); a second after a failed fork */
    long long refill_after = 0;
    for (;;) {
        fds[0] = (struct pollfd){fd, POLLIN, 0};
        fds[1] = (struct pollfd){sigfd, POLLIN, 0};
        for (size_t i = 0; i < waiting_count; i++)
            fds[2 + i] = (struct pollfd){waiting[i].taken, POLLIN, 0};
        nfds_t nfds = 2 + (nfds_t)waiting_count;
        long long wait = next_tick ? next_tick - monotonic_ms() : -1;
        if (next_tick && wait < 0)
            wait = 0;
        if (announce_by) {
            long long until = announce_by - monotonic_ms();
            if (until < 0)
                until = 0;
            if (wait < 0 || until < wait)
                wait = until;
        }
        /* a connection that is waiting goes first; the pool is filled
         * when none is */
        long long now = monotonic_ms();
        int refill = waiting_count < hooks.pool && now >= refill_after;
        if (refill)
            wait = 0;
        else if (waiting_count < hooks.pool && (wait < 0 || refill_after - now < wait))
            wait = refill_after - now;
        int ready = poll(fds, nfds, wait > 1000000000 ? 1000000000 : (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal_errno("zygote: poll");
        }
        if (announce_by && monotonic_ms() >= announce_by)
            announce_waiting(fd);
        if (next_tick && monotonic_ms() >= next_tick) {
            hooks.tick();
            next_tick = monotonic_ms() + hooks.tick_seconds * 1000LL;
            retire_waiting(fd, 0);  /* they hold the keys before the tick */
        }
        /* children taken by postern-accept (their pipe's end), from the
         * last, since waiting_remove moves the last into the hole */
        int taken = 0;
        for (size_t i = nfds - 2; i-- > 0;)
            if (fds[2 + i].revents && i < waiting_count && fds[2 + i].fd == waiting[i].taken) {
                waiting_remove(i);
                taken = 1;
            }
        /* postern-accept has none left: it hears of the others now */
        if (taken && announced == 0)
            announce_waiting(fd);
        if (taken) {
            /* the next children serve with what has changed since */
            if (refresh() | (hooks.changed && hooks.changed()))
                retire_waiting(fd, 0);
            refill_after = waiting_count ? monotonic_ms() + REFILL_DELAY_MS : 0;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            int hup = 0;
            while (read(sigfd, &info, sizeof info) > 0)
                hup |= info.ssi_signo == SIGHUP;
            if (hup && hooks.reload) {
                hooks.reload();
                retire_waiting(fd, 0);
            }
            int status;
            pid_t pid;
            /* every end is reported, a waiting child's too: postern-accept
             * forgets the pids it does not know */
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                int was_waiting = waiting_ended(pid);
                if (was_waiting && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                    msg_warn("zygote: child %ld forked ahead ended with status 0x%x",
                             (long)pid, (unsigned)status);
                if (was_waiting != 2)
                    report(fd, ZYGOTE_ENDED, pid, status);
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
        if (conn == -3) {
            if (strcmp(variables, ZYGOTE_RELOAD_MESSAGE) != 0) {
                msg_warn("zygote: unknown message from postern-accept");
                continue;
            }
            /* asked in the stream of connections: those after it are
             * served with what it reads */
            if (hooks.reload)
                hooks.reload();
            retire_waiting(fd, 1);
            continue;
        }
        if (conn < 0) {
            report(fd, ZYGOTE_FAILED, 0, 0);
            continue;
        }
        /* no waiting child was left in postern-accept: one forked now */
        if (refresh() | (hooks.changed && hooks.changed()))
            retire_waiting(fd, 0);
        pid_t pid = fork();
        if (pid == 0) {
            leave_zygote(fd, sigfd, &old);
            become_connection(conn, variables, len);
            return;
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
