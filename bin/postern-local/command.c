/* command.c - delivery to a command, as Postfix's local(8) does it: the
 * message (with From_, Return-Path:, X-Original-To: and, as
 * prepend_delivered_header says, Delivered-To:) on the command's stdin,
 * run by lib/mail/pipecommand.c (output kept for the reason of a failure,
 * exit status read as Postfix's pipe_command reads it, command_time_limit
 * enforced by killing its process group).  The command runs in a child
 * that has taken the user's ids for good (groups, gid, uid), in
 * command_execution_directory (its $names expanded; a directory that
 * cannot be entered defers the delivery) or else the user's home, with a
 * minimal environment plus export_environment.  It is
 * run without a shell (argv split at white space) unless it holds shell
 * syntax; local_command_shell, when set, runs every command.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "local.h"
#include "log.h"
#include "pipecommand.h"
#include "xalloc.h"

/* Characters that make Postfix hand a command to /bin/sh. */
#define SHELL_META "\"$&'()*;<>?[\\]`{|}~\n"

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

/* Add NAME=value to an environment list; with a filter, each character
 * of the value that is not in it becomes '_'. */
static void env_put(struct strlist *env, const char *name, const char *value, const char *filter)
{
    struct strbuf s = STRBUF_INIT;
    strbuf_printf(&s, "%s=", name);
    for (const char *v = value ? value : ""; *v; v++)
        strbuf_putc(&s, !filter || strchr(filter, *v) ? *v : '_');
    strlist_add(env, s.s);
    strbuf_free(&s);
}

/* The command's environment, as Postfix's local(8) builds it:
 * export_environment (names kept from ours, name=value set), PATH, then
 * the delivery's own variables, censored with command_expansion_filter
 * (HOME and SHELL of the user whose rights it runs with; USER and LOGNAME
 * the recipient's name; EXTENSION, DOMAIN, ORIGINAL_RECIPIENT and the
 * CLIENT_ and SASL_ ones only when not empty). */
static void command_env(struct local_delivery *d, const struct local_privs *privs,
                        struct strlist *env)
{
    static const struct { const char *name, *attribute; } client[] = {
        {"CLIENT_HOSTNAME", "client_name"}, {"CLIENT_ADDRESS", "client_address"},
        {"CLIENT_HELO", "helo_name"}, {"CLIENT_PROTOCOL", "protocol"},
        {"SASL_METHOD", "sasl_method"}, {"SASL_SENDER", "sasl_sender"},
        {"SASL_USERNAME", "sasl_username"},
    };
    struct local_setup *setup = d->setup;
    const char *filter = conf_str("command_expansion_filter");
    for (size_t i = 0; i < setup->export_env.count; i++) {
        const char *item = setup->export_env.item[i], *v;
        if (strncmp(item, "PATH", 4) == 0 && (!item[4] || item[4] == '='))
            continue;       /* PATH is always ours, as in Postfix */
        if (strchr(item, '='))
            strlist_add(env, item);
        else if ((v = getenv(item)))
            env_put(env, item, v, NULL);
    }
    env_put(env, "PATH", "/usr/bin:/bin", NULL);
    if (privs->user) {
        env_put(env, "HOME", privs->user->home, filter);
        env_put(env, "SHELL", privs->user->shell, filter);
    }
    env_put(env, "LOGNAME", d->user, filter);
    env_put(env, "USER", d->user, filter);
    env_put(env, "SENDER", d->req->sender, filter);
    env_put(env, "RECIPIENT", d->address, filter);
    env_put(env, "LOCAL", d->local, filter);
    if (*d->domain)
        env_put(env, "DOMAIN", d->domain, filter);
    if (*d->extension)
        env_put(env, "EXTENSION", d->extension, filter);
    if (d->orig && *d->orig)
        env_put(env, "ORIGINAL_RECIPIENT", d->orig, filter);
    for (size_t i = 0; i < sizeof client / sizeof client[0]; i++) {
        const char *v = runner_attr(&d->req->attrs, client[i].attribute);
        if (v && *v)
            env_put(env, client[i].name, v, filter);
    }
}

/* A list as the NULL-ended vector exec wants (the strings stay the list's). */
static char **vector(const struct strlist *list)
{
    char **v = xcalloc(list->count + 1, sizeof *v);
    memcpy(v, list->item, list->count * sizeof *v);
    return v;
}

void local_command(struct local_delivery *d, const char *command,
                   const struct local_privs *privs, unsigned prepend)
{
    struct strlist argv = STRLIST_INIT, env = STRLIST_INIT;
    struct strbuf prefix = STRBUF_INIT, shown = STRBUF_INIT, directory = STRBUF_INIT,
                  err = STRBUF_INIT;
    log_printable(&shown, command, 200);
    /* the message with its prefix in a memory file: the command reads it
     * at its pace, and we only wait */
    int input = memfd_create("postern-local-input", MFD_CLOEXEC);
    if (input < 0) {
        local_result(d, "4.3.0", "cannot create a memory file: %s", strerror(errno));
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
    if (*d->setup->exec_directory
        && local_expand(d, privs->user, d->setup->exec_directory,
                        conf_str("execution_directory_expansion_filter"), &directory, &err) != 0) {
        msg_warn("bad parameter value syntax for command_execution_directory: %s (%s)",
                 d->setup->exec_directory, strbuf_str(&err));
        local_result(d, "4.3.5", "mail system configuration error");
        goto out;
    }
    char **argv_vec = vector(&argv), **env_vec = vector(&env);
    struct pipe_command cmd = {
        .argv = argv_vec, .env = env_vec, .input_fd = input,
        .switch_ids = d->setup->privileged, .uid = privs->uid, .gid = privs->gid,
        .cwd = directory.len ? directory.s : privs->user ? privs->user->home : NULL,
        .cwd_required = directory.len != 0,
        .time_limit = d->setup->command_time_limit,
    };
    struct pipe_command_status status = PIPE_COMMAND_STATUS_INIT;
    struct strbuf dsn = STRBUF_INIT, text = STRBUF_INIT;
    if (pipe_command_run(&cmd, &status, &err) != 0) {
        local_result(d, "4.3.0", "%s", strbuf_str(&err));
    } else {
        pipe_command_verdict(&status, shown.s, &dsn, &text);
        if (strcmp(strbuf_str(&dsn), "2.0.0") == 0)
            local_result(d, "2.0.0", "delivered to command: %s", shown.s);
        else
            local_result(d, strbuf_str(&dsn), "%s", strbuf_str(&text));
        msg_info("%s: %s command %s as uid %lu: %s",
                 d->req->queue_id[0] ? d->req->queue_id : "NOQUEUE", d->address, shown.s,
                 (unsigned long)privs->uid,
                 status.timed_out ? "time limit exceeded" : status.signal ? "killed"
                 : status.exit_code == 0 ? "done" : "failed");
    }
    free(argv_vec);
    free(env_vec);
    pipe_command_status_free(&status);
    strbuf_free(&dsn);
    strbuf_free(&text);
out:
    strbuf_free(&err);
    strbuf_free(&directory);
    if (input >= 0)
        close(input);
    strlist_free(&argv);
    strlist_free(&env);
    strbuf_free(&prefix);
    strbuf_free(&shown);
}
