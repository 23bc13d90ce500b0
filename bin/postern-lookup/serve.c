/* serve.c - the lookup service's clients: one poll loop.  Each client
 * sends requests and reads answers in order (doc/lookup.md); a request is
 * answered as soon as it is whole, except DNS requests (dnsreq.c) and
 * lookups in database tables (slow.c: a thread per table), whose answers
 * come later: the client's next requests wait for them while every other
 * client is served.  Bounds: a client's unanswered input is at most one
 * request (lookup_request_parse refuses longer fields), nothing more is
 * read from it while an answer is to come or its unread answers exceed
 * OUTPUT_MAX.  A client that half-closes still gets every answer; a client
 * that neither sends nor reads for max_idle (one that never reads its
 * answers included) is closed.  At most CLIENT_LIMIT clients are served at
 * once; more wait in the listen queue. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "monotonic.h"
#include "serviceconn.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#define CLIENT_LIMIT    1000
#define OUTPUT_MAX      (4 * LOOKUP_VALUE_MAX)
#define READ_CHUNK      16384
#define FIXED_FDS       4           /* signals, listener, DNS, database answers */

struct client {
    struct service_conn conn;       /* its socket, input, output, identity */
    struct dnsreq *dns;             /* a DNS answer to come: later requests wait */
    struct slowreq *slow;           /* a database table's answer to come */
    int waiting;                    /* 1 while dns or slow is out */
    int resume;                     /* its answer came: go on with the input */
    int eof;                        /* it has sent all it will send */
};

static struct client clients[CLIENT_LIMIT];
static size_t client_count;
static int stopping;

/* Close a client and free its slot. */
static void drop(struct client *c)
{
    if (c->waiting) {
        dnsreq_cancel(c->dns);
        slow_cancel(c->slow);
    }
    c->dns = NULL;
    c->slow = NULL;
    c->waiting = c->resume = c->eof = 0;
    service_conn_close(&c->conn);
    client_count--;
}

/* Accept the clients waiting, while there is room. */
static void accept_clients(int listen_fd)
{
    while (client_count < CLIENT_LIMIT) {
        struct client *c = clients;
        while (c->conn.fd >= 0)
            c++;
        if (!service_conn_accept(&c->conn, listen_fd, "lookup service"))
            return;
        client_count++;
    }
}

/* A DNS or database answer for the client: append it; its next requests
 * may go on. */
static void answer_came(void *arg, struct strbuf *answer)
{
    struct client *c = arg;
    strbuf_append(&c->conn.out, answer->s, answer->len);
    c->dns = NULL;
    c->slow = NULL;
    c->waiting = 0;
    c->resume = 1;
    c->conn.last_active = monotonic_ms();      /* idle time counts from the answer */
}

/* Answer every whole request in the client's input, in order; a DNS
 * request's answer comes later (dnsreq.c), and the requests after it wait
 * for it. */
static void answer_requests(struct client *c)
{
    c->resume = 0;
    if (c->conn.in.len == 0)
        return;
    size_t start = 0;
    while (!c->conn.closing && !c->waiting && c->conn.out.len < OUTPUT_MAX) {
        struct lookup_request req;
        struct strbuf err = STRBUF_INIT;
        size_t used = 0;
        int r = lookup_request_parse(c->conn.in.s + start, c->conn.in.len - start, &req, &used, &err);
        if (r == 1 && dnsreq_is_dns(req.table)) {
            start += used;
            c->waiting = 1;
            c->dns = dnsreq_start(&req, answer_came, c);
        } else if (r == 1) {
            start += used;
            c->waiting = 1;
            c->slow = tables_answer(&req, &c->conn.out, answer_came, c);
            if (!c->slow)
                c->waiting = 0;         /* answered already */
        } else if (r < 0) {
            msg_warn("lookup service: bad request from pid %ld uid %ld: %s", (long)c->conn.pid,
                     (long)c->conn.uid, err.s);
            lookup_reply_format(&c->conn.out, LOOKUP_BAD, err.s);
            c->conn.closing = 1;
        }
        strbuf_free(&err);
        if (r != 1)
            break;
    }
    if (start) {
        memmove(c->conn.in.s, c->conn.in.s + start, c->conn.in.len - start);
        strbuf_truncate(&c->conn.in, c->conn.in.len - start);
    }
}

/* The client can be read: take what came and answer it. */
static void read_client(struct client *c)
{
    ssize_t n = service_conn_recv(&c->conn, READ_CHUNK);
    if (n == -1)
        return;
    if (n < 0) {
        drop(c);
        return;
    }
    if (n == 0) {
        c->eof = 1;                 /* half-closed: its answers still go out */
        return;
    }
    answer_requests(c);
}

/* A client that sent all it will send is closed once everything it
 * asked is answered and sent; 1 when it was. */
static int finish_if_done(struct client *c)
{
    if (!c->eof || c->waiting || c->conn.out.len)
        return 0;
    answer_requests(c);             /* requests that waited for room */
    if (c->waiting || c->conn.out.len)
        return 0;
    drop(c);                        /* what is left is no whole request */
    return 1;
}

/* The client can be written: send what is waiting. */
static void write_client(struct client *c)
{
    if (service_conn_send(&c->conn) < 0) {
        drop(c);
        return;
    }
    if (c->conn.out.len == 0 && c->conn.closing) {
        drop(c);
        return;
    }
    answer_requests(c);         /* requests that waited for room */
}

/* Signals: SIGTERM and SIGINT stop, SIGHUP reads main.cf again. */
static void handle_signals(int signal_fd)
{
    struct signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            config_reload();
            tables_configure();     /* database threads finish their queues first */
            msg_info("lookup service: main.cf read again, tables closed");
        } else {
            stopping = 1;
        }
    }
}

void serve(int listen_fd, int signal_fd)
{
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        clients[i].conn.fd = -1;
    long long idle_ms = conf_time("max_idle") * 1000;
    struct pollfd *fds = xcalloc(CLIENT_LIMIT + FIXED_FDS, sizeof *fds);
    struct client **owner = xcalloc(CLIENT_LIMIT + FIXED_FDS, sizeof *owner);
    while (!stopping) {
        size_t n = 0;
        long long now = monotonic_ms();
        fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        int listening = client_count < CLIENT_LIMIT;
        fds[n++] = (struct pollfd){.fd = listening ? listen_fd : -1, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = dns_fd(), .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = slow_fd(), .events = POLLIN};
        for (size_t i = 0; i < CLIENT_LIMIT; i++) {
            struct client *c = &clients[i];
            if (c->conn.fd < 0)
                continue;
            /* idle: sends nothing and reads none of its answers */
            if (now - c->conn.last_active > idle_ms && !c->waiting) {
                if (c->conn.out.len)
                    msg_info("lookup service: pid %ld uid %ld read none of its answers for "
                             "max_idle: closed", (long)c->conn.pid, (long)c->conn.uid);
                drop(c);
                continue;
            }
            short events = 0;
            if (!c->conn.closing && !c->waiting && !c->eof && c->conn.out.len < OUTPUT_MAX)
                events |= POLLIN;       /* an answer to come: read nothing more */
            if (c->conn.out.len)
                events |= POLLOUT;
            owner[n] = c;
            fds[n++] = (struct pollfd){.fd = c->conn.fd, .events = events};
        }
        int timeout = client_count ? (int)(idle_ms < 60000 ? idle_ms : 60000) : -1;
        int dns_due = dns_next_deadline_ms();
        if (dns_due >= 0 && (timeout < 0 || dns_due < timeout))
            timeout = dns_due;
        if (poll(fds, n, timeout) < 0) {
            if (errno != EINTR)
                msg_fatal_errno("lookup service: poll");
            continue;
        }
        if (fds[0].revents)
            handle_signals(signal_fd);
        dns_process();              /* answers that came, lookups past their deadline */
        if (fds[3].revents)
            slow_process();         /* answers of database tables */
        for (size_t i = 0; i < CLIENT_LIMIT; i++)
            if (clients[i].conn.fd >= 0 && clients[i].resume)
                answer_requests(&clients[i]);
        for (size_t i = FIXED_FDS; i < n; i++) {
            struct client *c = owner[i];
            if (c->conn.fd < 0 || !fds[i].revents)
                continue;
            if (fds[i].revents & POLLOUT)
                write_client(c);
            if (c->conn.fd < 0)
                continue;
            if (fds[i].events & POLLIN) {
                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                    read_client(c);
            } else if (fds[i].revents & (POLLHUP | POLLERR)) {
                /* gone while its requests wait: nobody reads the answers
                 * (a half-close is POLLIN, never POLLHUP) */
                drop(c);
            }
        }
        for (size_t i = 0; i < CLIENT_LIMIT; i++)
            if (clients[i].conn.fd >= 0)
                finish_if_done(&clients[i]);
        if (listening && fds[1].revents && !stopping)
            accept_clients(listen_fd);
    }
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        if (clients[i].conn.fd >= 0)
            drop(&clients[i]);
    free(fds);
    free(owner);
}
