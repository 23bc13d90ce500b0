/* serve.c - postern-accept's loop: accept, apply the per-client limits,
 * start the program with the connection on fd 0 and 1 and the UCSPI
 * variables, reap children.  Signals arrive through a signalfd, so the loop
 * is one poll(2); children start with posix_spawn (vfork-like, no page
 * copying) and nothing is read or looked up per connection but the client's
 * own entry. */
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
#include "addrlist.h"
#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"
#include "zygote.h"

extern char **environ;

#define ACCEPT_BATCH        64      /* connections taken per listener per wakeup */
#define PAUSE_MS            100     /* after running out of fds or processes */
#define LIMIT_WARN_INTERVAL 60      /* seconds between "reached its process limit" */
#define EXTRA_ENV           8       /* per-connection variables */

/* Variables a connection's program must not inherit from our own
 * environment: they describe another connection, or our socket activation. */
static const char *const stale_variables[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
    "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "UNIXLOCALPATH",
    "UNIXLOCALUID", "UNIXLOCALGID", "UNIXLOCALPID", "UNIXREMOTEEUID",
    "UNIXREMOTEEGID", "UNIXREMOTEPID", "REMOTE_ADDR", "REMOTE_PORT",
    "TCPCONNNUM", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
};

static char **child_env;        /* inherited variables + EXTRA_ENV slots + NULL */
static size_t child_env_base;

/* Our environment without the stale variables, with room at the end. */
static void build_child_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    child_env = xcalloc(n + EXTRA_ENV + 1, sizeof *child_env);
    for (size_t i = 0; i < n; i++) {
        int stale = 0;
        for (size_t j = 0; j < sizeof stale_variables / sizeof stale_variables[0]; j++) {
            size_t len = strlen(stale_variables[j]);
            if (strncmp(environ[i], stale_variables[j], len) == 0 && environ[i][len] == '=')
                stale = 1;
        }
        if (!stale)
            child_env[child_env_base++] = environ[i];
    }
}

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
    struct strbuf err = STRBUF_INIT, warnings = STRBUF_INIT;
    struct addrlist *list = addrlist_parse(conf_str("smtpd_client_event_limit_exceptions"),
                                           "smtpd_client_event_limit_exceptions",
                                           &err, &warnings);
    if (!list)
        msg_fatal("%s", strbuf_str(&err));
    if (warnings.len) {
        strbuf_trim_end(&warnings);
        msg_warn("%s", warnings.s);
    }
    addrlist_free(settings->exceptions);
    settings->exceptions = list;
    strbuf_free(&err);
    strbuf_free(&warnings);
}

/* Seconds on a clock that does not jump. */
static time_t monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Append "NAME=value" to a fixed buffer; returns the string's start. */
static char *put_var(char **cursor, char *limit, const char *name, const char *value)
{
    char *start = *cursor;
    int n = snprintf(start, (size_t)(limit - start), "%s=%s", name, value);
    if (n < 0 || n >= limit - start)
        msg_fatal("environment buffer too small");
    *cursor = start + n + 1;
    return start;
}

/* Address and port of an inet socket address as text. */
static void inet_text(const struct sockaddr *sa, char *ip, size_t ip_size, char *port,
                      size_t port_size)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, ip, (socklen_t)ip_size);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)ip_size);
        snprintf(port, port_size, "%u", ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)ip_size);
        snprintf(port, port_size, "%u", ntohs(in->sin_port));
    }
}

/* Fill the per-connection variables into child_env's tail. */
static size_t connection_env(const struct listener *l, int conn, const struct sockaddr *peer,
                             unsigned connections, char *buf, size_t buf_size)
{
    char *cursor = buf, *limit = buf + buf_size;
    size_t k = child_env_base;
    if (l->family == AF_UNIX) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        char num[32];
        child_env[k++] = put_var(&cursor, limit, "PROTO", "UNIX");
        child_env[k++] = put_var(&cursor, limit, "UNIXLOCALPATH", l->unix_path ? l->unix_path : "");
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            snprintf(num, sizeof num, "%ld", (long)cred.uid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEEUID", num);
            snprintf(num, sizeof num, "%ld", (long)cred.gid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEEGID", num);
            snprintf(num, sizeof num, "%ld", (long)cred.pid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEPID", num);
        }
    } else {
        char ip[INET6_ADDRSTRLEN], port[8];
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        child_env[k++] = put_var(&cursor, limit, "PROTO", "TCP");
        inet_text(peer, ip, sizeof ip, port, sizeof port);
        child_env[k++] = put_var(&cursor, limit, "TCPREMOTEIP", ip);
        child_env[k++] = put_var(&cursor, limit, "TCPREMOTEPORT", port);
        if (getsockname(conn, (struct sockaddr *)&local, &len) == 0) {
            inet_text((struct sockaddr *)&local, ip, sizeof ip, port, sizeof port);
            child_env[k++] = put_var(&cursor, limit, "TCPLOCALIP", ip);
            child_env[k++] = put_var(&cursor, limit, "TCPLOCALPORT", port);
        }
        if (connections) {
            char num[16];
            snprintf(num, sizeof num, "%u", connections);
            child_env[k++] = put_var(&cursor, limit, "TCPCONNNUM", num);
        }
    }
    child_env[k] = NULL;
    return (size_t)(cursor - buf);
}

void export_connection_env(int fd)
{
    struct sockaddr_storage peer, local;
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    char ip[INET6_ADDRSTRLEN], port[8];
    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0
        || (peer.ss_family != AF_INET && peer.ss_family != AF_INET6))
        return;
    for (size_t j = 0; j < sizeof stale_variables / sizeof stale_variables[0]; j++)
        if (strncmp(stale_variables[j], "LISTEN_", 7) != 0)
            unsetenv(stale_variables[j]);
    setenv("PROTO", "TCP", 1);
    inet_text((struct sockaddr *)&peer, ip, sizeof ip, port, sizeof port);
    setenv("TCPREMOTEIP", ip, 1);
    setenv("TCPREMOTEPORT", port, 1);
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0) {
        inet_text((struct sockaddr *)&local, ip, sizeof ip, port, sizeof port);
        setenv("TCPLOCALIP", ip, 1);
        setenv("TCPLOCALPORT", port, 1);
    }
}

static posix_spawnattr_t spawn_attr;

/* Children start with no blocked signals and default dispositions. */
static void init_spawn_attr(void)
{
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGQUIT);
    if (posix_spawnattr_init(&spawn_attr) != 0
        || posix_spawnattr_setsigmask(&spawn_attr, &empty) != 0
        || posix_spawnattr_setsigdefault(&spawn_attr, &defaults) != 0
        || posix_spawnattr_setflags(&spawn_attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0)
        msg_fatal("posix_spawnattr: cannot set up");
}

/* Start the program on a connection; returns its pid, or -1 (logged). */
static pid_t start_child(const struct accept_settings *settings, const struct listener *l,
                         int conn, const struct sockaddr *peer, unsigned connections)
{
    char env_buf[1024];
    posix_spawn_file_actions_t actions;
    pid_t pid;
    connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    if (posix_spawn_file_actions_init(&actions) != 0)
        die_nomem();
    int rc = posix_spawn_file_actions_adddup2(&actions, conn, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&actions, conn, 1);
    if (rc == 0)
        rc = posix_spawn(&pid, settings->program, &actions, &spawn_attr, settings->argv, child_env);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        msg_warn_errno("cannot start %s", settings->program);
        return -1;
    }
    return pid;
}

/* ---- zygote mode (-z, lib/zygote.h) ---- */

static int zygote_fd = -1;
static pid_t zygote_pid;
/* clients of the connections sent to the zygote and not yet answered, in
 * the order sent (the zygote answers in that order) */
static struct client **pending;
static size_t pending_head, pending_count, pending_size;

/* Remember the client of a connection passed to the zygote. */
static void pending_push(struct client *client)
{
    if (pending_count == pending_size) {
        size_t new_size = pending_size ? 2 * pending_size : 64;
        struct client **grown = xcalloc(new_size, sizeof *grown);
        for (size_t i = 0; i < pending_count; i++)
            grown[i] = pending[(pending_head + i) % pending_size];
        free(pending);
        pending = grown;
        pending_size = new_size;
        pending_head = 0;
    }
    pending[(pending_head + pending_count) % pending_size] = client;
    pending_count++;
}

/* The client of the oldest connection passed to the zygote. */
static struct client *pending_pop(void)
{
    if (pending_count == 0)
        msg_fatal("zygote answered for a connection that was not sent");
    struct client *client = pending[pending_head];
    pending_head = (pending_head + 1) % pending_size;
    pending_count--;
    return client;
}

/* Start the program once, as the zygote, with its end of the socketpair. */
static void start_zygote(const struct accept_settings *settings)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        msg_fatal_errno("socketpair");
    size_t k = child_env_base;
    child_env[k++] = (char *)ZYGOTE_FD_VARIABLE "=3";
    child_env[k] = NULL;
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0
        || posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0) != 0
        || posix_spawn_file_actions_adddup2(&actions, 0, 1) != 0
        || posix_spawn_file_actions_adddup2(&actions, pair[1], 3) != 0)
        die_nomem();
    int rc = posix_spawn(&zygote_pid, settings->program, &actions, &spawn_attr,
                         settings->argv, child_env);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        msg_fatal_errno("cannot start %s", settings->program);
    }
    close(pair[1]);
    zygote_fd = pair[0];
    int flags = fcntl(zygote_fd, F_GETFL);
    if (flags < 0 || fcntl(zygote_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        msg_fatal_errno("fcntl");
    msg_info("zygote %s started as pid %ld", settings->program, (long)zygote_pid);
}

/* Pass a connection to the zygote; 0, or -1 (logged). */
static int send_to_zygote(const struct listener *l, int conn, const struct sockaddr *peer,
                          unsigned connections, struct client *client)
{
    char env_buf[1024];
    size_t len = connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    /* a full socket buffer: wait for the zygote rather than drop the client */
    while (zygote_send_connection(zygote_fd, conn, env_buf, len) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd out = {zygote_fd, POLLOUT, 0};
            (void)poll(&out, 1, 1000);
            continue;
        }
        msg_warn_errno("cannot pass the connection to the zygote");
        return -1;
    }
    pending_push(client);
    return 0;
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
    return child_count() + pending_count;
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
        int exempt = addrlist_match(s->exceptions, peer);
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
                char ip[INET6_ADDRSTRLEN], port[8];
                client_disconnect(client);
                inet_text(peer, ip, sizeof ip, port, sizeof port);
                refuse(s, conn, ip, what, value);
                close(conn);
                return;
            }
        }
    }
    if (zygote_fd >= 0) {
        int rc = send_to_zygote(l, conn, peer, count, client);
        close(conn);
        if (rc < 0 && client)
            client_disconnect(client);
        return;
    }
    pid_t pid = start_child(s, l, conn, peer, count);
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
        if (pid == zygote_pid && zygote_fd >= 0)
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
    while ((rc = zygote_read_report(zygote_fd, &r)) == 1) {
        switch (r.type) {
        case ZYGOTE_STARTED:
            child_add(r.pid, pending_pop());
            break;
        case ZYGOTE_ENDED:
            child_ended(st, r.pid, r.status);
            break;
        case ZYGOTE_FAILED: {
            struct client *client = pending_pop();
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
            if (zygote_fd >= 0)
                kill(zygote_pid, SIGTERM);
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
    build_child_env();
    init_spawn_attr();
    if (settings->zygote)
        start_zygote(settings);
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
        fds[n].fd = zygote_fd;          /* -1: ignored by poll */
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
    if (zygote_fd >= 0)
        close(zygote_fd);       /* the zygote exits; its sessions go on */
    free(pending);
    clients_free_all();
    free(child_env);
    child_env = NULL;
    posix_spawnattr_destroy(&spawn_attr);
    close(st.sigfd);
    addrlist_free(settings->exceptions);
    settings->exceptions = NULL;
    return 0;
}
