/* proxy.c - the proxy: table type: lookups asked of the lookup service,
 * postern-lookup, over its unix socket (doc/lookup.md, lookup_proto.h).
 *
 * One connection per process serves every proxy: table, made on the first
 * lookup and kept.  A process forked with the connection open (the smtpd
 * zygote's children) makes its own.  A connection the service closed (it
 * restarted, or dropped an idle client) is made again once; a service
 * that cannot be reached or does not answer in time makes the lookup
 * MAP_RETRY, which callers turn into a 4xx, never into "not found".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "lookup_proto.h"
#include "map_impl.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#define CLIENT_TIMEOUT_S    30      /* connect, send, answer */
#define CLIENT_FD_MIN       20      /* above the descriptors programs dup2 onto */

static struct {
    char *socket_path;
    int fd;
    pid_t owner;                    /* the process that made the connection */
    struct record_reader reader;
} client = {.fd = -1};

void map_set_lookup_socket(const char *path)
{
    free(client.socket_path);
    client.socket_path = xstrdup(path);
}

/* Drop the connection (ours, or one inherited across fork). */
static void disconnect(void)
{
    if (client.fd >= 0)
        close(client.fd);
    client.fd = -1;
}

/* Connect to the service; 0, or -1 with errno set. */
static int connect_service(void)
{
    if (!client.socket_path) {
        errno = ENOENT;
        return -1;
    }
    int fd = unix_connect(client.socket_path, CLIENT_TIMEOUT_S);
    if (fd < 0)
        return -1;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, CLIENT_FD_MIN);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    client.fd = fd;
    client.owner = getpid();
    record_reader_init(&client.reader, fd);
    return 0;
}

/* Write the whole request; a service that closed the connection is
 * EPIPE, never a SIGPIPE (SIGPIPE is held back meanwhile, and one this
 * write raised is taken off).  0, or -1 with errno set. */
static int send_request(const struct strbuf *request)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_only, &old);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    int rc = write_all(client.fd, request->s, request->len);
    int saved = errno;
    if (rc < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_only, NULL, &zero);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return rc;
}

/* The spec was checked by map.c; nothing to open until the first lookup. */
static int proxy_open(struct map *map, const char *name, struct strbuf *err)
{
    (void)map;
    if (strlen(name) > LOOKUP_TABLE_MAX) {
        strbuf_printf(err, "table \"proxy:%.40s...\": name longer than %d bytes", name,
                      LOOKUP_TABLE_MAX);
        return -1;
    }
    return 0;
}

/* Warn about a failed lookup, with the key in printable form. */
static void warn_failed(const struct map *map, const char *key, const char *why)
{
    struct strbuf shown = STRBUF_INIT, reason = STRBUF_INIT;
    /* the reason may come from the service: printable and bounded too */
    msg_warn("table proxy:%s: lookup of \"%s\": %s", map->spec,
             log_printable(&shown, key, 200), log_printable(&reason, why, 400));
    strbuf_free(&shown);
    strbuf_free(&reason);
}

/* One answer record as a lookup result, with Postfix's warnings. */
static int take_answer(struct map *map, const char *key, const struct strbuf *answer,
                       struct strbuf *value)
{
    const char *text = answer->s + 1;
    switch (answer->s[0]) {
    case LOOKUP_FOUND:
        strbuf_set(value, text);
        return MAP_FOUND;
    case LOOKUP_NOTFOUND:
        strbuf_set(value, text);    /* what the service says of the absence */
        return MAP_NOTFOUND;
    case LOOKUP_DENIED:
        /* Postfix's client says this, then stops */
        msg_warn("proxymap service is not configured for table \"%s\"", map->spec);
        return MAP_RETRY;
    case LOOKUP_BAD:
        disconnect();
        warn_failed(map, key, *text ? text : "the lookup service refused the request");
        return MAP_RETRY;
    default:
        /* a DNS answer of "try again" is no table failure: the
         * caller says what it means, in Postfix's words */
        if (strncmp(map->spec, "dns:", 4) != 0)
            warn_failed(map, key, *text ? text : "the lookup service cannot answer now");
        return MAP_RETRY;
    }
}

/* Ask n lookups in one write and read their n answers (the service
 * answers in order; it resolves DNS requests concurrently).  A request
 * that cannot be said (a key too long) is MAP_NOTFOUND and not sent. */
static void ask_service(struct map *const *maps, const char *const *keys, size_t n,
                        struct strbuf *values, int *results)
{
    struct strbuf request = STRBUF_INIT, answer = STRBUF_INIT;
    size_t sent = 0;
    unsigned char *unsent = xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        strbuf_reset(&values[i]);
        results[i] = MAP_RETRY;
        if (lookup_request_format(&request, maps[i]->spec, maps[i]->options, keys[i]) != 0) {
            results[i] = MAP_NOTFOUND;      /* no table holds a key this long */
            unsent[i] = 1;
        } else {
            sent++;
        }
    }
    if (client.fd >= 0 && client.owner != getpid())
        disconnect();
    for (int attempt = 0; sent && attempt < 2; attempt++) {
        int reused = client.fd >= 0;
        const char *failed = NULL;
        int saved = 0;
        if (!reused && connect_service() < 0) {
            saved = errno;
            failed = "connect";
        } else if (send_request(&request) < 0) {
            saved = errno;
            failed = "send";
        }
        size_t i = 0;
        for (; !failed && i < n; i++) {
            if (unsent[i])
                continue;
            int r = record_read(&client.reader, &answer, LOOKUP_VALUE_MAX + 1);
            if (r == 0)
                errno = ENOTCONN;           /* closed before answering */
            else if (r > 0 && answer.len == 0)
                errno = EPROTO, r = -1;
            if (r <= 0) {
                saved = errno;
                failed = "read";
                break;
            }
            results[i] = take_answer(maps[i], keys[i], &answer, &values[i]);
            if (client.fd < 0) {
                /* a bad request: the service closes; the rest try again */
                i = n;
                break;
            }
        }
        if (!failed)
            break;
        disconnect();
        /* a kept connection the service has closed: all of them once more */
        if (reused && (saved == EPIPE || saved == ECONNRESET || saved == ENOTCONN)) {
            for (size_t j = 0; j < i; j++)
                strbuf_reset(&values[j]);
            continue;
        }
        struct strbuf why = STRBUF_INIT;
        strbuf_printf(&why, "lookup service %s: %s",
                      client.socket_path ? client.socket_path : "(no socket set)",
                      saved == EAGAIN || saved == EWOULDBLOCK ? "no answer in time"
                      : saved == EMSGSIZE ? "answer too long" : strerror(saved));
        size_t first = n;
        for (size_t j = n; j-- > i;) {
            if (unsent[j])
                continue;
            strbuf_reset(&values[j]);
            results[j] = MAP_RETRY;
            first = j;
        }
        if (first < n)
            warn_failed(maps[first], keys[first], why.s);
        strbuf_free(&why);
        break;
    }
    free(unsent);
    strbuf_free(&request);
    strbuf_free(&answer);
}

/* ---- answers remembered for a transaction (map_memo_enable) ---- */
#define MEMO_MAX 64

static struct memo {
    char *spec, *key, *value;
    unsigned options;
    int result;
} memo[MEMO_MAX];
static size_t memo_count;
static int memo_on;

void map_memo_enable(void)
{
    memo_on = 1;
}

void map_memo_forget(void)
{
    for (size_t i = 0; i < memo_count; i++) {
        free(memo[i].spec);
        free(memo[i].key);
        free(memo[i].value);
    }
    memo_count = 0;
}

/* DNS answers are the resolver's business (its look-ahead, its TTLs). */
static int memo_applies(const struct map *map)
{
    return memo_on && strncmp(map->spec, "dns:", 4) != 0;
}

static const struct memo *memo_find(const struct map *map, const char *key)
{
    for (size_t i = 0; i < memo_count; i++)
        if (memo[i].options == map->options && strcmp(memo[i].key, key) == 0
            && strcmp(memo[i].spec, map->spec) == 0)
            return &memo[i];
    return NULL;
}

/* Keep a definite answer (found or not found, never a failure), when it
 * is short: a long list of addresses is asked again rather than held. */
#define MEMO_VALUE_MAX 4096
static void memo_keep(const struct map *map, const char *key, int result,
                      const struct strbuf *value)
{
    if (memo_count == MEMO_MAX || (result != MAP_FOUND && result != MAP_NOTFOUND)
        || value->len > MEMO_VALUE_MAX)
        return;
    memo[memo_count++] = (struct memo){xstrdup(map->spec), xstrdup(key),
                                       xstrdup(strbuf_str(value)), map->options, result};
}

static void lookup_several(struct map *const *maps, const char *const *keys, size_t n,
                           struct strbuf *values, int *results)
{
    if (!memo_on) {
        ask_service(maps, keys, n, values, results);
        return;
    }
    /* what is remembered is answered here; the rest is asked in one go */
    struct map **ask_maps = xreallocarray(NULL, n ? n : 1, sizeof *ask_maps);
    const char **ask_keys = xreallocarray(NULL, n ? n : 1, sizeof *ask_keys);
    size_t *at = xreallocarray(NULL, n ? n : 1, sizeof *at);
    size_t asked = 0;
    for (size_t i = 0; i < n; i++) {
        const struct memo *m = memo_applies(maps[i]) ? memo_find(maps[i], keys[i]) : NULL;
        if (m) {
            strbuf_set(&values[i], m->value);
            results[i] = m->result;
            continue;
        }
        ask_maps[asked] = maps[i];
        ask_keys[asked] = keys[i];
        at[asked++] = i;
    }
    if (asked) {
        struct strbuf *got = xcalloc(asked, sizeof *got);
        int *got_results = xcalloc(asked, sizeof *got_results);
        ask_service(ask_maps, ask_keys, asked, got, got_results);
        for (size_t j = 0; j < asked; j++) {
            size_t i = at[j];
            strbuf_set(&values[i], strbuf_str(&got[j]));
            results[i] = got_results[j];
            if (memo_applies(maps[i]))
                memo_keep(maps[i], keys[i], results[i], &got[j]);
            strbuf_free(&got[j]);
        }
        free(got);
        free(got_results);
    }
    free(ask_maps);
    free(ask_keys);
    free(at);
}

static int proxy_lookup(struct map *map, const char *key, struct strbuf *value)
{
    int result;
    lookup_several(&map, &key, 1, value, &result);
    return result;
}

const struct map_type map_type_proxy = {
    .name = "proxy", .flags = 0, .open = proxy_open, .lookup = proxy_lookup,
    .lookup_several = lookup_several,
};
