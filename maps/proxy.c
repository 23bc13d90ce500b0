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

/* Send the request and read the answer into answer; 0, or -1 with errno
 * (EPIPE/ECONNRESET/ENOTCONN when the service closed the connection). */
static int exchange(const struct strbuf *request, struct strbuf *answer)
{
    if (send_request(request) < 0)
        return -1;
    int r = record_read(&client.reader, answer, LOOKUP_VALUE_MAX + 1);
    if (r == 0)
        errno = ENOTCONN;           /* closed before answering */
    if (r <= 0)
        return -1;
    if (answer->len == 0) {
        errno = EPROTO;
        return -1;
    }
    return 0;
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

static int proxy_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct strbuf request = STRBUF_INIT, answer = STRBUF_INIT;
    if (lookup_request_format(&request, map->spec, map->options, key) != 0) {
        /* no table holds a key this long */
        strbuf_free(&request);
        return MAP_NOTFOUND;
    }
    if (client.fd >= 0 && client.owner != getpid())
        disconnect();
    int result = MAP_RETRY;
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = client.fd >= 0;
        if (!reused && connect_service() < 0) {
            struct strbuf why = STRBUF_INIT;
            strbuf_printf(&why, "lookup service %s: %s",
                          client.socket_path ? client.socket_path : "(no socket set)",
                          strerror(errno));
            warn_failed(map, key, why.s);
            strbuf_free(&why);
            break;
        }
        if (exchange(&request, &answer) < 0) {
            int saved = errno;
            disconnect();
            /* a kept connection the service has closed: once more */
            if (reused && (saved == EPIPE || saved == ECONNRESET || saved == ENOTCONN))
                continue;
            struct strbuf why = STRBUF_INIT;
            strbuf_printf(&why, "lookup service %s: %s", client.socket_path,
                          saved == EAGAIN || saved == EWOULDBLOCK ? "no answer in time"
                          : saved == EMSGSIZE ? "answer too long" : strerror(saved));
            warn_failed(map, key, why.s);
            strbuf_free(&why);
            break;
        }
        const char *text = answer.s + 1;
        switch (answer.s[0]) {
        case LOOKUP_FOUND:
            strbuf_set(value, text);
            result = MAP_FOUND;
            break;
        case LOOKUP_NOTFOUND:
            strbuf_set(value, text);    /* what the service says of the absence */
            result = MAP_NOTFOUND;
            break;
        case LOOKUP_DENIED:
            /* Postfix's client says this, then stops */
            msg_warn("proxymap service is not configured for table \"%s\"", map->spec);
            break;
        case LOOKUP_BAD:
            disconnect();
            warn_failed(map, key, *text ? text : "the lookup service refused the request");
            break;
        default:
            /* a DNS answer of "try again" is no table failure: the
             * caller says what it means, in Postfix's words */
            if (strncmp(map->spec, "dns:", 4) != 0)
                warn_failed(map, key, *text ? text : "the lookup service cannot answer now");
            break;
        }
        break;
    }
    strbuf_free(&request);
    strbuf_free(&answer);
    return result;
}

const struct map_type map_type_proxy = {
    .name = "proxy", .flags = 0, .open = proxy_open, .lookup = proxy_lookup,
};
