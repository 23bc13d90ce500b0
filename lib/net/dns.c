/* dns.c - the one DNS resolver: libunbound behind dns.h's three answers.
 *
 * One ub_ctx per process, made by dns_open.  Every lookup is sent
 * asynchronously and has a deadline, so none takes longer than the
 * timeout whatever the servers do; the one that misses it is cancelled
 * and answers DNS_RETRY.  dns_lookup and dns_client_name wait for their
 * answer with poll(); a program with its own poll loop starts lookups
 * with dns_*_start and calls dns_process.
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
#include "monotonic.h"

#define RCODE_NOERROR  0
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

static struct ub_ctx *resolver;
static int lookup_timeout_ms = 10000;
static int open_failed;
static char *trust_anchor_file;     /* dns_set_trust_anchor */

void dns_set_trust_anchor(const char *file)
{
    free(trust_anchor_file);
    trust_anchor_file = file && *file ? xstrdup(file) : NULL;
}

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
 * the reverse zones of loopback, private and documentation networks) with
 * NXDOMAIN or localhost; the system's resolver, which Postfix uses, asks
 * the servers (after /etc/hosts), and so do we: a site's DNS serves PTR
 * records for 10.0.0.0/8, and for 127.0.0.2 as Postfix sees it (127.0.0.1
 * stays localhost, as /etc/hosts names it). */
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
    /* loopback: what it knows (localhost, the hosts file) answered here,
     * the rest of 127.0.0.0/8 asked of the servers */
    if (!err)
        err = ub_ctx_zone_add(resolver, "127.in-addr.arpa.", "transparent");
    return err;
}

int dns_open(int timeout_ms)
{
    const char *env_timeout = getenv("POSTERN_DNS_TIMEOUT_MS");
    if (timeout_ms > 0)
        lookup_timeout_ms = timeout_ms;
    else if (env_timeout && atoi(env_timeout) > 0)
        lookup_timeout_ms = atoi(env_timeout);
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
    if (!err && trust_anchor_file) {
        err = ub_ctx_add_ta_file(resolver, trust_anchor_file);
        if (err)
            msg_warn("dns: trust anchors %s: %s", trust_anchor_file, ub_strerror(err));
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
    case DNS_T_NS:
    case DNS_T_PTR:
        if (wire_name(data, len, &pos, text, sizeof text) < 0 || pos != len)
            return NULL;
        return xstrdup(text);
    case DNS_T_TLSA: {
        if (len < 4 || len > 4096)
            return NULL;
        char *hex = xmalloc(3 * 4 + 2 * len + 1);
        int o = sprintf(hex, "%u %u %u ", data[0], data[1], data[2]);
        for (size_t i = 3; i < len; i++)
            o += sprintf(hex + o, "%02x", data[i]);
        return hex;
    }
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
    answer->secure = r->secure && !r->bogus;
    if (r->bogus) {
        answer->status = DNS_RETRY;
        answer->why = "DNSSEC validation failed";
        answer->secure = 0;
        return;
    }
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

void dns_answer_free(struct dns_answer *answer)
{
    for (size_t i = 0; i < answer->count; i++)
        free(answer->records[i].text);
    free(answer->records);
    answer->records = NULL;
    answer->count = 0;
}

static const struct { enum dns_type type; const char *name; } type_names[] = {
    { DNS_T_A, "A" }, { DNS_T_AAAA, "AAAA" }, { DNS_T_MX, "MX" },
    { DNS_T_NS, "NS" }, { DNS_T_PTR, "PTR" }, { DNS_T_TXT, "TXT" }, { DNS_T_TLSA, "TLSA" },
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

/* Would Postfix's valid_hostname() take this PTR name?  Letters, digits,
 * '-' and '_' in labels of 1..63, and not all digits and dots (a PTR
 * record naming an address is a "numeric hostname"). */
static int ptr_name_valid(const char *name)
{
    if (!*name || name[strlen(name) - 1] == '.' || !dns_labels_valid(name))
        return 0;
    return strspn(name, "0123456789.") != strlen(name);
}

/* ---- answers kept for their TTL ----
 * libunbound keeps answers for their TTL too, but reaching its cache costs
 * a round trip to its thread (about twenty syscalls per lookup, measured
 * with strace -c in the lookup service); an answer found here costs none.
 * Only answers (records, NXDOMAIN, NODATA) with a TTL above zero are kept,
 * never "try again"; so what is answered is what libunbound's cache would
 * answer.  A fixed table: a newer answer takes the slot of an older one. */
#define ANSWER_CACHE_SLOTS 1024
#define ANSWER_CACHE_TTL_MAX 86400

struct cached_answer {
    char *name;                 /* lower case; NULL: a free slot */
    enum dns_type type;
    long expires;               /* ms, monotonic */
    struct dns_answer answer;
};

static struct cached_answer answer_cache[ANSWER_CACHE_SLOTS];

static size_t cache_slot(const char *name, enum dns_type type)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;
    for (const char *c = name; *c; c++) {
        h ^= (unsigned char)tolower((unsigned char)*c);
        h *= 16777619u;
    }
    return h % ANSWER_CACHE_SLOTS;
}

static void copy_answer(struct dns_answer *to, const struct dns_answer *from)
{
    *to = *from;
    to->records = from->count ? xcalloc(from->count, sizeof *to->records) : NULL;
    for (size_t i = 0; i < from->count; i++) {
        to->records[i].pref = from->records[i].pref;
        to->records[i].text = xstrdup(from->records[i].text);
    }
}

/* 1 with a copy of the kept answer in answer, else 0. */
static int cache_find(const char *name, enum dns_type type, struct dns_answer *answer)
{
    struct cached_answer *c = &answer_cache[cache_slot(name, type)];
    if (!c->name || c->type != type || strcasecmp(c->name, name) != 0)
        return 0;
    if (c->expires <= monotonic_ms()) {
        free(c->name);
        c->name = NULL;
        dns_answer_free(&c->answer);
        return 0;
    }
    copy_answer(answer, &c->answer);
    return 1;
}

static void cache_keep(const char *name, enum dns_type type, int ttl, const struct dns_answer *answer)
{
    if (ttl <= 0 || answer->status == DNS_RETRY)
        return;
    struct cached_answer *c = &answer_cache[cache_slot(name, type)];
    free(c->name);
    dns_answer_free(&c->answer);
    c->name = xstrdup(name);
    c->type = type;
    c->expires = monotonic_ms() + 1000L * (ttl < ANSWER_CACHE_TTL_MAX ? ttl : ANSWER_CACHE_TTL_MAX);
    copy_answer(&c->answer, answer);
}

/* ---- lookups in flight ---- */

struct dns_pending {
    struct dns_pending *prev, *next;
    int ub_id;                  /* libunbound's id of the query in flight, -1 none */
    enum dns_type type;         /* of that query */
    char qname[256];            /* its name, to keep the answer */
    long deadline;              /* ms, monotonic */
    void *arg;
    dns_lookup_done *lookup_done;        /* a plain lookup */
    struct dns_answer *sync_out;         /* dns_lookup: the answer moves here */
    dns_client_name_done *name_done;     /* a client name: PTR, then A/AAAA */
    struct dns_client_name name;
    int forward_step;           /* the client name's second query is out */
    unsigned char want[16];     /* the client address, for the comparison */
    int want_v6;
};

static struct dns_pending *pending_list;

static void on_result(void *arg, int err, struct ub_result *result);
static void client_name_step(struct dns_pending *p, struct dns_answer *answer);

/* An answer that says "try again" for why. */
static void retry_answer(struct dns_answer *answer, const char *why)
{
    memset(answer, 0, sizeof *answer);
    answer->rcode = -1;
    answer->status = DNS_RETRY;
    answer->why = why;
}

/* Send one query for p; when it need not be sent (the answer is kept) or
 * cannot be, fill answer, return -1. */
static int send_query(struct dns_pending *p, const char *name, enum dns_type type,
                      struct dns_answer *answer)
{
    if (strlen(name) < sizeof p->qname && cache_find(name, type, answer))
        return -1;
    retry_answer(answer, "no resolver");
    if (!resolver && !open_failed)
        dns_open(0);
    if (!resolver)
        return -1;
    if (!*name || strlen(name) > 254) {
        answer->status = DNS_NOTFOUND;
        answer->nxdomain = 1;
        return -1;
    }
    p->type = type;
    snprintf(p->qname, sizeof p->qname, "%s", name);
    p->deadline = monotonic_ms() + lookup_timeout_ms;
    int err = ub_resolve_async(resolver, name, (int)type, 1, p, on_result, &p->ub_id);
    if (err) {
        p->ub_id = -1;
        answer->why = ub_strerror(err);
        return -1;
    }
    return 0;
}

static struct dns_pending *new_pending(void *arg)
{
    struct dns_pending *p = xcalloc(1, sizeof *p);
    p->arg = arg;
    p->ub_id = -1;
    p->next = pending_list;
    if (pending_list)
        pending_list->prev = p;
    pending_list = p;
    return p;
}

static void unlink_pending(struct dns_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pending_list = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* A query of p has its answer (or failed, or timed out): go on. */
static void finish(struct dns_pending *p, struct dns_answer *answer)
{
    p->ub_id = -1;
    if (p->name_done) {
        client_name_step(p, answer);
        dns_answer_free(answer);
        return;
    }
    unlink_pending(p);
    if (p->sync_out) {
        *p->sync_out = *answer;             /* the records move there */
    } else {
        p->lookup_done(p->arg, answer);
        dns_answer_free(answer);
    }
    free(p);
}

/* libunbound's callback (from ub_process). */
static void on_result(void *arg, int err, struct ub_result *result)
{
    struct dns_pending *p = arg;
    struct dns_answer answer;
    retry_answer(&answer, err ? ub_strerror(err) : "no result");
    if (!err && result) {
        take_result(p->type, result, &answer);
        cache_keep(p->qname, p->type, result->ttl, &answer);
    }
    if (result)
        ub_resolve_free(result);
    finish(p, &answer);
}

struct dns_pending *dns_lookup_start(const char *name, enum dns_type type,
                                     dns_lookup_done *done, void *arg)
{
    struct dns_pending *p = new_pending(arg);
    p->lookup_done = done;
    struct dns_answer answer;
    if (send_query(p, name, type, &answer) < 0) {
        finish(p, &answer);
        return NULL;
    }
    return p;
}

void dns_cancel(struct dns_pending *p)
{
    if (!p)
        return;
    if (p->ub_id >= 0 && resolver)
        ub_cancel(resolver, p->ub_id);
    unlink_pending(p);
    free(p);
}

int dns_fd(void)
{
    return resolver ? ub_fd(resolver) : -1;
}

int dns_next_deadline_ms(void)
{
    long now = monotonic_ms(), nearest = -1;
    for (struct dns_pending *p = pending_list; p; p = p->next)
        if (p->ub_id >= 0 && (nearest < 0 || p->deadline < nearest))
            nearest = p->deadline;
    if (nearest < 0)
        return -1;
    return nearest <= now ? 0 : (int)(nearest - now);
}

void dns_process(void)
{
    if (resolver && ub_poll(resolver) && ub_process(resolver) != 0)
        msg_warn("dns: the resolver failed to process answers");
    for (;;) {                  /* a callback may change the list: rescan */
        long now = monotonic_ms();
        struct dns_pending *late = pending_list;
        while (late && !(late->ub_id >= 0 && late->deadline <= now))
            late = late->next;
        if (!late)
            break;
        ub_cancel(resolver, late->ub_id);
        struct dns_answer answer;
        retry_answer(&answer, "timeout");
        finish(late, &answer);
    }
}

/* Serve the pending lookups until *flag is set. */
static void wait_for(const int *flag)
{
    while (!*flag) {
        struct pollfd pfd = { dns_fd(), POLLIN, 0 };
        if (poll(&pfd, 1, dns_next_deadline_ms()) < 0 && errno != EINTR)
            msg_warn_errno("dns: poll");
        dns_process();
    }
}

struct sync_wait {
    int done;
    struct dns_client_name *name;
};

/* Wait with poll() for the answer, which finish() moves into answer. */
void dns_lookup(const char *name, enum dns_type type, struct dns_answer *answer)
{
    struct dns_pending *p = new_pending(NULL);
    p->sync_out = answer;
    struct dns_answer failed;
    if (send_query(p, name, type, &failed) < 0) {
        finish(p, &failed);
        return;
    }
    /* finish() unlinks p when the answer is in: wait until it is gone */
    for (;;) {
        struct dns_pending *q = pending_list;
        while (q && q != p)
            q = q->next;
        if (!q)
            return;
        struct pollfd pfd = { dns_fd(), POLLIN, 0 };
        if (poll(&pfd, 1, dns_next_deadline_ms()) < 0 && errno != EINTR)
            msg_warn_errno("dns: poll");
        dns_process();
    }
}

/* The client name's lookups, one step per answer: the PTR record, then
 * the A or AAAA records of its name. */
static void client_name_step(struct dns_pending *p, struct dns_answer *answer)
{
    struct dns_client_name *n = &p->name;
    if (!p->forward_step) {
        n->reverse_status = answer->status;
        if (answer->status == DNS_FOUND) {
            snprintf(n->reverse, sizeof n->reverse, "%s", answer->records[0].text);
            if (!ptr_name_valid(n->reverse)) {
                n->reverse_status = DNS_NOTFOUND;   /* Postfix: "unknown" */
                n->reverse[0] = 0;
            }
        }
        n->forward_status = n->reverse_status;
        if (n->reverse_status == DNS_FOUND) {
            struct dns_answer failed;
            p->forward_step = 1;
            if (send_query(p, n->reverse, p->want_v6 ? DNS_T_AAAA : DNS_T_A, &failed) == 0)
                return;
            client_name_step(p, &failed);
            dns_answer_free(&failed);       /* the kept answer's records */
            return;
        }
    } else {
        unsigned char have[16];
        int found = 0;
        for (size_t i = 0; i < answer->count && !found; i++)
            found = inet_pton(p->want_v6 ? AF_INET6 : AF_INET, answer->records[i].text,
                              have) == 1
                    && memcmp(p->want, have, p->want_v6 ? 16 : 4) == 0;
        n->forward_status = answer->status == DNS_FOUND && !found ? DNS_NOTFOUND
                                                                  : answer->status;
        if (answer->status == DNS_NOTFOUND)
            n->forward_missing = answer->nxdomain ? 2 : 1;
        if (found)
            snprintf(n->name, sizeof n->name, "%s", n->reverse);
    }
    unlink_pending(p);
    p->name_done(p->arg, n);
    free(p);
}

struct dns_pending *dns_client_name_start(const char *addr,
                                          dns_client_name_done *done, void *arg)
{
    struct dns_pending *p = new_pending(arg);
    p->name_done = done;
    snprintf(p->name.addr, sizeof p->name.addr, "%s", addr);
    char rev[80];
    struct dns_answer failed;
    p->want_v6 = inet_pton(AF_INET, addr, p->want) != 1;
    if ((p->want_v6 && inet_pton(AF_INET6, addr, p->want) != 1)
        || dns_reverse_name(addr, rev, sizeof rev) < 0) {
        retry_answer(&failed, NULL);
        failed.status = DNS_NOTFOUND;
        client_name_step(p, &failed);
        return NULL;
    }
    if (send_query(p, rev, DNS_T_PTR, &failed) < 0) {
        client_name_step(p, &failed);
        dns_answer_free(&failed);
        return NULL;
    }
    return p;
}

/* dns_client_name's callback: copy the result out. */
static void sync_name_done(void *arg, const struct dns_client_name *name)
{
    struct sync_wait *w = arg;
    *w->name = *name;
    w->done = 1;
}

void dns_client_name(const char *addr, struct dns_client_name *out)
{
    struct sync_wait w = { 0, out };
    dns_client_name_start(addr, sync_name_done, &w);
    wait_for(&w.done);
}
