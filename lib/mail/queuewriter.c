/* queuewriter.c - writing a new queue file (postern-queue): into a slot
 * of recycle/ whose name is already on disk, taken with flock (a new slot,
 * and an fsync of recycle/, only when none is free), one write for the
 * records of a small message, large writes for the content, a commit
 * record with the id and a CRC-32C, one fdatasync, then a link under the
 * queue id in incoming/ (doc/queue-format.md, "Commit").  A queue without
 * recycle/ gets the older commit: a dot-file in incoming/, fsync, rename
 * to the id, fsync of the directory.  A file is named by an id only once
 * it is complete and on disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

#define WRITER_FLUSH    (128 * 1024)    /* buffer content up to this much */
#define LENGTH_DIGITS   12              /* the M record is patched in place */

/* Set err to "what: strerror(errno)" keeping errno. */
static void set_errno_err(struct strbuf *err, const char *what)
{
    int saved = errno;
    strbuf_reset(err);
    strbuf_printf(err, "%s: %s", what, strerror(saved));
    errno = saved;
}

/* Derive the queue id: the microseconds of now (5 hex digits) and the inode. */
static void make_id(struct queue_writer *w, long usec, ino_t inode)
{
    snprintf(w->id, sizeof w->id, "%05lX%llX", (unsigned long)usec & 0xFFFFF,
             (unsigned long long)inode);
}

/* 1 when st is a free slot: an empty plain file with no other name. */
static int slot_free(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_size == 0;
}

/* Take a free slot of recycle/: open it, lock it (flock, so that no other
 * injector and not qmgr's recovery touch it until we are done; a killed
 * writer's lock goes with it) and look again under the lock.  The slots
 * have fixed names, so no directory is read: each is looked at from a
 * random one on or, in a process that took one before (a worker of the
 * queue service), from the slot after that one: qmgr empties them in
 * turn, so that is where the next free one usually is.  When all are
 * busy, make one: the first missing name, else an extra slot that qmgr
 * removes once it is emptied.  0 with w->fd open, -1 when there is no
 * recycle/ (an older queue), -2 (errno) when nothing could be had there. */
static int take_slot(struct queue_writer *w, const char *queue_dir)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_RECYCLE, queue_dir);
    w->slot_dir_fd = open(path.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int open_errno = errno;
    strbuf_free(&path);
    if (w->slot_dir_fd < 0) {
        errno = open_errno;
        return errno == ENOENT ? -1 : -2;   /* only a missing recycle/ is an older queue */
    }
    static unsigned hint = QUEUE_RECYCLE_SLOTS;    /* none yet */
    unsigned start = hint;
    if (start >= QUEUE_RECYCLE_SLOTS) {
        struct timeval now;
        gettimeofday(&now, NULL);
        start = (unsigned)getpid() * 31u + (unsigned)now.tv_usec;
    }
    int missing = -1;
    for (unsigned i = 0; i < QUEUE_RECYCLE_SLOTS; i++) {
        unsigned n = (start + i) % QUEUE_RECYCLE_SLOTS;
        char name[16];
        struct stat st;
        snprintf(name, sizeof name, "%u", n);
        int fd = openat(w->slot_dir_fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT && missing < 0)
                missing = (int)n;
            continue;
        }
        if (fstat(fd, &st) == 0 && slot_free(&st) && flock(fd, LOCK_EX | LOCK_NB) == 0
            && fstat(fd, &st) == 0 && slot_free(&st)) {
            w->fd = fd;
            snprintf(w->slot, sizeof w->slot, "%s", name);
            hint = (n + 1) % QUEUE_RECYCLE_SLOTS;
            return 0;
        }
        close(fd);
    }
    /* none free: a new slot, whose name goes to disk with the fsync of
     * recycle/ in queue_writer_commit.  An extra slot's name carries the
     * time as well as the pid: a pid comes back (a restarted PID
     * namespace or container, a queue service's worker that lives for
     * many messages), and x<pid>.<n> names left by an earlier life made
     * every attempt collide */
    static unsigned serial;
    struct timeval made;
    gettimeofday(&made, NULL);
    for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
        if (missing >= 0 && attempt == 0)
            snprintf(w->slot, sizeof w->slot, "%d", missing);
        else
            snprintf(w->slot, sizeof w->slot, QUEUE_SLOT_EXTRA "%lx%05lx.%ld.%u",
                     (unsigned long)made.tv_sec, (unsigned long)made.tv_usec, (long)getpid(),
                     serial++);
        int fd = openat(w->slot_dir_fd, w->slot,
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
        if (fd < 0 && errno != EEXIST)
            break;
        struct stat st;
        if (fd >= 0 && (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 || st.st_nlink != 1)) {
            close(fd);              /* locked, or removed by qmgr's recovery, between
                                       create and lock */
            continue;
        }
        if (fd >= 0) {
            w->fd = fd;
            w->slot_new = 1;
        }
    }
    if (w->fd >= 0)
        return 0;
    int saved = errno;
    w->slot[0] = '\0';
    close(w->slot_dir_fd);
    w->slot_dir_fd = -1;
    errno = saved ? saved : EAGAIN;
    return -2;
}

int queue_writer_open(struct queue_writer *w, const char *queue_dir,
                      struct strbuf *err)
{
    static unsigned serial;
    memset(w, 0, sizeof *w);
    w->fd = w->dir_fd = w->slot_dir_fd = -1;
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_INCOMING, queue_dir);
    w->dir_fd = open(path.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
        set_errno_err(err, path.s);
        strbuf_free(&path);
        return -1;
    }
    strbuf_free(&path);
    /* qmgr (mail_owner, the owner of incoming/) can set the next attempt
     * time, the mtime, only of a file it owns: root gives it its files,
     * as Postfix's cleanup creates every queue file as mail_owner.  Others
     * cannot; qmgr copes (bin/postern-qmgr/due.c). */
    struct stat st;
    w->owner = geteuid();
    if (w->owner == 0 && fstat(w->dir_fd, &st) == 0)
        w->owner = st.st_uid;
    int slotted = take_slot(w, queue_dir);
    if (slotted == -2) {
        /* a queue with recycle/ where no slot could be had: the older
         * commit is not safe beside slots (qmgr's moves are not fsynced,
         * doc/queue-format.md "Commit"), so the message is refused for
         * now rather than stored where a power cut can lose it */
        set_errno_err(err, "take a slot in " QUEUE_RECYCLE);
        int saved = errno;
        queue_writer_abort(w);
        errno = saved;
        return -1;
    }
    if (slotted < 0) {
        do {
            snprintf(w->tmp_name, sizeof w->tmp_name, ".tmp.%ld.%u", (long)getpid(), serial++);
            w->fd = openat(w->dir_fd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
        } while (w->fd < 0 && errno == EEXIST);
    }
    if (w->fd >= 0 && w->owner != geteuid() && (!w->slot[0] || w->slot_new)
        && fchown(w->fd, w->owner, (gid_t)-1) < 0)
        w->owner = geteuid();       /* kept ours: only the retry time suffers */
    if (w->fd < 0 || fstat(w->fd, &st) < 0) {
        set_errno_err(err, "create a queue file in " QUEUE_INCOMING);
        int saved = errno;
        queue_writer_abort(w);
        errno = saved;
        return -1;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    make_id(w, (long)now.tv_usec, st.st_ino);
    w->buf = xmalloc(sizeof *w->buf);
    *w->buf = (struct strbuf)STRBUF_INIT;
    strbuf_grow(w->buf, 4096);
    strbuf_printf(w->buf, "V1\nt%lld.%06ld\n", (long long)now.tv_sec, (long)now.tv_usec);
    return 0;
}

/* Append one header record "<type><value>\n". */
static void put_record(struct queue_writer *w, int type, const char *value)
{
    if (strchr(value, '\n'))
        w->bad_value = 1;
    strbuf_putc(w->buf, type);
    strbuf_puts(w->buf, value);
    strbuf_putc(w->buf, '\n');
}

void queue_writer_sender(struct queue_writer *w, const char *sender)
{
    put_record(w, 'F', sender);
}

void queue_writer_attr(struct queue_writer *w, const char *name_eq_value)
{
    put_record(w, 'A', name_eq_value);
}

void queue_writer_recipient(struct queue_writer *w, const char *address)
{
    put_record(w, RCPT_TODO, address);
}

void queue_writer_rcpt_attr(struct queue_writer *w, const char *name_eq_value)
{
    put_record(w, 'P', name_eq_value);
}

/* Write out the buffer.  0 or -1 (errno). */
static int flush_buffer(struct queue_writer *w)
{
    if (w->buf->len == 0)
        return 0;
    if (write_all(w->fd, w->buf->s, w->buf->len) < 0)
        return -1;
    w->flushed += (off_t)w->buf->len;
    strbuf_reset(w->buf);
    return 0;
}

int queue_writer_begin_content(struct queue_writer *w)
{
    /* the checksum covers the records before M (nothing is flushed yet),
     * the content and the id (queue_file_verify) */
    w->crc = crc32c(0, w->buf->s, w->buf->len);
    w->length_offset = w->flushed + (off_t)w->buf->len + 1;
    strbuf_printf(w->buf, "M%0*d\n", LENGTH_DIGITS, 0);
    w->content_length = 0;
    return 0;
}

int queue_writer_content(struct queue_writer *w, const void *bytes, size_t n)
{
    w->content_length += (off_t)n;
    w->crc = crc32c(w->crc, bytes, n);
    if (w->buf->len + n <= WRITER_FLUSH) {
        strbuf_append(w->buf, bytes, n);
        return 0;
    }
    if (flush_buffer(w) < 0)
        return -1;
    if (n >= WRITER_FLUSH / 2) {
        if (write_all(w->fd, bytes, n) < 0)
            return -1;
        w->flushed += (off_t)n;
        return 0;
    }
    strbuf_append(w->buf, bytes, n);
    return 0;
}

/* Write the content length into the M record, in the buffer when it is
 * still there, else with pwrite.  0 or -1 (errno). */
static int patch_length(struct queue_writer *w)
{
    char digits[LENGTH_DIGITS + 1];
    snprintf(digits, sizeof digits, "%0*lld", LENGTH_DIGITS, (long long)w->content_length);
    if (w->length_offset >= w->flushed) {
        memcpy(w->buf->s + (w->length_offset - w->flushed), digits, LENGTH_DIGITS);
        return 0;
    }
    ssize_t r;
    do
        r = pwrite(w->fd, digits, LENGTH_DIGITS, w->length_offset);
    while (r < 0 && errno == EINTR);
    if (r == LENGTH_DIGITS)
        return 0;
    if (r >= 0)
        errno = EIO;
    return -1;
}

/* Give the temporary file its name: renameat2(RENAME_NOREPLACE), a new
 * microsecond on a clash, link+unlink where the file system lacks the flag. */
static int name_file(struct queue_writer *w)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int r = renameat2(w->dir_fd, w->tmp_name, w->dir_fd, w->id, RENAME_NOREPLACE);
        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
            r = linkat(w->dir_fd, w->tmp_name, w->dir_fd, w->id, 0);
            if (r == 0)
                (void)unlinkat(w->dir_fd, w->tmp_name, 0);
        }
        if (r == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
        struct stat st;
        struct timeval now;
        if (fstat(w->fd, &st) < 0)
            return -1;
        gettimeofday(&now, NULL);
        make_id(w, (long)now.tv_usec + attempt + 1, st.st_ino);
    }
    errno = EEXIST;
    return -1;
}

/* The older commit, for a queue without recycle/: fsync, rename to the id,
 * fsync of incoming/. */
static int commit_renamed(struct queue_writer *w, const char **step)
{
    if ((*step = "fsync queue file", fsync(w->fd) < 0)
        || (*step = "rename queue file", name_file(w) < 0))
        return -1;
    w->tmp_name[0] = '\0';          /* the file is named by its id now */
    if (fsync(w->dir_fd) < 0) {
        *step = "fsync queue directory";
        (void)unlinkat(w->dir_fd, w->id, 0);
        return -1;
    }
    return 0;
}

/* The one-fsync commit: the slot's name is on disk already (or goes there
 * with the fsync of recycle/ for a slot made now), so the file's
 * fdatasync commits the message; the link under the id is for qmgr and
 * the administrator, and needs no fsync (a crash before it is on disk
 * leaves the committed slot, which qmgr names at its start). */
static int commit_slot(struct queue_writer *w, const char **step)
{
    /* a slot made now also has its owner and mode to make durable: fsync,
     * not fdatasync (else a cut may give it back to root, unreadable by
     * qmgr's recovery) */
    if ((*step = "fsync queue file", (w->slot_new ? fsync(w->fd) : fdatasync(w->fd)) < 0)
        || (w->slot_new && (*step = "fsync queue slot directory", fsync(w->slot_dir_fd) < 0)))
        return -1;
    *step = "link queue file";
    if (linkat(w->slot_dir_fd, w->slot, w->dir_fd, w->id, 0) < 0)
        return -1;
    return 0;
}

int queue_writer_commit(struct queue_writer *w, struct strbuf *err)
{
    if (w->bad_value) {
        strbuf_set(err, "envelope value with a line feed");
        queue_writer_abort(w);
        errno = EINVAL;
        return -1;
    }
    /* the commit record: E, the id, the checksum (doc/queue-format.md) */
    w->crc = crc32c(w->crc, w->id, strlen(w->id));
    strbuf_printf(w->buf, "\nE%s %08X\n", w->id, (unsigned)w->crc);
    const char *step = "write queue file";
    if (patch_length(w) < 0 || flush_buffer(w) < 0
        || (w->slot[0] ? commit_slot(w, &step) : commit_renamed(w, &step)) < 0)
        goto fail;
    /* committed and linked: a failing close changes nothing on disk (the
     * data is synced), and undoing the link would leave a committed slot
     * that recovery delivers after the client was told to try again */
    if (close(w->fd) < 0 && !w->slot[0]) {
        w->fd = -1;
        step = "close queue file";
        (void)unlinkat(w->dir_fd, w->id, 0);
        goto fail;
    }
    w->fd = -1;
    w->slot[0] = '\0';              /* linked: qmgr's from here on */
    queue_writer_abort(w);          /* releases what is left; nothing to remove */
    return 0;
fail:
    set_errno_err(err, step);
    int saved = errno;
    queue_writer_abort(w);
    errno = saved;
    return -1;
}

void queue_writer_abort(struct queue_writer *w)
{
    /* a slot we hold is emptied before its lock goes (a new extra slot is
     * removed); on a crash qmgr's recovery empties it */
    if (w->fd >= 0 && w->slot[0]) {
        if (ftruncate(w->fd, 0) == 0 && w->slot_new
            && strncmp(w->slot, QUEUE_SLOT_EXTRA, strlen(QUEUE_SLOT_EXTRA)) == 0)
            (void)unlinkat(w->slot_dir_fd, w->slot, 0);
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->slot_dir_fd >= 0)
        close(w->slot_dir_fd);
    if (w->dir_fd >= 0 && w->tmp_name[0])
        (void)unlinkat(w->dir_fd, w->tmp_name, 0);
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    if (w->buf) {
        strbuf_free(w->buf);
        free(w->buf);
    }
    w->fd = w->dir_fd = w->slot_dir_fd = -1;
    w->tmp_name[0] = w->slot[0] = '\0';
    w->buf = NULL;
}
