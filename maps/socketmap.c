/* socketmap.c - the socketmap table type, Postfix's socketmap_table(5)
 * (Sendmail's socket map protocol): "socketmap:inet:HOST:PORT:NAME" or
 * "socketmap:unix:/path:NAME".  Each lookup sends the netstring
 * "LEN:NAME KEY," and reads one netstring back:
 *   "OK value"          found
 *   "NOTFOUND "         not found
 *   "TEMP ...", "TIMEOUT ...", "PERM ...", anything else: try again (the
 *                       server's words are logged)
 * This is how Postfix reaches an MTA-STS policy server
 * (smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix).  HOST
 * must be a numeric address or localhost (no name service in static
 * programs).  The connection stays open between lookups and is made again
 * once when the server closed it; a lookup waits at most 100 s (Postfix's
 * socketmap timeout) and a reply holds at most 100000 bytes
 * (socketmap_max_reply).  The table is slow (MAP_SLOW): the lookup service
 * runs it in a thread of its own.  socketmap_reply() is the reply parser,
 * fuzzed alone (fuzz/socketmap_reply.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "map_impl.h"
#include "monotonic.h"
#include "strbuf.h"
#include "xalloc.h"

#define SOCKETMAP_TIMEOUT_MS    100000
#define SOCKETMAP_MAX_REPLY     100000
#define CONN_FAILED             (-12)   /* exchange(): connect again */

struct socketmap {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *mapname;
    int fd;
};

/* Parse "inet:host:port:name" / "unix:/path:name". */
static int socketmap_open(struct map *map, const char *name, struct strbuf *err)
{
    const char *last = strrchr(name, ':');
    if (!last || !last[1] || last == name) {
        strbuf_printf(err, "table \"socketmap:%s\": need socketmap:inet:host:port:name "
                      "or socketmap:unix:/path:name", name);
        return -1;
    }
    struct socketmap *sm = xcalloc(1, sizeof *sm);
    sm->fd = -1;
    sm->mapname = xstrdup(last + 1);
    char *endpoint = xstrndup(name, (size_t)(last - name));
    int rc = -1;
    if (strncmp(endpoint, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&sm->addr;
        if (strlen(endpoint + 5) == 0 || strlen(endpoint + 5) >= sizeof un->sun_path) {
            strbuf_printf(err, "table \"socketmap:%s\": bad socket path", name);
            goto out;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, endpoint + 5);
        sm->addr_len = sizeof *un;
    } else if (strncmp(endpoint, "inet:", 5) == 0) {
        char *host = endpoint + 5, *colon = strrchr(host, ':');
        if (!colon) {
            strbuf_printf(err, "table \"socketmap:%s\": need inet:host:port", name);
            goto out;
        }
        *colon = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            strbuf_printf(err, "table \"socketmap:%s\": bad port", name);
            goto out;
        }
        if (*host == '[' && host[strlen(host) - 1] == ']') {
            host[strlen(host) - 1] = '\0';
            host++;
        }
        if (strcasecmp(host, "localhost") == 0)
            host = (char *)"127.0.0.1";
        struct sockaddr_in *v4 = (struct sockaddr_in *)&sm->addr;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sm->addr;
        if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons((unsigned short)port);
            sm->addr_len = sizeof *v4;
        } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((unsigned short)port);
            sm->addr_len = sizeof *v6;
        } else {
            strbuf_printf(err, "table \"socketmap:%s\": \"%s\" is not a numeric address "
                          "(postern looks no host name up for a socketmap)", name, host);
            goto out;
        }
    } else {
        strbuf_printf(err, "table \"socketmap:%s\": need inet: or unix:", name);
        goto out;
    }
    map->data = sm;
    rc = 0;
out:
    free(endpoint);
    if (rc) {
        free(sm->mapname);
        free(sm);
    }
    return rc;
}

/* Wait for fd until the deadline; 1 ready, 0 not. */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}

/* Connect (non-blocking, before the deadline); 0 or -1. */
static int connect_server(struct socketmap *sm, long long deadline)
{
    sm->fd = socket(sm->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sm->fd < 0)
        return -1;
    if (connect(sm->fd, (struct sockaddr *)&sm->addr, sm->addr_len) != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if ((errno != EINPROGRESS && errno != EAGAIN) || !wait_for(sm->fd, POLLOUT, deadline)
            || getsockopt(sm->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
            close(sm->fd);
            sm->fd = -1;
            return -1;
        }
    }
    return 0;
}

/* Write all of buf before the deadline; 0 or -1. */
static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd, POLLOUT, deadline))
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

int socketmap_reply(const char *data, size_t len, size_t *used, struct strbuf *value)
{
    size_t i = 0, n = 0;
    while (i < len && data[i] >= '0' && data[i] <= '9') {
        if (i >= 6)
            return SOCKETMAP_MALFORMED;
        n = n * 10 + (size_t)(data[i++] - '0');
    }
    if (i == len)
        return SOCKETMAP_MORE;
    if (i == 0 || data[i] != ':' || n > SOCKETMAP_MAX_REPLY || (i > 1 && data[0] == '0'))
        return SOCKETMAP_MALFORMED;
    if (len - i - 1 < n + 1)
        return SOCKETMAP_MORE;
    const char *text = data + i + 1;
    if (text[n] != ',')
        return SOCKETMAP_MALFORMED;
    *used = i + 1 + n + 1;
    strbuf_reset(value);
    if (n >= 3 && strncmp(text, "OK ", 3) == 0) {
        strbuf_append(value, text + 3, n - 3);
        if (memchr(text + 3, '\0', n - 3))
            return SOCKETMAP_MALFORMED;                  /* a NUL would cut the value */
        return MAP_FOUND;
    }
    if (n >= 8 && strncmp(text, "NOTFOUND", 8) == 0 && (n == 8 || text[8] == ' '))
        return MAP_NOTFOUND;
    strbuf_append(value, text, n);      /* TEMP, TIMEOUT, PERM, other: the words */
    return MAP_RETRY;
}

/* One request and its reply on the open connection; MAP_* or CONN_FAILED
 * when the connection failed (then the caller may connect again once). */
static int exchange(struct socketmap *sm, const char *key, struct strbuf *value,
                    long long deadline)
{
    struct strbuf req = STRBUF_INIT, in = STRBUF_INIT;
    int rc = CONN_FAILED;
    strbuf_printf(&req, "%zu:%s %s,", strlen(sm->mapname) + 1 + strlen(key), sm->mapname, key);
    if (send_all(sm->fd, req.s, req.len, deadline) != 0)
        goto out;
    for (;;) {
        size_t used = 0;
        int r = in.len ? socketmap_reply(in.s, in.len, &used, value) : SOCKETMAP_MORE;
        if (r == SOCKETMAP_MALFORMED) {
            msg_warn("socketmap %s: malformed reply", sm->mapname);
            rc = MAP_RETRY;
            close(sm->fd);
            sm->fd = -1;
            goto out;
        }
        if (r != SOCKETMAP_MORE) {
            if (r == MAP_RETRY)
                msg_warn("socketmap %s: lookup of \"%s\": %s", sm->mapname, key,
                         value->s ? value->s : "");
            rc = r;
            goto out;
        }
        char buf[4096];
        if (!wait_for(sm->fd, POLLIN, deadline)) {
            msg_warn("socketmap %s: timeout", sm->mapname);
            rc = MAP_RETRY;
            close(sm->fd);
            sm->fd = -1;
            goto out;
        }
        ssize_t n = read(sm->fd, buf, sizeof buf);
        if (n > 0)
            strbuf_append(&in, buf, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            goto out;
    }
out:
    strbuf_free(&req);
    strbuf_free(&in);
    return rc;
}

static int socketmap_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct socketmap *sm = map->data;
    long long deadline = monotonic_ms() + SOCKETMAP_TIMEOUT_MS;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = sm->fd < 0;
        if (fresh && connect_server(sm, deadline) != 0) {
            msg_warn("socketmap %s: cannot connect to %s: %s", sm->mapname, map->name,
                     strerror(errno));
            return MAP_RETRY;
        }
        int r = exchange(sm, key, value, deadline);
        if (r != CONN_FAILED)
            return r;
        close(sm->fd);
        sm->fd = -1;
        if (fresh)
            break;          /* a new connection failed: no second try */
    }
    msg_warn("socketmap %s: lost connection to %s", sm->mapname, map->name);
    return MAP_RETRY;
}

static void socketmap_close(struct map *map)
{
    struct socketmap *sm = map->data;
    if (sm->fd >= 0)
        close(sm->fd);
    free(sm->mapname);
    free(sm);
}

const struct map_type map_type_socketmap = {
    .name = "socketmap", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = socketmap_open,
    .lookup = socketmap_lookup, .close = socketmap_close,
};
