/* postern-accept - accept connections and start one program per connection
 * (postern-accept(8)): the connection on fd 0 and 1, the client in the UCSPI
 * variables, per-client connection count and rate limits and a process
 * limit, as Postfix's master and anvil give smtpd.
 *
 *   postern-accept [-c DIR] [-o name=value]... [-u USER[:GROUP]] [-l LIMIT]
 *                  [-s SERVICE] [-b BACKLOG] [-p PIDFILE] [-v] [-z]
 *                  [ADDRESS...] -- PROGRAM [ARG...]
 *   postern-accept -i [-c DIR] [-u USER[:GROUP]] -- PROGRAM [ARG...]
 *
 * Without ADDRESS, the listening sockets come from systemd (sd_listen_fds).
 * With -i the connection is already on fd 0 and 1 (inetd, systemd's
 * Accept=yes): it sets the UCSPI variables, drops privileges and execs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "accept.h"
#include "config.h"
#include "fdio.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define DEFAULT_BACKLOG 1024

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-accept [-c DIR] [-o name=value]... [-u USER[:GROUP]] "
            "[-l LIMIT] [-s SERVICE] [-b BACKLOG] [-p PIDFILE] [-v] [-z] [ADDRESS...] -- PROGRAM [ARG...]\n"
            "       postern-accept -i [-c DIR] [-o name=value]... [-u USER[:GROUP]] -- PROGRAM [ARG...]\n"
            "  ADDRESS: host:port, [IPv6]:port, *:port, or /path/of/unix.socket;\n"
            "  none: the sockets systemd passes (sd_listen_fds)\n");
    exit(2);
}

/* A positive decimal number from an option, else usage. */
static long number_option(const char *text, const char *what)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (!*text || *end || errno || n < 1 || n > INT_MAX) {
        fprintf(stderr, "postern-accept: %s: not a positive number: %s\n", what, text);
        usage();
    }
    return n;
}

/* The program's path: as given when it has a slash, else found in PATH
 * once, here, rather than per connection. */
static char *resolve_program(const char *name)
{
    if (strchr(name, '/')) {
        if (access(name, X_OK) < 0)
            msg_fatal_errno("%s", name);
        return xstrdup(name);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    struct strbuf candidate = STRBUF_INIT;
    for (const char *dir = path; ; ) {
        const char *colon = strchr(dir, ':');
        size_t len = colon ? (size_t)(colon - dir) : strlen(dir);
        strbuf_reset(&candidate);
        if (len == 0)
            strbuf_puts(&candidate, ".");
        else
            strbuf_append(&candidate, dir, len);
        strbuf_printf(&candidate, "/%s", name);
        if (access(candidate.s, X_OK) == 0)
            return strbuf_detach(&candidate);
        if (!colon)
            break;
        dir = colon + 1;
    }
    msg_fatal("%s: not found in PATH", name);
}

/* Root must say whom the programs run as: not mail_owner (it owns the
 * queue, and smtpd must not touch queued mail), nor root by accident. */
static void require_user_when_root(const char *user)
{
    if (!user && geteuid() == 0)
        msg_fatal("running as root: give -u USER, the unprivileged user the programs run as "
                  "(not mail_owner, which owns the queue), or -u root to keep root");
}

/* Write our pid to a file atomically (a temporary file renamed over it). */
static void write_pid_file(const char *path)
{
    struct strbuf tmp = STRBUF_INIT, text = STRBUF_INIT;
    strbuf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    strbuf_printf(&text, "%ld\n", (long)getpid());
    int fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, text.s, text.len) < 0 || close(fd) < 0
        || rename(tmp.s, path) < 0)
        msg_fatal_errno("write pid file %s", path);
    strbuf_free(&tmp);
    strbuf_free(&text);
}

/* Descriptors 0, 1 and 2 open, so that no connection is ever accepted onto
 * them (dup2 onto itself would keep close-on-exec). */
static void ensure_standard_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int null = open("/dev/null", O_RDWR);
            if (null < 0)
                exit(EX_TEMPFAIL);
            if (null != fd)
                exit(EX_TEMPFAIL);
        }
    }
}

/* -i under systemd-socket-activate --accept (without --inetd) or a unit
 * without StandardInput=socket: the connection is fd 3 (LISTEN_FDS=1);
 * move it to fd 0 and 1. */
static void take_systemd_connection(void)
{
    if (!getenv("LISTEN_FDS"))
        return;
    int n = sd_listen_fds(1);
    if (n != 1 || sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 0) <= 0)
        msg_fatal("-i: expected one connected socket from systemd (LISTEN_FDS=1), got %d", n);
    if (dup2(SD_LISTEN_FDS_START, 0) < 0 || dup2(SD_LISTEN_FDS_START, 1) < 0)
        msg_fatal_errno("dup2");
    close(SD_LISTEN_FDS_START);
}

int main(int argc, char **argv)
{
    const char *user = NULL;
    const char *service = "smtp";
    long process_limit = 0;
    long backlog = DEFAULT_BACKLOG;
    int one_connection = 0;
    int zygote = 0;
    const char *pid_file = NULL;
    int opt;

    ensure_standard_fds();
    log_open("accept", 0);
    while ((opt = getopt(argc, argv, "+b:c:il:o:p:s:u:vz")) != -1) {
        if (config_common_option(opt, optarg))
            continue;
        switch (opt) {
        case 'b':
            backlog = number_option(optarg, "-b");
            break;
        case 'i':
            one_connection = 1;
            break;
        case 'l':
            process_limit = number_option(optarg, "-l");
            break;
        case 'p':
            pid_file = optarg;
            break;
        case 's':
            service = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'z':
            zygote = 1;
            break;
        default:
            usage();
        }
    }
    /* ADDRESS... -- PROGRAM ARG... (getopt ate the "--" when no address came) */
    int addresses_start = optind, addresses_end = -1, program_start;
    for (int i = optind; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            addresses_end = i;
            break;
        }
    if (addresses_end >= 0) {
        program_start = addresses_end + 1;
    } else if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
        addresses_end = optind;
        program_start = optind;
    } else {
        usage();
    }
    if (program_start >= argc)
        usage();

    /* the program reads the same main.cf */
    setenv("POSTERN_CONFIG_DIR", config_dir(), 1);

    if (one_connection) {
        /* nothing of main.cf is needed here, and reading it per connection
         * would repeat its warnings for every client */
        if (addresses_end > addresses_start)
            usage();
        char *program = resolve_program(argv[program_start]);
        take_systemd_connection();
        export_connection_env(0);
        require_user_when_root(user);
        if (user)
            drop_privileges(user);
        execv(program, argv + program_start);
        msg_fatal_temp_errno("exec %s", program);
    }

    config_load(0);
    require_user_when_root(user);
    struct listeners listeners = {NULL, 0};
    if (addresses_end > addresses_start) {
        for (int i = addresses_start; i < addresses_end; i++)
            listen_address(&listeners, argv[i], (int)backlog);
    } else if (listen_systemd(&listeners) == 0) {
        msg_fatal("no address given and no sockets from systemd (LISTEN_FDS)");
    }

    struct accept_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.service = service;
    settings.argv = argv + program_start;
    settings.program = resolve_program(argv[program_start]);
    settings.zygote = zygote;
    settings_load(&settings, process_limit);

    /* written once the sockets listen (its presence says "ready"), and
     * before privileges go, as Postfix's master writes its pid file */
    if (pid_file)
        write_pid_file(pid_file);
    child_env_init();
    spawn_init();
    /* the zygote starts with our privileges, reads what only they may read
     * (smtpd's TLS key) and drops to -u's ids itself before any client
     * (lib/util/zygote.h); its children never had more */
    char zygote_user[64];
    if (zygote && user) {
        uid_t uid;
        gid_t gid;
        user_ids(user, &uid, &gid);
        snprintf(zygote_user, sizeof zygote_user, "%ld:%ld", (long)uid, (long)gid);
        settings.zygote_user = zygote_user;
    }
    if (zygote) {
        /* a copy of each connection handed to a child forked ahead is
         * kept until the child's end: a descriptor per session */
        struct rlimit files;
        if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
            files.rlim_cur = files.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &files);
        }
        zygote_start(&settings);
    }
    if (user)
        drop_privileges(user);

    for (size_t i = 0; i < listeners.count; i++)
        msg_info("listening on %s for service %s: %s", listeners.item[i].name, service,
                 settings.program);
    int rc = serve(&listeners, &settings, process_limit);
    if (pid_file)
        (void)unlink(pid_file);
    free(settings.program);
    return rc;
}
