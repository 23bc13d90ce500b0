/* rewrite.c - address qualification and header rewriting of postern-rewrite
 * (rewrite.h); the streaming of the message is in rewrite_stream.c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrlist.h"
#include "config.h"
#include "envelope.h"
#include "log.h"
#include "map.h"
#include "resolve.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

void rewrite_config_load(struct rewrite_config *cfg)
{
    cfg->myhostname = xstrdup(conf_str("myhostname"));
    cfg->myorigin = xstrdup(conf_str("myorigin"));
    cfg->mydomain = xstrdup(conf_str("mydomain"));
    cfg->append_at_myorigin = conf_bool("append_at_myorigin");
    cfg->append_dot_mydomain = conf_bool("append_dot_mydomain");
    cfg->always_add_missing_headers = conf_bool("always_add_missing_headers");
    long long limit = conf_int("header_size_limit");
    cfg->header_size_limit = limit < 1024 ? 1024 : (size_t)limit;
    cfg->hopcount_limit = (long)conf_int("hopcount_limit");
    long long dups = conf_int("duplicate_filter_limit");
    cfg->duplicate_filter_limit = dups < 0 ? 0 : (size_t)dups;
    cfg->drop_headers = (struct strlist)STRLIST_INIT;
    conf_list("message_drop_headers", &cfg->drop_headers);
    cfg->virtual_alias_maps = NULL;
    cfg->resolver = NULL;
    cfg->recipient_delimiter = NULL;
    const char *maps = conf_str("virtual_alias_maps");
    if (*maps) {
        /* only then: smtpd's path without tables pays nothing */
        cfg->recipient_delimiter = xstrdup(conf_str("recipient_delimiter"));
        struct strlist propagate = STRLIST_INIT;
        conf_list("propagate_unmatched_extensions", &propagate);
        cfg->propagate_virtual = 0;
        for (size_t i = 0; i < propagate.count; i++)
            if (strcasecmp(propagate.item[i], "virtual") == 0)
                cfg->propagate_virtual = 1;
        strlist_free(&propagate);
        cfg->virtual_alias_recursion_limit = (long)conf_int("virtual_alias_recursion_limit");
        cfg->virtual_alias_expansion_limit = (size_t)conf_int("virtual_alias_expansion_limit");
        cfg->virtual_alias_address_length_limit =
            (size_t)conf_int("virtual_alias_address_length_limit");
        struct strbuf err = STRBUF_INIT;
        cfg->virtual_alias_maps = maplist_open(maps, &err);
        if (cfg->virtual_alias_maps)
            cfg->resolver = resolver_open(&err);
        if (!cfg->virtual_alias_maps || !cfg->resolver)
            msg_fatal_temp("virtual_alias_maps: %s", strbuf_str(&err));
        strbuf_free(&err);
    }
}

void rewrite_config_free(struct rewrite_config *cfg)
{
    free(cfg->myhostname);
    free(cfg->myorigin);
    free(cfg->mydomain);
    strlist_free(&cfg->drop_headers);
    free(cfg->recipient_delimiter);
    if (cfg->virtual_alias_maps)
        maplist_close(cfg->virtual_alias_maps);
    if (cfg->resolver)
        resolver_close(cfg->resolver);
}

/* What to append to an address to qualify it: "@$myorigin",
 * ".$mydomain" or nothing. */
static void qualify_suffix(const struct rewrite_config *cfg, const char *address,
                           struct strbuf *suffix)
{
    if (!*address)
        return;
    const char *at = strrchr(address, '@');
    if (!at) {
        if (cfg->append_at_myorigin && *cfg->myorigin) {
            strbuf_putc(suffix, '@');
            strbuf_puts(suffix, cfg->myorigin);
        }
        return;
    }
    const char *domain = at + 1;
    if (cfg->append_dot_mydomain && *domain && *domain != '['
        && !strchr(domain, '.') && *cfg->mydomain) {
        strbuf_putc(suffix, '.');
        strbuf_puts(suffix, cfg->mydomain);
    }
}

void rewrite_address(const struct rewrite_config *cfg, const char *address,
                     struct strbuf *out)
{
    /* Companion issue: canonical_maps, sender_canonical_maps and
     * recipient_canonical_maps are applied here, after qualification. */
    strbuf_puts(out, address);
    qualify_suffix(cfg, address, out);
}

/* Remove a T record (and the P records that follow it) whose address an
 * earlier T already has, among the first duplicate_filter_limit. */
static void drop_duplicate_recipients(const struct rewrite_config *cfg,
                                      struct envelope *env)
{
    size_t kept = 0, seen = 0;
    int dropping = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (rec[0] == 'T') {
            dropping = 0;
            if (seen < cfg->duplicate_filter_limit) {
                for (size_t j = 0; j < kept; j++) {
                    if (env->records.item[j][0] == 'T'
                        && strcmp(env->records.item[j], rec) == 0) {
                        dropping = 1;
                        break;
                    }
                }
                seen++;
            }
        } else if (rec[0] != 'P') {
            dropping = 0;
        }
        if (dropping) {
            free(rec);
            continue;
        }
        env->records.item[kept++] = rec;
    }
    env->records.count = kept;
}

int rewrite_envelope(const struct rewrite_config *cfg, struct envelope *env,
                     struct strbuf *reason)
{
    struct strbuf buf = STRBUF_INIT;
    struct strlist given = STRLIST_INIT;       /* the recipients as given */
    int expand = cfg->virtual_alias_maps != NULL;
    if (env->sender && *env->sender) {
        rewrite_address(cfg, env->sender, &buf);
        free(env->sender);
        env->sender = strbuf_detach(&buf);
    }
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (rec[0] != 'T')
            continue;
        if (expand)
            strlist_add(&given, rec + 1);
        strbuf_reset(&buf);
        strbuf_putc(&buf, 'T');
        rewrite_address(cfg, rec + 1, &buf);
        free(rec);
        env->records.item[i] = strbuf_detach(&buf);
    }
    strbuf_free(&buf);
    int status = expand ? rewrite_virtual_aliases(cfg, env, &given, reason) : 0;
    strlist_free(&given);
    if (status == 0)
        drop_duplicate_recipients(cfg, env);
    return status;
}

void rewrite_message_info_from(const struct envelope *env,
                               struct rewrite_message_info *info)
{
    const char *origin = envelope_attr(env, "origin");
    info->local = origin && strcmp(origin, "local") == 0;
    info->sender = env->sender ? env->sender : "";
    info->full_name = envelope_attr(env, "full_name");
    info->uid = envelope_attr(env, "uid");
}

int header_field_name(const char *line, size_t len, size_t *name_len)
{
    size_t i = 0;
    while (i < len && line[i] > ' ' && line[i] < 127 && line[i] != ':')
        i++;
    size_t n = i;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (n == 0 || i >= len || line[i] != ':')
        return 0;
    *name_len = n;
    return 1;
}

int header_is_address(const char *name, size_t name_len)
{
    static const char *const names[] = {
        "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Errors-To",
        "Return-Receipt-To", "Disposition-Notification-To",
        "Resent-From", "Resent-Sender", "Resent-Reply-To", "Resent-To",
        "Resent-Cc", "Resent-Bcc",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == name_len && strncasecmp(names[i], name, name_len) == 0)
            return 1;
    return 0;
}

/* Collects where qualification suffixes go in a header value. */
struct header_edit {
    const struct rewrite_config *cfg;
    const char *text;
    size_t copied;              /* text before this is in out */
    struct strbuf *out;
};

/* addrlist_scan callback: copy up to the address end, then its suffix. */
static void edit_address(const char *text, size_t start, size_t end,
                         const char *address, void *ctx)
{
    struct header_edit *edit = ctx;
    (void)start;
    strbuf_append(edit->out, text + edit->copied, end - edit->copied);
    edit->copied = end;
    qualify_suffix(edit->cfg, address, edit->out);
}

/* Rewrite the addresses of one address header into out. */
void rewrite_address_header(const struct rewrite_config *cfg,
                            const char *header, size_t value_offset,
                            struct strbuf *out)
{
    strbuf_append(out, header, value_offset);
    struct header_edit edit = {cfg, header + value_offset, 0, out};
    addrlist_scan(edit.text, edit_address, &edit);
    strbuf_puts(out, edit.text + edit.copied);
}
