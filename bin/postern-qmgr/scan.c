/* scan.c - taking messages into the active queue: active/ (left by a
 * crash) at start, incoming/ on a trigger and every second, deferred/
 * every queue_run_delay (files whose mtime, the next attempt time, has
 * come; all of them on a flush).  hold/ is never looked at.  A file that
 * does not parse goes to corrupt/ with a log line. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

#define STALE_TEMP_SECONDS 86400    /* injector leftovers older than this go */

int queue_dir_fd(const char *name)
{
    return openat(qmgr.queue_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Is the message already in the active queue (in memory)? */
static int message_known(const char *id)
{
    for (struct qmgr_message *m = qmgr.messages; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return 1;
    return 0;
}

void message_free(struct qmgr_message *msg)
{
    if (msg->prev)
        msg->prev->next = msg->next;
    else if (qmgr.messages == msg)
        qmgr.messages = msg->next;
    if (msg->next)
        msg->next->prev = msg->prev;
    if ((long long)qmgr.message_count >= qmgr.conf.message_active_limit)
        qmgr.room_freed = 1;        /* the main loop scans incoming/ again */
    qmgr.message_count--;
    if (msg->fd >= 0)
        close(msg->fd);
    queue_file_free(&msg->qf);
    free(msg->round);
    free(msg->id);
    free(msg);
}

int queue_move(const char *id, const char *from_queue, const char *to_queue)
{
    struct strbuf from = STRBUF_INIT, to = STRBUF_INIT;
    strbuf_printf(&from, "%s/%s", from_queue, id);
    strbuf_printf(&to, "%s/%s", to_queue, id);
    int result = renameat(qmgr.queue_fd, strbuf_str(&from), qmgr.queue_fd, strbuf_str(&to));
    int saved = errno;
    strbuf_free(&from);
    strbuf_free(&to);
    errno = saved;
    return result == 0 ? 0 : -1;
}

/* Move a file that does not parse to corrupt/. */
static void move_corrupt(const char *id, const char *reason)
{
    msg_warn("%s: corrupt queue file: %s", id, reason);
    if (queue_move(id, QUEUE_ACTIVE, QUEUE_CORRUPT) != 0)
        msg_warn_errno("%s: move to %s", id, QUEUE_CORRUPT);
}

/* Put a file that could not be read into deferred/ for a later attempt. */
static void postpone(int fd, const char *id)
{
    due_set(fd, id, time(NULL) + (time_t)qmgr.conf.minimal_backoff_time);
    if (queue_move(id, QUEUE_ACTIVE, QUEUE_DEFERRED) != 0)
        msg_warn_errno("%s: move to %s", id, QUEUE_DEFERRED);
}

/* Take one message: rename from `queue` into active/ (unless it is there),
 * read it and hand it to the scheduler.  Returns 1 when taken. */
static int take_message(const char *queue, const char *id, int flush)
{
    /* ids are unique while their file exists (doc/queue-format.md), so only
     * a file in active/ can be a message already in memory */
    if (strcmp(queue, QUEUE_ACTIVE) == 0 && message_known(id))
        return 0;
    if (strcmp(queue, QUEUE_ACTIVE) != 0 && queue_move(id, queue, QUEUE_ACTIVE) != 0) {
        if (errno != ENOENT)
            msg_warn_errno("%s: move from %s to %s", id, queue, QUEUE_ACTIVE);
        return 0;
    }
    due_forget(id);
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", QUEUE_ACTIVE, id);
    int fd = openat(qmgr.queue_fd, strbuf_str(&path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        msg_warn_errno("%s: open in %s", id, QUEUE_ACTIVE);
        strbuf_free(&path);
        return 0;
    }
    /* an empty file in active/ is a finished message that qmgr emptied
     * for recycle/ and could not move before it was stopped (retry.c):
     * the queue never names an incomplete file (queue_writer_commit
     * fsyncs before the rename, t/88-durability.t shows it).  qmgr empties files only
     * in active/, so an empty file anywhere else is corrupt. */
    struct stat st;
    int empty = fstat(fd, &st) == 0 && st.st_size == 0;
    if (empty && strcmp(queue, QUEUE_ACTIVE) != 0) {
        struct strbuf why = STRBUF_INIT;
        strbuf_printf(&why, "empty file in %s/", queue);
        move_corrupt(id, strbuf_str(&why));
        strbuf_free(&why);
        strbuf_free(&path);
        close(fd);
        return 0;
    }
    if (empty) {
        if (unlinkat(qmgr.queue_fd, strbuf_str(&path), 0) != 0 && errno != ENOENT)
            msg_warn_errno("%s: remove", id);
        else
            msg_info("%s: removed (finished before a restart)", id);
        strbuf_free(&path);
        close(fd);
        return 0;
    }
    strbuf_free(&path);
    /* a slot's file (doc/queue-format.md, "Commit") is the group's to
     * write only while it is free: from here on mail_owner's alone, so
     * that a subverted injector cannot change queued mail */
    if (st.st_nlink > 1 && (st.st_mode & 0077) && st.st_uid == geteuid())
        (void)fchmod(fd, 0600);
    struct qmgr_message *msg = xcalloc(1, sizeof *msg);
    msg->id = xstrdup(id);
    msg->fd = fd;
    msg->ino = st.st_ino;
    msg->flush = flush;
    struct strbuf err = STRBUF_INIT;
    errno = 0;
    /* a new message is also checked against its commit record's checksum
     * (doc/queue-format.md, "Commit"): a file that does not match is no
     * message */
    int read_ok = queue_file_read(fd, id, &msg->qf, &err) == 0;
    if (!read_ok || (strcmp(queue, QUEUE_INCOMING) == 0
                     && queue_file_verify(fd, &msg->qf, &err) < 0)) {
        if (errno != 0) {
            /* an I/O error is no verdict on the file: try again later */
            msg_warn("%s: cannot read queue file: %s; trying again later", id,
                     err.len ? strbuf_str(&err) : strerror(errno));
            postpone(fd, id);
        } else {
            move_corrupt(id, strbuf_str(&err));
        }
        strbuf_free(&err);
        close(fd);
        if (read_ok)
            queue_file_free(&msg->qf);
        free(msg->id);
        free(msg);
        return 0;
    }
    strbuf_free(&err);
    if (strcmp(queue, QUEUE_INCOMING) == 0 && queue_file_attr(&msg->qf, "hold")) {
        /* HOLD of header_checks or an access table (doc/queue-format.md):
         * the queue stored it; it waits in hold/ for `postern queue release` */
        if (queue_move(id, QUEUE_ACTIVE, QUEUE_HOLD) != 0)
            msg_warn_errno("%s: move to %s", id, QUEUE_HOLD);
        close(fd);
        queue_file_free(&msg->qf);
        free(msg->id);
        free(msg);
        return 0;
    }
    gettimeofday(&msg->active_time, NULL);
    msg->round = xcalloc(msg->qf.rcpt_count ? msg->qf.rcpt_count : 1, 1);
    msg->next = qmgr.messages;
    if (qmgr.messages)
        qmgr.messages->prev = msg;
    qmgr.messages = msg;
    qmgr.message_count++;
    struct strbuf sender = STRBUF_INIT;
    msg_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)", id,
             log_printable(&sender, msg->qf.sender, 0),
             (long long)msg->qf.content_length, msg->qf.rcpt_count);
    strbuf_free(&sender);
    schedule_message(msg);
    return 1;
}

/* Is there room in the active queue? */
static int room(void)
{
    return (long long)qmgr.message_count < qmgr.conf.message_active_limit;
}

/* A queue subdirectory to read (its descriptor in *dfd), or NULL (logged). */
static DIR *queue_dir_open(const char *queue, int *dfd)
{
    *dfd = queue_dir_fd(queue);
    if (*dfd < 0) {
        msg_warn_errno("open %s/%s", qmgr.conf.queue_directory, queue);
        return NULL;
    }
    DIR *dir = fdopendir(*dfd);
    if (!dir) {
        msg_warn_errno("read %s/%s", qmgr.conf.queue_directory, queue);
        close(*dfd);
    }
    return dir;
}

/* Take the files of one queue directory (only those due when due_only);
 * left_over says whether some stayed for lack of room. */
static void scan_dir(const char *queue, int flush, int due_only, int *left_over)
{
    int dfd;
    DIR *dir = queue_dir_open(queue, &dfd);
    if (!dir)
        return;
    time_t now = time(NULL);
    size_t count = 0;
    struct dirent *de;
    if (left_over)
        *left_over = 0;
    if (due_only)
        due_scan_begin();
    while ((de = readdir(dir)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') {
            struct stat st;
            if (strcmp(queue, QUEUE_INCOMING) == 0 && strcmp(name, ".") != 0
                && strcmp(name, "..") != 0
                && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
                && now - st.st_mtime > STALE_TEMP_SECONDS
                && unlinkat(dfd, name, 0) == 0)
                msg_info("removed stale temporary file %s/%s", queue, name);
            continue;
        }
        if (!queue_id_valid(name))
            continue;
        if (due_only) {
            struct stat st;
            if (fstatat(dfd, name, &st, 0) != 0 || !due_now(name, &st, now)) {
                count++;
                continue;
            }
        }
        if (!room()) {
            if (left_over)
                *left_over = 1;
            count++;
            continue;
        }
        if (!take_message(queue, name, flush))
            count++;
    }
    closedir(dir);
    if (due_only)
        due_scan_end();
    if (strcmp(queue, QUEUE_DEFERRED) == 0)
        qmgr.deferred_count = count;
}

void scan_active(void)
{
    int left = 0;
    scan_dir(QUEUE_ACTIVE, 0, 0, &left);
    qmgr.active_leftover = left;
}

/* queue_slots_recover's skip: an inode of a message in memory. */
static int held_inode(ino_t ino, void *arg)
{
    (void)arg;
    for (struct qmgr_message *m = qmgr.messages; m; m = m->next)
        if (m->ino == ino)
            return 1;
    return 0;
}

static void slot_report(enum slot_state state, const char *slot, const char *id, void *arg)
{
    if (state == SLOT_COMMITTED)
        ++*(int *)arg;
    if (state == SLOT_COMMITTED)
        msg_info("%s: named from %s/%s (committed before a crash)", id, QUEUE_RECYCLE, slot);
    else if (state == SLOT_INCOMPLETE)
        msg_info("emptied %s/%s: no valid commit record (an injection that did not finish)",
                 QUEUE_RECYCLE, slot);
    else if (state == SLOT_FINISHED)
        msg_info("%s: emptied %s/%s (finished before a restart)", id, QUEUE_RECYCLE, slot);
}

int scan_slots(void)
{
    int named = 0;
    if (queue_slots_recover(qmgr.queue_fd, held_inode, slot_report, &named) < 0) {
        if (errno != ENOENT)
            msg_warn_errno("read %s/%s", qmgr.conf.queue_directory, QUEUE_RECYCLE);
        return 0;                   /* no recycle/: an older queue */
    }
    if (queue_slots_stock(qmgr.queue_fd) < 0)
        msg_warn_errno("make the slots of %s/%s", qmgr.conf.queue_directory, QUEUE_RECYCLE);
    return named;
}

void scan_incoming(void)
{
    scan_dir(QUEUE_INCOMING, 0, 0, NULL);
}

void scan_deferred(int flush)
{
    scan_dir(QUEUE_DEFERRED, flush, !flush, NULL);
}

/* Whether the deferred file name has a recipient still to do whose
 * domain is one of domains. */
static int for_sites(int dfd, const char *name, const struct strlist *domains)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct queue_file qf;
    struct strbuf err = STRBUF_INIT;
    int found = 0;
    if (queue_file_read(fd, name, &qf, &err) == 0) {
        for (size_t i = 0; i < qf.rcpt_count && !found; i++) {
            const char *at = strrchr(qf.rcpt[i].address, '@');
            if (qf.rcpt[i].status != RCPT_TODO || !at)
                continue;
            for (size_t k = 0; k < domains->count && !found; k++)
                found = strcasecmp(at + 1, domains->item[k]) == 0;
        }
        queue_file_free(&qf);
    }
    strbuf_free(&err);
    close(fd);
    return found;
}

void scan_deferred_sites(const struct strlist *domains)
{
    int dfd;
    DIR *dir = queue_dir_open(QUEUE_DEFERRED, &dfd);
    if (!dir)
        return;
    struct dirent *de;
    size_t taken = 0;
    while ((de = readdir(dir)) != NULL && room())
        if (queue_id_valid(de->d_name) && for_sites(dfd, de->d_name, domains)
            && take_message(QUEUE_DEFERRED, de->d_name, 1))
            taken++;
    closedir(dir);
    struct strbuf names = STRBUF_INIT;
    for (size_t k = 0; k < domains->count; k++)
        strbuf_printf(&names, "%s%s", k ? ", " : "", domains->item[k]);
    msg_info("flush %s: %zu message%s taken from the deferred queue", names.s, taken,
             taken == 1 ? "" : "s");
    strbuf_free(&names);
}
