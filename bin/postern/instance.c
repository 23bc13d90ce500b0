/* instance.c - `postern init|start|stop|status`: a self-contained
 * instance that any user can run without root or systemd (one directory
 * with its main.cf, queue, mailboxes and log; postern-instance(1)), and
 * starting and stopping its daemons in the background: the lookup and
 * queue services (services.c), postern-qmgr (here) and the SMTP listeners
 * (listeners.c), in the order of the table in supervise.c, whose
 * supervisor keeps them running. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "listeners.h"
#include "log.h"
#include "postern.h"
#include "privdrop.h"
#include "queuefile.h"
#include "services.h"
#include "supervise.h"
#include "strbuf.h"
#include "xalloc.h"

#define DEFAULT_SMTP_PORT   2525
#define START_TIMEOUT_MS    30000
#define STOP_TIMEOUT_MS     15000

/* The directory of the running `postern` binary: its sibling programs
 * (postern-qmgr, postern-rewrite, ...) are there, in a build tree too. */
static char *program_directory(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0)
        msg_fatal_errno("readlink /proc/self/exe");
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    return xstrdup(path);
}

/* Write a whole file, replacing nothing (O_EXCL). */
static void write_new_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        msg_fatal_errno("create %s", path);
    if (write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 || close(fd) < 0)
        msg_fatal_errno("write %s", path);
}

/* Make a directory (an existing one is fine). */
static void make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        msg_fatal_errno("mkdir %s", path);
}

/* One "name = value" line of main.cf; a -o override with the same name
 * replaces it, the other overrides are appended by write_main_cf. */
static void put_param(struct strbuf *cf, struct strlist *overrides,
                      const char *name, const char *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < overrides->count; i++) {
        const char *o = overrides->item[i];
        if (strncmp(o, name, n) == 0 && o[n] == '=') {
            strbuf_printf(cf, "%s = %s\n", name, o + n + 1);
            free(overrides->item[i]);
            overrides->item[i] = xstrdup("");
            return;
        }
    }
    strbuf_printf(cf, "%s = %s\n", name, value);
}

/* Mailboxes owned by another user (root's instance: nobody) must be
 * reachable by that user: warn about a parent directory it cannot pass. */
static void warn_unreachable(const char *dir)
{
    char *path = xstrdup(dir);
    for (char *slash = path + strlen(path); slash > path; slash = strrchr(path, '/')) {
        *slash = '\0';
        struct stat st;
        const char *p = *path ? path : "/";
        if (stat(p, &st) == 0 && !(st.st_mode & S_IXOTH))
            msg_warn("%s is not searchable by others: virtual delivery as another user "
                     "cannot reach the mailboxes below it", p);
    }
    free(path);
}

static _Noreturn void init_usage(void)
{
    fprintf(stderr, "usage: postern init DIR [--port N] [--domain D]... [-o name=value]...\n");
    exit(2);
}

int cmd_init(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"domain", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct strlist domains = STRLIST_INIT, overrides = STRLIST_INIT;
    long port = DEFAULT_SMTP_PORT;
    int opt;
    while ((opt = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*end || port < 1 || port > 65535)
                msg_fatal("--port %s: not a port number", optarg);
            break;
        case 'd':
            if (!*optarg || strpbrk(optarg, " \t,/@"))
                msg_fatal("--domain %s: not a domain name", optarg);
            strlist_add(&domains, optarg);
            break;
        case 'o':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                msg_fatal("-o %s: expected name=value", optarg);
            strlist_add(&overrides, optarg);
            break;
        default:
            init_usage();
        }
    }
    if (optind != argc - 1)
        init_usage();
    const char *dir_arg = argv[optind];
    make_dir(dir_arg, 0755);
    char *dir = realpath(dir_arg, NULL);
    if (!dir)
        msg_fatal_errno("realpath %s", dir_arg);

    struct strbuf path = STRBUF_INIT, cf = STRBUF_INIT, text = STRBUF_INIT;
    strbuf_printf(&path, "%s/main.cf", dir);
    if (access(path.s, F_OK) == 0)
        msg_fatal("%s already exists: %s is an instance already", path.s, dir);

    struct passwd *pw = getpwuid(getuid());
    struct group *gr = getgrgid(getgid());
    if (!pw || !gr)
        msg_fatal("cannot find the name of uid %ld or gid %ld", (long)getuid(), (long)getgid());
    char *bindir = program_directory();
    time_t now = time(NULL);

    strbuf_printf(&cf, "# main.cf of a self-contained postern instance, written by\n"
                       "# `postern init` on %s"
                       "# Start it with `postern start -c %s`; submit with\n"
                       "# `POSTERN_CONFIG_DIR=%s sendmail ADDRESS < MESSAGE`.\n"
                       "# Mail for localhost and the --domain domains, to any local part\n"
                       "# NAME, is delivered into %s/mail/NAME/Maildir/.\n\n",
                  ctime(&now), dir, dir, dir);
    strbuf_printf(&text, "%s/queue", dir);
    put_param(&cf, &overrides, "queue_directory", text.s);
    put_param(&cf, &overrides, "daemon_directory", bindir);
    put_param(&cf, &overrides, "command_directory", bindir);
    strbuf_reset(&text);
    strbuf_printf(&text, "%s/maillog", dir);
    put_param(&cf, &overrides, "maillog_file", text.s);
    strbuf_reset(&text);
    strbuf_printf(&text, "%s/data", dir);
    put_param(&cf, &overrides, "data_directory", text.s);
    /* the daemons run as the invoking user; root's run as the users of
     * doc/privileges.md instead (postern start), so root keeps the defaults */
    if (getuid() != 0) {
        put_param(&cf, &overrides, "mail_owner", pw->pw_name);
        put_param(&cf, &overrides, "setgid_group", gr->gr_name);
    }
    put_param(&cf, &overrides, "myhostname", "localhost");
    put_param(&cf, &overrides, "mydomain", "localdomain");
    put_param(&cf, &overrides, "myorigin", "$myhostname");
    put_param(&cf, &overrides, "mydestination", "");
    put_param(&cf, &overrides, "inet_interfaces", "loopback-only");
    put_param(&cf, &overrides, "alias_maps", "");
    put_param(&cf, &overrides, "alias_database", "");
    strbuf_reset(&text);
    strbuf_puts(&text, "localhost");
    for (size_t i = 0; i < domains.count; i++)
        strbuf_printf(&text, ", %s", domains.item[i]);
    put_param(&cf, &overrides, "virtual_mailbox_domains", text.s);
    strbuf_reset(&text);
    strbuf_printf(&text, "%s/mail", dir);
    put_param(&cf, &overrides, "virtual_mailbox_base", text.s);
    strbuf_reset(&text);
    strbuf_printf(&text, "pcre:%s/vmailbox.pcre", dir);
    put_param(&cf, &overrides, "virtual_mailbox_maps", text.s);
    /* mailboxes belong to the invoking user; root gets "nobody" instead,
     * as Postfix's virtual(8) never delivers as root (virtual_minimum_uid
     * is at least 1) */
    uid_t mail_uid = getuid();
    gid_t mail_gid = getgid();
    if (mail_uid == 0) {
        struct passwd *nobody = getpwnam("nobody");
        if (!nobody)
            msg_fatal("running as root, and there is no user \"nobody\" to own the mailboxes");
        mail_uid = nobody->pw_uid;
        mail_gid = nobody->pw_gid;
    }
    strbuf_reset(&text);
    strbuf_printf(&text, "static:%ld", (long)mail_uid);
    put_param(&cf, &overrides, "virtual_uid_maps", text.s);
    strbuf_reset(&text);
    strbuf_printf(&text, "static:%ld", (long)mail_gid);
    put_param(&cf, &overrides, "virtual_gid_maps", text.s);
    if (mail_uid < 100) {
        strbuf_reset(&text);
        strbuf_printf(&text, "%ld", (long)mail_uid);
        put_param(&cf, &overrides, "virtual_minimum_uid", text.s);
    }
    /* STARTTLS with a self-signed certificate made here (DIR/tls/) */
    struct strbuf key_pem = STRBUF_INIT, cert_pem = STRBUF_INIT;
    if (selfsigned_make("localhost", &key_pem, &cert_pem) == 0) {
        strbuf_reset(&text);
        strbuf_printf(&text, "%s/tls", dir);
        make_dir(text.s, 0755);
        strbuf_puts(&text, "/key.pem");
        write_new_file(text.s, key_pem.s, 0600);
        put_param(&cf, &overrides, "smtpd_tls_key_file", text.s);
        strbuf_reset(&text);
        strbuf_printf(&text, "%s/tls/cert.pem", dir);
        write_new_file(text.s, cert_pem.s, 0644);
        put_param(&cf, &overrides, "smtpd_tls_cert_file", text.s);
        put_param(&cf, &overrides, "smtpd_tls_security_level", "may");
        put_param(&cf, &overrides, "smtpd_tls_loglevel", "1");
    }
    strbuf_free(&key_pem);
    strbuf_free(&cert_pem);
    strbuf_printf(&cf, "# the SMTP port (for postern-smtpd) is in master.cf: 127.0.0.1:%ld\n", port);
    for (size_t i = 0; i < overrides.count; i++) {
        const char *o = overrides.item[i];
        if (*o) {
            const char *eq = strchr(o, '=');
            strbuf_printf(&cf, "%.*s = %s\n", (int)(eq - o), o, eq + 1);
        }
    }
    write_new_file(path.s, cf.s, 0644);

    /* any local part NAME (no slash, not starting with a dot, +ext
     * dropped) of our domains -> NAME/Maildir/ under virtual_mailbox_base */
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/vmailbox.pcre", dir);
    write_new_file(path.s,
                   "# virtual_mailbox_maps of this instance: NAME@domain -> NAME/Maildir/\n"
                   "/^([a-z0-9_=-][a-z0-9_=.-]*)(\\+[^@]*)?@[^@]+$/ $1/Maildir/\n",
                   0644);
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/master.cf", dir);
    strbuf_reset(&text);
    strbuf_printf(&text, "# master.cf of this instance (Postfix syntax)\n"
                         "# service type  private unpriv  chroot  wakeup  maxproc command\n"
                         "127.0.0.1:%ld inet n       -       n       -       -       smtpd\n"
                         "# the delivery transports of Postfix's master.cf (postern-smtp(8))\n"
                         "smtp      unix  -       -       n       -       -       smtp\n"
                         "relay     unix  -       -       n       -       -       smtp\n"
                         "lmtp      unix  -       -       n       -       -       lmtp\n",
                  port);
    write_new_file(path.s, text.s, 0644);

    strbuf_reset(&path);
    strbuf_printf(&path, "%s/queue", dir);
    strbuf_reset(&text);
    /* everything belongs to the invoking user: ownership left alone */
    if (queue_dirs_create(path.s, (uid_t)-1, (gid_t)-1, &text) < 0)
        msg_fatal("%s", text.s);
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/mail", dir);
    make_dir(path.s, 0700);
    if (mail_uid != getuid()) {
        if (chown(path.s, mail_uid, mail_gid) < 0)
            msg_fatal_errno("chown %s", path.s);
        warn_unreachable(dir);
    }
    /* data_directory: the verify service's cache (address_verify_map) */
    strbuf_reset(&path);
    strbuf_printf(&path, "%s/data", dir);
    make_dir(path.s, 0700);     /* mail_owner's when root starts it (users.c) */

    printf("postern: instance created in %s\n"
           "postern: start it with: %s/postern start -c %s\n", dir, bindir, dir);
    free(bindir);
    free(dir);
    strbuf_free(&path);
    strbuf_free(&cf);
    strbuf_free(&text);
    strlist_free(&domains);
    strlist_free(&overrides);
    return 0;
}

/* ---- start, stop, status ---- */

/* Parse "-c DIR" (and -o, -v) for start/stop/status and load main.cf. */
static void instance_options(int argc, char **argv, const char *name)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:o:v")) != -1)
        if (!config_common_option(opt, optarg)) {
            fprintf(stderr, "usage: postern %s [-c DIR]\n", name);
            exit(2);
        }
    config_load(0);
}

/* queue_directory/pid/qmgr.pid */
static void pid_file_path(struct strbuf *out)
{
    strbuf_printf(out, "%s/pid/qmgr.pid", conf_str("queue_directory"));
}

/* Start argv as a daemon: its own session, stdin and stdout on /dev/null,
 * stderr into maillog_file (or /dev/null).  Returns its pid. */
pid_t fork_daemon(void)
{
    const char *maillog = conf_str("maillog_file");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        msg_fatal_errno("fork");
    if (pid == 0) {
        setsid();
        sigset_t none;              /* the supervisor blocks the signals it reads */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_RDWR);
        int err = *maillog ? open(maillog, O_WRONLY | O_APPEND | O_CREAT, 0644) : -1;
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0
            || dup2(err >= 0 ? err : null, 2) < 0)
            _exit(127);
        if (null > 2)
            close(null);
        if (err > 2)
            close(err);
    }
    return pid;
}

pid_t spawn_daemon(char *const argv[], const struct run_as *as)
{
    pid_t pid = fork_daemon();
    if (pid == 0) {
        struct strbuf why = STRBUF_INIT;
        if (as && privileges_drop(as->uid, as->gid, as->groups, as->group_count, &why) < 0) {
            dprintf(2, "postern: cannot run %s as %s: %s\n", argv[0], as->user, why.s);
            _exit(71);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int process_stop(pid_t pid, long timeout_ms)
{
    if (kill(pid, SIGTERM) < 0)
        msg_fatal_errno("kill %ld", (long)pid);
    for (long waited = 0; waited < timeout_ms; waited += 20) {
        if (!process_running(pid))
            return 1;
        sleep_ms(20);
    }
    return !process_running(pid);
}

/* Read /proc/PID/NAME into buf (NUL-ended); the byte count, 0 when the
 * process or the file is gone. */
static size_t read_proc(pid_t pid, const char *name, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (size_t)n;
}

/* 1 while the process exists and has not exited (not a zombie).  A
 * process on its way out has no command line any more but is still
 * there, so stopping waits for this, not for process_is(). */
int process_running(pid_t pid)
{
    char buf[512];
    if (!read_proc(pid, "stat", buf, sizeof buf))
        return 0;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z'
           && close_paren[2] != 'X';
}

/* 1 when pid is a live (not zombie) process whose argv[0], or argv[1] for
 * a script run by its interpreter, names `program` (a reused pid of
 * another program does not count). */
int process_is(pid_t pid, const char *program)
{
    char buf[4096];
    size_t n;
    if (!process_running(pid) || !(n = read_proc(pid, "cmdline", buf, sizeof buf)))
        return 0;
    const char *arg = buf;      /* the arguments, each NUL-ended */
    for (int i = 0; i < 2 && arg < buf + n; i++, arg += strlen(arg) + 1) {
        const char *base = strrchr(arg, '/');
        if (strcmp(base ? base + 1 : arg, program) == 0)
            return 1;
    }
    return 0;
}

pid_t pid_file_read(const char *path)
{
    FILE *f = fopen(path, "re");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* The pid qmgr's pid file holds now (0 when none). */
static pid_t pid_file_value(void)
{
    struct strbuf path = STRBUF_INIT;
    pid_file_path(&path);
    pid_t pid = pid_file_read(path.s);
    strbuf_free(&path);
    return pid;
}

/* The pid in the pid file when that process is our qmgr, else 0. */
static pid_t running_qmgr(void)
{
    pid_t pid = pid_file_value();
    return pid > 0 && process_is(pid, "postern-qmgr") ? pid : 0;
}

/* 1 when someone reads qmgr's trigger FIFO (qmgr is up and listening). */
static int trigger_has_reader(void)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", conf_str("queue_directory"), QUEUE_TRIGGER);
    int fd = open(path.s, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    strbuf_free(&path);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Where the daemon's log goes, for the messages to the user. */
static const char *log_destination(void)
{
    const char *file = conf_str("maillog_file");
    return *file ? file : "syslog (facility mail)";
}

int qmgr_running(void)
{
    return running_qmgr() != 0;
}

/* Start postern-qmgr in the background; 0, or 1 (with the reason). */
int qmgr_start(void)
{
    pid_t pid = running_qmgr();
    if (pid) {
        printf("postern: already running (pid %ld); log: %s\n", (long)pid, log_destination());
        return 0;
    }
    struct strbuf qmgr = STRBUF_INIT;
    strbuf_printf(&qmgr, "%s/postern-qmgr", conf_str("daemon_directory"));
    if (access(qmgr.s, X_OK) < 0)
        msg_fatal_errno("cannot run %s", qmgr.s);
    char *args[] = {qmgr.s, "-c", (char *)config_dir(), NULL};
    pid = spawn_daemon(args, instance_user(ROLE_QMGR));
    strbuf_free(&qmgr);
    for (long waited = 0; waited < START_TIMEOUT_MS; waited += 50) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("postern-qmgr exited at start (%s %d); see %s",
                      WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                      log_destination());
            return 1;
        }
        /* up: qmgr has written (and locked) its pid file and listens */
        if (pid_file_value() == pid && trigger_has_reader()) {
            printf("postern: started postern-qmgr (pid %ld); log: %s\n",
                   (long)pid, log_destination());
            return 0;
        }
        sleep_ms(50);
    }
    msg_error("postern-qmgr (pid %ld) started but is not ready after %d seconds; see %s",
              (long)pid, START_TIMEOUT_MS / 1000, log_destination());
    return 1;
}

int cmd_start(int argc, char **argv)
{
    instance_options(argc, argv, "start");
    return instance_start();
}

/* Stop postern-qmgr; 0, or 1 when it was not running or did not stop. */
int qmgr_stop(void)
{
    pid_t pid = running_qmgr();
    if (!pid) {
        fprintf(stderr, "postern: not running\n");
        return 1;
    }
    if (process_stop(pid, STOP_TIMEOUT_MS)) {
        /* qmgr removes its pid file at a clean stop; a kill leaves it */
        if (pid_file_value() == pid) {
            struct strbuf path = STRBUF_INIT;
            pid_file_path(&path);
            unlink(path.s);
            strbuf_free(&path);
        }
        printf("postern: stopped (pid %ld)\n", (long)pid);
        return 0;
    }
    msg_error("postern-qmgr (pid %ld) did not stop within %d seconds",
              (long)pid, STOP_TIMEOUT_MS / 1000);
    return 1;
}

int cmd_stop(int argc, char **argv)
{
    instance_options(argc, argv, "stop");
    return instance_stop();
}

int cmd_reload(int argc, char **argv)
{
    instance_options(argc, argv, "reload");
    return listeners_reload() ? 1 : 0;
}

/* The number of queue files (names not starting with '.') in a queue. */
static long count_queue(const char *name)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", conf_str("queue_directory"), name);
    DIR *d = opendir(path.s);
    strbuf_free(&path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int cmd_status(int argc, char **argv)
{
    instance_options(argc, argv, "status");
    pid_t pid = running_qmgr();
    if (pid)
        printf("postern: running (pid %ld)\n", (long)pid);
    else
        printf("postern: not running\n");
    static const char *const queues[] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
    };
    printf("queue:");
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++)
        printf("%s %s %ld", i ? "," : "", queues[i], count_queue(queues[i]));
    printf("\n");
    int service_down = services_status();
    int listeners_down = listeners_status();
    supervisor_status();
    printf("log: %s\n", log_destination());
    return pid && !listeners_down && !service_down ? 0 : 1;
}
