/* notify.c - asking postern-bounce for non-delivery, delay and success
 * notices (doc/delivery.md, "Notices") and recording what was sent:
 * failed recipients become D, a delay warning appends W, a success notice
 * appends N.  When postern-bounce is missing or answers Z, failed
 * recipients stay B and the notice is tried again at the next attempt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

void request_common(struct strbuf *req, struct qmgr_message *msg, const char *nexthop)
{
    record_put(req, 'Q', msg->id);
    record_put(req, 'F', msg->qf.sender);
    if (nexthop)
        record_put(req, 'H', nexthop);
    record_putf(req, 'M', "%lld,%lld", (long long)msg->qf.content_offset,
                (long long)msg->qf.content_length);
    for (size_t i = 0; i < msg->qf.attrs.count; i++)
        record_put(req, 'A', msg->qf.attrs.item[i]);
    record_putf(req, 'A', "arrival=%lld", msg->qf.arrival_sec);
}

/* The notice program. */
static char *bounce_program(void)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-bounce", qmgr.conf.daemon_directory);
    return strbuf_detach(&path);
}

int notice_start(struct qmgr_message *msg, const char *kind, size_t *rcpt, size_t count)
{
    if (qmgr.stopping)
        return -1;              /* SIGTERM: nothing new starts; tried next time */
    char *program = bounce_program();
    if (access(program, X_OK) != 0) {
        msg_warn("%s: cannot send %s notice: %s: %s", msg->id, kind, program,
                 strerror(errno));
        free(program);
        return -1;
    }
    message_sync(msg);
    struct qmgr_job *job = xcalloc(1, sizeof *job);
    job->kind = JOB_NOTICE;
    job->notice_kind = kind;
    job->msg = msg;
    job->result_fd = -1;
    job->rcpt = xcalloc(count, sizeof *job->rcpt);
    memcpy(job->rcpt, rcpt, count * sizeof *rcpt);
    job->rcpt_count = count;
    gettimeofday(&job->handoff, NULL);

    struct strbuf req = STRBUF_INIT;
    request_common(&req, msg, NULL);
    record_put(&req, 'X', kind);
    for (size_t k = 0; k < count; k++) {
        struct queue_recipient *r = &msg->qf.rcpt[rcpt[k]];
        record_put(&req, 'T', r->address);
        if (r->orcpt)
            record_putf(&req, 'P', "ORCPT=%s", r->orcpt);
        if (r->notify)
            record_putf(&req, 'P', "NOTIFY=%s", r->notify);
        const char *status = r->last_status;
        if (!status)
            status = strcmp(kind, "success") == 0 ? "2.0.0 delivered" : "4.0.0 unknown";
        record_put(&req, 'S', status);
        if (r->remote_mta && strcmp(kind, "success") != 0)
            record_putf(&req, 'Y', "dns; %s", r->remote_mta);
        if (r->relayed && strcmp(kind, "success") == 0)
            record_put(&req, 'L', "relayed");
    }
    record_end(&req);
    int result = job_spawn(job, program, &req);
    strbuf_free(&req);
    if (result != 0) {
        msg_warn_errno("%s: cannot start %s", msg->id, program);
        job_free(job);
        free(program);
        return -1;
    }
    free(program);
    msg->outstanding++;
    job->deadline = monotonic_now() + (double)conf_time("daemon_timeout");
    job_running_add(job);
    return 0;
}

/* Record that the delay warning is done with (a W record). */
static void delay_warned(struct qmgr_message *msg)
{
    struct strbuf record = STRBUF_INIT;
    long long now = (long long)time(NULL);
    strbuf_printf(&record, "W%lld", now);
    if (queue_file_append(msg->fd, &msg->qf, strbuf_str(&record)) != 0)
        msg_warn_errno("%s: append delay warning record", msg->id);
    msg->qf.delay_warned = now;
    strbuf_free(&record);
}

void notice_done(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    const char *result = job->results.len ? job->results.s : "";
    if (result[0] != 'K') {
        struct strbuf why = STRBUF_INIT;
        log_printable(&why, result[0] ? result + 1 : "no result from postern-bounce", 500);
        if (result[0] == 'D') {
            /* the notice can never be made: log it and give up on it */
            msg_warn("%s: %s notice failed permanently: %s; giving up", msg->id,
                     job->notice_kind, strbuf_str(&why));
            if (strcmp(job->notice_kind, "failure") == 0) {
                for (size_t k = 0; k < job->rcpt_count; k++)
                    queue_file_set_status(msg->fd, &msg->qf.rcpt[job->rcpt[k]], RCPT_DONE);
                msg->dirty = 1;
            } else if (strcmp(job->notice_kind, "delay") == 0) {
                delay_warned(msg);
            }
        } else {
            msg_warn("%s: %s notice not sent: %s", msg->id, job->notice_kind,
                     strbuf_str(&why));
        }
        strbuf_free(&why);
        return;
    }
    if (strcmp(job->notice_kind, "failure") == 0) {
        for (size_t k = 0; k < job->rcpt_count; k++)
            if (queue_file_set_status(msg->fd, &msg->qf.rcpt[job->rcpt[k]], RCPT_DONE) != 0)
                msg_warn_errno("%s: mark recipient done", msg->id);
        msg->dirty = 1;
    } else if (strcmp(job->notice_kind, "delay") == 0) {
        delay_warned(msg);
    } else {
        for (size_t k = 0; k < job->rcpt_count; k++) {
            struct queue_recipient *r = &msg->qf.rcpt[job->rcpt[k]];
            struct strbuf record = STRBUF_INIT;
            strbuf_printf(&record, "N%lld", (long long)r->status_offset);
            if (queue_file_append(msg->fd, &msg->qf, strbuf_str(&record)) != 0)
                msg_warn_errno("%s: append success notice record", msg->id);
            r->success_noticed = 1;
            strbuf_free(&record);
        }
    }
}
