/* queuestage.c - starting postern-queue (queuestage.h): fork and exec
 * daemon_directory/postern-queue with the three descriptors in place. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "queuestage.h"
#include "strbuf.h"

#define EXIT_INTERNAL           81
#define EXIT_REFUSED_FOR_NOW    71

/* Put fd on target in the child, without close-on-exec. */
static int place_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

/* In the child: the descriptors in place, then exec. */
static _Noreturn void exec_queue(const char *path, int message_fd, int envelope_fd, int status_fd)
{
    signal(SIGPIPE, SIG_DFL);
    /* the queue reads the same main.cf as we do */
    if (strcmp(config_dir(), DEF_CONFIG_DIR) != 0 && setenv("POSTERN_CONFIG_DIR", config_dir(), 1) != 0)
        _exit(EXIT_INTERNAL);
    if (status_fd < 0) {
        status_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (status_fd < 0)
            _exit(EXIT_INTERNAL);
    }
    /* move each out of the way of the others' targets first */
    int moved[3] = {fcntl(message_fd, F_DUPFD_CLOEXEC, 10), fcntl(envelope_fd, F_DUPFD_CLOEXEC, 10),
                    fcntl(status_fd, F_DUPFD_CLOEXEC, 10)};
    if (moved[0] < 0 || moved[1] < 0 || moved[2] < 0)
        _exit(EXIT_INTERNAL);
    if (place_fd(moved[0], 0) < 0 || place_fd(moved[1], 1) < 0 || place_fd(moved[2], 3) < 0)
        _exit(EXIT_INTERNAL);
    char *argv[] = {(char *)"postern-queue", NULL};
    execv(path, argv);
    int saved = errno;
    struct strbuf why = STRBUF_INIT;
    record_putf(&why, 'Z', "4.3.0 cannot execute %s: %s", path, strerror(saved));
    (void)write_all(3, why.s, why.len);
    _exit(EXIT_REFUSED_FOR_NOW);
}

int queue_stage_start(struct queue_stage *stage, int message_fd, int envelope_fd, int status_fd)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-queue", conf_str("daemon_directory"));
    stage->pid = fork();
    if (stage->pid == 0)
        exec_queue(path.s, message_fd, envelope_fd, status_fd);
    int saved = errno;
    strbuf_free(&path);
    if (stage->pid < 0) {
        errno = saved;
        return -1;
    }
    return 0;
}

int queue_stage_wait(struct queue_stage *stage)
{
    int status;
    if (stage->pid <= 0)
        return EXIT_INTERNAL << 8;
    while (waitpid(stage->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            msg_warn_errno("waitpid");
            stage->pid = -1;
            return EXIT_INTERNAL << 8;
        }
    }
    stage->pid = -1;
    return status;
}
