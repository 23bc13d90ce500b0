/* policy_service.c - check_policy_service: Postfix's policy delegation
 * (SMTPD_POLICY_README).  The request carries the session's attributes as
 * name=value lines; the server's `action=` is an access(5) action, applied
 * as a table's result would be (policy_access.c).  The connection to each
 * server is kept for the session (one smtpd process per connection) and
 * closed after smtpd_policy_service_max_idle idle seconds, after
 * smtpd_policy_service_max_ttl seconds in all, or after
 * smtpd_policy_service_request_limit requests.  A server that does not
 * answer within smtpd_policy_service_timeout is tried
 * smtpd_policy_service_try_limit times, smtpd_policy_service_retry_delay
 * apart; then smtpd_policy_service_default_action stands for its answer.
 *
 * The server is "inet:host:port" (or "host:port"), "unix:/path" (a
 * relative path is under queue_directory, as Postfix's "private/policy"),
 * or Postfix 3.0's "{ server, name = value, ... }" whose options
 * (timeout, max_idle, max_ttl, try_limit, retry_delay, request_limit,
 * default_action, policy_context; a value with commas in { }) override the
 * smtpd_policy_service_* parameters for that server.
 * smtpd is static and may not ask NSS: a host is a numeric address,
 * "localhost", or a name the lookup service finds (proxy:dns:A).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"
#include "policy_proto.h"
#include "sockconnect.h"
#include "xalloc.h"
#include "monotonic.h"

/* A server's limits: the smtpd_policy_service_* parameters, or its own. */
struct policy_limits {
    long long timeout_ms, max_idle_ms, max_ttl_ms, request_limit, tries, retry_delay;
    struct strbuf default_action, context;
};

struct policy_server {
    char *spec;                 /* as written in the restriction */
    char *address;              /* the server: inet:host:port, unix:path */
    struct policy_limits limits;
    int fd;                     /* -1: not connected */
    long long opened_ms, used_ms;
    long long requests;         /* on this connection */
};

static struct policy_server servers[8];
static size_t server_count;

/* One "name = value" option of the { } form; 0, or -1 when unknown or bad. */
static int limit_option(struct policy_limits *l, const char *name, const char *value)
{
    static const struct { const char *name; size_t offset; int is_time; } numbers[] = {
        {"timeout", offsetof(struct policy_limits, timeout_ms), 1000},
        {"max_idle", offsetof(struct policy_limits, max_idle_ms), 1000},
        {"max_ttl", offsetof(struct policy_limits, max_ttl_ms), 1000},
        {"retry_delay", offsetof(struct policy_limits, retry_delay), 1},
        {"request_limit", offsetof(struct policy_limits, request_limit), 0},
        {"try_limit", offsetof(struct policy_limits, tries), 0},
    };
    if (strcmp(name, "default_action") == 0) {
        strbuf_set(&l->default_action, value);
        return 0;
    }
    if (strcmp(name, "policy_context") == 0) {
        strbuf_set(&l->context, value);
        return 0;
    }
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        if (strcmp(name, numbers[i].name) != 0)
            continue;
        char *end;
        long long n = numbers[i].is_time ? parse_time(value, 's') : strtoll(value, &end, 10);
        if (n < 0 || (!numbers[i].is_time && (!*value || *end)))
            return -1;
        *(long long *)((char *)l + numbers[i].offset) = numbers[i].is_time ? n * numbers[i].is_time : n;
        return 0;
    }
    return -1;
}

/* Trim white space at both ends, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

/* The server and its limits from the restriction's argument; -1 when the
 * { } form has an option postern does not know. */
static int server_parse(struct policy_server *p, const char *spec)
{
    struct policy_limits *l = &p->limits;
    l->timeout_ms = conf_time("smtpd_policy_service_timeout") * 1000;
    l->max_idle_ms = conf_time("smtpd_policy_service_max_idle") * 1000;
    l->max_ttl_ms = conf_time("smtpd_policy_service_max_ttl") * 1000;
    l->request_limit = conf_int("smtpd_policy_service_request_limit");
    l->tries = conf_int("smtpd_policy_service_try_limit");
    l->retry_delay = conf_time("smtpd_policy_service_retry_delay");
    strbuf_set(&l->default_action, conf_str("smtpd_policy_service_default_action"));
    strbuf_set(&l->context, conf_str("smtpd_policy_service_policy_context"));
    /* split on top-level commas; { } keeps a value's commas */
    char *copy = xstrdup(spec), *item = copy;
    int depth = 0, rc = 0, first = 1;
    for (char *c = copy;; c++) {
        if (*c == '{')
            depth++;
        else if (*c == '}')
            depth--;
        if (*c && (*c != ',' || depth > 0))
            continue;
        int last = !*c;
        *c = 0;
        char *word = trim(item);
        if (first) {
            p->address = xstrdup(word);
            first = 0;
        } else if (*word) {
            char *eq = strchr(word, '=');
            char *value = eq ? trim(eq + 1) : NULL;
            if (eq)
                *eq = 0;
            size_t vn = value ? strlen(value) : 0;
            if (vn >= 2 && value[0] == '{' && value[vn - 1] == '}') {
                value[vn - 1] = 0;
                value = trim(value + 1);
            }
            if (!value || limit_option(l, trim(word), value) != 0) {
                msg_warn("check_policy_service %s: unknown or bad option \"%s%s%s\"", p->address,
                         word, value ? "=" : "", value ? value : "");
                rc = -1;
            }
        }
        if (last)
            break;
        item = c + 1;
    }
    free(copy);
    if (l->tries < 1)
        l->tries = 1;
    return rc;
}

/* The server of this name, remembered for the session (NULL when its
 * options are wrong or there are too many). */
static struct policy_server *server_find(const char *spec)
{
    for (size_t i = 0; i < server_count; i++)
        if (strcmp(servers[i].spec, spec) == 0)
            return servers[i].address ? &servers[i] : NULL;
    if (server_count == sizeof servers / sizeof servers[0])
        return NULL;
    struct policy_server *p = &servers[server_count++];
    p->spec = xstrdup(spec);
    p->fd = -1;
    if (server_parse(p, spec) != 0) {
        free(p->address);
        p->address = NULL;
        return NULL;
    }
    return p;
}

static void server_close(struct policy_server *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

/* Send the request and read the answer's action; 0, or -1 with why. */
static int exchange(int fd, const struct strbuf *request, long long deadline_ms,
                    struct strbuf *action, struct strbuf *why)
{
    size_t sent = 0;
    while (sent < request->len) {
        if (sock_wait(fd, POLLOUT, deadline_ms) != 1) {
            strbuf_printf(why, "%s", strerror(errno));
            return -1;
        }
        ssize_t n = send(fd, request->s + sent, request->len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            strbuf_printf(why, "%s", strerror(errno));
            return -1;
        }
        if (n > 0)
            sent += (size_t)n;
    }
    struct strbuf answer = STRBUF_INIT;
    char buf[2048];
    int rc = -1;
    for (;;) {
        size_t used;
        enum policy_parse p = policy_answer_parse(answer.s ? answer.s : "", answer.len, action,
                                                  &used, why);
        if (p == POLICY_PARSE_DONE) {
            rc = used == answer.len ? 0 : -1;
            if (rc)
                strbuf_set(why, "unexpected text after the answer");
            break;
        }
        if (p == POLICY_PARSE_BAD)
            break;
        if (sock_wait(fd, POLLIN, deadline_ms) != 1) {
            strbuf_printf(why, "%s", strerror(errno));
            break;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) {
            strbuf_set(why, "Success");     /* as Postfix says it, errno 0 at the end */
            break;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            strbuf_printf(why, "%s", strerror(errno));
            break;
        }
        strbuf_append(&answer, buf, (size_t)n);
    }
    strbuf_free(&answer);
    return rc;
}

/* ---- the request ---- */

static const char *state_name(const struct check_ctx *ctx)
{
    return ctx->recipient ? "RCPT" : ctx->sender ? "MAIL" : ctx->s->helo.len ? "HELO" : "CONNECT";
}

/* A value unique to this transaction (Postfix's "instance"): the same for
 * every recipient of one message, so that a server can tell them apart
 * from the next message's (policyd-spf prepends its header once). */
static void instance_value(const struct session *s, char *out, size_t size)
{
    static long long started;
    if (!started)
        started = (long long)time(NULL);
    snprintf(out, size, "%lx.%llx.%u", (unsigned long)getpid(), started,
             s->command_count[CMD_MAIL]);
}

/* The attributes of Postfix 3.7's request at this stage. */
static void build_request(const struct check_ctx *ctx, const char *context, struct strbuf *req)
{
    const struct session *s = ctx->s;
    const struct client *c = &s->client;
    char number[32], instance[80];
    policy_attr_put(req, "request", "smtpd_access_policy");
    policy_attr_put(req, "protocol_state", state_name(ctx));
    policy_attr_put(req, "protocol_name", s->protocol ? s->protocol : "SMTP");
    policy_attr_put(req, "client_address", c->address);
    policy_attr_put(req, "client_name", c->name);
    policy_attr_put(req, "client_port", c->port);
    policy_attr_put(req, "reverse_client_name", c->reverse_name[0] ? c->reverse_name : c->name);
    policy_attr_put(req, "server_address", c->local_address);
    policy_attr_put(req, "server_port", c->local_port);
    policy_attr_put(req, "helo_name", strbuf_str(&s->helo));
    policy_attr_put(req, "sender", ctx->sender ? ctx->sender : "");
    policy_attr_put(req, "recipient", ctx->recipient ? ctx->recipient : "");
    snprintf(number, sizeof number, "%zu", s->tx.recipient_count);
    policy_attr_put(req, "recipient_count", ctx->recipient ? "0" : number);
    policy_attr_put(req, "queue_id", "");
    instance_value(s, instance, sizeof instance);
    policy_attr_put(req, "instance", s->tx.active || ctx->sender ? instance : "");
    snprintf(number, sizeof number, "%lld", s->tx.declared_size);
    policy_attr_put(req, "size", number);
    policy_attr_put(req, "etrn_domain", "");
    policy_attr_put(req, "stress", "");
    policy_attr_put(req, "sasl_method", s->sasl_username[0] ? s->sasl_method : "");
    policy_attr_put(req, "sasl_username", s->sasl_username);
    policy_attr_put(req, "sasl_sender", "");
    const char *cert_fp = NULL, *pkey_fp = NULL;
    if (s->tls)
        tls_client_cert(s, &cert_fp, &pkey_fp);
    policy_attr_put(req, "ccert_subject", "");
    policy_attr_put(req, "ccert_issuer", "");
    policy_attr_put(req, "ccert_fingerprint", cert_fp);
    policy_attr_put(req, "ccert_pubkey_fingerprint", pkey_fp);
    const SSL_CIPHER *cipher = s->tls ? SSL_get_current_cipher(s->tls) : NULL;
    policy_attr_put(req, "encryption_protocol", s->tls ? SSL_get_version(s->tls) : "");
    policy_attr_put(req, "encryption_cipher", cipher ? SSL_CIPHER_get_name(cipher) : "");
    snprintf(number, sizeof number, "%d", cipher ? SSL_CIPHER_get_bits(cipher, NULL) : 0);
    policy_attr_put(req, "encryption_keysize", number);
    policy_attr_put(req, "policy_context", context);
    policy_request_end(req);
}

/* Ask the server, with its limits; 0 with the action, or -1 when every
 * try failed (warned). */
static int ask(struct policy_server *p, const struct strbuf *request, struct strbuf *action)
{
    const struct policy_limits *l = &p->limits;
    long long timeout_ms = l->timeout_ms, max_idle_ms = l->max_idle_ms, max_ttl_ms = l->max_ttl_ms;
    long long request_limit = l->request_limit, tries = l->tries, retry_delay = l->retry_delay;
    for (long long attempt = 1; attempt <= tries; attempt++) {
        long long now = monotonic_ms(), deadline = now + (timeout_ms > 0 ? timeout_ms : 100000);
        if (p->fd >= 0 && ((max_idle_ms > 0 && now - p->used_ms >= max_idle_ms)
                           || (max_ttl_ms > 0 && now - p->opened_ms >= max_ttl_ms)
                           || (request_limit > 0 && p->requests >= request_limit)))
            server_close(p);
        struct strbuf why = STRBUF_INIT;
        if (p->fd < 0) {
            p->fd = sock_connect(p->address, deadline, &why);
            p->opened_ms = now;
            p->requests = 0;
        }
        int rc = p->fd >= 0 ? exchange(p->fd, request, deadline, action, &why) : -1;
        if (rc == 0) {
            p->used_ms = monotonic_ms();
            p->requests++;
            strbuf_free(&why);
            return 0;
        }
        server_close(p);
        msg_warn("problem talking to server %s: %s", p->address, strbuf_str(&why));
        strbuf_free(&why);
        if (attempt < tries && retry_delay > 0)
            sleep((unsigned)retry_delay);
    }
    return -1;
}

enum verdict check_policy_service(struct check_ctx *ctx, const char *spec)
{
    struct policy_server *p = server_find(spec);
    if (!p) {
        if (server_count == sizeof servers / sizeof servers[0])
            msg_warn("too many policy services: %s", spec);
        return config_error(ctx);
    }
    struct strbuf request = STRBUF_INIT, action = STRBUF_INIT;
    build_request(ctx, strbuf_str(&p->limits.context), &request);
    if (ask(p, &request, &action) != 0)
        strbuf_set(&action, strbuf_str(&p->limits.default_action));
    strbuf_free(&request);
    enum verdict v = access_action(ctx, ctx->subject, strbuf_str(&action), spec);
    strbuf_free(&action);
    return v;
}
