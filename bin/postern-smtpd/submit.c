/* submit.c - smtpd's side of interface 2 (doc/injection.md): one message
 * handed to the injection chain through the one injection client
 * (lib/mail/injection_client.c), with rewrite run in-process (DESIGN.md,
 * Privileges: rewrite holds no privilege of its own, and a fork and exec
 * of postern-rewrite per message cost more than the boundary protects):
 * the message goes through rewrite's push stream into the queue stage's
 * fd 0 as it arrives (never held whole in memory), the envelope, rewritten,
 * on its fd 1 once the message is complete, and the verdict comes back on
 * fd 3.  The queue stage is started by lib/mail/queuestage.  The Received
 * header is written first, so it counts towards hopcount_limit as it did
 * when postern-rewrite read it.  Should a filter ever have to stand
 * between rewrite and queue, this is where smtpd would name
 * `postern-rewrite` as the client's program again.
 *
 * The queue id is known only once postern-queue has stored the message, so
 * the Received header carries no "id" clause (Postfix writes its queue id
 * there); the id appears in the 250 reply and the log instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "injection_client.h"
#include "log.h"
#include "map.h"
#include "smtpd.h"
#include "xalloc.h"

/* rewrite's settings, read once per process (before a zygote forks). */
static struct rewrite_config rewrite_settings;
static int rewrite_settings_loaded;

/* local_header_rewrite_clients: its items, and for each a table or NULL */
static struct strlist header_clients;
static struct maplist **header_client_tables;

unsigned submit_receive_override(void)
{
    static int known;
    static unsigned mask;
    if (!known)
        mask = receive_override_mask(conf_str("receive_override_options"));
    known = 1;
    return mask;
}

/* Load rewrite's settings the first time only. */
void submit_init(void)
{
    if (rewrite_settings_loaded)
        return;
    rewrite_config_load(&rewrite_settings, submit_receive_override());
    if (conf_is_set("local_header_rewrite_clients"))
        conf_list("local_header_rewrite_clients", &header_clients);
    else
        strlist_add(&header_clients, "permit_inet_interfaces");    /* the default */
    header_client_tables = xcalloc(header_clients.count + 1, sizeof *header_client_tables);
    for (size_t i = 0; i < header_clients.count; i++) {
        const char *item = header_clients.item[i];
        if (!strchr(item, ':'))
            continue;
        struct strbuf err = STRBUF_INIT;
        header_client_tables[i] = maplist_open(item, &err);
        if (!header_client_tables[i])
            msg_fatal_temp("local_header_rewrite_clients: %s", strbuf_str(&err));
        strbuf_free(&err);
    }
    rewrite_settings_loaded = 1;
}

const struct rewrite_config *submit_rewrite_config(void)
{
    return rewrite_settings_loaded ? &rewrite_settings : NULL;
}

int submit_refresh(void)
{
    return rewrite_settings_loaded && rewrite_config_refresh(&rewrite_settings);
}

/* How rewrite treats the message's header addresses (Postfix's rewrite
 * context): local for sendmail -bs and for clients that
 * local_header_rewrite_clients permits, else remote when
 * remote_header_rewrite_domain is set, else none. */
static enum rewrite_context header_context(struct session *s)
{
    if (s->local_submission)
        return REWRITE_CONTEXT_LOCAL;
    static int warned;
    for (size_t i = 0; i < header_clients.count; i++) {
        const char *item = header_clients.item[i];
        int match = 0;
        if (header_client_tables[i]) {
            struct strbuf value = STRBUF_INIT;
            match = map_search_client_ip(header_client_tables[i], s->client.address, &value) == MAP_FOUND;
            strbuf_free(&value);
        } else if (strcasecmp(item, "permit_inet_interfaces") == 0) {
            /* as the restriction: the connection's own address is one
             * of inet_interfaces (or proxy_interfaces) */
            match = destination_own_address(s->client.peer_address) == 1;
        } else if (strcasecmp(item, "permit_mynetworks") == 0) {
            match = policy_mynetworks(s) > 0;
        } else if (strcasecmp(item, "check_address_map") != 0 && !warned++) {
            /* permit_sasl_authenticated, permit_tls_clientcerts, ...: no
             * AUTH or TLS client certificates here yet */
            msg_warn("local_header_rewrite_clients: %s is not implemented: it never matches", item);
        }
        if (match)
            return REWRITE_CONTEXT_LOCAL;
    }
    return *rewrite_settings.remote_header_rewrite_domain ? REWRITE_CONTEXT_REMOTE
                                                          : REWRITE_CONTEXT_NONE;
}

/* Append the Received header (RFC 5321 section 4.4). */
static void received_header(struct session *s, struct strbuf *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);    /* " 6 Dec", as Postfix */
    const struct forwarded *f = &s->forwarded;
    const char *name = f->set && f->name[0] ? f->name : s->client.name;
    const char *address = f->set && f->address[0] ? f->address : s->client.address;
    const char *from = f->set && f->helo[0] ? f->helo : s->helo.len ? strbuf_str(&s->helo) : name;
    /* RFC 5321 address literal: IPv6 addresses carry the "IPv6:" tag */
    strbuf_printf(out, "Received: from %s (%s [%s%s])\n", from, name,
                  strchr(address, ':') ? "IPv6:" : "", address);
    /* smtpd_sasl_authenticated_header: the login, for the recipients to see */
    if (s->sasl_username[0] && conf_bool("smtpd_sasl_authenticated_header")) {
        struct strbuf printable = STRBUF_INIT;
        strbuf_printf(out, "\t(Authenticated sender: %s)\n",
                      log_printable(&printable, s->sasl_username, 255));
        strbuf_free(&printable);
    }
    tls_received_clause(s, out);
    /* RFC 3848: ESMTPS under TLS, ESMTPA after AUTH, ESMTPSA both */
    strbuf_printf(out, "\tby %s (%s) with %s%s%s", s->myhostname, conf_str("mail_name"),
                  s->local_submission ? "ESMTP" : s->protocol, s->tls ? "S" : "",
                  s->sasl_username[0] ? "A" : "");
    if (s->tx.recipient_count == 1) {
        struct strbuf printable = STRBUF_INIT;
        strbuf_printf(out, "\n\tfor <%s>; %s\n",
                      log_printable(&printable, strbuf_str(&s->tx.last_recipient), 1000), date);
        strbuf_free(&printable);
    } else {
        strbuf_printf(out, ";\n\t%s\n", date);      /* Postfix's layout */
    }
}

struct injection_client *submit_start(struct session *s)
{
    static char uid[32];
    submit_init();
    struct injection_client *inj = xcalloc(1, sizeof *inj);
    struct injection_options options = {.program = NULL, .message_fd = -1,
                                        .rewrite = &rewrite_settings};
    /* what rewrite needs from the envelope before the message; the
     * envelope itself is built at the end (rewrite_message_info_from on
     * smtpd's envelope gives the same) */
    options.info.local = s->local_submission;
    options.info.context = header_context(s);
    options.info.log_client = s->client.namaddr;
    options.info.sender = strbuf_str(&s->tx.sender);
    /* smtpd_milters: the text waits for them (milter_message) */
    options.hold = milter_active() && !s->milter_discard;
    s->milter_own_bytes = 0;
    if (s->local_submission) {
        snprintf(uid, sizeof uid, "%ld", (long)getuid());
        options.info.uid = uid;
    }
    struct strbuf err = STRBUF_INIT;
    if (injection_start(inj, &options, &err) < 0) {
        msg_warn("%s", strbuf_str(&err));
        strbuf_free(&err);
        free(inj);
        reply(s, "451 4.3.0 Error: queue file write error");
        return NULL;
    }
    strbuf_free(&err);
    /* a local submission (-S) gets its Received line from rewrite, as
     * every origin=local message does ("by HOST (postern, from userid N)") */
    if (!s->local_submission) {
        struct strbuf received = STRBUF_INIT;
        /* the headers of PREPEND actions (postgrey, policyd-spf) come
         * first, above the Received header, as Postfix writes them */
        strbuf_append(&received, strbuf_str(&s->tx.prepend), s->tx.prepend.len);
        received_header(s, &received);
        injection_write(inj, received.s, received.len);
        inj->size = 0;          /* the client's bytes count, not ours */
        s->milter_own_bytes = received.len;
        strbuf_free(&received);
    }
    return inj;
}

void submit_prepare(void)
{
    injection_prepare();
}

long long submit_size(const struct injection_client *inj)
{
    return inj->size;
}

void submit_abort(struct injection_client *inj)
{
    /* the envelope never gets its end record: the queue stores nothing */
    injection_abort(inj);
    free(inj);
}

/* Add the NUL-terminated records of a buffer (type byte first) to env. */
static void add_records(struct envelope *env, const struct strbuf *records)
{
    for (size_t at = 0; at < records->len;) {
        const char *rec = records->s + at;
        strlist_add(&env->records, rec);
        at += strlen(rec) + 1;
    }
}

/* Whether the access tables' actions hold a FILTER. */
static int has_filter_action(const struct strbuf *actions)
{
    for (size_t at = 0; at < actions->len; at += strlen(actions->s + at) + 1)
        if (strncmp(actions->s + at, "Afilter=", 8) == 0)
            return 1;
    return 0;
}

/* The envelope as smtpd gives it (doc/injection.md), before rewrite. */
static void build_envelope(struct session *s, struct envelope *env)
{
    struct transaction *tx = &s->tx;
    struct strbuf attrs = STRBUF_INIT;
    env->sender = xstrdup(strbuf_str(&tx->sender));
    add_records(env, &tx->recipients);
    add_records(env, &tx->attributes);
    /* content_filter: every message's FILTER, unless an access table's
     * FILTER replaced it (header_checks' replaces both, in rewrite), as
     * Postfix's smtpd writes it before the access table's */
    const char *content_filter = conf_str("content_filter");
    if (*content_filter && !has_filter_action(&tx->actions))
        record_putf(&attrs, 'A', "filter=%s", content_filter);
    add_records(env, &attrs);
    strbuf_reset(&attrs);
    add_records(env, &tx->actions);     /* DISCARD, HOLD, ... of access tables */
    record_putf(&attrs, 'A', "origin=%s", s->local_submission ? "local" : "smtp");
    enum rewrite_context context = header_context(s);
    if (context != REWRITE_CONTEXT_NONE)
        record_putf(&attrs, 'A', "rewrite_context=%s",
                    context == REWRITE_CONTEXT_LOCAL ? "local" : "remote");
    if (s->local_submission)
        record_putf(&attrs, 'A', "uid=%ld", (long)getuid());
    const struct forwarded *f = &s->forwarded;
    const char *name = f->set && f->name[0] ? f->name : s->client.name;
    const char *address = f->set && f->address[0] ? f->address : s->client.address;
    const char *port = f->set && f->port[0] ? f->port : s->client.port;
    const char *helo = f->set && f->helo[0] ? f->helo : strbuf_str(&s->helo);
    record_putf(&attrs, 'A', "client_name=%s", name);
    record_putf(&attrs, 'A', "client_address=%s", address);
    if (*port)
        record_putf(&attrs, 'A', "client_port=%s", port);
    if (*helo)
        record_putf(&attrs, 'A', "helo_name=%s", helo);
    if (f->set && f->protocol[0])
        record_putf(&attrs, 'A', "protocol=%s", f->protocol);
    else
        record_putf(&attrs, 'A', "protocol=%s%s%s", s->protocol, s->tls ? "S" : "",
                    s->sasl_username[0] ? "A" : "");
    if (s->sasl_username[0]) {
        record_putf(&attrs, 'A', "sasl_method=%s", s->sasl_method);
        record_putf(&attrs, 'A', "sasl_username=%s", s->sasl_username);
    }
    record_putf(&attrs, 'A', "log_client=%s[%s]", name, address);
    record_putf(&attrs, 'A', "log_pid=%ld", (long)getpid());
    add_records(env, &attrs);
    strbuf_free(&attrs);
}

int submit_finish(struct session *s, struct injection_client *inj, int size_exceeded)
{
    struct strbuf text = STRBUF_INIT;
    int accepted = 0;
    if (size_exceeded) {
        submit_abort(inj);
        strbuf_puts(&text, "552 5.3.4 Message size exceeds fixed limit");
        goto refused;
    }
    if (policy_check_eod(s, &text)) {
        /* smtpd_end_of_data_restrictions refused it (and logged it) */
        submit_abort(inj);
        reply(s, "%s", strbuf_str(&text));
        strbuf_free(&text);
        return 0;
    }
    struct envelope env = ENVELOPE_INIT;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    build_envelope(s, &env);
    if (injection_held_fd(inj) >= 0) {
        const char *refusal = milter_message(s, inj, s->milter_own_bytes, &env);
        if (refusal) {
            /* logged as Postfix logs it ("milter-reject: END-OF-MESSAGE");
             * the chain stores nothing */
            envelope_free(&env);
            submit_abort(inj);
            reply(s, "%s", refusal);
            strbuf_free(&text);
            return 0;
        }
    }
    injection_finish(inj, &env, &verdict);
    envelope_free(&env);
    free(inj);
    if (verdict.outcome == OUTCOME_SENT) {
        struct strbuf printable = STRBUF_INIT;
        log_printable(&printable, strbuf_str(&verdict.text), 64);
        /* the queue logged "ID: client=..." for us (log_client, log_pid),
         * before qmgr could log "from=" (doc/logging.md) */
        reply(s, "250 2.0.0 Ok: queued as %s", strbuf_str(&printable));
        strbuf_free(&printable);
        accepted = 1;
    } else {
        if (verdict.detail.len)
            msg_warn("injection chain failed: %s", strbuf_str(&verdict.detail));
        strbuf_printf(&text, "%d %s", verdict.reply_code, strbuf_str(&verdict.text));
    }
    injection_verdict_free(&verdict);
refused:
    if (!accepted) {
        struct strbuf printable = STRBUF_INIT, sender = STRBUF_INIT;
        log_printable(&printable, strbuf_str(&text), 500);
        msg_info("NOQUEUE: reject: END-OF-MESSAGE from %s: %s; from=<%s> proto=%s helo=<%s>",
                 s->client.namaddr, strbuf_str(&printable),
                 log_printable(&sender, strbuf_str(&s->tx.sender), 0), s->protocol,
                 strbuf_str(&s->helo));
        reply(s, "%s", strbuf_str(&printable));
        strbuf_free(&printable);
        strbuf_free(&sender);
    }
    strbuf_free(&text);
    return accepted;
}
