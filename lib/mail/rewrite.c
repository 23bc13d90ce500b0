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
#include "mailbox.h"
#include "map.h"
#include "resolve.h"
#include "rewrite.h"
#include "rewrite_mime.h"
#include "strbuf.h"
#include "xalloc.h"

/* The tables of a parameter, or NULL when it is empty; a table that
 * cannot be opened is a configuration error (exit as temporary). */
static struct maplist *open_maps(const char *param)
{
    /* these parameters default to "" (virtual_alias_maps to $virtual_maps):
     * unset, nothing to expand (smtpd pays for each conf_str) */
    if (!conf_is_set(param) && (strcmp(param, "virtual_alias_maps") != 0 || !conf_is_set("virtual_maps")))
        return NULL;
    const char *value = conf_str(param);
    if (!*value)
        return NULL;
    struct strbuf err = STRBUF_INIT;
    struct maplist *maps = maplist_open(value, &err);
    if (!maps)
        msg_fatal_temp("%s: %s", param, strbuf_str(&err));
    strbuf_free(&err);
    return maps;
}

/* The REWRITE_* flags of an address class list parameter. */
static unsigned address_classes(const char *param)
{
    static const struct name_flag names[] = {
        {"envelope_sender", REWRITE_ENV_FROM}, {"envelope_recipient", REWRITE_ENV_RCPT},
        {"header_sender", REWRITE_HDR_FROM}, {"header_recipient", REWRITE_HDR_RCPT},
    };
    return name_mask(param, conf_str(param), names, sizeof names / sizeof names[0],
                     NAME_MASK_ANY_CASE);
}

void rewrite_config_load(struct rewrite_config *cfg, unsigned receive_override)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->receive_override = receive_override;
    int mappings = !(receive_override & RECEIVE_NO_ADDRESS_MAPPINGS);
    int checks = !(receive_override & RECEIVE_NO_HEADER_BODY_CHECKS);
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
    cfg->canonical_maps = cfg->sender_canonical_maps = cfg->recipient_canonical_maps = NULL;
    cfg->resolver = NULL;
    cfg->recipient_delimiter = NULL;
    /* both default to "" */
    cfg->remote_header_rewrite_domain = xstrdup(conf_is_set("remote_header_rewrite_domain")
                                                ? conf_str("remote_header_rewrite_domain") : "");
    cfg->masquerade_domains = (struct strlist)STRLIST_INIT;
    cfg->masquerade_exceptions = (struct strlist)STRLIST_INIT;
    /* receive_override_options leaves tables closed: no_address_mappings
     * the address mappings, no_header_body_checks the content checks */
    if (mappings) {
        if (conf_is_set("masquerade_domains"))
            conf_list("masquerade_domains", &cfg->masquerade_domains);
        cfg->virtual_alias_maps = open_maps("virtual_alias_maps");
        cfg->canonical_maps = open_maps("canonical_maps");
        cfg->sender_canonical_maps = open_maps("sender_canonical_maps");
        cfg->recipient_canonical_maps = open_maps("recipient_canonical_maps");
    }
    if (checks) {
        cfg->header_checks = open_maps("header_checks");
        cfg->body_checks = open_maps("body_checks");
        /* both default to $header_checks: the same tables then */
        cfg->mime_header_checks = conf_is_set("mime_header_checks") ? open_maps("mime_header_checks")
                                                                      : cfg->header_checks;
        cfg->nested_header_checks = conf_is_set("nested_header_checks")
                                    ? open_maps("nested_header_checks") : cfg->header_checks;
    }
    /* read by smtpd for its milters' changes whatever
     * receive_override_options says (no_header_body_checks is about the
     * client's text) */
    cfg->milter_header_checks = open_maps("milter_header_checks");
    /* the MIME errors Postfix's cleanup reports (cleanup_message.c's
     * options): nesting whenever any other report or header check is on */
    int strict_8bitmime = conf_bool("strict_8bitmime");
    if (strict_8bitmime || conf_bool("strict_7bit_headers"))
        cfg->mime_report |= MIME_ERR_8BIT_IN_HEADER;
    if (strict_8bitmime || conf_bool("strict_8bitmime_body"))
        cfg->mime_report |= MIME_ERR_8BIT_IN_7BIT_BODY;
    if (conf_bool("strict_mime_encoding_domain"))
        cfg->mime_report |= MIME_ERR_ENCODING_DOMAIN;
    if (cfg->mime_report || cfg->header_checks || cfg->mime_header_checks
        || cfg->nested_header_checks)
        cfg->mime_report |= MIME_ERR_NESTING;
    /* body_checks need the structure too: part headers and the headers of
     * attached messages are not body lines (Postfix's mime_state) */
    cfg->mime = (cfg->mime_header_checks || cfg->nested_header_checks || cfg->body_checks
                 || (cfg->mime_report & ~(unsigned)MIME_ERR_NESTING))
                && !conf_bool("disable_mime_input_processing");
    if (!cfg->mime)
        cfg->mime_report = 0;
    if (cfg->mime) {
        long long bound = conf_int("mime_boundary_length_limit");
        cfg->mime_boundary_length_limit = bound < 1 ? 2048 : (size_t)bound;
        cfg->mime_nesting_limit = (long)conf_int("mime_nesting_limit");
        if (!cfg->body_checks) {
            long long line_limit = conf_int("line_length_limit");
            cfg->line_length_limit = line_limit < 1 ? 2048 : (size_t)line_limit;
        }
    }
    long long tokens = conf_int("header_address_token_limit");
    cfg->header_token_limit = tokens < 1 ? 0 : (size_t)tokens;
    struct strlist classes = STRLIST_INIT;
    conf_list("internal_mail_filter_classes", &classes);
    for (size_t i = 0; i < classes.count; i++) {
        unsigned c = rewrite_internal_class(classes.item[i]);
        if (c == REWRITE_INTERNAL_BOUNCE || c == REWRITE_INTERNAL_NOTIFY)
            cfg->internal_filter_classes |= c;
        else
            msg_warn("unknown internal_mail_filter_classes value \"%s\" ignored", classes.item[i]);
    }
    strlist_free(&classes);
    if (mappings) {
        cfg->sender_bcc_maps = open_maps("sender_bcc_maps");
        cfg->recipient_bcc_maps = open_maps("recipient_bcc_maps");
    }
    cfg->always_bcc = xstrdup(mappings && conf_is_set("always_bcc") ? conf_str("always_bcc") : "");
    if (cfg->body_checks) {
        cfg->body_checks_size_limit = (size_t)conf_size("body_checks_size_limit");
        long long line_limit = conf_int("line_length_limit");
        cfg->line_length_limit = line_limit < 1 ? 2048 : (size_t)line_limit;
    }
    if (!cfg->virtual_alias_maps && !cfg->canonical_maps && !cfg->sender_canonical_maps
        && !cfg->recipient_canonical_maps && !cfg->masquerade_domains.count
        && !cfg->sender_bcc_maps && !cfg->recipient_bcc_maps)
        return;                 /* smtpd's path without tables pays nothing more */
    conf_list("masquerade_exceptions", &cfg->masquerade_exceptions);
    cfg->masquerade_classes = address_classes("masquerade_classes");
    cfg->canonical_classes = address_classes("canonical_classes");
    cfg->sender_canonical_classes = address_classes("sender_canonical_classes");
    cfg->recipient_canonical_classes = address_classes("recipient_canonical_classes");
    cfg->recipient_delimiter = xstrdup(conf_str("recipient_delimiter"));
    struct strlist propagate = STRLIST_INIT;
    conf_list("propagate_unmatched_extensions", &propagate);
    for (size_t i = 0; i < propagate.count; i++) {
        if (strcasecmp(propagate.item[i], "virtual") == 0)
            cfg->propagate_virtual = 1;
        else if (strcasecmp(propagate.item[i], "canonical") == 0)
            cfg->propagate_canonical = 1;
    }
    strlist_free(&propagate);
    cfg->virtual_alias_recursion_limit = (long)conf_int("virtual_alias_recursion_limit");
    cfg->virtual_alias_expansion_limit = (size_t)conf_int("virtual_alias_expansion_limit");
    cfg->virtual_alias_address_length_limit = (size_t)conf_int("virtual_alias_address_length_limit");
    struct strbuf err = STRBUF_INIT;
    cfg->resolver = resolver_open(&err);
    if (!cfg->resolver)
        msg_fatal_temp("rewrite: %s", strbuf_str(&err));
    strbuf_free(&err);
}

void rewrite_config_free(struct rewrite_config *cfg)
{
    free(cfg->myhostname);
    free(cfg->myorigin);
    free(cfg->mydomain);
    strlist_free(&cfg->drop_headers);
    free(cfg->recipient_delimiter);
    free(cfg->remote_header_rewrite_domain);
    free(cfg->always_bcc);
    strlist_free(&cfg->masquerade_domains);
    strlist_free(&cfg->masquerade_exceptions);
    struct maplist *lists[] = {cfg->virtual_alias_maps, cfg->canonical_maps,
                               cfg->sender_canonical_maps, cfg->recipient_canonical_maps,
                               cfg->header_checks, cfg->body_checks, cfg->milter_header_checks,
                               cfg->sender_bcc_maps, cfg->recipient_bcc_maps};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (lists[i])
            maplist_close(lists[i]);
    if (cfg->mime_header_checks && cfg->mime_header_checks != cfg->header_checks)
        maplist_close(cfg->mime_header_checks);
    if (cfg->nested_header_checks && cfg->nested_header_checks != cfg->header_checks)
        maplist_close(cfg->nested_header_checks);
    if (cfg->resolver)
        resolver_close(cfg->resolver);
}

/* A list of tables again when a file of it changed; the old one stays
 * when the new one cannot be opened (tried again every
 * MAP_REOPEN_RETRY_SECONDS, said once per change).  1 when it was
 * replaced. */
static int refresh_maps(struct maplist **slot, const char *param)
{
    int changed = *slot ? maplist_changed(*slot) : 0;
    if (!changed)
        return 0;
    struct strbuf err = STRBUF_INIT;
    struct maplist *fresh = maplist_open(conf_str(param), &err);
    if (!fresh && changed == MAP_CHANGED)
        msg_warn("%s has changed but cannot be opened (%s): still using what was read before",
                 param, strbuf_str(&err));
    strbuf_free(&err);
    if (!fresh)
        return 0;
    msg_info("a table of %s has changed: opened again", param);
    maplist_close(*slot);
    *slot = fresh;
    return 1;
}

int rewrite_config_refresh(struct rewrite_config *cfg)
{
    /* mime_ and nested_header_checks may be header_checks' own list */
    struct maplist *header = cfg->header_checks;
    int mime_shared = cfg->mime_header_checks == header, nested_shared = cfg->nested_header_checks == header;
    int changed = refresh_maps(&cfg->virtual_alias_maps, "virtual_alias_maps");
    changed |= refresh_maps(&cfg->canonical_maps, "canonical_maps");
    changed |= refresh_maps(&cfg->sender_canonical_maps, "sender_canonical_maps");
    changed |= refresh_maps(&cfg->recipient_canonical_maps, "recipient_canonical_maps");
    changed |= refresh_maps(&cfg->header_checks, "header_checks");
    changed |= refresh_maps(&cfg->body_checks, "body_checks");
    changed |= refresh_maps(&cfg->milter_header_checks, "milter_header_checks");
    changed |= refresh_maps(&cfg->sender_bcc_maps, "sender_bcc_maps");
    changed |= refresh_maps(&cfg->recipient_bcc_maps, "recipient_bcc_maps");
    /* written only when header_checks was opened again: a zygote's child
     * that writes a page it shares with the zygote pays for a copy */
    if (mime_shared && cfg->mime_header_checks != cfg->header_checks)
        cfg->mime_header_checks = cfg->header_checks;
    else if (!mime_shared)
        changed |= refresh_maps(&cfg->mime_header_checks, "mime_header_checks");
    if (nested_shared && cfg->nested_header_checks != cfg->header_checks)
        cfg->nested_header_checks = cfg->header_checks;
    else if (!nested_shared)
        changed |= refresh_maps(&cfg->nested_header_checks, "nested_header_checks");
    if (cfg->resolver && resolver_changed(cfg->resolver)) {
        struct strbuf err = STRBUF_INIT;
        struct resolver *fresh = resolver_open(&err);
        if (fresh) {
            msg_info("a table of the address classes has changed: opened again");
            resolver_close(cfg->resolver);
            cfg->resolver = fresh;
            changed = 1;
        }
        strbuf_free(&err);
    }
    return changed;
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
    int status = 0;
    rewrite_access_actions(cfg, env);
    if (env->sender && *env->sender) {
        status |= rewrite_address_class(cfg, REWRITE_CONTEXT_LOCAL, REWRITE_ENV_FROM,
                                        env->sender, &buf);
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
        status |= rewrite_address_class(cfg, REWRITE_CONTEXT_LOCAL, REWRITE_ENV_RCPT, rec + 1, &buf);
        free(rec);
        env->records.item[i] = strbuf_detach(&buf);
    }
    strbuf_free(&buf);
    /* postern's own mail (bounces and notices, alias and .forward copies:
     * internal=) gets no BCC copies, as Postfix's cleanup gives them none
     * (its internal mail lacks CLEANUP_FLAG_BCC_OK) */
    if (status == 0 && !envelope_attr(env, "internal"))
        status = rewrite_bcc(cfg, env);
    if (status)
        strbuf_set(reason, REWRITE_EXPANSION_ERROR);
    else if (expand)
        status = rewrite_virtual_aliases(cfg, env, &given, reason);
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
    const char *context = envelope_attr(env, "rewrite_context");
    /* remote wins: sendmail -G marks a local submission so */
    info->context = context && strcmp(context, "remote") == 0 ? REWRITE_CONTEXT_REMOTE
        : info->local || (context && strcmp(context, "local") == 0) ? REWRITE_CONTEXT_LOCAL
        : REWRITE_CONTEXT_NONE;
    info->sender = env->sender ? env->sender : "";
    info->full_name = envelope_attr(env, "full_name");
    info->uid = envelope_attr(env, "uid");
    info->log_client = envelope_attr(env, "log_client");
    const char *internal = envelope_attr(env, "internal");
    info->internal = internal ? rewrite_internal_class(internal) : 0;
    if (internal && !info->internal)
        info->internal = REWRITE_INTERNAL_FORWARD;  /* unknown: never checked either */
}

unsigned rewrite_internal_class(const char *name)
{
    return strcasecmp(name, "bounce") == 0 ? REWRITE_INTERNAL_BOUNCE
           : strcasecmp(name, "notify") == 0 ? REWRITE_INTERNAL_NOTIFY
           : strcasecmp(name, "forward") == 0 ? REWRITE_INTERNAL_FORWARD : 0;
}

int rewrite_content_checked(const struct rewrite_config *cfg, unsigned internal_class)
{
    return !internal_class || (cfg->internal_filter_classes & internal_class);
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

unsigned header_address_class(const char *name, size_t name_len)
{
    static const struct { const char *name; unsigned address_class; } names[] = {
        {"Apparently-To", REWRITE_HDR_RCPT}, {"Bcc", REWRITE_HDR_RCPT}, {"Cc", REWRITE_HDR_RCPT},
        {"Disposition-Notification-To", REWRITE_HDR_FROM}, {"Errors-To", REWRITE_HDR_FROM},
        {"From", REWRITE_HDR_FROM}, {"Mail-Followup-To", REWRITE_HDR_FROM},
        {"Reply-To", REWRITE_HDR_FROM}, {"Resent-Bcc", REWRITE_HDR_RCPT},
        {"Resent-Cc", REWRITE_HDR_RCPT}, {"Resent-From", REWRITE_HDR_FROM},
        {"Resent-Reply-To", REWRITE_HDR_RCPT}, {"Resent-Sender", REWRITE_HDR_FROM},
        {"Resent-To", REWRITE_HDR_RCPT}, {"Return-Path", REWRITE_HDR_FROM},
        {"Return-Receipt-To", REWRITE_HDR_FROM}, {"Sender", REWRITE_HDR_FROM},
        {"To", REWRITE_HDR_RCPT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == name_len && strncasecmp(names[i].name, name, name_len) == 0)
            return names[i].address_class;
    return 0;
}

/* One address of a header value: where it stands, and what it becomes. */
struct header_address {
    size_t start, end;          /* the addr-spec in the value */
    char *rewritten;            /* NULL when rewriting left it alone */
};

/* Collects the addresses of a header value, rewritten. */
struct header_edit {
    const struct rewrite_config *cfg;
    enum rewrite_context context;
    unsigned address_class;
    struct header_address *found;
    size_t count;
    struct strbuf address;
    int status;
};

/* addrlist_scan callback: rewrite one address and note it. */
static void edit_address(const char *text, size_t start, size_t end,
                         const char *address, void *ctx)
{
    (void)text;
    struct header_edit *edit = ctx;
    strbuf_reset(&edit->address);
    edit->status |= rewrite_address_class(edit->cfg, edit->context, edit->address_class,
                                          address, &edit->address);
    edit->found = xreallocarray(edit->found, edit->count + 1, sizeof *edit->found);
    struct header_address *a = &edit->found[edit->count++];
    a->start = start;
    a->end = end;
    a->rewritten = strcmp(strbuf_str(&edit->address), address) != 0
                   ? xstrdup(strbuf_str(&edit->address)) : NULL;
}

/* The first comma at or after i that separates list elements (outside
 * comments, quoted strings and angle brackets), or the end of text. */
static size_t element_end(const char *text, size_t i)
{
    int depth = 0, quoted = 0;
    for (; text[i]; i++) {
        char c = text[i];
        if (c == '\\' && (quoted || depth) && text[i + 1])
            i++;
        else if (quoted)
            quoted = c != '"';
        else if (c == '"' && !depth)
            quoted = 1;
        else if (c == '(')
            depth++;
        else if (c == ')' && depth)
            depth--;
        else if (c == ',' && !depth)
            break;
    }
    return i;
}

/* Append text[from..to) without the white space (and folding) at its ends. */
static void put_trimmed(struct strbuf *out, const char *text, size_t from, size_t to)
{
    while (from < to && strchr(" \t\r\n", text[from]))
        from++;
    while (to > from && strchr(" \t\r\n", text[to - 1]))
        to--;
    strbuf_append(out, text + from, to - from);
}

/* An element without angle brackets, quotes or a group whose comments
 * stand before or inside its address: as Postfix's parser, the comments
 * go after the address ("(note) y" -> "y (note)").  Others unchanged. */
static void move_comments(struct strbuf *element)
{
    const char *e = strbuf_str(element);
    if (!strchr(e, '(') || strpbrk(e, "<\":"))
        return;
    struct strbuf bare = STRBUF_INIT, comments = STRBUF_INIT;
    for (size_t i = 0; e[i];) {
        if (e[i] != '(') {
            if (!(strchr(" \t\r\n", e[i]) && (!bare.len || strchr(" \t", bare.s[bare.len - 1]))))
                strbuf_putc(&bare, strchr("\t\r\n", e[i]) ? ' ' : e[i]);
            i++;
            continue;
        }
        size_t start = i;
        int depth = 0;
        for (; e[i]; i++) {
            if (e[i] == '\\' && e[i + 1])
                i++;
            else if (e[i] == '(')
                depth++;
            else if (e[i] == ')' && --depth == 0) {
                i++;
                break;
            }
        }
        strbuf_putc(&comments, ' ');
        strbuf_append(&comments, e + start, i - start);
    }
    struct strbuf moved = STRBUF_INIT;
    put_trimmed(&moved, strbuf_str(&bare), 0, bare.len);
    if (moved.len && !strchr(strbuf_str(&moved), ' ')) {
        strbuf_append(&moved, comments.s, comments.len);
        strbuf_set(element, strbuf_str(&moved));
    }
    strbuf_free(&moved);
    strbuf_free(&bare);
    strbuf_free(&comments);
}

/* Write "Name: " and the list elements, each but the last followed by a
 * comma, as Postfix's cleanup folds a rewritten header: elements share a
 * line while it stays under 70 characters, a new line starts with a TAB. */
static void fold_elements(struct strbuf *out, const char *header, size_t value_offset,
                          const struct strlist *elements)
{
    strbuf_append(out, header, value_offset);
    strbuf_putc(out, ' ');
    size_t line_start = out->len - value_offset - 1;
    for (size_t i = 0; i < elements->count; i++) {
        const char *e = elements->item[i];
        size_t len = strlen(e) + (i + 1 < elements->count);
        if (i > 0) {
            if (out->len - line_start + 1 + len < 70) {
                strbuf_putc(out, ' ');
            } else {
                strbuf_puts(out, "\n\t");
                line_start = out->len;
            }
        }
        strbuf_puts(out, e);
        if (i + 1 < elements->count)
            strbuf_putc(out, ',');
    }
}

/* The end of the RFC 822 token at text[i] (not white space), as Postfix's
 * tok822 scanner reads it: an atom, a quoted string, a comment, a domain
 * literal, or one special character ("<", "@", ",", ...); its kind in
 * *type: 'a' atom, 'q' quoted string, 'd' domain literal, 'c' comment,
 * else the special itself. */
static size_t token_at(const char *text, size_t i, char *type)
{
    static const char specials[] = "|%!()<>@,;:\\\".[]";
    char c = text[i];
    if (c == '(') {
        *type = 'c';
        int depth = 0;
        for (; text[i]; i++) {
            if (text[i] == '\\' && text[i + 1])
                i++;
            else if (text[i] == '(')
                depth++;
            else if (text[i] == ')' && --depth == 0)
                return i + 1;
        }
        return i;
    }
    if (c == '"' || c == '[') {
        *type = c == '"' ? 'q' : 'd';
        char close = c == '"' ? '"' : ']';
        for (i++; text[i] && text[i] != close; i++)
            if (text[i] == '\\' && text[i + 1])
                i++;
        return text[i] ? i + 1 : i;
    }
    if (c != '\\' && strchr(specials, c)) {
        *type = c;
        return i + 1;
    }
    *type = 'a';
    for (; text[i] && !strchr(" \t\r\n", text[i]) && !(text[i] != '\\' && strchr(specials, text[i])); i++)
        if (text[i] == '\\' && text[i + 1])
            i++;
    return i;
}

/* Where the value's first `limit` RFC 822 tokens end (token_at). */
static size_t token_limit_end(const char *text, size_t limit)
{
    size_t i = 0, count = 0;
    char type;
    while (text[i] && count < limit) {
        if (strchr(" \t\r\n", text[i])) {
            i++;
            continue;
        }
        count++;
        i = token_at(text, i, &type);
    }
    return i;
}

/* One RFC 822 token of a cut list element (cut_tail). */
struct cut_token {
    char type;                  /* 'a' atom, 'q' quoted string, 'd' domain
                                 * literal, 'c' comment, else the special */
    size_t start, len;          /* in the text (quotes and brackets included) */
};

/* The tokens of text[from..) into *tokens (counted in *count). */
static void cut_tokens(const char *text, size_t from, struct cut_token **tokens, size_t *count)
{
    size_t i = from;
    while (text[i]) {
        if (strchr(" \t\r\n", text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        char type;
        i = token_at(text, i, &type);
        *tokens = xreallocarray(*tokens, *count + 1, sizeof **tokens);
        (*tokens)[(*count)++] = (struct cut_token){type, start, i - start};
    }
}

#define CUT_WORD(t) ((t).type == 'a' || (t).type == 'q' || (t).type == 'd')

/* Append token t's value as Postfix's parser keeps it: an atom or a
 * quoted string without its quotes and backslashes, a domain literal
 * with its brackets, a special as itself. */
static void cut_token_value(struct strbuf *out, const char *text, const struct cut_token *t)
{
    size_t from = t->start, to = t->start + t->len;
    if (t->type == 'q') {
        from++;
        if (to > from && text[to - 1] == '"')
            to--;
    }
    if (t->type != 'a' && t->type != 'q') {
        strbuf_append(out, text + from, to - from);
        return;
    }
    for (size_t i = from; i < to; i++) {
        if (text[i] == '\\' && i + 1 < to)
            i++;
        strbuf_putc(out, text[i]);
    }
}

/* header_address_token_limit cut the value inside its last list element:
 * that element is read as Postfix's parser reads it (found against
 * Postfix 3.7: t/data/postfix-3.7-token-limit-t.txt).  Its tokens are
 * taken from the right; two words side by side (atoms, quoted strings,
 * domain literals, with only comments between) start another address,
 * and a '<' without its '>' is one more character of an address.  Each
 * address is its tokens run together (a space before '<'), its local
 * part quoted as needed, without a final '.' (as trivial-rewrite drops
 * it); comments follow the address on their right.  Writes the value so
 * read into out and returns 1 (2 when a '.' was dropped: an address
 * changed), or 0 when the element is whole or not of that kind. */
static int cut_tail(const char *text, struct strbuf *out)
{
    size_t from = 0, end;
    while (text[end = element_end(text, from)])
        from = end + 1;
    struct cut_token *tok = NULL;
    size_t count = 0;
    cut_tokens(text, from, &tok, &count);
    int open = 0, adjacent = 0, dot = 0, result = 0;
    ssize_t last_word = -1;
    for (size_t i = 0; i < count; i++) {
        if (strchr(">:;", tok[i].type) && !CUT_WORD(tok[i]) && tok[i].type != 'c')
            goto out;           /* a whole route address or a group */
        if (tok[i].type == '<')
            open = 1;
        if (CUT_WORD(tok[i])) {
            if (last_word >= 0) {
                int between = 0;
                for (size_t j = (size_t)last_word + 1; j < i; j++)
                    between |= tok[j].type != 'c';
                adjacent |= !between;
            }
            last_word = (ssize_t)i;
        }
    }
    for (size_t i = count; i-- > 0;) {
        if (tok[i].type == 'c')
            continue;
        dot = tok[i].type == '.';
        break;
    }
    if (!open && !adjacent && !dot)
        goto out;
    /* the address each token belongs to, numbered from the right */
    size_t *owner = xreallocarray(NULL, count ? count : 1, sizeof *owner);
    size_t addresses = 0;
    int do_word = 1, started = 0;
    for (size_t i = count; i-- > 0;) {
        if (tok[i].type == 'c')
            continue;
        if (CUT_WORD(tok[i])) {
            if (!do_word)
                addresses++;
            do_word = 0;
        } else {
            do_word = 1;
        }
        started = 1;
        owner[i] = addresses;
    }
    if (started)
        addresses++;
    /* a comment goes after the address of the next token on its right
     * (the last address when none is) */
    size_t right = 0;
    for (size_t i = count; i-- > 0;) {
        if (tok[i].type == 'c')
            owner[i] = right;
        else
            right = owner[i];
    }
    strbuf_append(out, text, from);
    if (from)
        strbuf_putc(out, ' ');
    struct strbuf internal = STRBUF_INIT;
    for (size_t a = addresses; a-- > 0;) {
        strbuf_reset(&internal);
        ssize_t first = -1, last = -1;
        for (size_t i = 0; i < count; i++)
            if (tok[i].type != 'c' && owner[i] == a) {
                if (first < 0)
                    first = (ssize_t)i;
                last = (ssize_t)i;
            }
        /* trivial-rewrite: a final '.' goes, not after '.' or '@' */
        if (last > first && tok[last].type == '.' && tok[last - 1].type != '.'
            && tok[last - 1].type != '@') {
            last--;
            while (last > first && tok[last].type == 'c')
                last--;
            result = 2;
        }
        for (ssize_t i = first; i >= 0 && i <= last; i++) {
            if (tok[i].type == 'c')
                continue;
            if (internal.len && tok[i].type == '<')
                strbuf_putc(&internal, ' ');
            cut_token_value(&internal, text, &tok[i]);
        }
        if (a + 1 < addresses)
            strbuf_puts(out, ", ");
        const char *addr = strbuf_str(&internal);
        const char *at = strrchr(addr, '@');
        mail_quote_local(out, addr, at ? (size_t)(at - addr) : internal.len);
        if (at)
            strbuf_puts(out, at);
        for (size_t i = 0; i < count; i++)
            if (tok[i].type == 'c' && owner[i] == a) {
                strbuf_putc(out, ' ');
                strbuf_append(out, text + tok[i].start, tok[i].len);
            }
    }
    strbuf_free(&internal);
    free(owner);
    if (!result)
        result = 1;
out:
    free(tok);
    return result;
}

int rewrite_address_header(const struct rewrite_config *cfg, enum rewrite_context context,
                           unsigned address_class, const char *header, size_t value_offset,
                           struct strbuf *out)
{
    const char *text = header + value_offset;
    /* header_address_token_limit: as Postfix's cleanup, only the first
     * tokens are parsed; when an address among them changes, the header
     * is written from them alone and the rest is gone */
    char *cut = NULL;
    if (cfg->header_token_limit) {
        size_t end = token_limit_end(text, cfg->header_token_limit);
        if (text[end]) {
            cut = xmemdup0(text, end);
            text = cut;
        }
    }
    struct strbuf tail = STRBUF_INIT;
    int tail_read = cut ? cut_tail(text, &tail) : 0;
    if (tail_read)
        text = strbuf_str(&tail);
    struct header_edit edit = {cfg, context, address_class, NULL, 0, STRBUF_INIT, 0};
    addrlist_scan(text, edit_address, &edit);
    size_t changed = tail_read == 2;
    for (size_t i = 0; i < edit.count; i++)
        changed += edit.found[i].rewritten != NULL;
    if (!changed) {
        strbuf_puts(out, header);
    } else {
        /* as Postfix's cleanup: a header whose addresses changed is written
         * again from its list elements */
        struct strlist elements = STRLIST_INIT;
        size_t from = 0;
        for (size_t i = 0; i < edit.count; i++) {
            const struct header_address *a = &edit.found[i];
            if (a->start < from)
                continue;               /* inside an element already written */
            size_t to = element_end(text, a->end);
            /* the addresses of this element (a group holds several) */
            struct strbuf element = STRBUF_INIT;
            size_t copied = from;
            for (size_t j = i; j < edit.count && edit.found[j].start < to; j++) {
                const struct header_address *b = &edit.found[j];
                if (b->end > to)        /* the scanner read the text otherwise */
                    to = element_end(text, b->end);
                if (b->rewritten && b->start >= copied) {
                    strbuf_append(&element, text + copied, b->start - copied);
                    strbuf_puts(&element, b->rewritten);
                    copied = b->end;
                }
                i = j;
            }
            strbuf_append(&element, text + copied, to - copied);
            struct strbuf trimmed = STRBUF_INIT;
            put_trimmed(&trimmed, element.s ? element.s : "", 0, element.len);
            move_comments(&trimmed);
            strlist_add(&elements, strbuf_str(&trimmed));
            strbuf_free(&trimmed);
            strbuf_free(&element);
            from = text[to] ? to + 1 : to;
        }
        /* what follows the last address (the end of a group, ...), or
         * nothing after a last comma */
        size_t rest = from;
        while (text[rest] == ' ' || text[rest] == '\t' || text[rest] == '\n')
            rest++;
        if (text[rest]) {
            struct strbuf trimmed = STRBUF_INIT;
            put_trimmed(&trimmed, text, rest, strlen(text));
            strlist_add(&elements, strbuf_str(&trimmed));
            strbuf_free(&trimmed);
        } else if (from > 0 && text[from - 1] == ',') {
            strlist_add(&elements, "");
        }
        fold_elements(out, header, value_offset, &elements);
        strlist_free(&elements);
    }
    for (size_t i = 0; i < edit.count; i++)
        free(edit.found[i].rewritten);
    free(edit.found);
    strbuf_free(&edit.address);
    strbuf_free(&tail);
    free(cut);
    return edit.status;
}
