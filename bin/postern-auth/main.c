/* main.c - postern-auth: the auth service.  A long-running, dynamically
 * linked program that runs the SASL exchanges of smtpd's AUTH command
 * with Cyrus libsasl2, which loads its mechanisms and password back ends
 * with dlopen and so cannot live in the static smtpd; smtpd reaches it
 * over the unix socket queue_directory/public/auth and can itself read
 * neither sasldb nor /etc/shadow.
 *
 *   postern-auth [-m MODE] [-g GID] [-c DIR] [-o name=value]... [-v]
 *
 * Under systemd the socket comes from postern-auth.socket (LISTEN_FDS);
 * otherwise (`postern start`) it binds the socket itself with MODE
 * (default 0600) and group GID (when root starts the instance: smtpd's) and locks and writes queue_directory/pid/auth.pid.  Each
 * connection is served by a child of its own (session.c), since an
 * exchange may wait for saslauthd or a database.  The protocol is in
 * doc/auth.md.  See postern-auth(8).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "auth_proto.h"
#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "unixservice.h"

#define LISTEN_BACKLOG      256
#define CHILD_LIMIT         1000    /* more clients wait in the listen queue */

static unsigned children;

/* Wrong arguments: say how to call us. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-auth [-m MODE] [-g GID] [-c config_dir] [-o name=value]... [-v]\n");
    exit(64);
}

/* Accept the clients waiting, a child for each. */
static void accept_clients(int listen_fd, int signal_fd)
{
    while (children < CHILD_LIMIT) {
        struct ucred peer;
        struct strbuf err = STRBUF_INIT;
        int fd = unix_accept(listen_fd, SOCK_CLOEXEC, &peer, &err);
        if (fd < 0) {
            if (err.len)
                msg_warn("auth service: %s", err.s);
            strbuf_free(&err);
            return;
        }
        pid_t pid = fork();
        if (pid < 0) {
            msg_warn_errno("auth service: fork");
            close(fd);
            return;
        }
        if (pid == 0) {
            close(listen_fd);
            close(signal_fd);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            session_serve(fd);
        }
        children++;
        close(fd);
    }
}

/* Signals: SIGTERM and SIGINT stop, SIGHUP reads main.cf again (for the
 * children to come), SIGCHLD reaps.  1 when the service should stop. */
static int handle_signals(int signal_fd)
{
    struct signalfd_siginfo info;
    int stop = 0;
    while (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            config_reload();
            session_preload(conf_str("smtpd_sasl_path"));
            msg_info("auth service: main.cf and the SASL configuration read again");
        } else if (info.ssi_signo == SIGCHLD) {
            int status;
            while (waitpid(-1, &status, WNOHANG) > 0)
                if (children)
                    children--;
        } else {
            stop = 1;
        }
    }
    return stop;
}

int main(int argc, char **argv)
{
    mode_t socket_mode = 0600;
    int opt;
    log_open("auth", 0);
    gid_t socket_group = (gid_t)-1;
    while ((opt = getopt(argc, argv, "c:g:m:o:v")) != -1) {
        if (config_common_option(opt, optarg))
            continue;
        if (opt == 'g') {
            char *end;
            unsigned long gid = strtoul(optarg, &end, 10);
            if (*end || end == optarg || gid >= (gid_t)-1)
                usage();
            socket_group = (gid_t)gid;
        } else if (opt != 'm' || socket_mode_parse(optarg, &socket_mode) < 0) {
            usage();
        }
    }
    if (optind != argc)
        usage();
    signal(SIGPIPE, SIG_IGN);
    config_load(0);
    session_preload(conf_str("smtpd_sasl_path"));

    struct strbuf err = STRBUF_INIT;
    struct unix_service svc;
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
    int signal_fd = unix_service_start(&svc, "auth service", conf_str("queue_directory"), "auth",
                                       AUTH_SOCKET, socket_mode, socket_group, LISTEN_BACKLOG,
                                       signals, sizeof signals / sizeof signals[0]);
    msg_info("auth service: ready on %s",
             svc.socket_path ? svc.socket_path : "the socket systemd passed");
    for (;;) {
        struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN},
                                {.fd = children < CHILD_LIMIT ? svc.listen_fd : -1, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno != EINTR)
                msg_fatal_errno("auth service: poll");
            continue;
        }
        if (fds[0].revents && handle_signals(signal_fd))
            break;
        if (fds[1].revents)
            accept_clients(svc.listen_fd, signal_fd);
    }
    /* new clients find no socket; the children finish their exchanges */
    unix_service_close(&svc, &err);
    if (err.len)
        msg_warn("%s", err.s);
    msg_info("auth service: stopped");
    strbuf_free(&err);
    return 0;
}
