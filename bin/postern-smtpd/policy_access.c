/* policy_access.c - access(5) tables in restrictions: check_client_access,
 * check_helo_access, check_sender_access, check_recipient_access, with
 * Postfix's search orders and actions (OK, REJECT, DEFER, DUNNO, NNN text,
 * a number, or the name of another check), and those that act on the
 * message: DISCARD, HOLD, REDIRECT, FILTER, BCC, PREPEND, INFO, WARN,
 * noted in the transaction (tx.actions) for the envelope and header. */
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

/* What a subject is called in the log lines of actions. */
static const char *subject_name(enum subject subj)
{
    static const char *const names[] = {
        [SUBJ_CLIENT] = "Client host", [SUBJ_HELO] = "Helo command",
        [SUBJ_SENDER] = "Sender address", [SUBJ_RECIPIENT] = "Recipient address",
    };
    return names[subj];
}

/* Log an action as Postfix's smtpd does: "NOQUEUE: hold: RCPT from
 * name[addr]: <what>: Recipient address text; from=<> to=<> proto=
 * helo=<>" (INFO and WARN: the text alone). */
static void log_action(struct check_ctx *ctx, enum subject subj, const char *action,
                       const char *text)
{
    struct session *s = ctx->s;
    struct strbuf what = STRBUF_INIT, p1 = STRBUF_INIT, p2 = STRBUF_INIT, p3 = STRBUF_INIT,
                  p4 = STRBUF_INIT;
    if (strcmp(action, "info") != 0 && strcmp(action, "warn") != 0) {
        const char *who = subj == SUBJ_CLIENT ? s->client.namaddr
                          : subj == SUBJ_HELO ? strbuf_str(&s->helo)
                          : subj == SUBJ_SENDER ? (ctx->sender ? ctx->sender : "")
                          : (ctx->recipient ? ctx->recipient : "");
        strbuf_printf(&what, "<%s>: %s ", log_printable(&p3, who, 500), subject_name(subj));
    }
    msg_info("NOQUEUE: %s: %s from %s: %s%s; from=<%s> to=<%s> proto=%s helo=<%s>", action,
             ctx->recipient ? "RCPT" : "MAIL", s->client.namaddr, strbuf_str(&what),
             log_printable(&p4, text, 500), log_printable(&p1, ctx->sender ? ctx->sender : "", 0),
             log_printable(&p2, ctx->recipient ? ctx->recipient : "", 0), s->protocol,
             strbuf_str(&s->helo));
    strbuf_free(&what);
    strbuf_free(&p1);
    strbuf_free(&p2);
    strbuf_free(&p3);
    strbuf_free(&p4);
}

/* Note a record for the transaction's envelope or header (smtpd.h,
 * tx.actions); an A record replaces an earlier one of the same name
 * (the last FILTER or REDIRECT wins), except bcc. */
static void note_action(struct session *s, int type, const char *value)
{
    struct strbuf *actions = &s->tx.actions;
    const char *eq = strchr(value, '=');
    if (type == 'A' && eq && strncmp(value, "bcc=", 4) != 0) {
        struct strbuf kept = STRBUF_INIT;
        for (size_t at = 0; at < actions->len; at += strlen(actions->s + at) + 1) {
            const char *rec = actions->s + at;
            if (!(rec[0] == 'A' && strncmp(rec + 1, value, (size_t)(eq - value) + 1) == 0))
                record_put(&kept, rec[0], rec + 1);
        }
        strbuf_free(actions);
        *actions = kept;
    }
    record_put(actions, type, value);
}

/* DISCARD, HOLD, REDIRECT, FILTER, BCC, PREPEND, INFO, WARN (access(5)):
 * V_OK (DISCARD: the rest of the list is skipped), V_DUNNO, or -1 when
 * the word is none of them. */
static int message_action(struct check_ctx *ctx, enum subject subj, const char *word,
                          const char *text, const char *table)
{
    struct strbuf value = STRBUF_INIT, reason = STRBUF_INIT;
    int needs_text = strcasecmp(word, "REDIRECT") == 0 || strcasecmp(word, "FILTER") == 0
                     || strcasecmp(word, "BCC") == 0 || strcasecmp(word, "PREPEND") == 0;
    int result = V_DUNNO;
    if (needs_text && !*text) {
        msg_warn("access table %s: missing %s argument: ignored", table, word);
        return V_DUNNO;
    }
    if (strcasecmp(word, "DISCARD") == 0 || strcasecmp(word, "HOLD") == 0) {
        int discard = strcasecmp(word, "DISCARD") == 0;
        if (*text)
            strbuf_puts(&reason, text);
        else
            strbuf_printf(&reason, "triggers %s action", discard ? "DISCARD" : "HOLD");
        log_action(ctx, subj, discard ? "discard" : "hold", strbuf_str(&reason));
        note_action(ctx->s, 'A', discard ? "discard=yes" : "hold=yes");
        result = discard ? V_OK : V_DUNNO;
    } else if (strcasecmp(word, "REDIRECT") == 0 || strcasecmp(word, "BCC") == 0
               || strcasecmp(word, "FILTER") == 0) {
        int filter = strcasecmp(word, "FILTER") == 0;
        if (filter && (!strchr(text, ':') || *text == ':')) {
            msg_warn("access table %s: bad FILTER action syntax: %s", table, text);
            return V_DUNNO;
        }
        strbuf_printf(&reason, "triggers %s %s", filter ? "FILTER" : strcasecmp(word, "BCC") == 0 ? "BCC" : "REDIRECT", text);
        char lower[16];
        snprintf(lower, sizeof lower, "%s", filter ? "filter" : strcasecmp(word, "BCC") == 0 ? "bcc" : "redirect");
        log_action(ctx, subj, lower, strbuf_str(&reason));
        strbuf_printf(&value, "%s=%s", lower, text);
        note_action(ctx->s, 'A', strbuf_str(&value));
    } else if (strcasecmp(word, "PREPEND") == 0) {
        size_t name_len = strcspn(text, ":");
        if (!text[name_len] || name_len == 0 || strcspn(text, " \t") < name_len) {
            msg_warn("access table %s: bad PREPEND header text \"%s\" -- need \"headername: headervalue\"",
                     table, text);
            return V_DUNNO;
        }
        note_action(ctx->s, 'H', text);
    } else if (strcasecmp(word, "INFO") == 0 || strcasecmp(word, "WARN") == 0) {
        log_action(ctx, subj, strcasecmp(word, "INFO") == 0 ? "info" : "warn", text);
    } else {
        result = -1;
    }
    strbuf_free(&value);
    strbuf_free(&reason);
    return result;
}

/* The action an access table gave (access(5)). */
static enum verdict access_action(struct check_ctx *ctx, enum subject subj, const char *action,
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
    if (strcasecmp(word, "REJECT") == 0) {
        int code = (int)conf_int("access_map_reject_code");
        return reject_with(ctx, subj, code, smtp_reply_class(code) == REPLY_TRANSIENT ? "4.7.1" : "5.7.1", *text ? text : "Access denied");
    }
    if (strcasecmp(word, "DEFER") == 0)
        return reject_with(ctx, subj, (int)conf_int("access_map_defer_code"), "4.7.1",
                           *text ? text : "Access denied");
    if (strlen(word) == 3 && (word[0] == '4' || word[0] == '5') && isdigit((unsigned char)word[1])
        && isdigit((unsigned char)word[2])) {
        int code = atoi(word);
        char dsn[16];
        const char *rest = text;
        size_t dn = strcspn(text, " ");
        if (dn > 4 && dn < sizeof dsn && text[0] == word[0] && text[1] == '.') {
            snprintf(dsn, sizeof dsn, "%.*s", (int)dn, text);
            rest = text + dn;
            while (*rest == ' ')
                rest++;
        } else {
            snprintf(dsn, sizeof dsn, "%c.7.1", word[0]);
        }
        return reject_with(ctx, subj, code, dsn, *rest ? rest : "Access denied");
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
        r = map_search_client_ip(maps, ctx->s->client.address, &value);
        if (r == MAP_NOTFOUND && strcmp(ctx->s->client.name, "unknown") != 0)
            r = map_search_domain(maps, ctx->s->client.name, parent, &value);
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
    }
    enum verdict v = V_DUNNO;
    if (r == MAP_RETRY)
        v = temp_failure(ctx, subj);
    else if (r == MAP_FOUND)
        v = access_action(ctx, subj, strbuf_str(&value), table);
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
