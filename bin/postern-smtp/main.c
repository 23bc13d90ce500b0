/* postern-smtp - the SMTP and LMTP delivery runner, as Postfix's smtp(8)
 * and lmtp(8): one program, which speaks LMTP when started under the name
 * postern-lmtp (a link).  qmgr hands it a message and a batch of
 * recipients for one next hop (interface 4, doc/delivery.md, through
 * lib/mail/runner.h); it finds the servers of the next hop (MX records,
 * [host]:port, unix:/path: lib/net/nexthop.c), talks to them in turn
 * (session.c, with STARTTLS from tls.c) and answers one result per
 * recipient with the server's reply kept as Postfix logs it.  See
 * doc/postern-smtp.8.
 *
 * It is linked dynamically, unlike the other runners: it asks the DNS
 * itself through lib/net/dns.c (libunbound, which a static program cannot
 * link).  One runner process serves many deliveries (reuse mode), so the
 * dynamic start-up is paid once per max_use requests; its own resolver
 * keeps NXDOMAIN apart from NODATA and will see DNSSEC's verdict, which
 * DANE needs, and mail keeps flowing when the lookup service is down.
 * Nothing in it calls the name service (getaddrinfo and the like).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <libgen.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "resolve.h"
#include "smtp.h"
#include "strlist.h"
#include "xalloc.h"

static struct resolver *own_resolver;   /* for inet_interfaces: the MX loop check */

/* A parameter's name for this protocol: smtp_NAME or lmtp_NAME (lmtp says
 * lhlo where smtp says helo). */
static const char *pname(const struct smtp_setup *s, const char *name)
{
    static char buf[128];
    if (s->lmtp && strncmp(name, "helo_", 5) == 0)
        snprintf(buf, sizeof buf, "lmtp_lhlo_%s", name + 5);
    else
        snprintf(buf, sizeof buf, "%s_%s", s->proto, name);
    return buf;
}

/* A timeout parameter in seconds; 0 (lmtp_connect_timeout's default)
 * means no limit of our own. */
static int timeout_param(const struct smtp_setup *s, const char *name)
{
    long long v = conf_time(pname(s, name));
    return v < 1 || v > 86400 ? 86400 : (int)v;
}

/* The numeric source address of smtp_bind_address(6); "" is none. */
static void bind_param(struct smtp_setup *s, const char *name, int family,
                       struct sockaddr_storage *sa, socklen_t *len)
{
    const char *value = conf_str(pname(s, name));
    *len = 0;
    if (!*value)
        return;
    memset(sa, 0, sizeof *sa);
    if (family == AF_INET && inet_pton(AF_INET, value, &((struct sockaddr_in *)sa)->sin_addr) == 1) {
        sa->ss_family = AF_INET;
        *len = sizeof(struct sockaddr_in);
    } else if (family == AF_INET6
               && inet_pton(AF_INET6, value, &((struct sockaddr_in6 *)sa)->sin6_addr) == 1) {
        sa->ss_family = AF_INET6;
        *len = sizeof(struct sockaddr_in6);
    } else {
        msg_warn("%s: not a numeric %s address: \"%s\"", pname(s, name),
                 family == AF_INET ? "IPv4" : "IPv6", value);
        s->broken = 1;
    }
}

/* Own addresses through the resolver's reading of inet_interfaces. */
static int own_address(int family, const void *bytes, void *arg)
{
    (void)arg;
    return own_resolver && resolver_own_address(own_resolver, family, bytes);
}

/* Read the settings (once per process). */
static void setup_init(struct smtp_setup *s, int lmtp)
{
    memset(s, 0, sizeof *s);
    s->lmtp = lmtp;
    s->proto = lmtp ? "lmtp" : "smtp";
    s->myhostname = conf_str("myhostname");
    s->helo_name = conf_str(pname(s, "helo_name"));
    if (!*s->helo_name)
        s->helo_name = s->myhostname;
    s->connect_timeout = timeout_param(s, "connect_timeout");
    s->helo_timeout = timeout_param(s, "helo_timeout");
    s->mail_timeout = timeout_param(s, "mail_timeout");
    s->rcpt_timeout = timeout_param(s, "rcpt_timeout");
    s->data_init_timeout = timeout_param(s, "data_init_timeout");
    s->data_xfer_timeout = timeout_param(s, "data_xfer_timeout");
    s->data_done_timeout = timeout_param(s, "data_done_timeout");
    s->quit_timeout = timeout_param(s, "quit_timeout");
    s->starttls_timeout = timeout_param(s, "starttls_timeout");
    s->skip_5xx_greeting = conf_bool(pname(s, "skip_5xx_greeting"));
    s->never_send_ehlo = !lmtp && conf_bool("smtp_never_send_ehlo");
    s->session_limit = (int)conf_int(pname(s, "mx_session_limit"));
    s->smtputf8_enable = conf_bool("smtputf8_enable");
    s->mime_output_conversion = !conf_bool("disable_mime_output_conversion");
    s->send_xforward = conf_bool(pname(s, "send_xforward_command"));
    s->downgrade.nesting_limit = (long)conf_int("mime_nesting_limit");
    long long bound = conf_int("mime_boundary_length_limit");
    s->downgrade.boundary_limit = bound < 1 ? 2048 : (size_t)bound;
    long long header_limit = conf_int("header_size_limit");
    s->downgrade.header_limit = header_limit < 1024 ? 1024 : (size_t)header_limit;
    s->fallback_relay = conf_str(pname(s, "fallback_relay"));
    /* smtp_discard_ehlo_keywords (lmtp_discard_lhlo_keywords) and their
     * address maps: features the runner acts as if the server had not
     * offered (session_features) */
    s->discard_ehlo = conf_str(lmtp ? "lmtp_discard_lhlo_keywords" : "smtp_discard_ehlo_keywords");
    const char *maps = conf_str(lmtp ? "lmtp_discard_lhlo_keyword_address_maps"
                                     : "smtp_discard_ehlo_keyword_address_maps");
    struct strbuf maps_err = STRBUF_INIT;
    if (*maps && !(s->discard_ehlo_maps = maplist_open(maps, &maps_err))) {
        msg_warn("%s: %s", lmtp ? "lmtp_discard_lhlo_keyword_address_maps"
                                : "smtp_discard_ehlo_keyword_address_maps", maps_err.s);
        s->broken = 1;
    }
    strbuf_free(&maps_err);
    bind_param(s, "bind_address", AF_INET, &s->bind4, &s->bind4_len);
    bind_param(s, "bind_address6", AF_INET6, &s->bind6, &s->bind6_len);

    struct nexthop_options *o = &s->nexthop;
    o->lmtp = lmtp;
    o->use_mx = !lmtp;
    o->base_directory = conf_str("queue_directory");
    struct strlist lookup = STRLIST_INIT;
    conf_list(pname(s, "host_lookup"), &lookup);
    int dns = 0;
    for (size_t i = 0; i < lookup.count; i++)
        if (strcasecmp(lookup.item[i], "dns") == 0)
            dns = 1;
    if (!dns && lookup.count)
        msg_warn("%s = %s: only dns is implemented; host names are looked up in the DNS",
                 pname(s, "host_lookup"), conf_str(pname(s, "host_lookup")));
    strlist_free(&lookup);
    o->default_port = nexthop_port(conf_str(pname(s, "tcp_port")));
    if (o->default_port < 0) {
        msg_warn("%s: unknown port \"%s\"", pname(s, "tcp_port"), conf_str(pname(s, "tcp_port")));
        s->broken = 1;
    }
    struct strlist protocols = STRLIST_INIT;
    conf_list("inet_protocols", &protocols);
    for (size_t i = 0; i < protocols.count; i++) {
        if (strcasecmp(protocols.item[i], "all") == 0)
            o->ipv4 = o->ipv6 = 1;
        else if (strcasecmp(protocols.item[i], "ipv4") == 0)
            o->ipv4 = 1;
        else if (strcasecmp(protocols.item[i], "ipv6") == 0)
            o->ipv6 = 1;
    }
    strlist_free(&protocols);
    if (!o->ipv4 && !o->ipv6)
        o->ipv4 = 1;
    o->prefer_ipv6 = strcasecmp(conf_str(pname(s, "address_preference")), "ipv6") == 0;
    o->randomize = conf_bool(pname(s, "randomize_addresses"));
    long long limit = conf_int(pname(s, "mx_address_limit"));
    o->address_limit = limit > 0 ? (size_t)limit : 0;
    o->myhostname = s->myhostname;
    o->own_address = own_address;
    if (!lmtp) {
        struct strbuf err = STRBUF_INIT;
        own_resolver = resolver_open(&err);
        if (!own_resolver)
            msg_warn("cannot read inet_interfaces for the MX loop check: %s", err.s);
        strbuf_free(&err);
    }
    if (tls_client_setup(s) != 0)
        s->broken = 1;
    if (sasl_client_setup(s) != 0)
        s->broken = 1;
    reuse_setup(s);
    dns_open(0);
}

/* Keep one recipient's result: a final one, or a "try again" that the
 * next server may still change (see smtp.h).  The results go to qmgr in
 * request order when the batch is done (deliver_batch). */
static void result_v(struct smtp_batch *b, size_t k, const char *relay, int final,
                     const char *dsn, const char *fmt, va_list ap)
{
    if (b->state[k] == RCPT_FINAL)
        return;
    strbuf_reset(&b->soft_text[k]);
    strbuf_vprintf(&b->soft_text[k], fmt, ap);
    strbuf_set(&b->soft_dsn[k], dsn);
    strbuf_set(&b->soft_relay[k], relay ? relay : "none");
    b->state[k] = final || dsn[0] != '4' ? RCPT_FINAL : RCPT_PENDING;
}

void batch_result(struct smtp_batch *b, size_t k, const char *relay, int final,
                  const char *dsn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_v(b, k, relay, final, dsn, fmt, ap);
    va_end(ap);
}

void batch_result_open(struct smtp_batch *b, const char *relay, int final, const char *dsn,
                       const char *fmt, ...)
{
    for (size_t k = 0; k < b->count; k++) {
        va_list ap;
        va_start(ap, fmt);
        result_v(b, k, relay, final, dsn, fmt, ap);
        va_end(ap);
    }
}

/* How many recipients of the batch are still open. */
static size_t batch_open(const struct smtp_batch *b)
{
    size_t open = 0;
    for (size_t k = 0; k < b->count; k++)
        open += b->state[k] != RCPT_FINAL;
    return open;
}

/* Try the servers of a target list in turn while recipients are open,
 * within smtp_mx_session_limit. */
static void try_targets(const struct smtp_setup *setup, struct smtp_batch *b,
                        const struct nexthop_list *targets, const struct sockaddr_storage *reused)
{
    for (size_t t = 0; t < targets->count && batch_open(b); t++) {
        if (setup->session_limit > 0 && b->sessions >= (size_t)setup->session_limit)
            break;
        /* the server of a kept session had its try already */
        if (reused->ss_family && same_server_address(&targets->target[t].sa, reused))
            continue;
        int last = t + 1 == targets->count
                   || (setup->session_limit > 0 && b->sessions + 1 >= (size_t)setup->session_limit);
        if (session_deliver(setup, b, &targets->target[t], last))
            b->sessions++;
    }
}

/* Deliver recipients idx[0..n) of the request to one next hop. */
static void deliver_batch(const struct smtp_setup *setup, struct runner_request *req,
                          const char *nexthop, size_t *idx, size_t n)
{
    struct smtp_batch b = {.req = req, .nexthop = nexthop, .index = idx, .count = n};
    b.state = xcalloc(n, sizeof *b.state);
    b.soft_dsn = xcalloc(n, sizeof *b.soft_dsn);
    b.soft_text = xcalloc(n, sizeof *b.soft_text);
    b.soft_relay = xcalloc(n, sizeof *b.soft_relay);
    b.server_dsn = xcalloc(n ? n : 1, 1);
    struct strbuf dsn = STRBUF_INIT, why = STRBUF_INIT;
    struct nexthop_list targets = {NULL, 0, 0};
    int site_trouble = 0;               /* the next hop failed as a whole */
    if (setup->broken) {
        batch_result_open(&b, "none", 1, "4.3.5", "mail system configuration error");
        goto out;
    }
    if (!*nexthop) {
        batch_result_open(&b, "none", 1, "4.3.5", "no next hop for this delivery");
        goto out;
    }
    /* a session kept from the last request to this next hop comes first */
    struct sockaddr_storage reused = {0};
    if (reuse_deliver(setup, &b, &reused)) {
        b.sessions++;
        if (!batch_open(&b))
            goto out;
    }
    enum nexthop_result r = nexthop_find(nexthop, &setup->nexthop, &targets, &dsn, &why);
    /* smtp_fallback_relay: after every server of the next hop, unless we
     * are one of its MX hosts (mail would go round) */
    int fallback = *setup->fallback_relay && !targets.self_mx
                   && !(r == NEXTHOP_BOUNCE && strcmp(dsn.s, "5.1.10") == 0);   /* null MX */
    if (r != NEXTHOP_OK && !fallback) {
        batch_result_open(&b, "none", 1, dsn.s, "%s", why.s);
        site_trouble = r == NEXTHOP_DEFER;
        goto out;
    }
    if (r == NEXTHOP_OK)
        try_targets(setup, &b, &targets, &reused);
    if (fallback && batch_open(&b)) {
        struct nexthop_list relays = {NULL, 0, 0};
        struct strbuf relay_dsn = STRBUF_INIT, relay_why = STRBUF_INIT;
        enum nexthop_result fr = nexthop_find(setup->fallback_relay, &setup->nexthop, &relays,
                                              &relay_dsn, &relay_why);
        if (fr == NEXTHOP_OK)
            try_targets(setup, &b, &relays, &reused);
        else if (r != NEXTHOP_OK)
            /* neither resolves: the next hop's own reason, deferred while
             * the relays' lookup may still work */
            batch_result_open(&b, "none", 1, fr == NEXTHOP_DEFER ? "4.4.3" : dsn.s, "%s", why.s);
        else
            msg_warn("smtp_fallback_relay %s: %s", setup->fallback_relay, relay_why.s);
        nexthop_list_free(&relays);
        strbuf_free(&relay_dsn);
        strbuf_free(&relay_why);
    }
    /* no server took a session: qmgr may hold the destination's other
     * mail back (Postfix's dead destination) */
    site_trouble = b.sessions == 0;
out:
    for (size_t k = 0; k < n && site_trouble; k++)
        site_trouble = b.soft_dsn[k].len && b.soft_dsn[k].s[0] == '4';
    if (site_trouble && n)
        runner_site_failure(req, b.soft_dsn[0].s, b.soft_text[0].len ? b.soft_text[0].s : "");
    /* every result in request order; what is still open waits for the
     * next attempt with its last reason */
    for (size_t k = 0; k < n; k++) {
        runner_relay(req, b.soft_relay[k].len ? b.soft_relay[k].s : "none");
        /* success notices, as Postfix's smtp(8): a server that offered DSN
         * got NOTIFY and sends them itself; to one that did not, the mail
         * was "relayed" */
        if (b.soft_dsn[k].len && b.soft_dsn[k].s[0] == '2') {
            if (b.server_dsn[k])
                runner_next_notified(req);
            else
                runner_next_relayed(req);
        }
        runner_result(req, idx[k], b.soft_dsn[k].len ? b.soft_dsn[k].s : "4.4.1", "%s",
                      b.soft_text[k].len ? b.soft_text[k].s : "no server could be reached");
    }
    for (size_t k = 0; k < n; k++) {
        strbuf_free(&b.soft_dsn[k]);
        strbuf_free(&b.soft_text[k]);
        strbuf_free(&b.soft_relay[k]);
    }
    free(b.soft_dsn);
    free(b.soft_text);
    free(b.soft_relay);
    free(b.server_dsn);
    free(b.state);
    nexthop_list_free(&targets);
    strbuf_free(&dsn);
    strbuf_free(&why);
}

/* One request: its next hop, or (in shell mode, without -H) each
 * recipient's domain. */
static void deliver_request(const struct smtp_setup *setup, struct runner_request *req,
                            const char *shell_nexthop)
{
    size_t *idx = xcalloc(req->rcpt_count ? req->rcpt_count : 1, sizeof *idx);
    const char *nexthop = *req->nexthop ? req->nexthop : shell_nexthop;
    if (nexthop && *nexthop) {
        for (size_t i = 0; i < req->rcpt_count; i++)
            idx[i] = i;
        deliver_batch(setup, req, nexthop, idx, req->rcpt_count);
    } else {
        char *done = xcalloc(req->rcpt_count ? req->rcpt_count : 1, 1);
        for (size_t i = 0; i < req->rcpt_count; i++) {
            if (done[i])
                continue;
            const char *at = strrchr(req->rcpt[i].address, '@');
            const char *domain = at ? at + 1 : "";
            size_t n = 0;
            for (size_t j = i; j < req->rcpt_count; j++) {
                const char *at_j = strrchr(req->rcpt[j].address, '@');
                if (!done[j] && strcasecmp(at_j ? at_j + 1 : "", domain) == 0) {
                    idx[n++] = j;
                    done[j] = 1;
                }
            }
            deliver_batch(setup, req, domain, idx, n);
        }
        free(done);
    }
    free(idx);
}

static const char *shell_nexthop;

/* -H NEXTHOP in shell mode. */
static int take_option(int opt, const char *arg)
{
    if (opt != 'H')
        return 0;
    shell_nexthop = arg;
    return 1;
}

int main(int argc, char **argv)
{
    /* one program: postern-lmtp is a link to postern-smtp */
    char *self = xstrdup(argv[0]);
    int lmtp = strstr(basename(self), "lmtp") != NULL;
    free(self);
    struct runner_request req;
    struct runner_options options = {"H:", take_option};
    /* a server that closes the connection is a lost connection, not a
     * SIGPIPE (OpenSSL writes with write(2)) */
    signal(SIGPIPE, SIG_IGN);
    runner_start(argc, argv, lmtp ? "lmtp" : "smtp", &options, &req);
    struct smtp_setup setup;
    setup_init(&setup, lmtp);
    do {
        deliver_request(&setup, &req, shell_nexthop);
    } while (runner_next(&req));
    reuse_close();
    if (own_resolver)
        resolver_close(own_resolver);
    return runner_finish(&req);
}
