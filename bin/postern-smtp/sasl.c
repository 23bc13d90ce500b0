/* sasl.c - SMTP AUTH as a client, as Postfix's smtp(8) does it with
 * smtp_sasl_auth_enable = yes (lmtp_sasl_* for postern-lmtp):
 *   - the user name and password come from smtp_sasl_password_maps
 *     ("user:password"), looked up by the sender (with
 *     smtp_sender_dependent_authentication: user+ext@domain, user@domain,
 *     @domain), then by the server's host name, then by the next hop as
 *     qmgr gave it ("[mail.isp.example]:587", as relayhost says it);
 *     without an entry the session goes on without AUTH;
 *   - the mechanism is the strongest the server offers after
 *     smtp_sasl_mechanism_filter that has the properties the security
 *     options ask for: smtp_sasl_security_options in clear,
 *     smtp_sasl_tls_security_options under TLS,
 *     smtp_sasl_tls_verified_security_options with a verified certificate
 *     (lib/net/saslclient.c: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN,
 *     LOGIN).  Postfix's default
 *     "noplaintext, noanonymous" never sends a password in the clear;
 *   - a refusal defers with the server's reply ("SASL authentication
 *     failed; server HOST said: 535 ..."), or bounces with
 *     smtp_sasl_auth_soft_bounce = no, and the next server is tried;
 *   - smtp_sasl_auth_cache_name ("proxy:btree:PATH" in Postfix: the path
 *     is taken, the file is postern's, lib/util/cachefile.c) remembers a
 *     535 reply for the server's name, the user name and (a hash of) the
 *     password for smtp_sasl_auth_cache_time: meanwhile that server is
 *     not asked again with the same credentials, and the mail is deferred
 *     or bounced as the 535 said ("SASL [CACHED] authentication failed;
 *     server HOST said: ..."), smtp_sasl_auth_soft_bounce deciding as
 *     for a fresh reply.  A changed password is tried at once.
 * The mechanisms are implemented here rather than through libsasl2:
 * SCRAM, PLAIN, LOGIN and CRAM-MD5 are what smarthosts offer, and a client needs
 * no plugin directory, no dlopen in the runner, no dependence on which
 * libsasl2-modules packages a machine has, and the password passes
 * through no library callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "cachefile.h"
#include "config.h"
#include "domainlist.h"
#include "log.h"
#include "map.h"
#include "saslclient.h"
#include "smtp.h"
#include "xalloc.h"

struct sasl_setup {
    struct maplist *passwords;          /* smtp_sasl_password_maps */
    struct domainlist *filter;          /* smtp_sasl_mechanism_filter; NULL: all */
    unsigned clear_options, tls_options, verified_options;
    int sender_dependent;               /* smtp_sender_dependent_authentication */
    int soft_bounce;                    /* smtp_sasl_auth_soft_bounce */
    const char *delimiters;             /* recipient_delimiter, for sender keys */
    char password_param[64];            /* smtp_sasl_password_maps, for log lines */
    const char *auth_cache;             /* smtp_sasl_auth_cache_name's file, NULL: none */
    long long auth_cache_time;          /* smtp_sasl_auth_cache_time */
};

/* A parameter's name for this protocol: smtp_NAME or lmtp_NAME. */
static const char *param(const struct smtp_setup *setup, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s_%s", setup->proto, name);
    return buf;
}

/* One security option parameter; -1 when a word is unknown (logged). */
static int options_param(const struct smtp_setup *setup, const char *name, unsigned *flags)
{
    char buf[64];
    struct strbuf err = STRBUF_INIT;
    int rc = saslc_security_parse(conf_str(param(setup, name, buf, sizeof buf)), flags, &err);
    if (rc != 0)
        msg_warn("%s: %s", buf, err.s);
    strbuf_free(&err);
    return rc;
}

int sasl_client_setup(struct smtp_setup *setup)
{
    char name[64];
    setup->sasl = NULL;
    if (!conf_bool(param(setup, "sasl_auth_enable", name, sizeof name)))
        return 0;
    struct sasl_setup *sasl = xcalloc(1, sizeof *sasl);
    param(setup, "sasl_password_maps", sasl->password_param, sizeof sasl->password_param);
    const char *maps = conf_str(sasl->password_param);
    struct strbuf err = STRBUF_INIT;
    int rc = 0;
    if (!*maps) {
        msg_warn("specify a password table via the `%s' configuration parameter",
                 sasl->password_param);
        rc = -1;
    } else if (!(sasl->passwords = maplist_open(maps, &err))) {
        msg_warn("%s: %s", sasl->password_param, err.s);
        rc = -1;
    }
    const char *filter = conf_str(param(setup, "sasl_mechanism_filter", name, sizeof name));
    strbuf_reset(&err);
    if (rc == 0 && *filter && !(sasl->filter = domainlist_open(name, filter, &err))) {
        msg_warn("%s: %s", name, err.s);
        rc = -1;
    }
    if (rc == 0
        && (options_param(setup, "sasl_security_options", &sasl->clear_options) != 0
            || options_param(setup, "sasl_tls_security_options", &sasl->tls_options) != 0
            || options_param(setup, "sasl_tls_verified_security_options",
                             &sasl->verified_options) != 0))
        rc = -1;
    sasl->sender_dependent = !setup->lmtp && conf_bool("smtp_sender_dependent_authentication");
    sasl->soft_bounce = conf_bool(param(setup, "sasl_auth_soft_bounce", name, sizeof name));
    sasl->delimiters = conf_str("recipient_delimiter");
    const char *cache = conf_str(param(setup, "sasl_auth_cache_name", name, sizeof name));
    sasl->auth_cache_time = conf_time(param(setup, "sasl_auth_cache_time", name, sizeof name));
    if (*cache) {
        /* "proxy:btree:/var/lib/postfix/sasl_auth_cache": the path */
        const char *path = strrchr(cache, ':') ? strrchr(cache, ':') + 1 : cache;
        if (*path == '/' && sasl->auth_cache_time > 0)
            sasl->auth_cache = path;
        else
            msg_warn("%s_sasl_auth_cache_name: \"%s\" is not an absolute path: no cache",
                     setup->proto, cache);
    }
    strbuf_free(&err);
    setup->sasl = sasl;
    return rc;
}

/* The "user:password" entry for this session: 1 found, 0 none, -1 the
 * table could not answer. */
static int find_password(const struct smtp_session *s, struct strbuf *value)
{
    const struct sasl_setup *sasl = s->setup->sasl;
    const char *sender = s->batch->req->sender;
    int r = MAP_NOTFOUND;
    if (sasl->sender_dependent && *sender)
        r = map_search_address(sasl->passwords, sender, sasl->delimiters, 0, value, NULL);
    if (r == MAP_NOTFOUND)
        r = maplist_lookup(sasl->passwords, s->target->host, value);
    if (r == MAP_NOTFOUND)
        r = maplist_lookup(sasl->passwords, s->batch->nexthop, value);
    return r == MAP_FOUND ? 1 : r == MAP_RETRY ? -1 : 0;
}

int sasl_has_credentials(const struct smtp_session *s)
{
    if (!s->setup->sasl)
        return 0;
    struct strbuf entry = STRBUF_INIT;
    int found = find_password(s, &entry);
    strbuf_free(&entry);
    return found != 0;              /* a table that cannot answer: maybe */
}

/* The server's mechanisms that smtp_sasl_mechanism_filter lets through;
 * -1 when a filter table could not answer. */
static int filtered_mechanisms(const struct smtp_session *s, struct strbuf *out)
{
    const char *p = strbuf_str(&s->features.auth);
    strbuf_reset(out);
    while (*p) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (!len)
            break;
        char mech[64];
        snprintf(mech, sizeof mech, "%.*s", (int)len, p);
        p += len;
        int match = s->setup->sasl->filter ? domainlist_match(s->setup->sasl->filter, mech) : 1;
        if (match < 0)
            return -1;
        if (match == 1) {
            if (out->len)
                strbuf_putc(out, ' ');
            strbuf_puts(out, mech);
        }
    }
    return 0;
}

/* A read or write that failed in the middle of AUTH. */
static void auth_io_failure(struct smtp_session *s)
{
    batch_result_open(s->batch, s->relay, 0, "4.4.2", "%s with %s while performing the AUTH handshake",
                      s->conn.error == SMTP_IO_TIMEOUT ? "conversation timed out"
                      : s->conn.error == SMTP_IO_PROTOCOL ? "malformed reply" : "lost connection",
                      s->host);
}

/* Send one line of the exchange and read the reply; -1 after a failure
 * (results given). */
static int exchange(struct smtp_session *s, const char *line)
{
    smtp_queue(&s->conn, line, strlen(line));
    smtp_queue(&s->conn, "\r\n", 2);
    if (smtp_flush(&s->conn, s->setup->helo_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, s->setup->helo_timeout) != 0) {
        auth_io_failure(s);
        return -1;
    }
    return 0;
}

/* SHA-256 in hex of the NUL-separated parts. */
static void digest_hex(const char *const *parts, size_t n, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++)
            ok = EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1) == 1;
        if (ok && EVP_DigestFinal_ex(md, digest, &len) == 1)
            for (unsigned i = 0; i < len && i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", digest[i]);
    }
    EVP_MD_CTX_free(md);
}

/* The 535 cache's key (server name and user) and the password's hash
 * there (salted with the key). */
static void auth_cache_ids(const struct smtp_session *s, const struct saslc *c, char key[65],
                           char hash[65])
{
    const char *parts[] = {s->setup->proto, s->target->host, c->user, c->password};
    digest_hex(parts, 3, key);
    digest_hex(parts, 4, hash);
}

/* A 535 for these credentials, remembered: 1 with the results given. */
static int auth_cache_hit(struct smtp_session *s, const struct saslc *c)
{
    const struct sasl_setup *sasl = s->setup->sasl;
    char key[65], hash[65];
    struct strbuf value = STRBUF_INIT;
    if (!sasl->auth_cache)
        return 0;
    auth_cache_ids(s, c, key, hash);
    int found = cachefile_get(sasl->auth_cache, key, time(NULL), &value);
    if (found < 0)
        msg_warn_errno("cannot read %s", sasl->auth_cache);
    /* the value: the password's hash, NUL, the DSN code, NUL, the reply */
    const char *dsn = found == 1 && value.len > 66 && memcmp(value.s, hash, 64) == 0 ? value.s + 65 : NULL;
    const char *text = dsn && strlen(dsn) + 66 < value.len ? dsn + strlen(dsn) + 1 : NULL;
    if (text && dsn[0] >= '4' && dsn[0] <= '5' && dsn[1] == '.' && strlen(dsn) < 16) {
        char code[16];
        snprintf(code, sizeof code, "%s", dsn);
        int hard = code[0] == '5' && !sasl->soft_bounce;
        if (!hard)
            code[0] = '4';
        batch_result_open(s->batch, s->relay, hard, code,
                          "SASL [CACHED] authentication failed; server %s said: %s",
                          s->target->host, text);
        strbuf_free(&value);
        return 1;
    }
    /* as Postfix: an entry for another password (changed since, and
     * perhaps right now) or a malformed one goes, so that a login that
     * succeeds leaves no 535 behind */
    if (found == 1 && cachefile_delete(sasl->auth_cache, key, time(NULL)) != 0)
        msg_warn_errno("cannot update %s", sasl->auth_cache);
    strbuf_free(&value);
    return 0;
}

/* Remember a 535 reply for these credentials. */
static void auth_cache_store(const struct smtp_session *s, const struct saslc *c)
{
    const struct sasl_setup *sasl = s->setup->sasl;
    char key[65], hash[65];
    auth_cache_ids(s, c, key, hash);
    struct strbuf value = STRBUF_INIT;
    strbuf_append(&value, hash, 65);
    strbuf_append(&value, s->reply.dsn, strlen(s->reply.dsn) + 1);
    strbuf_append(&value, s->reply.text.s, s->reply.text.len < 4000 ? s->reply.text.len : 4000);
    long long now = time(NULL);
    if (cachefile_put(sasl->auth_cache, key, value.s, value.len, now + sasl->auth_cache_time, now) != 0)
        msg_warn_errno("cannot update %s", sasl->auth_cache);
    strbuf_free(&value);
}

/* Run the exchange with the chosen mechanism; 0 when the server said 2xx. */
static int authenticate(struct smtp_session *s, struct saslc *c)
{
    struct strbuf line = STRBUF_INIT, response = STRBUF_INIT, err = STRBUF_INIT;
    int rc = -1;
    saslc_first(c, &response);
    strbuf_printf(&line, "AUTH %s%s%s", c->mech, response.len ? " " : "", strbuf_str(&response));
    int sent = exchange(s, line.s);
    for (int steps = 0; sent == 0 && s->reply.code == 334; steps++) {
        const char *challenge = s->reply.lines.count ? s->reply.lines.line[0] : "";
        if (steps >= 100) {
            batch_result_open(s->batch, s->relay, 0, "4.3.0", "SASL authentication failed; "
                              "authentication protocol loop with server %s", s->host);
            s->conn.error = SMTP_IO_PROTOCOL;   /* close: a QUIT would be an answer */
            goto out;
        }
        if (saslc_next(c, challenge, &response, &err) != 0) {
            batch_result_open(s->batch, s->relay, 0, "4.7.0", "SASL authentication failed; "
                              "cannot authenticate to server %s: %s", s->host, err.s);
            s->conn.error = SMTP_IO_PROTOCOL;
            goto out;
        }
        sent = exchange(s, strbuf_str(&response));
    }
    if (sent != 0)
        goto out;
    if (s->reply.code / 100 != 2) {
        if (s->reply.code == 535 && s->setup->sasl->auth_cache)
            auth_cache_store(s, c);
        char dsn[sizeof s->reply.dsn];
        memcpy(dsn, s->reply.dsn, sizeof dsn);
        int hard = s->reply.code / 100 == 5 && !s->setup->sasl->soft_bounce;
        if (!hard)
            dsn[0] = '4';
        batch_result_open(s->batch, s->relay, hard, dsn,
                          "SASL authentication failed; server %s said: %s", s->host,
                          s->reply.text.s);
        goto out;
    }
    rc = 0;
out:
    if (line.s)
        explicit_bzero(line.s, line.len);
    if (response.s)
        explicit_bzero(response.s, response.len);
    strbuf_free(&line);
    strbuf_free(&response);
    strbuf_free(&err);
    return rc;
}

int sasl_client_login(struct smtp_session *s)
{
    const struct sasl_setup *sasl = s->setup->sasl;
    if (!sasl || !s->esmtp || s->features.auth.len == 0)
        return 0;           /* no AUTH offered: talk as strangers */
    struct strbuf entry = STRBUF_INIT, mechs = STRBUF_INIT;
    int rc = -1;
    int found = find_password(s, &entry);
    if (found < 0) {
        msg_warn("%s: %s lookup error", s->batch->req->queue_id, sasl->password_param);
        batch_result_open(s->batch, s->relay, 0, "4.3.0", "%s lookup error", sasl->password_param);
        goto out;
    }
    if (found == 0) {
        rc = 0;
        goto out;
    }
    if (filtered_mechanisms(s, &mechs) != 0) {
        batch_result_open(s->batch, s->relay, 0, "4.3.0", "%s_sasl_mechanism_filter lookup error",
                          s->setup->proto);
        goto out;
    }
    if (mechs.len == 0) {
        msg_warn("%s offered no supported AUTH mechanisms: '%s'", s->relay, s->features.auth.s);
        batch_result_open(s->batch, s->relay, 0, "4.7.0", "SASL authentication failed: server %s "
                          "offered no compatible authentication mechanisms for this type of "
                          "connection security", s->host);
        goto out;
    }
    unsigned required = s->tls_verified ? sasl->verified_options
                        : s->tls_active ? sasl->tls_options : sasl->clear_options;
    struct saslc client = {.mech = saslc_choose(mechs.s, required), .user = entry.s, .password = ""};
    char *colon = strchr(entry.s, ':');
    if (colon) {
        *colon = '\0';
        client.password = colon + 1;
    }
    if (!client.mech) {
        msg_warn("SASL authentication failure: No worthy mechs found");
        batch_result_open(s->batch, s->relay, 0, "4.7.0", "SASL authentication failed; "
                          "cannot authenticate to server %s: no mechanism available", s->host);
        goto out;
    }
    /* a recent 535 for these credentials: not asked again */
    rc = auth_cache_hit(s, &client) ? -1 : authenticate(s, &client);
    if (rc == 0 && strncasecmp(client.mech, "SCRAM-", 6) == 0 && !client.server_verified)
        msg_warn("%s: the server accepted %s without proving it knows the password", s->relay,
                 client.mech);
    saslc_free(&client);
out:
    if (entry.s)
        explicit_bzero(entry.s, entry.size);
    strbuf_free(&entry);
    strbuf_free(&mechs);
    return rc;
}

int sasl_sender_dependent(const struct smtp_setup *setup)
{
    return setup->sasl && setup->sasl->sender_dependent;
}
