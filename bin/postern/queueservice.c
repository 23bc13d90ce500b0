/* queueservice.c - `postern start|stop|status` for the queue service of a
 * self-contained instance: daemon_directory/postern-queue -S, which binds
 * queue_directory/public/queue (mode 0600: the invoking user's) and writes
 * and locks queue_directory/pid/queue.pid itself, as qmgr does.  Started
 * before qmgr and the SMTP listeners, so that their first message already
 * goes through it; stopped after the listeners, before qmgr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "postern.h"
#include "queuefile.h"
#include "queueservice.h"
#include "strbuf.h"

#define SERVICE_START_MS    10000
#define SERVICE_STOP_MS     15000

/* queue_directory/pid/queue.pid */
static void pid_path(struct strbuf *out)
{
    strbuf_printf(out, "%s/pid/queue.pid", conf_str("queue_directory"));
}

/* The pid in the pid file (0 when none). */
static pid_t pid_file_value(void)
{
    struct strbuf path = STRBUF_INIT;
    pid_path(&path);
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    return pid;
}

/* The running service's pid, else 0. */
static pid_t running_service(void)
{
    pid_t pid = pid_file_value();
    return pid > 0 && process_is(pid, "postern-queue") ? pid : 0;
}

/* 1 when daemon_directory holds postern-queue (a stand-in qmgr's test
 * directory may not: no service then, as no listener without smtpd). */
static int service_present(void)
{
    struct strbuf program = STRBUF_INIT;
    strbuf_printf(&program, "%s/postern-queue", conf_str("daemon_directory"));
    int present = access(program.s, X_OK) == 0;
    strbuf_free(&program);
    return present;
}

int queue_service_start(void)
{
    pid_t pid = running_service();
    if (pid) {
        printf("postern: queue service already running (pid %ld)\n", (long)pid);
        return 0;
    }
    if (!service_present()) {
        printf("postern: no postern-queue in %s: no queue service\n",
               conf_str("daemon_directory"));
        return 0;
    }
    struct strbuf program = STRBUF_INIT;
    strbuf_printf(&program, "%s/postern-queue", conf_str("daemon_directory"));
    const struct run_as *as = instance_user(ROLE_QUEUE_SERVICE);
    /* as root the service binds its socket and writes its pid file as
     * root, then runs as its own user (-u); smtpd, another user, must
     * reach the socket, as with the system unit */
    const struct run_as *smtpd = instance_user(ROLE_SMTPD);
    char ids[64], trusted[32];
    snprintf(ids, sizeof ids, "%ld:%ld", as ? (long)as->uid : 0L, as ? (long)as->gid : 0L);
    snprintf(trusted, sizeof trusted, "%ld", smtpd ? (long)smtpd->uid : 0L);
    /* smtpd's client attributes are its own, not a local user's claim */
    char *args[] = {program.s, "-S", "-c", (char *)config_dir(), "-m", "0666", "-u", ids,
                    "-t", trusted, NULL};
    if (!as)
        args[4] = NULL;
    pid = spawn_daemon(args, NULL);
    strbuf_free(&program);
    const char *maillog = conf_str("maillog_file");
    for (long waited = 0; waited < SERVICE_START_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("postern-queue -S exited at start (%s %d); see %s",
                      WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                      *maillog ? maillog : "syslog");
            return 1;
        }
        /* the service writes its pid once it listens */
        if (pid_file_value() == pid) {
            printf("postern: started the queue service (pid %ld)\n", (long)pid);
            return 0;
        }
        sleep_ms(20);
    }
    msg_error("the queue service (pid %ld) is not listening after %d seconds", (long)pid,
              SERVICE_START_MS / 1000);
    return 1;
}

int queue_service_stop(void)
{
    pid_t pid = running_service();
    if (!pid)
        return 0;
    if (process_stop(pid, SERVICE_STOP_MS)) {
        /* as queue_service_user it could not remove them: public/ and pid/
         * are mail_owner's (root's instance) */
        if (geteuid() == 0 && pid_file_value() == pid) {
            struct strbuf path = STRBUF_INIT;
            strbuf_printf(&path, "%s/%s", conf_str("queue_directory"), QUEUE_SERVICE);
            (void)unlink(path.s);
            strbuf_reset(&path);
            pid_path(&path);
            (void)unlink(path.s);
            strbuf_free(&path);
        }
        printf("postern: stopped the queue service (pid %ld)\n", (long)pid);
        return 0;
    }
    msg_error("the queue service (pid %ld) did not stop within %d seconds", (long)pid,
              SERVICE_STOP_MS / 1000);
    return 1;
}

int queue_service_running(void)
{
    return running_service() != 0 || !service_present();
}

int queue_service_status(void)
{
    pid_t pid = running_service();
    if (!pid && !service_present()) {
        printf("queue service: not available (no postern-queue in %s)\n",
               conf_str("daemon_directory"));
        return 0;
    }
    if (pid)
        printf("queue service: running (pid %ld)\n", (long)pid);
    else
        printf("queue service: not running (injections run postern-queue)\n");
    return !pid;
}
