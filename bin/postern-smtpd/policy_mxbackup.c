/* policy_mxbackup.c - permit_mx_backup, as Postfix's smtpd_check: a
 * recipient domain we take mail for passes (as permit_auth_destination);
 * else one whose MX hosts name this machine, by name (mydestination) or
 * by address (inet_interfaces, proxy_interfaces), among the backups and
 * not among the best (primary) hosts; with permit_mx_backup_networks,
 * only when every address of every primary host is in those networks.
 * A lookup that fails keeps a defer_if_reject deferral (450 4.4.4), so a
 * later refusal becomes "try again".  The DNS goes through the lookup
 * service, as the other DNS checks (policy_dns.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"
#include "xalloc.h"

struct mx_host {
    long pref;
    const char *name;           /* points into the lookup's answer */
};

static int by_pref(const void *a, const void *b)
{
    const struct mx_host *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* The hosts of an MX answer ("PREF HOST" lines, changed in place), best
 * first; the null MX "." is no host. */
static size_t mx_hosts(char *lines, struct mx_host **out)
{
    size_t count = 0;
    char *save = NULL;
    *out = NULL;
    for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *end;
        long pref = strtol(line, &end, 10);
        while (*end == ' ')
            end++;
        size_t len = strlen(end);
        if (end == line || !len || strcmp(end, ".") == 0)
            continue;
        if (end[len - 1] == '.')
            end[len - 1] = 0;
        *out = xreallocarray(*out, count + 1, sizeof **out);
        (*out)[count++] = (struct mx_host){pref, end};
    }
    if (count)
        qsort(*out, count, sizeof **out, by_pref);
    return count;
}

/* The addresses of a host (A, then AAAA), one a line: 1; 0 when it has
 * none, with the resolver's words for why (getaddrinfo's when
 * `getaddrinfo_words`, else the DNS's). */
static int host_addresses(const char *host, struct strbuf *addrs, int getaddrinfo_words,
                          const char **why)
{
    static const enum dns_type types[2] = {DNS_T_A, DNS_T_AAAA};
    struct strbuf value = STRBUF_INIT;
    int retry = 0, nxdomain = 0;
    strbuf_reset(addrs);
    for (int t = 0; t < 2; t++) {
        int r = policy_dns_ask(types[t], host, &value);
        retry |= r == MAP_RETRY;
        nxdomain |= r == MAP_NOTFOUND && strcmp(strbuf_str(&value), "nxdomain") == 0;
        if (r == MAP_FOUND) {
            strbuf_puts(addrs, strbuf_str(&value));
            strbuf_putc(addrs, '\n');
        }
    }
    strbuf_free(&value);
    if (addrs->len)
        return 1;
    if (getaddrinfo_words)
        *why = retry ? "Temporary failure in name resolution"
               : nxdomain ? "Name or service not known" : "No address associated with hostname";
    else
        *why = retry ? "Host not found, try again"
               : nxdomain ? "Host not found" : "Host found but no data record of requested type";
    return 0;
}

/* Keep a deferral "<rcpt>: Recipient address rejected: TEXT" for a later
 * refusal (the first one kept stands). */
static void defer_mx(struct check_ctx *ctx, const char *text)
{
    policy_defer_if_reject(ctx, SUBJ_RECIPIENT, 450, "4.4.4", text);
}

/* Is one of these hosts this machine?  By name first, then by address. */
static int i_am_mx(struct check_ctx *ctx, const struct mx_host *hosts, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        enum dest_class cls;
        if (destination_domain_class(hosts[i].name, &cls) == 0 && cls == DEST_LOCAL)
            return 1;
    }
    struct strbuf addrs = STRBUF_INIT;
    int mine = 0;
    for (size_t i = 0; i < count && !mine; i++) {
        const char *why;
        if (!host_addresses(hosts[i].name, &addrs, 1, &why)) {
            char text[600];
            snprintf(text, sizeof text, "Unable to look up mail exchanger host %s: %s", hosts[i].name, why);
            defer_mx(ctx, text);
            continue;
        }
        char *save = NULL;
        for (char *a = strtok_r(addrs.s, "\n", &save); a && !mine; a = strtok_r(NULL, "\n", &save))
            mine = destination_own_address(a) == 1;
    }
    strbuf_free(&addrs);
    return mine;
}

/* Is every address of every primary host in permit_mx_backup_networks? */
static int primaries_allowed(struct check_ctx *ctx, const struct mx_host *hosts, size_t count)
{
    struct strbuf addrs = STRBUF_INIT;
    int allowed = 1;
    for (size_t i = 0; i < count && allowed; i++) {
        const char *why;
        char text[600];
        if (!host_addresses(hosts[i].name, &addrs, 0, &why)) {
            snprintf(text, sizeof text, "Unable to look up host %s as mail exchanger: %s", hosts[i].name, why);
            defer_mx(ctx, text);
            allowed = 0;
            break;
        }
        char *save = NULL;
        for (char *a = strtok_r(addrs.s, "\n", &save); a && allowed; a = strtok_r(NULL, "\n", &save)) {
            int r = policy_list_match(ctx->s, "permit_mx_backup_networks", hosts[i].name, a);
            if (r < 0) {
                msg_warn("permit_mx_primary: permit_mx_backup_networks lookup error for address %s for %s",
                         a, hosts[i].name);
                snprintf(text, sizeof text, "Unable to verify host %s as mail exchanger", hosts[i].name);
                defer_mx(ctx, text);
            }
            allowed = r == 1;
        }
    }
    strbuf_free(&addrs);
    return allowed;
}

enum verdict check_permit_mx_backup(struct check_ctx *ctx, const char *table)
{
    (void)table;
    if (!ctx->recipient)
        return V_DUNNO;
    struct destination d = DESTINATION_INIT;
    if (policy_resolve_recipient(ctx->recipient, &d) != 0) {
        destination_free(&d);
        return temp_failure(ctx, SUBJ_RECIPIENT);
    }
    enum verdict v = V_DUNNO;
    const char *domain = strbuf_str(&d.domain);
    if (d.routed && !conf_bool("allow_untrusted_routing"))
        v = V_DUNNO;            /* a source route: no telling where it goes */
    else if (d.dest_class != DEST_DEFAULT || !*domain)
        v = V_OK;               /* ours, or relayed for: permit_auth_destination */
    else if (*domain != '[') {
        struct strbuf answer = STRBUF_INIT;
        int r = policy_dns_ask(DNS_T_MX, domain, &answer);
        if (r == MAP_RETRY)
            defer_mx(ctx, "Unable to look up mail exchanger information: Host not found, try again");
        struct mx_host *hosts = NULL;
        size_t count = r == MAP_FOUND ? mx_hosts(answer.s, &hosts) : 0, primaries = 0;
        while (primaries < count && hosts[primaries].pref == hosts[0].pref)
            primaries++;
        if (count && !i_am_mx(ctx, hosts, primaries) && primaries < count
            && i_am_mx(ctx, hosts + primaries, count - primaries)
            && (!*conf_str("permit_mx_backup_networks") || primaries_allowed(ctx, hosts, primaries)))
            v = V_OK;
        free(hosts);
        strbuf_free(&answer);
    }
    destination_free(&d);
    return v;
}
