/* mbox.c - delivery into a UNIX mbox file under locks (see mailbox.h).
 *
 * Postfix's order: the dot lock (PATH.lock, created with O_EXCL; needs
 * write access to the directory) before the file is opened, then the
 * kernel locks (flock, fcntl) on the open file, each tried
 * deliver_lock_attempts times deliver_lock_delay apart.  The message is
 * appended, the file fsynced, and on any failure truncated back to the
 * size it had, so a reader never sees half a message after we report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "strbuf.h"

int mbox_lock_styles(const char *value, unsigned *styles, struct strbuf *err)
{
    struct strlist items = STRLIST_INIT;
    if (list_split(value, &items, err) != 0)
        return -1;
    *styles = 0;
    int result = 0;
    for (size_t i = 0; i < items.count && result == 0; i++) {
        if (strcasecmp(items.item[i], "fcntl") == 0)
            *styles |= MBOX_LOCK_FCNTL;
        else if (strcasecmp(items.item[i], "flock") == 0)
            *styles |= MBOX_LOCK_FLOCK;
        else if (strcasecmp(items.item[i], "dotlock") == 0)
            *styles |= MBOX_LOCK_DOTLOCK;
        else {
            strbuf_printf(err, "unknown mailbox lock style \"%s\" (use fcntl, flock or dotlock)",
                          items.item[i]);
            result = -1;
        }
    }
    strlist_free(&items);
    return result;
}

/* Create PATH.lock, breaking a lock older than stale_lock_time; 0 or -1
 * (errno EEXIST when another holds it). */
static int dotlock_take(const char *lock_path, const struct mbox_options *options)
{
    for (int attempt = 1;; attempt++) {
        int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST || attempt >= options->lock_attempts)
            return -1;
        struct stat st;
        if (stat(lock_path, &st) == 0 && time(NULL) > st.st_ctime + options->stale_lock_time) {
            if (unlink(lock_path) == 0)
                msg_warn("removed stale lock file %s", lock_path);
            continue;
        }
        sleep((unsigned)options->lock_delay);
    }
}

/* Take a kernel lock (flock or fcntl) with retries; 0 or -1 (errno). */
static int kernel_lock(int fd, unsigned style, const struct mbox_options *options)
{
    for (int attempt = 1;; attempt++) {
        int r;
        if (style == MBOX_LOCK_FLOCK) {
            r = flock(fd, LOCK_EX | LOCK_NB);
        } else {
            struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            r = fcntl(fd, F_SETLK, &fl);
        }
        if (r == 0)
            return 0;
        if (errno == EACCES)
            errno = EAGAIN;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || attempt >= options->lock_attempts)
            return -1;
        sleep((unsigned)options->lock_delay);
    }
}

/* Open (or create, mode 0600) the mbox file for appending; sets *created. */
static int open_mbox(const char *path, int *created)
{
    *created = 0;
    for (;;) {
        int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK
                  | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *created = 1;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
}

/* fsync the directory holding path. */
static int fsync_parent(const char *path)
{
    struct strbuf dir = STRBUF_INIT;
    const char *slash = strrchr(path, '/');
    if (!slash)
        strbuf_puts(&dir, ".");
    else if (slash == path)
        strbuf_puts(&dir, "/");
    else
        strbuf_append(&dir, path, (size_t)(slash - path));
    int fd = open(dir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = fd >= 0 ? fsync(fd) : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    strbuf_free(&dir);
    errno = saved;
    return r;
}

/* Append the message to the open, locked file; 0 or -1 with status set.
 * On failure the file is truncated back to its old size. */
static int append_locked(int fd, const char *path, const struct mail_source *src,
                         off_t size_limit, const struct mbox_options *options,
                         struct mailbox_status *status)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        mailbox_status_set(status, "4.3.0", "fstat: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        msg_warn("destination %s is not a regular file", path);
        mailbox_status_set(status, "5.3.5", "mail system configuration error");
        return -1;
    }
    if (st.st_nlink != 1) {
        msg_warn("%s: file has %lu hard links", path, (unsigned long)st.st_nlink);
        mailbox_status_set(status, "4.2.0", "target file status changed unexpectedly");
        return -1;
    }
    if (options->check_owner && st.st_uid != options->owner) {
        msg_warn("specify \"strict_mailbox_ownership = no\" to ignore mailbox ownership mismatch");
        mailbox_status_set(status, "4.2.0", "destination %s is not owned by recipient", path);
        return -1;
    }
    off_t orig_size = st.st_size;
    status->offset = (long long)orig_size;
    off_t room = -1;
    if (size_limit > 0)
        room = size_limit > orig_size ? size_limit - orig_size : 0;
    struct strbuf prefix = STRBUF_INIT;
    mail_prefix(&prefix, src, 1);
    enum mail_copy_result copied = mail_copy(fd, src, &prefix, 1, room);
    strbuf_free(&prefix);
    if (copied == MAIL_COPY_OK && fsync(fd) != 0)
        copied = MAIL_COPY_WRITE_ERROR;
    if (copied == MAIL_COPY_OK)
        return 0;
    int saved = errno;
    if (ftruncate(fd, orig_size) != 0 || fsync(fd) != 0)
        msg_warn_errno("%s: cannot truncate back to %lld bytes", path, (long long)orig_size);
    mail_copy_status(status, copied, saved);
    return -1;
}

int mbox_deliver(const char *path, const struct mail_source *src,
                 off_t size_limit, const struct mbox_options *options,
                 struct mailbox_status *status)
{
    struct strbuf lock_path = STRBUF_INIT;
    int dotlocked = 0, result = -1, fd = -1, created = 0;
    if (options->lock_styles & MBOX_LOCK_DOTLOCK) {
        strbuf_printf(&lock_path, "%s.lock", path);
        if (dotlock_take(lock_path.s, options) != 0) {
            int err = errno;
            mailbox_status_set(status, mail_errno_dsn(err == EEXIST ? EAGAIN : err, "4.2.0"),
                               "unable to create lock file %s: %s", lock_path.s,
                               strerror(err));
            goto out;
        }
        dotlocked = 1;
    }
    if (options->write_as)
        options->write_as(options, 1);
    fd = open_mbox(path, &created);
    if (fd < 0) {
        mailbox_status_set(status, mail_errno_dsn(errno, "4.2.0"), "cannot open file: %s",
                           strerror(errno));
        goto out;
    }
    if (((options->lock_styles & MBOX_LOCK_FLOCK) && kernel_lock(fd, MBOX_LOCK_FLOCK, options) != 0)
        || ((options->lock_styles & MBOX_LOCK_FCNTL) && kernel_lock(fd, MBOX_LOCK_FCNTL, options) != 0)) {
        mailbox_status_set(status, mail_errno_dsn(errno, "4.2.0"),
                           "unable to lock for exclusive access: %s", strerror(errno));
        goto out;
    }
    if (append_locked(fd, path, src, size_limit, options, status) != 0)
        goto out;
    if (created && fsync_parent(path) != 0) {
        mailbox_status_set(status, "4.3.0", "fsync directory of %s: %s", path, strerror(errno));
        goto out;
    }
    result = 0;
out:
    if (fd >= 0 && close(fd) != 0 && result == 0) {
        mailbox_status_set(status, "4.3.0", "close: %s", strerror(errno));
        result = -1;
    }
    if (options->write_as)
        options->write_as(options, 0);
    if (dotlocked && unlink(lock_path.s) != 0)
        msg_warn_errno("remove lock file %s", lock_path.s);
    strbuf_free(&lock_path);
    if (result != 0) {
        struct strbuf why = STRBUF_INIT;
        strbuf_printf(&why, "delivery failed to mailbox %s: %s", path, status->text.s);
        strbuf_set(&status->text, why.s);
        strbuf_free(&why);
    }
    return result;
}
