/* probe.c - probe messages: one recipient, the probe sender
 * (address_verify_sender), the message attribute verify=yes that makes
 * qmgr and the runners stop short of delivery and report the outcome to
 * the verify service instead (doc/injection.md), handed to the queue
 * through the one injection client with rewrite in-process, as Postfix's
 * probes pass through cleanup: canonical maps and virtual aliases apply,
 * the checks of internally made mail do not (header and body checks,
 * BCC: Postfix's internal_mail_filter_classes is empty by default). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "injection_client.h"
#include "log.h"
#include "map.h"
#include "rewrite.h"
#include "strbuf.h"
#include "verify.h"
#include "xalloc.h"

void probe_sender(const struct verify_settings *s, long long now, struct strbuf *out)
{
    strbuf_reset(out);
    const char *sender = s->sender;
    if (!*sender || strcmp(sender, "<>") == 0)
        return;
    const char *at = strchr(sender, '@');
    size_t local_len = at ? (size_t)(at - sender) : strlen(sender);
    strbuf_append(out, sender, local_len);
    if (s->sender_ttl > 0) {
        /* the epoch in base 31, appended to the localpart without a
         * delimiter, as Postfix's make_verify_sender_addr */
        static const char digits[] = "0123456789abcdefghijklmnopqrstu";
        char buf[32];
        size_t n = 0;
        unsigned long long epoch = (unsigned long long)(now / s->sender_ttl);
        do {
            buf[n++] = digits[epoch % 31];
            epoch /= 31;
        } while (epoch && n < sizeof buf);
        while (n)
            strbuf_putc(out, buf[--n]);
    }
    if (at)
        strbuf_puts(out, at);
    else if (*s->myorigin)
        strbuf_printf(out, "@%s", s->myorigin);
}

static struct rewrite_config rewrite_settings;
static int rewrite_loaded;

/* Close a list of tables and forget it. */
static void drop_maps(struct maplist **slot)
{
    if (*slot)
        maplist_close(*slot);
    *slot = NULL;
}

void probe_rewrite_load(void)
{
    if (rewrite_loaded)
        rewrite_config_free(&rewrite_settings);
    memset(&rewrite_settings, 0, sizeof rewrite_settings);
    /* no header or body checks (receive_override_options's
     * no_header_body_checks), and no BCC, as Postfix's probes */
    rewrite_config_load(&rewrite_settings, RECEIVE_NO_HEADER_BODY_CHECKS);
    struct rewrite_config *cfg = &rewrite_settings;
    drop_maps(&cfg->sender_bcc_maps);
    drop_maps(&cfg->recipient_bcc_maps);
    free(cfg->always_bcc);
    cfg->always_bcc = xstrdup("");
    cfg->mime_report = 0;
    rewrite_loaded = 1;
}

int probe_send(const char *address, const struct verify_settings *s, long long now)
{
    if (!rewrite_loaded)
        probe_rewrite_load();
    else
        rewrite_config_refresh(&rewrite_settings);
    struct injection_options options = {.program = NULL, .message_fd = -1,
                                        .rewrite = &rewrite_settings};
    struct injection_client inj;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    struct strbuf err = STRBUF_INIT, sender = STRBUF_INIT, text = STRBUF_INIT;
    int rc = -1;
    probe_sender(s, now, &sender);
    options.info.context = REWRITE_CONTEXT_NONE;
    options.info.sender = strbuf_str(&sender);
    if (injection_start(&inj, &options, &err) < 0) {
        msg_warn("verify service: probe for %s: %s", address, err.s);
    } else {
        /* never delivered: a header for whoever reads the queue file */
        strbuf_printf(&text, "From: <%s>\nTo: <%s>\nSubject: address verification probe\n\n",
                      strbuf_str(&sender), address);
        injection_write(&inj, text.s, text.len);
        struct envelope env = ENVELOPE_INIT;
        env.sender = xstrdup(strbuf_str(&sender));
        envelope_add(&env, 'T', address);
        envelope_add(&env, 'A', "verify=yes");
        if (injection_finish(&inj, &env, &verdict) == OUTCOME_SENT) {
            msg_debug("verify service: probe for %s queued as %s", address,
                      strbuf_str(&verdict.text));
            rc = 0;
        } else {
            msg_warn("verify service: probe for %s not queued: %s%s%s", address,
                     strbuf_str(&verdict.text), verdict.detail.len ? " " : "",
                     strbuf_str(&verdict.detail));
        }
        envelope_free(&env);
    }
    injection_verdict_free(&verdict);
    strbuf_free(&err);
    strbuf_free(&sender);
    strbuf_free(&text);
    return rc;
}
