/* nexthop.c - a next hop → the addresses to try, in order (nexthop.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "dns.h"
#include "nexthop.h"
#include "strlist.h"
#include "xalloc.h"

/* What went wrong while looking up addresses, worst last. */
struct lookup_state {
    int soft;                       /* a lookup answered "try again" */
    struct strbuf why;              /* the last failure, Postfix's words */
    int soft_why;                   /* why describes a soft failure */
};

int nexthop_port(const char *text)
{
    static const struct { const char *name; int port; } names[] = {
        {"smtp", 25}, {"submission", 587}, {"smtps", 465}, {"submissions", 465}, {"lmtp", 24},
    };
    if (!*text)
        return -1;
    if (strspn(text, "0123456789") == strlen(text)) {
        long v = strtol(text, NULL, 10);
        return v > 0 && v < 65536 ? (int)v : -1;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(text, names[i].name) == 0)
            return names[i].port;
    return -1;
}

void nexthop_list_free(struct nexthop_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->target[i].host);
        free(list->target[i].dest);
    }
    free(list->target);
    list->target = NULL;
    list->count = 0;
}

/* Append a target for one numeric address of host. */
static int add_address(struct nexthop_list *out, const char *host, const char *addr,
                       int port, unsigned pref, int addr_secure)
{
    struct nexthop_target t;
    memset(&t, 0, sizeof t);
    if (strlen(addr) >= sizeof t.addr)
        return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t.sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t.sa;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        t.sa_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        t.sa_len = sizeof *v6;
    } else {
        return -1;
    }
    strcpy(t.addr, addr);
    t.host = xstrdup(host);
    t.port = port;
    t.pref = pref;
    t.addr_secure = addr_secure;
    out->target = xreallocarray(out->target, out->count + 1, sizeof *out->target);
    out->target[out->count++] = t;
    return 0;
}

/* Shuffle n records (Fisher-Yates). */
static void shuffle(void *base, size_t n, size_t size)
{
    char tmp[sizeof(struct nexthop_target) > sizeof(struct dns_record)
             ? sizeof(struct nexthop_target) : sizeof(struct dns_record)];
    char *p = base;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)arc4random_uniform((unsigned)i);
        memcpy(tmp, p + (i - 1) * size, size);
        memcpy(p + (i - 1) * size, p + j * size, size);
        memcpy(p + j * size, tmp, size);
    }
}

/* The A and/or AAAA records of host appended to out; 0 when some were
 * found, -1 with st updated when none. */
static int host_addresses(const char *host, int port, unsigned pref,
                          const struct nexthop_options *opt, struct nexthop_list *out,
                          struct lookup_state *st)
{
    size_t before = out->count;
    enum dns_type order[2];
    int n = 0;
    if (opt->prefer_ipv6) {
        if (opt->ipv6) order[n++] = DNS_T_AAAA;
        if (opt->ipv4) order[n++] = DNS_T_A;
    } else {
        if (opt->ipv4) order[n++] = DNS_T_A;
        if (opt->ipv6) order[n++] = DNS_T_AAAA;
    }
    int soft = 0, nxdomain = 0;
    enum dns_type failed_type = n ? order[0] : DNS_T_A;
    for (int k = 0; k < n; k++) {
        struct dns_answer ans;
        dns_lookup(host, order[k], &ans);
        if (ans.status == DNS_FOUND) {
            size_t first = out->count;
            for (size_t i = 0; i < ans.count; i++)
                add_address(out, host, ans.records[i].text, port, pref, ans.secure);
            if (opt->randomize && out->count - first > 1)
                shuffle(out->target + first, out->count - first, sizeof *out->target);
        } else if (ans.status == DNS_RETRY) {
            soft = 1;
            failed_type = order[k];
        } else if (ans.nxdomain) {
            nxdomain = 1;
        }
        dns_answer_free(&ans);
    }
    if (out->count > before)
        return 0;
    strbuf_reset(&st->why);
    if (soft) {
        st->soft = 1;
        st->soft_why = 1;
        strbuf_printf(&st->why, "Host or domain name not found. Name service error for "
                      "name=%s type=%s: Host not found, try again", host,
                      dns_type_name(failed_type));
    } else {
        st->soft_why = 0;
        strbuf_printf(&st->why, "Host or domain name not found. Name service error for "
                      "name=%s type=%s: %s", host, dns_type_name(failed_type),
                      nxdomain ? "Host not found" : "Host found but no data record of requested type");
    }
    return -1;
}

/* Whether target i's address is this machine's. */
static int target_is_own(const struct nexthop_options *opt, const struct nexthop_target *t)
{
    if (!opt->own_address)
        return 0;
    if (t->sa.ss_family == AF_INET)
        return opt->own_address(AF_INET, &((const struct sockaddr_in *)&t->sa)->sin_addr,
                                opt->own_arg);
    if (t->sa.ss_family == AF_INET6)
        return opt->own_address(AF_INET6, &((const struct sockaddr_in6 *)&t->sa)->sin6_addr,
                                opt->own_arg);
    return 0;
}

/* domain[:port] with MX lookups: the targets of its MX hosts appended. */
static enum nexthop_result mx_targets(const char *domain, int port,
                                      const struct nexthop_options *opt,
                                      struct nexthop_list *out, struct lookup_state *st,
                                      struct strbuf *dsn, struct strbuf *why)
{
    struct dns_answer mx;
    dns_lookup(domain, DNS_T_MX, &mx);
    if (mx.status == DNS_RETRY) {
        dns_answer_free(&mx);
        st->soft = 1;           /* a later next hop's NXDOMAIN must not bounce */
        strbuf_set(dsn, "4.4.3");
        strbuf_printf(why, "Host or domain name not found. Name service error for "
                      "name=%s type=MX: Host not found, try again", domain);
        return NEXTHOP_DEFER;
    }
    if (mx.status == DNS_NOTFOUND) {
        dns_answer_free(&mx);
        size_t before = out->count;
        host_addresses(domain, port, 0, opt, out, st);
        for (size_t i = before; i < out->count; i++)
            out->target[i].best = 1;
        return NEXTHOP_OK;
    }
    /* RFC 7505: one record "0 ." */
    if (mx.count == 1 && (!*mx.records[0].text || strcmp(mx.records[0].text, ".") == 0)) {
        dns_answer_free(&mx);
        strbuf_set(dsn, "5.1.10");
        strbuf_printf(why, "Domain %s does not accept mail (nullMX)", domain);
        return NEXTHOP_BOUNCE;
    }
    /* equal preferences in random order (the records come sorted) */
    if (opt->randomize)
        for (size_t i = 0; i < mx.count;) {
            size_t j = i + 1;
            while (j < mx.count && mx.records[j].pref == mx.records[i].pref)
                j++;
            if (j - i > 1)
                shuffle(mx.records + i, j - i, sizeof *mx.records);
            i = j;
        }
    size_t first = out->count;
    for (size_t i = 0; i < mx.count; i++) {
        if (!*mx.records[i].text || strcmp(mx.records[i].text, ".") == 0)
            continue;
        size_t before = out->count;
        host_addresses(mx.records[i].text, port, mx.records[i].pref, opt, out, st);
        for (size_t k = before; k < out->count; k++) {
            out->target[k].from_mx = 1;
            out->target[k].mx_secure = mx.secure;
        }
    }
    /* smtp_find_self: drop our own MX host and every one not better */
    for (size_t i = first; i < out->count; i++) {
        if (!target_is_own(opt, &out->target[i]))
            continue;
        out->self_mx = 1;
        unsigned own_pref = out->target[i].pref;
        if (own_pref <= mx.records[0].pref) {
            for (size_t k = first; k < out->count; k++)
                free(out->target[k].host);
            out->count = first;
            dns_answer_free(&mx);
            strbuf_set(dsn, "5.4.6");
            strbuf_printf(why, "mail for %s loops back to myself", domain);
            return NEXTHOP_BOUNCE;
        }
        size_t keep = first;
        for (size_t k = first; k < out->count; k++) {
            if (out->target[k].pref < own_pref)
                out->target[keep++] = out->target[k];
            else
                free(out->target[k].host);
        }
        out->count = keep;
        break;
    }
    for (size_t i = first; i < out->count; i++)
        out->target[i].best = out->target[i].pref == mx.records[0].pref;
    dns_answer_free(&mx);
    return NEXTHOP_OK;
}

/* One next hop of a list. */
static enum nexthop_result one_nexthop(const char *item, const struct nexthop_options *opt,
                                       struct nexthop_list *out, struct lookup_state *st,
                                       struct strbuf *dsn, struct strbuf *why)
{
    char *text = xstrdup(item);
    enum nexthop_result result = NEXTHOP_OK;
    char *host = text, *port_text = NULL;
    int use_mx = opt->use_mx && !opt->lmtp, bracketed = 0;
    if (opt->lmtp && strncmp(text, "unix:", 5) == 0) {
        struct nexthop_target t;
        memset(&t, 0, sizeof t);
        struct sockaddr_un *un = (struct sockaddr_un *)&t.sa;
        /* a relative name is relative to queue_directory, as Postfix's lmtp
         * (which runs there) takes "unix:private/dovecot-lmtp" */
        const char *base = text[5] != '/' && opt->base_directory ? opt->base_directory : NULL;
        size_t need = strlen(text + 5) + (base ? strlen(base) + 1 : 0);
        if (need >= sizeof un->sun_path || strlen(text + 5) >= sizeof t.addr) {
            strbuf_set(dsn, "4.3.5");
            strbuf_printf(why, "unix-domain name too long: %s", text + 5);
            result = NEXTHOP_DEFER;
            goto out;
        }
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s%s%s", base ? base : "", base ? "/" : "",
                 text + 5);
        strcpy(t.addr, text + 5);
        t.sa_len = sizeof *un;
        t.host = xstrdup(opt->myhostname ? opt->myhostname : "localhost");
        t.best = 1;
        out->target = xreallocarray(out->target, out->count + 1, sizeof *out->target);
        out->target[out->count++] = t;
        goto out;
    }
    if (opt->lmtp && strncmp(text, "inet:", 5) == 0)
        host = text + 5;
    if (*host == '[') {
        char *close = strchr(host, ']');
        if (!close) {
            strbuf_set(dsn, "4.3.5");
            strbuf_printf(why, "malformed next hop: %s", item);
            result = NEXTHOP_DEFER;
            goto out;
        }
        *close = '\0';
        host++;
        if (close[1] == ':')
            port_text = close + 2;
        bracketed = 1;
        use_mx = 0;
    } else {
        char *colon = strrchr(host, ':');
        if (colon && strchr(host, ':') == colon) {
            *colon = '\0';
            port_text = colon + 1;
        }
    }
    int port = opt->default_port;
    if (port_text && (port = nexthop_port(port_text)) < 0) {
        strbuf_set(dsn, "4.3.5");
        strbuf_printf(why, "bad port in next hop: %s", item);
        result = NEXTHOP_DEFER;
        goto out;
    }
    if (bracketed && strncasecmp(host, "ipv6:", 5) == 0)
        host += 5;
    unsigned char bytes[16];
    if (inet_pton(AF_INET, host, bytes) == 1 || inet_pton(AF_INET6, host, bytes) == 1) {
        add_address(out, host, host, port, 0, 0);
        out->target[out->count - 1].best = 1;
        goto out;
    }
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (use_mx) {
        result = mx_targets(host, port, opt, out, st, dsn, why);
    } else {
        size_t before = out->count;
        host_addresses(host, port, 0, opt, out, st);
        for (size_t i = before; i < out->count; i++)
            out->target[i].best = 1;
    }
out:
    free(text);
    return result;
}

enum nexthop_result nexthop_find(const char *nexthop, const struct nexthop_options *opt,
                                 struct nexthop_list *out, struct strbuf *dsn,
                                 struct strbuf *why)
{
    memset(out, 0, sizeof *out);
    strbuf_reset(dsn);
    strbuf_reset(why);
    struct strlist items = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    struct lookup_state st = {0, STRBUF_INIT, 0};
    enum nexthop_result result = NEXTHOP_OK;
    if (list_split(nexthop, &items, &err) != 0 || items.count == 0) {
        strbuf_set(dsn, "4.3.5");
        strbuf_printf(why, "malformed next hop: %s", nexthop);
        result = NEXTHOP_DEFER;
    }
    for (size_t i = 0; result == NEXTHOP_OK && i < items.count; i++) {
        size_t before = out->count;
        enum nexthop_result r = one_nexthop(items.item[i], opt, out, &st, dsn, why);
        for (size_t k = before; k < out->count; k++)
            out->target[k].dest = xstrdup(items.item[i]);
        /* a later next hop of a list may still serve */
        if (r != NEXTHOP_OK && (out->count > 0 || i + 1 < items.count)) {
            if (r == NEXTHOP_DEFER)
                st.soft = 1;    /* what failed for now may serve later */
            strbuf_reset(dsn);
            strbuf_reset(why);
            continue;
        }
        result = r;
    }
    if (result == NEXTHOP_OK && out->count == 0) {
        int soft = st.soft;
        strbuf_set(dsn, soft ? "4.4.3" : "5.4.4");
        strbuf_set(why, st.why.len ? st.why.s : "no address found");
        if (soft && !st.soft_why)
            /* another host's lookup failed for now: the missing address
             * may still come */
            strbuf_set(dsn, "4.4.3");
        result = soft ? NEXTHOP_DEFER : NEXTHOP_BOUNCE;
    }
    if (result == NEXTHOP_OK && opt->address_limit && out->count > opt->address_limit) {
        for (size_t i = opt->address_limit; i < out->count; i++) {
            free(out->target[i].host);
            free(out->target[i].dest);
        }
        out->count = opt->address_limit;
    }
    if (result != NEXTHOP_OK)
        nexthop_list_free(out);
    strlist_free(&items);
    strbuf_free(&err);
    strbuf_free(&st.why);
    return result;
}
