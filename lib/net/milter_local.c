/* milter_local.c - non_smtpd_milters for a local submission, as Postfix's
 * cleanup runs them for sendmail(1) mail (MILTER_README "Milters for
 * non-SMTP mail"; recorded in t/data/postfix-3.7-nonsmtpd-milter.txt):
 * the milters are told of a connection from localhost[127.0.0.1], HELO
 * localhost, MAIL with the bare sender address, a RCPT per recipient,
 * DATA, then the header (the one rewrite made: Date, Message-ID, From
 * qualified) and body.  Their changes go into the message and envelope
 * before the queue sees them; a refusal is logged as Postfix logs it
 * ("milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 text;
 * from=<...> to=<...>") and returned for the submitter (postern-rewrite
 * writes it on fd 3, sendmail prints it).
 */
#include <string.h>
#include <strings.h>

#include "config.h"
#include "envelope.h"
#include "log.h"
#include "milter_client.h"
#include "milter_local.h"
#include "milter_proto.h"
#include "rewrite.h"

/* What the macros of a local submission say at this moment. */
struct local_macros {
    const char *sender;         /* {mail_addr}, from MAIL on */
    const char *recipient;      /* {rcpt_addr}, during RCPT and after */
};

/* The macros Postfix's cleanup gives a non-SMTP milter (no client
 * address, no queue id: the queue file does not exist yet). */
static int local_macro(void *ctx, const char *name, struct strbuf *out)
{
    const struct local_macros *lm = ctx;
    strbuf_reset(out);
    if (strcmp(name, "j") == 0)
        strbuf_puts(out, conf_str("myhostname"));
    else if (strcmp(name, "{daemon_name}") == 0)
        strbuf_puts(out, conf_str("milter_macro_daemon_name"));
    else if (strcmp(name, "{daemon_addr}") == 0)
        strbuf_puts(out, "127.0.0.1");
    else if (strcmp(name, "v") == 0)
        strbuf_puts(out, conf_str("milter_macro_v"));
    else if (strcmp(name, "_") == 0)
        strbuf_puts(out, "localhost [127.0.0.1]");
    else if (strcmp(name, "{mail_addr}") == 0 && lm->sender)
        strbuf_puts(out, lm->sender);
    else if (strcmp(name, "{rcpt_addr}") == 0 && lm->recipient)
        strbuf_puts(out, lm->recipient);
    else
        return 0;
    return 1;
}

/* Log a milter's answer at `stage` as cleanup does: "milter-reject",
 * "milter-discard" or "milter-hold", the text without its SMTP code; the
 * reply to give for a refusal, NULL for a hold or discard. */
static const char *local_verdict(const char *stage, const char *answer, const struct envelope *env,
                                 const char *recipient)
{
    const char *action, *text;
    const char *reply = milter_answer_reply(answer, &action, &text);
    if ((text[0] == '4' || text[0] == '5') && strlen(text) > 4)
        text += 4;
    struct strbuf line = STRBUF_INIT, p = STRBUF_INIT;
    strbuf_printf(&line, " from=<%s>", log_printable(&p, env->sender, 0));
    if (recipient) {
        strbuf_reset(&p);
        strbuf_printf(&line, " to=<%s>", log_printable(&p, recipient, 0));
    }
    strbuf_reset(&p);
    msg_info("NOQUEUE: %s: %s from localhost[127.0.0.1]: %s;%s", action, stage,
             log_printable(&p, text, 500), strbuf_str(&line));
    strbuf_free(&line);
    strbuf_free(&p);
    return reply;
}

int milter_local_run(int fd, struct envelope *env, const struct rewrite_config *cfg,
                     struct milter_message *msg, struct strbuf *reply)
{
    struct milter_set set = MILTER_SET_INIT;
    struct local_macros lm = {NULL, NULL};
    struct strbuf data = STRBUF_INIT;
    const char *answer, *stage = "CONNECT", *first = NULL;
    int result = 0, hold = 0;
    milter_set_add(&set, "non_smtpd_milters");
    set.macro_value = local_macro;
    set.macro_ctx = &lm;
    for (size_t i = 0; i < env->records.count && !first; i++)
        if (env->records.item[i][0] == 'T')
            first = env->records.item[i] + 1;
    answer = milter_set_connect(&set, "localhost", "127.0.0.1", 0);
    if (!answer) {
        stage = "HELO";
        milter_packet_string(&data, "localhost");
        answer = milter_set_event(&set, SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO,
                                  MILTER_STAGE_HELO, &data, 0);
    }
    if (!answer) {
        /* the bare address, as cleanup sends it */
        stage = "MAIL";
        lm.sender = env->sender;
        strbuf_reset(&data);
        milter_packet_string(&data, *env->sender ? env->sender : "<>");
        answer = milter_set_event(&set, SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL,
                                  MILTER_STAGE_MAIL, &data, 1);
    }
    for (size_t i = 0; i < env->records.count && !answer; i++) {
        if (env->records.item[i][0] != 'T')
            continue;
        stage = "RCPT";
        lm.recipient = env->records.item[i] + 1;
        strbuf_reset(&data);
        milter_packet_string(&data, lm.recipient);
        answer = milter_set_event(&set, SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT,
                                  MILTER_STAGE_RCPT, &data, 1);
    }
    if (!answer) {
        stage = "DATA";
        answer = milter_set_event(&set, SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA,
                                  MILTER_STAGE_DATA, NULL, 1);
    }
    struct milter_checks mc = {cfg, {0}, REWRITE_ACTIONS_INIT, STRBUF_INIT, 0};
    rewrite_message_info_from(env, &mc.info);
    mc.info.actions = &mc.actions;
    if (answer && answer[0] == 'H') {
        hold = 1;
        answer = NULL;
    }
    if (!answer) {
        stage = "END-OF-MESSAGE";
        /* rewrite's own Received field of a sendmail submission comes
         * first and is not shown, as Postfix's cleanup does not show its */
        if (milter_message_read(fd, 0, msg) < 0)
            answer = "451 4.3.0 Error: queue file write error";
        else if (envelope_attr(env, "uid") && msg->headers.count
                 && strncasecmp(msg->headers.item[0], "Received:", 9) == 0)
            msg->own = 1;
    }
    if (!answer) {
        int held = 0;
        answer = milter_set_message(&set, fd, 0, msg, env, &mc, &held);
        hold |= held;
    }
    if (answer && answer[0] != 'D') {
        strbuf_set(reply, local_verdict(stage, answer, env,
                                        strcmp(stage, "RCPT") == 0 ? lm.recipient
                                        : strcmp(stage, "DATA") == 0 || strcmp(stage, "END-OF-MESSAGE") == 0
                                        ? first : NULL));
        result = reply->s[0] == '5' ? 5 : 4;
    } else if (mc.rejected) {
        /* milter_header_checks REJECT (logged "milter-header-reject") */
        rewrite_actions_log_noqueue(&mc.actions, env);
        strbuf_reset(reply);
        strbuf_printf(reply, "%s %s", mc.reject.s[0] == '4' ? "451" : "550", strbuf_str(&mc.reject));
        result = mc.reject.s[0] == '4' ? 4 : 5;
    } else {
        if (answer) {
            (void)local_verdict(stage, answer, env, first);
            envelope_add(env, 'A', "discard=yes");
        } else if (hold) {
            (void)local_verdict("END-OF-MESSAGE", "H", env, first);
            envelope_add(env, 'A', "hold=yes");
        }
        rewrite_actions_apply(cfg, &mc.actions, env);
        if (msg->held_fd < 0 && milter_message_read(fd, 0, msg) < 0) {
            strbuf_set(reply, "451 4.3.0 Error: queue file write error");
            result = 4;
        }
    }
    rewrite_actions_free(&mc.actions);
    strbuf_free(&mc.reject);
    strbuf_free(&data);
    milter_set_quit(&set);
    milter_set_free(&set);
    return result;
}
