/* postern-pipe - delivery to a command, as Postfix's pipe(8): the
 * transports of master.cf whose command is `pipe` (seed 004's
 *     maildrop unix - n n - - pipe flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
 * ), started by qmgr (or by postern-spawn for privileged_transports) as
 *
 *     postern-pipe -S -n SERVICE [-c DIR] [-o name=value]...
 *
 * or from a shell: postern-pipe -n SERVICE -f SENDER RECIPIENT... < message.
 * Per request: the argv built from the service's argv= without a shell
 * (argv.c), the message as the flags say (message.c) in a memory file on
 * the command's stdin, the command run by lib/mail/pipecommand.c as user=
 * (for good, in a child; never root), in directory= or /, with a minimal
 * environment (export_environment, PATH) and SERVICE_time_limit (else
 * command_time_limit); its exit status is every recipient's result:
 * "delivered via SERVICE service", or Postfix's reason with the command's
 * output (sysexits: EX_TEMPFAIL defers, EX_NOUSER bounces, ...).
 * postern-pipe(8) says the rest. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "pipe.h"
#include "pipecommand.h"
#include "unixuser.h"
#include "xalloc.h"

static const char *service_name;

/* -n SERVICE: the master.cf service this runner delivers for. */
static int take_option(int opt, const char *arg)
{
    if (opt != 'n')
        return 0;
    service_name = arg;
    return 1;
}

/* What stays from request to request. */
struct pipe_setup {
    struct pipe_service service;
    int broken;                 /* a configuration error: defer everything */
    int lookup_failed;          /* broken by a table that may answer later */
    struct strbuf broken_why;
    uid_t uid;
    gid_t gid;
    int switch_ids;             /* running as root: the command takes user= */
    struct strlist env;         /* the command's environment */
};

/* Find user= (and its group) in the passwd and group tables. */
static void find_user(struct pipe_setup *setup)
{
    struct strbuf err = STRBUF_INIT;
    struct maplist *passwd = maplist_open(UNIX_PASSWD_TABLE, &err);
    struct unix_user pw;
    int r = passwd ? unix_user_lookup(passwd, setup->service.user, &pw) : MAP_RETRY;
    uid_t owner_uid = (uid_t)-1;
    if (r == MAP_FOUND) {
        setup->uid = pw.uid;
        setup->gid = pw.gid;
        unix_user_free(&pw);
        /* the mail system owner, which user= may not name (below) */
        const char *owner = conf_str("mail_owner");
        if (strcmp(owner, setup->service.user) == 0)
            owner_uid = setup->uid;
        else if (unix_user_lookup(passwd, owner, &pw) == MAP_FOUND) {
            owner_uid = pw.uid;
            unix_user_free(&pw);
        }
    } else {
        setup->broken = 1;
        setup->lookup_failed = r != MAP_NOTFOUND;
        strbuf_printf(&setup->broken_why, "%s: user %s: %s", UNIX_PASSWD_TABLE,
                      setup->service.user,
                      r == MAP_NOTFOUND ? "unknown user" : err.len ? err.s : "lookup failed");
    }
    maplist_close(passwd);
    if (!setup->broken && setup->service.group) {
        strbuf_reset(&err);
        struct maplist *group = maplist_open(UNIX_GROUP_TABLE, &err);
        r = group ? unix_group_lookup(group, setup->service.group, &setup->gid) : MAP_RETRY;
        if (r != MAP_FOUND) {
            setup->broken = 1;
            setup->lookup_failed = r != MAP_NOTFOUND;
            strbuf_printf(&setup->broken_why, "%s: group %s: %s", UNIX_GROUP_TABLE,
                          setup->service.group,
                          r == MAP_NOTFOUND ? "unknown group" : err.len ? err.s : "lookup failed");
        }
        maplist_close(group);
    }
    strbuf_free(&err);
    if (setup->broken)
        return;
    /* Postfix: "user= command-line attribute specifies root privileges" */
    if (setup->uid == 0 || setup->gid == 0) {
        setup->broken = 1;
        strbuf_printf(&setup->broken_why, "service %s: user= attribute specifies root privileges",
                      service_name);
        return;
    }
    setup->switch_ids = geteuid() == 0;
    /* Postfix: "user= command-line attribute specifies mail system
     * owner"; a commands run as the owner could rewrite the queue.  An
     * instance run by one user as itself has no other choice. */
    if (setup->switch_ids && setup->uid == owner_uid) {
        setup->broken = 1;
        strbuf_printf(&setup->broken_why,
                      "service %s: user= attribute specifies mail system owner %s",
                      service_name, setup->service.user);
        return;
    }
    if (!setup->switch_ids && setup->uid != geteuid()) {
        setup->broken = 1;
        strbuf_printf(&setup->broken_why,
                      "cannot run the command as user %s: this postern-pipe runs as uid %lu, not as root",
                      setup->service.user, (unsigned long)geteuid());
    }
}

/* The command's environment: export_environment and a PATH. */
static void build_env(struct strlist *env)
{
    struct strlist names = STRLIST_INIT;
    conf_list("export_environment", &names);
    struct strbuf item = STRBUF_INIT;
    for (size_t i = 0; i < names.count; i++) {
        const char *value = getenv(names.item[i]);
        if (!value || strcmp(names.item[i], "PATH") == 0)
            continue;
        strbuf_reset(&item);
        strbuf_printf(&item, "%s=%s", names.item[i], value);
        strlist_add(env, strbuf_str(&item));
    }
    strlist_add(env, "PATH=/usr/bin:/bin");
    strbuf_free(&item);
    strlist_free(&names);
}

static void setup_init(struct pipe_setup *setup)
{
    memset(setup, 0, sizeof *setup);
    if (pipe_service_read(service_name, &setup->service, &setup->broken_why) != 0)
        setup->broken = 1;
    else
        find_user(setup);
    if (setup->broken)
        msg_warn("%s", strbuf_str(&setup->broken_why));
    build_env(&setup->env);
    /* the command may stop reading its stdin early */
    signal(SIGPIPE, SIG_IGN);
}

static void setup_free(struct pipe_setup *setup)
{
    pipe_service_free(&setup->service);
    strbuf_free(&setup->broken_why);
    strlist_free(&setup->env);
}

/* A list as the NULL-ended vector exec wants (the strings stay the list's). */
static char **vector(const struct strlist *list)
{
    char **v = xcalloc(list->count + 1, sizeof *v);
    memcpy(v, list->item, list->count * sizeof *v);
    return v;
}

/* Every recipient of the request gets the same result. */
static void result_all(struct runner_request *req, const char *dsn, const char *text)
{
    for (size_t i = 0; i < req->rcpt_count; i++)
        runner_result(req, i, dsn, "%s", text);
}

/* Deliver one request: one run of the command for all its recipients. */
static void deliver(struct pipe_setup *setup, struct runner_request *req)
{
    const struct pipe_service *service = &setup->service;
    if (setup->broken && setup->lookup_failed) {
        /* a table that failed at start may answer now: ask again rather
         * than defer everything for the runner's life */
        setup->broken = setup->lookup_failed = 0;
        strbuf_reset(&setup->broken_why);
        find_user(setup);
    }
    if (setup->broken) {
        msg_warn("%s: deferring: %s", req->queue_id[0] ? req->queue_id : "NOQUEUE",
                 strbuf_str(&setup->broken_why));
        result_all(req, "4.3.5", "mail system configuration error");
        return;
    }
    if (service->size_limit && req->msg_length > service->size_limit) {
        result_all(req, "5.2.3", "message too large");
        return;
    }
    if (req->rcpt_count > 1 && (service->flags & (PIPE_FLAG_DELIVERED | PIPE_FLAG_ORIG))) {
        msg_warn("pipe flag `D' or `O' requires %s_destination_recipient_limit = 1",
                 service->name);
        result_all(req, "4.3.5", "mail system configuration error");
        return;
    }
    if (service->flags & PIPE_FLAG_DELIVERED) {
        int loop = pipe_delivered_to(req, req->rcpt[0].address);
        if (loop < 0) {
            result_all(req, "4.3.0", "cannot read the message");
            return;
        }
        if (loop) {
            runner_result(req, 0, "5.4.6", "mail forwarding loop for %s", req->rcpt[0].address);
            return;
        }
    }
    /* an address that begins with '-' would reach the command as an
     * option (Postfix's allow_min_user = no, its default): refused */
    int min_user = req->sender[0] == '-';
    for (size_t i = 0; i < req->rcpt_count && !min_user; i++)
        min_user = req->rcpt[i].address[0] == '-';
    if (min_user) {
        result_all(req, "5.1.3", "bad address syntax: an address may not begin with '-' "
                                 "where it reaches a command's arguments");
        return;
    }
    struct strlist argv = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT, dsn = STRBUF_INIT, text = STRBUF_INIT, shown = STRBUF_INIT;
    struct pipe_command_status status = PIPE_COMMAND_STATUS_INIT;
    int input = -1;
    if (pipe_argv(service, req, &argv, &err) != 0) {
        msg_warn("%s", strbuf_str(&err));
        result_all(req, "4.3.5", "mail system configuration error");
        goto out;
    }
    input = memfd_create("postern-pipe-input", MFD_CLOEXEC);
    if (input < 0 || pipe_message(service, req, input) != 0 || lseek(input, 0, SEEK_SET) != 0) {
        strbuf_printf(&err, "cannot copy the message for the command: %s", strerror(errno));
        result_all(req, "4.3.0", strbuf_str(&err));
        goto out;
    }
    log_printable(&shown, argv.item[0], 200);
    char **argv_vec = vector(&argv), **env_vec = vector(&setup->env);
    struct pipe_command cmd = {
        .argv = argv_vec, .env = env_vec, .input_fd = input,
        .switch_ids = setup->switch_ids, .uid = setup->uid, .gid = setup->gid,
        .cwd = service->directory, .cwd_required = 1, .time_limit = service->time_limit,
    };
    int ran = pipe_command_run(&cmd, &status, &err);
    free(argv_vec);
    free(env_vec);
    if (ran != 0) {
        result_all(req, "4.3.0", strbuf_str(&err));
        goto out;
    }
    pipe_command_verdict(&status, shown.s, &dsn, &text);
    if (strcmp(strbuf_str(&dsn), "2.0.0") == 0) {
        strbuf_reset(&text);
        strbuf_printf(&text, "delivered via %s service", service->name);
    }
    result_all(req, strbuf_str(&dsn), strbuf_str(&text));
out:
    if (input >= 0)
        close(input);
    strlist_free(&argv);
    pipe_command_status_free(&status);
    strbuf_free(&err);
    strbuf_free(&dsn);
    strbuf_free(&text);
    strbuf_free(&shown);
}

int main(int argc, char **argv)
{
    static const struct runner_options options = {.letters = "n:", .take = take_option};
    struct runner_request req;
    runner_start(argc, argv, "pipe", &options, &req);
    if (!service_name) {
        fprintf(stderr, "postern-pipe: -n SERVICE is required (the master.cf pipe service)\n");
        return EX_USAGE;
    }
    struct pipe_setup setup;
    setup_init(&setup);
    do
        deliver(&setup, &req);
    while (runner_next(&req));
    setup_free(&setup);
    return runner_finish(&req);
}
