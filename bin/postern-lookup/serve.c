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
    int fd;                         /* -1: free */
    struct strbuf in, out;
    long long last_active;          /* ms */
    int closing;                    /* a bad request: close once answered */
    pid_t pid;                      /* SO_PEERCRED, for log lines */
    uid_t uid;
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

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    close(c->fd);
    c->fd = -1;
    strbuf_free(&c->in);
    strbuf_free(&c->out);
    client_count--;
    while (client_high && clients[client_high - 1].fd < 0)
        client_high--;
}

/* Accept the clients waiting, while there is room. */
static void accept_clients(int listen_fd)
{
    while (client_count < CLIENT_LIMIT) {
        struct ucred cred;
        struct strbuf err = STRBUF_INIT;
        int fd = unix_accept(listen_fd, SOCK_CLOEXEC | SOCK_NONBLOCK, &cred, &err);
        if (fd < 0) {
            if (err.len)
                msg_warn("lookup service: %s", err.s);
            strbuf_free(&err);
            return;
        }
        struct client *c = clients;
        while (c->fd >= 0)
            c++;
        *c = (struct client){.fd = fd, .in = STRBUF_INIT, .out = STRBUF_INIT,
                             .last_active = now_ms(), .pid = cred.pid, .uid = cred.uid};
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
    strbuf_append(&c->out, answer->s, answer->len);
    c->slow = NULL;
    c->resume = 1;
    c->last_active = now_ms();      /* idle time counts from the answer */
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
        strbuf_append(&c->out, first->answer.s, first->answer.len);
        strbuf_free(&first->answer);
        first->done = 0;
        c->dns_head = (c->dns_head + 1) % DNS_PIPELINE;
        c->dns_count--;
    }
    c->resume = 1;
    c->last_active = now_ms();
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
    if (c->in.len == 0)
        return;
    size_t start = 0;
    while (!c->closing && !c->slow && c->out.len < OUTPUT_MAX) {
        struct lookup_request req;
        struct strbuf err = STRBUF_INIT;
        size_t used = 0;
        int r = lookup_request_parse(c->in.s + start, c->in.len - start, &req, &used, &err);
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
            c->slow = tables_answer(&req, &c->out, answer_came, c);
        } else if (r < 0) {
            msg_warn("lookup service: bad request from pid %ld uid %ld: %s", (long)c->pid,
                     (long)c->uid, err.s);
            lookup_reply_format(&c->out, LOOKUP_BAD, err.s);
            c->closing = 1;
        }
        strbuf_free(&err);
        if (r != 1)
            break;
    }
    if (start) {
        memmove(c->in.s, c->in.s + start, c->in.len - start);
        strbuf_truncate(&c->in, c->in.len - start);
    }
}

/* The client can be read: take what came and answer it. */
static void read_client(struct client *c)
{
    char buf[READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        drop(c);
        return;
    }
    c->last_active = now_ms();
    if (n == 0) {
        c->eof = 1;                 /* half-closed: its answers still go out */
        return;
    }
    strbuf_append(&c->in, buf, (size_t)n);
    answer_requests(c);
}

/* A client that sent all it will send is closed once everything it
 * asked is answered and sent; 1 when it was. */
static int finish_if_done(struct client *c)
{
    if (!c->eof || waiting(c) || c->out.len)
        return 0;
    answer_requests(c);             /* requests that waited for room */
    if (waiting(c) || c->out.len)
        return 0;
    drop(c);                        /* what is left is no whole request */
    return 1;
}

/* The client can be written: send what is waiting. */
static void write_client(struct client *c)
{
    ssize_t n = send(c->fd, c->out.s, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        drop(c);
        return;
    }
    if (n > 0)
        c->last_active = now_ms();  /* it reads: not idle */
    memmove(c->out.s, c->out.s + n, c->out.len - (size_t)n);
    strbuf_truncate(&c->out, c->out.len - (size_t)n);
    if (c->out.len == 0 && c->closing) {
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
        clients[i].fd = -1;
    long long idle_ms = conf_time("max_idle") * 1000;
    struct pollfd *fds = xcalloc(CLIENT_LIMIT + FIXED_FDS, sizeof *fds);
    struct client **owner = xcalloc(CLIENT_LIMIT + FIXED_FDS, sizeof *owner);
    while (!stopping) {
        size_t n = 0;
        long long now = now_ms();
        fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        int listening = client_count < CLIENT_LIMIT;
        fds[n++] = (struct pollfd){.fd = listening ? listen_fd : -1, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = dns_fd(), .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = slow_fd(), .events = POLLIN};
        for (size_t i = 0; i < client_high; i++) {
            struct client *c = &clients[i];
            if (c->fd < 0)
                continue;
            /* idle: sends nothing and reads none of its answers */
            if (now - c->last_active > idle_ms && !waiting(c)) {
                if (c->out.len)
                    msg_info("lookup service: pid %ld uid %ld read none of its answers for "
                             "max_idle: closed", (long)c->pid, (long)c->uid);
                drop(c);
                continue;
            }
            short events = 0;
            /* a table's answer to come: read nothing more; DNS answers
             * to come: a request more, while there is room for it */
            if (!c->closing && !c->slow && !c->eof && c->out.len < OUTPUT_MAX
                && (!c->dns_count || (c->dns_count < DNS_PIPELINE && c->in.len < LOOKUP_REQUEST_MAX)))
                events |= POLLIN;
            if (c->out.len)
                events |= POLLOUT;
            owner[n] = c;
            fds[n++] = (struct pollfd){.fd = c->fd, .events = events};
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
            if (clients[i].fd >= 0 && clients[i].resume)
                answer_requests(&clients[i]);
        for (size_t i = FIXED_FDS; i < n; i++) {
            struct client *c = owner[i];
            if (c->fd < 0 || !fds[i].revents)
                continue;
            if (fds[i].revents & POLLOUT)
                write_client(c);
            if (c->fd < 0)
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
            if (clients[i].fd >= 0)
                finish_if_done(&clients[i]);
        if (listening && fds[1].revents && !stopping)
            accept_clients(listen_fd);
    }
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        if (clients[i].fd >= 0)
            drop(&clients[i]);
    free(fds);
    free(owner);
}
