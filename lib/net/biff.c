/* biff.c - the biff(1) notice of local(8): "user@offset" and a NUL in one
 * UDP datagram to comsat on this machine (127.0.0.1, port 512: biff/udp),
 * which tells a user who said `biff y` at a terminal that mail came, and
 * where in the mailbox it starts.  No getservbyname or gethostbyname: the
 * per-message programs are static and call no NSS. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "biff.h"
#include "log.h"

#define BIFF_PORT 512

void biff_notify(const char *user, long long offset)
{
    char text[512];
    int len = snprintf(text, sizeof text, "%s@%lld", user, offset);
    if (len < 0 || (size_t)len >= sizeof text)
        return;                 /* no user name is that long */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        msg_warn_errno("biff: socket");
        return;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(BIFF_PORT)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* as Postfix: the text with its NUL; nobody listening is no error */
    (void)sendto(fd, text, (size_t)len + 1, 0, (struct sockaddr *)&sin, sizeof sin);
    close(fd);
}
