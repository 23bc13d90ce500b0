/* rewrite_alias.c - virtual alias expansion of the envelope recipients
 * (rewrite.h), as Postfix's cleanup(8) does it at injection, so that the
 * queue file holds the expanded recipients:
 *   - each recipient is searched in virtual_alias_maps in virtual(5)'s
 *     order (user+ext@domain, user@domain, user+ext and user for our own
 *     domains, @domain); a result is a list of addresses, unqualified ones
 *     get @$myorigin, and an extension that the key did not match is put
 *     back (propagate_unmatched_extensions has "virtual");
 *   - the results are searched again, up to virtual_alias_recursion_limit
 *     rounds for one address; an address that maps to itself (among other
 *     things) is kept and not searched again;
 *   - more than virtual_alias_expansion_limit addresses from one
 *     recipient, a result longer than virtual_alias_address_length_limit,
 *     too many rounds (an alias loop) or a table that cannot answer defer
 *     the message: "4.6.0 Alias expansion error", as Postfix;
 *   - each new recipient keeps the DSN records (P) of the one it came
 *     from, and gets ORCPT=rfc822;<the recipient as given> when it had none.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "log.h"
#include "map.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

/* 1 when list holds the address (case does not matter). */
static int listed(const struct strlist *list, const char *address)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->item[i], address) == 0)
            return 1;
    return 0;
}

/* Expand one recipient into `out` (which starts as just the recipient).
 * 0, or -1: defer the message (logged). */
static int expand_recipient(const struct rewrite_config *cfg, const char *recipient,
                            struct strlist *out)
{
    struct strlist done = STRLIST_INIT;         /* mapped to themselves */
    struct strbuf value = STRBUF_INIT, ext = STRBUF_INIT;
    const char *table = "virtual_alias_maps";
    int status = 0;
    strlist_add(out, recipient);
    for (size_t i = 0; i < out->count && status == 0; i++) {
        for (long round = 0;; round++) {
            const char *address = out->item[i];
            if (listed(&done, address))
                break;
            if (round >= cfg->virtual_alias_recursion_limit) {
                msg_warn("unreasonable %s map nesting for %s -- "
                         "message not accepted, try again later", table, address);
                status = -1;
                break;
            }
            enum addr_key_form form = ADDR_KEY_FULL;
            int r = rewrite_map_search(cfg, cfg->virtual_alias_maps, address, &value, &form);
            if (r == MAP_RETRY) {
                msg_warn("%s map lookup problem for %s -- "
                         "message not accepted, try again later", table, address);
                status = -1;
                break;
            }
            if (r != MAP_FOUND)
                break;
            strbuf_reset(&ext);
            if (cfg->propagate_virtual && (form == ADDR_KEY_NOEXT || form == ADDR_KEY_LOCAL))
                rewrite_extension(cfg, address, &ext);
            struct strlist results = STRLIST_INIT;
            rewrite_crunch_result(cfg, strbuf_str(&value), strbuf_str(&ext), &results);
            char *lhs = xstrdup(address);
            for (size_t j = 0; j < results.count && status == 0; j++) {
                const char *result = results.item[j];
                if (strlen(result) > cfg->virtual_alias_address_length_limit) {
                    msg_warn("unreasonable %s result %.300s... -- "
                             "message not accepted, try again later", table, result);
                    status = -1;
                } else if (j == 0) {
                    free(out->item[i]);
                    out->item[i] = xstrdup(result);
                } else if (out->count >= cfg->virtual_alias_expansion_limit) {
                    msg_warn("unreasonable %s map expansion size for %s -- "
                             "message not accepted, try again later", table, recipient);
                    status = -1;
                } else {
                    strlist_add(out, result);
                }
                /* an address may expand into itself once */
                if (status == 0 && strcasecmp(lhs, result) == 0 && !listed(&done, lhs))
                    strlist_add(&done, lhs);
            }
            free(lhs);
            strlist_free(&results);
            if (status)
                break;
        }
    }
    strlist_free(&done);
    strbuf_free(&value);
    strbuf_free(&ext);
    return status;
}

int rewrite_virtual_aliases(const struct rewrite_config *cfg, struct envelope *env,
                            const struct strlist *given, struct strbuf *reason)
{
    if (!cfg->virtual_alias_maps || !maplist_count(cfg->virtual_alias_maps))
        return 0;
    struct strlist records = STRLIST_INIT;
    size_t rcpt_index = 0;
    int status = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (rec[0] != 'T' || status) {
            strlist_add(&records, rec);
            continue;
        }
        const char *original = rcpt_index < given->count ? given->item[rcpt_index] : rec + 1;
        rcpt_index++;
        /* the P records of this recipient go with each of its addresses */
        size_t attrs = i + 1, attrs_end = attrs;
        int has_orcpt = 0;
        while (attrs_end < env->records.count && env->records.item[attrs_end][0] == 'P') {
            if (strncasecmp(env->records.item[attrs_end] + 1, "ORCPT=", 6) == 0)
                has_orcpt = 1;
            attrs_end++;
        }
        struct strlist expanded = STRLIST_INIT;
        if (expand_recipient(cfg, rec + 1, &expanded) != 0) {
            status = -1;
            strbuf_set(reason, REWRITE_EXPANSION_ERROR);
        }
        int changed = expanded.count != 1 || strcmp(expanded.item[0], rec + 1) != 0;
        if (status || !changed) {
            strlist_add(&records, rec);
            strlist_free(&expanded);
            continue;
        }
        struct strbuf buf = STRBUF_INIT;
        for (size_t k = 0; k < expanded.count; k++) {
            strbuf_reset(&buf);
            strbuf_printf(&buf, "T%s", expanded.item[k]);
            strlist_add(&records, strbuf_str(&buf));
            for (size_t a = attrs; a < attrs_end; a++)
                strlist_add(&records, env->records.item[a]);
            if (!has_orcpt) {
                strbuf_reset(&buf);
                strbuf_printf(&buf, "PORCPT=rfc822;%s", original);
                strlist_add(&records, strbuf_str(&buf));
            }
        }
        strbuf_free(&buf);
        strlist_free(&expanded);
        i = attrs_end - 1;
    }
    strlist_free(&env->records);
    env->records = records;
    return status;
}
