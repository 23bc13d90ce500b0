/* dns.c - the one DNS resolver: libunbound behind dns.h's three answers.
 *
 * One ub_ctx per process, made by dns_open.  A lookup is sent
 * asynchronously and waited for with poll() until its deadline, so no
 * lookup takes longer than the timeout whatever the servers do; the
 * lookup that misses it is cancelled and answers DNS_RETRY.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

#include "dns.h"
#include "log.h"
#include "xalloc.h"

#define RCODE_NOERROR  0
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

static struct ub_ctx *resolver;
static int lookup_timeout_ms = 10000;
static int open_failed;

/* Point the context at the servers POSTERN_DNS_SERVER names; -1 on error. */
static int use_forwarders(const char *list)
{
    char buf[1024];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    int n = 0;
    for (char *save, *tok = strtok_r(buf, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        int err = ub_ctx_set_fwd(resolver, tok);
        if (err) {
            msg_warn("dns: forwarder %s: %s", tok, ub_strerror(err));
            return -1;
        }
        n++;
    }
    return n ? 0 : -1;
}

/* libunbound answers some names itself (RFC 6761's test. and invalid.,
 * the reverse zones of private and documentation networks) with NXDOMAIN;
 * the system's resolver, which Postfix uses, asks the servers, and so do
 * we: a site's DNS serves PTR records for 10.0.0.0/8. */
static int ask_servers_everything(void)
{
    static const char *const zones[] = {
        "test.", "invalid.", "onion.", "home.arpa.", "resolver.arpa.",
        "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
        "113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
    };
    int err = ub_ctx_set_option(resolver, "unblock-lan-zones:", "yes");
    if (!err)
        err = ub_ctx_set_option(resolver, "insecure-lan-zones:", "yes");
    /* ub_ctx_zone_remove makes the context final: options come first */
    for (size_t i = 0; !err && i < sizeof zones / sizeof *zones; i++) {
        err = ub_ctx_zone_remove(resolver, zones[i]);
        if (err == UB_NOERROR || err == UB_SYNTAX)   /* not a zone here */
            err = 0;
    }
    return err;
}

int dns_open(int timeout_ms)
{
    if (timeout_ms > 0)
        lookup_timeout_ms = timeout_ms;
    if (resolver)
        return 0;
    resolver = ub_ctx_create();
    if (!resolver) {
        msg_warn("dns: cannot create a resolver context");
        open_failed = 1;
        return -1;
    }
    int err = ub_ctx_async(resolver, 1);    /* a thread, not a process */
    const char *servers = getenv("POSTERN_DNS_SERVER");
    if (!err && servers && *servers) {
        if (use_forwarders(servers) < 0)
            err = UB_SYNTAX;
    } else if (!err) {
        err = ub_ctx_resolvconf(resolver, NULL);
        if (!err)
            err = ub_ctx_hosts(resolver, NULL);
        if (err == UB_READFILE)     /* no /etc/hosts: not fatal */
            err = 0;
    }
    if (!err)
        err = ask_servers_everything();
    if (err) {
        msg_warn("dns: resolver set-up failed: %s", ub_strerror(err));
        ub_ctx_delete(resolver);
        resolver = NULL;
        open_failed = 1;
        return -1;
    }
    return 0;
}

struct pending {
    int done;
    int err;
    struct ub_result *result;
};

/* libunbound's callback: keep the result for dns_lookup. */
static void on_result(void *arg, int err, struct ub_result *result)
{
    struct pending *p = arg;
    p->done = 1;
    p->err = err;
    p->result = result;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Decode an uncompressed wire-format name at data[*pos] into out, without
 * the final dot; -1 when it is malformed or too long. */
static int wire_name(const unsigned char *data, size_t len, size_t *pos,
                     char *out, size_t size)
{
    size_t o = 0;
    for (;;) {
        if (*pos >= len)
            return -1;
        unsigned label = data[(*pos)++];
        if (label == 0)
            break;
        if (label > 63 || *pos + label > len || o + label + 2 > size)
            return -1;
        if (o)
            out[o++] = '.';
        for (unsigned i = 0; i < label; i++) {
            unsigned char c = data[(*pos)++];
            out[o++] = (c == '.' || c < 0x21 || c > 0x7e) ? '?' : (char)c;
        }
    }
    if (o == 0)
        out[o++] = '.';         /* the root: "MX 0 ." is a null MX */
    out[o] = 0;
    return 0;
}

/* One record's rdata as text; NULL when it is malformed. */
static char *record_text(enum dns_type type, const unsigned char *data,
                         size_t len, unsigned *pref)
{
    char text[INET6_ADDRSTRLEN > 1024 ? INET6_ADDRSTRLEN : 1024];
    size_t pos = 0;
    *pref = 0;
    switch (type) {
    case DNS_T_A:
        if (len != 4 || !inet_ntop(AF_INET, data, text, sizeof text))
            return NULL;
        return xstrdup(text);
    case DNS_T_AAAA:
        if (len != 16 || !inet_ntop(AF_INET6, data, text, sizeof text))
            return NULL;
        return xstrdup(text);
    case DNS_T_MX:
        if (len < 3)
            return NULL;
        *pref = (unsigned)data[0] << 8 | data[1];
        pos = 2;
        /* fall through */
    case DNS_T_PTR:
        if (wire_name(data, len, &pos, text, sizeof text) < 0 || pos != len)
            return NULL;
        return xstrdup(text);
    case DNS_T_TXT: {
        char *joined = xmalloc(len + 1);
        size_t o = 0;
        while (pos < len) {
            size_t n = data[pos++];
            if (pos + n > len) {
                free(joined);
                return NULL;
            }
            memcpy(joined + o, data + pos, n);
            o += n;
            pos += n;
        }
        joined[o] = 0;
        for (size_t i = 0; i < o; i++)      /* a NUL would cut the text */
            if (joined[i] == 0)
                joined[i] = '?';
        return joined;
    }
    }
    return NULL;
}

static int by_pref(const void *a, const void *b)
{
    const struct dns_record *x = a, *y = b;
    return (x->pref > y->pref) - (x->pref < y->pref);
}

/* Fill answer from what libunbound returned. */
static void take_result(enum dns_type type, struct ub_result *r,
                        struct dns_answer *answer)
{
    answer->rcode = r->rcode;
    if (r->rcode == RCODE_NXDOMAIN || r->nxdomain) {
        answer->status = DNS_NOTFOUND;
        answer->nxdomain = 1;
        return;
    }
    if (r->rcode != RCODE_NOERROR) {
        answer->status = DNS_RETRY;
        answer->why = r->rcode == RCODE_SERVFAIL ? "server failure"
                      : "refused or failed";
        return;
    }
    if (r->bogus) {
        answer->status = DNS_RETRY;
        answer->why = "DNSSEC validation failed";
        return;
    }
    size_t n = 0;
    while (r->havedata && r->data[n])
        n++;
    answer->records = n ? xcalloc(n, sizeof *answer->records) : NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned pref;
        char *text = record_text(type, (const unsigned char *)r->data[i],
                                 (size_t)r->len[i], &pref);
        if (!text)
            continue;           /* Postfix skips a malformed record too */
        answer->records[answer->count].pref = pref;
        answer->records[answer->count].text = text;
        answer->count++;
    }
    if (answer->count == 0) {
        answer->status = DNS_NOTFOUND;      /* NODATA */
        return;
    }
    if (type == DNS_T_MX)
        qsort(answer->records, answer->count, sizeof *answer->records, by_pref);
    answer->status = DNS_FOUND;
}

void dns_lookup(const char *name, enum dns_type type, struct dns_answer *answer)
{
    memset(answer, 0, sizeof *answer);
    answer->rcode = -1;
    answer->status = DNS_RETRY;
    if (!resolver && !open_failed)
        dns_open(0);
    if (!resolver) {
        answer->why = "no resolver";
        return;
    }
    if (!*name || strlen(name) > 253 + 1) {
        answer->status = DNS_NOTFOUND;
        answer->nxdomain = 1;
        return;
    }
    struct pending p = { 0, 0, NULL };
    int id;
    int err = ub_resolve_async(resolver, name, (int)type, 1, &p, on_result, &id);
    if (err) {
        answer->why = ub_strerror(err);
        return;
    }
    long deadline = now_ms() + lookup_timeout_ms;
    while (!p.done) {
        long left = deadline - now_ms();
        if (left <= 0) {
            ub_cancel(resolver, id);
            answer->why = "timeout";
            return;
        }
        struct pollfd pfd = { ub_fd(resolver), POLLIN, 0 };
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno != EINTR) {
            ub_cancel(resolver, id);
            answer->why = "poll failed";
            return;
        }
        if (ready > 0 && ub_process(resolver) != 0) {
            if (!p.done)
                ub_cancel(resolver, id);
            answer->why = "resolver failed";
            return;
        }
    }
    if (p.err || !p.result) {
        answer->why = ub_strerror(p.err);
        if (p.result)
            ub_resolve_free(p.result);
        return;
    }
    take_result(type, p.result, answer);
    ub_resolve_free(p.result);
}

void dns_answer_free(struct dns_answer *answer)
{
    for (size_t i = 0; i < answer->count; i++)
        free(answer->records[i].text);
    free(answer->records);
    answer->records = NULL;
    answer->count = 0;
}

int dns_reverse_name(const char *addr, char *out, size_t size)
{
    unsigned char bytes[16];
    size_t o = 0;
    int n;
    if (inet_pton(AF_INET, addr, bytes) == 1) {
        n = snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa",
                     bytes[3], bytes[2], bytes[1], bytes[0]);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    if (inet_pton(AF_INET6, addr, bytes) != 1 || size < 73)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[bytes[i] & 15];
        out[o++] = '.';
        out[o++] = hex[bytes[i] >> 4];
        out[o++] = '.';
    }
    strcpy(out + o, "ip6.arpa");
    return 0;
}

static const struct { enum dns_type type; const char *name; } type_names[] = {
    { DNS_T_A, "A" }, { DNS_T_AAAA, "AAAA" }, { DNS_T_MX, "MX" },
    { DNS_T_PTR, "PTR" }, { DNS_T_TXT, "TXT" },
};

const char *dns_type_name(enum dns_type type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return "?";
}

enum dns_type dns_type_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcasecmp(type_names[i].name, name) == 0)
            return type_names[i].type;
    return 0;
}

/* Does addr appear among name's addresses of its family?  Sets *status. */
static int confirms(const char *name, const char *addr, enum dns_status *status)
{
    unsigned char want[16], have[16];
    int v6 = inet_pton(AF_INET, addr, want) != 1;
    if (v6 && inet_pton(AF_INET6, addr, want) != 1) {
        *status = DNS_NOTFOUND;
        return 0;
    }
    struct dns_answer answer;
    dns_lookup(name, v6 ? DNS_T_AAAA : DNS_T_A, &answer);
    *status = answer.status;
    int found = 0;
    for (size_t i = 0; i < answer.count && !found; i++)
        found = inet_pton(v6 ? AF_INET6 : AF_INET, answer.records[i].text, have) == 1
                && memcmp(want, have, v6 ? 16 : 4) == 0;
    dns_answer_free(&answer);
    if (answer.status == DNS_FOUND && !found)
        *status = DNS_NOTFOUND;
    return found;
}

/* Would Postfix's valid_hostname() take this PTR name?  Letters, digits,
 * '-' and '_' in labels of 1..63, and not all digits and dots (a PTR
 * record naming an address is a "numeric hostname"). */
static int ptr_name_valid(const char *name)
{
    size_t label = 0;
    int numeric = 1;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (!label)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++label > 63)
                return 0;
            if (!isdigit((unsigned char)*p))
                numeric = 0;
        } else {
            return 0;
        }
    }
    return label && !numeric;
}

void dns_client_name(const char *addr, struct dns_client_name *out)
{
    char rev[80];
    memset(out, 0, sizeof *out);
    out->forward_status = DNS_NOTFOUND;
    if (dns_reverse_name(addr, rev, sizeof rev) < 0) {
        out->reverse_status = DNS_NOTFOUND;
        return;
    }
    struct dns_answer answer;
    dns_lookup(rev, DNS_T_PTR, &answer);
    out->reverse_status = answer.status;
    if (answer.status == DNS_FOUND) {
        snprintf(out->reverse, sizeof out->reverse, "%s", answer.records[0].text);
    }
    dns_answer_free(&answer);
    if (out->reverse_status == DNS_FOUND && !ptr_name_valid(out->reverse)) {
        out->reverse_status = DNS_NOTFOUND;     /* Postfix: "unknown" */
        out->reverse[0] = 0;
    }
    if (out->reverse_status != DNS_FOUND) {
        out->forward_status = out->reverse_status;
        return;
    }
    enum dns_status status;
    if (confirms(out->reverse, addr, &status)) {
        out->forward_status = DNS_FOUND;
        snprintf(out->name, sizeof out->name, "%s", out->reverse);
        return;
    }
    out->forward_status = status;
}
