/* milter.c - smtpd_milters (non_smtpd_milters for a sendmail -bs session):
 * the session's SMTP events told to Sendmail milters as they happen (the
 * engine is lib/net/milter_client.c), their answers turned into Postfix's
 * replies and log lines, and at the end of a message the milters' changes
 * applied before it goes on to rewrite and the queue (MILTER_README,
 * postconf(5)).
 *
 * One connection per milter for the session, opened before the greeting.
 * The message: submit.c holds the client's text (smtpd's own headers
 * first, which the milters never see) and milter_message() has the
 * milters read and change it, then passes it on, so nothing reaches the
 * queue before every milter has answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "envelope.h"
#include "injection_client.h"
#include "log.h"
#include "milter_client.h"
#include "rewrite.h"
#include "smtpd.h"
#include "strlist.h"

/* the session's milters (one session per process) */
static struct milter_set milters = MILTER_SET_INIT;

/* ---- macros ---- */

/* The value of a Sendmail macro in this session: 1 with out set, 0 when
 * it has none now. */
static int macro_value(void *ctx, const char *name, struct strbuf *out)
{
    struct session *s = ctx;
    strbuf_reset(out);
    const struct client *c = &s->client;
    if (strcmp(name, "j") == 0)
        strbuf_puts(out, s->myhostname);
    else if (strcmp(name, "{daemon_name}") == 0)
        strbuf_puts(out, conf_str("milter_macro_daemon_name"));
    else if (strcmp(name, "{daemon_addr}") == 0)
        strbuf_puts(out, c->local_address);
    else if (strcmp(name, "{daemon_port}") == 0)
        strbuf_puts(out, c->local_port);
    else if (strcmp(name, "v") == 0)
        strbuf_puts(out, conf_str("milter_macro_v"));
    else if (strcmp(name, "_") == 0)
        strbuf_printf(out, "%s [%s]", c->name, c->address);
    else if (strcmp(name, "{client_addr}") == 0)
        strbuf_puts(out, c->address);
    else if (strcmp(name, "{client_name}") == 0)
        strbuf_puts(out, c->name);
    else if (strcmp(name, "{client_port}") == 0)
        strbuf_puts(out, c->port);
    else if (strcmp(name, "{client_ptr}") == 0)
        strbuf_puts(out, c->reverse_status ? c->reverse_name : c->name);
    else if (strcmp(name, "{auth_type}") == 0 && s->sasl_username[0])
        strbuf_puts(out, s->sasl_method);
    else if (strcmp(name, "{auth_authen}") == 0 && s->sasl_username[0])
        strbuf_puts(out, s->sasl_username);
    else if (strcmp(name, "{mail_addr}") == 0 && s->milter_sender)
        strbuf_puts(out, s->milter_sender);
    else if (strcmp(name, "{rcpt_addr}") == 0 && s->milter_recipient)
        strbuf_puts(out, s->milter_recipient);
    else if ((strcmp(name, "{mail_host}") == 0 && s->milter_sender)
             || (strcmp(name, "{rcpt_host}") == 0 && s->milter_recipient)) {
        const char *addr = name[1] == 'm' ? s->milter_sender : s->milter_recipient;
        const char *at = strrchr(addr, '@');
        strbuf_puts(out, at ? at + 1 : s->myhostname);
    } else if ((strcmp(name, "{mail_mailer}") == 0 && s->milter_sender)
               || (strcmp(name, "{rcpt_mailer}") == 0 && s->milter_recipient)) {
        const char *addr = name[1] == 'm' ? s->milter_sender : s->milter_recipient;
        struct destination d = DESTINATION_INIT;
        const char *mailer = "smtp";
        if (*addr && destination_resolve(addr, &d) == 0)
            mailer = d.dest_class == DEST_LOCAL ? "local"
                     : d.dest_class == DEST_VIRTUAL_MAILBOX ? "virtual" : "smtp";
        else if (!*addr)
            mailer = "local";
        destination_free(&d);
        strbuf_puts(out, mailer);
    } else if (s->tls && tls_macro(s, name, out))
        ;
    else
        return 0;
    return 1;
}

int milter_active(void)
{
    return milters.count > 0;
}

/* Log a milter's answer as Postfix's check_milter_reply and return the
 * SMTP reply to give, or NULL to go on (after noting a discard or hold
 * for the envelope). */
static const char *milter_verdict(struct session *s, const char *where, const char *answer,
                                  const char *sender, const char *recipient)
{
    const char *action, *text;
    if (!answer)
        return NULL;
    const char *result = milter_answer_reply(answer, &action, &text);
    if (answer[0] == 'H' && strcmp(where, "END-OF-MESSAGE") != 0)
        policy_note_action(s, "hold=yes");
    if (answer[0] == 'D' && strcmp(where, "END-OF-MESSAGE") != 0) {
        s->milter_discard = 1;          /* the milters hear no more of it */
        policy_note_action(s, "discard=yes");
    }
    struct strbuf line = STRBUF_INIT, p = STRBUF_INIT;
    if (sender)
        strbuf_printf(&line, " from=<%s>", log_printable(&p, sender, 0));
    if (recipient) {
        strbuf_reset(&p);
        strbuf_printf(&line, " to=<%s>", log_printable(&p, recipient, 0));
    }
    strbuf_printf(&line, " proto=%s", s->protocol);
    if (s->helo.len)
        strbuf_printf(&line, " helo=<%s>", strbuf_str(&s->helo));
    strbuf_reset(&p);
    /* at end of message Postfix's cleanup logs the text without the code */
    if (strcmp(where, "END-OF-MESSAGE") == 0 && (text[0] == '4' || text[0] == '5') && strlen(text) > 4)
        text += 4;
    msg_info("NOQUEUE: %s: %s from %s: %s;%s", action, where, s->client.namaddr,
             log_printable(&p, text, 500), strbuf_str(&line));
    strbuf_free(&line);
    strbuf_free(&p);
    if (result && strncmp(result, "421", 3) == 0)
        s->hangup = 1;
    return result;
}

/* Send an event to every milter in order until one answers something
 * other than "go on"; a discarded message is told no more. */
static const char *each_milter(struct session *s, int event, uint32_t skip, uint32_t noreply,
                               int stage, const struct strbuf *data, int message_event)
{
    if (message_event && s->milter_discard)
        return NULL;
    return milter_set_event(&milters, event, skip, noreply, stage, data, message_event);
}

void milter_prepare(void)
{
    if (*conf_str("smtpd_milters"))
        milter_macro_defaults_load();
}

const char *milter_connect(struct session *s)
{
    /* no_milters: a listener where mail comes back from a content
     * filter, having been through the milters once (FILTER_README) */
    const char *list = "smtpd_milters";
    unsigned override = submit_receive_override();
    if (s->local_submission) {
        /* sendmail -bs: a local submission, which Postfix's cleanup shows
         * to non_smtpd_milters with pickup's receive_override_options */
        struct strbuf value = STRBUF_INIT;
        list = "non_smtpd_milters";
        receive_local_setting("receive_override_options", &value);
        override = receive_override_mask(strbuf_str(&value));
        strbuf_free(&value);
    }
    if ((override & RECEIVE_NO_MILTERS) || !*conf_str(list))
        return NULL;
    milter_set_add(&milters, list);
    milters.macro_value = macro_value;
    milters.macro_ctx = s;
    const char *answer = milter_set_connect(&milters, s->client.name, s->client.address,
                                            (unsigned)atoi(s->client.port));
    return milter_verdict(s, "CONNECT", answer, NULL, NULL);
}

const char *milter_helo(struct session *s, const char *helo)
{
    if (!milters.count)
        return NULL;
    struct strbuf data = STRBUF_INIT;
    milter_packet_string(&data, helo);
    const char *answer = each_milter(s, SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO,
                                     MILTER_STAGE_HELO, &data, 0);
    strbuf_free(&data);
    /* s->helo is the new name already: logged with it, as Postfix */
    const char *r = milter_verdict(s, s->where, answer, NULL, NULL);
    return r;
}

/* MAIL or RCPT: the path in angle brackets, then the ESMTP arguments. */
static const char *envelope_event(struct session *s, int event, uint32_t skip, uint32_t noreply,
                                  enum milter_stage stage, const char *path, const char *args)
{
    struct strbuf data = STRBUF_INIT;
    milter_envelope_data(&data, path, args);
    const char *answer = each_milter(s, event, skip, noreply, (int)stage, &data, 1);
    strbuf_free(&data);
    return answer;
}

const char *milter_mail(struct session *s, const char *sender, const char *args)
{
    if (!milters.count)
        return NULL;
    s->milter_sender = sender;
    const char *answer = envelope_event(s, SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL,
                                        MILTER_STAGE_MAIL, sender, args);
    const char *r = milter_verdict(s, "MAIL", answer, sender, NULL);
    if (r)
        s->milter_sender = NULL;
    return r;
}

const char *milter_rcpt(struct session *s, const char *recipient, const char *args)
{
    if (!milters.count)
        return NULL;
    s->milter_recipient = recipient;
    const char *answer = envelope_event(s, SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT,
                                        MILTER_STAGE_RCPT, recipient, args);
    const char *r = milter_verdict(s, "RCPT", answer, strbuf_str(&s->tx.sender), recipient);
    s->milter_recipient = NULL;
    return r;
}

const char *milter_data(struct session *s)
{
    if (!milters.count)
        return NULL;
    const char *answer = each_milter(s, SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA,
                                     MILTER_STAGE_DATA, NULL, 1);
    return milter_verdict(s, "DATA", answer, strbuf_str(&s->tx.sender),
                          strbuf_str(&s->tx.last_recipient));
}

void milter_unknown(struct session *s, const char *command)
{
    if (!milters.count)
        return;
    struct strbuf data = STRBUF_INIT;
    milter_packet_string(&data, command);
    const char *answer = each_milter(s, SMFIC_UNKNOWN, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN, -1, &data, 1);
    strbuf_free(&data);
    /* the command is refused anyway; a milter's reply is only logged */
    (void)milter_verdict(s, "UNKNOWN", answer, NULL, NULL);
}

void milter_abort(struct session *s)
{
    milter_set_abort(&milters);
    s->milter_sender = s->milter_recipient = NULL;
    s->milter_discard = 0;
}

void milter_quit(struct session *s)
{
    milter_set_quit(&milters);
    (void)s;
}

/* ---- the message ---- */

/* milter_message_write's output: the held text released into the chain
 * (a refusal on the way, a header_checks REJECT, is injection_finish's
 * to report). */
static int release(void *ctx, const void *bytes, size_t n)
{
    (void)injection_release(ctx, bytes, n);
    return 0;
}

const char *milter_message(struct session *s, struct injection_client *inj, size_t own_bytes,
                           struct envelope *env)
{
    int fd = injection_held_fd(inj);
    struct milter_message msg = MILTER_MESSAGE_INIT;
    if (fd < 0)
        return "451 4.3.0 Error: queue file write error";
    int hold = 0;
    struct milter_checks mc = {submit_rewrite_config(), {0}, REWRITE_ACTIONS_INIT, STRBUF_INIT, 0};
    mc.info.sender = env->sender;
    mc.info.log_client = s->client.namaddr;
    mc.info.actions = &mc.actions;
    const char *answer = milter_set_message(&milters, fd, own_bytes, &msg, env, &mc, &hold);
    const char *first = NULL;
    for (size_t i = 0; i < env->records.count && !first; i++)
        if (env->records.item[i][0] == 'T')
            first = env->records.item[i] + 1;
    int discard = answer && answer[0] == 'D';
    if (hold && !answer)
        (void)milter_verdict(s, "END-OF-MESSAGE", "H", env->sender, first);
    const char *result = answer ? milter_verdict(s, "END-OF-MESSAGE", answer, env->sender, first) : NULL;
    /* milter_header_checks: a REJECT refuses the message (logged
     * "milter-header-reject"), the other actions go with the envelope */
    if (!answer && mc.rejected) {
        rewrite_actions_log_noqueue(&mc.actions, env);
        strbuf_reset(&s->milter_reply);
        strbuf_printf(&s->milter_reply, "%s %s", mc.reject.s[0] == '4' ? "451" : "550",
                      strbuf_str(&mc.reject));
        result = strbuf_str(&s->milter_reply);
    } else if (!answer && mc.cfg) {
        rewrite_actions_apply(mc.cfg, &mc.actions, env);
    }
    rewrite_actions_free(&mc.actions);
    strbuf_free(&mc.reject);
    if (hold && !result && !discard)
        envelope_add(env, 'A', "hold=yes");
    if (discard)
        envelope_add(env, 'A', "discard=yes");
    if (!result && milter_message_write(&msg, release, inj) < 0)
        result = "451 4.3.0 Error: queue file write error";
    milter_message_free(&msg);
    return result;
}
