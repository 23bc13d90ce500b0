/* status.c - one recipient's outcome: the Postfix log line that pflogsumm
 * reads (`to=<...>, relay=..., delay=..., delays=a/b/c/d, dsn=..., status=...
 * (text)`) and the queue file update (status byte, S record). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "qmgr.h"
#include "verify_proto.h"
#include "xalloc.h"

void format_delay(struct strbuf *out, double seconds)
{
    /* as Postfix: whole seconds from 10 on, else two significant digits
     * with at most two decimals, trailing zeros dropped */
    char buf[64];
    if (seconds < 0)
        seconds = 0;
    if (seconds >= 10)
        snprintf(buf, sizeof buf, "%.0f", seconds);
    else if (seconds >= 1)
        snprintf(buf, sizeof buf, "%.1f", seconds);
    else
        snprintf(buf, sizeof buf, "%.2f", seconds);
    if (strchr(buf, '.')) {
        size_t n = strlen(buf);
        while (n && buf[n - 1] == '0')
            buf[--n] = '\0';
        if (n && buf[n - 1] == '.')
            buf[--n] = '\0';
    }
    strbuf_puts(out, buf);
}

/* Seconds from a to b. */
static double elapsed(const struct timeval *a, const struct timeval *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_usec - a->tv_usec) / 1e6;
}

int message_is_probe(const struct qmgr_message *msg)
{
    const char *verify = queue_file_attr(&msg->qf, "verify");
    return verify && strcmp(verify, "yes") == 0;
}

#define VERIFY_UPDATE_TIMEOUT 5       /* seconds qmgr waits for the verify service */
#define VERIFY_UPDATE_PAUSE 60        /* seconds without updates after one failed */

/* An address verification probe's outcome goes to the verify service
 * (postern-verify) instead of a notice: the recipient is done whatever
 * happened, as Postfix's verify_append. */
static void probe_report(struct qmgr_message *msg, const struct queue_recipient *r,
                         enum outcome outcome, const char *text)
{
    /* the address the probe was for: before virtual alias expansion
     * (rewrite keeps it in ORCPT), as Postfix's verify_append */
    const char *address = r->orcpt && strncasecmp(r->orcpt, "rfc822;", 7) == 0 ? r->orcpt + 7
                                                                               : r->address;
    /* qmgr waits for the answer, and every delivery waits with it: after
     * an update that failed (the service stopped, hung, or gone), the
     * outcomes of the next VERIFY_UPDATE_PAUSE seconds are dropped, as a
     * probe whose report is lost (the service probes again), rather
     * than each costing the timeout */
    static time_t paused_until;
    time_t now = time(NULL);
    if (now < paused_until) {
        msg_info("%s: address verification update for %s dropped: the verify service "
                 "did not answer %ld s ago", msg->id, address,
                 (long)(now - (paused_until - VERIFY_UPDATE_PAUSE)));
        return;
    }
    struct strbuf socket_path = STRBUF_INIT, why = STRBUF_INIT;
    strbuf_printf(&socket_path, "%s/%s", conf_str("queue_directory"), VERIFY_SOCKET);
    int sent = verify_update(strbuf_str(&socket_path), address, outcome, text,
                             VERIFY_UPDATE_TIMEOUT, &why);
    if (sent == -2) {
        msg_warn("%s: address verification update for %s: %s", msg->id, address,
                 strbuf_str(&why));
    } else if (sent < 0) {
        msg_warn("%s: address verification update for %s: %s; none for %d s", msg->id, address,
                 strbuf_str(&why), VERIFY_UPDATE_PAUSE);
        paused_until = time(NULL) + VERIFY_UPDATE_PAUSE;
    }
    strbuf_free(&socket_path);
    strbuf_free(&why);
}

/* The rank of an outcome when a recipient's parts are combined. */
static int outcome_rank(int o)
{
    return o == OUTCOME_DEFERRED ? 3 : o == OUTCOME_BOUNCED ? 2 : o == OUTCOME_SENT ? 1 : 0;
}

void recipient_outcome(struct qmgr_message *msg, const char *agent, long agent_pid,
                       size_t index, const char *address, enum outcome outcome,
                       const char *relay, const struct timeval *handoff, const char *dsn,
                       const char *text)
{
    struct queue_recipient *r = &msg->qf.rcpt[index];
    char soft_dsn[32];
    if (outcome == OUTCOME_BOUNCED && qmgr.conf.soft_bounce) {
        /* soft_bounce: what would bounce waits, with a 4.x.x code */
        outcome = OUTCOME_DEFERRED;
        snprintf(soft_dsn, sizeof soft_dsn, "%s", dsn);
        if (soft_dsn[0] == '5')
            soft_dsn[0] = '4';
        dsn = soft_dsn;
    }
    struct timeval now, arrival = {(time_t)msg->qf.arrival_sec,
                                   (suseconds_t)msg->qf.arrival_usec};
    gettimeofday(&now, NULL);
    struct strbuf line = STRBUF_INIT, clean_text = STRBUF_INIT, clean_rcpt = STRBUF_INIT;
    log_printable(&clean_text, text, 1000);
    if (!address)
        address = r->routed ? r->routed : r->address;
    log_printable(&clean_rcpt, address, 0);
    strbuf_printf(&line, "%s: to=<%s>, ", msg->id, strbuf_str(&clean_rcpt));
    /* Postfix's orig_to=: a routed address (or an alias's member that
     * local handed over), or one that virtual alias expansion gave
     * (rewrite records the recipient as given in ORCPT) */
    const char *orig_to = strcmp(address, r->address) != 0 ? r->address : NULL;
    if (!orig_to && r->orcpt && strncasecmp(r->orcpt, "rfc822;", 7) == 0
        && strcasecmp(r->orcpt + 7, r->address) != 0)
        orig_to = r->orcpt + 7;
    if (orig_to) {
        struct strbuf orig = STRBUF_INIT;
        strbuf_printf(&line, "orig_to=<%s>, ", log_printable(&orig, orig_to, 0));
        strbuf_free(&orig);
    }
    strbuf_printf(&line, "relay=%s, delay=", relay);
    format_delay(&line, elapsed(&arrival, &now));
    strbuf_puts(&line, ", delays=");
    format_delay(&line, elapsed(&arrival, &msg->active_time));
    strbuf_putc(&line, '/');
    format_delay(&line, elapsed(&msg->active_time, handoff ? handoff : &now));
    strbuf_puts(&line, "/0/");
    format_delay(&line, handoff ? elapsed(handoff, &now) : 0);
    int probe = message_is_probe(msg);
    strbuf_printf(&line, ", dsn=%s, status=%s (%s)", dsn,
                  !probe ? outcome_word(outcome)
                         : outcome == OUTCOME_SENT ? "deliverable" : "undeliverable",
                  strbuf_str(&clean_text));
    msg_info_as(NULL, agent, agent_pid, "%s", strbuf_str(&line));  /* Postfix's agent logs it */
    if (probe) {
        /* no retry, no notice: the verify service has the answer */
        probe_report(msg, r, outcome, strbuf_str(&clean_text));
        r->parts = 0;
        outcome = OUTCOME_SENT;
    }

    if (r->parts) {
        /* one part of several (doc/delivery.md, "Hand-over"): the worst
         * outcome of all, the first text of its kind, once all are in */
        if (outcome_rank(outcome) > outcome_rank(r->part_outcome)) {
            r->part_outcome = (char)outcome;
            free(r->part_status);
            strbuf_reset(&line);
            strbuf_printf(&line, "%s %s", dsn, strbuf_str(&clean_text));
            r->part_status = strbuf_detach(&line);
        }
        if (--r->parts) {
            strbuf_free(&line);
            strbuf_free(&clean_text);
            strbuf_free(&clean_rcpt);
            return;
        }
        outcome = (enum outcome)r->part_outcome;
        r->part_outcome = 0;
        strbuf_reset(&clean_text);
        char *status = r->part_status;
        r->part_status = NULL;
        size_t dsn_len = strcspn(status, " ");
        strbuf_puts(&clean_text, status[dsn_len] ? status + dsn_len + 1 : "");
        status[dsn_len] = 0;
        snprintf(soft_dsn, sizeof soft_dsn, "%s", status);
        dsn = soft_dsn;
        free(status);
    }
    if (outcome == OUTCOME_SENT) {
        if (queue_file_set_status(msg->fd, r, RCPT_DONE) != 0)
            msg_warn_errno("%s: mark recipient %s done", msg->id, strbuf_str(&clean_rcpt));
        msg->dirty = 1;
        msg->round[index] = ROUND_SENT;
    } else {
        if (outcome == OUTCOME_BOUNCED) {
            if (queue_file_set_status(msg->fd, r, RCPT_BOUNCE) != 0)
                msg_warn_errno("%s: mark recipient %s failed", msg->id,
                               strbuf_str(&clean_rcpt));
            msg->dirty = 1;
            msg->round[index] = ROUND_NONE;
        } else {
            msg->round[index] = ROUND_DEFERRED;
        }
        struct strbuf record = STRBUF_INIT;
        /* the host that answered (relay=mx.example.com[192.0.2.1]:25), for
         * the Remote-MTA field of bounces and delay notices */
        size_t host_len = strcspn(relay, "[");
        const char *host = relay[host_len] == '[' ? relay : "";
        if (!*host)
            host_len = 0;
        if (host_len != (r->remote_mta ? strlen(r->remote_mta) : 0)
            || (host_len && strncmp(r->remote_mta, host, host_len) != 0)) {
            strbuf_printf(&record, "Y%lld %.*s", (long long)r->status_offset, (int)host_len, host);
            if (queue_file_append(msg->fd, &msg->qf, strbuf_str(&record)) != 0)
                msg_warn_errno("%s: append remote MTA record", msg->id);
            free(r->remote_mta);
            r->remote_mta = host_len ? xstrndup(host, host_len) : NULL;
            strbuf_reset(&record);
        }
        strbuf_printf(&record, "S%lld %s %s", (long long)r->status_offset, dsn,
                      strbuf_str(&clean_text));
        if (queue_file_append(msg->fd, &msg->qf, strbuf_str(&record)) != 0)
            msg_warn_errno("%s: append status record", msg->id);
        free(r->last_status);
        r->last_status = xstrdup(strbuf_str(&record) + strcspn(strbuf_str(&record), " ") + 1);
        strbuf_free(&record);
    }
    strbuf_free(&line);
    strbuf_free(&clean_text);
    strbuf_free(&clean_rcpt);
}
