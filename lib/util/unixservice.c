/* unixservice.c - pid file and listening socket of a service, started
 * by systemd or not (unixservice.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "listenfds.h"
#include "log.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#define LISTEN_FDS_FIRST 3       /* sd_listen_fds(3) */

int pid_file_lock(const char *path, struct strbuf *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        strbuf_printf(err, "another one is running: %s is locked by pid %s", path, buf);
        close(fd);
        return -1;
    }
    return fd;
}

int pid_file_publish(int fd)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    return ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) == len ? 0 : -1;
}

int unix_listen(const char *path, mode_t mode, uid_t owner, gid_t group, int backlog,
                struct strbuf *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) + 4 >= sizeof sun.sun_path) {
        strbuf_printf(err, "socket path %s is longer than %zu bytes", path,
                      sizeof sun.sun_path - 5);
        return -1;
    }
    strcpy(sun.sun_path, path);
    strcat(sun.sun_path, ".new");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        strbuf_printf(err, "socket: %s", strerror(errno));
        return -1;
    }
    const char *failed = NULL;
    if (unlink(sun.sun_path) < 0 && errno != ENOENT) {
        failed = "remove";
    } else {
        mode_t old = umask(0777 & ~mode);
        int r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
        umask(old);
        if (r < 0)
            failed = "bind";
        else if ((owner != (uid_t)-1 || group != (gid_t)-1)
                 && chown(sun.sun_path, owner, group) < 0)
            failed = "chown";
        else if (chmod(sun.sun_path, mode) < 0)
            failed = "chmod";
        else if (listen(fd, backlog) < 0)
            failed = "listen";
        else if (rename(sun.sun_path, path) < 0)
            failed = "rename";
        if (failed && r == 0)
            unlink(sun.sun_path);
    }
    if (failed) {
        strbuf_printf(err, "%s %s: %s", failed, sun.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int unix_connect(const char *path, int timeout_s)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_s, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
        || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int unix_accept(int listen_fd, int flags, struct ucred *peer, struct strbuf *err)
{
    int fd = accept4(listen_fd, NULL, NULL, flags);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            strbuf_printf(err, "accept: %s", strerror(errno));
        return -1;
    }
    socklen_t len = sizeof *peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, peer, &len) < 0)
        *peer = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    return fd;
}

int listener_prepare(int fd, struct strbuf *err)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        strbuf_puts(err, "the socket is not a listening socket (its .socket unit needs Accept=no)");
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        strbuf_printf(err, "fcntl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int signal_fd_open(const int *signals, size_t count)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < count; i++)
        sigaddset(&set, signals[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int unix_service_open(struct unix_service *svc, const char *pid_path, const char *socket_path,
                      mode_t mode, gid_t group, int backlog, struct strbuf *err)
{
    return unix_service_open_owned(svc, pid_path, socket_path, mode, (uid_t)-1, group, backlog,
                                   err);
}

int unix_service_open_owned(struct unix_service *svc, const char *pid_path,
                            const char *socket_path, mode_t mode, uid_t owner, gid_t group,
                            int backlog, struct strbuf *err)
{
    *svc = (struct unix_service){.listen_fd = -1, .pid_fd = -1};
    int count = listen_fds_take();
    if (count > 0) {
        if (count != 1) {
            strbuf_printf(err, "systemd passed %d sockets; expected one", count);
            return -1;
        }
        svc->listen_fd = fcntl(LISTEN_FDS_FIRST, F_DUPFD_CLOEXEC, 10);
        if (svc->listen_fd < 0) {
            strbuf_printf(err, "fcntl: %s", strerror(errno));
            return -1;
        }
        close(LISTEN_FDS_FIRST);
    } else {
        svc->pid_fd = pid_file_lock(pid_path, err);
        if (svc->pid_fd < 0)
            return -1;
        svc->listen_fd = unix_listen(socket_path, mode, owner, group, backlog, err);
        if (svc->listen_fd < 0)
            return -1;
        svc->pid_path = xstrdup(pid_path);
        svc->socket_path = xstrdup(socket_path);
    }
    return listener_prepare(svc->listen_fd, err);
}

int unix_service_ready(struct unix_service *svc)
{
    return svc->pid_fd >= 0 ? pid_file_publish(svc->pid_fd) : 0;
}

int unix_service_start(struct unix_service *svc, const char *what, const char *queue_dir,
                       const char *name, const char *socket_rel, mode_t mode, gid_t group,
                       int backlog, const int *signals, size_t signal_count)
{
    struct strbuf pid_path = STRBUF_INIT, socket_path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&pid_path, "%s/pid/%s.pid", queue_dir, name);
    strbuf_printf(&socket_path, "%s/%s", queue_dir, socket_rel);
    if (unix_service_open(svc, pid_path.s, socket_path.s, mode, group, backlog, &err) < 0)
        msg_fatal("%s: %s", what, err.s);
    int signal_fd = signal_fd_open(signals, signal_count);
    if (signal_fd < 0)
        msg_fatal_errno("signalfd");
    if (unix_service_ready(svc) < 0)
        msg_fatal_errno("write %s", pid_path.s);
    strbuf_free(&pid_path);
    strbuf_free(&socket_path);
    strbuf_free(&err);
    return signal_fd;
}

void unix_service_close(struct unix_service *svc, struct strbuf *err)
{
    /* new clients find no socket; the lock goes with the process */
    if (svc->socket_path && unlink(svc->socket_path) < 0 && errno != ENOENT)
        strbuf_printf(err, "remove %s: %s", svc->socket_path, strerror(errno));
    if (svc->pid_path && unlink(svc->pid_path) < 0 && errno != ENOENT)
        strbuf_printf(err, "%sremove %s: %s", err->len ? "; " : "", svc->pid_path, strerror(errno));
    free(svc->pid_path);
    free(svc->socket_path);
    svc->pid_path = svc->socket_path = NULL;
}

int socket_mode_parse(const char *text, mode_t *mode)
{
    char *end;
    long value = strtol(text, &end, 8);
    if (*end || end == text || value < 0 || value > 0777)
        return -1;
    *mode = (mode_t)value;
    return 0;
}
