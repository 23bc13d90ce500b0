/* pipecommand.c - run a delivery command with the message on its stdin
 * (pipecommand.h).
 *
 * The processes: the runner forks a keeper, which leads a session and
 * process group of its own and forks the command into it.  The keeper
 * only waits: for the command, whose exit it passes on as its own, and
 * for the runner's death (its parent-death signal), on which it kills the
 * whole group, the command's own children with it; a runner killed
 * outright (qmgr's backstop SIGKILL: no handler of ours runs) so leaves
 * nothing behind.  The runner kills the group (its time limit, SIGTERM,
 * what the command left behind) by the keeper's pid. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "outcome.h"
#include "pipecommand.h"
#include "privdrop.h"

static volatile sig_atomic_t timed_out;
static volatile pid_t command_pid;

/* SIGALRM: the command's time is up: kill its process group (its leader
 * is not reaped yet, so the group id is still its own). */
static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    if (command_pid > 0)
        kill(-command_pid, SIGKILL);
}

/* SIGTERM (a stop of the runner) while a command runs: its group goes
 * first, then we end as the signal says. */
static void on_term(int sig)
{
    if (command_pid > 0)
        kill(-command_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The command (the keeper's child, in its group): stdin/stdout/stderr,
 * ids for good, a directory, exec.  Never returns. */
static _Noreturn void run_child(const struct pipe_command *cmd, int output)
{
    pid_t parent = getppid();
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0 || signal(SIGPIPE, SIG_DFL) == SIG_ERR
        || signal(SIGALRM, SIG_DFL) == SIG_ERR || signal(SIGTERM, SIG_DFL) == SIG_ERR
        || signal(SIGHUP, SIG_DFL) == SIG_ERR) {
        dprintf(output, "cannot set up the command's process: %s\n", strerror(errno));
        _exit(EX_OSERR);
    }
    if (cmd->switch_ids) {
        struct strbuf err = STRBUF_INIT;
        if (privileges_drop(cmd->uid, cmd->gid, &cmd->gid, 1, &err) != 0) {
            dprintf(output, "%s\n", strbuf_str(&err));
            _exit(EX_OSERR);
        }
    }
    /* a keeper killed outright takes the command with it; set after the
     * id switch, which clears it */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(EX_TEMPFAIL);
    /* a required directory (pipe's directory=, local's
     * command_execution_directory) that cannot be entered is a temporary
     * failure, not a command run somewhere else: said in the log (our
     * stderr is still the runner's), not in the command's output, as
     * Postfix's pipe_command does */
    if (cmd->cwd && chdir(cmd->cwd) == 0)
        ;
    else if (cmd->cwd && cmd->cwd_required) {
        msg_warn("cannot change directory to \"%s\" for uid=%lu gid=%lu: %s", cmd->cwd,
                 (unsigned long)getuid(), (unsigned long)getgid(), strerror(errno));
        _exit(EX_TEMPFAIL);
    } else if (chdir("/") != 0)
        _exit(EX_OSERR);
    if (dup2(cmd->input_fd, 0) < 0 || dup2(output, 1) < 0 || dup2(output, 2) < 0)
        _exit(EX_OSERR);
    execvpe(cmd->argv[0], cmd->argv, cmd->env);
    dprintf(2, "execvp %s: %s\n", cmd->argv[0], strerror(errno));
    _exit(127);          /* as a shell says "not found" */
}

/* The keeper's parent-death signal (SIGHUP): the runner has gone, so
 * everything in our group goes, ourselves included. */
static void on_runner_death(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
    _exit(EX_TEMPFAIL);
}

/* The keeper: leads a session and process group, forks the command into
 * it, waits for it and ends as it ended; kills the group when the runner
 * dies.  Never returns. */
static _Noreturn void run_keeper(const struct pipe_command *cmd, int output)
{
    pid_t runner = getppid();
    struct sigaction on_death = {.sa_handler = on_runner_death};
    sigemptyset(&on_death.sa_mask);
    if (setsid() < 0 || signal(SIGALRM, SIG_DFL) == SIG_ERR || signal(SIGTERM, SIG_DFL) == SIG_ERR
        || sigaction(SIGHUP, &on_death, NULL) != 0 || prctl(PR_SET_PDEATHSIG, SIGHUP) != 0) {
        dprintf(output, "cannot set up the command's process: %s\n", strerror(errno));
        _exit(EX_OSERR);
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        _exit(EX_OSERR);
    if (getppid() != runner)
        on_runner_death(SIGHUP);    /* it died before the signal was set */
    pid_t pid = fork();
    if (pid < 0) {
        dprintf(output, "fork: %s\n", strerror(errno));
        _exit(EX_OSERR);
    }
    if (pid == 0)
        run_child(cmd, output);
    /* nothing of the runner's stays open here: not its output pipe (the
     * runner reads to its end), not its channel to qmgr */
    (void)close_range(0, ~0U, 0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            _exit(EX_OSERR);
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    /* end by the command's signal, so the runner sees it (no core file) */
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

/* Read the command's output until it ends (or its time is up), keeping
 * the first PIPE_COMMAND_OUTPUT_MAX bytes on one printable line; the rest
 * is read and dropped, so a talkative command neither blocks nor fills
 * memory. */
static void read_output(int fd, struct strbuf *out)
{
    char buf[4096];
    strbuf_reset(out);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR && !timed_out)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && out->len < PIPE_COMMAND_OUTPUT_MAX; i++) {
            unsigned char c = (unsigned char)buf[i];
            strbuf_putc(out, c == '\n' || c == '\t' ? ' ' : c < 32 || c == 127 ? '_' : c);
        }
    }
    strbuf_trim_end(out);
}

int pipe_command_run(const struct pipe_command *cmd, struct pipe_command_status *status,
                     struct strbuf *err)
{
    int output[2];
    status->timed_out = status->signal = status->exit_code = 0;
    strbuf_reset(&status->output);
    if (pipe2(output, O_CLOEXEC) != 0) {
        strbuf_printf(err, "pipe: %s", strerror(errno));
        return -1;
    }
    struct sigaction on_time = {.sa_handler = on_alarm}, old, on_stop = {.sa_handler = on_term},
                     old_term;
    sigemptyset(&on_time.sa_mask);
    sigemptyset(&on_stop.sa_mask);
    if (sigaction(SIGALRM, &on_time, &old) != 0) {
        strbuf_printf(err, "sigaction SIGALRM: %s", strerror(errno));
        close(output[0]);
        close(output[1]);
        return -1;
    }
    if (sigaction(SIGTERM, &on_stop, &old_term) != 0) {
        strbuf_printf(err, "sigaction SIGTERM: %s", strerror(errno));
        (void)sigaction(SIGALRM, &old, NULL);
        close(output[0]);
        close(output[1]);
        return -1;
    }
    timed_out = 0;
    pid_t pid = fork();
    if (pid < 0) {
        strbuf_printf(err, "fork: %s", strerror(errno));
        close(output[0]);
        close(output[1]);
        (void)sigaction(SIGALRM, &old, NULL);
        (void)sigaction(SIGTERM, &old_term, NULL);
        return -1;
    }
    if (pid == 0)
        run_keeper(cmd, output[1]);
    close(output[1]);
    command_pid = pid;
    alarm(cmd->time_limit > 0 ? (unsigned)cmd->time_limit : 0);
    read_output(output[0], &status->output);
    close(output[0]);
    /* wait without reaping: while the leader is a zombie its group id
     * cannot be reused, so killing the group is safe until we reap it */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
    alarm(0);
    /* what it left behind in its group (a time limit, a daemonized child) */
    if (kill(-pid, SIGKILL) != 0 && errno != ESRCH)
        msg_warn_errno("kill process group %ld", (long)pid);
    command_pid = 0;
    int wait_status = 0;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR)
        ;
    (void)sigaction(SIGALRM, &old, NULL);
    (void)sigaction(SIGTERM, &old_term, NULL);
    /* the alarm may fire after the command exited on its own: only a
     * command our SIGKILL ended timed out */
    status->timed_out = timed_out && WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
    if (WIFSIGNALED(wait_status))
        status->signal = WTERMSIG(wait_status);
    else
        status->exit_code = WEXITSTATUS(wait_status);
    return 0;
}

void pipe_command_verdict(const struct pipe_command_status *status, const char *shown,
                          struct strbuf *dsn, struct strbuf *text)
{
    const char *out = strbuf_str(&status->output);
    const char *sep = *out ? ". Command output: " : "";
    strbuf_reset(dsn);
    strbuf_reset(text);
    if (status->timed_out) {
        strbuf_puts(dsn, "5.3.0");
        strbuf_printf(text, "Command time limit exceeded: \"%s\"%s%s", shown, sep, out);
    } else if (status->signal) {
        strbuf_puts(dsn, "4.3.0");
        strbuf_printf(text, "Command died with signal %d: \"%s\"%s%s", status->signal, shown,
                      sep, out);
    } else if (status->exit_code == 0) {
        strbuf_puts(dsn, "2.0.0");
    } else if ((out[0] == '4' || out[0] == '5') && dsn_code_length(out)) {
        /* "X.Y.Z text" at the start of the output says it (Postfix); a
         * command that failed never says 2.X.X: that would be delivered */
        dsn_split(out, "5.3.0", dsn, text);
    } else {
        const char *code;
        const char *meaning = sysexit_text(status->exit_code, &code);
        if (meaning) {
            strbuf_puts(dsn, code);
            strbuf_printf(text, "%s%s%s", meaning, sep, out);
        } else {
            strbuf_puts(dsn, outcome_of_exit(status->exit_code) == OUTCOME_DEFERRED ? "4.3.0"
                                                                                   : "5.3.0");
            strbuf_printf(text, "Command died with status %d: \"%s\"%s%s", status->exit_code,
                          shown, sep, out);
        }
    }
}

void pipe_command_status_free(struct pipe_command_status *status)
{
    strbuf_free(&status->output);
}
