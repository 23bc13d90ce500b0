/* postern-qmgr - the queue manager, postern's one long-running daemon.
 *
 * This file: options, start-up (configuration, pid file, trigger FIFO,
 * systemd), the poll() event loop, signals (SIGCHLD, SIGHUP reload,
 * SIGTERM stop) and timers (incoming scan every second, deferred scan every
 * queue_run_delay, the systemd watchdog).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "resolve.h"
#include "xalloc.h"

struct qmgr qmgr;

static int trigger_fd = -1, trigger_writer_fd = -1, signal_fd = -1, pid_fd = -1;
static int under_systemd;
static char *pid_path;

/* Print the usage and exit 2. */
static void usage(void)
{
    fprintf(stderr, "usage: postern-qmgr [-c config_dir] [-o name=value]... [-v]\n"
                    "       postern-qmgr [-c config_dir] [-o name=value]... -r [-f SENDER] ADDRESS...\n");
    exit(2);
}

void qmgr_read_conf(void)
{
    struct qmgr_conf *c = &qmgr.conf;
    free(c->queue_directory);
    free(c->daemon_directory);
    c->queue_directory = xstrdup(conf_str("queue_directory"));
    c->daemon_directory = xstrdup(conf_str("daemon_directory"));
    c->minimal_backoff_time = conf_time("minimal_backoff_time");
    c->maximal_backoff_time = conf_time("maximal_backoff_time");
    c->queue_run_delay = conf_time("queue_run_delay");
    c->maximal_queue_lifetime = conf_time("maximal_queue_lifetime");
    c->bounce_queue_lifetime = conf_time("bounce_queue_lifetime");
    c->delay_warning_time = conf_time("delay_warning_time");
    c->message_active_limit = conf_int("qmgr_message_active_limit");
    c->default_process_limit = (int)conf_int("default_process_limit");
    c->soft_bounce = conf_bool("soft_bounce");
    c->max_use = conf_int("max_use");
    c->max_idle = conf_time("max_idle");
    if (c->bounce_queue_lifetime > c->maximal_queue_lifetime) {
        msg_warn("bounce_queue_lifetime is larger than maximal_queue_lifetime - "
                 "adjusting bounce_queue_lifetime");
        c->bounce_queue_lifetime = c->maximal_queue_lifetime;
    }
    if (c->minimal_backoff_time < 1)
        c->minimal_backoff_time = 1;
    if (c->maximal_backoff_time < c->minimal_backoff_time)
        c->maximal_backoff_time = c->minimal_backoff_time;
    if (c->queue_run_delay < 1)
        c->queue_run_delay = 1;
    if (c->message_active_limit < 1)
        c->message_active_limit = 1;
    if (c->default_process_limit < 1)
        c->default_process_limit = 1;
    if (c->max_use < 1)
        c->max_use = 1;
    if (c->max_idle < 1)
        c->max_idle = 1;
    struct strbuf err = STRBUF_INIT;
    struct resolver *r = resolver_open(&err);
    if (!r)
        msg_fatal_temp("%s", strbuf_str(&err));
    strbuf_free(&err);
    resolver_close(qmgr.resolver);
    qmgr.resolver = r;
    resolver_close(qmgr.probe_resolver);
    qmgr.probe_resolver = NULL;
}

/* Open the trigger FIFO (create it when missing); keep a writer of our own
 * so that the FIFO never reads end of file. */
static void open_trigger(void)
{
    int n = sd_listen_fds(1);
    if (n >= 1) {
        trigger_fd = SD_LISTEN_FDS_START;
        fcntl(trigger_fd, F_SETFD, FD_CLOEXEC);
        fcntl(trigger_fd, F_SETFL, fcntl(trigger_fd, F_GETFL) | O_NONBLOCK);
        /* a writer of our own here too: a FIFO without writers polls as
         * hung up, which would wake the loop for ever */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", trigger_fd);
        trigger_writer_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        return;
    }
    if (mkdirat(qmgr.queue_fd, "public", 0711) != 0 && errno != EEXIST)
        msg_fatal_temp_errno("mkdir %s/public", qmgr.conf.queue_directory);
    if (mkfifoat(qmgr.queue_fd, QUEUE_TRIGGER, 0622) != 0 && errno != EEXIST)
        msg_fatal_temp_errno("mkfifo %s/%s", qmgr.conf.queue_directory, QUEUE_TRIGGER);
    trigger_fd = openat(qmgr.queue_fd, QUEUE_TRIGGER, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (trigger_fd < 0)
        msg_fatal_temp_errno("open %s/%s", qmgr.conf.queue_directory, QUEUE_TRIGGER);
    trigger_writer_fd = openat(qmgr.queue_fd, QUEUE_TRIGGER, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

/* The pid file, locked for our whole life: a second qmgr refuses to run. */
static void write_pid_file(void)
{
    if (mkdirat(qmgr.queue_fd, "pid", 0700) != 0 && errno != EEXIST)
        msg_fatal_temp_errno("mkdir %s/pid", qmgr.conf.queue_directory);
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/pid/qmgr.pid", qmgr.conf.queue_directory);
    pid_path = strbuf_detach(&path);
    pid_fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pid_fd < 0)
        msg_fatal_temp_errno("open %s", pid_path);
    /* a runner that a killed qmgr was starting holds the lock until its
     * exec: wait a little before deciding that another qmgr runs */
    int locked = 0;
    for (int tries = 0; tries < 20 && !(locked = flock(pid_fd, LOCK_EX | LOCK_NB) == 0); tries++)
        usleep(100000);
    if (!locked) {
        char buf[32] = "";
        ssize_t n = pread(pid_fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        msg_fatal_temp("another postern-qmgr is running on %s (pid %s)",
                       qmgr.conf.queue_directory, buf);
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(pid_fd, 0) != 0 || pwrite(pid_fd, text, (size_t)len, 0) != len)
        msg_fatal_temp_errno("write %s", pid_path);
}

/* Site flushes asked for and not done yet (at most this many). */
#define MAX_PENDING_SITES 64

/* Read every pending trigger request: 'A' scan incoming, 'F' flush
 * deferred (*want_flush 2: suspended destinations are tried again too; 1:
 * the deferred queue only), "S" DOMAIN "\n" flush one domain's deferred
 * mail; any other byte scans incoming.  A site request may arrive in two
 * reads. */
static void read_trigger(int *want_incoming, int *want_flush, struct strlist *sites)
{
    static char site[QUEUE_SITE_MAX + 1];
    static size_t site_len;
    static int in_site, site_bad;
    char buf[256];
    for (;;) {
        ssize_t n = read(trigger_fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (in_site) {
                if (c != '\n') {
                    if (site_len < QUEUE_SITE_MAX && strchr(QUEUE_SITE_CHARS, c) && c)
                        site[site_len++] = c;
                    else
                        site_bad = 1;
                    continue;
                }
                in_site = 0;
                site[site_len] = '\0';
                if (site_bad || site_len == 0)
                    msg_warn("trigger: malformed site flush request ignored");
                else if (sites->count < MAX_PENDING_SITES)
                    strlist_add(sites, site);
                else if (!*want_flush)
                    *want_flush = 1;        /* too many at once: flush all */
            } else if (c == 'S') {
                in_site = 1;
                site_len = 0;
                site_bad = 0;
            } else if (c == 'F') {
                *want_flush = 2;            /* and suspended destinations revive */
            } else {
                *want_incoming = 1;
            }
        }
    }
}

/* Tell systemd how we are (no-op without NOTIFY_SOCKET). */
static void notify_status(void)
{
    static size_t last_active = (size_t)-1, last_deferred, last_running;
    if (!under_systemd)
        return;
    if (qmgr.message_count == last_active && qmgr.deferred_count == last_deferred
        && qmgr.running_count == last_running)
        return;
    last_active = qmgr.message_count;
    last_deferred = qmgr.deferred_count;
    last_running = qmgr.running_count;
    sd_notifyf(0, "STATUS=active %zu, deferred %zu, runners %zu",
               qmgr.message_count, qmgr.deferred_count, qmgr.running_count);
}

/* Handle the signals read from the signalfd. */
static void read_signals(void)
{
    struct signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        switch (info.ssi_signo) {
        case SIGCHLD: {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (!pool_reap(pid, status))
                    job_reap(pid, status);
            break;
        }
        case SIGHUP:
            msg_info("reload -- configuration %s", config_dir());
            config_reload();
            qmgr_read_conf();
            transports_reset();
            qmgr.generation++;      /* runners started before now retire */
            break;
        case SIGTERM:
        case SIGINT:
            if (!qmgr.stopping)
                msg_info("terminating on signal %d", (int)info.ssi_signo);
            qmgr.stopping = 1;
            break;
        }
    }
}

/* The event loop; returns when stopping and the runners are done (or the
 * grace time is over). */
static void event_loop(void)
{
    double next_incoming = 0, next_deferred = 0, next_watchdog = 0, stop_deadline = 0;
    uint64_t watchdog_usec = 0;
    int watchdog = under_systemd && sd_watchdog_enabled(0, &watchdog_usec) > 0;
    int want_incoming = 1, want_flush = 0;
    struct strlist sites = STRLIST_INIT;    /* site flushes to do */
    struct pollfd *fds = NULL;
    size_t fds_size = 0;
    struct qmgr_job **jobs = NULL;
    struct qmgr_runner **runners = NULL;

    for (;;) {
        double now = monotonic_now();
        double next_deadline = jobs_check_timeouts(now);
        double next_retire = pool_check(now);
        if (qmgr.stopping) {
            if (stop_deadline == 0)
                stop_deadline = now + 10;
            if (qmgr.running_count == 0 || now >= stop_deadline)
                break;
        } else {
            /* with the active queue full, leave the directories alone */
            int room = (long long)qmgr.message_count < qmgr.conf.message_active_limit;
            if (qmgr.active_leftover && room)
                scan_active();
            if (room && (want_incoming || qmgr.room_freed || now >= next_incoming)) {
                scan_incoming();
                want_incoming = 0;
                qmgr.room_freed = 0;
                next_incoming = now + 1;
            }
            if (room && (want_flush || now >= next_deferred)) {
                if (want_flush == 2)
                    destinations_revive();      /* asked for: 'F' */
                if (scan_slots())
                    scan_incoming();    /* what it named */
                scan_deferred(want_flush);
                want_flush = 0;
                next_deferred = now + (double)qmgr.conf.queue_run_delay;
            }
            if (room && sites.count) {
                scan_deferred_sites(&sites);
                strlist_free(&sites);
            }
            if (!room) {
                /* look again a second from now (or when a message leaves) */
                if (next_incoming <= now)
                    next_incoming = now + 1;
                if (next_deferred <= now)
                    next_deferred = now + 1;
            }
            schedule_run();
        }
        if (watchdog && now >= next_watchdog) {
            sd_notify(0, "WATCHDOG=1");
            next_watchdog = now + (double)watchdog_usec / 2e6;
        }
        notify_status();

        size_t need = 2 + qmgr.running_count + qmgr.runner_count;
        if (need > fds_size) {
            fds_size = need * 2;
            fds = xreallocarray(fds, fds_size, sizeof *fds);
            jobs = xreallocarray(jobs, fds_size, sizeof *jobs);
            runners = xreallocarray(runners, fds_size, sizeof *runners);
        }
        size_t nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = trigger_fd, .events = POLLIN};
        for (struct qmgr_job *job = qmgr.running; job; job = job->next) {
            if (job->eof || job->result_fd < 0)
                continue;
            jobs[nfds] = job;
            runners[nfds] = NULL;
            fds[nfds++] = (struct pollfd){.fd = job->result_fd, .events = POLLIN};
        }
        for (struct qmgr_runner *r = qmgr.runners; r; r = r->next) {
            short events = pool_events(r);
            if (!events)
                continue;
            jobs[nfds] = NULL;
            runners[nfds] = r;
            fds[nfds++] = (struct pollfd){.fd = r->fd, .events = events};
        }
        double wake = qmgr.stopping ? stop_deadline : next_incoming;
        if (!qmgr.stopping && next_deferred < wake)
            wake = next_deferred;
        if (watchdog && next_watchdog < wake)
            wake = next_watchdog;
        if (next_deadline > 0 && next_deadline < wake)
            wake = next_deadline;
        if (next_retire > 0 && next_retire < wake)
            wake = next_retire;
        int timeout = (int)((wake - now) * 1000) + 1;
        if (timeout < 0)
            timeout = 0;
        int n = poll(fds, nfds, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal_temp_errno("poll");
        }
        if (fds[0].revents)
            read_signals();
        if (fds[1].revents & POLLIN)
            read_trigger(&want_incoming, &want_flush, &sites);
        for (size_t i = 2; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (jobs[i])
                job_read(jobs[i]);
            else
                pool_io(runners[i], fds[i].revents);
        }
        pool_check(monotonic_now());
        jobs_check_done();
    }
    free(fds);
    free(jobs);
    free(runners);
    strlist_free(&sites);
}

/* -r: print how each address resolves (class, transport, nexthop), as the
 * daemon would route it; exit 75 (EX_TEMPFAIL) when a table could not answer. */
static int print_resolutions(const char *sender, char **addresses, int count)
{
    struct strbuf err = STRBUF_INIT;
    struct resolver *r = resolver_open(&err);
    if (!r)
        msg_fatal_temp("%s", strbuf_str(&err));
    strbuf_free(&err);
    struct resolution res = RESOLUTION_INIT;
    int status = 0;
    for (int i = 0; i < count; i++) {
        if (resolve_address_from(r, sender, addresses[i], &res) != RESOLVE_OK) {
            printf("%s: temporary failure: %s\n", addresses[i], strbuf_str(&res.reason));
            status = EX_TEMPFAIL;
            continue;
        }
        printf("%s: class=%s, transport=%s, nexthop=%s%s%s%s\n", addresses[i],
               address_class_name(res.address_class), strbuf_str(&res.transport),
               strbuf_str(&res.nexthop), res.deferred_transport ? ", deferred" : "",
               res.rerouted ? ", address=" : "", res.rerouted ? strbuf_str(&res.address) : "");
    }
    resolution_free(&res);
    resolver_close(r);
    return status;
}

/* Options, start-up, the event loop, the clean stop. */
int main(int argc, char **argv)
{
    log_open("postern-qmgr", 0);
    /* the signals the event loop reads are blocked before anything else:
     * a SIGTERM during start-up (reading main.cf, the queue tree, the pid
     * file, the trigger) then waits for the signalfd and ends qmgr through
     * its clean stop, instead of killing it half-started */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        msg_fatal_errno("sigprocmask");
    int opt, resolve_only = 0;
    const char *resolve_sender = NULL;
    while ((opt = getopt(argc, argv, "c:o:rf:v")) != -1) {
        if (opt == 'o')
            strlist_add(&qmgr.overrides, optarg);
        if (opt == 'r')
            resolve_only = 1;
        else if (opt == 'f')
            resolve_sender = optarg;
        else if (!config_common_option(opt, optarg))
            usage();
    }
    if (resolve_only) {
        /* -r is a command, not the daemon: signals act as usual */
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
        config_load(0);
        return print_resolutions(resolve_sender, argv + optind, argc - optind);
    }
    if (optind != argc)
        usage();
    config_load(0);
    under_systemd = getenv("NOTIFY_SOCKET") != NULL;
    qmgr_read_conf();
    /* the queue tree with the modes of doc/privileges.md (postern init and
     * make install create it; this completes a queue made by hand) */
    struct strbuf err = STRBUF_INIT;
    if (queue_dirs_create(qmgr.conf.queue_directory, (uid_t)-1, (gid_t)-1, &err) != 0)
        msg_warn("%s", strbuf_str(&err));
    strbuf_free(&err);
    qmgr.queue_fd = open(qmgr.conf.queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (qmgr.queue_fd < 0)
        msg_fatal_temp_errno("open queue_directory %s", qmgr.conf.queue_directory);
    write_pid_file();
    open_trigger();

    signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0)
        msg_fatal_errno("signalfd");
    signal(SIGPIPE, SIG_IGN);

    qmgr.active_leftover = 1;
    msg_info("daemon started -- queue %s", qmgr.conf.queue_directory);
    if (under_systemd)
        sd_notify(0, "READY=1");
    event_loop();
    if (under_systemd)
        sd_notify(0, "STOPPING=1");
    /* runners still busy after the grace time finish on their own; their
     * messages stay in active/ and are taken again at the next start.
     * Every reused runner sees EOF on its channel and exits. */
    pool_shutdown();
    while (qmgr.running) {
        struct qmgr_job *job = qmgr.running;
        qmgr.running = job->next;
        job_free(job);
    }
    while (qmgr.messages) {
        struct qmgr_message *msg = qmgr.messages;
        message_sync(msg);
        message_free(msg);
    }
    resolver_close(qmgr.resolver);
    resolver_close(qmgr.probe_resolver);
    if (pid_path)
        unlink(pid_path);
    msg_info("daemon stopped");
    return 0;
}
