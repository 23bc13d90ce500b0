/* services.c - `postern start|stop|status` for the services behind unix
 * sockets of a self-contained instance, one line of the table each: each
 * binds its socket in queue_directory/public/ (mode 0600: the invoking
 * user's) and writes and locks queue_directory/pid/NAME.pid itself, as
 * qmgr does.  Started before qmgr and the SMTP listeners, so that their
 * first message already uses them (the lookup service first: the others
 * look tables up; the auth service, postern-auth, serves smtpd's AUTH);
 * stopped after the listeners, before qmgr, in reverse.
 * The runner services (postern-spawn TRANSPORT, one per transport of
 * privileged_transports; postern-spawn(8)) bind queue_directory/private/
 * TRANSPORT instead; they start after the others, before qmgr, which
 * connects to them, and stop after qmgr, whose runners they serve.
 * Run by root (users.c), each runs as its user with its socket mode 0666
 * (smtpd, another user, reaches it), as with the units: the lookup service
 * as mail_owner, the queue service as queue_service_user (it binds as root
 * and drops itself: postern-queue -S -u); a runner service stays root, to
 * deliver as each mailbox's owner.  The supervisor (supervise.c) starts,
 * watches and stops them one by one, in this order. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "postern.h"
#include "services.h"
#include "strbuf.h"
#include "strlist.h"
#include "xalloc.h"

#define SERVICE_START_MS    10000
#define SERVICE_STOP_MS     15000

/* One service: its program in daemon_directory, the option that makes it
 * the service, its pid file in queue_directory/pid/, and what happens
 * while it does not run. */
struct service {
    const char *name;
    const char *program;
    const char *option;             /* NULL: none */
    const char *pid_file;
    const char *without;
    const char *argument;           /* after -c DIR (NULL: none) */
    const char *socket;             /* in queue_directory (NULL: its own business) */
    enum daemon_role role;          /* whom it runs as when root starts it */
};

static const struct service services[] = {
    {"lookup service", "postern-lookup", NULL, "lookup.pid",
     "proxy: and unix: lookups answer \"try again\"", NULL, "public/lookup", ROLE_LOOKUP},
    {"queue service", "postern-queue", "-S", "queue.pid", "injections run postern-queue", NULL,
     "public/queue", ROLE_QUEUE_SERVICE},
    {"auth service", "postern-auth", NULL, "auth.pid", "smtpd offers no AUTH", NULL,
     "public/auth", ROLE_AUTH},
    {"verify service", "postern-verify", NULL, "verify.pid",
     "reject_unverified_recipient and reject_unverified_sender wait for it", NULL,
     "public/verify", ROLE_QMGR},
};
#define SERVICE_COUNT (sizeof services / sizeof services[0])

/* The runner services of privileged_transports, built when needed. */
struct runner_services {
    struct strlist transports, names, pid_files;
    struct service *list;
    size_t count;
};

/* List the runner services the configuration asks for. */
static void runner_services_read(struct runner_services *rs)
{
    memset(rs, 0, sizeof *rs);
    conf_list("privileged_transports", &rs->transports);
    rs->count = rs->transports.count;
    rs->list = xcalloc(rs->count + 1, sizeof *rs->list);
    for (size_t i = 0; i < rs->count; i++) {
        struct strbuf text = STRBUF_INIT;
        strbuf_printf(&text, "runner service %s", rs->transports.item[i]);
        strlist_add(&rs->names, text.s);
        strbuf_reset(&text);
        strbuf_printf(&text, "spawn.%s.pid", rs->transports.item[i]);
        strlist_add(&rs->pid_files, text.s);
        strbuf_free(&text);
    }
    for (size_t i = 0; i < rs->count; i++)
        rs->list[i] = (struct service){rs->names.item[i], "postern-spawn", NULL,
                                       rs->pid_files.item[i], "its deliveries wait",
                                       rs->transports.item[i], NULL, ROLE_AS_STARTED};
}

static void runner_services_free(struct runner_services *rs)
{
    strlist_free(&rs->transports);
    strlist_free(&rs->names);
    strlist_free(&rs->pid_files);
    free(rs->list);
}

/* The pid in the service's pid file (0 when none). */
static pid_t pid_file_value(const struct service *svc)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/pid/%s", conf_str("queue_directory"), svc->pid_file);
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    return pid;
}

/* The running service's pid, else 0. */
static pid_t running_service(const struct service *svc)
{
    pid_t pid = pid_file_value(svc);
    return pid > 0 && process_is(pid, svc->program) ? pid : 0;
}

/* 1 when daemon_directory holds the program (a stand-in qmgr's test
 * directory may not: no service then, as no listener without smtpd). */
static int service_present(const struct service *svc)
{
    struct strbuf program = STRBUF_INIT;
    strbuf_printf(&program, "%s/%s", conf_str("daemon_directory"), svc->program);
    int present = access(program.s, X_OK) == 0;
    strbuf_free(&program);
    return present;
}

/* Start one service unless it runs; 0, or 1 (with the reason). */
static int service_start(const struct service *svc)
{
    pid_t pid = running_service(svc);
    if (pid) {
        printf("postern: %s already running (pid %ld)\n", svc->name, (long)pid);
        return 0;
    }
    if (!service_present(svc)) {
        printf("postern: no %s in %s: no %s\n", svc->program,
               conf_str("daemon_directory"), svc->name);
        return 0;
    }
    struct strbuf program = STRBUF_INIT;
    strbuf_printf(&program, "%s/%s", conf_str("daemon_directory"), svc->program);
    char *args[14], **arg = args;
    *arg++ = program.s;
    if (svc->option)
        *arg++ = (char *)svc->option;
    *arg++ = "-c";
    *arg++ = (char *)config_dir();
    const struct run_as *as = instance_user(svc->role);
    char ids[64], trusted[32], group[32];
    if (as && svc->role == ROLE_AUTH) {
        /* whoever reaches it may try passwords: smtpd's group only */
        snprintf(group, sizeof group, "%ld", (long)instance_user(ROLE_SMTPD)->gid);
        *arg++ = "-m";
        *arg++ = "0660";
        *arg++ = "-g";
        *arg++ = group;
    } else if (as) {
        *arg++ = "-m";
        *arg++ = "0666";
    }
    if (as && svc->role == ROLE_QUEUE_SERVICE) {
        /* it binds and writes its pid file as root, in directories that
         * are mail_owner's, then becomes its user; smtpd's client
         * attributes are trusted as its own */
        snprintf(ids, sizeof ids, "%ld:%ld", (long)as->uid, (long)as->gid);
        snprintf(trusted, sizeof trusted, "%ld", (long)instance_user(ROLE_SMTPD)->uid);
        *arg++ = "-u";
        *arg++ = ids;
        *arg++ = "-t";
        *arg++ = trusted;
        as = NULL;
    }
    if (svc->argument)
        *arg++ = (char *)svc->argument;
    *arg = NULL;
    pid = spawn_daemon(args, as);
    strbuf_free(&program);
    const char *maillog = conf_str("maillog_file");
    for (long waited = 0; waited < SERVICE_START_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("%s exited at start (%s %d); see %s", svc->program,
                      WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                      *maillog ? maillog : "syslog");
            return 1;
        }
        /* the service writes its pid once it listens */
        if (pid_file_value(svc) == pid) {
            printf("postern: started the %s (pid %ld)\n", svc->name, (long)pid);
            return 0;
        }
        sleep_ms(20);
    }
    msg_error("the %s (pid %ld) is not listening after %d seconds", svc->name, (long)pid,
              SERVICE_START_MS / 1000);
    return 1;
}

/* Stop one service; 0, or 1 when it did not stop in time. */
static int service_stop(const struct service *svc)
{
    pid_t pid = running_service(svc);
    if (!pid)
        return 0;
    if (process_stop(pid, SERVICE_STOP_MS)) {
        /* run by root as another user, it may not have been able to
         * remove them (public/ and pid/ are mail_owner's) */
        if (geteuid() == 0 && svc->socket && pid_file_value(svc) == pid) {
            struct strbuf path = STRBUF_INIT;
            strbuf_printf(&path, "%s/%s", conf_str("queue_directory"), svc->socket);
            (void)unlink(path.s);
            strbuf_reset(&path);
            strbuf_printf(&path, "%s/pid/%s", conf_str("queue_directory"), svc->pid_file);
            (void)unlink(path.s);
            strbuf_free(&path);
        }
        printf("postern: stopped the %s (pid %ld)\n", svc->name, (long)pid);
        return 0;
    }
    msg_error("the %s (pid %ld) did not stop within %d seconds", svc->name, (long)pid,
              SERVICE_STOP_MS / 1000);
    return 1;
}

/* The services in starting order: the table's, then the runner services
 * (read once). */
static const struct service *service_at(size_t i)
{
    static struct runner_services runners;
    static int read;
    if (!read) {
        runner_services_read(&runners);
        read = 1;
    }
    return i < SERVICE_COUNT ? &services[i] : &runners.list[i - SERVICE_COUNT];
}

size_t services_count(void)
{
    service_at(0);
    struct runner_services rs;
    runner_services_read(&rs);
    size_t n = SERVICE_COUNT + rs.count;
    runner_services_free(&rs);
    return n;
}

const char *service_name(size_t i)
{
    return service_at(i)->name;
}

int service_start_nth(size_t i)
{
    return service_start(service_at(i));
}

int service_stop_nth(size_t i)
{
    return service_stop(service_at(i));
}

int service_running_nth(size_t i)
{
    return running_service(service_at(i)) != 0 || !service_present(service_at(i));
}

int services_status(void)
{
    int down = 0;
    struct runner_services rs;
    runner_services_read(&rs);
    for (size_t i = 0; i < SERVICE_COUNT + rs.count; i++) {
        const struct service *svc = i < SERVICE_COUNT ? &services[i]
                                                       : &rs.list[i - SERVICE_COUNT];
        pid_t pid = running_service(svc);
        if (!pid && !service_present(svc))
            printf("%s: not available (no %s in %s)\n", svc->name, svc->program,
                   conf_str("daemon_directory"));
        else if (pid)
            printf("%s: running (pid %ld)\n", svc->name, (long)pid);
        else
            printf("%s: not running (%s)\n", svc->name, svc->without);
        down |= !pid && service_present(svc);
    }
    runner_services_free(&rs);
    return down;
}
