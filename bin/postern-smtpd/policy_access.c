/* policy_access.c - access(5) tables in restrictions: check_client_access,
 * check_helo_access, check_sender_access, check_recipient_access, with
 * Postfix's search orders and actions (OK, REJECT, DEFER, DUNNO, NNN text,
 * a number, or the name of another check). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"

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
