/* retry.c - the end of a message's round in the active queue: expiry
 * (maximal_queue_lifetime, bounce_queue_lifetime for the null sender),
 * notices (non-delivery, delay warning, success), then either removal
 * (nothing left to do: the emptied file goes to recycle/ for an injector
 * to reuse, doc/queue-format.md) or deferred/ with the next attempt time as mtime:
 * the time the message has spent in the queue, between
 * minimal_backoff_time and maximal_backoff_time, as Postfix's qmgr. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

/* Did the recipient ask for a success notice (NOTIFY=SUCCESS)?  Failure
 * and delay notices go to postern-bounce for every recipient concerned: it
 * leaves out of the sender's notice those whose NOTIFY does not ask, and
 * lists them all in postmaster copies (doc/delivery.md, "Notices"). */
static int notify_success(const struct queue_recipient *r)
{
    return r->notify && strcasestr(r->notify, "SUCCESS") != NULL;
}

/* Expire the message when its lifetime is over: the remaining recipients
 * fail with their last status. */
static void check_expiry(struct qmgr_message *msg, time_t now)
{
    long long lifetime = *msg->qf.sender ? qmgr.conf.maximal_queue_lifetime
                                         : qmgr.conf.bounce_queue_lifetime;
    if (now < msg->qf.arrival_sec + lifetime)
        return;
    int any = 0;
    for (size_t i = 0; i < msg->qf.rcpt_count; i++) {
        struct queue_recipient *r = &msg->qf.rcpt[i];
        if (r->status != RCPT_TODO)
            continue;
        if (!r->last_status) {
            struct strbuf record = STRBUF_INIT;
            strbuf_printf(&record, "S%lld 4.4.7 message expired", (long long)r->status_offset);
            queue_file_append(msg->fd, &msg->qf, strbuf_str(&record));
            r->last_status = xstrdup("4.4.7 message expired");
            strbuf_free(&record);
        }
        if (queue_file_set_status(msg->fd, r, RCPT_BOUNCE) != 0)
            msg_warn_errno("%s: mark recipient failed", msg->id);
        msg->dirty = 1;
        any = 1;
    }
    if (any) {
        struct strbuf sender = STRBUF_INIT;
        msg_info("%s: from=<%s>, status=expired, returned to sender", msg->id,
                 log_printable(&sender, msg->qf.sender, 0));
        strbuf_free(&sender);
    }
}

/* Start the notices this round calls for. */
static void start_notices(struct qmgr_message *msg, time_t now)
{
    size_t n = msg->qf.rcpt_count;
    size_t *list = xcalloc(n ? n : 1, sizeof *list);
    size_t count = 0;

    /* non-delivery: every recipient that failed */
    for (size_t i = 0; i < n; i++)
        if (msg->qf.rcpt[i].status == RCPT_BOUNCE)
            list[count++] = i;
    if (count)
        notice_start(msg, "failure", list, count);

    /* delay warning, once per message */
    count = 0;
    if (qmgr.conf.delay_warning_time > 0 && !msg->qf.delay_warned && *msg->qf.sender
        && now >= msg->qf.arrival_sec + qmgr.conf.delay_warning_time) {
        for (size_t i = 0; i < n; i++)
            if (msg->qf.rcpt[i].status == RCPT_TODO)
                list[count++] = i;
        if (count)
            notice_start(msg, "delay", list, count);
    }

    /* success notices for NOTIFY=SUCCESS; a sendmail -bv report for
     * every recipient decided this round */
    int report = message_is_report(msg);
    count = 0;
    for (size_t i = 0; i < n; i++)
        if (msg->round[i] == ROUND_SENT && (report || notify_success(&msg->qf.rcpt[i]))
            && !msg->qf.rcpt[i].success_noticed)
            list[count++] = i;
    if (count)
        notice_start(msg, report ? "verify" : "success", list, count);
    free(list);
}

/* Move the message to deferred/ with its next attempt time. */
static void defer_message(struct qmgr_message *msg, time_t now)
{
    long long delay = (long long)now - msg->qf.arrival_sec;
    if (delay > qmgr.conf.maximal_backoff_time)
        delay = qmgr.conf.maximal_backoff_time;
    if (delay < qmgr.conf.minimal_backoff_time)
        delay = qmgr.conf.minimal_backoff_time;
    due_set(msg->fd, msg->id, (time_t)(now + delay));
    if (queue_move(msg->id, QUEUE_ACTIVE, QUEUE_DEFERRED) != 0)
        msg_warn_errno("%s: move to %s", msg->id, QUEUE_DEFERRED);
    else
        qmgr.deferred_count++;
}

/* Remove a finished message from active/.  Its inode is a slot of
 * recycle/ (doc/queue-format.md, "Commit"): emptied, then the queue name
 * goes, and the slot is free for the next message; the content is gone
 * before the name.  A file of an older postern (no slot links it) is
 * removed. */
static void remove_message(struct qmgr_message *msg)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", QUEUE_ACTIVE, msg->id);
    struct stat st;
    if (fstat(msg->fd, &st) == 0 && st.st_nlink > 1) {
        if (ftruncate(msg->fd, 0) != 0)
            msg_warn_errno("%s: empty", msg->id);
        else if ((st.st_mode & 0777) != 0660 && st.st_uid == geteuid())
            (void)fchmod(msg->fd, 0660);    /* free: the injectors' group writes it */
    }
    if (unlinkat(qmgr.queue_fd, strbuf_str(&path), 0) != 0 && errno != ENOENT)
        msg_warn_errno("%s: remove", msg->id);
    else
        msg_info("%s: removed", msg->id);
    strbuf_free(&path);
}

void message_round_done(struct qmgr_message *msg)
{
    time_t now = time(NULL);
    if (msg->phase == PHASE_DELIVER) {
        msg->phase = PHASE_NOTIFY;
        check_expiry(msg, now);
        start_notices(msg, now);
        if (msg->outstanding > 0)
            return;
    }
    int left = 0;
    for (size_t i = 0; i < msg->qf.rcpt_count; i++)
        if (msg->qf.rcpt[i].status != RCPT_DONE)
            left = 1;
    if (!left) {
        remove_message(msg);
    } else {
        message_sync(msg);
        defer_message(msg, now);
    }
    message_free(msg);
}
