/* serve.c - the lookup service's clients: one poll loop, no threads.
 * Each client sends requests and reads answers in order (doc/lookup.md);
 * a request is answered as soon as it is whole.  Bounds: a client's
 * unanswered input is at most one request (lookup_request_parse refuses
 * longer fields), and while its unread answers exceed OUTPUT_MAX its
 * requests wait.  A client idle for max_idle is closed (it connects
 * again).  At most CLIENT_LIMIT clients are served at once; more wait in
 * the listen queue. */
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
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#define CLIENT_LIMIT    1000
#define OUTPUT_MAX      (4 * LOOKUP_VALUE_MAX)
#define READ_CHUNK      16384

struct client {
    int fd;                         /* -1: free */
    struct strbuf in, out;
    long long last_active;          /* ms */
    int closing;                    /* a bad request: close once answered */
    pid_t pid;                      /* SO_PEERCRED, for log lines */
    uid_t uid;
};

static struct client clients[CLIENT_LIMIT];
static size_t client_count;
static int stopping;

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Close a client and free its slot. */
static void drop(struct client *c)
{
    close(c->fd);
    c->fd = -1;
    strbuf_free(&c->in);
    strbuf_free(&c->out);
    client_count--;
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
    }
}

/* Answer every whole request in the client's input. */
static void answer_requests(struct client *c)
{
    if (c->in.len == 0)
        return;
    size_t start = 0;
    while (!c->closing && c->out.len < OUTPUT_MAX) {
        struct lookup_request req;
        struct strbuf err = STRBUF_INIT;
        size_t used = 0;
        int r = lookup_request_parse(c->in.s + start, c->in.len - start, &req, &used, &err);
        if (r == 1) {
            tables_answer(&req, &c->out);
            start += used;
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
    if (n <= 0) {
        drop(c);
        return;
    }
    c->last_active = now_ms();
    strbuf_append(&c->in, buf, (size_t)n);
    answer_requests(c);
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
            tables_configure();
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
    struct pollfd *fds = xcalloc(CLIENT_LIMIT + 2, sizeof *fds);
    struct client **owner = xcalloc(CLIENT_LIMIT + 2, sizeof *owner);
    while (!stopping) {
        size_t n = 0;
        long long now = now_ms();
        fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        int listening = client_count < CLIENT_LIMIT;
        fds[n++] = (struct pollfd){.fd = listening ? listen_fd : -1, .events = POLLIN};
        for (size_t i = 0; i < CLIENT_LIMIT; i++) {
            struct client *c = &clients[i];
            if (c->fd < 0)
                continue;
            if (now - c->last_active > idle_ms && c->out.len == 0) {
                drop(c);
                continue;
            }
            short events = 0;
            if (!c->closing && c->out.len < OUTPUT_MAX)
                events |= POLLIN;
            if (c->out.len)
                events |= POLLOUT;
            owner[n] = c;
            fds[n++] = (struct pollfd){.fd = c->fd, .events = events};
        }
        int timeout = client_count ? (int)(idle_ms < 60000 ? idle_ms : 60000) : -1;
        if (poll(fds, n, timeout) < 0) {
            if (errno != EINTR)
                msg_fatal_errno("lookup service: poll");
            continue;
        }
        if (fds[0].revents)
            handle_signals(signal_fd);
        for (size_t i = 2; i < n; i++) {
            struct client *c = owner[i];
            if (c->fd < 0 || !fds[i].revents)
                continue;
            if (fds[i].revents & POLLOUT)
                write_client(c);
            if (c->fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_client(c);
        }
        if (listening && fds[1].revents && !stopping)
            accept_clients(listen_fd);
    }
    for (size_t i = 0; i < CLIENT_LIMIT; i++)
        if (clients[i].fd >= 0)
            drop(&clients[i]);
    free(fds);
    free(owner);
}
