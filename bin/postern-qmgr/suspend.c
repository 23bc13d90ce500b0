/* suspend.c - destinations that are down, as Postfix's qmgr treats a
 * "dead" destination: when a runner says the next hop failed as a whole
 * (an S record: no server could be reached or would talk) for as many
 * cohorts in a row as TRANSPORT_destination_concurrency_failed_cohort_limit
 * says (default_destination_concurrency_failed_cohort_limit, 1; a cohort
 * is the deliveries to it in flight together, so with ten at once each
 * failure counts a tenth), qmgr stops
 * trying it for minimal_backoff_time: the jobs queued for it, and those
 * that come while it is down, are deferred at once with "delivery
 * temporarily suspended: REASON" (logged as Postfix's error agent logs
 * it), so mail for a dead host costs no connection attempts and does not
 * hold runners that other destinations need.  Any other end of a job
 * resets the count; when the time is up the next job tries again.
 * The state lives in memory, as in Postfix's qmgr: a restart forgets it.
 * What holds a dead destination's mail back across a restart is each
 * deferred file's next attempt time, its mtime on disk (retry.c), so a
 * restarted qmgr tries only the mail that arrives or falls due, and
 * suspends the destination again after that one failure (t/66-smtp-dead).
 * A flush of the whole queue ends every suspension, as Postfix's
 * postqueue -f asks its qmgr to forget its dead destinations.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outcome.h"
#include "qmgr.h"
#include "xalloc.h"

int destination_suspended(struct qmgr_destination *d)
{
    if (d->suspended_until <= 0)
        return 0;
    if (monotonic_now() >= d->suspended_until) {
        d->suspended_until = 0;     /* time is up: the next job probes */
        return 0;
    }
    return 1;
}

/* Defer every recipient of a job of a suspended destination and free the
 * job (the message's round ends when it was the last). */
static void destination_defer_job(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;
    struct qmgr_destination *d = job->dest;
    for (size_t k = 0; k < job->rcpt_count; k++)
        recipient_outcome(msg, "error", 0, job->rcpt[k], job->part_address, OUTCOME_DEFERRED,
                          "none", NULL,
                          d->suspended_dsn ? d->suspended_dsn : "4.4.1",
                          d->suspended_text ? d->suspended_text : "delivery temporarily suspended");
    job_free(job);
    msg->outstanding--;
    if (msg->outstanding == 0)
        message_round_done(msg);
}

void destination_defer_all(struct qmgr_destination *d)
{
    while (d->todo_head) {
        struct qmgr_job *job = d->todo_head;
        d->todo_head = job->next;
        if (!d->todo_head)
            d->todo_tail = NULL;
        destination_defer_job(job);
    }
}

void destination_job_done(struct qmgr_destination *d, int site, const char *dsn, const char *text)
{
    if (!site) {
        d->failed_cohorts = 0;
        return;
    }
    /* as Postfix counts: a cohort is the deliveries in flight together
     * (this one and those still running), so one failure among many
     * parallel ones is a fraction of a failed cohort */
    d->failed_cohorts += 1.0 / (double)(d->busy + 1);
    int limit = d->transport->failed_cohort_limit;
    if (limit <= 0 || d->failed_cohorts < (double)limit - 1e-9)
        return;
    d->failed_cohorts = 0;
    d->suspended_until = monotonic_now() + (double)qmgr.conf.minimal_backoff_time;
    free(d->suspended_dsn);
    free(d->suspended_text);
    d->suspended_dsn = xstrdup(dsn && dsn[0] == '4' ? dsn : "4.4.1");
    struct strbuf why = STRBUF_INIT;
    strbuf_printf(&why, "delivery temporarily suspended: %s", text && *text ? text : "destination unreachable");
    d->suspended_text = strbuf_detach(&why);
    msg_debug("%s: destination %s suspended for %llds", d->transport->name, d->nexthop,
              qmgr.conf.minimal_backoff_time);
    /* what waits for it is deferred now, without a try */
    destination_defer_all(d);
}

static void revive(struct qmgr_destination *d)
{
    if (d->suspended_until > 0)
        msg_debug("%s: destination %s tried again (queue flush)", d->transport->name, d->nexthop);
    d->suspended_until = 0;
    d->failed_cohorts = 0;
}

void destinations_revive(void)
{
    destinations_each(revive);
}
