/* queuestage.c - starting postern-queue (queuestage.h): pass the three
 * descriptors to the queue service over its unix socket (the protocol of
 * bin/postern-queue/service.c, doc/injection.md), or else - no service, or
 * none that takes us within 2 seconds - fork and exec
 * daemon_directory/postern-queue with them in place. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "fdpass.h"
#include "log.h"
#include "outcome.h"
#include "queuefile.h"
#include "queuestage.h"
#include "strbuf.h"

#define QUEUE_SERVICE_WAIT_MS   2000    /* for the service's 'R' */

/* Put fd on target in the child, without close-on-exec. */
static int place_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

/* In the child: the descriptors in place, then exec. */
static _Noreturn void exec_stage(const char *path, int message_fd, int envelope_fd, int status_fd)
{
    signal(SIGPIPE, SIG_DFL);
    /* the queue reads the same main.cf as we do */
    if (strcmp(config_dir(), DEF_CONFIG_DIR) != 0 && setenv("POSTERN_CONFIG_DIR", config_dir(), 1) != 0)
        _exit(INJECT_EXIT_INTERNAL);
    if (status_fd < 0) {
        status_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (status_fd < 0)
            _exit(INJECT_EXIT_INTERNAL);
    }
    /* move each out of the way of the others' targets first */
    int moved[3] = {fcntl(message_fd, F_DUPFD_CLOEXEC, 10), fcntl(envelope_fd, F_DUPFD_CLOEXEC, 10),
                    fcntl(status_fd, F_DUPFD_CLOEXEC, 10)};
    if (moved[0] < 0 || moved[1] < 0 || moved[2] < 0)
        _exit(INJECT_EXIT_INTERNAL);
    if (place_fd(moved[0], 0) < 0 || place_fd(moved[1], 1) < 0 || place_fd(moved[2], 3) < 0)
        _exit(INJECT_EXIT_INTERNAL);
    const char *base = strrchr(path, '/');
    char *argv[] = {(char *)(base ? base + 1 : path), NULL};
    execv(path, argv);
    int saved = errno;
    struct strbuf why = STRBUF_INIT;
    record_putf(&why, 'Z', "4.3.0 cannot execute %s: %s", path, strerror(saved));
    (void)write_all(3, why.s, why.len);
    _exit(INJECT_EXIT_REFUSED_FOR_NOW);
}

/* Connect to the queue service; the socket, or -1: errno ENOENT,
 * ECONNREFUSED or EACCES when no service is there for us. */
static int connect_service(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_SERVICE, conf_str("queue_directory"));
    if (path.len >= sizeof sun.sun_path) {
        strbuf_free(&path);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path.s, path.len + 1);
    strbuf_free(&path);
    /* non-blocking: a blocking connect() waits as long as the service's
     * backlog is full (it stops accepting at its process limit), and no
     * later timeout would help; EAGAIN then means "run postern-queue" */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int r;
    do
        r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    while (r < 0 && errno == EINTR);
    int flags = r == 0 ? fcntl(fd, F_GETFL) : -1;
    if (r < 0 || flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Wait for the service's 'R' (it has accepted us and has a slot).  0, or
 * -1 when it does not come within QUEUE_SERVICE_WAIT_MS (the service is at
 * its process limit or hung) or the connection ends. */
static int wait_ready(int conn)
{
    struct pollfd p = {.fd = conn, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, QUEUE_SERVICE_WAIT_MS);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        if (r == 0)
            errno = ETIMEDOUT;
        return -1;
    }
    char byte;
    ssize_t n;
    do
        n = read(conn, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || byte != 'R') {
        if (n >= 0)
            errno = n == 0 ? ECONNRESET : EPROTO;
        return -1;
    }
    return 0;
}

/* Send the request: one byte 'Q' with the descriptors.  0 or -1 (errno). */
static int send_request(int conn, int message_fd, int envelope_fd, int status_fd)
{
    int fds[3] = {message_fd, envelope_fd, status_fd};
    return fdpass_send(conn, "Q", 1, fds, status_fd >= 0 ? 3 : 2) == 1 ? 0 : -1;
}

/* Hand the descriptors to the queue service; 0, or -1 when it is not
 * there or failed (the caller then runs the injector itself). */
static int start_through_service(struct queue_stage *stage, int message_fd, int envelope_fd,
                                 int status_fd)
{
    static int warned;
    int conn = connect_service();
    if (conn < 0) {
        if (errno != ENOENT && errno != ECONNREFUSED && errno != EACCES && !warned++)
            msg_warn_errno("connect to the queue service in %s/" QUEUE_SERVICE
                           "; running postern-queue instead", conf_str("queue_directory"));
        return -1;
    }
    if (wait_ready(conn) < 0) {
        if (!warned++)
            msg_warn_errno("the queue service did not take the message within %d ms; "
                           "running postern-queue instead", QUEUE_SERVICE_WAIT_MS);
        close(conn);
        return -1;
    }
    if (send_request(conn, message_fd, envelope_fd, status_fd) < 0) {
        if (!warned++)
            msg_warn_errno("pass the message to the queue service; running postern-queue instead");
        close(conn);
        return -1;
    }
    stage->service = 1;
    stage->conn = conn;
    stage->pid = -1;
    return 0;
}

/* Fork and exec path as the stage. */
static int start_program(struct queue_stage *stage, const char *path, int message_fd,
                         int envelope_fd, int status_fd)
{
    stage->service = 0;
    stage->conn = -1;
    stage->pid = fork();
    if (stage->pid == 0)
        exec_stage(path, message_fd, envelope_fd, status_fd);
    return stage->pid < 0 ? -1 : 0;
}

int queue_stage_start(struct queue_stage *stage, int message_fd, int envelope_fd, int status_fd)
{
    stage->service = 0;
    stage->conn = -1;
    if (status_fd >= 0 && fcntl(status_fd, F_GETFD) < 0)
        status_fd = -1;
    if (start_through_service(stage, message_fd, envelope_fd, status_fd) == 0)
        return 0;
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-queue", conf_str("daemon_directory"));
    int r = start_program(stage, path.s, message_fd, envelope_fd, status_fd);
    int saved = errno;
    strbuf_free(&path);
    errno = saved;
    return r;
}

int queue_stage_start_program(struct queue_stage *stage, const char *path, int message_fd,
                              int envelope_fd, int status_fd)
{
    if (status_fd >= 0 && fcntl(status_fd, F_GETFD) < 0)
        status_fd = -1;
    return start_program(stage, path, message_fd, envelope_fd, status_fd);
}

/* The wait status the service reports when its child ends; exit 81 when
 * the connection ends without one (the service was killed). */
static int service_status(struct queue_stage *stage)
{
    int32_t word;
    size_t got = 0;
    while (got < sizeof word) {
        ssize_t n = read(stage->conn, (char *)&word + got, sizeof word - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                msg_warn_errno("read from the queue service");
            else
                msg_warn("the queue service ended the connection without a status");
            close(stage->conn);
            stage->conn = -1;
            stage->service = 0;
            return INJECT_EXIT_INTERNAL << 8;
        }
        got += (size_t)n;
    }
    close(stage->conn);
    stage->conn = -1;
    stage->service = 0;
    return word;
}

int queue_stage_wait(struct queue_stage *stage)
{
    int status;
    if (stage->service)
        return service_status(stage);
    if (stage->pid <= 0)
        return INJECT_EXIT_INTERNAL << 8;
    while (waitpid(stage->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            msg_warn_errno("waitpid");
            stage->pid = -1;
            return INJECT_EXIT_INTERNAL << 8;
        }
    }
    stage->pid = -1;
    return status;
}
