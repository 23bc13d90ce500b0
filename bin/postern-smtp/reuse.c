/* reuse.c - connection reuse, as Postfix's connection cache does it for
 * smtp(8), inside one reuse-mode runner process: after a transaction that
 * ended cleanly the session stays open when more mail waits for the same
 * next hop (qmgr says so with a W record: smtp_connection_cache_on_demand)
 * or the next hop is in smtp_connection_cache_destinations; qmgr hands the
 * next request for that next hop to this runner first (pool.c), which
 * sends RSET and the next transaction without connect, greeting, EHLO,
 * STARTTLS or AUTH.  A kept session is closed (QUIT) after
 * smtp_connection_cache_time_limit idle, when the server closes it, when
 * it is older than smtp_connection_reuse_time_limit, or after
 * smtp_connection_reuse_count_limit reuses.  One session is kept at a
 * time; with sender-dependent AUTH a session serves only its sender.
 * LMTP reads the lmtp_ names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "config.h"
#include "domainlist.h"
#include "log.h"
#include "monotonic.h"
#include "smtp.h"
#include "xalloc.h"

struct reuse_setup {
    int on_demand;                      /* smtp_connection_cache_on_demand */
    struct domainlist *destinations;    /* smtp_connection_cache_destinations; NULL: none */
    long long idle_ms;                  /* smtp_connection_cache_time_limit */
    long long reuse_ms;                 /* smtp_connection_reuse_time_limit */
    long long count_limit;              /* smtp_connection_reuse_count_limit; 0: none */
};

static struct smtp_session *kept;       /* the kept session, or NULL */
static struct strbuf kept_label = STRBUF_INIT;  /* next hop (and sender) it serves */

/* A parameter's name for this protocol. */
static const char *param(const struct smtp_setup *setup, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s_%s", setup->proto, name);
    return buf;
}

void reuse_setup(struct smtp_setup *setup)
{
    char name[64];
    struct reuse_setup *r = xcalloc(1, sizeof *r);
    r->on_demand = conf_bool(param(setup, "connection_cache_on_demand", name, sizeof name));
    r->idle_ms = conf_time(param(setup, "connection_cache_time_limit", name, sizeof name)) * 1000;
    r->reuse_ms = conf_time(param(setup, "connection_reuse_time_limit", name, sizeof name)) * 1000;
    r->count_limit = conf_int(param(setup, "connection_reuse_count_limit", name, sizeof name));
    const char *list = conf_str(param(setup, "connection_cache_destinations", name, sizeof name));
    if (*list) {
        struct strbuf err = STRBUF_INIT;
        if (!(r->destinations = domainlist_open(name, list, &err)))
            msg_warn("%s: %s: not used", name, err.s);
        strbuf_free(&err);
    }
    setup->reuse = r;
}

/* What a session is kept for: the next hop, and the sender when the
 * credentials depend on it. */
static void label(const struct smtp_setup *setup, const struct smtp_batch *b, struct strbuf *out)
{
    strbuf_set(out, b->nexthop);
    if (sasl_sender_dependent(setup)) {
        strbuf_putc(out, '\n');
        strbuf_puts(out, b->req->sender);
    }
}

/* The kept session idled too long, or the server spoke or closed it. */
static void expire(void)
{
    if (!kept)
        return;
    struct smtp_session *s = kept;
    kept = NULL;
    session_close(s);
}

void reuse_close(void)
{
    runner_idle_watch(-1, 0, NULL);
    expire();
}

int same_server_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port
               && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    if (a->ss_family == AF_UNIX) {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        return strcmp(x->sun_path, y->sun_path) == 0;
    }
    return 0;
}

int reuse_deliver(const struct smtp_setup *setup, struct smtp_batch *batch,
                  struct sockaddr_storage *server)
{
    if (!kept)
        return 0;
    struct strbuf want = STRBUF_INIT;
    label(setup, batch, &want);
    int same = strcmp(want.s, kept_label.s) == 0;
    strbuf_free(&want);
    if (!same)
        return 0;           /* kept for another next hop: it expires on its own */
    runner_idle_watch(-1, 0, NULL);
    struct smtp_session *s = kept;
    kept = NULL;
    s->uses++;
    *server = s->own_target.sa;
    return session_again(s, batch);
}

int reuse_keep(struct smtp_session *s)
{
    const struct smtp_setup *setup = s->setup;
    const struct reuse_setup *r = setup->reuse;
    struct smtp_batch *b = s->batch;
    if (!r || !s->batch->req->request_mode || s->conn.fd < 0 || s->conn.error != SMTP_IO_OK
        || s->reply.code == 421 || s->plaintext_fallback)
        return 0;           /* shell mode, a session that is not sound, or one
                               in clear after a failed handshake (the next
                               message tries TLS first) */
    const char *waiting = runner_record(&b->req->records, 'W');
    int wanted = r->on_demand && waiting && atoi(waiting) > 0;
    if (!wanted && r->destinations) {
        /* the list names next hops as relayhost and transport_maps do */
        const char *hop = b->nexthop;
        char bare[300];
        size_t n = strcspn(hop[0] == '[' ? hop + 1 : hop, "]:");
        snprintf(bare, sizeof bare, "%.*s", (int)n, hop[0] == '[' ? hop + 1 : hop);
        wanted = domainlist_match(r->destinations, hop) == 1
                 || domainlist_match(r->destinations, bare) == 1;
    }
    long long now = monotonic_ms();
    if (!wanted || now - s->born_ms >= r->reuse_ms
        || (r->count_limit > 0 && s->uses >= (unsigned long long)r->count_limit))
        return 0;
    if (kept)
        expire();           /* one kept session: the newest */
    label(setup, b, &kept_label);
    s->batch = NULL;        /* the batch ends; the session does not */
    kept = s;
    runner_idle_watch(s->conn.fd, now + (r->idle_ms > 0 ? r->idle_ms : 1), expire);
    return 1;
}
