/* filekeeper.c - the keeper that opens a fixed list of files for a
 * process that has given root up, and its client side (filekeeper.h).
 *
 * The keeper opens a listed path the safe way (Postfix's safe_open, and
 * more): it walks the path itself, one component at a time from "/",
 * with O_PATH|O_NOFOLLOW, so nothing is followed that it has not looked
 * at.  Every directory on the way must be trusted: owned by root or the
 * keeper's own uid and writable by nobody else (group write only for
 * group 0; a root-owned sticky directory such as /tmp is allowed, where
 * others cannot rename or remove what is not theirs).  A symbolic link is
 * followed only when it is owned by root or the keeper, and its target is
 * walked under the same rules (certbot's live/ links into archive/ keep
 * working); at most KEEPER_MAX_LINKS of them.  The last component is
 * opened with O_NOFOLLOW and must be the regular file the walk found
 * (same device and inode), with one link when its directory is a shared
 * sticky one.  Anything else is EPERM: a directory on the path that
 * smtpd's user can write in is never trusted, so a compromised zygote
 * cannot swap a listed name for a link to another file. */
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
#define KEEPER_MAX_LINKS 16         /* symbolic links followed in one path */

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

/* Whether a directory or link on a path may be trusted (see the top);
 * *shared: a world-writable sticky directory. */
static int trusted(const struct stat *st, int *shared)
{
    *shared = 0;
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return 0;
    if (S_ISLNK(st->st_mode))
        return 1;               /* a link's own mode means nothing */
    if (!S_ISDIR(st->st_mode))
        return 0;
    if ((st->st_mode & S_IWGRP) && st->st_gid != 0)
        return 0;
    if (st->st_mode & S_IWOTH) {
        if (!(st->st_mode & S_ISVTX) || st->st_uid != 0)
            return 0;
        *shared = 1;
    }
    return 1;
}

/* Open a listed path as described at the top: a read-only descriptor of
 * a regular file, or -1 with errno (EPERM: something on the path is not
 * trusted). */
static int open_trusted(const char *path)
{
    static char rest[2 * PATH_MAX + 2], target[PATH_MAX + 1];
    if (path[0] != '/' || strlen(path) >= sizeof rest) {
        errno = EPERM;
        return -1;
    }
    strcpy(rest, path);
    int links = 0, shared = 0, result = -1, err = 0;
    struct stat st;
    int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fstat(dir, &st) != 0 || !trusted(&st, &shared)) {
        err = dir < 0 ? errno : EPERM;
        goto out;
    }
    char *p = rest;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) {
            err = EINVAL;       /* the path names a directory */
            goto out;
        }
        char *name = p;
        p += strcspn(p, "/");
        int last = 1;
        for (const char *q = p; *q; q++)
            if (*q != '/')
                last = 0;
        if (*p)
            *p++ = '\0';
        if (strcmp(name, ".") == 0 && !last)
            continue;
        int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            err = errno;
            if (fd >= 0)
                close(fd);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            int unused;
            ssize_t n = 0;
            if (!trusted(&st, &unused))
                err = EPERM;
            else if (++links > KEEPER_MAX_LINKS)
                err = ELOOP;
            else if ((n = readlinkat(fd, "", target, sizeof target - 1)) <= 0)
                err = n == 0 ? EINVAL : errno;
            close(fd);
            if (err)
                goto out;
            target[n] = '\0';
            /* the walk goes on with the link's target, then what is left */
            size_t left = strlen(p);
            if ((size_t)n + 1 + left >= sizeof rest) {
                err = ENAMETOOLONG;
                goto out;
            }
            memmove(rest + n + 1, p, left + 1);
            memcpy(rest, target, (size_t)n);
            rest[n] = left ? '/' : '\0';
            p = rest;
            if (target[0] == '/') {
                close(dir);
                dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dir < 0 || fstat(dir, &st) != 0 || !trusted(&st, &shared)) {
                    err = dir < 0 ? errno : EPERM;
                    goto out;
                }
            }
            continue;
        }
        if (!last) {
            if (!trusted(&st, &shared)) {
                err = S_ISDIR(st.st_mode) ? EPERM : ENOTDIR;
                close(fd);
                goto out;
            }
            close(dir);
            dir = fd;
            continue;
        }
        close(fd);
        /* the file itself: the one the walk saw, regular, not a link */
        struct stat file;
        int file_fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (file_fd < 0) {
            err = errno == ELOOP ? EPERM : errno;
        } else if (fstat(file_fd, &file) != 0 || !S_ISREG(file.st_mode)) {
            err = EINVAL;
        } else if (file.st_dev != st.st_dev || file.st_ino != st.st_ino
                   || (shared && file.st_nlink != 1)) {
            err = EPERM;
        } else {
            result = file_fd;
            file_fd = -1;
        }
        if (file_fd >= 0)
            close(file_fd);
        goto out;
    }
out:
    if (dir >= 0)
        close(dir);
    if (result < 0)
        errno = err ? err : EPERM;
    return result;
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
        if (!err && (fd = open_trusted(path)) < 0)
            err = errno;
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
    /* written only when there is something to forget: a zygote's child
     * that writes a page it shares with the zygote pays for a copy */
    if (keeper_fd >= 0) {
        close(keeper_fd);
        keeper_fd = -1;
    }
    if (keeper)
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
