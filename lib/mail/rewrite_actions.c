/* rewrite_actions.c - what header_checks and body_checks decide about
 * the message as a whole (DISCARD, HOLD, REDIRECT, FILTER, BCC), carried
 * into the envelope for the queue (rewrite.h, doc/injection.md), and the
 * copies that sender_bcc_maps, recipient_bcc_maps and always_bcc ask for
 * (Postfix's cleanup: the added recipients get NOTIFY=NEVER). */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "map.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

void rewrite_actions_free(struct rewrite_actions *actions)
{
    strlist_free(&actions->log);
    strlist_free(&actions->bcc);
    free(actions->filter);
    free(actions->redirect);
    actions->filter = actions->redirect = NULL;
    actions->discard = actions->hold = 0;
}

/* The first recipient of the envelope, or "". */
static const char *first_recipient(const struct envelope *env)
{
    for (size_t i = 0; i < env->records.count; i++)
        if (env->records.item[i][0] == 'T')
            return env->records.item[i] + 1;
    return "";
}

void rewrite_actions_format(const struct rewrite_actions *actions, size_t i,
                            const struct envelope *env, struct strbuf *out)
{
    struct strbuf clean = STRBUF_INIT;
    const char *client = envelope_attr(env, "log_client");
    const char *proto = envelope_attr(env, "protocol");
    const char *helo = envelope_attr(env, "helo_name");
    strbuf_printf(out, "%s from %s;", actions->log.item[i],
                  log_printable(&clean, client ? client : "local", 300));
    strbuf_reset(&clean);
    strbuf_printf(out, " from=<%s>", log_printable(&clean, env->sender ? env->sender : "", 0));
    strbuf_reset(&clean);
    strbuf_printf(out, " to=<%s>", log_printable(&clean, first_recipient(env), 0));
    if (proto) {
        strbuf_reset(&clean);
        strbuf_printf(out, " proto=%s", log_printable(&clean, proto, 32));
    }
    if (helo) {
        strbuf_reset(&clean);
        strbuf_printf(out, " helo=<%s>", log_printable(&clean, helo, 300));
    }
    strbuf_puts(out, actions->log.item[i + 1]);
    strbuf_free(&clean);
}

void rewrite_actions_log_noqueue(const struct rewrite_actions *actions,
                                 const struct envelope *env)
{
    struct strbuf line = STRBUF_INIT;
    for (size_t i = 0; i + 1 < actions->log.count; i += 2) {
        strbuf_reset(&line);
        rewrite_actions_format(actions, i, env, &line);
        msg_info("NOQUEUE: %s", strbuf_str(&line));
    }
    strbuf_free(&line);
}

/* Add a recipient that gets no delivery status notifications. */
static void add_quiet_recipient(struct envelope *env, const char *address)
{
    envelope_add(env, 'T', address);
    envelope_add(env, 'P', "NOTIFY=NEVER");
}

void rewrite_actions_apply(const struct rewrite_config *cfg,
                           const struct rewrite_actions *actions, struct envelope *env)
{
    struct strbuf buf = STRBUF_INIT;
    /* the log lines first: they name the recipient as it was given */
    for (size_t i = 0; i + 1 < actions->log.count; i += 2) {
        strbuf_set(&buf, "log_line=");
        rewrite_actions_format(actions, i, env, &buf);
        if (buf.len > ENVELOPE_RECORD_MAX - 2)
            strbuf_truncate(&buf, ENVELOPE_RECORD_MAX - 2);
        envelope_add(env, 'A', strbuf_str(&buf));
    }
    if (actions->redirect) {
        /* one recipient: the redirect address, with the first one's ORCPT */
        struct strlist kept = STRLIST_INIT;
        char *orcpt = NULL;
        int seen_first = 0, in_first = 0;
        for (size_t i = 0; i < env->records.count; i++) {
            char *rec = env->records.item[i];
            if (rec[0] == 'T') {
                in_first = !seen_first;
                seen_first = 1;
                if (in_first)
                    orcpt = xstrdup(rec + 1);
            } else if (rec[0] == 'P') {
                if (in_first && strncmp(rec, "PORCPT=", 7) == 0) {
                    free(orcpt);
                    orcpt = xstrdup(rec + 7);
                    continue;
                }
            } else {
                strlist_add(&kept, rec);
                in_first = 0;
            }
        }
        strlist_free(&env->records);
        env->records = kept;
        strbuf_reset(&buf);
        rewrite_address(cfg, actions->redirect, &buf);
        envelope_add(env, 'T', strbuf_str(&buf));
        if (orcpt) {
            strbuf_reset(&buf);
            strbuf_printf(&buf, "ORCPT=%s%s", strchr(orcpt, ';') ? "" : "rfc822;", orcpt);
            envelope_add(env, 'P', strbuf_str(&buf));
        }
        free(orcpt);
    }
    for (size_t i = 0; i < actions->bcc.count; i++) {
        strbuf_reset(&buf);
        rewrite_address(cfg, actions->bcc.item[i], &buf);
        add_quiet_recipient(env, strbuf_str(&buf));
    }
    if (actions->discard)
        envelope_add(env, 'A', "discard=yes");
    else if (actions->hold)
        envelope_add(env, 'A', "hold=yes");
    if (actions->filter) {
        /* header_checks' FILTER replaces content_filter's and an access
         * table's, as the last one wins in Postfix's cleanup */
        envelope_remove_attr(env, "filter");
        strbuf_set(&buf, "filter=");
        strbuf_puts(&buf, actions->filter);
        envelope_add(env, 'A', strbuf_str(&buf));
    }
    strbuf_free(&buf);
}

int rewrite_access_actions(const struct rewrite_config *cfg, struct envelope *env)
{
    struct rewrite_actions actions = REWRITE_ACTIONS_INIT;
    size_t kept = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (strncmp(rec, "Aredirect=", 10) == 0) {
            free(actions.redirect);
            actions.redirect = xstrdup(rec + 10);
        } else if (strncmp(rec, "Abcc=", 5) == 0) {
            strlist_add(&actions.bcc, rec + 5);
        } else {
            env->records.item[kept++] = rec;
            continue;
        }
        free(rec);
    }
    env->records.count = kept;
    int found = actions.redirect || actions.bcc.count;
    if (found)
        rewrite_actions_apply(cfg, &actions, env);
    rewrite_actions_free(&actions);
    return found;
}

/* Look an address up in a bcc table; add what it names.  0, or -1 when
 * the table could not answer. */
static int bcc_lookup(const struct rewrite_config *cfg, struct maplist *maps,
                      const char *address, struct strlist *out)
{
    struct strbuf value = STRBUF_INIT;
    int r = rewrite_map_search(cfg, maps, address, &value, NULL);
    if (r == MAP_FOUND)
        rewrite_crunch_result(cfg, strbuf_str(&value), "", out);
    strbuf_free(&value);
    return r == MAP_RETRY ? -1 : 0;
}

int rewrite_bcc(const struct rewrite_config *cfg, struct envelope *env)
{
    if (!cfg->sender_bcc_maps && !cfg->recipient_bcc_maps && !*cfg->always_bcc)
        return 0;
    struct strlist copies = STRLIST_INIT;
    int status = 0;
    if (cfg->sender_bcc_maps && env->sender && *env->sender)
        status |= bcc_lookup(cfg, cfg->sender_bcc_maps, env->sender, &copies);
    if (cfg->recipient_bcc_maps)
        for (size_t i = 0; i < env->records.count; i++)
            if (env->records.item[i][0] == 'T')
                status |= bcc_lookup(cfg, cfg->recipient_bcc_maps, env->records.item[i] + 1,
                                     &copies);
    if (*cfg->always_bcc) {
        struct strbuf buf = STRBUF_INIT;
        rewrite_address(cfg, cfg->always_bcc, &buf);
        strlist_add(&copies, strbuf_str(&buf));
        strbuf_free(&buf);
    }
    if (status == 0)
        for (size_t i = 0; i < copies.count; i++)
            add_quiet_recipient(env, copies.item[i]);
    strlist_free(&copies);
    return status ? -1 : 0;
}
