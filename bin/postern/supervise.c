/* supervise.c - the daemons of a self-contained instance in one table, and
 * the supervisor (supervise.h): a process forked by `postern start` once
 * every daemon runs, in its own session, named "postern-supervise" (comm),
 * with its pid in queue_directory/pid/supervise.pid.  Every half second,
 * and at once on SIGCHLD or SIGUSR1 (`postern start` asking), it checks
 * each daemon and starts the one that is not running with the same
 * function `postern start` uses: at once when it had run for a minute,
 * else after 1, 2, 4, ... seconds, at most 60.  SIGUSR1 forgets the
 * backoff.  Each restart is logged and recorded in
 * queue_directory/pid/supervise.status ("NAME RESTARTS EPOCH" lines) for
 * `postern status`.  SIGTERM ends it (the daemons stay: `postern stop`
 * stops them after it). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "listeners.h"
#include "log.h"
#include "postern.h"
#include "services.h"
#include "strbuf.h"
#include "supervise.h"
#include "monotonic.h"

#define SUPERVISOR_NAME     "postern-supervise"     /* comm: 15 bytes */
#define CHECK_MS            500
#define STABLE_MS           60000   /* a daemon that ran this long restarts at once */
#define BACKOFF_MAX_MS      60000
#define START_WAIT_MS       30000   /* `postern start` waiting for the supervisor */
#define STOP_WAIT_MS        35000   /* the supervisor may be inside a start */

/* qmgr and SMTP in the table's form (the index is unused). */
static int qmgr_start_one(size_t i) { (void)i; return qmgr_start(); }
static int qmgr_stop_one(size_t i) { (void)i; return qmgr_stop(); }
static int qmgr_running_one(size_t i) { (void)i; return qmgr_running(); }
static int smtp_start_one(size_t i) { (void)i; return listeners_start(conf_str("daemon_directory")); }
static int smtp_stop_one(size_t i) { (void)i; return listeners_stop(); }
static int smtp_running_one(size_t i) { (void)i; return listeners_running(); }

#define DAEMON_MAX 16
static struct daemon daemons[DAEMON_MAX];
static size_t daemon_count;

/* Append one daemon to the table. */
static void add_daemon(const char *name, int (*start)(size_t), int (*running)(size_t),
                       int (*stop)(size_t), size_t which)
{
    if (daemon_count == DAEMON_MAX)
        msg_fatal("supervise.c: more than %d daemons", DAEMON_MAX);
    daemons[daemon_count++] = (struct daemon){name, start, running, stop, which};
}

/* The daemons, started in this order and stopped in the reverse: the
 * services behind unix sockets first (services.c: qmgr's bounces and the
 * first SMTP message already go through them), then qmgr, SMTP last.  A
 * daemon of another kind is one more add_daemon() line. */
static void daemons_init(void)
{
    if (daemon_count)
        return;
    for (size_t i = 0; i < services_count(); i++)
        add_daemon(service_name(i), service_start_nth, service_running_nth, service_stop_nth, i);
    add_daemon("qmgr", qmgr_start_one, qmgr_running_one, qmgr_stop_one, 0);
    add_daemon("smtp", smtp_start_one, smtp_running_one, smtp_stop_one, 0);
}

/* queue_directory/pid/NAME */
static void pid_dir_file(struct strbuf *out, const char *name)
{
    strbuf_printf(out, "%s/pid/%s", conf_str("queue_directory"), name);
}

/* The running supervisor's pid, else 0. */
static pid_t supervisor_pid(void)
{
    struct strbuf path = STRBUF_INIT;
    pid_dir_file(&path, "supervise.pid");
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    if (pid <= 0 || !process_running(pid))
        return 0;
    char comm_path[64], comm[32] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(comm_path, "re");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = '\0';
    return strncmp(comm, SUPERVISOR_NAME, 15) == 0 ? pid : 0;
}

/* ---- the supervisor ---- */

struct watch {
    unsigned restarts;
    time_t last_restart;        /* wall clock, for the status */
    long long started_ms;       /* when it was last started (or found running) */
    long long backoff_ms;
    long long retry_ms;         /* when to start it; 0 while it runs */
};

/* Write the status file (replacing it atomically). */
static void write_status(const struct watch *w)
{
    struct strbuf path = STRBUF_INIT, tmp = STRBUF_INIT, text = STRBUF_INIT;
    pid_dir_file(&path, "supervise.status");
    strbuf_printf(&tmp, "%s.tmp", path.s);
    for (size_t i = 0; i < daemon_count; i++)
        if (w[i].restarts)
            strbuf_printf(&text, "%s\t%u\t%lld\n", daemons[i].name, w[i].restarts,
                          (long long)w[i].last_restart);
    int fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, text.s ? text.s : "", text.len) < 0 || close(fd) < 0
        || rename(tmp.s, path.s) < 0)
        msg_warn_errno("write %s", path.s);
    strbuf_free(&path);
    strbuf_free(&tmp);
    strbuf_free(&text);
}

/* Reap the daemons we started ourselves, logging how they ended. */
static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (WIFSIGNALED(status))
            msg_warn("pid %ld killed by signal %d", (long)pid, WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            msg_warn("pid %ld exit status %d", (long)pid, WEXITSTATUS(status));
    }
}

/* Look at every daemon; start those due.  reset: no backoff (SIGUSR1). */
static void check_daemons(struct watch *w, int reset)
{
    long long now = monotonic_ms();
    for (size_t i = 0; i < daemon_count; i++) {
        if (reset)
            w[i].backoff_ms = 0;
        if (daemons[i].running(daemons[i].which)) {
            w[i].retry_ms = 0;
            continue;
        }
        if (w[i].retry_ms == 0) {
            /* just found down: at once after a good run, else back off */
            if (now - w[i].started_ms >= STABLE_MS)
                w[i].backoff_ms = 0;
            else
                w[i].backoff_ms = w[i].backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                  : w[i].backoff_ms ? w[i].backoff_ms * 2 : 1000;
            if (reset)
                w[i].backoff_ms = 0;
            w[i].retry_ms = now + w[i].backoff_ms;
            if (w[i].backoff_ms)
                msg_warn("%s is not running: restarting it in %lld s (it ran less than "
                         "%d s)", daemons[i].name, w[i].backoff_ms / 1000, STABLE_MS / 1000);
            else
                msg_warn("%s is not running: restarting it now", daemons[i].name);
        } else if (reset) {
            w[i].retry_ms = now;
        }
        if (now < w[i].retry_ms)
            continue;
        int rc = daemons[i].start(daemons[i].which);
        w[i].restarts++;
        w[i].last_restart = time(NULL);
        w[i].started_ms = monotonic_ms();
        w[i].retry_ms = 0;
        msg_info("restarted %s (%u time%s)%s", daemons[i].name, w[i].restarts,
                 w[i].restarts == 1 ? "" : "s", rc ? ": it failed to start" : "");
        write_status(w);
    }
}

/* The supervisor's life: until SIGTERM. */
static _Noreturn void supervise(void)
{
    prctl(PR_SET_NAME, SUPERVISOR_NAME);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        msg_fatal_errno("sigprocmask");
    int sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        msg_fatal_errno("signalfd");
    struct watch w[DAEMON_MAX];
    memset(w, 0, sizeof w);
    long long now = monotonic_ms();
    for (size_t i = 0; i < daemon_count; i++)
        w[i].started_ms = now;
    write_status(w);
    msg_info("supervising %zu daemon(s)", daemon_count);
    for (;;) {
        struct pollfd pfd = {sigfd, POLLIN, 0};
        int timeout = CHECK_MS;
        now = monotonic_ms();
        for (size_t i = 0; i < daemon_count; i++)
            if (w[i].retry_ms && w[i].retry_ms - now < timeout)
                timeout = w[i].retry_ms > now ? (int)(w[i].retry_ms - now) : 0;
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
            msg_fatal_errno("poll");
        int reset = 0;
        struct signalfd_siginfo info;
        while (read(sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
            if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
                struct strbuf path = STRBUF_INIT;
                pid_dir_file(&path, "supervise.pid");
                (void)unlink(path.s);
                strbuf_free(&path);
                msg_info("stopping (the daemons stay until postern stop stops them)");
                exit(0);
            }
            if (info.ssi_signo == SIGUSR1)
                reset = 1;
        }
        reap();
        check_daemons(w, reset);
    }
}

/* Fork the supervisor; 0 once its pid file names it, else 1. */
static int supervisor_start(void)
{
    struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
    pid_dir_file(&path, "supervise.pid");
    const char *maillog = conf_str("maillog_file");
    pid_t pid = fork_daemon();
    if (pid == 0) {
        log_open("supervise", 0);
        log_configure(conf_str("syslog_name"), conf_str("syslog_facility"), maillog);
        strbuf_printf(&text, "%ld\n", (long)getpid());
        struct strbuf tmp = STRBUF_INIT;
        strbuf_printf(&tmp, "%s.tmp", path.s);
        int fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, text.s, text.len) < 0 || close(fd) < 0
            || rename(tmp.s, path.s) < 0)
            msg_fatal_errno("write %s", path.s);
        strbuf_free(&tmp);
        supervise();
    }
    int rc = 1;
    for (long waited = 0; waited < 10000; waited += 20) {
        if (supervisor_pid() == pid) {
            printf("postern: supervising the daemons (pid %ld): a daemon that dies is "
                   "restarted\n", (long)pid);
            rc = 0;
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;
        sleep_ms(20);
    }
    if (rc)
        msg_error("the supervisor did not start; see %s", *maillog ? maillog : "syslog");
    strbuf_free(&path);
    strbuf_free(&text);
    return rc;
}

/* Stop the supervisor (not its daemons); 0, or 1 when it did not stop. */
static int supervisor_stop(void)
{
    pid_t pid = supervisor_pid();
    if (!pid)
        return 0;
    if (process_stop(pid, STOP_WAIT_MS)) {
        printf("postern: stopped the supervisor (pid %ld)\n", (long)pid);
        return 0;
    }
    msg_error("the supervisor (pid %ld) did not stop within %d seconds", (long)pid,
              STOP_WAIT_MS / 1000);
    return 1;
}

/* ---- the commands ---- */

/* 1 when every daemon runs. */
static int all_running(void)
{
    for (size_t i = 0; i < daemon_count; i++)
        if (!daemons[i].running(daemons[i].which))
            return 0;
    return 1;
}

int instance_start(void)
{
    daemons_init();
    /* as root: each daemon as its own user, or nothing */
    if (instance_users_check() || instance_users_prepare())
        return 1;
    pid_t supervisor = supervisor_pid();
    if (supervisor) {
        /* one starter at a time: the supervisor starts what is down */
        if (kill(supervisor, SIGUSR1) < 0)
            msg_fatal_errno("kill %ld", (long)supervisor);
        for (long waited = 0; waited < START_WAIT_MS && !all_running(); waited += 20)
            sleep_ms(20);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < daemon_count; i++)
        rc = daemons[i].start(daemons[i].which);
    if (rc == 0 && !supervisor)
        rc = supervisor_start();
    else if (supervisor)
        printf("postern: supervisor already running (pid %ld)\n", (long)supervisor);
    return rc;
}

int instance_stop(void)
{
    daemons_init();
    /* no restarts while stopping, then no new sessions first; those in
     * progress finish and still queue */
    int rc = supervisor_stop();
    for (size_t i = daemon_count; i-- > 0;)
        rc |= daemons[i].stop(daemons[i].which);
    return rc;
}

void supervisor_status(void)
{
    pid_t pid = supervisor_pid();
    if (pid)
        printf("supervisor: running (pid %ld)\n", (long)pid);
    else
        printf("supervisor: not running (a daemon that dies stays down)\n");
    struct strbuf path = STRBUF_INIT;
    pid_dir_file(&path, "supervise.status");
    FILE *f = fopen(path.s, "re");
    strbuf_free(&path);
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char name[64];
        unsigned restarts;
        long long when;
        /* names may hold a space: NAME TAB COUNT TAB EPOCH */
        if (sscanf(line, "%63[^\t]\t%u\t%lld", name, &restarts, &when) != 3)
            continue;
        time_t t = (time_t)when;
        char stamp[64];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
        printf("restarted: %s, %u time%s, last at %s\n", name, restarts,
               restarts == 1 ? "" : "s", stamp);
    }
    fclose(f);
}
