/* postern-spawn - the runner service (DESIGN interface 4, "Services behind
 * sockets"; postern-spawn(8), doc/delivery.md "Runner services"): how qmgr,
 * which holds no privilege, reaches a runner that needs other ids, as
 * qmail-lspawn does for qmail-local.
 *
 *   postern-spawn [-c DIR] [-o name=value]... [-v] TRANSPORT
 *
 * It listens on queue_directory/private/TRANSPORT (the socket systemd
 * passes, postern-TRANSPORT.socket, or one it binds itself), accepts only
 * connections whose peer (SO_PEERCRED) is mail_owner, and starts for each
 * one the transport's runner, daemon_directory/postern-NAME, in reuse mode
 * (-S) with the connection as its request channel on fd 3: qmgr then
 * speaks the same protocol as with a runner it started itself.  The runner
 * runs with this service's ids (root in a system install) and switches to
 * the mailbox owner per delivery from its own table lookups; nothing of a
 * request decides an id.  Dynamically linked (getpwnam for mail_owner);
 * the runners it starts stay static. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "runner.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#define LISTEN_BACKLOG      128
#define STOP_GRACE_SECONDS  10      /* busy runners' time to finish after SIGTERM */
#define EXIT_USAGE          64      /* EX_USAGE */

extern char **environ;

static struct {
    const char *transport;
    char *program;                  /* daemon_directory/postern-NAME */
    uid_t owner_uid;                /* mail_owner: the only peer we serve */
    gid_t owner_gid;
    struct unix_service svc;        /* the listening socket and pid file */
    int signal_fd;
    size_t limit, children;
    pid_t *pids;                    /* the running runners (limit slots, 0 free) */
    int stopping;
    char **argv;                    /* the runner's, without the program */
    int pipe_service;               /* master.cf's pipe: postern-pipe -n TRANSPORT */
} spawn = {.svc = {.listen_fd = -1, .pid_fd = -1}, .signal_fd = -1};

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-spawn [-c DIR] [-o name=value]... [-v] TRANSPORT\n"
            "  serves queue_directory/private/TRANSPORT: one runner\n"
            "  (daemon_directory/postern-NAME -S) per connection from mail_owner\n");
    exit(EXIT_USAGE);
}

/* A transport name that can be a file name: letters, digits, '-', '_', '.'
 * not first. */
static int transport_name_ok(const char *name)
{
    if (!*name || *name == '.' || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* mail_owner's ids: the peer we serve, and who owns a socket we bind. */
static void find_owner(void)
{
    const char *name = conf_str("mail_owner");
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw)
        msg_fatal_temp("mail_owner %s: %s", name, errno ? strerror(errno) : "no such user");
    spawn.owner_uid = pw->pw_uid;
    spawn.owner_gid = pw->pw_gid;
}

/* Make queue_directory/NAME, mode 0700, owned by mail_owner when we run
 * as root (qmgr, mail_owner, writes its own pid file there too); one that
 * exists must be such a directory, not a link, and no one else's: whoever
 * could write in private/ could put another socket where qmgr connects. */
static void make_queue_dir(const char *queue_dir, const char *name)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", queue_dir, name);
    uid_t owner = geteuid() == 0 ? spawn.owner_uid : geteuid();
    if (mkdir(path.s, 0700) == 0) {
        if (geteuid() == 0 && chown(path.s, spawn.owner_uid, spawn.owner_gid) != 0)
            msg_fatal_temp_errno("chown %s", path.s);
    } else if (errno != EEXIST) {
        msg_fatal_temp_errno("mkdir %s", path.s);
    }
    struct stat st;
    if (lstat(path.s, &st) != 0)
        msg_fatal_temp_errno("lstat %s", path.s);
    if (!S_ISDIR(st.st_mode))
        msg_fatal_temp("%s is not a directory", path.s);
    if (st.st_uid != owner)
        msg_fatal_temp("%s is owned by uid %lu, not by %s (uid %lu)", path.s,
                       (unsigned long)st.st_uid, geteuid() == 0 ? conf_str("mail_owner") : "us",
                       (unsigned long)owner);
    if (st.st_mode & 077)
        msg_fatal_temp("%s has mode %04o: group and others must have no access (0700)", path.s,
                       (unsigned)(st.st_mode & 07777));
    strbuf_free(&path);
}

/* Take the socket systemd passed, or lock queue_directory/pid/spawn.TRANSPORT.pid
 * (a second service for the same transport and queue refuses to run) and
 * bind queue_directory/private/TRANSPORT, mode 0600, owned by mail_owner
 * (private/ made 0700 for mail_owner when missing, as Postfix's). */
static void open_service(const char *queue_dir)
{
    struct strbuf pid_path = STRBUF_INIT, socket_path = STRBUF_INIT, err = STRBUF_INIT;
    if (!getenv("LISTEN_FDS")) {
        make_queue_dir(queue_dir, "pid");
        make_queue_dir(queue_dir, "private");
    }
    strbuf_printf(&pid_path, "%s/pid/spawn.%s.pid", queue_dir, spawn.transport);
    strbuf_printf(&socket_path, "%s/private/%s", queue_dir, spawn.transport);
    int root = geteuid() == 0;
    if (unix_service_open_owned(&spawn.svc, pid_path.s, socket_path.s, 0600,
                                root ? spawn.owner_uid : (uid_t)-1,
                                root ? spawn.owner_gid : (gid_t)-1, LISTEN_BACKLOG, &err) != 0)
        msg_fatal_temp("%s: %s", spawn.transport, err.s);
    strbuf_free(&pid_path);
    strbuf_free(&socket_path);
    strbuf_free(&err);
}

/* The runner's argv: PROGRAM -S [-n TRANSPORT] -c DIR [-o name=value]... [-v]. */
static void build_runner_argv(const struct strlist *overrides)
{
    size_t n = 0;
    spawn.argv = xcalloc(8 + 2 * overrides->count, sizeof *spawn.argv);
    spawn.argv[n++] = spawn.program;
    spawn.argv[n++] = (char *)"-S";
    if (spawn.pipe_service) {
        spawn.argv[n++] = (char *)"-n";
        spawn.argv[n++] = (char *)spawn.transport;
    }
    spawn.argv[n++] = (char *)"-c";
    spawn.argv[n++] = (char *)config_dir();
    for (size_t i = 0; i < overrides->count; i++) {
        spawn.argv[n++] = (char *)"-o";
        spawn.argv[n++] = overrides->item[i];
    }
    if (log_verbose())
        spawn.argv[n++] = (char *)"-v";
}

/* Start the runner for one accepted connection: fd 3 the connection, fd 0
 * and 1 /dev/null, no blocked signals, SIGPIPE default (as qmgr starts
 * runners). */
static void start_runner(int conn)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, conn, 3);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, spawn.program, &actions, &attr, spawn.argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        /* qmgr sees the connection closed: its request is deferred */
        errno = rc;
        msg_warn_errno("cannot start %s", spawn.program);
        return;
    }
    for (size_t i = 0; i < spawn.limit; i++)
        if (spawn.pids[i] == 0) {
            spawn.pids[i] = pid;
            break;
        }
    spawn.children++;
    msg_debug("%s: started %s pid %ld", spawn.transport, spawn.program, (long)pid);
}

/* Accept waiting connections while there is room: mail_owner's get a
 * runner, anyone else's are closed. */
static void accept_connections(void)
{
    while (spawn.children < spawn.limit) {
        struct ucred cred;
        struct strbuf err = STRBUF_INIT;
        int conn = unix_accept(spawn.svc.listen_fd, SOCK_CLOEXEC, &cred, &err);
        if (conn < 0) {
            if (err.len)
                msg_warn("%s: %s", spawn.transport, err.s);
            strbuf_free(&err);
            return;
        }
        if (cred.uid != spawn.owner_uid)
            msg_warn("%s: refused a connection from uid %lu pid %ld: not mail_owner %s",
                     spawn.transport, (unsigned long)cred.uid, (long)cred.pid,
                     conf_str("mail_owner"));
        else
            start_runner(conn);
        close(conn);
    }
}

/* Reap runners that ended. */
static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < spawn.limit; i++)
            if (spawn.pids[i] == pid)
                spawn.pids[i] = 0;
        spawn.children--;
        if (WIFSIGNALED(status))
            msg_warn("%s: %s pid %ld killed by signal %d", spawn.transport, spawn.program,
                     (long)pid, WTERMSIG(status));
    }
}

/* Send sig to every runner still running. */
static void signal_runners(int sig)
{
    for (size_t i = 0; i < spawn.limit; i++)
        if (spawn.pids[i] > 0 && kill(spawn.pids[i], sig) != 0 && errno != ESRCH)
            msg_warn_errno("kill %ld", (long)spawn.pids[i]);
}

/* SIGTERM: stop accepting, and ask the runners to end: an idle one exits
 * at once, a busy one after the request in hand (runner.h); qmgr sees
 * their channels close and defers nothing that was not started. */
static void stop_listening(void)
{
    if (spawn.stopping)
        return;
    spawn.stopping = 1;
    /* new clients find no socket; the pid file goes when we end */
    if (spawn.svc.socket_path && unlink(spawn.svc.socket_path) < 0 && errno != ENOENT)
        msg_warn_errno("remove %s", spawn.svc.socket_path);
    close(spawn.svc.listen_fd);
    spawn.svc.listen_fd = -1;
    signal_runners(SIGTERM);
}

/* Read the signals that arrived. */
static void handle_signals(void)
{
    struct signalfd_siginfo info;
    while (read(spawn.signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
            stop_listening();
        else if (info.ssi_signo == SIGHUP)
            msg_info("%s: SIGHUP ignored: each runner reads main.cf when it starts, "
                     "and qmgr retires its runners on its own reload", spawn.transport);
    }
    reap_children();
}

/* Listen, serve until SIGTERM, then wait for the runners. */
static void serve(void)
{
    static const int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    spawn.signal_fd = signal_fd_open(signals, sizeof signals / sizeof signals[0]);
    if (spawn.signal_fd < 0)
        msg_fatal_errno("signalfd");
    if (unix_service_ready(&spawn.svc) != 0)
        msg_fatal_temp_errno("write %s", spawn.svc.pid_path);
    msg_info("%s: ready on %s for mail_owner %s (runner %s, process limit %zu)",
             spawn.transport, spawn.svc.socket_path ? spawn.svc.socket_path : "the socket systemd passed",
             conf_str("mail_owner"), spawn.program, spawn.limit);
    time_t stop_deadline = 0;
    while (!spawn.stopping || spawn.children > 0) {
        struct pollfd fds[2] = {{.fd = spawn.signal_fd, .events = POLLIN}};
        nfds_t n = 1;
        if (!spawn.stopping && spawn.children < spawn.limit)
            fds[n++] = (struct pollfd){.fd = spawn.svc.listen_fd, .events = POLLIN};
        if (spawn.stopping && !stop_deadline)
            stop_deadline = time(NULL) + STOP_GRACE_SECONDS;
        if (stop_deadline && time(NULL) >= stop_deadline) {
            msg_warn("%s: %zu runner(s) still busy after %ds; killing them", spawn.transport,
                     spawn.children, STOP_GRACE_SECONDS);
            signal_runners(SIGKILL);
            break;
        }
        if (poll(fds, n, stop_deadline ? 1000 : -1) < 0) {
            if (errno != EINTR)
                msg_fatal_errno("poll");
            continue;
        }
        if (fds[0].revents)
            handle_signals();
        if (n > 1 && fds[1].revents && !spawn.stopping)
            accept_connections();
    }
    struct strbuf err = STRBUF_INIT;
    unix_service_close(&spawn.svc, &err);
    if (err.len)
        msg_warn("%s", err.s);
    strbuf_free(&err);
    msg_info("%s: stopped", spawn.transport);
}

int main(int argc, char **argv)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            _exit(75);
    signal(SIGPIPE, SIG_IGN);
    log_open("spawn", 0);
    log_exit_codes(75, 75);
    struct strlist overrides = STRLIST_INIT;
    int opt;
    while ((opt = getopt(argc, argv, "c:o:v")) != -1) {
        if (opt == 'o')
            strlist_add(&overrides, optarg);
        if (!config_common_option(opt, optarg))
            usage();
    }
    if (optind != argc - 1 || !transport_name_ok(argv[optind]))
        usage();
    spawn.transport = argv[optind];
    config_load(0);
    struct strbuf program = STRBUF_INIT;
    /* a master.cf smtp or lmtp service's -o settings go to its runners */
    spawn.pipe_service = runner_program_path(&program, conf_str("daemon_directory"),
                                             spawn.transport, NULL, &overrides);
    spawn.program = strbuf_detach(&program);
    if (access(spawn.program, X_OK) != 0)
        msg_fatal_temp_errno("%s", spawn.program);
    find_owner();
    spawn.limit = (size_t)conf_int("default_process_limit");
    spawn.pids = xcalloc(spawn.limit, sizeof *spawn.pids);
    build_runner_argv(&overrides);
    open_service(conf_str("queue_directory"));
    serve();
    return 0;
}
