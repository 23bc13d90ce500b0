/* postern-rewrite - the rewrite stage of the injection chain (interface 2,
 * doc/injection.md; postern-rewrite(8)): reads the message on fd 0 and the
 * envelope on fd 1, qualifies addresses and adds missing headers
 * (lib/mail/rewrite.c), and hands both on to the next stage - the program given
 * after `--`, else daemon_directory/postern-queue - with fd 3 passed
 * through.  Its exit status is the next stage's.  A local submission
 * (origin=local) goes through non_smtpd_milters (lib/net/milter_local.c)
 * after the rewriting and before the next stage; a milter's refusal is
 * written on fd 3 and nothing goes on.
 *
 * usage: postern-rewrite [-c DIR] [-o name=value]... [-v] [-- PROGRAM ARG...]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "log.h"
#include "milter_client.h"
#include "milter_local.h"
#include "outcome.h"
#include "queuestage.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"


static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-rewrite [-c DIR] [-o name=value]... [-v] [-- PROGRAM ARG...]\n");
    exit(INJECT_EXIT_INTERNAL);
}

/* Make sure fd 3 is open (on /dev/null when the caller gave none), so that
 * nothing else takes it and the next stage finds the same layout. */
static void keep_status_fd(void)
{
    if (fcntl(3, F_GETFD) >= 0)
        return;
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        msg_fatal_temp_errno("open /dev/null");
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            msg_fatal_temp_errno("dup2");
        close(fd);
    }
}

/* When the message arrives on a pipe, its writer sends the envelope only
 * after it (doc/injection.md): read it all into an anonymous file first,
 * so that the envelope can be read and the message streamed from there. */
static int spool_message_if_pipe(void)
{
    struct stat st;
    if (fstat(0, &st) < 0)
        msg_fatal_temp_errno("fstat fd 0");
    if (S_ISREG(st.st_mode))
        return 0;
    int spool = memfd_create("postern-rewrite-message", MFD_CLOEXEC);
    if (spool < 0)
        msg_fatal_temp_errno("memfd_create");
    char *chunk = xmalloc(65536);
    for (;;) {
        ssize_t n = read(0, chunk, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            msg_warn_errno("read the message");
            exit(INJECT_EXIT_MESSAGE_READ);
        }
        if (n == 0)
            break;
        if (write_all(spool, chunk, (size_t)n) < 0) {
            msg_warn_errno("spool the message");
            exit(INJECT_EXIT_WRITE_ERROR);
        }
    }
    free(chunk);
    if (lseek(spool, 0, SEEK_SET) < 0 || dup2(spool, 0) < 0)
        msg_fatal_temp_errno("spool the message");
    close(spool);
    return 1;
}

/* Start the next stage with the message pipe on fd 0 and the envelope
 * pipe on fd 1; fd 3 is inherited as it is.  The default stage,
 * postern-queue, is started by lib/mail/queuestage.c. */
static pid_t start_next(char **next_argv, int message_fd, int envelope_fd)
{
    pid_t pid = fork();
    if (pid < 0)
        msg_fatal_temp_errno("fork");
    if (pid > 0)
        return pid;
    signal(SIGPIPE, SIG_DFL);
    if (dup2(message_fd, 0) < 0 || dup2(envelope_fd, 1) < 0)
        _exit(INJECT_EXIT_INTERNAL);
    execvp(next_argv[0], next_argv);
    int saved = errno;
    msg_warn_errno("cannot run the next stage %s", next_argv[0]);
    struct strbuf why = STRBUF_INIT;
    record_putf(&why, 'Z', "4.3.0 cannot execute %s: %s", next_argv[0], strerror(saved));
    (void)write_all(3, why.s, why.len);
    _exit(INJECT_EXIT_REFUSED_FOR_NOW);
}

/* The next stage's exit status as ours (a signal is a temporary failure):
 * the given program's (pid > 0), else the queue stage's. */
static int next_status(pid_t pid, struct queue_stage *queue, const char *name)
{
    int status;
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR)
                msg_fatal_temp_errno("waitpid");
    } else {
        status = queue_stage_wait(queue);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    msg_warn("next stage %s killed by signal %d", name, WTERMSIG(status));
    return INJECT_EXIT_INTERNAL;
}

/* milter_message_write's output: the next stage's message pipe. */
static int put_fd(void *ctx, const void *bytes, size_t n)
{
    return write_all(*(int *)ctx, bytes, n) < 0 && errno != EPIPE ? -1 : 0;
}

/* non_smtpd_milters over the rewritten message held on `held`: 0 with the
 * message, changed, written to out and env changed, or 4 or 5 when a
 * milter refused it (written on fd 3). */
static int milter_run(int held, struct envelope *env, const struct rewrite_config *cfg, int out)
{
    struct milter_message msg = MILTER_MESSAGE_INIT;
    struct strbuf reply = STRBUF_INIT;
    if (lseek(held, 0, SEEK_SET) < 0)
        msg_fatal_temp_errno("lseek");
    int refused = milter_local_run(held, env, cfg, &msg, &reply);
    if (!refused && milter_message_write(&msg, put_fd, &out) < 0) {
        /* nothing goes on: the envelope is not written */
        msg_warn_errno("write the message");
        strbuf_set(&reply, "451 4.3.0 Error: queue file write error");
        refused = 4;
    }
    if (refused) {
        struct strbuf why = STRBUF_INIT;
        record_putf(&why, refused == 5 ? 'D' : 'Z', "%s", strbuf_str(&reply));
        (void)write_all(3, why.s, why.len);
        strbuf_free(&why);
    }
    milter_message_free(&msg);
    strbuf_free(&reply);
    return refused;
}

int main(int argc, char **argv)
{
    keep_status_fd();
    log_open("rewrite", 0);
    log_exit_codes(INJECT_EXIT_INTERNAL, INJECT_EXIT_INTERNAL);
    int opt;
    while ((opt = getopt(argc, argv, "+c:o:v")) != -1)
        if (!config_common_option(opt, optarg))
            usage();
    config_load(0);
    /* the next stage reads the same main.cf */
    setenv("POSTERN_CONFIG_DIR", config_dir(), 1);

    char **next_argv = optind < argc ? argv + optind : NULL;
    const char *next_name = next_argv ? next_argv[0] : "postern-queue";
    struct queue_stage queue = {.pid = -1};

    spool_message_if_pipe();

    struct envelope env = ENVELOPE_INIT;
    struct strbuf err = STRBUF_INIT;
    int status = envelope_read(1, &env, ENVELOPE_LENIENT, &err);
    if (status) {
        if (err.len)            /* empty: withdrawn by the submitter */
            msg_warn("%s", strbuf_str(&err));
        envelope_free(&env);
        strbuf_free(&err);
        return status;
    }
    /* a local submission (sendmail's origin=local, not postern's own
     * mail) gets the receive_override_options that Postfix's pickup
     * would have (master.cf's pickup -o, else main.cf) */
    unsigned receive_override = 0;
    const char *origin = envelope_attr(&env, "origin");
    int milters = 0;
    if (origin && strcmp(origin, "local") == 0 && !envelope_attr(&env, "internal")) {
        struct strbuf value = STRBUF_INIT;
        receive_local_setting("receive_override_options", &value);
        receive_override = receive_override_mask(strbuf_str(&value));
        strbuf_free(&value);
        milters = !(receive_override & RECEIVE_NO_MILTERS) && *conf_str("non_smtpd_milters");
    }
    struct rewrite_config cfg;
    rewrite_config_load(&cfg, receive_override);
    if (rewrite_envelope(&cfg, &env, &err) != 0) {
        /* deferred (an alias loop, a table that cannot answer): say so on
         * fd 3; nothing goes on to the next stage */
        struct strbuf why = STRBUF_INIT;
        record_putf(&why, 'Z', "451 %s", strbuf_str(&err));
        (void)write_all(3, why.s, why.len);
        strbuf_free(&why);
        envelope_free(&env);
        rewrite_config_free(&cfg);
        strbuf_free(&err);
        return INJECT_EXIT_REFUSED_FOR_NOW;
    }
    struct rewrite_message_info info;
    rewrite_message_info_from(&env, &info);
    struct rewrite_actions actions = REWRITE_ACTIONS_INIT;
    info.actions = &actions;

    int message_pipe[2], envelope_pipe[2];
    if (pipe2(message_pipe, O_CLOEXEC) < 0 || pipe2(envelope_pipe, O_CLOEXEC) < 0)
        msg_fatal_temp_errno("pipe");
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = -1;
    if (next_argv)
        pid = start_next(next_argv, message_pipe[0], envelope_pipe[0]);
    else if (queue_stage_start(&queue, message_pipe[0], envelope_pipe[0], 3) < 0)
        msg_fatal_temp_errno("start postern-queue");
    close(message_pipe[0]);
    close(envelope_pipe[0]);

    /* the message first; the envelope only once the message is complete,
     * so that a crash here can never queue half a message */
    int held = -1;
    if (milters && (held = memfd_create("postern-rewrite-milter", MFD_CLOEXEC)) < 0)
        msg_fatal_temp_errno("memfd_create");
    int r = rewrite_message(&cfg, &info, 0, milters ? held : message_pipe[1], &err);
    if (milters && r == 0) {
        int refused = milter_run(held, &env, &cfg, message_pipe[1]);
        if (refused) {
            close(message_pipe[1]);
            close(envelope_pipe[1]);
            next_status(pid, &queue, next_name);
            status = refused == 5 ? INJECT_EXIT_REFUSED : INJECT_EXIT_REFUSED_FOR_NOW;
            goto done;
        }
    }
    if (held >= 0)
        close(held);
    close(message_pipe[1]);
    if (r == -1 || r == REWRITE_TOO_MANY_HOPS || r == REWRITE_DEFERRED || r == REWRITE_REJECTED) {
        /* no envelope: the next stage stores nothing */
        rewrite_actions_log_noqueue(&actions, &env);
        /* a header or body check's refusal is logged by its own line */
        if (r != REWRITE_REJECTED)
            msg_warn("%s", strbuf_str(&err));
        close(envelope_pipe[1]);
        next_status(pid, &queue, next_name);
        status = INJECT_EXIT_MESSAGE_READ;
        if (r == REWRITE_REJECTED) {
            /* header_checks or body_checks: "5.7.1 text" (or 4.x.x) */
            int temporary = err.s[0] == '4';
            struct strbuf why = STRBUF_INIT;
            record_putf(&why, temporary ? 'Z' : 'D', "%d %s", temporary ? 451 : 550, strbuf_str(&err));
            (void)write_all(3, why.s, why.len);
            strbuf_free(&why);
            status = temporary ? INJECT_EXIT_REFUSED_FOR_NOW : INJECT_EXIT_REFUSED;
        }
        if (r == REWRITE_DEFERRED) {
            struct strbuf why = STRBUF_INIT;
            record_putf(&why, 'Z', "451 %s", REWRITE_EXPANSION_ERROR);
            (void)write_all(3, why.s, why.len);
            strbuf_free(&why);
            status = INJECT_EXIT_REFUSED_FOR_NOW;
        }
        if (r == REWRITE_TOO_MANY_HOPS) {
            struct strbuf why = STRBUF_INIT;
            record_put(&why, 'D', "554 5.4.6 Too many hops");
            (void)write_all(3, why.s, why.len);
            strbuf_free(&why);
            status = INJECT_EXIT_REFUSED;
        }
        goto done;
    }
    if (r == 0) {
        struct strbuf records = STRBUF_INIT;
        rewrite_actions_apply(&cfg, &actions, &env);
        envelope_write(&env, &records);
        if (write_all(envelope_pipe[1], records.s, records.len) < 0 && errno != EPIPE)
            msg_warn_errno("write the envelope");
        strbuf_free(&records);
    }
    close(envelope_pipe[1]);
    status = next_status(pid, &queue, next_name);
    if (r == -2 && status == 0) {
        msg_warn("%s", strbuf_str(&err));
        status = INJECT_EXIT_WRITE_ERROR;
    }
done:
    rewrite_actions_free(&actions);
    envelope_free(&env);
    rewrite_config_free(&cfg);
    strbuf_free(&err);
    return status;
}
