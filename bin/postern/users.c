/* users.c - who each daemon of an instance runs as when `postern start`
 * runs as root (doc/privileges.md, "Who runs as what"; the units of units/
 * say the same): qmgr as mail_owner with setgid_group as a supplementary
 * group, the lookup service as mail_owner, the auth service as mail_owner
 * with smtpd_user's group (its socket's group), the queue service as queue_service_user with setgid_group as its
 * group, postern-accept (once its sockets are bound) and every smtpd
 * session as smtpd_user, which can neither read nor change queued mail.
 * Root refuses to start when one of them does not exist, is root, or
 * shares a uid that must differ (mail_owner and smtpd_user, smtpd_user and
 * queue_service_user).  Run by anyone else, everything runs as that user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "postern.h"
#include "queuefile.h"
#include "strbuf.h"

static struct run_as users[ROLE_COUNT];
static int as_root;

/* One user of a role from its parameter; 0, or 1 with the problem logged. */
static int resolve(enum daemon_role role, const char *param, const char *what)
{
    const char *name = conf_str(param);
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        msg_error("running as root: %s runs as %s = %s, and there is no such user", what,
                  param, name);
        return 1;
    }
    if (pw->pw_uid == 0) {
        msg_error("running as root: %s = %s is root; %s must run as an unprivileged user",
                  param, name, what);
        return 1;
    }
    struct run_as *u = &users[role];
    snprintf(u->user, sizeof u->user, "%s", name);
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    u->groups[0] = pw->pw_gid;
    u->group_count = 1;
    return 0;
}

int instance_users_check(void)
{
    if (geteuid() != 0)
        return 0;
    int problems = resolve(ROLE_QMGR, "mail_owner", "qmgr")
                   + resolve(ROLE_QUEUE_SERVICE, "queue_service_user", "the queue service")
                   + resolve(ROLE_SMTPD, "smtpd_user", "SMTP (postern-accept and smtpd)");
    struct group *gr = getgrnam(conf_str("setgid_group"));
    if (!gr) {
        msg_error("running as root: there is no group setgid_group = %s (the queue's group)",
                  conf_str("setgid_group"));
        problems++;
    }
    if (!problems) {
        gid_t drop = gr->gr_gid;
        /* the lookup service: mail_owner with its own group (units/) */
        users[ROLE_LOOKUP] = users[ROLE_QMGR];
        /* the auth service: mail_owner, with smtpd's group for its socket */
        users[ROLE_AUTH] = users[ROLE_QMGR];
        users[ROLE_AUTH].groups[users[ROLE_AUTH].group_count++] = users[ROLE_SMTPD].gid;
        /* qmgr reads what the injectors wrote through the group */
        users[ROLE_QMGR].groups[users[ROLE_QMGR].group_count++] = drop;
        /* the queue service creates files of that group, and nothing else */
        users[ROLE_QUEUE_SERVICE].gid = drop;
        users[ROLE_QUEUE_SERVICE].groups[0] = drop;
        if (users[ROLE_SMTPD].uid == users[ROLE_QMGR].uid) {
            msg_error("running as root: smtpd_user and mail_owner are both %s; smtpd must "
                      "not be able to touch the queue", users[ROLE_SMTPD].user);
            problems++;
        }
        if (users[ROLE_SMTPD].uid == users[ROLE_QUEUE_SERVICE].uid) {
            msg_error("running as root: smtpd_user and queue_service_user are both %s",
                      users[ROLE_SMTPD].user);
            problems++;
        }
        if (users[ROLE_SMTPD].gid == drop) {
            msg_error("running as root: smtpd_user %s has setgid_group %s as its group",
                      users[ROLE_SMTPD].user, conf_str("setgid_group"));
            problems++;
        }
    }
    if (problems) {
        fprintf(stderr,
                "postern: refusing to run the daemons as root.  Create the users "
                "(doc/privileges.md, README):\n"
                "    groupadd --system %s\n"
                "    useradd --system --no-create-home --shell /usr/sbin/nologin -G %s %s\n"
                "    useradd --system --no-create-home --shell /usr/sbin/nologin %s\n"
                "    useradd --system --no-create-home --shell /usr/sbin/nologin -g %s %s\n"
                "or name existing unprivileged ones in %s (mail_owner, setgid_group, "
                "smtpd_user, queue_service_user), or start the instance as an "
                "ordinary user.\n",
                conf_str("setgid_group"), conf_str("setgid_group"), conf_str("mail_owner"),
                conf_str("smtpd_user"), conf_str("setgid_group"),
                conf_str("queue_service_user"), config_file());
        return 1;
    }
    as_root = 1;
    return 0;
}

const struct run_as *instance_user(enum daemon_role role)
{
    return as_root && role != ROLE_AS_STARTED ? &users[role] : NULL;
}

/* Give files owned by root in one queue to mail_owner:setgid_group. */
static int adopt_queue_files(const char *queue_dir, const char *name, uid_t owner, gid_t group)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", queue_dir, name);
    DIR *d = opendir(path.s);
    int rc = 0;
    if (d) {
        struct dirent *e;
        size_t base = path.len;
        while ((e = readdir(d)) != NULL) {
            struct stat st;
            strbuf_truncate(&path, base);
            strbuf_printf(&path, "/%s", e->d_name);
            /* fsynced: an owner is on disk only then (doc/queue-format.md) */
            if (lstat(path.s, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0
                && (lchown(path.s, owner, group) < 0 || fsync_path(AT_FDCWD, path.s) < 0)) {
                msg_error("chown %s: %s", path.s, strerror(errno));
                rc = 1;
            }
        }
        closedir(d);
    }
    strbuf_free(&path);
    return rc;
}

/* A file that a daemon user must own (a pid file) or append to (the log). */
static int own_file(const char *path, uid_t owner, gid_t group, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 || fchown(fd, owner, group) < 0 || fchmod(fd, mode) < 0) {
        msg_error("%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    close(fd);
    return 0;
}

int instance_users_prepare(void)
{
    if (!as_root)
        return 0;
    const char *queue_dir = conf_str("queue_directory");
    const struct run_as *qmgr = &users[ROLE_QMGR];
    gid_t drop = users[ROLE_QUEUE_SERVICE].gid;
    struct strbuf err = STRBUF_INIT, path = STRBUF_INIT;
    /* the owners of doc/privileges.md, as `postern queue init` run by root */
    if (queue_dirs_create(queue_dir, qmgr->uid, drop, &err) < 0) {
        msg_error("%s", err.s);
        strbuf_free(&err);
        return 1;
    }
    static const char *const queues[] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, QUEUE_RECYCLE,
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++)
        rc |= adopt_queue_files(queue_dir, queues[i], qmgr->uid, drop);
    /* qmgr opens its pid file as mail_owner (one left by a root qmgr too);
     * the queue service and postern-accept write theirs as root */
    strbuf_printf(&path, "%s/pid/qmgr.pid", queue_dir);
    rc |= own_file(path.s, qmgr->uid, qmgr->gid, 0644);
    /* data_directory: the verify service (mail_owner) keeps its cache there */
    strbuf_reset(&err);
    if (data_dir_create(conf_str("data_directory"), qmgr->uid, qmgr->gid, &err) < 0) {
        msg_error("%s", err.s);
        rc = 1;
    }
    /* every daemon appends to the instance's log: mail_owner's, writable
     * by the others (who cannot read it) */
    const char *maillog = conf_str("maillog_file");
    if (*maillog)
        rc |= own_file(maillog, qmgr->uid, drop, 0622);
    strbuf_free(&err);
    strbuf_free(&path);
    return rc;
}
