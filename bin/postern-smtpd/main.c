/* main.c - postern-smtpd: the SMTP server for one connection, on fd 0
 * (read) and fd 1 (write), started by systemd (Accept=yes), inetd,
 * tcpserver or postern-accept; or by `sendmail -bs` with -S on a pipe.
 *
 *   postern-smtpd [-c DIR] [-o name=value]... [-v] [-S]
 *
 * The configuration is read once; tables are opened when a restriction
 * first needs them.  Each message goes down the injection chain
 * (submit.c: rewrite in-process, then the queue stage).  See postern-smtpd(8).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addrmatch.h"
#include "config.h"
#include "filekeeper.h"
#include "listenfds.h"
#include "log.h"
#include "hugemem.h"
#include "hugetext.h"
#include "map.h"
#include "smtpd.h"
#include "zygote.h"                 /* postern-accept -z */

/* The session lives for the whole process (reachable for leak checkers). */
static struct session session;

/* Wrong arguments: say how to call us. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-smtpd [-c config_dir] [-o name=value]... [-v] [-S]\n");
    exit(64);
}

/* smtpd_forbid_bare_newline: 0 no, 1 normalize, 2 reject (with the
 * exclusions for clients in smtpd_forbid_bare_newline_exclusions). */
static int bare_newline_mode(struct session *s)
{
    const char *value = conf_str("smtpd_forbid_bare_newline");
    int mode;
    if (strcasecmp(value, "normalize") == 0)
        mode = 1;
    else if (strcasecmp(value, "reject") == 0 || strcasecmp(value, "yes") == 0)
        mode = 2;
    else if (strcasecmp(value, "no") == 0)
        mode = 0;
    else {
        msg_warn("unknown smtpd_forbid_bare_newline value \"%s\": using \"normalize\"", value);
        mode = 1;
    }
    if (mode == 2 && *conf_str("smtpd_forbid_bare_newline_exclusions")) {
        struct strbuf err = STRBUF_INIT;
        struct addrmatch *list = addrmatch_open("smtpd_forbid_bare_newline_exclusions",
                                                conf_str("smtpd_forbid_bare_newline_exclusions"), &err);
        if (list && addrmatch_match(list, s->client.name, s->client.address) == 1)
            mode = 1;
        if (!list)
            msg_warn("%s", strbuf_str(&err));
        addrmatch_free(list);
        strbuf_free(&err);
    }
    return mode;
}

/* systemd's Accept=yes without StandardInput=socket (and
 * systemd-socket-activate --accept) pass the connection as fd 3 with
 * LISTEN_PID=our pid and LISTEN_FDS=1 (sd_listen_fds(3)): move it to fd 0
 * and 1, where every other way puts it.  Done by hand rather than with
 * libsystemd, whose six dependent libraries would be loaded for every
 * connection. */
static void take_socket_activated_connection(void)
{
    if (listen_fds_take() != 1)
        return;
    int fd = 3, listening = 0;
    struct stat st;
    socklen_t len = sizeof listening;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)
        || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening)
        return;                 /* a listening socket is not ours to serve */
    if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
        msg_fatal_temp_errno("dup2 of the socket-activated connection");
    close(fd);
}

/* The zygote's check before each connection: tables whose files changed
 * are opened again (Postfix's daemons restart on "table has changed"). */
static pid_t zygote_pid;

static int tables_changed(void)
{
    /* a child rechecks when its connection comes (zygote.c): the zygote
     * says a broken change once; its children, each with its own copy of
     * what was said, would say it once per connection */
    if (getpid() != zygote_pid)
        map_changes_quiet();
    return policy_refresh(&session) | destination_refresh() | submit_refresh();
}

/* Options, configuration, the client, the greeting, then the command loop. */
int main(int argc, char **argv)
{
    struct session *s = &session;
    int opt;
    log_open("smtpd", 0);
    take_socket_activated_connection();
    while ((opt = getopt(argc, argv, "c:o:vS")) != -1) {
        if (config_common_option(opt, optarg))
            continue;
        if (opt == 'S')
            s->local_submission = 1;
        else
            usage();
    }
    if (optind != argc)
        usage();
    config_load(0);
    /* a zygote reads its indexed tables into huge pages that its children
     * share, before anything opens one (hugemem.h) */
    if (getenv(ZYGOTE_FD_VARIABLE))
        hugemem_enable();
    /* the injection chain reads the same configuration */
    setenv("POSTERN_CONFIG_DIR", config_dir(), 1);
    signal(SIGPIPE, SIG_IGN);

    io_init(s, 0, 1);
    s->where = "CONNECT";
    s->protocol = "SMTP";
    s->myhostname = conf_str("myhostname");
    s->message_size_limit = conf_size("message_size_limit");
    s->line_length_limit = conf_int("line_length_limit");
    if (s->line_length_limit < 512)
        s->line_length_limit = 512;     /* RFC 5321: a command line may be 512 bytes */
    s->recipient_limit = conf_int("smtpd_recipient_limit");
    s->error_sleep_time = conf_time("smtpd_error_sleep_time");
    s->soft_error_limit = conf_int("smtpd_soft_error_limit");
    s->helo_required = conf_bool("smtpd_helo_required");
    /* a zygote postern-accept started after a crash, or a session it
     * started while none ran: the first zygote's file keeper opens the
     * TLS key for it (filekeeper.h) */
    filekeeper_inherit();
    /* certificates and keys are read here, before a zygote forks;
     * sendmail -bs (-S) speaks on a pipe, without TLS */
    if (!s->local_submission)
        tls_server_init(s);
    s->bare_newline_reject_code = (int)conf_int("smtpd_forbid_bare_newline_reject_code");

    s->policy = policy_open(s);
    /* started as a zygote by postern-accept -z: the configuration is read
     * and the restriction lists and mynetworks are ready; each connection
     * is served by a fork of this process from here on */
    if (getenv(ZYGOTE_FD_VARIABLE)) {
        policy_prepare(s);
        destination_prepare();  /* the address classes' lists and tables */
        (void)discarded_ehlo_keywords();
        milter_prepare();
        submit_init();          /* rewrite's settings, shared by the children */
        if (conf_int("smtpd_client_auth_rate_limit") > 0
            || conf_int("smtpd_client_message_rate_limit") > 0
            || conf_int("smtpd_client_recipient_rate_limit") > 0
            || conf_int("smtpd_client_new_tls_session_rate_limit") > 0)
            client_rate_init(); /* the counts all children share */
        tls_zygote_prepare();
        peer_prepare();         /* the hosts file */
        config_expand_all();    /* what each session reads, expanded once */
        /* the code and constants in huge pages, which each child shares
         * whole: a TLS session touches most of OpenSSL (hugetext.h) */
        if (hugetext_move() < 0)
            msg_warn_errno("cannot move the program's code into huge pages");
        /* SIGHUP reads the certificates again; the ticket keys rotate;
         * a changed hosts file is read again */
        struct zygote_hooks hooks = {.reload = tls_reload, .tick = tls_tickets_rotate,
                                     .refresh = peer_refresh, .changed = tables_changed};
        hooks.tick_seconds = tls_tickets_interval() > 0 ? (unsigned)tls_tickets_interval() : 0;
        /* children forked ahead, each waiting for one connection */
        hooks.pool = (unsigned)conf_int("smtpd_prefork_count");
        zygote_set_hooks(&hooks);
        zygote_pid = getpid();
        zygote_wait();
    }
    filekeeper_forget();        /* a session never reaches the key's keeper */
    /* the lookup service's answers are kept for a transaction: its checks
     * at RCPT and rewriting at the end of DATA ask the same questions */
    map_memo_enable();
    /* postern-accept says when the service is at its process limit: the
     * ${stress?...} defaults (shorter timeouts, fewer errors) apply */
    (void)config_apply_stress();
    io_limits(s);
    s->hard_error_limit = conf_int("smtpd_hard_error_limit");
    s->junk_limit = conf_int("smtpd_junk_command_limit");
    peer_identify(s);
    s->bare_newline = bare_newline_mode(s);
    auth_prepare(s);
    s->xclient_allowed = policy_client_in(s, "smtpd_authorized_xclient_hosts");
    s->xforward_allowed = policy_client_in(s, "smtpd_authorized_xforward_hosts");
    msg_info("connect from %s", s->client.namaddr);
    if (s->tls_wrappermode)
        tls_wrapper_start(s);
    const char *refusal = milter_connect(s);
    if (refusal && s->hangup) {         /* a milter said 421: Postfix's words */
        reply(s, "421 %s Service unavailable - try again later", s->myhostname);
        session_end(s, 0);
    }
    if (refusal && refusal[0] == '5')   /* the refusal answers MAIL */
        reply(s, "554 %s ESMTP not accepting connections", s->myhostname);
    else
        session_greet(s);
    command_loop(s);
    return 0;
}
