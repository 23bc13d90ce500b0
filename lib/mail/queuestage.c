/* queuestage.c - starting postern-queue (queuestage.h): pass the three
 * descriptors to the queue service over its unix socket (the protocol of
 * bin/postern-queue/service.c, doc/injection.md), on one connection kept
 * for the life of the process, or else - no service, or none that takes
 * us within 2 seconds - fork and exec daemon_directory/postern-queue with
 * them in place. */
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
#define QUEUE_SERVICE_WAIT_TEXT "2000"
#define STATUS_WAIT_MS          10000   /* for a status already due (after K) */

/* The connection to the queue service, kept for one request after
 * another (smtpd: the session's messages). */
static struct {
    int conn;               /* -1: none */
    int ready;              /* its 'R' came */
    int used;               /* a request went over it */
    int pending;            /* a request's status is still to be read */
    int closing;            /* 'X' came: the service stops; no more requests */
    uid_t uid;              /* our euid when we connected: the service's idea of us */
} service_link = {.conn = -1};

/* A stage exec'd and detached after its K: reaped before the next. */
static pid_t detached_pid = -1;

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

/* Forget the connection to the service. */
static void link_close(void)
{
    if (service_link.conn >= 0)
        close(service_link.conn);
    service_link.conn = -1;
    service_link.ready = service_link.used = service_link.pending = service_link.closing = 0;
}

/* Read exactly n bytes from the service within timeout_ms (-1: no
 * limit).  0, or -1 with errno (ETIMEDOUT; ECONNRESET at the end). */
static int read_exact(void *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = service_link.conn, .events = POLLIN};
        int polled = poll(&p, 1, timeout_ms);
        ssize_t k = polled > 0 ? read(service_link.conn, (char *)buf + got, n - got) : polled;
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = polled == 0 ? ETIMEDOUT : ECONNRESET;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

/* The next tag from the service ('R', 'S'), an 'X' noted and skipped;
 * -1 with errno when none came in time or the connection ended. */
static int read_tag(int timeout_ms)
{
    for (;;) {
        char tag;
        if (read_exact(&tag, 1, timeout_ms) < 0)
            return -1;
        if (tag != 'X')
            return (unsigned char)tag;
        service_link.closing = 1;
    }
}

/* The status the service sends when the request ends: 'S' and a wait
 * status; -1 when the connection ends (or nothing comes in timeout_ms). */
static int read_status(int timeout_ms, int32_t *word)
{
    int tag = read_tag(timeout_ms);
    if (tag < 0)
        return -1;
    if (tag != 'S' || read_exact(word, sizeof *word, timeout_ms) < 0) {
        if (tag != 'S')
            errno = EPROTO;
        return -1;
    }
    service_link.pending = 0;
    return 0;
}

/* Make the connection ready for a request: the status of the request
 * before read, the 'R' of a new one waited for (QUEUE_SERVICE_WAIT_MS), no
 * 'X' or end waiting.  0, or -1 (errno) when it cannot take one. */
static int link_prepare(void)
{
    int32_t word;
    if (service_link.pending && read_status(STATUS_WAIT_MS, &word) < 0)
        return -1;
    if (!service_link.ready) {
        int tag = read_tag(QUEUE_SERVICE_WAIT_MS);
        if (tag != 'R') {
            if (tag >= 0)
                errno = EPROTO;
            return -1;
        }
        service_link.ready = 1;
    }
    struct pollfd p = {.fd = service_link.conn, .events = POLLIN};
    if (!service_link.closing && poll(&p, 1, 0) > 0 && read_tag(0) < 0 && !service_link.closing)
        return -1;              /* it ended the connection */
    if (service_link.closing) {
        errno = ECONNRESET;
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

int queue_stage_connect(void)
{
    static int warned;
    /* the service knows us by the credentials of the connect (SO_PEERCRED):
     * a process that changed its uid since connects anew */
    if (service_link.conn >= 0 && service_link.uid != geteuid())
        link_close();
    if (service_link.conn >= 0)
        return 0;
    service_link.uid = geteuid();
    service_link.conn = connect_service();
    if (service_link.conn < 0) {
        if (errno != ENOENT && errno != ECONNREFUSED && errno != EACCES && !warned++)
            msg_warn_errno("connect to the queue service in %s/" QUEUE_SERVICE
                           "; running postern-queue instead", conf_str("queue_directory"));
        return -1;
    }
    return 0;
}

/* Hand the descriptors to the queue service; 0, or -1 when it is not
 * there or failed (the caller then runs the injector itself).  A
 * connection used before that the service has closed since (stopped, or
 * restarted) is replaced once. */
static int start_through_service(struct queue_stage *stage, int message_fd, int envelope_fd,
                                 int status_fd)
{
    static int warned;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (queue_stage_connect() < 0)
            return -1;
        int used = service_link.used;
        const char *failed = NULL;
        if (link_prepare() < 0)
            failed = "the queue service did not take the message within "
                     QUEUE_SERVICE_WAIT_TEXT " ms";
        else if (send_request(service_link.conn, message_fd, envelope_fd, status_fd) < 0)
            failed = "pass the message to the queue service";
        if (failed) {
            int saved = errno;
            link_close();
            if (used)
                continue;       /* closed since its last use: a new one */
            errno = saved;
            if (!warned++)
                msg_warn_errno("%s; running postern-queue instead", failed);
            return -1;
        }
        service_link.used = 1;
        service_link.pending = 1;
        stage->service = 1;
        stage->conn = service_link.conn;
        stage->pid = -1;
        return 0;
    }
    return -1;
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

/* Reap a stage detached after its K (it has exited, or is about to). */
static void reap_detached(void)
{
    if (detached_pid > 0)
        while (waitpid(detached_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    detached_pid = -1;
}

int queue_stage_start(struct queue_stage *stage, int message_fd, int envelope_fd, int status_fd)
{
    reap_detached();
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
    reap_detached();
    if (status_fd >= 0 && fcntl(status_fd, F_GETFD) < 0)
        status_fd = -1;
    return start_program(stage, path, message_fd, envelope_fd, status_fd);
}

/* The wait status the service reports when the request ends; exit 81
 * when the connection ends without one (the service was killed). */
static int service_status(struct queue_stage *stage)
{
    int32_t word;
    stage->service = 0;
    stage->conn = -1;
    if (read_status(-1, &word) < 0) {
        if (errno == ECONNRESET)
            msg_warn("the queue service ended the connection without a status");
        else
            msg_warn_errno("read from the queue service");
        link_close();
        return INJECT_EXIT_INTERNAL << 8;
    }
    if (service_link.closing)
        link_close();           /* the service stops: the next one connects anew */
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

void queue_stage_detach(struct queue_stage *stage)
{
    /* the service's status stays on the connection, read before the
     * next request; a process is reaped before the next stage starts */
    if (!stage->service && stage->pid > 0) {
        reap_detached();
        detached_pid = stage->pid;
    }
    stage->service = 0;
    stage->conn = -1;
    stage->pid = -1;
}
