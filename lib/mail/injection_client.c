/* inject.c - start the next stage of the injection chain and read its
 * verdict (inject.h, doc/injection.md). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "inject.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR "/etc/postern"
#endif

/* A descriptor number above the ones the stage is given (0, 1, 3). */
static int move_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (high < 0)
        msg_fatal_temp_errno("fcntl F_DUPFD");
    close(fd);
    return high;
}

int inject_start(struct injection *inj, const char *program,
                 const struct strbuf *envelope, struct strbuf *err)
{
    int msg[2], env[2], status[2];
    memset(inj, 0, sizeof *inj);
    inj->pid = -1;
    inj->message_fd = inj->status_fd = -1;
    if (pipe(msg) < 0) {
        strbuf_printf(err, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe(env) < 0 || pipe(status) < 0)
        msg_fatal_temp_errno("pipe");
    for (int i = 0; i < 2; i++) {
        msg[i] = move_high(msg[i]);
        env[i] = move_high(env[i]);
        status[i] = move_high(status[i]);
    }
    pid_t pid = fork();
    if (pid < 0) {
        strbuf_printf(err, "cannot fork: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            close(msg[i]);
            close(env[i]);
            close(status[i]);
        }
        return -1;
    }
    if (pid == 0) {
        if (dup2(msg[0], 0) < 0 || dup2(env[0], 1) < 0 || dup2(status[1], 3) < 0)
            _exit(81);
        signal(SIGPIPE, SIG_DFL);
        /* the injector drops its setgid group for another configuration,
         * so name the configuration only when it is not the default */
        if (strcmp(config_dir(), DEF_CONFIG_DIR) != 0)
            setenv("POSTERN_CONFIG_DIR", config_dir(), 1);
        const char *base = strrchr(program, '/');
        execl(program, base ? base + 1 : program, (char *)NULL);
        msg_warn_errno("execute %s", program);
        _exit(71);
    }
    close(msg[0]);
    close(env[0]);
    close(status[1]);
    inj->pid = pid;
    inj->message_fd = msg[1];
    inj->status_fd = status[0];
    inj->program = xstrdup(program);
    /* the envelope is a few hundred bytes and fits in the pipe, so the
     * stage may read it before or after the message */
    if (write_all(env[1], envelope->s, envelope->len) < 0)
        inject_write_failed(inj, errno);
    close(env[1]);
    return 0;
}

void inject_write_failed(struct injection *inj, int errnum)
{
    inj->cut_short = 1;
    if (errnum != EPIPE && !inj->write_errno)
        inj->write_errno = errnum;
}

int inject_finish(struct injection *inj, struct strbuf *result)
{
    close(inj->message_fd);
    inj->message_fd = -1;

    struct record_reader reader;
    struct strbuf rec = STRBUF_INIT, reply = STRBUF_INIT;
    int reply_type = 0;
    record_reader_init(&reader, inj->status_fd);
    while (record_read(&reader, &rec, 4096) > 0) {
        if (rec.len && strchr("KZD", rec.s[0]) && !reply_type) {
            reply_type = rec.s[0];
            strbuf_set(&reply, rec.s + 1);
        }
    }
    close(inj->status_fd);
    inj->status_fd = -1;
    int wstatus = 0;
    while (waitpid(inj->pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;

    /* exit codes as doc/injection.md: 11, 31, 91 permanent, others temporary */
    int outcome;
    strbuf_reset(result);
    if (code == 0 && !inj->cut_short) {
        outcome = 'K';
        if (reply_type == 'K')
            strbuf_puts(result, reply.s);
    } else if (code == 11 || code == 31 || code == 91) {
        outcome = 'D';
        if (reply_type == 'D' || reply_type == 'Z')
            strbuf_puts(result, reply.s);
        else
            strbuf_printf(result, "5.3.0 %s refused the message (exit %d)", inj->program, code);
    } else {
        outcome = 'Z';
        if (reply_type == 'Z' || reply_type == 'D')
            strbuf_puts(result, reply.s);
        else if (code < 0)
            strbuf_printf(result, "4.3.0 %s killed by signal %d", inj->program, WTERMSIG(wstatus));
        else if (code > 0 || !inj->write_errno)
            strbuf_printf(result, "4.3.0 %s exited with status %d%s", inj->program, code,
                          inj->cut_short ? " before it read the whole message" : "");
        else
            strbuf_printf(result, "4.3.0 write to %s: %s", inj->program, strerror(inj->write_errno));
    }
    free(inj->program);
    inj->program = NULL;
    strbuf_free(&rec);
    strbuf_free(&reply);
    return outcome;
}
