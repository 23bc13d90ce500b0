/* maildir.c - crash-safe delivery into a Maildir (see mailbox.h).
 *
 * The steps, and why each is there:
 *   1. create tmp/SEC.MUSECPPIDQCOUNT.HOST with O_EXCL (unique within this
 *      host: the pid is ours while we run, the count differs per delivery);
 *   2. write the prepended lines and the message, fsync the file: its data
 *      is on disk before any name in new/ points to it;
 *   3. rename it (no-replace) to new/SEC.VDEVIINOMUSEC.HOST, Postfix's
 *      final-name form: device and inode make it unique while it exists;
 *   4. fsync new/: the name is on disk before we report success, because
 *      qmgr marks the recipient done on that report and will never deliver
 *      again (doc/postern-virtual.8 explains the choice).
 * A crash before 3 leaves at most a file in tmp/ (readers ignore tmp/); new/
 * never holds a partial file.  Such orphans are removed after 36 hours, the
 * Maildir convention (qmail's maildir(5), Dovecot), by the next delivery to
 * that Maildir, at most once an hour: see clean_tmp().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mailbox.h"
#include "maildirfilter.h"
#include "maildirsize.h"
#include "strbuf.h"

static unsigned maildir_count;

/* mkdir -p with mode; 0 or -1 (errno).  Directories it creates are made
 * durable by an fsync of their parent. */
static int make_dirs(const char *path, mode_t mode)
{
    struct strbuf walk = STRBUF_INIT;
    strbuf_puts(&walk, path);
    while (walk.len > 1 && walk.s[walk.len - 1] == '/')
        strbuf_truncate(&walk, walk.len - 1);
    int result = 0;
    for (size_t i = 1; i <= walk.len && result == 0; i++) {
        if (i < walk.len && walk.s[i] != '/')
            continue;
        char saved = walk.s[i];
        walk.s[i] = '\0';
        if (mkdir(walk.s, mode) == 0) {
            /* the new name must survive a crash like the file below it */
            char *slash = strrchr(walk.s, '/');
            if (slash) {
                *slash = '\0';
                int dfd = open(slash == walk.s ? "/" : walk.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) {
                    if (fsync(dfd) != 0)
                        result = -1;
                    close(dfd);
                }
                *slash = '/';
            }
        } else if (errno != EEXIST) {
            result = -1;
        }
        walk.s[i] = saved;
    }
    int saved_errno = errno;
    strbuf_free(&walk);
    errno = saved_errno;
    return result;
}

/* Rename without replacing an existing name; link+unlink where the file
 * system lacks RENAME_NOREPLACE. */
static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) != 0)
        return -1;
    if (unlink(from) != 0)      /* delivered all the same: only tmp/ keeps a name */
        msg_warn_errno("remove %s", from);
    return 0;
}

/* fsync a directory by name; 0 or -1. */
static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

#define TMP_ORPHAN_AGE      (36 * 3600)    /* maildir(5): not touched in 36 hours */
#define TMP_CLEAN_INTERVAL  3600            /* look at most once an hour */

/* Remove the files in tmp/ that nobody read or wrote for 36 hours (atime
 * and mtime both older: a file being written has a fresh mtime, and on a
 * noatime mount the atime is its creation).  Cheap: tmp/'s own atime
 * remembers the last look (set to now after each; a readdir by a reader
 * moves it too), so a Maildir is read at most once an hour, and one stat
 * is all a delivery pays otherwise. */
static void clean_tmp(const char *tmpdir, time_t now)
{
    struct stat st;
    if (stat(tmpdir, &st) != 0 || now - st.st_atime < TMP_CLEAN_INTERVAL)
        return;
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        struct stat file;
        if (entry->d_name[0] == '.'
            || fstatat(dirfd(dir), entry->d_name, &file, AT_SYMLINK_NOFOLLOW) != 0
            || !S_ISREG(file.st_mode) || now - file.st_mtime < TMP_ORPHAN_AGE
            || now - file.st_atime < TMP_ORPHAN_AGE)
            continue;
        if (unlinkat(dirfd(dir), entry->d_name, 0) == 0)
            msg_info("removed %s/%s: left in tmp/ for more than 36 hours", tmpdir, entry->d_name);
    }
    closedir(dir);
    const struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    if (utimensat(AT_FDCWD, tmpdir, times, 0) != 0)
        msg_warn_errno("set the access time of %s", tmpdir);
}

/* The Maildir usage the quota is checked against, and the Maildir
 * opened for its lock (*lock_fd, when maildirsize is kept).  0, or -1
 * with status set. */
static int quota_usage(const char *dir, const struct maildir_quota *quota, long long bytes,
                       int *lock_fd, struct maildir_usage *usage,
                       struct mailbox_status *status)
{
    struct maildir_count_rules rules = {
        .inbox_only = quota->inbox_only, .count_trash = quota->count_trash,
        .trash_name = quota->trash_name,
    };
    struct maildir_limits limits = {.bytes = quota->limit, .messages = 0};
    usage->bytes = usage->messages = 0;
    if (quota->keep_maildirsize) {
        *lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct maildir_limits file_limits;
        enum maildirsize_source source;
        time_t mtime = 0;
        if (*lock_fd < 0
            || maildirsize_get(dir, *lock_fd, &limits, &rules, usage, &file_limits,
                               &source, &mtime) != 0) {
            /* the quota still holds: count instead (and say why once) */
            msg_warn_errno("maildirsize of %s: counting the Maildir instead", dir);
            if (*lock_fd >= 0)
                close(*lock_fd);
            *lock_fd = -1;
        } else if (!quota->inbox_only) {
            /* Maildir++: over quota by a file older than 15 minutes,
             * which may miss what readers removed: count again */
            if (maildir_over_quota(&file_limits, usage, bytes) && source == MAILDIRSIZE_READ
                && time(NULL) - mtime > MAILDIRSIZE_STALE_SECONDS
                && maildirsize_remake(dir, *lock_fd, &file_limits, &rules, usage) != 0)
                msg_warn_errno("recalculate %smaildirsize", dir);
            limits = file_limits;
            goto check;
        }
    }
    if (quota->limit == 0)
        return 0;
    if (maildir_count_usage(dir, &rules, usage) != 0) {
        mailbox_status_set(status, "4.2.0", "maildir delivery failed: count %s: %s", dir,
                           strerror(errno));
        return -1;
    }
check:
    if (maildir_over_quota(&limits, usage, bytes)) {
        /* Postfix's VDA patch: a message larger than the whole quota can
         * never fit and bounces; else as virtual_overquota_bounce says */
        int bounce = quota->bounce || (limits.bytes > 0 && bytes > limits.bytes);
        mailbox_status_set(status, bounce ? "5.2.2" : "4.2.2", "maildir delivery failed: %s",
                           quota->message ? quota->message : "mailbox full");
        return -1;
    }
    return 0;
}

int maildir_deliver(const char *dir, const struct mail_source *src,
                    off_t size_limit, struct mailbox_status *status)
{
    return maildir_deliver_quota(dir, src, size_limit, NULL, NULL, status);
}

/* Make the Maildir++ folder DIR/FOLDER/ for a filter's MOVE: tmp/, new/,
 * cur/ and its "maildirfolder" file (Maildir++ says it is a folder). */
static void make_folder(const char *dir, const char *folder)
{
    struct strbuf path = STRBUF_INIT;
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        strbuf_reset(&path);
        strbuf_printf(&path, "%s%s/%s", dir, folder, subdirs[i]);
        if (make_dirs(path.s, 0700) != 0)
            msg_warn_errno("create %s", path.s);
    }
    strbuf_reset(&path);
    strbuf_printf(&path, "%s%s/maildirfolder", dir, folder);
    int fd = open(path.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    else if (errno != EEXIST)
        msg_warn_errno("Cannot create maildirfolder file '%s'", path.s);
    strbuf_free(&path);
}

int maildir_deliver_quota(const char *dir, const struct mail_source *src,
                          off_t size_limit, const struct maildir_quota *quota,
                          const struct maildir_filter *filter,
                          struct mailbox_status *status)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    const char *host = maildir_hostname();
    struct strbuf tmpdir = STRBUF_INIT, newdir = STRBUF_INIT, curdir = STRBUF_INIT;
    struct strbuf tmpfile = STRBUF_INIT, newfile = STRBUF_INIT, prefix = STRBUF_INIT;
    struct strbuf name = STRBUF_INIT;
    struct maildir_filter_verdict verdict = {MAILDIR_FILTER_DELIVER, STRBUF_INIT};
    strbuf_printf(&tmpdir, "%stmp", dir);
    strbuf_printf(&newdir, "%snew", dir);
    strbuf_printf(&curdir, "%scur", dir);
    strbuf_printf(&tmpfile, "%s/%lld.M%06ldP%dQ%u.%s", tmpdir.s, (long long)now.tv_sec,
                  (long)now.tv_usec, (int)getpid(), ++maildir_count, host);
    int result = -1, lock_fd = -1;
    struct maildir_usage usage;

    int fd = open(tmpfile.s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        /* a new Maildir: make all three, as readers expect them */
        if (make_dirs(tmpdir.s, 0700) == 0 && make_dirs(newdir.s, 0700) == 0
            && make_dirs(curdir.s, 0700) == 0)
            fd = open(tmpfile.s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        mailbox_status_set(status, mail_errno_dsn(errno, "4.2.0"),
                           "maildir delivery failed: create maildir file %s: %s",
                           tmpfile.s, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        mailbox_status_set(status, "4.3.0", "maildir delivery failed: fstat %s: %s",
                           tmpfile.s, strerror(errno));
        close(fd);
        unlink(tmpfile.s);
        goto out;
    }
    strbuf_printf(&name, "%lld.V%llxI%llxM%06ld.%s", (long long)now.tv_sec,
                  (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                  (long)now.tv_usec, host);

    mail_prefix(&prefix, src, 0);
    /* the file will hold exactly this: a Maildir copy changes nothing */
    long long bytes = (long long)prefix.len + (long long)src->length;
    if (quota && (quota->limit > 0 || quota->keep_maildirsize)
        && quota_usage(dir, quota, bytes, &lock_fd, &usage, status) != 0) {
        close(fd);
        unlink(tmpfile.s);
        goto out;
    }
    if (quota && quota->size_in_name)
        strbuf_printf(&name, ",S=%lld", bytes);
    /* the user's filter (virtual_maildir_filter), once the quota allows
     * the message, as the VDA patch: it may refuse, drop or move it */
    if (filter) {
        struct strbuf why = STRBUF_INIT;
        int r = maildir_filter_apply(dir, filter, &prefix, src->fd, src->offset, src->length,
                                     &verdict, &why);
        if (r != 0)
            mailbox_status_set(status, "4.3.0", "maildir delivery failed: filter: %s", why.s);
        else if (verdict.action == MAILDIR_FILTER_REJECT)
            mailbox_status_set(status, "5.0.0", "maildir delivery failed: User filter - REJECT%s%s",
                               verdict.text.len ? ": " : "", strbuf_str(&verdict.text));
        else if (verdict.action == MAILDIR_FILTER_DISCARD)
            mailbox_status_set(status, "2.0.0", "User filter - DISCARD%s%s",
                               verdict.text.len ? ": " : "", strbuf_str(&verdict.text));
        strbuf_free(&why);
        if (r != 0 || verdict.action == MAILDIR_FILTER_REJECT
            || verdict.action == MAILDIR_FILTER_DISCARD) {
            close(fd);
            unlink(tmpfile.s);
            if (r == 0 && verdict.action == MAILDIR_FILTER_DISCARD)
                result = 1;
            goto out;
        }
        if (verdict.action == MAILDIR_FILTER_MOVE) {
            make_folder(dir, verdict.text.s);
            strbuf_reset(&newdir);
            strbuf_reset(&curdir);
            strbuf_printf(&newdir, "%s%s/new", dir, verdict.text.s);
            strbuf_printf(&curdir, "%s%s/cur", dir, verdict.text.s);
        }
    }
    strbuf_printf(&newfile, "%s/%s", newdir.s, name.s);
    enum mail_copy_result copied = mail_copy(fd, src, &prefix, 0,
                                             size_limit > 0 ? size_limit : -1);
    if (copied == MAIL_COPY_OK && fsync(fd) != 0)
        copied = MAIL_COPY_WRITE_ERROR;
    int copy_errno = errno;
    if (close(fd) != 0 && copied == MAIL_COPY_OK) {
        copied = MAIL_COPY_WRITE_ERROR;
        copy_errno = errno;
    }
    if (copied != MAIL_COPY_OK) {
        mail_copy_status(status, copied, copy_errno);
        struct strbuf why = STRBUF_INIT;
        strbuf_printf(&why, "maildir delivery failed: %s", status->text.s);
        strbuf_set(&status->text, why.s);
        strbuf_free(&why);
        unlink(tmpfile.s);
        goto out;
    }
    /* a recalculation of maildirsize (exclusive) either counts this file
     * or sees its line, never both and never neither */
    if (lock_fd >= 0 && flock(lock_fd, LOCK_SH) != 0)
        msg_warn_errno("lock %s", dir);
    if (rename_noreplace(tmpfile.s, newfile.s) != 0
        && (errno != ENOENT || make_dirs(newdir.s, 0700) != 0
            || make_dirs(curdir.s, 0700) != 0
            || rename_noreplace(tmpfile.s, newfile.s) != 0)) {
        mailbox_status_set(status, mail_errno_dsn(errno, "4.2.0"),
                           "maildir delivery failed: create maildir file %s: %s",
                           newfile.s, strerror(errno));
        unlink(tmpfile.s);
        goto out;
    }
    if (fsync_dir(newdir.s) != 0) {
        /* we cannot promise that the name survives a crash: take it back
         * and try again later (if a reader took it already, a duplicate) */
        mailbox_status_set(status, "4.3.0", "maildir delivery failed: fsync %s: %s",
                           newdir.s, strerror(errno));
        unlink(newfile.s);
        goto out;
    }
    if (lock_fd >= 0 && maildirsize_append(dir, bytes, 1) != 0 && errno != ENOENT)
        msg_warn_errno("update %smaildirsize", dir);
    result = 0;
    clean_tmp(tmpdir.s, now.tv_sec);
out:
    if (lock_fd >= 0)
        close(lock_fd);     /* and with it the lock */
    strbuf_free(&tmpdir);
    strbuf_free(&newdir);
    strbuf_free(&curdir);
    strbuf_free(&tmpfile);
    strbuf_free(&newfile);
    strbuf_free(&prefix);
    strbuf_free(&name);
    strbuf_free(&verdict.text);
    return result;
}
