/* accept_child.c - not a unit test: the per-connection program t/46-accept.t
 * and the connection benchmark run under postern-accept, linked with
 * lib/util/zygote.c so that it also works as a zygote (postern-accept -z).
 *
 *   accept_child env    print "pid=N", "ppid=N" and the environment, then exit
 *   accept_child smtp   a minimal SMTP server: 220, 250 to EHLO, 221 to QUIT
 *   accept_child wait   echo lines until end of input (a session that stays)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "zygote.h"

extern char **environ;

/* Write a reply or line; end the session when the client has gone. */
static void say(const char *text)
{
    if (write_all(1, text, strlen(text)) < 0)
        exit(0);
}

/* A minimal SMTP dialogue, enough for connbench. */
static int smtp(void)
{
    char buf[1024];
    size_t len = 0;
    say("220 accept-child ESMTP\r\n");
    for (;;) {
        ssize_t r = read(0, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            return 0;
        len += (size_t)r;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            if (strncasecmp(buf, "EHLO", 4) == 0)
                say("250-accept-child\r\n250 PIPELINING\r\n");
            else if (strncasecmp(buf, "QUIT", 4) == 0) {
                say("221 2.0.0 Bye\r\n");
                return 0;
            } else
                say("502 5.5.2 Error: command not recognized\r\n");
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len - used);
            len -= used;
            buf[len] = '\0';
        }
        if (len == sizeof buf - 1)
            return 1;
    }
}

int main(int argc, char **argv)
{
    log_open("accept-child", 0);
    /* what a real program does first: its configuration, its tables */
    zygote_wait();
    const char *mode = argc > 1 ? argv[1] : "env";
    if (strcmp(mode, "smtp") == 0)
        return smtp();
    if (strcmp(mode, "wait") == 0) {
        char buf[512];
        ssize_t r;
        while ((r = read(0, buf, sizeof buf)) > 0)
            if (write_all(1, buf, (size_t)r) < 0)
                return 0;
        return 0;
    }
    printf("pid=%ld\nppid=%ld\n", (long)getpid(), (long)getppid());
    for (char **e = environ; *e; e++)
        printf("%s\n", *e);
    return 0;
}
