/* zygote.c - fork an initialised per-connection program instead of exec'ing
 * it per connection (see zygote.h): the zygote's loop, and the two message
 * functions postern-accept uses. */
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
#include "zygote.h"

/* Variables that describe a connection: the child gets only the new ones. */
static const char *const connection_variables[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
    "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCPCONNNUM",
    "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID",
    "REMOTE_ADDR", "REMOTE_PORT", "POSTERN_STRESS",
};

static struct zygote_hooks hooks;

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

/* In the child: the connection on 0 and 1, its variables in the environment. */
static void become_connection(int conn, char *variables, size_t len)
{
    if (dup2(conn, 0) < 0 || dup2(conn, 1) < 0)
        _exit(EX_TEMPFAIL);
    close(conn);
    for (size_t i = 0; i < sizeof connection_variables / sizeof connection_variables[0]; i++)
        unsetenv(connection_variables[i]);
    for (size_t at = 0; at < len; at += strlen(variables + at) + 1) {
        char *eq = strchr(variables + at, '=');
        if (!eq)
            continue;
        *eq = '\0';
        setenv(variables + at, eq + 1, 1);
    }
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
    long long next_tick = hooks.tick && hooks.tick_seconds ? monotonic_ms() + hooks.tick_seconds * 1000LL : 0;
    for (;;) {
        struct pollfd fds[2] = {{fd, POLLIN, 0}, {sigfd, POLLIN, 0}};
        long long wait = next_tick ? next_tick - monotonic_ms() : -1;
        if (next_tick && wait < 0)
            wait = 0;
        int ready = poll(fds, 2, wait > 1000000000 ? 1000000000 : (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal_errno("zygote: poll");
        }
        if (next_tick && monotonic_ms() >= next_tick) {
            hooks.tick();
            next_tick = monotonic_ms() + hooks.tick_seconds * 1000LL;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            int hup = 0;
            while (read(sigfd, &info, sizeof info) > 0)
                hup |= info.ssi_signo == SIGHUP;
            if (hup && hooks.reload)
                hooks.reload();
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                report(fd, ZYGOTE_ENDED, pid, status);
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        size_t len = 0;
        int conn = receive_connection(fd, variables, sizeof variables, &len);
        if (conn == -2)
            _exit(0);           /* postern-accept has stopped */
        if (conn < 0) {
            report(fd, ZYGOTE_FAILED, 0, 0);
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(fd);
            close(sigfd);
            sigprocmask(SIG_SETMASK, &old, NULL);
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
