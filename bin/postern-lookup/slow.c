/* slow.c - lookups in tables that wait on a server (MAP_SLOW: pgsql,
 * mysql, sqlite) run in a thread of their own, one per open table, so
 * that a slow or unreachable database delays only the requests for that
 * table: the poll loop (serve.c) goes on serving every other client and
 * table meanwhile.  One thread per table also means one connection per
 * table (the table keeps it between lookups).  The thread takes jobs from
 * its queue in order and sends each answer to its client when the poll
 * loop has nothing to send it before (a client waits for each answer
 * before its next request: the thread's send saves the client a wake-up
 * of the poll loop).  Each answer then goes to one shared list, and an
 * eventfd wakes the poll loop, which takes it as done and hands what the
 * thread could not send to the client (slow_process).  A client that went
 * away cancels its job: the answer is then dropped.  A retired table's thread answers its queue, closes the
 * table and ends on its own.  Only the poll loop's thread calls these
 * functions. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

struct slowreq {
    struct slowreq *next;
    struct slow_table *table;
    char *key;
    struct strbuf answer;           /* the answer record, made by the thread */
    slow_done *done;
    void *arg;
    int fd;                         /* the client's socket, or -1: not ours to send */
    size_t sent;                    /* of the answer, by the thread */
    int cancelled;                  /* under lock */
};

struct slow_table {
    struct map *map;
    pthread_t thread;
    pthread_cond_t wake;
    struct slowreq *head, *tail;    /* to do, under lock */
    int quit;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slowreq *answered;    /* done, under lock */
static int event_fd = -1;

int slow_fd(void)
{
    if (event_fd < 0) {
        event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (event_fd < 0)
            msg_fatal_errno("lookup service: eventfd");
    }
    return event_fd;
}

/* The table's thread: answer its jobs in order until told to quit with
 * nothing left to do. */
static void *table_thread(void *arg)
{
    struct slow_table *t = arg;
    struct strbuf value = STRBUF_INIT;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!t->head && !t->quit)
            pthread_cond_wait(&t->wake, &lock);
        struct slowreq *r = t->head;
        if (!r)
            break;
        t->head = r->next;
        if (!t->head)
            t->tail = NULL;
        int cancelled = r->cancelled;
        pthread_mutex_unlock(&lock);
        if (!cancelled) {
            switch (map_lookup(t->map, r->key, &value)) {
            case MAP_FOUND:
                lookup_reply_format(&r->answer, LOOKUP_FOUND, strbuf_str(&value));
                break;
            case MAP_NOTFOUND:
                lookup_reply_format(&r->answer, LOOKUP_NOTFOUND, "");
                break;
            default:
                lookup_reply_format(&r->answer, LOOKUP_RETRY, "the table cannot answer now");
                break;
            }
        }
        pthread_mutex_lock(&lock);
        /* under the lock: a cancelled request's socket may be closed, and
         * its number reused, as soon as slow_cancel returns */
        if (r->fd >= 0 && !r->cancelled) {
            ssize_t n = send(r->fd, r->answer.s, r->answer.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                r->sent = (size_t)n;
        }
        r->next = answered;
        answered = r;
        uint64_t one = 1;
        if (write(event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            msg_warn_errno("lookup service: eventfd");
    }
    pthread_mutex_unlock(&lock);
    strbuf_free(&value);
    /* retired (slow_table_retire): the table is ours to close */
    map_close(t->map);
    pthread_cond_destroy(&t->wake);
    free(t);
    return NULL;
}

struct slow_table *slow_table_start(struct map *map)
{
    slow_fd();
    struct slow_table *t = xcalloc(1, sizeof *t);
    t->map = map;
    pthread_cond_init(&t->wake, NULL);
    int err = pthread_create(&t->thread, NULL, table_thread, t);
    if (!err)
        err = pthread_detach(t->thread);
    if (err) {
        errno = err;
        msg_fatal_errno("lookup service: pthread_create");
    }
    return t;
}

void slow_table_retire(struct slow_table *t)
{
    pthread_mutex_lock(&lock);
    t->quit = 1;                        /* its queued jobs are answered first */
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&lock);
    /* t and its table belong to the thread from here on */
}

struct slowreq *slow_start(struct slow_table *t, const char *key, slow_done *done, void *arg,
                           int direct_fd)
{
    struct slowreq *r = xcalloc(1, sizeof *r);
    r->fd = direct_fd;
    r->table = t;
    r->key = xstrdup(key);
    r->answer = (struct strbuf)STRBUF_INIT;
    r->done = done;
    r->arg = arg;
    pthread_mutex_lock(&lock);
    if (t->tail)
        t->tail->next = r;
    else
        t->head = r;
    t->tail = r;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&lock);
    return r;
}

void slow_cancel(struct slowreq *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&lock);
    r->cancelled = 1;                   /* freed when its answer comes */
    pthread_mutex_unlock(&lock);
}

void slow_process(void)
{
    if (event_fd < 0)
        return;
    uint64_t count;
    if (read(event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        msg_warn_errno("lookup service: eventfd");
    pthread_mutex_lock(&lock);
    struct slowreq *list = answered;
    answered = NULL;
    pthread_mutex_unlock(&lock);
    /* the list is newest first: answer in the order the jobs finished */
    struct slowreq *ordered = NULL;
    while (list) {
        struct slowreq *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    while (ordered) {
        struct slowreq *r = ordered;
        ordered = r->next;
        if (r->sent) {                  /* what the table's thread sent */
            memmove(r->answer.s, r->answer.s + r->sent, r->answer.len - r->sent);
            strbuf_truncate(&r->answer, r->answer.len - r->sent);
        }
        if (!r->cancelled)              /* only this thread sets it */
            r->done(r->arg, &r->answer);
        strbuf_free(&r->answer);
        free(r->key);
        free(r);
    }
}
