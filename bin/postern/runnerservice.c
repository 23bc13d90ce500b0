/* runnerservice.c - `postern start|stop|status` for the runner services of
 * a self-contained instance: one `postern-spawn TRANSPORT` per transport of
 * privileged_transports (postern-spawn(8)), which binds
 * queue_directory/private/TRANSPORT and writes and locks
 * queue_directory/pid/spawn.TRANSPORT.pid itself.  Started before qmgr,
 * which connects to them; stopped after it, so that its runners are done. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "postern.h"
#include "runnerservice.h"
#include "strbuf.h"

#define SPAWN_START_MS  10000
#define SPAWN_STOP_MS   15000

/* The pid of transport's running service, else 0. */
static pid_t running_spawn(const char *transport)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/pid/spawn.%s.pid", conf_str("queue_directory"), transport);
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    return pid > 0 && process_is(pid, "postern-spawn") ? pid : 0;
}

/* Start one service; 0, or 1 with the reason. */
static int spawn_start(const char *transport)
{
    pid_t pid = running_spawn(transport);
    if (pid) {
        printf("postern: runner service %s already running (pid %ld)\n", transport, (long)pid);
        return 0;
    }
    struct strbuf program = STRBUF_INIT;
    strbuf_printf(&program, "%s/postern-spawn", conf_str("daemon_directory"));
    char *args[] = {program.s, "-c", (char *)config_dir(), (char *)transport, NULL};
    pid = spawn_daemon(args);
    strbuf_free(&program);
    for (long waited = 0; waited < SPAWN_START_MS; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("postern-spawn %s exited at start; see the log", transport);
            return 1;
        }
        if (running_spawn(transport) == pid) {  /* it writes its pid once it listens */
            printf("postern: started the runner service %s (pid %ld)\n", transport, (long)pid);
            return 0;
        }
        sleep_ms(20);
    }
    msg_error("the runner service %s (pid %ld) is not listening after %d seconds", transport,
              (long)pid, SPAWN_START_MS / 1000);
    return 1;
}

/* Stop one service (SIGTERM: its runners finish first); 0, or 1. */
static int spawn_stop(const char *transport)
{
    pid_t pid = running_spawn(transport);
    if (!pid)
        return 0;
    if (kill(pid, SIGTERM) < 0)
        msg_fatal_errno("kill %ld", (long)pid);
    for (long waited = 0; waited < SPAWN_STOP_MS; waited += 20) {
        if (!process_running(pid)) {
            printf("postern: stopped the runner service %s (pid %ld)\n", transport, (long)pid);
            return 0;
        }
        sleep_ms(20);
    }
    msg_error("the runner service %s (pid %ld) did not stop within %d seconds", transport,
              (long)pid, SPAWN_STOP_MS / 1000);
    return 1;
}

/* Apply fn to every transport of privileged_transports; the or of results. */
static int for_each(int (*fn)(const char *transport))
{
    struct strlist transports = STRLIST_INIT;
    conf_list("privileged_transports", &transports);
    int rc = 0;
    for (size_t i = 0; i < transports.count; i++)
        rc |= fn(transports.item[i]);
    strlist_free(&transports);
    return rc;
}

/* One status line. */
static int spawn_status(const char *transport)
{
    pid_t pid = running_spawn(transport);
    if (pid)
        printf("runner service %s: running (pid %ld)\n", transport, (long)pid);
    else
        printf("runner service %s: not running (its deliveries wait)\n", transport);
    return !pid;
}

int runner_services_start(void)
{
    return for_each(spawn_start);
}

int runner_services_stop(void)
{
    return for_each(spawn_stop);
}

int runner_services_status(void)
{
    return for_each(spawn_status);
}
