/* serve.c - postern-accept's loop: accept, apply the per-client limits,
 * start the program (spawn.c) with the connection on fd 0 and 1 and the
 * UCSPI variables (env.c), reap children.  Signals arrive through a
 * signalfd, so the loop is one poll(2); nothing is read or looked up per
 * connection but the client's own entry. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "addrmatch.h"
#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"
#include "zygote.h"

#define ACCEPT_BATCH        64      /* connections taken per listener per wakeup */
#define PAUSE_MS            100     /* after running out of fds or processes */
#define LIMIT_WARN_INTERVAL 60      /* seconds between "reached its process limit" */

void settings_load(struct accept_settings *settings, long process_limit_option)
{
    settings->myhostname = conf_str("myhostname");
    settings->process_limit = process_limit_option > 0
        ? (size_t)process_limit_option : (size_t)conf_int("default_process_limit");
    settings->count_limit = (unsigned)conf_int("smtpd_client_connection_count_limit");
    settings->rate_limit = (unsigned)conf_int("smtpd_client_connection_rate_limit");
    settings->rate_unit = (time_t)conf_time("anvil_rate_time_unit");
    if (settings->rate_unit < 1)
        settings->rate_unit = 1;
    struct strbuf err = STRBUF_INIT;
    /* host name items see "unknown": no name is looked up in the accept loop */
    struct addrmatch *list = addrmatch_open("smtpd_client_event_limit_exceptions",
                                            conf_str("smtpd_client_event_limit_exceptions"), &err);
    if (!list)
        msg_fatal("%s", strbuf_str(&err));
    addrmatch_free(settings->exceptions);
    settings->exceptions = list;
    strbuf_free(&err);
}

/* Seconds on a clock that does not jump. */
static time_t monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Refuse a client as Postfix's smtpd does when anvil says no. */
static void refuse(const struct accept_settings *settings, int conn, const char *ip,
                   const char *what, unsigned value)
{
    char reply[512];
    msg_warn("%s limit exceeded: %u from unknown[%s] for service %s", what, value, ip,
             settings->service);
    int n = snprintf(reply, sizeof reply, "421 4.7.0 %s Error: too many connections from %s\r\n",
                     settings->myhostname, ip);
    if (n > 0 && (size_t)n < sizeof reply)
        (void)send(conn, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(conn, SHUT_WR);
}

struct loop_state {
    struct listeners *listeners;
    struct accept_settings *settings;
    long process_limit_option;
    int sigfd;
    time_t paused_until_ms;
    time_t last_limit_warning;
    time_t last_expire;
};

/* Milliseconds on the monotonic clock. */
static time_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Programs running or about to (passed to the zygote, not yet answered). */
static size_t busy(void)
{
    return child_count() + zygote_pending();
}

/* One accepted connection: limits, then the program. */
static void handle_connection(struct loop_state *st, const struct listener *l, int conn,
                              const struct sockaddr *peer)
{
    struct accept_settings *s = st->settings;
    struct client *client = NULL;
    struct client_key key;
    unsigned count = 0;
    if ((s->count_limit || s->rate_limit) && l->family != AF_UNIX
        && client_key_from(&key, peer) == 0) {
        char ip[INET6_ADDRSTRLEN], port[8];
        format_inet(peer, ip, sizeof ip, port, sizeof port);
        int exempt = addrmatch_match(s->exceptions, "unknown", ip);
        if (exempt < 0)
            msg_warn("smtpd_client_event_limit_exceptions: a table could not answer; "
                     "the client is limited");
        if (exempt != 1) {
            unsigned rate;
            client = client_get(&key);
            count = client_connect(client, monotonic_seconds(), s->rate_unit, &rate);
            const char *what = NULL;
            unsigned value = 0;
            if (s->count_limit && count > s->count_limit) {
                what = "Connection concurrency";
                value = count;
            } else if (s->rate_limit && rate > s->rate_limit) {
                what = "Connection rate";
                value = rate;
            }
            if (what) {
                client_disconnect(client);
                refuse(s, conn, ip, what, value);
                close(conn);
                return;
            }
        }
    }
    if (zygote_descriptor() >= 0) {
        int rc = zygote_pass(l, conn, peer, count, client);
        close(conn);
        if (rc < 0 && client)
            client_disconnect(client);
        return;
    }
    pid_t pid = spawn_program(s, l, conn, peer, count);
    close(conn);
    if (pid < 0) {
        if (client)
            client_disconnect(client);
        st->paused_until_ms = monotonic_ms() + PAUSE_MS;
        return;
    }
    child_add(pid, client);
}

/* Take what is waiting on one listener, up to the process limit. */
static void accept_some(struct loop_state *st, const struct listener *l)
{
    for (int i = 0; i < ACCEPT_BATCH && busy() < st->settings->process_limit; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int conn = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                continue;
            msg_warn_errno("accept %s", l->name);
            /* out of descriptors or memory: let children finish first */
            st->paused_until_ms = monotonic_ms() + PAUSE_MS;
            return;
        }
        handle_connection(st, l, conn, (struct sockaddr *)&peer);
    }
}

/* A program has ended: give its connection back, log an abnormal end. */
static void child_ended(struct loop_state *st, pid_t pid, int status)
{
    struct client *client;
    if (!child_remove(pid, &client))
        return;
    if (client)
        client_disconnect(client);
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
        msg_warn("process %s pid %ld killed by signal %d", st->settings->program,
                 (long)pid, WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        msg_warn("process %s pid %ld exit status %d", st->settings->program, (long)pid,
                 WEXITSTATUS(status));
}

/* Reap every child that has ended. */
static void reap_children(struct loop_state *st)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == zygote_process() && zygote_descriptor() >= 0)
            msg_fatal_temp("zygote %s pid %ld ended (status 0x%x)", st->settings->program,
                           (long)pid, status);
        child_ended(st, pid, status);
    }
}

/* Read what the zygote reports: children started, ended, or not started. */
static void read_zygote(struct loop_state *st)
{
    struct zygote_report r;
    int rc;
    while ((rc = zygote_read_report(zygote_descriptor(), &r)) == 1) {
        switch (r.type) {
        case ZYGOTE_STARTED:
            child_add(r.pid, zygote_pending_pop());
            break;
        case ZYGOTE_ENDED:
            child_ended(st, r.pid, r.status);
            break;
        case ZYGOTE_FAILED: {
            struct client *client = zygote_pending_pop();
            if (client)
                client_disconnect(client);
            st->paused_until_ms = monotonic_ms() + PAUSE_MS;
            break;
        }
        default:
            msg_fatal("zygote: unknown report type %d", (int)r.type);
        }
    }
    if (rc == 0)
        msg_fatal_temp("zygote %s closed its socket", st->settings->program);
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        msg_fatal_errno("zygote: read");
}

/* Read the signals that arrived; returns 1 when the loop must end. */
static int handle_signals(struct loop_state *st)
{
    struct signalfd_siginfo info;
    int stop = 0;
    while (read(st->sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
        switch (info.ssi_signo) {
        case SIGCHLD:
            break;
        case SIGHUP:
            msg_info("reload: reading %s", config_file());
            config_reload();
            settings_load(st->settings, st->process_limit_option);
            break;
        case SIGQUIT:
            child_signal_all(SIGTERM);
            if (zygote_descriptor() >= 0)
                kill(zygote_process(), SIGTERM);
            stop = 1;
            break;
        default:                /* SIGTERM, SIGINT */
            stop = 1;
            break;
        }
    }
    reap_children(st);
    return stop;
}

/* Block the signals we read from the signalfd. */
static int open_signalfd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        msg_fatal_errno("sigprocmask");
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        msg_fatal_errno("signalfd");
    signal(SIGPIPE, SIG_IGN);
    return fd;
}

/* Close the listeners, remove the unix sockets we created, free them. */
static void close_listeners(struct listeners *listeners)
{
    for (size_t i = 0; i < listeners->count; i++) {
        close(listeners->item[i].fd);
        if (listeners->item[i].bound_here)
            (void)unlink(listeners->item[i].unix_path);
        free(listeners->item[i].name);
        free(listeners->item[i].unix_path);
    }
    free(listeners->item);
    listeners->item = NULL;
    listeners->count = 0;
}

int serve(struct listeners *listeners, struct accept_settings *settings,
          long process_limit_option)
{
    struct loop_state st;
    memset(&st, 0, sizeof st);
    st.listeners = listeners;
    st.settings = settings;
    st.process_limit_option = process_limit_option;
    st.sigfd = open_signalfd();
    st.last_expire = monotonic_seconds();
    st.last_limit_warning = -LIMIT_WARN_INTERVAL;
    struct pollfd *fds = xcalloc(listeners->count + 2, sizeof *fds);
    for (;;) {
        time_t now_ms = monotonic_ms();
        int paused = now_ms < st.paused_until_ms;
        int at_limit = busy() >= settings->process_limit;
        if (at_limit && now_ms / 1000 - st.last_limit_warning >= LIMIT_WARN_INTERVAL) {
            st.last_limit_warning = now_ms / 1000;
            msg_warn("service \"%s\" has reached its process limit \"%zu\": "
                     "new clients may experience noticeable delays",
                     settings->service, settings->process_limit);
        }
        nfds_t n = 0;
        fds[n].fd = st.sigfd;
        fds[n++].events = POLLIN;
        fds[n].fd = zygote_descriptor();    /* -1: ignored by poll */
        fds[n++].events = POLLIN;
        if (!paused && !at_limit)
            for (size_t i = 0; i < listeners->count; i++) {
                fds[n].fd = listeners->item[i].fd;
                fds[n++].events = POLLIN;
            }
        int timeout = paused ? (int)(st.paused_until_ms - now_ms) : 60000;
        int ready = poll(fds, n, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal_errno("poll");
        }
        if (fds[1].revents)
            read_zygote(&st);
        if ((fds[0].revents & POLLIN) && handle_signals(&st))
            break;
        for (nfds_t i = 2; i < n; i++)
            if (fds[i].revents & POLLIN)
                accept_some(&st, &listeners->item[i - 2]);
        time_t now = monotonic_seconds();
        if (now - st.last_expire >= 60) {
            client_expire(now, settings->rate_unit);
            st.last_expire = now;
        }
    }
    close_listeners(listeners);
    free(fds);
    msg_info("stopping: %zu connection(s) still served by their processes", child_count());
    spawn_free();
    clients_free_all();
    child_env_free();
    close(st.sigfd);
    addrmatch_free(settings->exceptions);
    settings->exceptions = NULL;
    return 0;
}
