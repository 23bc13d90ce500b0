/* listen.c - postern-accept's listening sockets: bound from the addresses on
 * the command line (IPv4, IPv6, unix paths) or taken from systemd. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "accept.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

/* Append a listener. */
static void add_listener(struct listeners *out, int fd, int family,
                         const char *name, const char *unix_path, int bound_here)
{
    out->item = xreallocarray(out->item, out->count + 1, sizeof *out->item);
    struct listener *l = &out->item[out->count++];
    l->fd = fd;
    l->family = family;
    l->name = xstrdup(name);
    l->unix_path = unix_path ? xstrdup(unix_path) : NULL;
    l->bound_here = bound_here;
}

/* Non-blocking and close-on-exec: children get only their connection. */
static void make_listener_fd(int fd, const char *name)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0
        || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        msg_fatal_errno("%s: fcntl", name);
}

/* A unix socket path: remove a stale socket, bind, listen. */
static void listen_unix(struct listeners *out, const char *path, int backlog)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path)
        msg_fatal("%s: unix socket path too long", path);
    strcpy(sun.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            msg_fatal("%s: exists and is not a socket", path);
        if (unlink(path) < 0)
            msg_fatal_errno("unlink %s", path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        msg_fatal_errno("socket");
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        msg_fatal_errno("bind %s", path);
    /* anyone may connect, as to Postfix's public/ sockets: the directory's
     * permissions say who reaches it */
    if (chmod(path, 0666) < 0)
        msg_fatal_errno("chmod %s", path);
    if (listen(fd, backlog) < 0)
        msg_fatal_errno("listen %s", path);
    add_listener(out, fd, AF_UNIX, path, path, 1);
}

/* Split "host:port", "[v6]:port", "*:port" or ":port"; host NULL = any. */
static void split_address(const char *address, char **host, char **port)
{
    const char *colon;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':' || !close[2])
            msg_fatal("%s: expected [IPv6]:port", address);
        *host = xstrndup(address + 1, (size_t)(close - address - 1));
        *port = xstrdup(close + 2);
        return;
    }
    colon = strrchr(address, ':');
    if (!colon || !colon[1])
        msg_fatal("%s: expected host:port, [IPv6]:port or a unix socket path", address);
    if (strchr(address, ':') != colon)
        msg_fatal("%s: write IPv6 addresses in brackets: [IPv6]:port", address);
    size_t host_len = (size_t)(colon - address);
    if (host_len == 0 || (host_len == 1 && address[0] == '*'))
        *host = NULL;
    else
        *host = xstrndup(address, host_len);
    *port = xstrdup(colon + 1);
}

/* The text form of a bound address, for log lines. */
static void format_sockaddr(struct strbuf *out, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        strbuf_printf(out, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        strbuf_printf(out, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        strbuf_puts(out, ((const struct sockaddr_un *)sa)->sun_path);
    }
}

void listen_address(struct listeners *out, const char *address, int backlog)
{
    if (address[0] == '/') {
        listen_unix(out, address, backlog);
        return;
    }
    char *host, *port;
    split_address(address, &host, &port);
    struct addrinfo hints, *result;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, port, &hints, &result);
    if (rc != 0)
        msg_fatal("%s: %s", address, gai_strerror(rc));
    for (struct addrinfo *ai = result; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            msg_fatal_errno("%s: socket", address);
        int on = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
            msg_fatal_errno("%s: SO_REUSEADDR", address);
        if (ai->ai_family == AF_INET6
            && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) < 0)
            msg_fatal_errno("%s: IPV6_V6ONLY", address);
        struct strbuf name = STRBUF_INIT;
        format_sockaddr(&name, ai->ai_addr);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            msg_fatal_errno("bind %s", name.s);
        if (listen(fd, backlog) < 0)
            msg_fatal_errno("listen %s", name.s);
        add_listener(out, fd, ai->ai_family, name.s, NULL, 0);
        strbuf_free(&name);
    }
    freeaddrinfo(result);
    free(host);
    free(port);
}

size_t listen_systemd(struct listeners *out)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        errno = -n;
        msg_fatal_errno("sd_listen_fds");
    }
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
            msg_fatal("file descriptor %d from systemd is not a listening stream socket "
                      "(Accept=yes units start postern-smtpd directly, not postern-accept)", fd);
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            msg_fatal_errno("getsockname fd %d", fd);
        struct strbuf name = STRBUF_INIT;
        format_sockaddr(&name, (struct sockaddr *)&ss);
        make_listener_fd(fd, name.s);
        add_listener(out, fd, ss.ss_family, name.s,
                     ss.ss_family == AF_UNIX ? ((struct sockaddr_un *)&ss)->sun_path : NULL, 0);
        strbuf_free(&name);
    }
    return (size_t)n;
}
