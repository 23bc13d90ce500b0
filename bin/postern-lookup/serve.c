/* serve.c - the lookup service's clients: one poll loop.  Each client
 * sends requests and reads answers in order (doc/lookup.md); a request is
 * answered as soon as it is whole, except DNS requests (dnsreq.c) and
 * lookups in database tables (slow.c: a thread per table), whose answers
 * come later: the client's next requests wait for them while every other
 * client is served.  Consecutive DNS requests (smtpd sends a restriction
 * list's lookups together) are resolved concurrently, up to DNS_PIPELINE
 * of them, and answered in the order asked.  Bounds: a client's unanswered
 * input is at most one request and one read (lookup_request_parse refuses
 * longer fields), nothing more is read from it while a table's answer is
 * to come, DNS_PIPELINE DNS answers are, or its unread answers exceed
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
#define DNS_PIPELINE    16          /* DNS requests of a client resolved at once */

struct client;

/* A DNS request out, its answer kept until those before it are sent. */
struct dns_slot {
    struct client *c;
    struct dnsreq *req;             /* NULL once answered */
    struct strbuf answer;
    int done;
};

struct client {
    struct service_conn conn;       /* its socket, input, output, identity */
    struct dns_slot dns[DNS_PIPELINE];  /* DNS answers to come, a ring in order */
    unsigned dns_head, dns_count;
    struct slowreq *slow;           /* a database table's answer to come: later
                                       requests wait */
    int resume;                     /* an answer came: go on with the input */
    int eof;                        /* it has sent all it will send */
};

static struct client clients[CLIENT_LIMIT];
static size_t client_count;
static size_t client_high;          /* slots from here on are free: the loops stop there */
static int stopping;

/* An answer is to come: a DNS or database table's. */
static int waiting(const struct client *c)
{
    return c->slow || c->dns_count;
}

/* Close a client and free its slot. */
static void drop(struct client *c)
{
    for (unsigned i = 0; i < c->dns_count; i++) {
        struct dns_slot *slot = &c->dns[(c->dns_head + i) % DNS_PIPELINE];
        dnsreq_cancel(slot->req);
        slot->req = NULL;
        strbuf_free(&slot->answer);
    }
    c->dns_head = c->dns_count = 0;
    slow_cancel(c->slow);
    c->slow = NULL;
    c->resume = c->eof = 0;
    service_conn_close(&c->conn);
    client_count--;
    while (client_high && clients[client_high - 1].conn.fd < 0)
        client_high--;
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
        if ((size_t)(c - clients) >= client_high)
            client_high = (size_t)(c - clients) + 1;
    }
}

/* A database answer for the client: append it; its next requests may go
 * on. */
static void answer_came(void *arg, struct strbuf *answer)
{
    struct client *c = arg;
    strbuf_append(&c->conn.out, answer->s, answer->len);
    c->slow = NULL;
    c->resume = 1;
    c->conn.last_active = monotonic_ms();      /* idle time counts from the answer */
}

/* A DNS answer: kept in its slot, and the answers now first in line go
 * out in the order they were asked. */
static void dns_answer_came(void *arg, struct strbuf *answer)
{
    struct dns_slot *slot = arg;
    struct client *c = slot->c;
    strbuf_set(&slot->answer, "");
    strbuf_append(&slot->answer, answer->s, answer->len);
    slot->req = NULL;
    slot->done = 1;
    while (c->dns_count && c->dns[c->dns_head].done) {
        struct dns_slot *first = &c->dns[c->dns_head];
        strbuf_append(&c->conn.out, first->answer.s, first->answer.len);
        strbuf_free(&first->answer);
        first->done = 0;
        c->dns_head = (c->dns_head + 1) % DNS_PIPELINE;
        c->dns_count--;
    }
    c->resume = 1;
    c->conn.last_active = monotonic_ms();
}

/* Start a DNS request in the next slot. */
static void start_dns(struct client *c, const struct lookup_request *req)
{
    struct dns_slot *slot = &c->dns[(c->dns_head + c->dns_count) % DNS_PIPELINE];
    *slot = (struct dns_slot){.c = c, .answer = STRBUF_INIT};
    c->dns_count++;
    /* the answer may come at once (dns_answer_came, the slot gone) */
    struct dnsreq *r = dnsreq_start(req, dns_answer_came, slot);
    if (r)
        slot->req = r;
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
    while (!c->conn.closing && !c->slow && c->conn.out.len < OUTPUT_MAX) {
        struct lookup_request req;
        struct strbuf err = STRBUF_INIT;
        size_t used = 0;
        int r = lookup_request_parse(c->conn.in.s + start, c->conn.in.len - start, &req, &used, &err);
        int dns = r == 1 && dnsreq_is_dns(req.table);
        if (r != 0 && c->dns_count && (!dns || c->dns_count == DNS_PIPELINE)) {
            /* after the DNS answers to come, in order */
            strbuf_free(&err);
            break;
        }
        if (dns) {
            start += used;
            start_dns(c, &req);
        } else if (r == 1) {
            start += used;
            /* nothing else to send before its answer: the table's thread
             * sends it, one wake-up sooner than through this loop */
            int direct_fd = c->conn.out.len ? -1 : c->conn.fd;
            c->slow = tables_answer(&req, &c->conn.out, answer_came, c, direct_fd);
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
    if (!c->eof || waiting(c) || c->conn.out.len)
        return 0;
    answer_requests(c);             /* requests that waited for room */
    if (waiting(c) || c->conn.out.len)
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
        for (size_t i = 0; i < client_high; i++) {
            struct client *c = &clients[i];
            if (c->conn.fd < 0)
                continue;
            /* idle: sends nothing and reads none of its answers */
            if (now - c->conn.last_active > idle_ms && !waiting(c)) {
                if (c->conn.out.len)
                    msg_info("lookup service: pid %ld uid %ld read none of its answers for "
                             "max_idle: closed", (long)c->conn.pid, (long)c->conn.uid);
                drop(c);
                continue;
            }
            short events = 0;
            /* a table's answer to come: read nothing more; DNS answers
             * to come: a request more, while there is room for it */
            if (!c->conn.closing && !c->slow && !c->eof && c->conn.out.len < OUTPUT_MAX
                && (!c->dns_count || (c->dns_count < DNS_PIPELINE && c->conn.in.len < LOOKUP_REQUEST_MAX)))
                events |= POLLIN;
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
        for (size_t i = 0; i < client_high; i++)
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
        for (size_t i = 0; i < client_high; i++)
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
