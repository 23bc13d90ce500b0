/* policy_verify.c - reject_unverified_recipient and
 * reject_unverified_sender: ask the verify service (postern-verify(8))
 * what a probe learned about the address, as Postfix's smtpd does: poll
 * address_verify_poll_count times, address_verify_poll_delay apart, while
 * the probe is out; an address that may become deliverable gets the
 * unverified_*_defer_code through unverified_*_tempfail_action, one that
 * bounced the unverified_*_reject_code. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "policy_impl.h"
#include "verify_proto.h"

/* Seconds between attempts to reach a verify service that does not
 * answer (Postfix's client: 10). */
#define SERVICE_RETRY_S 10

/* One question to the service.  One that cannot be reached is asked again
 * every SERVICE_RETRY_S seconds with Postfix's warning ("connect #N to
 * subsystem public/verify: ..."); Postfix's smtpd goes on until the
 * client gives up, postern's until smtpd_timeout has passed (the time a
 * client waits for a reply to RCPT TO), so that the process does not hang
 * on for hours.  0, or -1. */
static int ask(const char *socket_path, const char *address, int *status, struct strbuf *why)
{
    long long deadline = (long long)time(NULL) + conf_time("smtpd_timeout");
    for (int tries = 1;; tries++) {
        if (verify_query(socket_path, address, 10, status, why) == 0)
            return 0;
        int saved = errno;
        if (saved == EPROTO)
            msg_warn("problem talking to service verify: %s", strbuf_str(why));
        else
            msg_warn("connect #%d to subsystem %s: %s", tries, VERIFY_SOCKET, strerror(saved));
        long long left = deadline - (long long)time(NULL);
        if (left <= 0)
            return -1;
        sleep((unsigned)(left < SERVICE_RETRY_S ? left : SERVICE_RETRY_S));
    }
}

/* The check for one address; subj says whose (sender or recipient). */
static enum verdict unverified(struct check_ctx *ctx, enum subject subj, const char *address)
{
    if (!address || !*address)
        return V_DUNNO;
    int sender = subj == SUBJ_SENDER;
    const char *prefix = sender ? "unverified_sender" : "unverified_recipient";
    char param[64];
    struct strbuf socket_path = STRBUF_INIT, why = STRBUF_INIT, text = STRBUF_INIT;
    strbuf_printf(&socket_path, "%s/%s", conf_str("queue_directory"), VERIFY_SOCKET);
    long long poll_count = conf_int("address_verify_poll_count");
    long long poll_delay = conf_time("address_verify_poll_delay");
    int status = VERIFY_TODO, rc;
    for (long long count = 0;;) {
        rc = ask(strbuf_str(&socket_path), address, &status, &why);
        if (rc < 0 || status != VERIFY_TODO || ++count >= poll_count)
            break;
        sleep((unsigned)poll_delay);
    }
    /* the enhanced code: 4.1.1 for recipients, 4.1.7 for senders (the
     * class follows the reply code) */
    char dsn[8];
    snprintf(dsn, sizeof dsn, "4.1.%c", sender ? '7' : '1');
    snprintf(param, sizeof param, "%s_tempfail_action", prefix);
    enum verdict v = V_DUNNO;
    if (rc < 0) {
        msg_warn("verify service failure");
        v = policy_tempfail(ctx, param, subj, 450, dsn, "address verification problem");
    } else {
        int code = 0;
        if (status == VERIFY_TODO || status == VERIFY_DEFER) {
            snprintf(param, sizeof param, "%s_defer_code", prefix);
            code = (int)conf_int(param);
        } else if (status == VERIFY_BOUNCE) {
            snprintf(param, sizeof param, "%s_reject_code", prefix);
            code = (int)conf_int(param);
        }
        snprintf(param, sizeof param, "%s_reject_reason", prefix);
        const char *reason = conf_str(param);
        if (code >= 400 && *reason)
            strbuf_set(&why, reason);
        dsn[0] = (char)('0' + code / 100);
        if (code / 100 == 4) {
            snprintf(param, sizeof param, "%s_tempfail_action", prefix);
            strbuf_printf(&text, "unverified address: %.250s", strbuf_str(&why));
            v = policy_tempfail(ctx, param, subj, code, dsn, strbuf_str(&text));
        } else if (code >= 500) {
            strbuf_printf(&text, "undeliverable address: %s", strbuf_str(&why));
            v = reject_with(ctx, subj, code, dsn, strbuf_str(&text));
        }
    }
    strbuf_free(&socket_path);
    strbuf_free(&why);
    strbuf_free(&text);
    return v;
}

enum verdict check_unverified_recipient(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unverified(ctx, SUBJ_RECIPIENT, ctx->recipient);
}

enum verdict check_unverified_sender(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unverified(ctx, SUBJ_SENDER, ctx->sender);
}
