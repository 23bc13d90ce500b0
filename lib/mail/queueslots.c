/* queueslots.c - the slots of recycle/ (doc/queue-format.md, "Commit"):
 * qmgr keeps them made (their names on disk before an injector writes a
 * message into one), and after a crash names the committed messages that
 * no queue name links, and empties what a dead writer left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queuefile.h"
#include "strbuf.h"

int queue_slots_stock(int queue_fd)
{
    int dfd = openat(queue_fd, QUEUE_RECYCLE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    struct stat dst;
    int made = 0;
    if (fstat(dfd, &dst) < 0) {
        int saved = errno;
        close(dfd);
        errno = saved;
        return -1;
    }
    for (unsigned n = 0; n < QUEUE_RECYCLE_SLOTS; n++) {
        char name[16];
        snprintf(name, sizeof name, "%u", n);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
        if (fd < 0)
            continue;               /* there already (or cannot be made: the injector makes it) */
        /* recycle/'s owner and group: mail_owner (qmgr sets a deferred
         * file's time, which only its owner may) and setgid_group (the
         * injectors write them) */
        struct stat st;
        if (fstat(fd, &st) == 0 && (st.st_uid != dst.st_uid || st.st_gid != dst.st_gid)
            && fchown(fd, dst.st_uid, dst.st_gid) < 0)
            (void)fchown(fd, (uid_t)-1, dst.st_gid);
        (void)fchmod(fd, 0660);
        (void)fsync(fd);            /* its owner, on disk with its name */
        close(fd);
        made++;
    }
    if (made && fsync(dfd) < 0) {
        int saved = errno;
        close(dfd);
        errno = saved;
        return -1;
    }
    close(dfd);
    return made;
}

/* An extra slot (made when all 64 were busy): removed once empty. */
static int extra_slot(const char *name)
{
    return strncmp(name, QUEUE_SLOT_EXTRA, strlen(QUEUE_SLOT_EXTRA)) == 0;
}

/* Name a committed message: a link incoming/ID.  1 when named (or already
 * named by that link), 0 when the name is another file's. */
static int name_slot(int queue_fd, int dfd, const char *slot, const char *id, ino_t ino)
{
    struct strbuf to = STRBUF_INIT;
    strbuf_printf(&to, "%s/%s", QUEUE_INCOMING, id);
    int r = linkat(dfd, slot, queue_fd, to.s, 0);
    struct stat st;
    if (r < 0 && errno == EEXIST && fstatat(queue_fd, to.s, &st, AT_SYMLINK_NOFOLLOW) == 0
        && st.st_ino == ino)
        r = 0;
    strbuf_free(&to);
    return r == 0;
}

/* Look at one slot; its state. */
static enum slot_state recover_one(int queue_fd, int dfd, const char *name,
                                   int (*skip)(ino_t, void *), void *arg,
                                   char *id, size_t id_size)
{
    id[0] = '\0';
    int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return SLOT_FREE;
    struct stat st;
    enum slot_state state = SLOT_FREE;
    /* linked from the queue (a live message), being written (locked), or
     * held open by the caller: not ours to look at */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1
        || (skip && skip(st.st_ino, arg)) || flock(fd, LOCK_EX | LOCK_NB) < 0
        || fstat(fd, &st) < 0 || st.st_nlink != 1) {
        close(fd);
        return SLOT_FREE;
    }
    if (st.st_size == 0) {
        if (extra_slot(name) && unlinkat(dfd, name, 0) == 0)
            state = SLOT_REMOVED;
        else if ((st.st_mode & 0777) != 0660 && st.st_uid == geteuid())
            (void)fchmod(fd, 0660); /* qmgr made it 0600 for a message (a crash since) */
        close(fd);
        return state;
    }
    struct queue_file qf;
    struct strbuf err = STRBUF_INIT;
    errno = 0;
    if (queue_file_read(fd, name, &qf, &err) < 0) {
        state = errno == 0 ? SLOT_INCOMPLETE : SLOT_FREE;   /* I/O error: later */
    } else {
        if (queue_file_verify(fd, &qf, &err) != 0) {
            state = SLOT_INCOMPLETE;    /* no checksum (never committed here) or torn */
        } else {
            snprintf(id, id_size, "%s", qf.commit_id);
            state = SLOT_FINISHED;
            for (size_t i = 0; i < qf.rcpt_count; i++)
                if (qf.rcpt[i].status != RCPT_DONE)
                    state = SLOT_COMMITTED;
        }
        queue_file_free(&qf);
    }
    strbuf_free(&err);
    if (state == SLOT_COMMITTED && !name_slot(queue_fd, dfd, name, id, st.st_ino))
        state = SLOT_FREE;          /* the name is another file's: next time */
    if (state == SLOT_FINISHED || state == SLOT_INCOMPLETE) {
        if (ftruncate(fd, 0) < 0)
            state = SLOT_FREE;
        else if (extra_slot(name))
            (void)unlinkat(dfd, name, 0);
        else if ((st.st_mode & 0777) != 0660 && st.st_uid == geteuid())
            (void)fchmod(fd, 0660);
    }
    close(fd);
    return state;
}

int queue_slots_recover(int queue_fd, int (*skip)(ino_t, void *),
                        void (*report)(enum slot_state, const char *slot,
                                       const char *id, void *), void *arg)
{
    int dfd = openat(queue_fd, QUEUE_RECYCLE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int lfd = dup(dfd);
    DIR *dir = lfd < 0 ? NULL : fdopendir(lfd);
    if (!dir) {
        int saved = errno;
        if (lfd >= 0)
            close(lfd);
        close(dfd);
        errno = saved;
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char id[32];
        enum slot_state state = recover_one(queue_fd, dfd, de->d_name, skip, arg, id, sizeof id);
        if (state != SLOT_FREE && report)
            report(state, de->d_name, id, arg);
    }
    closedir(dir);
    close(dfd);
    return 0;
}

int queue_file_unlink(int dir_fd, const char *path, int keep_content)
{
    int fd = openat(dir_fd, path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
        /* a slot links it too: the message must not come back from there.
         * Emptied, or when a reader may still use it, made invalid (its
         * first byte), which qmgr's recovery empties once nobody holds it */
        if (keep_content ? pwrite(fd, "X", 1, 0) != 1 || fdatasync(fd) < 0
                         : ftruncate(fd, 0) < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return unlinkat(dir_fd, path, 0);
}
