/* policy_dns.c - the restrictions that judge the client's names in the
 * DNS (peer.c finds them through the lookup service), with Postfix 3.7's
 * replies: a name that does not exist gets unknown_client_reject_code
 * (450 by default), one that could not be looked up 450, never a 5xx.
 *   reject_unknown_client_hostname (reject_unknown_client): no
 *     forward-confirmed name; 4.7.25 (RFC 7372)
 *   reject_unknown_reverse_client_hostname: no PTR name; 4.7.1
 *   reject_rbl_client, reject_rhsbl_client, reject_rhsbl_reverse_client,
 *   reject_rhsbl_helo, reject_rhsbl_sender, reject_rhsbl_recipient: the
 *     DNS block lists, with default_rbl_reply and rbl_reply_maps
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"
#include "restrictions.h"
#include "strbuf.h"
#include "xalloc.h"

/* "CODE DSN Client host rejected: cannot find your [reverse ]hostname, [IP]";
 * status 'N' (does not exist) takes unknown_client_reject_code, else 450. */
static enum verdict unknown_name(struct check_ctx *ctx, char status, const char *dsn,
                                 const char *which)
{
    int code = status == 'N' ? (int)conf_int("unknown_client_reject_code") : 450;
    struct strbuf text = STRBUF_INIT;
    /* the enhanced code's class follows the reply's, as Postfix makes it */
    strbuf_printf(&text, "%d %d%s Client host rejected: cannot find your %shostname, [%s]",
                  code, code / 100, dsn + 1, which, ctx->s->client.address);
    /* a lookup that failed is refused with 450 at once, as Postfix 3.7's
     * reject_unknown_client does (no reject_tempfail_action: with
     * smtpd_delay_reject = no it answers at connect) */
    strbuf_set(ctx->reply, text.s);
    strbuf_free(&text);
    return V_REPLY;
}

enum verdict check_unknown_client_hostname(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char status = ctx->s->client.forward_status;
    if (status == 'F')
        return V_DUNNO;
    return unknown_name(ctx, status ? status : 'N', "4.7.25", "");
}

enum verdict check_unknown_reverse_client_hostname(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char status = ctx->s->client.reverse_status;
    if (status == 'F')
        return V_DUNNO;
    return unknown_name(ctx, status ? status : 'N', "4.7.1", "reverse ");
}

/* ---- DNS block lists: reject_rbl_client, reject_rhsbl_* ----
 * The query goes to the lookup service (proxy:dns:A, proxy:dns:TXT).  A
 * listing is an A record, matching the filter when the restriction has
 * one (zone=127.0.0.2, zone=127.0.0.[2..10], zone=127.0.0.[2;4]); its TXT
 * record is $rbl_reason.  A lookup that fails is no listing, with
 * Postfix's warning: a broken list never refuses mail. */

/* A table of the lookup service's DNS answers, opened once. */
static struct map *dns_table(const char *spec, struct map **cache)
{
    if (!*cache) {
        struct strbuf err = STRBUF_INIT;
        *cache = map_open(spec, &err);
        if (!*cache)
            msg_warn("%s: %s", spec, err.s);
        strbuf_free(&err);
    }
    return *cache;
}

/* ---- the answers of one evaluation ----
 * Every DNS lookup of the checks goes through policy_dns_ask(), which keeps the
 * answers of the restriction lists being evaluated (policy_dns_forget()
 * starts a new evaluation: a command's answers are never a later
 * command's).  policy_dns_prefetch() asks the lookups the remaining
 * checks will make all at once, one round trip to the lookup service,
 * which resolves them concurrently; the checks then run in order as
 * before and find their answers here, so replies and log lines are those
 * of lookups one after another. */
struct dns_memo {
    enum dns_type type;
    char *name;
    int result;                 /* MAP_FOUND, MAP_NOTFOUND, MAP_RETRY */
    struct strbuf value;
};

static struct {
    struct dns_memo *items;
    size_t count;
} memo;

void policy_dns_forget(void)
{
    for (size_t i = 0; i < memo.count; i++) {
        free(memo.items[i].name);
        strbuf_free(&memo.items[i].value);
    }
    free(memo.items);
    memo.items = NULL;
    memo.count = 0;
}

/* The lookup service's table of a record type. */
static struct map *type_table(enum dns_type type)
{
    static struct map *a, *aaaa, *mx, *ns, *txt;
    switch (type) {
    case DNS_T_A: return dns_table("proxy:dns:A", &a);
    case DNS_T_AAAA: return dns_table("proxy:dns:AAAA", &aaaa);
    case DNS_T_MX: return dns_table("proxy:dns:MX", &mx);
    case DNS_T_NS: return dns_table("proxy:dns:NS", &ns);
    case DNS_T_TXT: return dns_table("proxy:dns:TXT", &txt);
    default: return NULL;
    }
}

static struct dns_memo *memo_find(enum dns_type type, const char *name)
{
    for (size_t i = 0; i < memo.count; i++)
        if (memo.items[i].type == type && strcasecmp(memo.items[i].name, name) == 0)
            return &memo.items[i];
    return NULL;
}

static void memo_add(enum dns_type type, const char *name, int result, const char *value)
{
    memo.items = xreallocarray(memo.items, memo.count + 1, sizeof *memo.items);
    struct dns_memo *m = &memo.items[memo.count++];
    *m = (struct dns_memo){type, xstrdup(name), result, STRBUF_INIT};
    strbuf_set(&m->value, value);
}

/* Records of `type` at `name` as map_lookup gives them (MX "PREF HOST"
 * lines; with MAP_NOTFOUND "nxdomain" or "nodata"). */
int policy_dns_ask(enum dns_type type, const char *name, struct strbuf *value)
{
    const struct dns_memo *m = memo_find(type, name);
    if (m) {
        strbuf_set(value, strbuf_str(&m->value));
        return m->result;
    }
    struct map *table = type_table(type);
    int r = table ? map_lookup(table, name, value) : MAP_RETRY;
    if (!table)
        strbuf_reset(value);
    memo_add(type, name, r, strbuf_str(value));
    return r;
}

/* The lookups to ask together (policy_dns_prefetch). */
#define PREFETCH_MAX 16
struct prefetch {
    enum dns_type type[PREFETCH_MAX];
    char *name[PREFETCH_MAX];
    size_t count;
};

static void want(struct prefetch *pf, enum dns_type type, const char *name)
{
    if (!name || !*name || pf->count == PREFETCH_MAX || memo_find(type, name))
        return;
    for (size_t i = 0; i < pf->count; i++)
        if (pf->type[i] == type && strcasecmp(pf->name[i], name) == 0)
            return;
    pf->type[pf->count] = type;
    pf->name[pf->count++] = xstrdup(name);
}

/* Does one octet match one element of a filter: N, [N..M], [N;M;...]? */
static int octet_matches(const char *pattern, size_t len, unsigned value)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, pattern, len);
    buf[len] = 0;
    if (buf[0] != '[') {
        char *end;
        unsigned long n = strtoul(buf, &end, 10);
        return *end == 0 && n == value;
    }
    if (buf[len - 1] != ']')
        return 0;
    buf[len - 1] = 0;
    char *range = strstr(buf + 1, "..");
    if (range) {
        unsigned long lo = strtoul(buf + 1, NULL, 10), hi = strtoul(range + 2, NULL, 10);
        return value >= lo && value <= hi;
    }
    for (char *save, *tok = strtok_r(buf + 1, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
        if (strtoul(tok, NULL, 10) == value)
            return 1;
    return 0;
}

/* Does an IPv4 address (text) match the filter "a.b.c.d" with the
 * octet patterns above? */
static int filter_matches(const char *filter, const char *address)
{
    unsigned octets[4];
    if (sscanf(address, "%u.%u.%u.%u", &octets[0], &octets[1], &octets[2], &octets[3]) != 4)
        return 0;
    const char *p = filter;
    for (int i = 0; i < 4; i++) {
        const char *end = p;
        int depth = 0;
        while (*end && (depth || *end != '.')) {
            if (*end == '[')
                depth = 1;
            else if (*end == ']')
                depth = 0;
            end++;
        }
        if (!octet_matches(p, (size_t)(end - p), octets[i]))
            return 0;
        if (i < 3 && *end != '.')
            return 0;
        p = end + (i < 3);
    }
    return *p == 0;
}

struct rbl_hit {
    const char *class;          /* $rbl_class */
    const char *what;           /* $rbl_what */
    const char *domain;         /* $rbl_domain: the zone as written, without the filter */
    const char *txt;            /* $rbl_reason */
};

/* One $name of the RBL reply template; NULL when it names nothing. */
static const char *rbl_value(struct check_ctx *ctx, const struct rbl_hit *hit, const char *name,
                             char *code, size_t code_size)
{
    if (strcmp(name, "rbl_code") == 0) {
        snprintf(code, code_size, "%lld", conf_int("maps_rbl_reject_code"));
        return code;
    }
    if (strcmp(name, "rbl_class") == 0) return hit->class;
    if (strcmp(name, "rbl_what") == 0) return hit->what;
    if (strcmp(name, "rbl_domain") == 0) return hit->domain;
    if (strcmp(name, "rbl_reason") == 0 || strcmp(name, "rbl_txt") == 0) return hit->txt;
    if (strcmp(name, "client_address") == 0) return ctx->s->client.address;
    if (strcmp(name, "client_name") == 0) return ctx->s->client.name;
    if (strcmp(name, "helo_name") == 0) return strbuf_str(&ctx->s->helo);
    if (strcmp(name, "sender") == 0) return ctx->sender ? ctx->sender : "";
    if (strcmp(name, "recipient") == 0) return ctx->recipient ? ctx->recipient : "";
    return NULL;
}

/* Expand the reply template as Postfix's smtpd_expand: $name, ${name},
 * ${name?text} (text when name is not empty), ${name:text} (when empty),
 * $$. */
static void rbl_expand(struct check_ctx *ctx, const struct rbl_hit *hit, const char *t,
                       struct strbuf *out, int depth)
{
    char code[16];
    while (*t) {
        if (*t != '$') {
            strbuf_putc(out, *t++);
            continue;
        }
        t++;
        if (*t == '$') {
            strbuf_putc(out, *t++);
            continue;
        }
        char name[64];
        size_t n = 0;
        int braced = *t == '{' || *t == '(';
        char close = *t == '(' ? ')' : '}';
        if (braced)
            t++;
        while ((isalnum((unsigned char)*t) || *t == '_') && n + 1 < sizeof name)
            name[n++] = *t++;
        name[n] = 0;
        const char *value = rbl_value(ctx, hit, name, code, sizeof code);
        if (braced && (*t == '?' || *t == ':')) {
            char op = *t++;
            const char *start = t;
            int level = 0;
            while (*t && (level || *t != close)) {
                if (*t == '{' || *t == '(')
                    level++;
                else if (*t == '}' || *t == ')')
                    level--;
                t++;
            }
            int nonempty = value && *value;
            if ((op == '?') == nonempty && depth < 4) {
                char *inner = xstrndup(start, (size_t)(t - start));
                rbl_expand(ctx, hit, inner, out, depth + 1);
                free(inner);
            }
        } else if (value) {
            strbuf_puts(out, value);
        }
        if (braced && *t == close)
            t++;
    }
}

/* The reply for a listing: rbl_reply_maps (by zone), else default_rbl_reply;
 * "5.7.1" added when the template gives no enhanced code, of the reply's class. */
static enum verdict rbl_reply(struct check_ctx *ctx, const struct rbl_hit *hit)
{
    static struct maplist *reply_maps;
    static int reply_maps_opened;
    struct strbuf template = STRBUF_INIT, text = STRBUF_INIT;
    strbuf_set(&template, conf_raw("default_rbl_reply"));
    if (!reply_maps_opened) {
        reply_maps_opened = 1;
        if (*conf_str("rbl_reply_maps"))
            reply_maps = policy_table(ctx->s->policy, conf_str("rbl_reply_maps"));
    }
    if (reply_maps) {
        struct strbuf found = STRBUF_INIT;
        int r = maplist_lookup(reply_maps, hit->domain, &found);
        if (r == MAP_FOUND)
            strbuf_set(&template, found.s);
        strbuf_free(&found);
        if (r == MAP_RETRY) {
            strbuf_free(&template);
            return temp_failure(ctx, SUBJ_CLIENT);
        }
    }
    rbl_expand(ctx, hit, strbuf_str(&template), &text, 0);
    const char *t = strbuf_str(&text);
    int code = 0;
    if (isdigit((unsigned char)t[0]) && isdigit((unsigned char)t[1]) && isdigit((unsigned char)t[2])
        && (t[3] == ' ' || t[3] == 0))
        code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
    const char *rest = code ? t + 3 + (t[3] == ' ') : t;
    if (code < 400 || code > 599)
        code = (int)conf_int("maps_rbl_reject_code");
    strbuf_reset(ctx->reply);
    if (isdigit((unsigned char)rest[0]) && rest[1] == '.')
        strbuf_printf(ctx->reply, "%d %s", code, rest);
    else
        strbuf_printf(ctx->reply, "%d %d.7.1 %s", code, code / 100, rest);
    strbuf_free(&template);
    strbuf_free(&text);
    return V_REPLY;
}

/* Is `name` listed in the zone "domain[=filter]"?  1 listed (hit filled),
 * 0 not, -1 with a warning when the DNS failed. */
static int rbl_listed(const char *prefix, const char *zone, struct rbl_hit *hit,
                      struct strbuf *domain, struct strbuf *reason)
{
    const char *eq = strchr(zone, '=');
    strbuf_reset(domain);
    strbuf_append(domain, zone, eq ? (size_t)(eq - zone) : strlen(zone));
    struct strbuf query = STRBUF_INIT, value = STRBUF_INIT;
    strbuf_printf(&query, "%s.%s", prefix, domain->s);
    int r = policy_dns_ask(DNS_T_A, query.s, &value);
    int listed = 0;
    if (r == MAP_RETRY) {
        msg_warn("%s: RBL lookup error: Host or domain name not found. "
                 "Name service error for name=%s type=A: Host not found, try again", query.s, query.s);
        listed = -1;
    } else if (r == MAP_FOUND) {
        char *save, *line;
        for (line = strtok_r(value.s, "\n", &save); line && !listed; line = strtok_r(NULL, "\n", &save))
            listed = !eq || filter_matches(eq + 1, line);
    }
    if (listed == 1) {
        strbuf_reset(reason);
        if (policy_dns_ask(DNS_T_TXT, query.s, reason) == MAP_FOUND) {
            char *nl = strchr(reason->s, '\n');
            if (nl)
                strbuf_truncate(reason, (size_t)(nl - reason->s));
        } else {
            strbuf_reset(reason);   /* no TXT record: no reason */
        }
        hit->domain = domain->s;
        hit->txt = strbuf_str(reason);
    }
    strbuf_free(&query);
    strbuf_free(&value);
    return listed;
}

/* One block-list check of `name` (a reversed address or a domain). */
static enum verdict rbl_check(struct check_ctx *ctx, const char *zone, const char *prefix,
                              const char *class, const char *what)
{
    if (!zone || !*zone || !prefix || !*prefix)
        return V_DUNNO;
    struct strbuf domain = STRBUF_INIT, reason = STRBUF_INIT;
    struct rbl_hit hit = {class, what, NULL, NULL};
    enum verdict v = rbl_listed(prefix, zone, &hit, &domain, &reason) == 1 ? rbl_reply(ctx, &hit) : V_DUNNO;
    strbuf_free(&domain);
    strbuf_free(&reason);
    return v;
}

enum verdict check_rbl_client(struct check_ctx *ctx, const char *zone)
{
    char prefix[80];
    if (dns_reverse_prefix(ctx->s->client.address, prefix, sizeof prefix) < 0)
        return V_DUNNO;
    return rbl_check(ctx, zone, prefix, "Client host", ctx->s->client.address);
}

/* The domain of an address ("" for none), without a trailing dot. */
static const char *address_domain(const char *address, char *out, size_t size)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    snprintf(out, size, "%s", at ? at + 1 : "");
    size_t len = strlen(out);
    if (len && out[len - 1] == '.')
        out[len - 1] = 0;
    return out;
}

enum verdict check_rhsbl_client(struct check_ctx *ctx, const char *zone)
{
    const char *name = ctx->s->client.name;
    if (strcmp(name, "unknown") == 0)
        return V_DUNNO;
    return rbl_check(ctx, zone, name, "Client host", name);
}

enum verdict check_rhsbl_reverse_client(struct check_ctx *ctx, const char *zone)
{
    const char *name = ctx->s->client.reverse_name;
    if (!*name || strcmp(name, "unknown") == 0)
        return V_DUNNO;
    return rbl_check(ctx, zone, name, "Unverified Client host", name);
}

enum verdict check_rhsbl_helo(struct check_ctx *ctx, const char *zone)
{
    const char *helo = strbuf_str(&ctx->s->helo);
    if (!*helo || *helo == '[')
        return V_DUNNO;
    return rbl_check(ctx, zone, helo, "Helo command", helo);
}

enum verdict check_rhsbl_sender(struct check_ctx *ctx, const char *zone)
{
    char domain[256];
    address_domain(ctx->sender, domain, sizeof domain);
    if (!*domain || *domain == '[')
        return V_DUNNO;
    /* Postfix names the whole address: "Sender address [a@domain]" */
    return rbl_check(ctx, zone, domain, "Sender address", ctx->sender);
}

enum verdict check_rhsbl_recipient(struct check_ctx *ctx, const char *zone)
{
    char domain[256];
    address_domain(ctx->recipient, domain, sizeof domain);
    if (!*domain || *domain == '[')
        return V_DUNNO;
    return rbl_check(ctx, zone, domain, "Recipient address", ctx->recipient);
}

/* ---- permit_dnswl_client, permit_rhswl_client ----
 * A listing permits; a lookup that fails cannot, and a later refusal is
 * then a deferral (defer_if_reject), so the allow list's outage does not
 * bounce the mail it would have let in; Postfix's deferral names the
 * address (dnswl) or the name (rhswl) that was looked up. */
static enum verdict allow_list(struct check_ctx *ctx, const char *zone, const char *prefix,
                               const char *what)
{
    if (!zone || !*zone || !prefix || !*prefix)
        return V_DUNNO;
    struct strbuf domain = STRBUF_INIT, reason = STRBUF_INIT;
    struct rbl_hit hit = {NULL, NULL, NULL, NULL};
    int listed = rbl_listed(prefix, zone, &hit, &domain, &reason);
    strbuf_free(&domain);
    strbuf_free(&reason);
    if (listed < 0)
        return policy_defer_if_reject_what(ctx, SUBJ_CLIENT, 450, "4.7.1", what, "Service unavailable");
    return listed ? V_OK : V_DUNNO;
}

enum verdict check_dnswl_client(struct check_ctx *ctx, const char *zone)
{
    char prefix[80];
    if (dns_reverse_prefix(ctx->s->client.address, prefix, sizeof prefix) < 0)
        return V_DUNNO;
    return allow_list(ctx, zone, prefix, ctx->s->client.address);
}

enum verdict check_rhswl_client(struct check_ctx *ctx, const char *zone)
{
    const char *name = ctx->s->client.name;
    return strcmp(name, "unknown") == 0 ? V_DUNNO : allow_list(ctx, zone, name, name);
}

/* ---- check_*_mx_access, check_*_ns_access, check_*_a_access ----
 * The domain's MX hosts (the domain itself when it has none), NS hosts or
 * addresses are looked up, and each host name (with its parent domains)
 * and each of its addresses is a key of the access table.  OK is not
 * allowed there (Postfix: use DUNNO to exempt a host from a deny list). */

/* One server host: its name, then its addresses. */
struct server_check {
    enum subject subj;
    int type;                   /* DNS_T_MX, DNS_T_NS, DNS_T_A */
    const char *table;
    struct maplist *maps;
    char restriction[48];       /* check_sender_mx_access, for the warnings */
    const char *what;           /* the address or name judged, for the warnings */
};

static enum verdict server_host(struct check_ctx *ctx, const struct server_check *sc, const char *host)
{
    enum subject subj = sc->subj;
    const char *table = sc->table;
    struct maplist *maps = sc->maps;
    int addresses_only = sc->type == DNS_T_A;
    struct strbuf value = STRBUF_INIT, addrs = STRBUF_INIT;
    enum verdict v = V_DUNNO;
    int r = MAP_NOTFOUND;
    if (!addresses_only)
        r = map_search_domain(maps, host, 1, &value);
    if (r == MAP_NOTFOUND) {
        static const enum dns_type types[2] = {DNS_T_A, DNS_T_AAAA};
        int found = 0, retry = 0, nxdomain = 0;
        for (int t = 0; t < 2; t++) {
            int l = policy_dns_ask(types[t], host, &addrs);
            retry |= l == MAP_RETRY;
            nxdomain |= l == MAP_NOTFOUND && strcmp(strbuf_str(&addrs), "nxdomain") == 0;
            if (l != MAP_FOUND)
                continue;
            found = 1;
            char *save = NULL;
            for (char *a = strtok_r(addrs.s, "\n", &save); a && r == MAP_NOTFOUND; a = strtok_r(NULL, "\n", &save))
                r = map_search_client_ip(maps, a, &value);
            if (r != MAP_NOTFOUND)
                break;
        }
        /* an MX or NS host without address: Postfix's warning, with
         * getaddrinfo's words (an A check says nothing) */
        if (!found && !addresses_only)
            msg_warn("Unable to look up %s host %s for %s %s: %s", sc->type == DNS_T_MX ? "MX" : "NS",
                     host, policy_subject_class(subj), sc->what,
                     retry ? "Temporary failure in name resolution"
                     : nxdomain ? "Name or service not known" : "No address associated with hostname");
    }
    if (r == MAP_RETRY) {
        v = temp_failure(ctx, subj);
    } else if (r == MAP_FOUND) {
        const char *action = strbuf_str(&value);
        size_t n = strcspn(action, " \t");
        if ((n == 2 && strncasecmp(action, "OK", 2) == 0) || strspn(action, "0123456789") == strlen(action)) {
            /* Postfix's words, and its answer: a configuration error */
            v = policy_forbid_ok(ctx, sc->restriction, sc->what);
        } else {
            v = access_action(ctx, subj, action, table);
        }
    }
    strbuf_free(&value);
    strbuf_free(&addrs);
    return v;
}

enum verdict check_server_access(struct check_ctx *ctx, enum subject subj, int type,
                                 const char *table)
{
    char domain[256];
    switch (subj) {
    case SUBJ_CLIENT:
        snprintf(domain, sizeof domain, "%s", strcmp(ctx->s->client.name, "unknown") ? ctx->s->client.name : "");
        break;
    case SUBJ_REV_CLIENT:
        snprintf(domain, sizeof domain, "%s",
                 strcmp(ctx->s->client.reverse_name, "unknown") ? ctx->s->client.reverse_name : "");
        break;
    case SUBJ_HELO:
        snprintf(domain, sizeof domain, "%s", strbuf_str(&ctx->s->helo));
        break;
    case SUBJ_SENDER:
        address_domain(ctx->sender, domain, sizeof domain);
        break;
    default:
        address_domain(ctx->recipient, domain, sizeof domain);
        break;
    }
    if (!*domain || *domain == '[')
        return V_DUNNO;
    struct maplist *maps = policy_table(ctx->s->policy, table);
    if (!maps)
        return temp_failure(ctx, subj);
    /* the restriction's name and what it judges, for the warnings */
    static const char *const subjects[] = {
        [SUBJ_CLIENT] = "client", [SUBJ_HELO] = "helo", [SUBJ_SENDER] = "sender",
        [SUBJ_RECIPIENT] = "recipient",
    };
    struct server_check sc = {subj, type, table, maps, "", domain};
    snprintf(sc.restriction, sizeof sc.restriction, "check_%s_%s_access",
             subj <= SUBJ_RECIPIENT ? subjects[subj]
             : subj == SUBJ_REV_CLIENT ? "reverse_client_hostname" : "recipient",
             type == DNS_T_MX ? "mx" : type == DNS_T_NS ? "ns" : "a");
    if (subj == SUBJ_SENDER || subj == SUBJ_RECIPIENT)
        sc.what = subj == SUBJ_SENDER ? ctx->sender : ctx->recipient;
    const char *what = sc.what;
    if (type == DNS_T_A)
        return server_host(ctx, &sc, domain);
    struct strbuf hosts = STRBUF_INIT;
    int r = policy_dns_ask(type, domain, &hosts);
    const char *asked = domain;
    /* no NS records: those of the parent domains, as Postfix looks */
    while (r == MAP_NOTFOUND && type == DNS_T_NS && (asked = strchr(asked, '.')) && asked[1])
        r = policy_dns_ask(type, ++asked, &hosts);
    enum verdict v = V_DUNNO;
    const char *type_name = type == DNS_T_MX ? "MX" : "NS";
    if (r == MAP_RETRY) {
        /* Postfix: the lookup fails; nothing to judge, the list goes on */
        msg_warn("Unable to look up %s host for %s: Host not found, try again", type_name,
                 asked && asked[0] && asked[1] ? asked : what);
    } else if (r == MAP_NOTFOUND && type == DNS_T_NS) {
        msg_warn("Unable to look up NS host for %s: %s", what,
                 strcmp(strbuf_str(&hosts), "nxdomain") == 0 ? "Host not found"
                 : "Host found but no data record of requested type");
    } else if (r == MAP_NOTFOUND) {
        /* no MX: the domain is its own mail host */
        v = server_host(ctx, &sc, domain);
    } else {
        char *save = NULL;
        for (char *line = strtok_r(hosts.s, "\n", &save); line && v == V_DUNNO; line = strtok_r(NULL, "\n", &save)) {
            const char *host = type == DNS_T_MX ? strchr(line, ' ') : line;
            if (!host)
                continue;
            while (*host == ' ')
                host++;
            if (*host && strcmp(host, ".") != 0)
                v = server_host(ctx, &sc, host);
        }
    }
    strbuf_free(&hosts);
    return v;
}

/* ---- reject_unknown_helo_hostname, reject_unknown_sender_domain,
 * reject_unknown_recipient_domain ----
 * A name is known when it has an A, AAAA or MX record; a null MX (RFC
 * 7505: one MX record for ".") refuses mail for a domain but names an MTA
 * well enough for HELO.  A lookup that fails is answered as Postfix's
 * unknown_helo_hostname_tempfail_action / unknown_address_tempfail_action
 * say (policy_tempfail): by default defer_if_permit, a deferral kept until
 * the end of the stage and answered only when nothing refuses. */

enum host_status { HOST_FOUND, HOST_NOTFOUND, HOST_RETRY, HOST_NULLMX };

/* Look name up: type A, AAAA and MX (mx_first: MX, then addresses, as for
 * a mail domain). */
static enum host_status host_lookup(const char *name, int mx_first)
{
    const enum dns_type types[3] = {
        mx_first ? DNS_T_MX : DNS_T_A, DNS_T_AAAA, mx_first ? DNS_T_A : DNS_T_MX,
    };
    struct strbuf value = STRBUF_INIT;
    int retry = 0;
    enum host_status status = HOST_NOTFOUND;
    for (int i = 0; i < 3 && status == HOST_NOTFOUND; i++) {
        int r = policy_dns_ask(types[i], name, &value);
        if (r == MAP_RETRY)
            retry = 1;
        else if (r == MAP_FOUND)
            status = types[i] == DNS_T_MX && strcmp(strbuf_str(&value), "0 .") == 0 && mx_first
                     ? HOST_NULLMX : HOST_FOUND;
    }
    strbuf_free(&value);
    return status == HOST_NOTFOUND && retry ? HOST_RETRY : status;
}

/* A name as the DNS takes it: no trailing dot, not an address literal. */
static int dns_name(const char *in, char *out, size_t size)
{
    if (!in || !*in || *in == '[' || strlen(in) >= size)
        return 0;
    snprintf(out, size, "%s", in);
    size_t len = strlen(out);
    if (len > 1 && out[len - 1] == '.' && out[len - 2] != '.')
        out[len - 1] = 0;
    return 1;
}

enum verdict check_unknown_helo_hostname(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char name[256];
    if (!dns_name(strbuf_str(&ctx->s->helo), name, sizeof name))
        return V_DUNNO;
    switch (host_lookup(name, 0)) {
    case HOST_NOTFOUND: {
        /* the enhanced code's class follows the reply's, as Postfix makes it */
        int code = (int)conf_int("unknown_hostname_reject_code");
        return reject_with(ctx, SUBJ_HELO, code, code / 100 == 5 ? "5.7.1" : "4.7.1", "Host not found");
    }
    case HOST_RETRY:
        return policy_tempfail(ctx, "unknown_helo_hostname_tempfail_action", SUBJ_HELO, 450,
                               "4.7.1", "Host not found");
    default:
        return V_DUNNO;         /* a null MX names an MTA well enough */
    }
}

/* The domain check of a sender or recipient address. */
static enum verdict unknown_domain(struct check_ctx *ctx, enum subject subj, const char *address)
{
    char at_domain[256], domain[256], text[320];
    if (!address || !*address)
        return V_DUNNO;
    address_domain(address, at_domain, sizeof at_domain);
    if (!dns_name(at_domain, domain, sizeof domain))
        return V_DUNNO;
    enum dest_class cls;
    if (destination_domain_class(domain, &cls) == 0 && cls == DEST_LOCAL)
        return V_DUNNO;         /* ours: Postfix does not ask the DNS */
    int sender = subj == SUBJ_SENDER;
    switch (host_lookup(domain, 1)) {
    case HOST_NULLMX:
        snprintf(text, sizeof text, "Domain %s does not accept mail (nullMX)", domain);
        return reject_with(ctx, subj, sender ? 550 : 556, sender ? "5.7.27" : "5.1.10", text);
    case HOST_NOTFOUND: {
        int code = (int)conf_int("unknown_address_reject_code");
        char dsn[16];
        snprintf(dsn, sizeof dsn, "%d%s", code / 100, sender ? ".1.8" : ".1.2");
        return reject_with(ctx, subj, code, dsn, "Domain not found");
    }
    case HOST_RETRY:
        return policy_tempfail(ctx, "unknown_address_tempfail_action", subj, 450,
                               sender ? "4.1.8" : "4.1.2", "Domain not found");
    default:
        return V_DUNNO;
    }
}

enum verdict check_unknown_sender_domain(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unknown_domain(ctx, SUBJ_SENDER, ctx->sender);
}

enum verdict check_unknown_recipient_domain(struct check_ctx *ctx, const char *table)
{
    (void)table;
    return unknown_domain(ctx, SUBJ_RECIPIENT, ctx->recipient);
}

/* ---- policy_dns_prefetch ---- */

/* The lookups a block-list check of `prefix` in `zone` makes first. */
static void want_rbl(struct prefetch *pf, const char *prefix, const char *zone)
{
    if (!zone || !*zone || !prefix || !*prefix)
        return;
    const char *eq = strchr(zone, '=');
    struct strbuf query = STRBUF_INIT;
    strbuf_printf(&query, "%s.%.*s", prefix, (int)(eq ? (size_t)(eq - zone) : strlen(zone)), zone);
    want(pf, DNS_T_A, query.s);
    strbuf_free(&query);
}

/* What host_lookup asks of a name (all three: most names have one). */
static void want_host(struct prefetch *pf, const char *in, int mx_first)
{
    char name[256];
    if (!dns_name(in, name, sizeof name))
        return;
    want(pf, mx_first ? DNS_T_MX : DNS_T_A, name);
    want(pf, DNS_T_AAAA, name);
    want(pf, mx_first ? DNS_T_A : DNS_T_MX, name);
}

/* The domain of an address as the DNS takes it (domain[256]): 0 when it
 * has none; else 1 with its class, or -1 when the class cannot be told. */
static int address_dns_domain(const char *address, char *domain, enum dest_class *cls)
{
    char at_domain[256];
    if (!address || !*address)
        return 0;
    address_domain(address, at_domain, sizeof at_domain);
    if (!dns_name(at_domain, domain, 256))
        return 0;
    return destination_domain_class(domain, cls) == 0 ? 1 : -1;
}

/* What unknown_domain asks of an address's domain. */
static void want_domain(struct prefetch *pf, const char *address)
{
    char domain[256];
    enum dest_class cls;
    int r = address_dns_domain(address, domain, &cls);
    if (r && !(r == 1 && cls == DEST_LOCAL))
        want_host(pf, domain, 1);
}

/* What permit_mx_backup asks first: the MX hosts of a recipient domain
 * that is neither ours nor relayed for (the addresses of those hosts
 * depend on the answer, and are asked when the check runs). */
static void want_backup_mx(struct prefetch *pf, const char *address)
{
    char domain[256];
    enum dest_class cls;
    if (address_dns_domain(address, domain, &cls) == 1 && cls == DEST_DEFAULT)
        want(pf, DNS_T_MX, domain);
}

/* The name an RHSBL check judges ("" for none). */
static const char *rhs_name(const char *name)
{
    return !name || !*name || *name == '[' || strcmp(name, "unknown") == 0 ? "" : name;
}

void policy_dns_prefetch(struct check_ctx *ctx, struct restriction_list *const *lists,
                         size_t list_count, size_t first)
{
    struct prefetch pf = {.count = 0};
    char buf[256];
    const struct session *s = ctx->s;
    const char *helo = strbuf_str(&s->helo);
    for (size_t l = 0; l < list_count; l++) {
        for (size_t i = l == 0 ? first : 0; i < lists[l]->count; i++) {
            const struct restriction *r = &lists[l]->items[i];
            if (!r->def)
                continue;
            switch (r->def->id) {
            case RESTRICT_REJECT_RBL_CLIENT:
            case RESTRICT_PERMIT_DNSWL_CLIENT:
                if (dns_reverse_prefix(s->client.address, buf, sizeof buf) == 0)
                    want_rbl(&pf, buf, r->table);
                break;
            case RESTRICT_REJECT_RHSBL_CLIENT:
            case RESTRICT_PERMIT_RHSWL_CLIENT:
                want_rbl(&pf, rhs_name(s->client.name), r->table);
                break;
            case RESTRICT_REJECT_RHSBL_REVERSE_CLIENT:
                want_rbl(&pf, rhs_name(s->client.reverse_name), r->table);
                break;
            case RESTRICT_REJECT_RHSBL_HELO:
                want_rbl(&pf, rhs_name(helo), r->table);
                break;
            case RESTRICT_REJECT_RHSBL_SENDER:
                want_rbl(&pf, rhs_name(address_domain(ctx->sender, buf, sizeof buf)), r->table);
                break;
            case RESTRICT_REJECT_RHSBL_RECIPIENT:
                want_rbl(&pf, rhs_name(address_domain(ctx->recipient, buf, sizeof buf)), r->table);
                break;
            case RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME:
                want_host(&pf, helo, 0);
                break;
            case RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN:
                want_domain(&pf, ctx->sender);
                break;
            case RESTRICT_REJECT_UNKNOWN_RECIPIENT_DOMAIN:
                want_domain(&pf, ctx->recipient);
                break;
            case RESTRICT_PERMIT_MX_BACKUP:
                want_backup_mx(&pf, ctx->recipient);
                break;
            default:
                break;
            }
        }
    }
    if (pf.count > 1) {
        struct map *maps[PREFETCH_MAX];
        const char *names[PREFETCH_MAX];
        enum dns_type types[PREFETCH_MAX];
        struct strbuf values[PREFETCH_MAX];
        int results[PREFETCH_MAX];
        size_t n = 0;
        for (size_t i = 0; i < pf.count; i++) {
            if (!(maps[n] = type_table(pf.type[i])))
                continue;
            names[n] = pf.name[i];
            types[n] = pf.type[i];
            values[n] = (struct strbuf)STRBUF_INIT;
            n++;
        }
        map_lookup_several(maps, names, n, values, results);
        for (size_t i = 0; i < n; i++) {
            memo_add(types[i], names[i], results[i], strbuf_str(&values[i]));
            strbuf_free(&values[i]);
        }
    }
    for (size_t i = 0; i < pf.count; i++)
        free(pf.name[i]);
}

int policy_dns_needs_lookups(const struct restriction *r)
{
    if (!r->def)
        return 0;
    switch (r->def->id) {
    case RESTRICT_REJECT_RBL_CLIENT:
    case RESTRICT_PERMIT_DNSWL_CLIENT:
    case RESTRICT_REJECT_RHSBL_CLIENT:
    case RESTRICT_PERMIT_RHSWL_CLIENT:
    case RESTRICT_REJECT_RHSBL_REVERSE_CLIENT:
    case RESTRICT_REJECT_RHSBL_HELO:
    case RESTRICT_REJECT_RHSBL_SENDER:
    case RESTRICT_REJECT_RHSBL_RECIPIENT:
    case RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME:
    case RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN:
    case RESTRICT_REJECT_UNKNOWN_RECIPIENT_DOMAIN:
    case RESTRICT_PERMIT_MX_BACKUP:
        return 1;
    default:
        return 0;
    }
}
