/* serve.c - postern-accept's loop: accept, apply the per-client limits,
 * start the program (spawn.c) with the connection on fd 0 and 1 and the
 * UCSPI variables (env.c), reap children.  Signals arrive through a
 * signalfd, so the loop is one poll(2); nothing is read or looked up per
 * connection but the client's own entry.
 *
 * At the process limit (Postfix's master, and more): programs started from
 * then on until the limit has not been reached for 1000 seconds get
 * stress=yes (shorter timeouts, fewer errors); new connections are still
 * accepted and wait in a small waiting room for a slot, the client with the
 * fewest connections first; a client with fewer connections than the
 * greediest one takes a slot from it (its oldest session ends), so slow
 * clients cannot lock others out; a connection that finds the waiting room
 * full or waits too long is answered "421 4.3.2 All server ports are busy"
 * (postscreen's reply) at once instead of being left unanswered. */
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
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
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
#include "monotonic.h"

#define ACCEPT_BATCH        64      /* connections taken per listener per wakeup */
#define PAUSE_MS            100     /* after running out of fds or processes */
#define LIMIT_WARN_INTERVAL 60      /* seconds between "reached its process limit" */
#define STRESS_SECONDS      1000    /* stress lasts this long after the limit (Postfix) */
#define WAIT_MAX            1024    /* connections in the waiting room, at most */
#define WAIT_MS             2000    /* longest wait for a slot before the 421 */
#define ZYGOTE_STABLE_MS    10000   /* a zygote that lived this long is restarted at once */
#define ZYGOTE_BACKOFF_MAX  60000   /* else after 1, 2, 4, ... seconds, up to this */
#define SERVED_AGAIN_MAX    4       /* a connection whose child was killed, served again */

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

/* A connection accepted at the process limit, waiting for a slot. */
struct waiting {
    int fd;
    const struct listener *listener;
    struct sockaddr_storage peer;
    struct client *client;      /* NULL: not counted (AF_UNIX) */
    unsigned count;             /* TCPCONNNUM */
    time_t since_ms;
};

struct loop_state {
    time_t zygote_started_ms;   /* -z: when the current zygote started */
    time_t zygote_restart_ms;   /* -z, no zygote: when to start the next (0: none due) */
    long zygote_backoff_ms;
    struct waiting *waiting;    /* WAIT_MAX entries, the first waiting_count used */
    size_t waiting_count;
    time_t stress_until;        /* monotonic seconds */
    struct listeners *listeners;
    struct accept_settings *settings;
    long process_limit_option;
    int sigfd;
    time_t paused_until_ms;
    time_t last_limit_warning;
    time_t last_expire;
};

/* Programs running or about to (passed to the zygote, not yet answered). */
static size_t busy(void)
{
    return child_count() + zygote_pending();
}

/* The client's address as text ("unknown" for AF_UNIX). */
static void peer_text(const struct listener *l, const struct sockaddr *peer, char *ip,
                      size_t ip_size, char *port, size_t port_size)
{
    if (l->family == AF_UNIX) {
        snprintf(ip, ip_size, "unknown");
        snprintf(port, port_size, "unknown");
    } else {
        format_inet(peer, ip, ip_size, port, port_size);
    }
}

/* No slot for a connection: Postfix's postscreen reply and log line; the
 * connection is closed and given back. */
static void refuse_busy(const struct listener *l, int conn, const struct sockaddr *peer,
                        struct client *client)
{
    static const char reply[] = "421 4.3.2 All server ports are busy\r\n";
    char ip[INET6_ADDRSTRLEN], port[8];
    peer_text(l, peer, ip, sizeof ip, port, sizeof port);
    msg_info("NOQUEUE: reject: CONNECT from [%s]:%s: all server ports busy", ip, port);
    (void)send(conn, reply, sizeof reply - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(conn, SHUT_WR);
    close(conn);
    if (client)
        client_disconnect(client);
}

static void zygote_ended(struct loop_state *st, const char *how);

/* Start the program on a connection (its client already counted). */
static void start_session(struct loop_state *st, const struct listener *l, int conn,
                          const struct sockaddr *peer, unsigned count, struct client *client)
{
    /* Postfix's master: processes started while the service is, or was in
     * the last 1000 seconds, at its process limit get stress=yes */
    child_env_stress(monotonic_seconds() < st->stress_until);
    if (zygote_descriptor() >= 0) {
        /* a child forked ahead takes it: only that child wakes */
        if (zygote_hand_out(l, conn, peer, count, client) == 0) {
            close(conn);
            return;
        }
        if (zygote_pass(l, conn, peer, count, client) == 0) {
            close(conn);
            return;
        }
        /* its socket is gone: it died, and this connection is served
         * without it, as those it had not answered */
        zygote_ended(st, "cannot be reached");
    }
    pid_t pid = spawn_program(st->settings, l, conn, peer, count);
    close(conn);
    if (pid < 0) {
        if (client)
            client_disconnect(client);
        st->paused_until_ms = monotonic_ms() + PAUSE_MS;
        return;
    }
    child_add(pid, client);
}

/* A waiting connection leaves the room (started or refused). */
static void waiting_remove(struct loop_state *st, size_t i)
{
    st->waiting[i] = st->waiting[--st->waiting_count];
}

/* Free slots go to waiting connections, the client with the fewest
 * connections first (then the oldest); those that waited too long get 421. */
static void serve_waiting(struct loop_state *st)
{
    while (st->waiting_count && busy() < st->settings->process_limit) {
        size_t best = 0;
        for (size_t i = 1; i < st->waiting_count; i++) {
            unsigned a = client_connections(st->waiting[i].client);
            unsigned b = client_connections(st->waiting[best].client);
            if (a < b || (a == b && st->waiting[i].since_ms < st->waiting[best].since_ms))
                best = i;
        }
        struct waiting w = st->waiting[best];
        waiting_remove(st, best);
        start_session(st, w.listener, w.fd, (struct sockaddr *)&w.peer, w.count, w.client);
    }
    time_t now = monotonic_ms();
    for (size_t i = 0; i < st->waiting_count;) {
        struct waiting *w = &st->waiting[i];
        if (now - w->since_ms < WAIT_MS) {
            i++;
            continue;
        }
        refuse_busy(w->listener, w->fd, (struct sockaddr *)&w->peer, w->client);
        waiting_remove(st, i);
    }
}

/* A client with fewer connections than the greediest one takes a slot
 * from it: the greediest client's oldest session ends. */
static void make_room(struct loop_state *st, const struct listener *l,
                      const struct sockaddr *peer, struct client *client)
{
    struct client *victim;
    pid_t pid = child_evict(client_connections(client), &victim);
    if (!pid)
        return;
    char ip[INET6_ADDRSTRLEN], port[8], victim_ip[INET6_ADDRSTRLEN] = "unknown";
    peer_text(l, peer, ip, sizeof ip, port, sizeof port);
    const struct client_key *key = client_key_of(victim);
    inet_ntop(key->family, key->bytes, victim_ip, sizeof victim_ip);
    msg_warn("service \"%s\" at its process limit \"%zu\": ending the oldest session "
             "(pid %ld) of [%s], which has %u connections, for a new client [%s]",
             st->settings->service, st->settings->process_limit, (long)pid, victim_ip,
             client_connections(victim) + 1, ip);
    kill(pid, SIGTERM);
}

/* One accepted connection: limits, then the program, or the waiting room. */
static void handle_connection(struct loop_state *st, const struct listener *l, int conn,
                              const struct sockaddr *peer)
{
    struct accept_settings *s = st->settings;
    struct client *client = NULL;
    struct client_key key;
    unsigned count = 0;
    /* every TCP client is counted: the fair share at the process limit
     * needs it; the limits apply to clients not in the exceptions */
    if (l->family != AF_UNIX && client_key_from(&key, peer) == 0) {
        unsigned rate;
        client = client_get(&key);
        count = client_connect(client, monotonic_seconds(), s->rate_unit, &rate);
        if (s->count_limit || s->rate_limit) {
            char ip[INET6_ADDRSTRLEN], port[8];
            format_inet(peer, ip, sizeof ip, port, sizeof port);
            int exempt = addrmatch_match(s->exceptions, "unknown", ip);
            if (exempt < 0)
                msg_warn("smtpd_client_event_limit_exceptions: a table could not answer; "
                         "the client is limited");
            const char *what = NULL;
            unsigned value = 0;
            if (exempt == 1) {
                /* not limited */
            } else if (s->count_limit && count > s->count_limit) {
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
    if (busy() >= s->process_limit)
        st->stress_until = monotonic_seconds() + STRESS_SECONDS;
    if (busy() < s->process_limit && st->waiting_count == 0) {
        start_session(st, l, conn, peer, count, client);
        return;
    }
    size_t room = s->process_limit < WAIT_MAX ? s->process_limit : WAIT_MAX;
    if (st->waiting_count >= room) {
        /* a full room: the connection of the client with the most
         * connections gets the 421, this one if none has more */
        size_t most = 0;
        for (size_t i = 1; i < st->waiting_count; i++)
            if (client_connections(st->waiting[i].client)
                > client_connections(st->waiting[most].client))
                most = i;
        struct waiting *w = &st->waiting[most];
        if (!st->waiting_count
            || client_connections(w->client) <= client_connections(client)) {
            refuse_busy(l, conn, peer, client);
            return;
        }
        refuse_busy(w->listener, w->fd, (struct sockaddr *)&w->peer, w->client);
        waiting_remove(st, most);
    }
    struct waiting *w = &st->waiting[st->waiting_count++];
    w->fd = conn;
    w->listener = l;
    memset(&w->peer, 0, sizeof w->peer);
    memcpy(&w->peer, peer, l->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                           : l->family == AF_INET ? sizeof(struct sockaddr_in)
                           : sizeof(struct sockaddr_un));
    w->client = client;
    w->count = count;
    w->since_ms = monotonic_ms();
    if (client)
        make_room(st, l, peer, client);
}

/* Take what is waiting on one listener (at the process limit too: such
 * connections wait in the waiting room or are answered at once). */
static void accept_some(struct loop_state *st, const struct listener *l)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
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

/* 1 when something has already written to the connection: a child the
 * zygote forked just before it died (and could not report), or a child
 * forked ahead that answered before it ended. */
static int connection_answered(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0)
        return info.tcpi_bytes_sent > 0 || info.tcpi_bytes_acked > 1;
    int queued = 0;
    return ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0;
}

/* A program has ended: give its connection back, log an abnormal end. */
static void child_ended(struct loop_state *st, pid_t pid, int status)
{
    struct client *client;
    struct pending_connection handed;
    int was_handed = zygote_handed_end(pid, &handed);
    if (!child_remove(pid, &client)) {
        if (was_handed)
            close(handed.fd);
        return;
    }
    /* a child forked ahead killed before it answered (while it waited):
     * its connection is served again, still counted as its client's; a
     * few times at most (a program that crashes on every connection ends
     * there; a client gone before the greeting is not served again: its
     * program exits) */
    if (was_handed && WIFSIGNALED(status) && handed.served_again < SERVED_AGAIN_MAX
        && !connection_answered(handed.fd)) {
        msg_warn("process %s pid %ld ended before it answered its connection: serving it again",
                 st->settings->program, (long)pid);
        zygote_next_served_again(handed.served_again + 1);
        start_session(st, handed.listener, handed.fd, (struct sockaddr *)&handed.peer,
                      handed.count, handed.client);
        zygote_next_served_again(0);
        return;
    }
    if (was_handed)
        close(handed.fd);
    if (client)
        client_disconnect(client);
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
        msg_warn("process %s pid %ld killed by signal %d", st->settings->program,
                 (long)pid, WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        msg_warn("process %s pid %ld exit status %d", st->settings->program, (long)pid,
                 WEXITSTATUS(status));
}

/* The zygote has ended (or closed its socket): its sessions go on (they
 * are reparented to us, the subreaper, and reaped here), the connections it
 * did not answer are served again; a new zygote starts at once, or after a backoff
 * when the last one died young.  Meanwhile each connection gets a program
 * of its own (spawn_program), so the port never closes. */
static void zygote_ended(struct loop_state *st, const char *how)
{
    time_t now = monotonic_ms();
    msg_warn("zygote %s pid %ld %s; serving the %zu connection(s) it had not answered "
             "again", st->settings->program, (long)zygote_process(), how, zygote_pending());
    zygote_lost();
    struct pending_connection c;
    while (zygote_pending_take(&c)) {
        if (c.listener && !connection_answered(c.fd)) {
            start_session(st, c.listener, c.fd, (struct sockaddr *)&c.peer, c.count, c.client);
            continue;
        }
        close(c.fd);
        if (c.client)
            client_disconnect(c.client);
    }
    if (now - st->zygote_started_ms >= ZYGOTE_STABLE_MS)
        st->zygote_backoff_ms = 0;
    else
        st->zygote_backoff_ms = st->zygote_backoff_ms
            ? (st->zygote_backoff_ms * 2 > ZYGOTE_BACKOFF_MAX ? ZYGOTE_BACKOFF_MAX
                                                               : st->zygote_backoff_ms * 2)
            : 1000;
    st->zygote_restart_ms = now + st->zygote_backoff_ms;
    if (st->zygote_backoff_ms)
        msg_warn("zygote died within %d seconds of its start: the next starts in %ld "
                 "second(s); until then each connection runs %s on its own",
                 ZYGOTE_STABLE_MS / 1000, st->zygote_backoff_ms / 1000, st->settings->program);
}

static void read_zygote(struct loop_state *st);

/* Reap every child that has ended. */
static void reap_children(struct loop_state *st)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == zygote_process() && zygote_descriptor() >= 0) {
            char how[64];
            read_zygote(st);            /* what it reported before it went */
            if (zygote_descriptor() >= 0) {
                snprintf(how, sizeof how, "ended (status 0x%x)", status);
                zygote_ended(st, how);
            }
            continue;
        }
        child_ended(st, pid, status);
    }
}

/* Read what the zygote reports: children started, ended, or not started. */
static void read_zygote(struct loop_state *st)
{
    struct zygote_report r;
    int rc = -1, fd;
    if (zygote_descriptor() < 0)
        return;
    while (zygote_descriptor() >= 0 && (rc = zygote_read_report(zygote_descriptor(), &r, &fd)) == 1) {
        if (fd >= 0 && r.type != ZYGOTE_READY && r.type != ZYGOTE_KEEPER) {
            close(fd);
            fd = -1;
        }
        switch (r.type) {
        case ZYGOTE_STARTED:
            child_add(r.pid, zygote_pending_pop());
            break;
        case ZYGOTE_ENDED:
            /* a child that was waiting, or one that served a connection */
            if (!zygote_child_gone(r.pid))
                child_ended(st, r.pid, r.status);
            break;
        case ZYGOTE_READY:
            zygote_child_ready(r.pid, r.status, fd);
            break;
        case ZYGOTE_RETIRE:
            zygote_retire(r.status, r.pid == 1);
            break;
        case ZYGOTE_KEEPER:
            if (fd >= 0)
                zygote_keeper(fd);
            break;
        case ZYGOTE_FAILED: {
            struct client *client = zygote_pending_pop();
            if (client)
                client_disconnect(client);
            st->paused_until_ms = monotonic_ms() + PAUSE_MS;
            break;
        }
        default:
            msg_warn("zygote: unknown report type %d", (int)r.type);
            kill(zygote_process(), SIGKILL);
            zygote_ended(st, "sent an unknown report");
            return;
        }
    }
    if (zygote_descriptor() >= 0 && (rc == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)))
        zygote_ended(st, "closed its socket");
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
            /* the zygote reads its certificates again (postern-smtpd):
             * asked in the stream of connections, so that every later
             * one is served with what it reads */
            if (zygote_descriptor() >= 0 && zygote_reload() < 0)
                kill(zygote_process(), SIGHUP);
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
    if (settings->zygote) {
        /* the zygote's sessions become ours when it dies, so that they
         * are still reaped and counted */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
            msg_fatal_errno("prctl PR_SET_CHILD_SUBREAPER");
        /* the first zygote was started by main() before privileges went */
        if (zygote_descriptor() < 0)
            zygote_start(settings);
        st.zygote_started_ms = monotonic_ms();
    }
    st.waiting = xcalloc(WAIT_MAX, sizeof *st.waiting);
    struct pollfd *fds = xcalloc(listeners->count + 2, sizeof *fds);
    for (;;) {
        time_t now_ms = monotonic_ms();
        if (settings->zygote && zygote_descriptor() < 0 && now_ms >= st.zygote_restart_ms) {
            zygote_start(settings);
            st.zygote_started_ms = now_ms;
        }
        int paused = now_ms < st.paused_until_ms;
        int at_limit = busy() >= settings->process_limit;
        if (at_limit)
            st.stress_until = now_ms / 1000 + STRESS_SECONDS;
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
        nfds_t listeners_at = n;
        if (!paused)
            for (size_t i = 0; i < listeners->count; i++) {
                fds[n].fd = listeners->item[i].fd;
                fds[n++].events = POLLIN;
            }
        nfds_t listeners_end = n;
        int timeout = paused ? (int)(st.paused_until_ms - now_ms) : st.waiting_count ? 100 : 60000;
        if (settings->zygote && zygote_descriptor() < 0) {
            time_t until_restart = st.zygote_restart_ms - now_ms;
            if (until_restart < timeout)
                timeout = until_restart > 0 ? (int)until_restart : 0;
        }
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
        serve_waiting(&st);
        for (nfds_t i = listeners_at; i < listeners_end; i++)
            if (fds[i].revents & POLLIN)
                accept_some(&st, &listeners->item[i - listeners_at]);
        serve_waiting(&st);
        time_t now = monotonic_seconds();
        if (now - st.last_expire >= 60) {
            client_expire(now, settings->rate_unit);
            st.last_expire = now;
        }
    }
    close_listeners(listeners);
    for (size_t i = 0; i < st.waiting_count; i++)
        close(st.waiting[i].fd);
    free(st.waiting);
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
