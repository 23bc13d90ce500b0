/* main.c - postern-verify: the address verification service, Postfix's
 * verify(8).  A long-running, dynamically linked program behind the unix
 * socket queue_directory/public/verify that keeps what is known about
 * addresses (address_verify_map, cache.c), answers smtpd's questions for
 * reject_unverified_recipient and reject_unverified_sender, sends probe
 * messages through the queue when an address is unknown or its
 * information is old (probe.c), and takes the probes' outcomes from qmgr.
 *
 *   postern-verify [-m MODE] [-c DIR] [-o name=value]... [-v]
 *
 * Under systemd the socket comes from postern-verify.socket (LISTEN_FDS);
 * otherwise (`postern start`) it binds the socket itself with MODE
 * (default 0600) and locks and writes queue_directory/pid/verify.pid.
 * The protocol is in verify_proto.h and postern-verify(8).
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "monotonic.h"
#include "serviceconn.h"
#include "strbuf.h"
#include "unixservice.h"
#include "verify.h"
#include "verify_proto.h"
#include "xalloc.h"

#define LISTEN_BACKLOG  256
#define CLIENT_LIMIT    256
#define CLIENT_IDLE_MS  60000

/* the clients: smtpd asking, qmgr reporting (serviceconn.h) */
static struct service_conn clients[CLIENT_LIMIT];
static size_t client_count;
static struct verify_settings settings;
static int stopping;

/* Wrong arguments: say how to call us. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-verify [-m MODE] [-c config_dir] [-o name=value]... [-v]\n");
    exit(64);
}

/* The parameters, from main.cf (again after SIGHUP). */
static void settings_read(void)
{
    settings.positive_expire = conf_time("address_verify_positive_expire_time");
    settings.positive_refresh = conf_time("address_verify_positive_refresh_time");
    settings.negative_expire = conf_time("address_verify_negative_expire_time");
    settings.negative_refresh = conf_time("address_verify_negative_refresh_time");
    settings.negative_cache = conf_bool("address_verify_negative_cache");
    settings.cleanup_interval = conf_time("address_verify_cache_cleanup_interval");
    settings.sender_ttl = conf_time("address_verify_sender_ttl");
    settings.sender = conf_str("address_verify_sender");
    settings.myorigin = conf_str("myorigin");
}

/* Append an answer record. */
static void answer(struct service_conn *c, int status, const char *text)
{
    strbuf_putc(&c->out, status);
    strbuf_puts(&c->out, text);
    strbuf_putc(&c->out, 0);
}

/* Postfix's verify_query_service: what is known, and a probe when it is
 * missing or old. */
static void query(struct service_conn *c, const char *address)
{
    long long now = (long long)time(NULL);
    const char *raw = cache_get(address);
    struct verify_entry entry = {0, 0, 0, NULL};
    char *copy = raw ? xstrdup(raw) : NULL;
    int usable = copy && verify_entry_parse(copy, &entry) == 0;
    if (copy && !usable)
        msg_warn("verify service: bad cache entry for %s: %.100s", address, copy);
    if (!usable
        || (now - entry.probed > VERIFY_PROBE_TTL
            && ((entry.status == VERIFY_OK && entry.updated + settings.positive_expire < now)
                || (entry.status != VERIFY_OK
                    && entry.updated + settings.negative_expire < now)))) {
        entry = (struct verify_entry){VERIFY_TODO, 0, 0, "Address verification in progress"};
        if (raw && !settings.negative_cache)
            cache_delete(address);
    }
    msg_debug("verify service: GOT %s status=%c probed=%lld updated=%lld text=%s", address,
              entry.status, entry.probed, entry.updated, entry.text);
    answer(c, entry.status, entry.text);
    /* the answer goes out before the probe is built */
    if (c->out.len)
        service_conn_send(c);       /* an error: the poll loop closes it */
    if (now - entry.probed > VERIFY_PROBE_TTL
        && ((entry.status == VERIFY_OK && entry.updated + settings.positive_refresh < now)
            || (entry.status != VERIFY_OK && entry.updated + settings.negative_refresh < now))) {
        msg_debug("verify service: PROBE %s status=%c updated=%lld", address, entry.status,
                  entry.updated);
        if (probe_send(address, &settings, now) == 0
            && (entry.updated != 0 || settings.negative_cache)) {
            entry.probed = now;
            cache_put(address, &entry);
        }
    }
    free(copy);
}

/* Postfix's verify_update_service: a failed probe never replaces a
 * deliverable entry before it expires. */
static void update(struct service_conn *c, const struct verify_request *req)
{
    const char *raw = cache_get(req->address);
    struct verify_entry old = {0, 0, 0, NULL};
    char *copy = raw ? xstrdup(raw) : NULL;
    if (req->status == VERIFY_OK || !copy || verify_entry_parse(copy, &old) < 0
        || old.status != VERIFY_OK) {
        struct verify_entry entry = {req->status, 0, (long long)time(NULL), req->text};
        cache_put(req->address, &entry);
    }
    msg_debug("verify service: PUT %s status=%c text=%s", req->address, req->status, req->text);
    free(copy);
    answer(c, VERIFY_OK, "");
}

/* Answer every whole request in the client's input. */
static void answer_requests(struct service_conn *c)
{
    size_t start = 0;
    while (!c->closing && start < c->in.len) {
        struct verify_request req;
        struct strbuf err = STRBUF_INIT;
        long n = verify_request_parse(c->in.s + start, c->in.len - start, &req, &err);
        if (n == 0) {
            strbuf_free(&err);
            break;
        }
        if (n < 0) {
            msg_warn("verify service: bad request from uid %ld: %s", (long)c->uid, err.s);
            answer(c, VERIFY_BAD, err.s);
            c->closing = 1;
        } else if (req.type == VERIFY_QUERY) {
            query(c, req.address);
        } else if (c->uid != 0 && c->uid != geteuid()) {
            /* only qmgr (our user) and root may write the cache */
            msg_warn("verify service: update from uid %ld refused", (long)c->uid);
            answer(c, VERIFY_BAD, "update not permitted");
            c->closing = 1;
        } else {
            update(c, &req);
        }
        strbuf_free(&err);
        if (n > 0)
            start += (size_t)n;
    }
    if (start) {
        memmove(c->in.s, c->in.s + start, c->in.len - start);
        strbuf_truncate(&c->in, c->in.len - start);
    }
}

static void drop(struct service_conn *c)
{
    service_conn_close(c);
    client_count--;
}

static void accept_clients(int listen_fd)
{
    while (client_count < CLIENT_LIMIT) {
        struct service_conn *c = clients;
        while (c->fd >= 0)
            c++;
        if (!service_conn_accept(c, listen_fd, "verify service"))
            return;
        client_count++;
    }
}

/* The client can be read: take what came and answer it. */
static void read_client(struct service_conn *c)
{
    ssize_t n = service_conn_recv(c, 4096);
    if (n == -1)
        return;
    if (n <= 0) {
        drop(c);
        return;
    }
    if (c->in.len > 2 * VERIFY_REQUEST_MAX) {
        answer(c, VERIFY_BAD, "request too long");
        c->closing = 1;
        return;
    }
    answer_requests(c);
}

static void write_client(struct service_conn *c)
{
    if (service_conn_send(c) < 0 || (c->out.len == 0 && c->closing))
        drop(c);
}

/* Signals: SIGTERM and SIGINT stop, SIGHUP reads main.cf again. */
static void handle_signals(int signal_fd)
{
    struct signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            config_reload();
            settings_read();
            probe_rewrite_load();
            msg_info("verify service: main.cf read again");
        } else {
            stopping = 1;
        }
    }
}

static void serve(int listen_fd, int signal_fd)
{
    struct pollfd fds[CLIENT_LIMIT + 2];
    struct service_conn *owner[CLIENT_LIMIT + 2];
    long long next_cleanup = monotonic_ms() + settings.cleanup_interval * 1000;
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        clients[i].fd = -1;
    while (!stopping) {
        size_t n = 0;
        long long now = monotonic_ms();
        if (settings.cleanup_interval > 0 && now >= next_cleanup) {
            cache_cleanup((long long)time(NULL), &settings);
            next_cleanup = now + settings.cleanup_interval * 1000;
        }
        fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = client_count < CLIENT_LIMIT ? listen_fd : -1,
                                   .events = POLLIN};
        for (size_t i = 0; i < CLIENT_LIMIT; i++) {
            struct service_conn *c = &clients[i];
            if (c->fd < 0)
                continue;
            if (now - c->last_active > CLIENT_IDLE_MS) {
                drop(c);
                continue;
            }
            owner[n] = c;
            fds[n++] = (struct pollfd){.fd = c->fd,
                                       .events = (short)((c->closing ? 0 : POLLIN)
                                                         | (c->out.len ? POLLOUT : 0))};
        }
        long long wait = CLIENT_IDLE_MS;
        if (settings.cleanup_interval > 0 && next_cleanup - now < wait)
            wait = next_cleanup - now > 0 ? next_cleanup - now : 0;
        if (poll(fds, n, (int)wait) < 0) {
            if (errno != EINTR)
                msg_fatal_errno("verify service: poll");
            continue;
        }
        if (fds[0].revents)
            handle_signals(signal_fd);
        for (size_t i = 2; i < n; i++) {
            struct service_conn *c = owner[i];
            if (c->fd < 0 || !fds[i].revents)
                continue;
            if (fds[i].revents & POLLOUT)
                write_client(c);
            if (c->fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_client(c);
        }
        if (fds[1].revents && !stopping)
            accept_clients(listen_fd);
    }
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        if (clients[i].fd >= 0)
            drop(&clients[i]);
}

int main(int argc, char **argv)
{
    mode_t socket_mode = 0600;
    log_open("verify", 0);
    if (config_service_options(argc, argv, &socket_mode) < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    config_load(0);
    /* this program is dynamically linked: unix: tables are opened here */
    map_register_dynamic_types();
    settings_read();
    probe_rewrite_load();
    struct strbuf err = STRBUF_INIT;
    if (cache_open(conf_str("address_verify_map"), &settings, &err) < 0)
        msg_fatal("verify service: %s", err.s);
    struct unix_service svc;
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
    int signal_fd = unix_service_start(&svc, "verify service", conf_str("queue_directory"), "verify",
                                       VERIFY_SOCKET, socket_mode, (gid_t)-1, LISTEN_BACKLOG,
                                       signals, sizeof signals / sizeof signals[0]);
    msg_info("verify service: ready on %s, %zu cached addresses",
             svc.socket_path ? svc.socket_path : "the socket systemd passed", cache_count());
    serve(svc.listen_fd, signal_fd);
    unix_service_close(&svc, &err);
    if (err.len)
        msg_warn("%s", err.s);
    cache_close();
    msg_info("verify service: stopped");
    strbuf_free(&err);
    return 0;
}
