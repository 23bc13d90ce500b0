/* schedule.c - resolving a message's recipients and grouping them into
 * jobs per (transport, nexthop), at most TRANSPORT_destination_recipient_limit
 * recipients each; starting jobs within the concurrency limits per
 * destination (TRANSPORT_destination_concurrency_limit) and per transport
 * (default_process_limit).  error:, discard:, retry:, defer_transports and
 * transports without a runner program are decided here, without a job. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "resolve.h"
#include "runner.h"
#include "xalloc.h"

/* Seconds a pipe runner has past its command's time limit to report. */
#define PIPE_TIME_GRACE 10

/* A per-transport limit: TRANSPORT_SUFFIX when set or declared, else the
 * default parameter. */
static int transport_limit(const char *transport, const char *suffix,
                           const char *default_param)
{
    struct strbuf name = STRBUF_INIT;
    strbuf_printf(&name, "%s_%s", transport, suffix);
    long long value = -1;
    if (param_find(strbuf_str(&name))) {
        value = conf_int(strbuf_str(&name));
    } else if (conf_raw(strbuf_str(&name))) {
        struct strbuf expanded = STRBUF_INIT, err = STRBUF_INIT;
        if (conf_expand(conf_raw(strbuf_str(&name)), &expanded, &err) == 0) {
            char *end;
            value = strtoll(strbuf_str(&expanded), &end, 10);
            if (*end || end == strbuf_str(&expanded)) {
                msg_warn("%s: bad number \"%s\"; using $%s", strbuf_str(&name),
                         strbuf_str(&expanded), default_param);
                value = -1;
            }
        }
        strbuf_free(&expanded);
        strbuf_free(&err);
    }
    if (value < 0)
        value = conf_int(default_param);
    strbuf_free(&name);
    if (value < 1)
        value = 1;
    return value > 100000 ? 100000 : (int)value;
}

/* Set a transport's limits from the configuration. */
static void transport_configure(struct qmgr_transport *t)
{
    /* the runner program (doc/delivery.md, "Which program"); a pipe
     * service's runner is told its name, and master.cf's maxproc limits
     * its processes */
    struct strbuf program = STRBUF_INIT;
    long maxproc;
    strlist_free(&t->options);
    t->pipe_service = runner_program_path(&program, qmgr.conf.daemon_directory, t->name, &maxproc,
                                          &t->options);
    free(t->program);
    t->program = strbuf_detach(&program);
    /* privileged_transports: reached through the runner service's socket */
    free(t->service_socket);
    t->service_socket = NULL;
    struct strlist privileged = STRLIST_INIT;
    conf_list("privileged_transports", &privileged);
    for (size_t i = 0; i < privileged.count && !t->service_socket; i++)
        if (strcmp(privileged.item[i], t->name) == 0) {
            struct strbuf path = STRBUF_INIT;
            strbuf_printf(&path, "%s/private/%s", qmgr.conf.queue_directory, t->name);
            t->service_socket = strbuf_detach(&path);
        }
    strlist_free(&privileged);
    t->recipient_limit = transport_limit(t->name, "destination_recipient_limit",
                                         "default_destination_recipient_limit");
    t->concurrency_limit = transport_limit(t->name, "destination_concurrency_limit",
                                           "default_destination_concurrency_limit");
    t->failed_cohort_limit = transport_limit(t->name, "destination_concurrency_failed_cohort_limit",
                                             "default_destination_concurrency_failed_cohort_limit");
    t->process_limit = maxproc > 0 && maxproc < 100000 ? (int)maxproc
                                                        : qmgr.conf.default_process_limit;
    /* TRANSPORT_time_limit (Postfix declares it per master.cf service),
     * else daemon_timeout */
    struct strbuf name = STRBUF_INIT, value = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&name, "%s_time_limit", t->name);
    t->time_limit = -1;
    const char *raw = conf_raw(strbuf_str(&name));
    if (raw && conf_expand(raw, &value, &err) == 0) {
        t->time_limit = parse_time(strbuf_str(&value), 's');
        if (t->time_limit <= 0)
            msg_warn("%s: bad time \"%s\"; using $daemon_timeout", strbuf_str(&name),
                     strbuf_str(&value));
    }
    if (t->time_limit <= 0)
        t->time_limit = conf_time(t->pipe_service ? "command_time_limit" : "daemon_timeout");
    /* postern-pipe enforces the limit on its command and reports; qmgr's
     * kill is the backstop */
    if (t->pipe_service)
        t->time_limit += PIPE_TIME_GRACE;
    strbuf_free(&name);
    strbuf_free(&value);
    strbuf_free(&err);
}

struct qmgr_transport *transport_find(const char *name)
{
    for (struct qmgr_transport *t = qmgr.transports; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct qmgr_transport *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    transport_configure(t);
    t->next = qmgr.transports;
    qmgr.transports = t;
    return t;
}

void transports_reset(void)
{
    for (struct qmgr_transport *t = qmgr.transports; t; t = t->next)
        transport_configure(t);
}

/* Destinations by (transport, name, nexthop): a chained hash table, so
 * that a queue for many domains costs no search per recipient. */
#define DEST_BUCKETS 4096
static struct qmgr_destination *dest_table[DEST_BUCKETS];

/* FNV-1a over the key. */
static size_t dest_bucket(const struct qmgr_transport *t, const char *name,
                          const char *nexthop)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)t;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = nexthop; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % DEST_BUCKETS);
}

/* The destination queue of a transport for this nexthop (or recipient). */
static struct qmgr_destination *destination_find(struct qmgr_transport *t,
                                                 const char *name, const char *nexthop)
{
    size_t b = dest_bucket(t, name, nexthop);
    for (struct qmgr_destination *d = dest_table[b]; d; d = d->hash_next)
        if (d->transport == t && strcmp(d->name, name) == 0
            && strcmp(d->nexthop, nexthop) == 0)
            return d;
    struct qmgr_destination *d = xcalloc(1, sizeof *d);
    d->name = xstrdup(name);
    d->nexthop = xstrdup(nexthop);
    d->transport = t;
    d->next = t->destinations;
    t->destinations = d;
    d->hash_next = dest_table[b];
    dest_table[b] = d;
    return d;
}

/* Call fn for every destination there is. */
void destinations_each(void (*fn)(struct qmgr_destination *))
{
    for (size_t b = 0; b < DEST_BUCKETS; b++)
        for (struct qmgr_destination *d = dest_table[b]; d; d = d->hash_next)
            fn(d);
}

/* Free an idle destination (already unlinked from its transport's list). */
static void destination_free(struct qmgr_destination *d)
{
    struct qmgr_destination **link = &dest_table[dest_bucket(d->transport, d->name, d->nexthop)];
    while (*link && *link != d)
        link = &(*link)->hash_next;
    if (*link)
        *link = d->hash_next;
    free(d->name);
    free(d->nexthop);
    free(d->suspended_dsn);
    free(d->suspended_text);
    free(d);
}

/* Append a job to its destination's list of jobs to do. */
static void destination_add(struct qmgr_destination *d, struct qmgr_job *job)
{
    job->next = NULL;
    if (d->todo_tail)
        d->todo_tail->next = job;
    else
        d->todo_head = job;
    d->todo_tail = job;
}

/* A recipient decided without a runner (error:, discard:, deferrals),
 * logged as Postfix's agent for it would (NULL: qmgr itself). */
static void decide(struct qmgr_message *msg, size_t i, const char *address, const char *agent,
                   enum outcome outcome, const char *status, const char *fallback_dsn)
{
    struct strbuf dsn = STRBUF_INIT, text = STRBUF_INIT;
    dsn_split(status, fallback_dsn, &dsn, &text);
    recipient_outcome(msg, agent, 0, i, address, outcome, "none", NULL, strbuf_str(&dsn),
                      strbuf_str(&text));
    strbuf_free(&dsn);
    strbuf_free(&text);
}

/* 1 when the transport's runner is postern-smtp or postern-lmtp, which
 * stop a probe after RCPT TO (postern-smtp(8)); the others never see one. */
static int probe_runner(const struct qmgr_transport *t)
{
    const char *base = strrchr(t->program, '/');
    base = base ? base + 1 : t->program;
    return !t->pipe_service && (strcmp(base, "postern-smtp") == 0
                                || strcmp(base, "postern-lmtp") == 0);
}

/* The jobs of one message being filled (one per destination). */
struct open_jobs {
    struct qmgr_job **job;
    size_t count;
};

/* Put recipient i into a job of transport:nexthop, or decide it at once
 * (error:, discard:, retry:, defer_transports, no runner program).
 * domain: the recipient's, for discard's text; deferred: the transport
 * is in defer_transports; part: a hand-over part (a job of its own),
 * part_address its member address or NULL. */
static void schedule_route(struct qmgr_message *msg, size_t i, const char *transport,
                           const char *nexthop, const char *domain, int deferred,
                           int part, const char *part_address, struct open_jobs *open)
{
    struct queue_recipient *r = &msg->qf.rcpt[i];
    if (strcmp(transport, "error") == 0) {
        decide(msg, i, part_address, "error", OUTCOME_BOUNCED,
               *nexthop ? nexthop : "delivery via error transport", "5.0.0");
        return;
    }
    if (strcmp(transport, "discard") == 0) {
        decide(msg, i, part_address, "discard", OUTCOME_SENT, *nexthop ? nexthop : domain, "2.0.0");
        return;
    }
    if (strcmp(transport, "retry") == 0) {
        decide(msg, i, part_address, "error", OUTCOME_DEFERRED,
               *nexthop ? nexthop : "delivery via retry transport", "4.0.0");
        return;
    }
    if (deferred && !msg->flush) {
        decide(msg, i, part_address, NULL, OUTCOME_DEFERRED, "4.3.2 deferred transport", "4.3.2");
        return;
    }
    struct qmgr_transport *t = transport_find(transport);
    if (message_is_probe(msg) && !probe_runner(t)) {
        /* a probe stops where Postfix's local, virtual and pipe stop for
         * one: the address resolved, nothing delivered */
        struct strbuf text = STRBUF_INIT;
        if (t->pipe_service)
            strbuf_printf(&text, "delivers to command: %s", transport);
        else
            strbuf_printf(&text, "delivers to %s", strcmp(transport, "virtual") == 0
                          ? "maildir" : "mailbox");
        /* logged as the transport's agent would, relay=TRANSPORT */
        recipient_outcome(msg, transport, 0, i, part_address, OUTCOME_SENT, transport, NULL,
                          "2.0.0", strbuf_str(&text));
        strbuf_free(&text);
        return;
    }
    if (access(t->program, X_OK) != 0) {
        struct strbuf why = STRBUF_INIT;
        strbuf_printf(&why, "4.3.0 mail transport unavailable: %s: %s", t->program,
                      strerror(errno));
        decide(msg, i, part_address, NULL, OUTCOME_DEFERRED, strbuf_str(&why), "4.3.0");
        strbuf_free(&why);
        return;
    }
    /* With one recipient per delivery, Postfix makes the recipient the
     * destination: the concurrency limit is then per recipient. */
    const char *address = part_address ? part_address : r->routed ? r->routed : r->address;
    struct qmgr_destination *d = destination_find(
        t, t->recipient_limit == 1 ? address : nexthop, nexthop);
    struct qmgr_job *job = NULL;
    for (size_t j = 0; j < open->count; j++)
        if (open->job[j]->dest == d && open->job[j]->rcpt_count < (size_t)t->recipient_limit)
            job = open->job[j];
    if (!job) {
        job = xcalloc(1, sizeof *job);
        job->kind = JOB_DELIVERY;
        job->msg = msg;
        job->dest = d;
        job->result_fd = -1;
        job->handover = part;
        job->part_address = part_address ? xstrdup(part_address) : NULL;
        job->rcpt = xcalloc((size_t)t->recipient_limit < msg->qf.rcpt_count
                            ? (size_t)t->recipient_limit : msg->qf.rcpt_count,
                            sizeof *job->rcpt);
        open->job = xreallocarray(open->job, open->count + 1, sizeof *open->job);
        open->job[open->count++] = job;
        destination_add(d, job);
        msg->outstanding++;
    }
    job->rcpt[job->rcpt_count++] = i;
    msg->round[i] = ROUND_QUEUED;
}

/* The resolver of a message: probes route with the address_verify_*
 * parameters (opened on the first probe; the normal one when they cannot
 * be opened, logged). */
static struct resolver *message_resolver(const struct qmgr_message *msg)
{
    /* sendmail -bv reports what ordinary mail would meet */
    if (!message_is_probe(msg) || message_is_report(msg))
        return qmgr.resolver;
    if (!qmgr.probe_resolver) {
        struct strbuf err = STRBUF_INIT;
        qmgr.probe_resolver = resolver_open_routing(1, &err);
        if (!qmgr.probe_resolver)
            msg_warn("address verification routing: %s", strbuf_str(&err));
        strbuf_free(&err);
    }
    return qmgr.probe_resolver ? qmgr.probe_resolver : qmgr.resolver;
}

void schedule_message(struct qmgr_message *msg)
{
    struct resolution res = RESOLUTION_INIT;
    struct resolver *resolver = message_resolver(msg);
    struct open_jobs open = {NULL, 0};
    msg->phase = PHASE_DELIVER;
    for (size_t i = 0; i < msg->qf.rcpt_count; i++) {
        struct queue_recipient *r = &msg->qf.rcpt[i];
        if (r->status != RCPT_TODO)
            continue;
        r->parts = 0;
        r->part_outcome = 0;
        free(r->part_status);
        r->part_status = NULL;
        if (resolve_address_from(resolver, msg->qf.sender, r->address, &res) != RESOLVE_OK) {
            decide(msg, i, NULL, NULL, OUTCOME_DEFERRED, strbuf_str(&res.reason), "4.3.0");
            continue;
        }
        /* the runner gets, and the log names, the address routing led to
         * (Postfix's qmgr too), so that qmgr delivers where smtpd checked */
        free(r->routed);
        r->routed = res.rerouted ? xstrdup(strbuf_str(&res.address)) : NULL;
        /* probes and sendmail -bv reports bypass the filter (Postfix's
         * qmgr: trace-only requests) */
        const char *filter = message_is_probe(msg) ? NULL : queue_file_attr(&msg->qf, "filter");
        if (filter && strchr(filter, ':')) {
            /* FILTER transport:destination (content_filter, header_checks,
             * access tables): the route of every recipient; no
             * destination: default_filter_nexthop, else the domain */
            const char *colon = strchr(filter, ':');
            const char *nexthop = colon[1] ? colon + 1 : conf_str("default_filter_nexthop");
            strbuf_reset(&res.transport);
            strbuf_append(&res.transport, filter, (size_t)(colon - filter));
            strbuf_set(&res.nexthop, *nexthop ? nexthop : strbuf_str(&res.domain));
            res.deferred_transport = resolver_transport_deferred(resolver,
                                                                 strbuf_str(&res.transport));
        }
        schedule_route(msg, i, strbuf_str(&res.transport), strbuf_str(&res.nexthop),
                       strbuf_str(&res.domain), res.deferred_transport, 0, NULL, &open);
    }
    free(open.job);
    resolution_free(&res);
    if (msg->outstanding == 0)
        message_round_done(msg);
}

void schedule_handover(struct qmgr_message *msg, size_t i, const char *address,
                       const char *transport, const char *nexthop)
{
    /* a new job of its own: the round's other jobs may have started */
    struct open_jobs open = {NULL, 0};
    if (!address)
        address = msg->qf.rcpt[i].routed ? msg->qf.rcpt[i].routed : msg->qf.rcpt[i].address;
    const char *at = strrchr(address, '@');
    schedule_route(msg, i, transport, nexthop, at ? at + 1 : "",
                   resolver_transport_deferred(qmgr.resolver, transport), 1, address, &open);
    free(open.job);
}

/* Start the first job of a destination; 1 when one was started. */
static int destination_start(struct qmgr_destination *d)
{
    struct qmgr_job *job = d->todo_head;
    if (!job)
        return 0;
    d->todo_head = job->next;
    if (!d->todo_head)
        d->todo_tail = NULL;
    job->next = NULL;
    if (job_start(job) == 0) {
        d->busy++;
        d->transport->busy++;
    }
    return 1;
}

void schedule_run(void)
{
    if (qmgr.stopping)
        return;
    /* round robin over destinations: one job each per pass */
    int started;
    do {
        started = 0;
        for (struct qmgr_transport *t = qmgr.transports; t; t = t->next) {
            for (struct qmgr_destination *d = t->destinations; d; d = d->next) {
                if (t->busy >= t->process_limit)
                    break;
                if (d->busy >= t->concurrency_limit || !d->todo_head)
                    continue;
                if (destination_suspended(d)) {
                    /* down: its mail waits without a try */
                    destination_defer_all(d);
                    qmgr.destinations_idle = 1;
                    continue;
                }
                started += destination_start(d);
            }
        }
    } while (started);
    /* forget idle destinations so the lists stay short */
    if (!qmgr.destinations_idle)
        return;
    qmgr.destinations_idle = 0;
    for (struct qmgr_transport *t = qmgr.transports; t; t = t->next) {
        struct qmgr_destination **link = &t->destinations;
        while (*link) {
            struct qmgr_destination *d = *link;
            if (d->busy == 0 && !d->todo_head && !destination_suspended(d)) {
                *link = d->next;
                destination_free(d);
            } else {
                link = &d->next;
            }
        }
    }
}
