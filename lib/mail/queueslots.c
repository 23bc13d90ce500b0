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

/* Make one slot under its staging name (owner, group, mode and name to
 * be made durable by the caller's fsync of recycle/): its fd, or -1. */
static int stage_slot(int dfd, const struct stat *dst, const char *staged)
{
    int fd = openat(dfd, staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (fd < 0 && errno == EEXIST) {
        /* left by a stock that did not finish; recovery names one with a
         * message, so an empty one is ours to make again */
        struct stat st;
        if (fstatat(dfd, staged, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)
            || st.st_size != 0 || st.st_nlink != 1 || unlinkat(dfd, staged, 0) < 0)
            return -1;
        fd = openat(dfd, staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
    }
    if (fd < 0)
        return -1;
    /* recycle/'s owner and group: mail_owner (qmgr sets a deferred
     * file's time, which only its owner may) and setgid_group (the
     * injectors write them) */
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_uid != dst->st_uid || st.st_gid != dst->st_gid)
        && fchown(fd, dst->st_uid, dst->st_gid) < 0)
        (void)fchown(fd, (uid_t)-1, dst->st_gid);
    (void)fchmod(fd, 0660);
    (void)fsync(fd);                /* its owner and mode, on disk with its name */
    return fd;
}

int queue_slots_stock(int queue_fd)
{
    int dfd = openat(queue_fd, QUEUE_RECYCLE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    struct stat dst;
    if (fstat(dfd, &dst) < 0) {
        int saved = errno;
        close(dfd);
        errno = saved;
        return -1;
    }
    /* A missing slot is made under a name no injector takes
     * (QUEUE_SLOT_STAGED N) and renamed to N only after recycle/ is
     * fsynced: an injector that took N at once could commit a message
     * (one fdatasync) whose slot's name was not yet on disk.  The rename
     * needs no fsync: if it is lost, the staged name holds the message,
     * and recovery names it from there. */
    unsigned char staged[QUEUE_RECYCLE_SLOTS] = {0};
    int made = 0;
    for (unsigned n = 0; n < QUEUE_RECYCLE_SLOTS; n++) {
        char name[16], stage[24];
        snprintf(name, sizeof name, "%u", n);
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
            continue;               /* there already (or cannot be looked at) */
        snprintf(stage, sizeof stage, QUEUE_SLOT_STAGED "%u", n);
        int fd = stage_slot(dfd, &dst, stage);
        if (fd < 0)
            continue;               /* cannot be made: the injector makes it */
        close(fd);
        staged[n] = 1;
        made++;
    }
    if (made && fsync(dfd) < 0) {
        int saved = errno;
        close(dfd);
        errno = saved;
        return -1;
    }
    made = 0;
    for (unsigned n = 0; n < QUEUE_RECYCLE_SLOTS; n++) {
        if (!staged[n])
            continue;
        char name[16], stage[24];
        snprintf(name, sizeof name, "%u", n);
        snprintf(stage, sizeof stage, QUEUE_SLOT_STAGED "%u", n);
        if (renameat2(dfd, stage, dfd, name, RENAME_NOREPLACE) == 0)
            made++;
        else
            (void)unlinkat(dfd, stage, 0);  /* an injector made N meanwhile */
    }
    close(dfd);
    return made;
}

/* An extra slot (made when all 64 were busy), or a staged one a stock
 * left (its rename lost in a crash): removed once empty. */
static int extra_slot(const char *name)
{
    return strncmp(name, QUEUE_SLOT_EXTRA, strlen(QUEUE_SLOT_EXTRA)) == 0
        || strncmp(name, QUEUE_SLOT_STAGED, strlen(QUEUE_SLOT_STAGED)) == 0;
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
        if (de->d_name[0] == '.'
            && strncmp(de->d_name, QUEUE_SLOT_STAGED, strlen(QUEUE_SLOT_STAGED)) != 0)
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
