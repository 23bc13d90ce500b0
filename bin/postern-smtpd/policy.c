/* policy.c - the restriction engine (Postfix's smtpd_check): each stage
 * has an ordered list of named checks (smtpd_client_restrictions, ...),
 * each check answers DUNNO, OK or a reply; OK ends its list, a reply ends
 * the evaluation.  With smtpd_delay_reject (the default) the client, HELO
 * and sender lists are evaluated at RCPT, then smtpd_relay_restrictions
 * and smtpd_recipient_restrictions, then the implicit
 * reject_unlisted_recipient (smtpd_reject_unlisted_recipient).
 *
 * New checks are one function and one line in `checks`.  Tables and
 * address lists are opened on first use, so a connection that never needs
 * a table never opens it.  A table that cannot answer gives 451 4.3.0,
 * never a 5xx.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addrmatch.h"
#include "config.h"
#include "dns.h"
#include "domainlist.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"
#include "restrictions.h"
#include "xalloc.h"

/* ---- replies ---- */

const char *policy_subject_class(enum subject subj)
{
    switch (subj) {
    case SUBJ_CLIENT: return "Client host";
    case SUBJ_HELO: return "Helo command";
    case SUBJ_SENDER: return "Sender address";
    case SUBJ_DATA: return "Data command";
    case SUBJ_EOD: return "End-of-data";
    case SUBJ_REV_CLIENT: return "Unverified Client host";
    case SUBJ_CCERT: return "Client certificate";
    case SUBJ_SASL: return "SASL login name";
    default: return "Recipient address";
    }
}

void policy_subject_what(struct check_ctx *ctx, enum subject subj, struct strbuf *out)
{
    switch (subj) {
    case SUBJ_CLIENT: strbuf_puts(out, ctx->s->client.namaddr); break;
    case SUBJ_HELO: strbuf_puts(out, strbuf_str(&ctx->s->helo)); break;
    case SUBJ_SENDER: strbuf_puts(out, ctx->sender ? ctx->sender : ""); break;
    case SUBJ_DATA: strbuf_puts(out, "DATA"); break;
    case SUBJ_EOD: strbuf_puts(out, "END-OF-MESSAGE"); break;
    case SUBJ_REV_CLIENT: strbuf_puts(out, ctx->s->client.reverse_name); break;
    case SUBJ_CCERT: strbuf_puts(out, tls_client_cn(ctx->s)); break;
    case SUBJ_SASL:
        /* Postfix shows a login name's unprintable bytes as '_' */
        for (const char *p = ctx->s->sasl_username; *p; p++)
            strbuf_putc(out, isprint((unsigned char)*p) ? *p : '_');
        break;
    default: strbuf_puts(out, ctx->recipient ? ctx->recipient : ""); break;
    }
}

/* Set the reply "CODE X.Y.Z <what>: Subject rejected: text", with the
 * subject's own <what> unless one is given. */
static enum verdict reject_what(struct check_ctx *ctx, enum subject subj, int code,
                                const char *dsn, const char *given, const char *text)
{
    struct strbuf what = STRBUF_INIT, printable = STRBUF_INIT;
    if (given)
        strbuf_puts(&what, given);
    else
        policy_subject_what(ctx, subj, &what);
    strbuf_reset(ctx->reply);
    strbuf_printf(ctx->reply, "%d %s <%s>: %s rejected: %s", code, dsn,
                  log_printable(&printable, strbuf_str(&what), 500), policy_subject_class(subj), text);
    strbuf_free(&what);
    strbuf_free(&printable);
    return V_REPLY;
}

enum verdict reject_with(struct check_ctx *ctx, enum subject subj, int code,
                         const char *dsn, const char *text)
{
    return reject_what(ctx, subj, code, dsn, NULL, text);
}

/* A table failed: 451 4.3.0, never a hard refusal. */
enum verdict temp_failure(struct check_ctx *ctx, enum subject subj)
{
    return reject_with(ctx, subj, 451, "4.3.0", "Temporary lookup failure");
}

/* The configuration is broken: 451 4.3.5 (as Postfix). */
enum verdict config_error(struct check_ctx *ctx)
{
    strbuf_set(ctx->reply, "451 4.3.5 Server configuration error");
    return V_REPLY;
}

/* ---- defer_if_permit, defer_if_reject, *_tempfail_action ---- */

static struct strbuf defer_permit = STRBUF_INIT;   /* the first of this request */
static struct strbuf defer_reject = STRBUF_INIT;

void policy_defer_reset(void)
{
    strbuf_reset(&defer_permit);
    strbuf_reset(&defer_reject);
}

int policy_deferred(struct strbuf *reply_text)
{
    if (!defer_permit.len)
        return 0;
    strbuf_set(reply_text, defer_permit.s);
    strbuf_reset(&defer_permit);
    return atoi(reply_text->s);
}

/* Keep a deferral in `keep` when it holds none yet; the list goes on. */
static enum verdict defer_keep(struct strbuf *keep, struct check_ctx *ctx, enum subject subj,
                               int code, const char *dsn, const char *what, const char *text)
{
    if (!keep->len) {
        struct strbuf *reply = ctx->reply;
        ctx->reply = keep;
        reject_what(ctx, subj, code, dsn, what, text);
        ctx->reply = reply;
    }
    return V_DUNNO;
}

enum verdict policy_defer_if_permit(struct check_ctx *ctx, enum subject subj, int code,
                                    const char *dsn, const char *text)
{
    return defer_keep(&defer_permit, ctx, subj, code, dsn, NULL, text);
}

enum verdict policy_defer_if_reject(struct check_ctx *ctx, enum subject subj, int code,
                                    const char *dsn, const char *text)
{
    return defer_keep(&defer_reject, ctx, subj, code, dsn, NULL, text);
}

enum verdict policy_defer_if_reject_what(struct check_ctx *ctx, enum subject subj, int code,
                                         const char *dsn, const char *what, const char *text)
{
    return defer_keep(&defer_reject, ctx, subj, code, dsn, what, text);
}

/* "defer" (1) or "defer_if_permit" (0) in a *_tempfail_action parameter. */
static int tempfail_defers_now(const char *param)
{
    const char *action = conf_str(param);
    if (strcasecmp(action, "defer") == 0)
        return 1;
    if (strcasecmp(action, "defer_if_permit") != 0)
        msg_warn("unknown %s value \"%s\": using defer_if_permit", param, action);
    return 0;
}

enum verdict policy_tempfail(struct check_ctx *ctx, const char *param, enum subject subj,
                             int code, const char *dsn, const char *text)
{
    if (tempfail_defers_now(param))
        return reject_with(ctx, subj, code, dsn, text);
    return policy_defer_if_permit(ctx, subj, code, dsn, text);
}

enum verdict policy_tempfail_reply(struct check_ctx *ctx, const char *param, const char *reply)
{
    if (tempfail_defers_now(param)) {
        strbuf_set(ctx->reply, reply);
        return V_REPLY;
    }
    if (!defer_permit.len)
        strbuf_set(&defer_permit, reply);
    return V_DUNNO;
}

void policy_log_event(struct check_ctx *ctx, const char *what, const char *text)
{
    struct strbuf line = STRBUF_INIT, printable = STRBUF_INIT;
    const char *stage = ctx->stage ? ctx->stage : ctx->recipient ? "RCPT" : "MAIL";
    strbuf_printf(&line, "NOQUEUE: %s: %s from %s: %s;", what, stage, ctx->s->client.namaddr, text);
    if (ctx->sender) {
        strbuf_reset(&printable);
        strbuf_printf(&line, " from=<%s>", log_printable(&printable, ctx->sender, 0));
    }
    if (ctx->recipient) {
        strbuf_reset(&printable);
        strbuf_printf(&line, " to=<%s>", log_printable(&printable, ctx->recipient, 0));
    }
    strbuf_printf(&line, " proto=%s", ctx->s->protocol);
    if (ctx->s->helo.len) {
        strbuf_reset(&printable);
        strbuf_printf(&line, " helo=<%s>", log_printable(&printable, strbuf_str(&ctx->s->helo), 0));
    }
    msg_info("%s", line.s);
    strbuf_free(&line);
    strbuf_free(&printable);
}

/* ---- tables and lists, opened once ---- */

struct maplist *policy_table(struct policy *p, const char *spec)
{
    for (size_t i = 0; i < p->table_count; i++)
        if (strcmp(p->tables[i].spec, spec) == 0)
            return p->tables[i].maps;
    struct strbuf err = STRBUF_INIT;
    struct maplist *maps = maplist_open(spec, &err);
    if (!maps)
        msg_warn("%s is unavailable: %s", spec, strbuf_str(&err));
    strbuf_free(&err);
    if (p->table_count < sizeof p->tables / sizeof p->tables[0]) {
        p->tables[p->table_count].spec = xstrdup(spec);
        p->tables[p->table_count].maps = maps;
        p->table_count++;
    }
    return maps;
}

int policy_mynetworks(struct session *s)
{
    struct policy *p = s->policy;
    if (!p->mynetworks_loaded) {
        struct strbuf err = STRBUF_INIT;
        p->mynetworks_loaded = 1;
        p->mynetworks = addrmatch_open("mynetworks", conf_str("mynetworks"), &err);
        if (!p->mynetworks)
            msg_warn("mynetworks: %s", strbuf_str(&err));
        strbuf_free(&err);
    }
    if (!p->mynetworks)
        return -1;
    return addrmatch_match(p->mynetworks, s->client.name, s->client.address);
}

/* The address list of a parameter, built once per value (in a zygote,
 * before the fork: policy_prepare); NULL, logged, when it cannot be. */
static struct addrmatch *client_list(struct policy *p, const char *param_name, const char *value)
{
    size_t i = 0;
    while (i < p->client_list_count && strcmp(p->client_lists[i].param, param_name) != 0)
        i++;
    if (i < p->client_list_count && strcmp(p->client_lists[i].value, value) == 0)
        return p->client_lists[i].list;
    struct strbuf err = STRBUF_INIT;
    struct addrmatch *list = addrmatch_open(param_name, value, &err);
    if (!list)
        msg_warn("%s", strbuf_str(&err));
    strbuf_free(&err);
    if (!list)
        return NULL;            /* tried again, and logged, at each use */
    if (i == p->client_list_count) {
        if (i == sizeof p->client_lists / sizeof p->client_lists[0])
            return list;        /* not kept: never reached with today's callers */
        p->client_list_count++;
        p->client_lists[i].param = param_name;
    } else {
        addrmatch_free(p->client_lists[i].list);
        free(p->client_lists[i].value);
    }
    p->client_lists[i].value = xstrdup(value);
    p->client_lists[i].list = list;
    return list;
}

int policy_list_match(struct session *s, const char *param_name, const char *name, const char *address)
{
    const char *value = conf_str(param_name);
    if (!*value)
        return 0;
    struct addrmatch *list = client_list(s->policy, param_name, value);
    if (!list)
        return -1;
    int r = addrmatch_match(list, name, address);
    return r < 0 ? -1 : r == 1;
}

int policy_client_in(struct session *s, const char *param_name)
{
    const char *value = conf_str(param_name);
    if (!*value)
        return 0;
    struct addrmatch *list = client_list(s->policy, param_name, value);
    return list && addrmatch_match(list, s->client.name, s->client.address) == 1;
}

/* ---- the checks ---- */

static enum verdict check_permit(struct check_ctx *ctx, const char *table)
{
    (void)ctx;
    (void)table;
    return V_OK;
}

static enum verdict check_reject(struct check_ctx *ctx, const char *table)
{
    (void)table;
    int code = (int)conf_int("reject_code");
    return reject_with(ctx, ctx->subject, code, smtp_reply_class(code) == REPLY_TRANSIENT ? "4.7.1" : "5.7.1", "Access denied");
}

static enum verdict check_defer(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return reject_with(ctx, ctx->subject, (int)conf_int("defer_code"), "4.3.2", "Try again later");
}

static enum verdict check_permit_mynetworks(struct check_ctx *ctx, const char *table)
{
    (void)table;
    int r = policy_mynetworks(ctx->s);
    if (r < 0)
        return temp_failure(ctx, SUBJ_CLIENT);
    return r ? V_OK : V_DUNNO;
}

static enum verdict check_never(struct check_ctx *ctx, const char *table)
{
    (void)ctx;
    (void)table;
    return V_DUNNO;             /* permit_tls_clientcerts: no TLS yet */
}

static enum verdict check_permit_sasl_authenticated(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return ctx->s->sasl_username[0] ? V_OK : V_DUNNO;
}

/* The owners smtpd_sender_login_maps gives the sender: 1 found (in
 * owners), 0 not, -1 when the table failed. */
static int sender_owners(struct check_ctx *ctx, struct strbuf *owners)
{
    struct maplist *maps = policy_table(ctx->s->policy, conf_str("smtpd_sender_login_maps"));
    if (!maps)
        return -1;
    int r = map_search_address(maps, ctx->sender, conf_str("recipient_delimiter"), 0, owners, NULL);
    return r == MAP_FOUND ? 1 : r == MAP_NOTFOUND ? 0 : -1;
}

/* The reject_*sender_login_mismatch family (Postfix's smtpd_check): an
 * authenticated client may use only the senders the map gives its login
 * (with `unknown_ok`, also those the map does not list); an
 * unauthenticated one none that the map lists. */
static enum verdict login_mismatch(struct check_ctx *ctx, int check_authenticated,
                                   int check_unauthenticated, int unknown_ok)
{
    if (!conf_bool("smtpd_sasl_auth_enable")) {
        /* Postfix 3.7 skips the check, with a warning for each restriction
         * it stands for */
        static int said;
        if (!said++) {
            if (check_authenticated)
                msg_warn("restriction `reject_authenticated_sender_login_mismatch' ignored: no SASL support");
            if (check_unauthenticated)
                msg_warn("restriction `reject_unauthenticated_sender_login_mismatch' ignored: "
                         "no SASL support");
        }
        return V_DUNNO;
    }
    if (!ctx->sender || !*ctx->sender || !*conf_str("smtpd_sender_login_maps"))
        return V_DUNNO;
    const char *login = ctx->s->sasl_username;
    if (*login ? !check_authenticated : !check_unauthenticated)
        return V_DUNNO;
    struct strbuf owners = STRBUF_INIT;
    int found = sender_owners(ctx, &owners);
    enum verdict v = V_DUNNO;
    if (found < 0) {
        v = temp_failure(ctx, SUBJ_SENDER);
    } else if (!*login) {
        if (found)
            v = reject_with(ctx, SUBJ_SENDER, 553, "5.7.1", "not logged in");
    } else if (found || !unknown_ok) {
        int owner = 0;
        char *list = found ? owners.s : NULL, *save = NULL;
        for (char *name = list ? strtok_r(list, ", \t", &save) : NULL; name && !owner;
             name = strtok_r(NULL, ", \t", &save))
            owner = strcasecmp(name, login) == 0;
        if (!owner) {
            struct strbuf text = STRBUF_INIT;
            strbuf_printf(&text, "not owned by user %s", login);
            v = reject_with(ctx, SUBJ_SENDER, 553, "5.7.1", text.s);
            strbuf_free(&text);
        }
    }
    strbuf_free(&owners);
    return v;
}

static enum verdict check_sender_login_mismatch(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return login_mismatch(ctx, 1, 1, 0);
}

static enum verdict check_authenticated_login_mismatch(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return login_mismatch(ctx, 1, 0, 0);
}

static enum verdict check_unauthenticated_login_mismatch(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return login_mismatch(ctx, 0, 1, 0);
}

static enum verdict check_known_login_mismatch(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return login_mismatch(ctx, 1, 1, 1);
}

int policy_resolve_recipient(const char *recipient, struct destination *d)
{
    /* an address without a domain is in $myorigin, as Postfix's resolver
     * completes it (RCPT TO:<user> is relayed or not as user@$myorigin) */
    struct strbuf full = STRBUF_INIT;
    if (!strchr(recipient, '@') && *recipient)
        strbuf_printf(&full, "%s@%s", recipient, conf_str("myorigin"));
    int r = destination_resolve(full.len ? full.s : recipient, d);
    strbuf_free(&full);
    return r;
}

int policy_authorized_destination(const char *recipient)
{
    struct destination d = DESTINATION_INIT;
    if (policy_resolve_recipient(recipient, &d) != 0) {
        destination_free(&d);
        return -1;
    }
    int ok = 0;
    switch (d.dest_class) {
    case DEST_LOCAL:
    case DEST_VIRTUAL_ALIAS:
    case DEST_VIRTUAL_MAILBOX:
        ok = 1;
        break;
    case DEST_RELAY:
        ok = !d.routed || conf_bool("allow_untrusted_routing");
        break;
    case DEST_DEFAULT:
        ok = 0;
        break;
    }
    destination_free(&d);
    return ok;
}

/* reject_unauth_destination and defer_unauth_destination. */
static enum verdict unauth_destination(struct check_ctx *ctx, int code, const char *dsn)
{
    if (!ctx->recipient)
        return V_DUNNO;
    int ok = policy_authorized_destination(ctx->recipient);
    if (ok < 0)
        return temp_failure(ctx, SUBJ_RECIPIENT);
    if (ok)
        return V_DUNNO;
    struct strbuf printable = STRBUF_INIT;
    strbuf_reset(ctx->reply);
    strbuf_printf(ctx->reply, "%d %s <%s>: Relay access denied", code, dsn,
                  log_printable(&printable, ctx->recipient, 500));
    strbuf_free(&printable);
    return V_REPLY;
}

static enum verdict check_reject_unauth_destination(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unauth_destination(ctx, (int)conf_int("relay_domains_reject_code"), "5.7.1");
}

static enum verdict check_defer_unauth_destination(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unauth_destination(ctx, 454, "4.7.1");
}

static enum verdict check_permit_auth_destination(struct check_ctx *ctx, const char *table)
{
    (void)table;
    if (!ctx->recipient)
        return V_DUNNO;
    int ok = policy_authorized_destination(ctx->recipient);
    if (ok < 0)
        return temp_failure(ctx, SUBJ_RECIPIENT);
    return ok ? V_OK : V_DUNNO;
}

static enum verdict check_reject_unlisted_recipient(struct check_ctx *ctx, const char *table)
{
    (void)table;
    if (!ctx->recipient)
        return V_DUNNO;
    return policy_unlisted_recipient(ctx->s, ctx->recipient, ctx->reply) ? V_REPLY : V_DUNNO;
}


static enum verdict check_reject_unlisted_sender(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unlisted_sender(ctx->s, ctx->sender, ctx->reply) ? V_REPLY : V_DUNNO;
}

/* reject_non_fqdn_*: the domain needs a dot. */
static int hostname_valid(const char *name);

static enum verdict non_fqdn(struct check_ctx *ctx, enum subject subj, const char *address)
{
    if (!address || !*address)
        return V_DUNNO;
    if (subj == SUBJ_HELO) {
        /* Postfix: an address literal passes; a host name needs a dot and
         * must be valid (a naked IP address is no host name); one trailing
         * dot is dropped first */
        char name[256];
        if (*address == '[')
            return V_DUNNO;
        snprintf(name, sizeof name, "%s", address);
        size_t len = strlen(name);
        if (len > 1 && name[len - 1] == '.')
            name[len - 1] = 0;
        if (strchr(name, '.') && hostname_valid(name))
            return V_DUNNO;
        return reject_with(ctx, subj, (int)conf_int("non_fqdn_reject_code"), "5.5.2",
                           "need fully-qualified hostname");
    }
    /* an address: its domain, one trailing dot (not two) dropped, must be
     * a valid host name with a dot, as Postfix judges it */
    const char *at = strrchr(address, '@');
    char domain[256];
    snprintf(domain, sizeof domain, "%s", at ? at + 1 : "");
    size_t len = strlen(domain);
    if (len > 1 && domain[len - 1] == '.' && domain[len - 2] != '.')
        domain[len - 1] = 0;
    if (strchr(domain, '.') && hostname_valid(domain))
        return V_DUNNO;
    return reject_with(ctx, subj, (int)conf_int("non_fqdn_reject_code"), "5.5.2",
                       "need fully-qualified address");
}

static enum verdict check_non_fqdn_recipient(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return non_fqdn(ctx, SUBJ_RECIPIENT, ctx->recipient);
}

static enum verdict check_non_fqdn_sender(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return non_fqdn(ctx, SUBJ_SENDER, ctx->sender);
}

/* Whether a HELO name is one Postfix calls valid: a host name (labels of
 * letters, digits, '-', '_', at most 63 bytes each, 255 in all, no empty
 * label), a bare IP address, or an address literal [1.2.3.4] /
 * [IPv6:...].  NULL when it is, else the words of the refusal ("invalid
 * ip address" for a literal, as Postfix says). */
static const char *helo_invalid(const char *helo)
{
    size_t len = strlen(helo);
    char plain[64];
    if (!len || len > 255)
        return "Invalid name";
    if (helo[0] == '[' && helo[len - 1] == ']') {
        char inner[300];
        snprintf(inner, sizeof inner, "%.*s", (int)(len - 2), helo + 1);
        const char *addr = strncasecmp(inner, "IPv6:", 5) == 0 ? inner + 5 : inner;
        return addr_normalize(addr, plain, sizeof plain) == 0 ? NULL : "invalid ip address";
    }
    if (addr_normalize(helo, plain, sizeof plain) == 0)
        return NULL;            /* Postfix's valid_hostaddr */
    return hostname_valid(helo) ? NULL : "Invalid name";
}

/* Postfix's valid_hostname: labels of letters, digits, '-', '_', none
 * starting or ending with '-', and a name of digits and dots only is no
 * host name. */
static int hostname_valid(const char *name)
{
    size_t len = strlen(name);
    if (!len || len > 255 || !dns_labels_valid(name) || strspn(name, "0123456789.") == len)
        return 0;
    for (const char *label = name; *label; ) {
        size_t n = strcspn(label, ".");
        if (label[0] == '-' || label[n - 1] == '-')
            return 0;
        label += n + (label[n] == '.');
    }
    return 1;
}

static enum verdict check_invalid_helo(struct check_ctx *ctx, const char *table)
{
    (void)table;
    const char *helo = strbuf_str(&ctx->s->helo);
    const char *why = *helo ? helo_invalid(helo) : NULL;
    if (!why)
        return V_DUNNO;
    return reject_with(ctx, SUBJ_HELO, (int)conf_int("invalid_hostname_reject_code"), "5.5.2", why);
}

/* permit_naked_ip_address: the HELO name is a bare IP address. */
static enum verdict check_naked_ip(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char plain[64];
    const char *helo = strbuf_str(&ctx->s->helo);
    return *helo != '[' && addr_normalize(helo, plain, sizeof plain) == 0 ? V_OK : V_DUNNO;
}

/* reject_unauth_pipelining: the client broke RFC 2920. */
static enum verdict check_unauth_pipelining(struct check_ctx *ctx, const char *table)
{
    (void)table;
    if (!ctx->s->improper_pipelining)
        return V_DUNNO;
    return reject_with(ctx, ctx->subject, 503, "5.5.0", "Improper use of SMTP command pipelining");
}

/* reject_multi_recipient_bounce: a null sender with more than one
 * recipient (at RCPT: one accepted already). */
static enum verdict check_multi_recipient_bounce(struct check_ctx *ctx, const char *table)
{
    (void)table;
    size_t count = ctx->s->tx.recipient_count;
    int at_rcpt = ctx->stage && strcmp(ctx->stage, "RCPT") == 0;
    if (!ctx->sender || *ctx->sender || count <= (at_rcpt ? 0u : 1u))
        return V_DUNNO;
    return reject_with(ctx, ctx->subject, (int)conf_int("multi_recipient_bounce_reject_code"),
                       "5.5.3", "Multi-recipient bounce");
}

static enum verdict check_non_fqdn_helo(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return non_fqdn(ctx, SUBJ_HELO, strbuf_str(&ctx->s->helo));
}

/* permit_tls_all_clientcerts: any client certificate that verified
 * against smtpd_tls_CAfile/CApath. */
static enum verdict check_tls_all_clientcerts(struct check_ctx *ctx, const char *table)
{
    (void)table;
    const char *cert_fp, *pkey_fp;
    return tls_client_cert(ctx->s, &cert_fp, &pkey_fp) == 2 ? V_OK : V_DUNNO;
}

/* permit_tls_clientcerts: a client certificate whose fingerprint, or its
 * public key's, is a key of relay_clientcerts (verified or not: the
 * fingerprint is the proof, as in Postfix). */
static enum verdict check_tls_clientcerts(struct check_ctx *ctx, const char *table)
{
    (void)table;
    const char *prints[2];
    const char *spec = conf_str("relay_clientcerts");
    if (tls_client_cert(ctx->s, &prints[0], &prints[1]) == 0 || !*spec)
        return V_DUNNO;
    struct maplist *maps = policy_table(ctx->s->policy, spec);
    if (!maps)
        return temp_failure(ctx, SUBJ_CLIENT);
    struct strbuf value = STRBUF_INIT;
    enum verdict v = V_DUNNO;
    for (int i = 0; i < 2 && v == V_DUNNO && prints[i]; i++) {
        int rc = maplist_lookup(maps, prints[i], &value);
        if (rc == MAP_FOUND)
            v = V_OK;
        else if (rc == MAP_RETRY)
            v = temp_failure(ctx, SUBJ_CLIENT);
    }
    strbuf_free(&value);
    return v;
}

/* defer_if_permit, defer_if_reject as restrictions (Postfix's texts). */
static enum verdict check_defer_if_permit(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return policy_defer_if_permit(ctx, ctx->subject, (int)conf_int("defer_code"), "4.7.0",
                                  "defer_if_permit requested");
}

static enum verdict check_defer_if_reject(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return policy_defer_if_reject(ctx, ctx->subject, (int)conf_int("defer_code"), "4.7.0",
                                  "defer_if_reject requested");
}

/* permit_dnswl_client: as Postfix, it never overrides
 * reject_unauth_destination: for a recipient we do not take mail for, it
 * gives no permit. */
static enum verdict check_permit_dnswl_client(struct check_ctx *ctx, const char *zone)
{
    if (ctx->recipient && ctx->subject == SUBJ_RECIPIENT && policy_authorized_destination(ctx->recipient) != 1)
        return V_DUNNO;
    return check_dnswl_client(ctx, zone);
}

static enum verdict check_permit_rhswl_client(struct check_ctx *ctx, const char *zone)
{
    if (ctx->recipient && ctx->subject == SUBJ_RECIPIENT && policy_authorized_destination(ctx->recipient) != 1)
        return V_DUNNO;
    return check_rhswl_client(ctx, zone);
}

/* reject_plaintext_session: no TLS, no mail (plaintext_reject_code; the
 * reply names no subject, as Postfix's). */
static enum verdict check_plaintext_session(struct check_ctx *ctx, const char *table)
{
    (void)table;
    if (tls_session_active(ctx->s, NULL))
        return V_DUNNO;
    int code = (int)conf_int("plaintext_reject_code");
    strbuf_reset(ctx->reply);
    strbuf_printf(ctx->reply, "%d %d.7.1 Session encryption is required", code, code / 100);
    return V_REPLY;
}

/* permit_inet_interfaces: the connection comes from one of this
 * machine's addresses.  The connection's own address is judged, not the
 * one XCLIENT gives (so does Postfix 3.7). */
static enum verdict check_permit_inet_interfaces(struct check_ctx *ctx, const char *table)
{
    (void)table;
    const char *address = ctx->s->client.peer_address;
    int r = *address ? destination_own_address(address) : 0;
    if (r < 0)
        return temp_failure(ctx, SUBJ_CLIENT);
    return r ? V_OK : V_DUNNO;
}

/* sleep SECONDS: wait, then go on with the list. */
static enum verdict check_sleep(struct check_ctx *ctx, const char *seconds)
{
    if (!seconds || !*seconds || strspn(seconds, "0123456789") != strlen(seconds) || strlen(seconds) > 9) {
        msg_warn("restriction sleep must be followed by number");
        return config_error(ctx);
    }
    struct timespec wait = {atol(seconds), 0};
    while (nanosleep(&wait, &wait) != 0 && errno == EINTR)
        ;
    return V_DUNNO;
}

/* check_relay_domains (Postfix's old relay control, still accepted by
 * 3.7 with a warning): a client whose name is in relay_domains, or a
 * destination we take mail for, passes; any other recipient is refused
 * as reject_unauth_destination refuses it. */
static enum verdict check_relay_domains(struct check_ctx *ctx, const char *table)
{
    (void)table;
    static int warned;
    static struct domainlist *relay_domains;
    if (!warned++)
        msg_warn("support for restriction \"check_relay_domains\" will be removed from Postfix; "
                 "use \"reject_unauth_destination\" instead");
    if (!ctx->recipient)
        return V_DUNNO;
    if (!relay_domains) {
        struct strbuf err = STRBUF_INIT;
        relay_domains = domainlist_from_param("relay_domains", &err);
        if (!relay_domains)
            msg_warn("relay_domains: %s", strbuf_str(&err));
        strbuf_free(&err);
        if (!relay_domains)
            return temp_failure(ctx, SUBJ_RECIPIENT);
    }
    int client = domainlist_match(relay_domains, ctx->s->client.name);
    if (client < 0)
        return temp_failure(ctx, SUBJ_CLIENT);
    if (client)
        return V_OK;
    enum verdict v = unauth_destination(ctx, (int)conf_int("relay_domains_reject_code"), "5.7.1");
    return v == V_DUNNO ? V_OK : v;
}

#define REVERSE_ACCESS(fn, type) \
    static enum verdict fn(struct check_ctx *ctx, const char *table) \
    { return strcasecmp(ctx->s->client.reverse_name, "unknown") == 0 ? V_DUNNO \
             : check_server_access(ctx, SUBJ_REV_CLIENT, type, table); }
REVERSE_ACCESS(check_reverse_client_mx_access, DNS_T_MX)
REVERSE_ACCESS(check_reverse_client_ns_access, DNS_T_NS)
REVERSE_ACCESS(check_reverse_client_a_access, DNS_T_A)

#define SERVER_ACCESS(fn, subj, type) \
    static enum verdict fn(struct check_ctx *ctx, const char *table) \
    { return check_server_access(ctx, subj, type, table); }
SERVER_ACCESS(check_client_mx_access, SUBJ_CLIENT, DNS_T_MX)
SERVER_ACCESS(check_client_ns_access, SUBJ_CLIENT, DNS_T_NS)
SERVER_ACCESS(check_client_a_access, SUBJ_CLIENT, DNS_T_A)
SERVER_ACCESS(check_helo_mx_access, SUBJ_HELO, DNS_T_MX)
SERVER_ACCESS(check_helo_ns_access, SUBJ_HELO, DNS_T_NS)
SERVER_ACCESS(check_helo_a_access, SUBJ_HELO, DNS_T_A)
SERVER_ACCESS(check_sender_mx_access, SUBJ_SENDER, DNS_T_MX)
SERVER_ACCESS(check_sender_ns_access, SUBJ_SENDER, DNS_T_NS)
SERVER_ACCESS(check_sender_a_access, SUBJ_SENDER, DNS_T_A)
SERVER_ACCESS(check_recipient_mx_access, SUBJ_RECIPIENT, DNS_T_MX)
SERVER_ACCESS(check_recipient_ns_access, SUBJ_RECIPIENT, DNS_T_NS)
SERVER_ACCESS(check_recipient_a_access, SUBJ_RECIPIENT, DNS_T_A)

/* The function of each implemented restriction; the names are in
 * lib/conf/restrictions.c, the one table `postern check` reads too. */
static check_fn *const check_fns[RESTRICT_COUNT] = {
    [RESTRICT_CHECK_CLIENT_ACCESS] = check_client_access,
    [RESTRICT_CHECK_HELO_ACCESS] = check_helo_access,
    [RESTRICT_CHECK_RECIPIENT_ACCESS] = check_recipient_access,
    [RESTRICT_CHECK_SENDER_ACCESS] = check_sender_access,
    [RESTRICT_DEFER] = check_defer,
    [RESTRICT_DEFER_UNAUTH_DESTINATION] = check_defer_unauth_destination,
    [RESTRICT_DUNNO] = check_never,
    [RESTRICT_PERMIT] = check_permit,
    [RESTRICT_PERMIT_AUTH_DESTINATION] = check_permit_auth_destination,
    [RESTRICT_PERMIT_MYNETWORKS] = check_permit_mynetworks,
    [RESTRICT_PERMIT_NAKED_IP_ADDRESS] = check_naked_ip,
    [RESTRICT_PERMIT_SASL_AUTHENTICATED] = check_permit_sasl_authenticated,
    [RESTRICT_PERMIT_TLS_ALL_CLIENTCERTS] = check_tls_all_clientcerts,
    [RESTRICT_PERMIT_TLS_CLIENTCERTS] = check_tls_clientcerts,
    [RESTRICT_REJECT] = check_reject,
    [RESTRICT_REJECT_INVALID_HELO_HOSTNAME] = check_invalid_helo,
    [RESTRICT_REJECT_NON_FQDN_HELO_HOSTNAME] = check_non_fqdn_helo,
    [RESTRICT_REJECT_NON_FQDN_RECIPIENT] = check_non_fqdn_recipient,
    [RESTRICT_REJECT_NON_FQDN_SENDER] = check_non_fqdn_sender,
    [RESTRICT_REJECT_UNAUTH_DESTINATION] = check_reject_unauth_destination,
    [RESTRICT_REJECT_UNAUTH_PIPELINING] = check_unauth_pipelining,
    [RESTRICT_REJECT_MULTI_RECIPIENT_BOUNCE] = check_multi_recipient_bounce,
    [RESTRICT_REJECT_RBL_CLIENT] = check_rbl_client,
    [RESTRICT_REJECT_RHSBL_CLIENT] = check_rhsbl_client,
    [RESTRICT_REJECT_RHSBL_HELO] = check_rhsbl_helo,
    [RESTRICT_REJECT_RHSBL_RECIPIENT] = check_rhsbl_recipient,
    [RESTRICT_REJECT_RHSBL_REVERSE_CLIENT] = check_rhsbl_reverse_client,
    [RESTRICT_REJECT_RHSBL_SENDER] = check_rhsbl_sender,
    [RESTRICT_REJECT_UNKNOWN_CLIENT_HOSTNAME] = check_unknown_client_hostname,
    [RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME] = check_unknown_helo_hostname,
    [RESTRICT_REJECT_UNKNOWN_RECIPIENT_DOMAIN] = check_unknown_recipient_domain,
    [RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN] = check_unknown_sender_domain,
    [RESTRICT_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME] = check_unknown_reverse_client_hostname,
    [RESTRICT_REJECT_UNLISTED_RECIPIENT] = check_reject_unlisted_recipient,
    [RESTRICT_REJECT_UNLISTED_SENDER] = check_reject_unlisted_sender,
    [RESTRICT_REJECT_UNVERIFIED_RECIPIENT] = check_unverified_recipient,
    [RESTRICT_REJECT_UNVERIFIED_SENDER] = check_unverified_sender,
    [RESTRICT_WARN_IF_REJECT] = check_never,     /* handled in run_list */
    [RESTRICT_REJECT_SENDER_LOGIN_MISMATCH] = check_sender_login_mismatch,
    [RESTRICT_REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH] = check_authenticated_login_mismatch,
    [RESTRICT_REJECT_UNAUTHENTICATED_SENDER_LOGIN_MISMATCH] = check_unauthenticated_login_mismatch,
    [RESTRICT_REJECT_KNOWN_SENDER_LOGIN_MISMATCH] = check_known_login_mismatch,
    [RESTRICT_CHECK_POLICY_SERVICE] = check_policy_service,
    [RESTRICT_DEFER_IF_PERMIT] = check_defer_if_permit,
    [RESTRICT_DEFER_IF_REJECT] = check_defer_if_reject,
    [RESTRICT_PERMIT_DNSWL_CLIENT] = check_permit_dnswl_client,
    [RESTRICT_PERMIT_RHSWL_CLIENT] = check_permit_rhswl_client,
    [RESTRICT_CHECK_CLIENT_MX_ACCESS] = check_client_mx_access,
    [RESTRICT_CHECK_CLIENT_NS_ACCESS] = check_client_ns_access,
    [RESTRICT_CHECK_CLIENT_A_ACCESS] = check_client_a_access,
    [RESTRICT_CHECK_HELO_MX_ACCESS] = check_helo_mx_access,
    [RESTRICT_CHECK_HELO_NS_ACCESS] = check_helo_ns_access,
    [RESTRICT_CHECK_HELO_A_ACCESS] = check_helo_a_access,
    [RESTRICT_CHECK_SENDER_MX_ACCESS] = check_sender_mx_access,
    [RESTRICT_CHECK_SENDER_NS_ACCESS] = check_sender_ns_access,
    [RESTRICT_CHECK_SENDER_A_ACCESS] = check_sender_a_access,
    [RESTRICT_CHECK_RECIPIENT_MX_ACCESS] = check_recipient_mx_access,
    [RESTRICT_CHECK_RECIPIENT_NS_ACCESS] = check_recipient_ns_access,
    [RESTRICT_CHECK_RECIPIENT_A_ACCESS] = check_recipient_a_access,
    [RESTRICT_CHECK_CCERT_ACCESS] = check_ccert_access,
    [RESTRICT_CHECK_SASL_ACCESS] = check_sasl_access,
    [RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_ACCESS] = check_reverse_client_access,
    [RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_MX_ACCESS] = check_reverse_client_mx_access,
    [RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_NS_ACCESS] = check_reverse_client_ns_access,
    [RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_A_ACCESS] = check_reverse_client_a_access,
    [RESTRICT_PERMIT_MX_BACKUP] = check_permit_mx_backup,
    [RESTRICT_REJECT_PLAINTEXT_SESSION] = check_plaintext_session,
    [RESTRICT_PERMIT_INET_INTERFACES] = check_permit_inet_interfaces,
    [RESTRICT_SLEEP] = check_sleep,
    [RESTRICT_CHECK_RELAY_DOMAINS] = check_relay_domains,
};

/* The function of a restriction id (fatal for one without: a merge that
 * adds a name to lib/conf/restrictions.c must add its function here). */
static check_fn *check_function(const struct restriction_name *def)
{
    if (!check_fns[def->id])
        msg_fatal("restriction %s has no function in bin/postern-smtpd/policy.c", def->name);
    return check_fns[def->id];
}

/* The warning for a restriction name that cannot be evaluated. */
static void unknown_restriction(const char *name)
{
    if (restriction_not_implemented(name))
        msg_warn("restriction \"%s\" is not implemented yet: mail is deferred (451 4.3.5)", name);
    else
        msg_warn("unknown smtpd restriction: \"%s\"", name);
}

static enum verdict run_list(struct check_ctx *ctx, struct restriction_list *list, enum subject subj);

/* The restriction class of this name (smtpd_restriction_classes), or NULL. */
static struct restriction_list *find_class(struct policy *p, const char *name)
{
    if (!p->classes) {
        struct strlist names = STRLIST_INIT;
        conf_list("smtpd_restriction_classes", &names);
        p->classes = xcalloc(names.count + 1, sizeof *p->classes);
        for (size_t i = 0; i < names.count; i++) {
            if (!conf_raw(names.item[i])) {
                /* Postfix refuses to start; here the class answers 451 */
                msg_warn("restriction class \"%s\" in smtpd_restriction_classes has no "
                         "parameter of that name", names.item[i]);
                continue;
            }
            p->classes[p->class_count++].param = xstrdup(names.item[i]);
        }
        strlist_free(&names);
    }
    for (size_t i = 0; i < p->class_count; i++)
        if (strcasecmp(p->classes[i].param, name) == 0)
            return &p->classes[i];
    return NULL;
}

/* Evaluate a restriction class where a restriction or an access table's
 * result names it: its OK is the enclosing list's OK, as in Postfix. */
static enum verdict run_class(struct check_ctx *ctx, struct restriction_list *class)
{
    if (ctx->depth >= 8) {
        msg_warn("restriction class %s: nested too deeply", class->param);
        return config_error(ctx);
    }
    enum subject keep = ctx->subject;
    ctx->depth++;
    enum verdict v = run_list(ctx, class, keep);
    ctx->depth--;
    ctx->subject = keep;
    return v;
}

/* A check named in an access table's result (no table arguments), or a
 * restriction class. */
enum verdict run_named_check(struct check_ctx *ctx, const char *name)
{
    const struct restriction_name *def = restriction_find(name);
    struct restriction_list *class = def ? NULL : find_class(ctx->s->policy, name);
    if (class)
        return run_class(ctx, class);
    if (!def || def->needs_table) {
        unknown_restriction(name);
        return config_error(ctx);
    }
    return check_function(def)(ctx, NULL);
}

/* Parse a restriction list parameter once. */
static void load_list(struct restriction_list *list)
{
    if (list->loaded)
        return;
    list->loaded = 1;
    struct strlist words = STRLIST_INIT;
    conf_list(list->param, &words);
    for (size_t i = 0; i < words.count; i++) {
        struct restriction r = {restriction_find(words.item[i]), xstrdup(words.item[i]), NULL};
        if (r.def && r.def->needs_table) {
            if (i + 1 < words.count)
                r.table = xstrdup(words.item[++i]);
        } else if (!r.def && strchr(words.item[i], ':')) {
            /* a bare type:table is check_client_access etc. by stage */
            r.table = xstrdup(words.item[i]);
        }
        list->items = xreallocarray(list->items, list->count + 1, sizeof *list->items);
        list->items[list->count++] = r;
    }
    strlist_free(&words);
}

/* The lists one command evaluates, in order, for policy_dns_prefetch:
 * when the first check that asks the DNS is reached, the lookups of it
 * and of every later check of these lists go out together. */
static struct {
    struct restriction_list *lists[7];
    size_t count;
    int asked;
} plan;

/* A command's evaluation starts: the lists it runs (indexes into
 * p->lists); the DNS answers of the last one are forgotten. */
static void plan_start(struct policy *p, const int *which, size_t n)
{
    policy_dns_forget();
    plan.count = 0;
    plan.asked = 0;
    for (size_t i = 0; i < n && i < 7; i++) {
        load_list(&p->lists[which[i]]);
        plan.lists[plan.count++] = &p->lists[which[i]];
    }
}

/* Item i of list is about to be evaluated: ask the DNS lookups ahead
 * when it is the first that needs any. */
static void plan_prefetch(struct check_ctx *ctx, const struct restriction_list *list, size_t i)
{
    if (plan.asked || !policy_dns_needs_lookups(&list->items[i]))
        return;
    for (size_t l = 0; l < plan.count; l++) {
        if (plan.lists[l] == list) {
            plan.asked = 1;
            policy_dns_prefetch(ctx, plan.lists + l, plan.count - l, i);
            return;
        }
    }
}

/* Evaluate one list. */
static enum verdict run_list(struct check_ctx *ctx, struct restriction_list *list, enum subject subj)
{
    load_list(list);
    ctx->subject = subj;
    int warn_only = 0;
    for (size_t i = 0; i < list->count; i++) {
        struct restriction *r = &list->items[i];
        struct restriction_list *class = NULL;
        enum verdict v;
        if (r->def && r->def->id == RESTRICT_WARN_IF_REJECT) {
            warn_only = 1;
            continue;
        }
        if (r->def && r->def->needs_table && !r->table && r->def->id != RESTRICT_SLEEP) {
            msg_warn("restriction %s in %s needs a table", r->name, list->param);
            v = config_error(ctx);
        } else if (r->def) {
            plan_prefetch(ctx, list, i);
            v = check_function(r->def)(ctx, r->table);
        } else if (r->table && subj >= SUBJ_DATA) {
            /* Postfix: no check_*_access is implied after DATA */
            msg_warn("%s: specify one of check_client_access, check_helo_access, "
                     "check_sender_access, check_recipient_access before \"%s\"",
                     list->param, r->name);
            v = config_error(ctx);
        } else if (r->table) {
            v = access_lookup(ctx, subj, r->table);
        } else if ((class = find_class(ctx->s->policy, r->name)) != NULL) {
            v = run_class(ctx, class);
        } else {
            unknown_restriction(r->name);
            v = config_error(ctx);
        }
        ctx->subject = subj;
        if (v == V_REPLY && warn_only && !class) {
            /* warn_if_reject: log what would have been refused, go on */
            policy_log_event(ctx, "reject_warning", strbuf_str(ctx->reply));
            strbuf_reset(ctx->reply);
            v = V_DUNNO;
        } else if (v == V_REPLY && !class && ctx->reply->s && ctx->reply->s[0] == '5' && defer_reject.len) {
            /* defer_if_reject: a refusal becomes the deferral */
            strbuf_set(ctx->reply, defer_reject.s);
        }
        warn_only = 0;
        if (v != V_DUNNO)
            return v;
    }
    return V_DUNNO;
}

struct policy *policy_open(struct session *s)
{
    static const char *const params[7] = {
        "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
        "smtpd_relay_restrictions", "smtpd_recipient_restrictions",
        "smtpd_data_restrictions", "smtpd_end_of_data_restrictions",
    };
    struct policy *p = xcalloc(1, sizeof *p);
    for (int i = 0; i < 7; i++)
        p->lists[i].param = params[i];
    (void)s;
    return p;
}

/* 1 when the restriction's argument is an access table. */
static int names_access_table(const struct restriction *r)
{
    if (!r->table)
        return 0;
    if (!r->def)
        return 1;               /* a bare type:table */
    switch (r->def->id) {
    case RESTRICT_CHECK_CLIENT_ACCESS: case RESTRICT_CHECK_HELO_ACCESS:
    case RESTRICT_CHECK_SENDER_ACCESS: case RESTRICT_CHECK_RECIPIENT_ACCESS:
    case RESTRICT_CHECK_CLIENT_MX_ACCESS: case RESTRICT_CHECK_CLIENT_NS_ACCESS:
    case RESTRICT_CHECK_CLIENT_A_ACCESS: case RESTRICT_CHECK_HELO_MX_ACCESS:
    case RESTRICT_CHECK_HELO_NS_ACCESS: case RESTRICT_CHECK_HELO_A_ACCESS:
    case RESTRICT_CHECK_SENDER_MX_ACCESS: case RESTRICT_CHECK_SENDER_NS_ACCESS:
    case RESTRICT_CHECK_SENDER_A_ACCESS: case RESTRICT_CHECK_RECIPIENT_MX_ACCESS:
    case RESTRICT_CHECK_RECIPIENT_NS_ACCESS: case RESTRICT_CHECK_RECIPIENT_A_ACCESS:
    case RESTRICT_CHECK_SASL_ACCESS: case RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_ACCESS:
    case RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_MX_ACCESS:
    case RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_NS_ACCESS:
    case RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_A_ACCESS:
        return 1;
    case RESTRICT_CHECK_CCERT_ACCESS:
        return !strchr(r->table, '{') && !strchr(r->table, ',');   /* no search order */
    default:
        return 0;
    }
}

/* Open a table for every child; one that cannot be opened is left to
 * each child, which says why and answers "try again", as before. */
static void prepare_table(struct policy *p, const char *spec)
{
    if (!*spec || p->table_count == sizeof p->tables / sizeof p->tables[0])
        return;
    for (size_t i = 0; i < p->table_count; i++)
        if (strcmp(p->tables[i].spec, spec) == 0)
            return;
    struct strbuf err = STRBUF_INIT;
    struct maplist *maps = maplist_open(spec, &err);
    strbuf_free(&err);
    if (!maps)
        return;
    p->tables[p->table_count].spec = xstrdup(spec);
    p->tables[p->table_count].maps = maps;
    p->table_count++;
}

/* The parameters whose lists policy_client_in() matches a client with. */
static const char *const client_list_params[] = {
    "smtpd_authorized_xclient_hosts", "smtpd_authorized_xforward_hosts",
    "smtpd_sasl_exceptions_networks", "smtpd_client_event_limit_exceptions",
};

void policy_prepare(struct session *s)
{
    struct policy *p = s->policy;
    for (int i = 0; i < 7; i++) {
        load_list(&p->lists[i]);
        for (size_t j = 0; j < p->lists[i].count; j++)
            if (names_access_table(&p->lists[i].items[j]))
                prepare_table(p, p->lists[i].items[j].table);
    }
    struct strbuf err = STRBUF_INIT;
    if (!p->mynetworks_loaded) {
        p->mynetworks_loaded = 1;
        p->mynetworks = addrmatch_open("mynetworks", conf_str("mynetworks"), &err);
        if (!p->mynetworks)
            msg_warn("mynetworks: %s", strbuf_str(&err));
    }
    strbuf_free(&err);
    /* what RCPT and MAIL look addresses up in (reject_unlisted_*, the
     * login maps), and permit_tls_clientcerts: a pcre table compiled
     * here is compiled once, not at each connection's first RCPT */
    static const char *const table_params[] = {
        "local_recipient_maps", "virtual_alias_maps", "virtual_mailbox_maps",
        "relay_recipient_maps", "smtpd_sender_login_maps", "relay_clientcerts",
    };
    for (size_t i = 0; i < sizeof table_params / sizeof table_params[0]; i++)
        prepare_table(p, conf_str(table_params[i]));
    for (size_t i = 0; i < sizeof client_list_params / sizeof client_list_params[0]; i++) {
        const char *value = conf_str(client_list_params[i]);
        if (*value)
            (void)client_list(p, client_list_params[i], value);
    }
}

int policy_refresh(struct session *s)
{
    struct policy *p = s->policy;
    int changed = 0;
    for (size_t i = 0; i < p->table_count; i++) {
        int table_changed = p->tables[i].maps ? maplist_changed(p->tables[i].maps) : 0;
        if (!table_changed)
            continue;
        struct strbuf err = STRBUF_INIT;
        struct maplist *fresh = maplist_open(p->tables[i].spec, &err);
        if (!fresh) {
            /* what was read keeps answering; tried again later
             * (map_changed), said once per change */
            if (table_changed == MAP_CHANGED)
                msg_warn("table %s has changed but cannot be opened (%s): still using what was "
                         "read before", p->tables[i].spec, strbuf_str(&err));
            strbuf_free(&err);
            continue;
        }
        strbuf_free(&err);
        msg_info("table %s has changed: opened again", p->tables[i].spec);
        changed = 1;
        maplist_close(p->tables[i].maps);
        p->tables[i].maps = fresh;
    }
    if (addrmatch_changed(p->mynetworks)) {
        msg_info("a table of mynetworks has changed: opened again");
        changed = 1;
        addrmatch_free(p->mynetworks);
        p->mynetworks = NULL;
        p->mynetworks_loaded = 0;
        policy_prepare(s);
    }
    for (size_t i = 0; i < p->client_list_count; i++) {
        if (!addrmatch_changed(p->client_lists[i].list))
            continue;
        msg_info("a table of %s has changed: opened again", p->client_lists[i].param);
        changed = 1;
        char *value = p->client_lists[i].value;
        p->client_lists[i].value = xstrdup("");     /* built again below */
        (void)client_list(p, p->client_lists[i].param, value);
        free(value);
    }
    return changed;
}

/* One list at its own stage (smtpd_delay_reject = no): a refusal answers
 * now; a defer_if_permit deferral is kept for RCPT, as Postfix keeps it.
 * The stage starts from the deferral of the stage before (HELO from the
 * client's, MAIL from HELO's, or the client's when there was no HELO), so
 * the first reason stands. */
static int check_stage(struct session *s, int list, enum subject subj, const char *stage,
                       const char *sender, struct strbuf *reply_text)
{
    struct check_ctx ctx = {s, sender, NULL, subj, reply_text, 0, stage};
    struct strbuf *kept = s->policy->kept;
    if (s->local_submission)
        return 0;               /* sendmail -bs: as Postfix's stand-alone mode */
    policy_defer_reset();
    plan_start(s->policy, &list, 1);
    if (list == 1 || (list == 2 && !kept[1].len))
        strbuf_set(&defer_permit, strbuf_str(&kept[0]));
    else if (list == 2)
        strbuf_set(&defer_permit, strbuf_str(&kept[1]));
    int code = 0;
    if (run_list(&ctx, &s->policy->lists[list], subj) == V_REPLY)
        code = atoi(strbuf_str(reply_text));
    strbuf_set(&kept[list], strbuf_str(&defer_permit));
    if (list == 0)              /* a new client (connect, XCLIENT): no HELO yet */
        strbuf_reset(&kept[1]);
    strbuf_reset(&defer_permit);
    return code;
}

int policy_check_connect(struct session *s, struct strbuf *reply_text)
{
    return check_stage(s, 0, SUBJ_CLIENT, "CONNECT", NULL, reply_text);
}

int policy_check_helo(struct session *s, struct strbuf *reply_text)
{
    return check_stage(s, 1, SUBJ_HELO, s->protocol && strcmp(s->protocol, "ESMTP") == 0 ? "EHLO" : "HELO",
                       NULL, reply_text);
}

int policy_check_mail(struct session *s, const char *sender, struct strbuf *reply_text)
{
    return check_stage(s, 2, SUBJ_SENDER, "MAIL", sender, reply_text);
}

int policy_check_rcpt(struct session *s, const char *recipient, struct strbuf *reply_text)
{
    struct check_ctx ctx = {s, strbuf_str(&s->tx.sender), recipient, SUBJ_CLIENT, reply_text, 0, "RCPT"};
    struct policy *p = s->policy;
    if (s->local_submission)
        return 0;               /* sendmail -bs: as Postfix's stand-alone mode */
    /* RFC 5321 4.5.1: postmaster, unqualified, is always accepted (Postfix
     * asks no restriction) */
    if (strcasecmp(recipient, "postmaster") == 0)
        return 0;
    policy_defer_reset();
    static const int delayed[5] = {0, 1, 2, 3, 4};
    if (conf_bool("smtpd_delay_reject"))
        plan_start(p, delayed, 5);
    else
        plan_start(p, delayed + 3, 2);
    if (!conf_bool("smtpd_delay_reject")) {
        /* the deferral standing since MAIL (check_stage) */
        strbuf_set(&defer_permit, strbuf_str(&p->kept[2]));
    } else {
        static const enum subject subjects[3] = {SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER};
        for (int i = 0; i < 3; i++) {
            strbuf_reset(&defer_reject);        /* defer_if_reject: each list its own */
            if (run_list(&ctx, &p->lists[i], subjects[i]) == V_REPLY)
                return atoi(strbuf_str(reply_text));
        }
        strbuf_reset(&defer_reject);
    }
    load_list(&p->lists[3]);
    load_list(&p->lists[4]);
    if (!p->lists[3].count && !p->lists[4].count) {
        msg_warn("smtpd_relay_restrictions and smtpd_recipient_restrictions are both empty");
        config_error(&ctx);
        return 451;
    }
    if (run_list(&ctx, &p->lists[3], SUBJ_RECIPIENT) == V_REPLY
        || run_list(&ctx, &p->lists[4], SUBJ_RECIPIENT) == V_REPLY)
        return atoi(strbuf_str(reply_text));
    int deferred = policy_deferred(reply_text);     /* defer_if_permit */
    if (deferred)
        return deferred;
    if (conf_bool("smtpd_reject_unlisted_sender")) {
        int code = unlisted_sender(s, strbuf_str(&s->tx.sender), reply_text);
        if (code)
            return code;
    }
    if (conf_bool("smtpd_reject_unlisted_recipient"))
        return policy_unlisted_recipient(s, recipient, reply_text);
    return 0;
}

/* smtpd_data_restrictions (at DATA) and smtpd_end_of_data_restrictions
 * (after the final dot): the recipient is known to the checks only when
 * there is one, as in Postfix; a refusal is logged here. */
static int check_message(struct session *s, int list, enum subject subj, const char *stage,
                         struct strbuf *reply_text)
{
    struct check_ctx ctx = {s, strbuf_str(&s->tx.sender),
                            s->tx.recipient_count == 1 ? strbuf_str(&s->tx.last_recipient) : NULL,
                            subj, reply_text, 0, stage};
    if (s->local_submission)
        return 0;               /* sendmail -bs: as Postfix's stand-alone mode */
    load_list(&s->policy->lists[list]);
    if (!s->policy->lists[list].count)
        return 0;
    policy_defer_reset();
    plan_start(s->policy, &list, 1);
    int code = 0;
    if (run_list(&ctx, &s->policy->lists[list], subj) == V_REPLY)
        code = atoi(strbuf_str(reply_text));
    else
        code = policy_deferred(reply_text);     /* defer_if_permit */
    if (code)
        policy_log_event(&ctx, "reject", strbuf_str(reply_text));
    return code;
}

int policy_check_data(struct session *s, struct strbuf *reply_text)
{
    return check_message(s, 5, SUBJ_DATA, "DATA", reply_text);
}

int policy_check_eod(struct session *s, struct strbuf *reply_text)
{
    return check_message(s, 6, SUBJ_EOD, "END-OF-MESSAGE", reply_text);
}

int policy_etrn_domain(struct session *s, const char *domain)
{
    (void)s;
    static struct domainlist *list;
    static int failed;
    if (!list && !failed) {
        struct strbuf err = STRBUF_INIT;
        list = domainlist_from_param("fast_flush_domains", &err);
        if (!list) {
            msg_warn("fast_flush_domains: %s", strbuf_str(&err));
            failed = 1;
        }
        strbuf_free(&err);
    }
    if (!list)
        return -1;
    return domainlist_match(list, domain);
}
