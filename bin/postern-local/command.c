/* command.c - delivery to a command, as Postfix's local(8) does it: the
 * message (with From_, Return-Path:, X-Original-To: and, as
 * prepend_delivered_header says, Delivered-To:) on the command's stdin,
 * its stdout and stderr collected for the reason of a failure, its exit
 * status read as Postfix's pipe_command reads it (an "X.Y.Z text" at the
 * start of the output, else sysexits as lib/mail/outcome.c says; other
 * codes bounce, but qmail's 111 defers as outcome_of_exit() says), command_time_limit
 * enforced by killing its process group.  The command runs in a child
 * that has taken the user's ids for good (groups, gid, uid), in the
 * user's home, with a minimal environment plus export_environment.  It is
 * run without a shell (argv split at white space) unless it holds shell
 * syntax; local_command_shell, when set, runs every command.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdio.h"
#include "local.h"
#include "log.h"
#include "privdrop.h"
#include "xalloc.h"

/* Bytes of the command's output kept for the reason. */
#define OUTPUT_MAX 500

/* Characters that make Postfix hand a command to /bin/sh. */
#define SHELL_META "\"$&'()*;<>?[\\]`{|}~\n"

static volatile sig_atomic_t timed_out;
static volatile pid_t command_pid;

/* SIGALRM: the command's time is up: kill its process group. */
static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    if (command_pid > 0)
        kill(-command_pid, SIGKILL);
}

/* Whether the command needs a shell: shell syntax, or a first word that
 * is a shell keyword or built-in. */
static int needs_shell(const char *command)
{
    static const char *const words[] = {
        "case", "do", "done", "elif", "else", "esac", "exec", "exit", "export",
        "fi", "for", "if", "read", "set", "then", "trap", "until", "while", ".", ":", NULL,
    };
    if (strpbrk(command, SHELL_META))
        return 1;
    const char *p = command + strspn(command, " \t");
    size_t n = strcspn(p, " \t");
    for (int i = 0; words[i]; i++)
        if (strlen(words[i]) == n && strncmp(p, words[i], n) == 0)
            return 1;
    return 0;
}

/* The argv of a command: split at white space, or the shell's. */
static void command_argv(struct local_setup *setup, const char *command, struct strlist *argv)
{
    if (*setup->command_shell) {
        char *copy = xstrdup(setup->command_shell);
        for (char *w = strtok(copy, " \t"); w; w = strtok(NULL, " \t"))
            strlist_add(argv, w);
        free(copy);
        strlist_add(argv, command);
    } else if (needs_shell(command)) {
        strlist_add(argv, "/bin/sh");
        strlist_add(argv, "-c");
        strlist_add(argv, command);
    } else {
        char *copy = xstrdup(command);
        for (char *w = strtok(copy, " \t"); w; w = strtok(NULL, " \t"))
            strlist_add(argv, w);
        free(copy);
    }
}

/* Add NAME=value to an environment list. */
static void env_put(struct strlist *env, const char *name, const char *value)
{
    struct strbuf s = STRBUF_INIT;
    strbuf_printf(&s, "%s=%s", name, value ? value : "");
    strlist_add(env, s.s);
    strbuf_free(&s);
}

/* The command's environment (Postfix's local(8) names). */
static void command_env(struct local_delivery *d, const struct local_privs *privs,
                        struct strlist *env)
{
    struct local_setup *setup = d->setup;
    for (size_t i = 0; i < setup->export_env.count; i++) {
        const char *v = getenv(setup->export_env.item[i]);
        if (v)
            env_put(env, setup->export_env.item[i], v);
    }
    env_put(env, "PATH", "/usr/bin:/bin");
    if (privs->user) {
        env_put(env, "HOME", privs->user->home);
        env_put(env, "LOGNAME", privs->user->name);
        env_put(env, "USER", privs->user->name);
        env_put(env, "SHELL", privs->user->shell);
    }
    env_put(env, "SENDER", d->req->sender);
    env_put(env, "RECIPIENT", d->address);
    env_put(env, "LOCAL", d->local);
    env_put(env, "DOMAIN", d->domain);
    env_put(env, "EXTENSION", d->extension);
    env_put(env, "ORIGINAL_RECIPIENT", d->orig);
}

/* A list as the NULL-ended vector exec wants (the strings stay the list's). */
static char **vector(const struct strlist *list)
{
    char **v = xcalloc(list->count + 1, sizeof *v);
    memcpy(v, list->item, list->count * sizeof *v);
    return v;
}

/* The child: take the ids for good, set up, exec.  Never returns. */
static _Noreturn void run_child(struct local_delivery *d, const struct local_privs *privs,
                                char **argv, char **env, int input, int output)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    if (dup2(input, 0) < 0 || dup2(output, 1) < 0 || dup2(output, 2) < 0)
        _exit(EX_OSERR);
    if (d->setup->privileged) {
        struct strbuf err = STRBUF_INIT;
        if (privileges_drop(privs->uid, privs->gid, &privs->gid, 1, &err) != 0) {
            dprintf(2, "%s\n", err.s);
            _exit(EX_OSERR);
        }
    }
    if (!privs->user || chdir(privs->user->home) != 0)
        if (chdir("/") != 0)
            _exit(EX_OSERR);
    execvpe(argv[0], argv, env);
    dprintf(2, "execvp %s: %s\n", argv[0], strerror(errno));
    _exit(127);          /* as a shell says "not found" */
}

/* Read the command's output until it ends (or its time is up), keeping
 * the first OUTPUT_MAX bytes for "Command output: ...", on one printable
 * line; the rest is read and dropped, so a talkative command neither
 * blocks nor fills memory. */
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
        for (ssize_t i = 0; i < n && out->len < OUTPUT_MAX; i++) {
            unsigned char c = (unsigned char)buf[i];
            strbuf_putc(out, c == '\n' || c == '\t' ? ' ' : c < 32 || c == 127 ? '_' : c);
        }
    }
    strbuf_trim_end(out);
}

void local_command(struct local_delivery *d, const char *command,
                   const struct local_privs *privs, unsigned prepend)
{
    struct strlist argv = STRLIST_INIT, env = STRLIST_INIT;
    struct strbuf prefix = STRBUF_INIT, out = STRBUF_INIT, shown = STRBUF_INIT;
    log_printable(&shown, command, 200);
    /* the message with its prefix in a memory file: the command reads it
     * at its pace, and we only wait */
    int input = memfd_create("postern-local-input", MFD_CLOEXEC);
    int output_pipe[2] = {-1, -1};
    if (input < 0 || pipe2(output_pipe, O_CLOEXEC) != 0) {
        local_result(d, "4.3.0", "cannot create a memory file or pipe: %s", strerror(errno));
        goto out;
    }
    struct mail_source src;
    local_source(d, prepend, &src);
    mail_prefix(&prefix, &src, 1);
    enum mail_copy_result copied = mail_copy(input, &src, &prefix, 0, -1);
    if (copied != MAIL_COPY_OK || lseek(input, 0, SEEK_SET) != 0) {
        local_result(d, "4.3.0", "cannot copy the message for the command: %s", strerror(errno));
        goto out;
    }
    command_argv(d->setup, command, &argv);
    if (argv.count == 0) {
        /* "|" or "|  " in an alias or .forward: nothing to run */
        local_result(d, "5.3.0", "empty command");
        goto out;
    }
    command_env(d, privs, &env);
    timed_out = 0;
    pid_t pid = fork();
    if (pid < 0) {
        local_result(d, "4.3.0", "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        run_child(d, privs, vector(&argv), vector(&env), input, output_pipe[1]);
    close(output_pipe[1]);
    output_pipe[1] = -1;
    command_pid = pid;
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarm(d->setup->command_time_limit > 0 ? (unsigned)d->setup->command_time_limit : 0);
    read_output(output_pipe[0], &out);
    if (timed_out)
        kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    command_pid = 0;
    kill(-pid, SIGKILL);            /* what it left behind in its group */
    const char *sep = out.len ? ". Command output: " : "";
    if (timed_out) {
        local_result(d, "5.3.0", "Command time limit exceeded: \"%s\"%s%s", shown.s, sep,
                     strbuf_str(&out));
    } else if (WIFSIGNALED(status)) {
        local_result(d, "4.3.0", "Command died with signal %d: \"%s\"%s%s", WTERMSIG(status),
                     shown.s, sep, strbuf_str(&out));
    } else if (WEXITSTATUS(status) == 0) {
        local_result(d, "2.0.0", "delivered to command: %s", shown.s);
    } else if (dsn_code_length(strbuf_str(&out))) {
        /* "X.Y.Z text" at the start of the output says it (Postfix) */
        struct strbuf dsn = STRBUF_INIT, text = STRBUF_INIT;
        dsn_split(out.s, "5.3.0", &dsn, &text);
        local_result(d, strbuf_str(&dsn), "%s", strbuf_str(&text));
        strbuf_free(&dsn);
        strbuf_free(&text);
    } else {
        int code = WEXITSTATUS(status);
        const char *dsn;
        const char *text = sysexit_text(code, &dsn);
        if (text)
            local_result(d, dsn, "%s%s%s", text, sep, strbuf_str(&out));
        else
            local_result(d, outcome_of_exit(code) == OUTCOME_DEFERRED ? "4.3.0" : "5.3.0",
                         "Command died with status %d: \"%s\"%s%s", code, shown.s, sep, strbuf_str(&out));
    }
    msg_info("%s: %s command %s as uid %lu: %s", d->req->queue_id[0] ? d->req->queue_id : "NOQUEUE",
             d->address, shown.s, (unsigned long)privs->uid,
             timed_out ? "time limit exceeded" : WIFSIGNALED(status) ? "killed"
             : WEXITSTATUS(status) == 0 ? "done" : "failed");
out:
    if (input >= 0)
        close(input);
    for (int i = 0; i < 2; i++)
        if (output_pipe[i] >= 0)
            close(output_pipe[i]);
    strlist_free(&argv);
    strlist_free(&env);
    strbuf_free(&prefix);
    strbuf_free(&out);
    strbuf_free(&shown);
}
