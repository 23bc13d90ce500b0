/* filekeeper.c - the keeper that opens a fixed list of files for a
 * process that has given root up, and its client side (filekeeper.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "fdio.h"
#include "fdpass.h"
#include "filekeeper.h"
#include "log.h"
#include "xalloc.h"

#define KEEPER_ANSWER_SECONDS 5     /* the longest wait for an answer */

static int keeper_fd = -1;
static pid_t keeper;

/* 1 when path is one of the count paths. */
static int listed(const char *const *paths, size_t count, const char *path)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(paths[i], path) == 0)
            return 1;
    return 0;
}

/* Keep no capability but CAP_DAC_READ_SEARCH (a key another user owns),
 * or none when we do not have it (systemd's units bound us to
 * CAP_SETUID and CAP_SETGID): root's own files stay readable by owner,
 * and nothing else a capability gives is left.  0, or -1. */
static int keep_only_read_search(void)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[CAP_DAC_READ_SEARCH / 32].effective = data[CAP_DAC_READ_SEARCH / 32].permitted =
        1u << (CAP_DAC_READ_SEARCH % 32);
    if (syscall(SYS_capset, &header, data) == 0)
        return 0;
    memset(data, 0, sizeof data);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -1;
}

/* The keeper's loop: one path in, one descriptor (or an errno) out. */
static _Noreturn void keeper_serve(int sock, const char *const *paths, size_t count)
{
    static char path[PATH_MAX + 1];
    for (;;) {
        ssize_t n = recv(sock, path, sizeof path - 1, MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0);               /* the other end has gone */
        int32_t err = 0;
        int fd = -1;
        if ((size_t)n >= sizeof path) {
            err = EPERM;            /* truncated: not a path of the list */
        } else {
            path[n] = '\0';
            if (strlen(path) != (size_t)n || !listed(paths, count, path))
                err = EPERM;
        }
        if (!err) {
            struct stat st;
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            if (fd < 0)
                err = errno;
            else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
                err = EINVAL;
            if (err && fd >= 0) {
                close(fd);
                fd = -1;
            }
        }
        if (fdpass_send(sock, &err, sizeof err, &fd, fd >= 0 ? 1 : 0) < 0 && errno != EINTR)
            _exit(0);
        if (fd >= 0)
            close(fd);
    }
}

int filekeeper_start(const char *const *paths, size_t count)
{
    if (keeper_fd >= 0)
        return 0;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(pair[0]);
        close(pair[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        /* nothing but the socket: not the zygote's, not a connection */
        int sock = pair[1];
        if (sock < 3 && (sock = fcntl(sock, F_DUPFD_CLOEXEC, 3)) < 0)
            _exit(0);
        if ((sock > 3 && close_range(3, (unsigned)sock - 1, 0) != 0)
            || close_range((unsigned)sock + 1, ~0U, 0) != 0)
            _exit(0);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        (void)prctl(PR_SET_NAME, "filekeeper", 0, 0, 0);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || keep_only_read_search() != 0)
            _exit(0);           /* the zygote reads the files itself (and says so) */
        keeper_serve(sock, paths, count);
    }
    close(pair[1]);
    keeper_fd = pair[0];
    keeper = pid;
    struct timeval limit = {KEEPER_ANSWER_SECONDS, 0};
    (void)setsockopt(keeper_fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    return 0;
}

/* Ask the keeper; a descriptor, or -1 with errno (EPIPE: no keeper any
 * more, or it did not answer). */
static int keeper_open(const char *path)
{
    size_t len = strlen(path);
    if (len > PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (fdpass_send(keeper_fd, path, len, NULL, 0) != (ssize_t)len) {
        errno = EPIPE;
        return -1;
    }
    int32_t err;
    int fds[FDPASS_MAX_FDS];
    size_t count;
    ssize_t n = fdpass_recv(keeper_fd, &err, sizeof err, fds, &count);
    if (n != (ssize_t)sizeof err || (err == 0) != (count == 1)) {
        for (size_t i = 0; n > 0 && i < count; i++)
            close(fds[i]);
        errno = EPIPE;
        return -1;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return fds[0];
}

int filekeeper_open(const char *path)
{
    if (keeper_fd >= 0) {
        int fd = keeper_open(path);
        if (fd >= 0 || errno != EPIPE)
            return fd;
        msg_warn("the root process that opens \"%s\" again has gone: opening it ourselves", path);
        filekeeper_forget();
    }
    return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

int filekeeper_read(const char *path, size_t max, char **data, size_t *len)
{
    int fd = filekeeper_open(path);
    if (fd < 0)
        return -1;
    char *buf = xmalloc(max + 2);
    ssize_t n = read_full(fd, buf, max + 1);
    int saved = errno;
    close(fd);
    if (n < 0 || (size_t)n > max) {
        free(buf);
        errno = n < 0 ? saved : EFBIG;
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = (size_t)n;
    return 0;
}

void filekeeper_forget(void)
{
    if (keeper_fd >= 0)
        close(keeper_fd);
    keeper_fd = -1;
    keeper = 0;
}

pid_t filekeeper_pid(void)
{
    return keeper;
}

int filekeeper_descriptor(void)
{
    return keeper_fd;
}

void filekeeper_inherit(void)
{
    const char *value = getenv(FILEKEEPER_FD_VARIABLE);
    if (!value)
        return;
    char *end;
    long fd = strtol(value, &end, 10);
    int type = 0;
    socklen_t len = sizeof type;
    if (*end || fd < 3 || fd > INT_MAX || keeper_fd >= 0
        || getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
        msg_warn("%s=%s: not the socket of a file keeper", FILEKEEPER_FD_VARIABLE, value);
        unsetenv(FILEKEEPER_FD_VARIABLE);
        return;
    }
    unsetenv(FILEKEEPER_FD_VARIABLE);
    (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    /* an answer to a request of the zygote before us (its descriptor, if
     * any, is closed unread) */
    char stale[64];
    while (recv((int)fd, stale, sizeof stale, MSG_DONTWAIT) > 0)
        ;
    keeper_fd = (int)fd;
    keeper = 0;
    struct timeval limit = {KEEPER_ANSWER_SECONDS, 0};
    (void)setsockopt(keeper_fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}
