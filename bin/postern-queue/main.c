/* main.c - postern-queue's command line: one injection (the default; the
 * qmail-queue contract of doc/injection.md) or, with -S, the queue service
 * that runs injections for clients of a unix socket (service.c).  Here too
 * the rules of a set-group-id injector (doc/privileges.md): a caller that
 * names a configuration the administrator did not list loses the group
 * before it is honoured. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "queue.h"
#include "strbuf.h"
#include "unixuser.h"

#define TRUSTED_LOOKUP_ATTEMPTS 10      /* one a second */

/* Running set-group-id for a user other than root: give up the group for
 * good, so the caller gets nothing it could not do itself (a self-contained
 * instance runs this way). */
static void drop_group(void)
{
    gid_t gid = getgid();
    if (setresgid(gid, gid, gid) < 0 || getegid() != gid)
        msg_fatal_temp("cannot drop the set-group-id privilege");
}

/* 1 when dir is listed in alternate_config_directories or
 * multi_instance_directories of the configuration loaded now. */
static int config_dir_trusted(const char *dir)
{
    static const char *const lists[] = {
        "alternate_config_directories", "multi_instance_directories",
    };
    int trusted = 0;
    for (size_t i = 0; i < 2 && !trusted; i++) {
        struct strlist dirs = STRLIST_INIT;
        conf_list(lists[i], &dirs);
        for (size_t j = 0; j < dirs.count && !trusted; j++)
            trusted = strcmp(dirs.item[j], dir) == 0;
        strlist_free(&dirs);
    }
    return trusted;
}

/* Load the configuration.  Unprivileged: what the caller names.  Set-group-id
 * for a user other than root, as Postfix's postdrop: the default main.cf;
 * another directory (-c, POSTERN_CONFIG_DIR) keeps the group only when the
 * default main.cf lists it in alternate_config_directories or
 * multi_instance_directories; otherwise, and with any -o, the group is
 * dropped first and the caller's choice honoured with the caller's rights. */
static void load_config(int privileged, const char *chosen_dir, struct strlist *overrides)
{
    const char *env = getenv("POSTERN_CONFIG_DIR");
    const char *wanted = chosen_dir ? chosen_dir : env && *env ? env : NULL;
    if (privileged && overrides->count > 0) {
        drop_group();
        privileged = 0;
    }
    if (privileged && wanted && strcmp(wanted, DEF_CONFIG_DIR) != 0) {
        config_set_dir(DEF_CONFIG_DIR);
        config_load(1);
        if (!config_dir_trusted(wanted))
            drop_group();
    } else if (privileged) {
        wanted = DEF_CONFIG_DIR;        /* the environment is not trusted */
    }
    if (wanted)
        config_set_dir(wanted);
    for (size_t i = 0; i < overrides->count; i++)
        config_add_override(overrides->item[i]);
    config_load(0);
}

static _Noreturn void usage(void);

/* -t: a uid, or a user name looked up through the lookup service (a
 * static program calls no NSS: proxy:unix:passwd.byname, as the delivery
 * agents do), so that a unit can name smtpd's user.  The service may be
 * starting with us (socket activation): a "try again" is asked again for
 * a while, then the start fails (systemd restarts us). */
static uid_t trusted_uid(const char *user)
{
    char *end;
    long number = strtol(user, &end, 10);
    if (end != user && !*end) {
        if (number < 1)
            usage();
        return (uid_t)number;
    }
    struct strbuf err = STRBUF_INIT;
    struct maplist *passwd = maplist_open(UNIX_PASSWD_TABLE, &err);
    if (!passwd)
        msg_fatal_temp("-t %s: %s", user, strbuf_str(&err));
    struct unix_user pw;
    int r = MAP_RETRY;
    for (int attempt = 0; attempt < TRUSTED_LOOKUP_ATTEMPTS && r == MAP_RETRY; attempt++) {
        if (attempt)
            sleep(1);
        r = unix_user_lookup(passwd, user, &pw);
    }
    maplist_close(passwd);
    strbuf_free(&err);
    if (r == MAP_NOTFOUND)
        msg_fatal("-t %s: no such user (%s)", user, UNIX_PASSWD_TABLE);
    if (r != MAP_FOUND)
        msg_fatal_temp("-t %s: the lookup service does not answer (%s)", user, UNIX_PASSWD_TABLE);
    uid_t uid = pw.uid;
    unix_user_free(&pw);
    if (uid == 0)
        msg_fatal("-t %s: root is trusted anyway", user);
    return uid;
}

/* Print the usage and exit. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-queue [-c DIR] [-o name=value]... [-v]\n"
            "  message on fd 0, envelope records on fd 1, status on fd 3\n"
            "       postern-queue -S [-m MODE] [-u UID:GID] [-t UID|USER] [-c DIR] [-o name=value]... [-v]\n"
            "  the queue service on queue_directory/public/queue\n");
    exit(INJECT_EXIT_INTERNAL);
}

int main(int argc, char **argv)
{
    int service = 0, listen_fd = -1;
    mode_t socket_mode = 0600;
    long run_uid = -1, run_gid = -1;
    const char *trusted_user = NULL;
    for (int i = 1; i < argc && !service; i++)       /* before anything opens a descriptor */
        service = strcmp(argv[i], "-S") == 0;
    if (service) {
        listen_fd = service_prepare_fds();
    } else {
        /* a caller may start us with 0, 1 or 2 closed, hoping that a queue
         * file becomes one of them: fill them with /dev/null first (fd 3,
         * the status channel, is looked at by inject_run as it is) */
        for (int fd = 0; fd <= 2; fd++)
            if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_RDWR) != fd)
                _exit(INJECT_EXIT_INTERNAL);
    }
    umask(007);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);       /* a file size limit is a write error (EFBIG) */
    log_open("postern-queue", 0);
    log_exit_codes(INJECT_EXIT_NO_MEMORY, INJECT_EXIT_INTERNAL);
    int privileged = getegid() != getgid() && getuid() != 0;
    const char *chosen_dir = NULL;
    struct strlist overrides = STRLIST_INIT;
    int opt;
    while ((opt = getopt(argc, argv, "c:m:o:St:u:v")) != -1) {
        if (opt == 'c') {
            chosen_dir = optarg;
        } else if (opt == 'o') {
            strlist_add(&overrides, optarg);
        } else if (opt == 'S') {
            if (!service)
                usage();            /* -S must be an argument of its own */
            /* the service is no set-group-id program: a user who starts
             * it gets only the rights the user has */
            if (privileged)
                drop_group();
            privileged = 0;
        } else if (opt == 'm' && service) {
            char *end;
            long mode = strtol(optarg, &end, 8);
            if (*end || end == optarg || mode < 0 || mode > 0777)
                usage();
            socket_mode = (mode_t)mode;
        } else if (opt == 't' && service) {
            trusted_user = optarg;
        } else if (opt == 'u' && service) {
            /* numbers: a static program looks no name up */
            char *end;
            run_uid = strtol(optarg, &end, 10);
            if (end == optarg || *end != ':' || run_uid < 1)
                usage();
            char *gid_text = end + 1;
            run_gid = strtol(gid_text, &end, 10);
            if (end == gid_text || *end || run_gid < 0)
                usage();
        } else if (!config_common_option(opt, optarg)) {
            usage();
        }
    }
    if (optind != argc)
        usage();
    load_config(privileged, chosen_dir, &overrides);
    strlist_free(&overrides);
    if (trusted_user)
        service_trust(trusted_uid(trusted_user));
    if (service)
        service_run(listen_fd, socket_mode, (uid_t)run_uid, (gid_t)run_gid);
    if (privileged)
        inject_record_caller(getuid());
    inject_run();
}
