/* main.c - postern-lookup: the lookup service, Postfix's proxymap(8) the
 * postern way.  A long-running, dynamically linked program that opens
 * tables once and answers lookups over the unix socket
 * queue_directory/public/lookup, for the proxy: tables of every program
 * and for the tables that need the name service or a client library
 * (unix:), which the static per-connection programs never open
 * themselves.  proxy_read_maps is the allow-list.
 *
 *   postern-lookup [-m MODE] [-c DIR] [-o name=value]... [-v]
 *
 * Under systemd the socket comes from postern-lookup.socket (LISTEN_FDS);
 * otherwise (`postern start`) it binds the socket itself with MODE
 * (default 0600) and locks and writes queue_directory/pid/lookup.pid.
 * The protocol is in doc/lookup.md; tables.c decides what may be opened,
 * serve.c serves the clients.  See postern-lookup(8).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "map.h"
#include "strbuf.h"
#include "unixservice.h"

#define LISTEN_BACKLOG      256

/* Wrong arguments: say how to call us. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-lookup [-m MODE] [-c config_dir] [-o name=value]... [-v]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    mode_t socket_mode = 0600;
    log_open("lookup", 0);
    if (config_service_options(argc, argv, &socket_mode) < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    config_load(0);
    /* this program is dynamically linked: unix: tables are opened here */
    map_register_dynamic_types();
    tables_configure();
    /* the resolver for dns: requests (doc/dns.md); when it cannot be made
     * now, the next DNS request tries again (dnsreq.c) */
    if (dns_open(0) < 0)
        msg_warn("lookup service: no DNS resolver yet: DNS requests will try again");

    struct strbuf err = STRBUF_INIT;
    struct unix_service svc;
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
    int signal_fd = unix_service_start(&svc, "lookup service", conf_str("queue_directory"), "lookup",
                                       LOOKUP_SOCKET, socket_mode, (gid_t)-1, LISTEN_BACKLOG,
                                       signals, sizeof signals / sizeof signals[0]);
    msg_info("lookup service: ready on %s",
             svc.socket_path ? svc.socket_path : "the socket systemd passed");
    serve(svc.listen_fd, signal_fd);
    /* new clients find no socket and answer "try again" */
    unix_service_close(&svc, &err);
    if (err.len)
        msg_warn("%s", err.s);
    msg_info("lookup service: stopped");
    strbuf_free(&err);
    /* database threads of retired tables may still be inside a client
     * library: no exit handlers (libpq's, OpenSSL's) under their feet */
    _exit(0);
}
