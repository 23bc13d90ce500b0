/* listeners.c - SMTP for a self-contained instance: `postern start` runs one
 * postern-accept per `inet` service of DIR/master.cf whose command is
 * smtpd (as Postfix's master does from the same line), with the service's
 * maxproc as its process limit and its arguments (-o ...) given to
 * postern-smtpd, which runs as a zygote (-z); the pid file is queue_directory/pid/accept.SERVICE.pid.
 * `postern init --port N` writes the line "127.0.0.1:N inet n - n - - smtpd". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "listeners.h"
#include "log.h"
#include "mastercf.h"
#include "postern.h"
#include "strbuf.h"
#include "xalloc.h"

#define LISTENER_START_MS 10000
#define LISTENER_STOP_MS  10000

/* The smtpd services of master.cf (an instance without one has none). */
static void smtpd_services(struct master_table *table)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (master_read(path.s, 1, table, &err) < 0)
        msg_fatal("%s", err.s);
    size_t kept = 0;
    for (size_t i = 0; i < table->count; i++) {
        struct master_service *s = &table->service[i];
        if (strcmp(s->type, "inet") == 0 && strcmp(s->command, "smtpd") == 0)
            table->service[kept++] = *s;
        else
            master_service_free(s);
    }
    table->count = kept;
    strbuf_free(&path);
    strbuf_free(&err);
}

/* queue_directory/pid/accept.SERVICE.pid ('/' in a service name as '_'). */
static void listener_pid_path(const struct master_service *s, struct strbuf *out)
{
    strbuf_printf(out, "%s/pid/accept.", conf_str("queue_directory"));
    for (const char *p = s->service; *p; p++)
        strbuf_putc(out, *p == '/' ? '_' : *p);
    strbuf_puts(out, ".pid");
}

/* The running postern-accept of a service, else 0. */
static pid_t running_listener(const struct master_service *s)
{
    struct strbuf path = STRBUF_INIT;
    listener_pid_path(s, &path);
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    return pid > 0 && process_is(pid, "postern-accept") ? pid : 0;
}

/* The addresses to listen on: "host:port" as written, else the port on
 * each of inet_interfaces (Postfix's rule for a service without a host). */
static void service_addresses(const struct master_service *s, struct strlist *out)
{
    if (strchr(s->service, ':')) {
        strlist_add(out, s->service);
        return;
    }
    struct strlist interfaces = STRLIST_INIT;
    conf_list("inet_interfaces", &interfaces);
    struct strbuf address = STRBUF_INIT;
    for (size_t i = 0; i < interfaces.count; i++) {
        const char *name = interfaces.item[i];
        strbuf_reset(&address);
        if (strcmp(name, "all") == 0) {
            strbuf_printf(&address, "*:%s", s->service);
        } else if (strcmp(name, "loopback-only") == 0) {
            strbuf_printf(&address, "127.0.0.1:%s", s->service);
            strlist_add(out, address.s);
            strbuf_reset(&address);
            strbuf_printf(&address, "[::1]:%s", s->service);
        } else if (strchr(name, ':') && name[0] != '[') {
            strbuf_printf(&address, "[%s]:%s", name, s->service);
        } else {
            strbuf_printf(&address, "%s:%s", name, s->service);
        }
        strlist_add(out, address.s);
    }
    strbuf_free(&address);
    strlist_free(&interfaces);
}

/* 1 when postern-accept and postern-smtpd are in program_dir. */
static int programs_present(const char *program_dir)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-accept", program_dir);
    int present = access(path.s, X_OK) == 0;
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/postern-smtpd", program_dir);
    present = present && access(path.s, X_OK) == 0;
    strbuf_free(&path);
    return present;
}

/* Start postern-accept for one service in the background; 0 or 1. */
static int start_listener(const struct master_service *s, const char *program_dir)
{
    struct strbuf accept = STRBUF_INIT, smtpd = STRBUF_INIT, pid_path = STRBUF_INIT;
    struct strbuf limit = STRBUF_INIT;
    strbuf_printf(&accept, "%s/postern-accept", program_dir);
    strbuf_printf(&smtpd, "%s/postern-smtpd", program_dir);
    listener_pid_path(s, &pid_path);
    long maxproc = master_maxproc(s, conf_int("default_process_limit"));
    if (maxproc < 0)
        msg_fatal("%s/master.cf, line %d: bad maxproc \"%s\"", config_dir(), s->line, s->maxproc);
    strbuf_printf(&limit, "%ld", maxproc == 0 ? 1000000L : maxproc);

    struct strlist argv = STRLIST_INIT, addresses = STRLIST_INIT;
    strlist_add(&argv, accept.s);
    strlist_add(&argv, "-c");
    strlist_add(&argv, config_dir());
    const struct run_as *smtpd_user = instance_user(ROLE_SMTPD);
    if (smtpd_user) {               /* root: bind, then become smtpd_user */
        strlist_add(&argv, "-u");
        strlist_add(&argv, smtpd_user->user);
    }
    strlist_add(&argv, "-l");
    strlist_add(&argv, limit.s);
    strlist_add(&argv, "-s");
    strlist_add(&argv, s->service);
    strlist_add(&argv, "-p");
    strlist_add(&argv, pid_path.s);
    /* smtpd reads main.cf and prepares its restrictions once, as a zygote,
     * and each connection is served by a fork of it: an exec per
     * connection costs more than the whole SMTP greeting (bench/README) */
    strlist_add(&argv, "-z");
    service_addresses(s, &addresses);
    for (size_t i = 0; i < addresses.count; i++)
        strlist_add(&argv, addresses.item[i]);
    strlist_add(&argv, "--");
    strlist_add(&argv, smtpd.s);
    strlist_add(&argv, "-c");
    strlist_add(&argv, config_dir());
    for (size_t i = 0; i < s->arg_count; i++)
        strlist_add(&argv, s->args[i]);
    char **args = xcalloc(argv.count + 1, sizeof *args);
    memcpy(args, argv.item, argv.count * sizeof *args);

    (void)unlink(pid_path.s);
    const char *maillog = conf_str("maillog_file");
    pid_t pid = spawn_daemon(args, NULL);
    int rc = 1;
    for (long waited = 0; waited < LISTENER_START_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("postern-accept for %s exited at start (%s %d); see %s", s->service,
                      WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                      *maillog ? maillog : "syslog");
            break;
        }
        if (pid_file_read(pid_path.s) == pid) {
            printf("postern: SMTP on %s (postern-accept pid %ld)\n", addresses.item[0],
                   (long)pid);
            rc = 0;
            break;
        }
        sleep_ms(20);
    }
    if (rc && pid_file_read(pid_path.s) != pid && waitpid(pid, NULL, WNOHANG) == 0)
        msg_error("postern-accept for %s is not listening after %d seconds", s->service,
                  LISTENER_START_MS / 1000);
    free(args);
    strlist_free(&argv);
    strlist_free(&addresses);
    strbuf_free(&accept);
    strbuf_free(&smtpd);
    strbuf_free(&pid_path);
    strbuf_free(&limit);
    return rc;
}

int listeners_start(const char *program_dir)
{
    struct master_table table;
    smtpd_services(&table);
    int rc = 0;
    if (table.count && !programs_present(program_dir)) {
        printf("postern: no postern-smtpd or postern-accept in %s: not listening for SMTP\n",
               program_dir);
        master_free(&table);
        return 0;
    }
    for (size_t i = 0; i < table.count; i++) {
        pid_t pid = running_listener(&table.service[i]);
        if (pid)
            printf("postern: SMTP on %s already running (pid %ld)\n", table.service[i].service,
                   (long)pid);
        else if (start_listener(&table.service[i], program_dir))
            rc = 1;
    }
    master_free(&table);
    return rc;
}

int listeners_stop(void)
{
    struct master_table table;
    smtpd_services(&table);
    int rc = 0;
    for (size_t i = 0; i < table.count; i++) {
        pid_t pid = running_listener(&table.service[i]);
        if (!pid)
            continue;
        if (kill(pid, SIGTERM) < 0)
            msg_fatal_errno("kill %ld", (long)pid);
        long waited = 0;
        while (process_is(pid, "postern-accept") && waited < LISTENER_STOP_MS) {
            sleep_ms(20);
            waited += 20;
        }
        if (process_is(pid, "postern-accept")) {
            msg_error("postern-accept (pid %ld) for %s did not stop", (long)pid,
                      table.service[i].service);
            rc = 1;
        } else {
            printf("postern: stopped SMTP on %s (pid %ld)\n", table.service[i].service,
                   (long)pid);
        }
    }
    master_free(&table);
    return rc;
}

int listeners_reload(void)
{
    struct master_table table;
    smtpd_services(&table);
    int down = 0;
    for (size_t i = 0; i < table.count; i++) {
        pid_t pid = running_listener(&table.service[i]);
        if (!pid) {
            printf("postern: SMTP on %s not running: nothing to reload\n", table.service[i].service);
            down++;
            continue;
        }
        if (kill(pid, SIGHUP) < 0)
            msg_fatal_errno("kill %ld", (long)pid);
        printf("postern: reloading SMTP on %s (postern-accept pid %ld)\n", table.service[i].service,
               (long)pid);
    }
    master_free(&table);
    return down;
}

int listeners_running(void)
{
    struct master_table table;
    smtpd_services(&table);
    int all = 1;
    if (table.count && programs_present(conf_str("daemon_directory")))
        for (size_t i = 0; all && i < table.count; i++)
            all = running_listener(&table.service[i]) != 0;
    master_free(&table);
    return all;
}

int listeners_status(void)
{
    struct master_table table;
    smtpd_services(&table);
    int down = 0;
    if (table.count && !programs_present(conf_str("daemon_directory"))) {
        printf("smtp: not available (no postern-smtpd or postern-accept in %s)\n",
               conf_str("daemon_directory"));
        master_free(&table);
        return 0;
    }
    for (size_t i = 0; i < table.count; i++) {
        pid_t pid = running_listener(&table.service[i]);
        if (pid) {
            printf("smtp: listening on %s (postern-accept pid %ld)\n", table.service[i].service,
                   (long)pid);
        } else {
            printf("smtp: %s not listening\n", table.service[i].service);
            down++;
        }
    }
    master_free(&table);
    return down;
}
