/* dnsreq.c - DNS lookups asked of the lookup service: the tables
 * "dns:A", "dns:AAAA", "dns:MX", "dns:PTR", "dns:TXT" (key: the name) and
 * "dns:client" (key: an address; the forward-confirmed client name), for
 * the static programs, which cannot link libunbound (doc/dns.md).  They
 * need no proxy_read_maps entry.  Answered asynchronously through
 * lib/net/dns: serve.c keeps the client's later requests waiting, so each
 * client still gets its answers in order, and other clients are served
 * meanwhile.  Answers (doc/lookup.md): F records one a line (MX "PREF
 * HOST"); N not found ("nxdomain": the name does not exist, "nodata": it
 * has no record of the type); R try again; dns:client always F "REVERSE FORWARD
 * PTRNAME NAME" (statuses found/notfound/retry, and for FORWARD also
 * nodata and nxdomain: the PTR name has no address, does not exist; names
 * "unknown" when none).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "lookup_proto.h"
#include "strbuf.h"
#include "xalloc.h"

struct dnsreq {
    struct dns_pending *pending;
    enum dns_type type;         /* 0: dns:client */
    dnsreq_done *done;
    void *arg;
};

/* The table name without "proxy:" prefixes. */
static const char *bare(const char *table)
{
    while (strncmp(table, "proxy:", 6) == 0)
        table += 6;
    return table;
}

int dnsreq_is_dns(const char *table)
{
    return strncmp(bare(table), "dns:", 4) == 0;
}

static const char *status_word(enum dns_status status)
{
    return status == DNS_FOUND ? "found" : status == DNS_NOTFOUND ? "notfound" : "retry";
}

/* Hand the answer record to the client and forget the request. */
static void reply(struct dnsreq *r, struct strbuf *out)
{
    r->done(r->arg, out);
    free(r);
}

/* A lookup's records as the answer record. */
static void lookup_done(void *arg, const struct dns_answer *answer)
{
    struct dnsreq *r = arg;
    struct strbuf out = STRBUF_INIT, text = STRBUF_INIT;
    if (answer->status == DNS_FOUND) {
        for (size_t i = 0; i < answer->count; i++) {
            if (i)
                strbuf_putc(&text, '\n');
            if (r->type == DNS_T_MX)
                strbuf_printf(&text, "%u ", answer->records[i].pref);
            strbuf_puts(&text, answer->records[i].text);
        }
        lookup_reply_format(&out, LOOKUP_FOUND, strbuf_str(&text));
    } else if (answer->status == DNS_NOTFOUND) {
        /* which absence: Postfix's warnings tell them apart */
        lookup_reply_format(&out, LOOKUP_NOTFOUND, answer->nxdomain ? "nxdomain" : "nodata");
    } else {
        lookup_reply_format(&out, LOOKUP_RETRY, answer->why ? answer->why : "DNS failure");
    }
    strbuf_free(&text);
    reply(r, &out);
    strbuf_free(&out);
}

/* The client name as the answer record. */
static void client_done(void *arg, const struct dns_client_name *name)
{
    struct dnsreq *r = arg;
    struct strbuf out = STRBUF_INIT, text = STRBUF_INIT;
    /* a name without addresses, or that does not exist: Postfix says which */
    const char *forward = name->forward_status != DNS_NOTFOUND ? status_word(name->forward_status)
                          : name->forward_missing == 2 ? "nxdomain"
                          : name->forward_missing == 1 ? "nodata" : "notfound";
    strbuf_printf(&text, "%s %s %s %s", status_word(name->reverse_status), forward,
                  name->reverse[0] ? name->reverse : "unknown",
                  name->name[0] ? name->name : "unknown");
    lookup_reply_format(&out, LOOKUP_FOUND, text.s);
    strbuf_free(&text);
    reply(r, &out);
    strbuf_free(&out);
}

/* A resolver that could not be made at start (main.c) is made again, at
 * most once a second, when a DNS request comes. */
static void reopen_resolver(void)
{
    static time_t tried;
    time_t now = time(NULL);
    if (dns_fd() >= 0 || now == tried)
        return;
    tried = now;
    if (dns_open(0) == 0)
        msg_info("lookup service: the DNS resolver is ready");
}

struct dnsreq *dnsreq_start(const struct lookup_request *req, dnsreq_done *done, void *arg)
{
    reopen_resolver();
    const char *what = bare(req->table) + 4;
    struct dnsreq *r = xcalloc(1, sizeof *r);
    r->done = done;
    r->arg = arg;
    struct dns_pending *pending;    /* NULL: answered, and r freed, already */
    if (strcasecmp(what, "client") == 0) {
        pending = dns_client_name_start(req->key, client_done, r);
    } else if ((r->type = dns_type_by_name(what)) != 0) {
        pending = dns_lookup_start(req->key, r->type, lookup_done, r);
    } else {
        struct strbuf out = STRBUF_INIT, printable = STRBUF_INIT;
        lookup_reply_format(&out, LOOKUP_RETRY, "unknown DNS table");
        msg_warn("unknown DNS table \"%s\"", log_printable(&printable, req->table, 200));
        reply(r, &out);
        strbuf_free(&out);
        strbuf_free(&printable);
        return NULL;
    }
    if (!pending)
        return NULL;
    r->pending = pending;
    return r;
}

void dnsreq_cancel(struct dnsreq *r)
{
    if (!r)
        return;
    dns_cancel(r->pending);
    free(r);
}
