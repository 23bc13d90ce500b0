/* sockconnect.c - connect to a server named as Postfix names one
 * ("inet:host:port", "host:port", "unix:path"; a relative unix path is
 * under queue_directory) with a deadline, and wait on a socket until a
 * deadline.  The policy and milter clients use it.  Per-connection
 * programs are static and may not ask NSS: a host is a numeric address,
 * "localhost", or a name the lookup service finds (proxy:dns:A).
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

#include "config.h"
#include "map.h"
#include "monotonic.h"
#include "sockconnect.h"

/* Wait for fd to become ready for `events` until deadline_ms: 1 ready, 0
 * the time is up (errno ETIMEDOUT), -1 an error. */
int sock_wait(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - monotonic_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return 0;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* The IPv4 or IPv6 address of a host (numeric, "localhost", or through the
 * lookup service); 0, or -1 with `why` set. */
static int host_address(const char *host, struct sockaddr_storage *sa, socklen_t *len,
                        unsigned port, struct strbuf *why)
{
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    size_t n = strlen(name);
    if (n > 1 && name[0] == '[' && name[n - 1] == ']') {
        memmove(name, name + 1, n - 2);
        name[n - 2] = 0;
    }
    if (strcasecmp(name, "localhost") == 0)
        snprintf(name, sizeof name, "127.0.0.1");
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    memset(sa, 0, sizeof *sa);
    if (inet_pton(AF_INET, name, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)port);
        *len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, name, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        *len = sizeof *in6;
        return 0;
    }
    static struct map *a_table;
    struct strbuf err = STRBUF_INIT, value = STRBUF_INIT;
    if (!a_table && !(a_table = map_open("proxy:dns:A", &err))) {
        strbuf_printf(why, "cannot look up %s: %s", name, strbuf_str(&err));
        strbuf_free(&err);
        return -1;
    }
    strbuf_free(&err);
    int r = map_lookup(a_table, name, &value);
    if (r == MAP_FOUND) {
        value.s[strcspn(value.s, "\n")] = 0;
        if (inet_pton(AF_INET, value.s, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            in->sin_port = htons((unsigned short)port);
            *len = sizeof *in;
            strbuf_free(&value);
            return 0;
        }
    }
    strbuf_printf(why, "%s: %s", name, r == MAP_NOTFOUND ? "Host not found" : "Host not found, try again");
    strbuf_free(&value);
    return -1;
}

/* Connect to the server before the deadline; the socket, or -1 with why. */
int sock_connect(const char *spec, long long deadline_ms, struct strbuf *why)
{
    struct sockaddr_storage sa;
    socklen_t len = 0;
    int family;
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        struct strbuf full = STRBUF_INIT;
        if (*path != '/')
            strbuf_printf(&full, "%s/", conf_str("queue_directory"));
        strbuf_puts(&full, path);
        struct sockaddr_un *un = (struct sockaddr_un *)&sa;
        memset(&sa, 0, sizeof sa);
        if (full.len >= sizeof un->sun_path) {
            strbuf_printf(why, "unix-domain name too long: %s", full.s);
            strbuf_free(&full);
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, full.s, full.len + 1);
        strbuf_free(&full);
        len = sizeof *un;
        family = AF_UNIX;
    } else {
        const char *hostport = strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec;
        const char *colon = strrchr(hostport, ':');
        char *end;
        unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
        if (!colon || colon == hostport || !colon[1] || *end || port == 0 || port > 65535) {
            strbuf_printf(why, "bad server name (want inet:host:port or unix:path)");
            return -1;
        }
        char host[256];
        snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
        if (host_address(host, &sa, &len, (unsigned)port, why) < 0)
            return -1;
        family = sa.ss_family;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    int r = connect(fd, (struct sockaddr *)&sa, len);
    if (r < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        int err = 0;
        socklen_t errlen = sizeof err;
        if (sock_wait(fd, POLLOUT, deadline_ms) == 1
            && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0) {
            r = err ? -1 : 0;
            errno = err;
        }
    }
    if (r < 0) {
        strbuf_printf(why, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
