/* policy_access.c - access(5) tables in restrictions: check_client_access,
 * check_helo_access, check_sender_access, check_recipient_access, with
 * Postfix's search orders and actions (OK, REJECT, DEFER, DEFER_IF_PERMIT,
 * DEFER_IF_REJECT, DUNNO, PREPEND, WARN, INFO, NNN text, a number, or the
 * name of another check or a restriction class), and those that act on
 * the whole message: DISCARD, HOLD, REDIRECT, FILTER, BCC, noted in the
 * transaction (tx.actions) for the envelope.  A policy service's answer
 * is such an action too (policy_service.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"
#include "restrictions.h"

/* Split "X.Y.Z text" into the enhanced code (when it is one of the reply's
 * class, else `fallback` of that class) and the text. */
static const char *split_dsn(const char *text, int code, const char *fallback, char *dsn, size_t size)
{
    size_t n = strcspn(text, " \t");
    if (n >= 5 && n < size && text[0] == '0' + code / 100 && text[1] == '.'
        && strspn(text, "0123456789.") == n) {
        snprintf(dsn, size, "%.*s", (int)n, text);
        text += n;
        while (*text == ' ' || *text == '\t')
            text++;
        return text;
    }
    snprintf(dsn, size, "%d%s", code / 100, fallback + 1);
    return text;
}

/* PREPEND "Name: value": kept for the message's header (submit.c). */
static enum verdict prepend_header(struct check_ctx *ctx, const char *header, const char *source)
{
    size_t name_len = strcspn(header, ":");
    int ok = header[name_len] == ':' && name_len > 0;
    for (size_t i = 0; ok && i < name_len; i++)
        ok = header[i] > 32 && header[i] < 127;
    if (!ok) {
        msg_warn("access table %s: bad PREPEND header text \"%s\"", source, header);
        return config_error(ctx);
    }
    strbuf_puts(&ctx->s->tx.prepend, header);
    strbuf_putc(&ctx->s->tx.prepend, '\n');
    return V_DUNNO;
}

/* Log an action as Postfix's smtpd does: "NOQUEUE: hold: RCPT from
 * name[addr]: <what>: Recipient address text; from=<> to=<> ...". */
static void log_action(struct check_ctx *ctx, enum subject subj, const char *action,
                       const char *text)
{
    struct strbuf line = STRBUF_INIT, printable = STRBUF_INIT, who = STRBUF_INIT;
    policy_subject_what(ctx, subj, &who);
    strbuf_printf(&line, "<%s>: %s ", log_printable(&printable, strbuf_str(&who), 500),
                  policy_subject_class(subj));
    strbuf_free(&who);
    strbuf_reset(&printable);
    strbuf_puts(&line, log_printable(&printable, text, 500));
    policy_log_event(ctx, action, strbuf_str(&line));
    strbuf_free(&line);
    strbuf_free(&printable);
}

/* Note a message attribute for the transaction's envelope (smtpd.h,
 * tx.actions); it replaces an earlier one of the same name (the last
 * FILTER or REDIRECT wins), except bcc. */
void policy_note_action(struct session *s, const char *value)
{
    struct strbuf *actions = &s->tx.actions;
    const char *eq = strchr(value, '=');
    if (eq && strncmp(value, "bcc=", 4) != 0) {
        struct strbuf kept = STRBUF_INIT;
        for (size_t at = 0; at < actions->len; at += strlen(actions->s + at) + 1) {
            const char *rec = actions->s + at;
            if (strncmp(rec + 1, value, (size_t)(eq - value) + 1) != 0)
                record_put(&kept, rec[0], rec + 1);
        }
        strbuf_free(actions);
        *actions = kept;
    }
    record_put(actions, 'A', value);
}

/* DISCARD, HOLD, REDIRECT, FILTER, BCC (access(5)): V_OK (DISCARD: the
 * rest of the list is skipped), V_DUNNO, or -1 when the word is none of
 * them. */
static int message_action(struct check_ctx *ctx, enum subject subj, const char *word,
                          const char *text, const char *table)
{
    static const char *const words[] = {"DISCARD", "HOLD", "REDIRECT", "FILTER", "BCC"};
    static const char *const names[] = {"discard", "hold", "redirect", "filter", "bcc"};
    size_t k = 0;
    while (k < 5 && strcasecmp(word, words[k]) != 0)
        k++;
    if (k == 5)
        return -1;
    if (k >= 2 && !*text) {
        msg_warn("access table %s: missing %s argument: ignored", table, words[k]);
        return V_DUNNO;
    }
    if (k == 3 && (!strchr(text, ':') || *text == ':')) {
        msg_warn("access table %s: bad FILTER action syntax: %s", table, text);
        return V_DUNNO;
    }
    struct strbuf reason = STRBUF_INIT, value = STRBUF_INIT;
    if (k < 2 && *text)
        strbuf_puts(&reason, text);
    else if (k < 2)
        strbuf_printf(&reason, "triggers %s action", words[k]);
    else
        strbuf_printf(&reason, "triggers %s %s", words[k], text);
    log_action(ctx, subj, names[k], strbuf_str(&reason));
    strbuf_printf(&value, "%s=%s", names[k], k < 2 ? "yes" : text);
    policy_note_action(ctx->s, strbuf_str(&value));
    strbuf_free(&reason);
    strbuf_free(&value);
    return k == 0 ? V_OK : V_DUNNO;
}

enum verdict access_action(struct check_ctx *ctx, enum subject subj, const char *action,
                           const char *table)
{
    char word[64];
    size_t n = strcspn(action, " \t");
    snprintf(word, sizeof word, "%.*s", (int)(n < 63 ? n : 63), action);
    const char *text = action + n;
    while (*text == ' ' || *text == '\t')
        text++;
    if (strcasecmp(word, "OK") == 0 || strcasecmp(word, "PERMIT") == 0)
        return V_OK;
    if (word[0] && strspn(word, "0123456789") == strlen(word) && !*text)
        return V_OK;            /* all-numeric: OK, as Postfix */
    if (strcasecmp(word, "DUNNO") == 0)
        return V_DUNNO;
    char dsn[16];
    if (strcasecmp(word, "REJECT") == 0) {
        int code = (int)conf_int("access_map_reject_code");
        text = split_dsn(text, code, "5.7.1", dsn, sizeof dsn);
        return reject_with(ctx, subj, code, dsn, *text ? text : "Access denied");
    }
    if (strcasecmp(word, "DEFER") == 0) {
        int code = (int)conf_int("access_map_defer_code");
        text = split_dsn(text, code, "4.7.1", dsn, sizeof dsn);
        return reject_with(ctx, subj, code, dsn, *text ? text : "Access denied");
    }
    if (strcasecmp(word, "DEFER_IF_PERMIT") == 0 || strcasecmp(word, "DEFER_IF_REJECT") == 0) {
        int code = (int)conf_int("access_map_defer_code");
        text = split_dsn(text, code, "4.7.1", dsn, sizeof dsn);
        if (!*text)
            text = "Service unavailable";
        return strcasecmp(word, "DEFER_IF_PERMIT") == 0
               ? policy_defer_if_permit(ctx, subj, code, dsn, text)
               : policy_defer_if_reject(ctx, subj, code, dsn, text);
    }
    if (strcasecmp(word, "PREPEND") == 0)
        return prepend_header(ctx, text, table);
    if (strcasecmp(word, "WARN") == 0 || strcasecmp(word, "INFO") == 0) {
        policy_log_event(ctx, strcasecmp(word, "WARN") == 0 ? "warn" : "info", text);
        return V_DUNNO;
    }
    if (strlen(word) == 3 && (word[0] == '4' || word[0] == '5') && isdigit((unsigned char)word[1])
        && isdigit((unsigned char)word[2])) {
        int code = atoi(word);
        text = split_dsn(text, code, "5.7.1", dsn, sizeof dsn);
        return reject_with(ctx, subj, code, dsn, *text ? text : "Access denied");
    }
    int message = message_action(ctx, subj, word, text, table);
    if (message >= 0)
        return (enum verdict)message;
    if (ctx->depth < 3) {
        ctx->depth++;
        enum verdict v = run_named_check(ctx, action);
        ctx->depth--;
        return v;
    }
    msg_warn("%s: unsupported access table action: %s", table, word);
    return config_error(ctx);
}

/* What a table's answer r (MAP_FOUND with value, MAP_NOTFOUND,
 * MAP_RETRY) makes of a check. */
static enum verdict table_answer(struct check_ctx *ctx, enum subject subj, int r, const struct strbuf *value,
                                 const char *table)
{
    if (r == MAP_RETRY)
        return temp_failure(ctx, subj);
    if (r == MAP_FOUND)
        return access_action(ctx, subj, strbuf_str(value), table);
    return V_DUNNO;
}

/* check_*_access type:table. */
enum verdict access_lookup(struct check_ctx *ctx, enum subject subj, const char *table)
{
    struct maplist *maps = policy_table(ctx->s->policy, table);
    if (!maps)
        return temp_failure(ctx, subj);
    struct strbuf value = STRBUF_INIT;
    int r = MAP_NOTFOUND;
    const char *delim = conf_str("recipient_delimiter");
    int parent = 0;
    struct strlist parents = STRLIST_INIT;
    conf_list("parent_domain_matches_subdomains", &parents);
    for (size_t i = 0; i < parents.count; i++)
        if (strcmp(parents.item[i], "smtpd_access_maps") == 0)
            parent = 1;
    strlist_free(&parents);
    switch (subj) {
    case SUBJ_CLIENT:
    case SUBJ_REV_CLIENT:
        /* as Postfix: the name (or the unverified reverse name) and its
         * parents first ("unknown" too, which a table may list), then the
         * address and its networks */
        r = map_search_domain(maps, subj == SUBJ_CLIENT ? ctx->s->client.name : ctx->s->client.reverse_name,
                              parent, &value);
        if (r == MAP_NOTFOUND)
            r = map_search_client_ip(maps, ctx->s->client.address, &value);
        break;
    case SUBJ_HELO:
        if (ctx->s->helo.len)
            r = map_search_domain(maps, strbuf_str(&ctx->s->helo), parent, &value);
        break;
    case SUBJ_SENDER: {
        const char *key = ctx->sender && *ctx->sender ? ctx->sender : conf_str("smtpd_null_access_lookup_key");
        r = map_search_mail_access(maps, key, delim, parent, &value);
        break;
    }
    case SUBJ_RECIPIENT:
        if (ctx->recipient)
            r = map_search_mail_access(maps, ctx->recipient, delim, parent, &value);
        break;
    case SUBJ_DATA:
    case SUBJ_EOD:
    case SUBJ_CCERT:
    case SUBJ_SASL:
        break;                  /* a bare table there: refused in run_list; the
                                   others have their own lookups below */
    }
    enum verdict v = table_answer(ctx, subj, r, &value, table);
    strbuf_free(&value);
    return v;
}

enum verdict check_client_access(struct check_ctx *ctx, const char *table)
{
    return access_lookup(ctx, SUBJ_CLIENT, table);
}

enum verdict check_helo_access(struct check_ctx *ctx, const char *table)
{
    return access_lookup(ctx, SUBJ_HELO, table);
}

enum verdict check_sender_access(struct check_ctx *ctx, const char *table)
{
    return access_lookup(ctx, SUBJ_SENDER, table);
}

enum verdict check_recipient_access(struct check_ctx *ctx, const char *table)
{
    return access_lookup(ctx, SUBJ_RECIPIENT, table);
}

enum verdict policy_forbid_ok(struct check_ctx *ctx, const char *restriction, const char *target)
{
    msg_warn("restriction %s returns OK for %s", restriction, target);
    msg_warn("this is not allowed for security reasons");
    msg_warn("use DUNNO instead of OK if you want to make an exception");
    return config_error(ctx);
}

/* check_reverse_client_hostname_access: as check_client_access, with the
 * unverified reverse name; OK is refused (Postfix: DUNNO exempts). */
enum verdict check_reverse_client_access(struct check_ctx *ctx, const char *table)
{
    enum verdict v = access_lookup(ctx, SUBJ_REV_CLIENT, table);
    if (v == V_OK)
        return policy_forbid_ok(ctx, "check_reverse_client_hostname_access", ctx->s->client.reverse_name);
    return v;
}

/* One key of a table that is looked up as it is (no parent domains, no
 * address search): its action, DUNNO when not found. */
static enum verdict plain_lookup(struct check_ctx *ctx, enum subject subj, const char *table,
                                 struct maplist *maps, const char *key)
{
    struct strbuf value = STRBUF_INIT;
    int r = maplist_lookup(maps, key, &value);
    enum verdict v = table_answer(ctx, subj, r, &value, table);
    strbuf_free(&value);
    return v;
}

/* check_sasl_access: the SASL login name as the key.  Without
 * smtpd_sasl_auth_enable Postfix skips it with a warning; a client that
 * has not logged in is not judged. */
enum verdict check_sasl_access(struct check_ctx *ctx, const char *table)
{
    if (!conf_bool("smtpd_sasl_auth_enable")) {
        msg_warn("restriction `check_sasl_access' ignored: no SASL support");
        return V_DUNNO;
    }
    if (!ctx->s->sasl_username[0])
        return V_DUNNO;
    struct maplist *maps = policy_table(ctx->s->policy, table);
    if (!maps)
        return temp_failure(ctx, SUBJ_SASL);
    return plain_lookup(ctx, SUBJ_SASL, table, maps, ctx->s->sasl_username);
}

/* check_ccert_access: the client certificate's fingerprint and its public
 * key's (smtpd_tls_fingerprint_digest), in the search order, as keys; a
 * certificate counts whether it verified or not (the fingerprint is the
 * proof), as in Postfix.  No certificate: nothing to judge (with Postfix's
 * warning when smtpd_tls_ask_ccert = no asks for none). */
enum verdict check_ccert_access(struct check_ctx *ctx, const char *argument)
{
    struct strbuf table = STRBUF_INIT, err = STRBUF_INIT;
    char order[3];
    if (restriction_ccert_argument(argument, &table, order, &err) != 0) {
        msg_warn("%s", strbuf_str(&err));
        strbuf_free(&table);
        strbuf_free(&err);
        return config_error(ctx);
    }
    strbuf_free(&err);
    const char *cert_fp, *pkey_fp;
    enum verdict v = V_DUNNO;
    if (!tls_client_cert(ctx->s, &cert_fp, &pkey_fp)) {
        if (!conf_bool("smtpd_tls_ask_ccert"))
            msg_warn("check_ccert_access is requested, but \"smtpd_tls_ask_ccert = no\"");
    } else {
        struct maplist *maps = policy_table(ctx->s->policy, strbuf_str(&table));
        if (!maps)
            v = temp_failure(ctx, SUBJ_CCERT);
        for (const char *o = order; maps && *o && v == V_DUNNO; o++) {
            const char *key = *o == 'c' ? cert_fp : pkey_fp;
            if (key)
                v = plain_lookup(ctx, SUBJ_CCERT, strbuf_str(&table), maps, key);
        }
    }
    strbuf_free(&table);
    return v;
}
