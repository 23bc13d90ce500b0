/* tls.c - STARTTLS as a client, at the level tlspolicy.c found for the
 * connection (Postfix's smtp_tls_security_level and smtp_tls_policy_maps):
 *   none         never
 *   may          when the server offers it; in clear when it does not (or
 *                refuses STARTTLS); when the handshake fails, deferred
 *                once, then (for a message older than minimal_backoff_time)
 *                the same server again in clear, as Postfix; nothing checked
 *   encrypt      always; a server that does not offer it is tried later
 *   fingerprint  always, and the certificate's (or its public key's)
 *                digest (smtp_tls_fingerprint_digest) must be listed
 *   dane         always, and the certificate must match a TLSA record
 *                (OpenSSL's SSL_dane_* checks DANE-TA 2 and DANE-EE 3)
 *   verify       always, with a certificate that smtp_tls_CAfile (else the
 *                system's store) trusts, issued to a name of
 *                smtp_tls_verify_cert_match (the server's name)
 *   secure       the same, names from smtp_tls_secure_cert_match (the
 *                next-hop domain or a name under it)
 * smtp_tls_cert_file / smtp_tls_key_file give a client certificate, and
 * smtp_tls_loglevel >= 1 logs "Untrusted/Trusted/Verified TLS connection
 * established to HOST[ADDR]:PORT: ..." as Postfix does.  The library
 * helpers shared with smtpd are lib/net/tlscommon.c.
 *
 * smtp_tls_session_cache_database names a file (Postfix's "btree:PATH":
 * the path is taken, the content is postern's, lib/util/cachefile.c) where
 * the runners, which live for a few messages each, keep the sessions
 * servers gave them for smtp_tls_session_cache_timeout, so that the next
 * connection to the same server, address, port and TLS policy resumes
 * (OpenSSL's session tickets or ids) instead of a full handshake.  Postfix
 * keeps it in tlsmgr; a file of the runners' own user (0600, under
 * data_directory) needs no long-running process, and smtpd's user cannot
 * read it.  Not at the DANE levels, whose match a resumed session cannot
 * show again.
 */
#include <ctype.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cachefile.h"
#include "config.h"
#include "log.h"
#include "monotonic.h"
#include "smtp.h"
#include "sockconnect.h"
#include "tlscommon.h"
#include "xalloc.h"

static SSL_CTX *client_ctx;
static const char *cache_path;          /* the session cache, NULL: none */
static const char *cache_name;          /* its setting's value, for log lines */
static long long cache_timeout;         /* smtp_tls_session_cache_timeout */
static int cache_loglevel;

/* A new session from the server (at the handshake, or a TLS 1.3 ticket
 * that comes with the first reply): into the cache under the key the
 * connection was given (its app data). */
static int new_session(SSL *ssl, SSL_SESSION *session)
{
    const char *key = SSL_get_app_data(ssl);
    if (!key || !*key || !SSL_SESSION_is_resumable(session))
        return 0;
    int len = i2d_SSL_SESSION(session, NULL);
    if (len <= 0 || len > CACHEFILE_MAX_VALUE)
        return 0;
    unsigned char *der = xmalloc((size_t)len), *p = der;
    i2d_SSL_SESSION(session, &p);
    long long now = time(NULL);
    long long expires = now + cache_timeout;
    long long session_end = (long long)SSL_SESSION_get_time(session) + SSL_SESSION_get_timeout(session);
    if (session_end > now && session_end < expires)
        expires = session_end;
    static int warned;      /* once per runner: it may serve many messages */
    if (cachefile_put(cache_path, key, der, (size_t)len, expires, now) != 0) {
        if (!warned++)
            msg_warn_errno("cannot save a TLS session to %s", cache_path);
    } else if (cache_loglevel >= 2)
        msg_info("save session %s to %s cache", key, cache_name);
    explicit_bzero(der, (size_t)len);
    free(der);
    return 0;               /* no reference kept */
}

/* The session cache's setting: its file, or none. */
static void cache_setup(const struct smtp_setup *setup)
{
    char name[64];
    snprintf(name, sizeof name, "%s_tls_session_cache_database", setup->proto);
    const char *db = conf_str(name);
    snprintf(name, sizeof name, "%s_tls_session_cache_timeout", setup->proto);
    cache_timeout = conf_time(name);
    if (!*db || cache_timeout <= 0)
        return;
    if (cache_timeout > 8640000)        /* Postfix's limit: 100 days */
        cache_timeout = 8640000;
    /* "btree:/var/lib/postfix/smtp_scache", "proxy:lmdb:PATH": the path */
    const char *path = strrchr(db, ':') ? strrchr(db, ':') + 1 : db;
    if (*path != '/') {
        msg_warn("%s_tls_session_cache_database: \"%s\" is not an absolute path: no session cache",
                 setup->proto, db);
        return;
    }
    cache_path = path;
    cache_name = db;
    cache_loglevel = setup->tls_loglevel;
    SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(client_ctx, new_session);
}

int tls_client_setup(struct smtp_setup *setup)
{
    char name[64];
    if (tls_policy_setup(setup) != 0)
        return -1;
    snprintf(name, sizeof name, "%s_tls_loglevel", setup->proto);
    setup->tls_loglevel = (int)conf_int(name);
    if (!tls_policy_may_want_tls())
        return 0;
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx || SSL_CTX_dane_enable(client_ctx) <= 0) {
        tls_log_errors();
        return -1;
    }
    snprintf(name, sizeof name, "%s_tls_CAfile", setup->proto);
    const char *cafile = conf_str(name);
    snprintf(name, sizeof name, "%s_tls_CApath", setup->proto);
    const char *capath = conf_raw(name) ? conf_str(name) : "";
    if ((*cafile || *capath)
        ? SSL_CTX_load_verify_locations(client_ctx, *cafile ? cafile : NULL,
                                        *capath ? capath : NULL) != 1
        : SSL_CTX_set_default_verify_paths(client_ctx) != 1) {
        msg_warn("cannot load the certificate authorities %s", *cafile ? cafile : capath);
        tls_log_errors();
        if (setup->tls_level >= TLS_VERIFY)
            return -1;
    }
    snprintf(name, sizeof name, "%s_tls_cert_file", setup->proto);
    const char *cert = conf_str(name);
    snprintf(name, sizeof name, "%s_tls_key_file", setup->proto);
    const char *key = conf_str(name);
    if (!*key)
        key = cert;
    if (*cert && (SSL_CTX_use_certificate_chain_file(client_ctx, cert) != 1
                  || SSL_CTX_use_PrivateKey_file(client_ctx, key, SSL_FILETYPE_PEM) != 1
                  || SSL_CTX_check_private_key(client_ctx) != 1)) {
        msg_warn("cannot load the client certificate %s and key %s", cert, key);
        tls_log_errors();
        return -1;
    }
    /* verification is judged after the handshake, so "may" still talks to
     * a server whose certificate nobody trusts */
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    cache_setup(setup);
    return 0;
}

/* The cache key of a connection: what must be the same for a session to
 * be resumed (the server's name, address and port, the SNI name, the
 * level and everything that decides what is accepted, our certificate,
 * OpenSSL's version, as Postfix salts it), as a SHA-256 in hex.  "" when
 * this connection uses no cache. */
static void cache_key(const struct smtp_session *s, char key[65])
{
    const struct tls_policy *p = &s->tls;
    key[0] = '\0';
    if (!cache_path || p->level == TLS_HALF_DANE || p->level == TLS_DANE || p->level == TLS_DANE_ONLY)
        return;
    struct strbuf id = STRBUF_INIT;
    strbuf_printf(&id, "%s&%s&%s&%d&%s&%s&%s", s->setup->proto, s->relay, strbuf_str(&p->servername),
                  (int)p->level, strbuf_str(&p->protocols), strbuf_str(&p->ciphers),
                  strbuf_str(&p->exclude));
    for (size_t i = 0; i < p->match.count; i++)
        strbuf_printf(&id, "&m=%s", p->match.item[i]);
    for (size_t i = 0; i < p->tlsa.count; i++)
        strbuf_printf(&id, "&t=%s", p->tlsa.item[i]);
    char name[64];          /* a session made with another client certificate */
    snprintf(name, sizeof name, "%s_tls_cert_file", s->setup->proto);
    strbuf_printf(&id, "&cert=%s&l=%lx", conf_str(name), (unsigned long)OpenSSL_version_num());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(id.s, id.len, digest, &n, EVP_sha256(), NULL) == 1)
        for (unsigned i = 0; i < n && i < 32; i++)
            snprintf(key + 2 * i, 3, "%02x", digest[i]);
    strbuf_free(&id);
}

/* Offer the cached session of this connection, if any. */
static void cache_offer(SSL *ssl, const struct smtp_session *s, const char *key)
{
    struct strbuf der = STRBUF_INIT;
    if (*key && cachefile_get(cache_path, key, time(NULL), &der) == 1) {
        const unsigned char *p = (const unsigned char *)der.s;
        SSL_SESSION *session = d2i_SSL_SESSION(NULL, &p, (long)der.len);
        if (session && SSL_SESSION_is_resumable(session) && SSL_set_session(ssl, session) == 1
            && cache_loglevel >= 2)
            msg_info("%s: reloaded session %s from %s cache", s->relay, key, cache_name);
        SSL_SESSION_free(session);
        ERR_clear_error();
    }
    if (der.s)
        explicit_bzero(der.s, der.len);
    strbuf_free(&der);
}

/* Whether the certificate bears a name the policy accepts: each match
 * word is "hostname" (the server's name), "nexthop" (the next-hop domain),
 * "dot-nexthop" (a name under it) or a name (".example.com": any name
 * under example.com), as Postfix's smtp_tls_verify_cert_match and
 * smtp_tls_secure_cert_match say. */
static int name_matches(X509 *cert, const struct smtp_session *s)
{
    const struct tls_policy *p = &s->tls;
    for (size_t i = 0; i < p->match.count; i++) {
        const char *w = p->match.item[i];
        char name[300];
        if (strcasecmp(w, "hostname") == 0)
            snprintf(name, sizeof name, "%s", s->target->host);
        else if (strcasecmp(w, "nexthop") == 0)
            snprintf(name, sizeof name, "%s", p->nexthop_domain);
        else if (strcasecmp(w, "dot-nexthop") == 0)
            snprintf(name, sizeof name, ".%s", p->nexthop_domain);
        else
            snprintf(name, sizeof name, "%s", w);
        if (strlen(name) > 1 && X509_check_host(cert, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                                NULL) == 1)
            return 1;
    }
    return 0;
}

/* Hex digits to lower case without ':' (fingerprints compare so). */
static void fingerprint_normal(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (; *in && o + 1 < size; in++)
        if (*in != ':')
            out[o++] = (char)tolower((unsigned char)*in);
    out[o] = '\0';
}

/* fingerprint: the digest of the certificate or of its public key is one
 * of the policy's (smtp_tls_fingerprint_digest, "AB:CD:..."). */
static int fingerprint_matches(X509 *cert, const struct smtp_session *s)
{
    char digest_name[32];
    snprintf(digest_name, sizeof digest_name, "%s_tls_fingerprint_digest", s->setup->proto);
    const EVP_MD *md = EVP_get_digestbyname(conf_str(digest_name));
    if (!md) {
        msg_warn("%s: unknown digest \"%s\"", digest_name, conf_str(digest_name));
        return 0;
    }
    unsigned char bytes[2][EVP_MAX_MD_SIZE];
    unsigned int len[2] = {0, 0};
    if (X509_digest(cert, md, bytes[0], &len[0]) != 1
        || X509_pubkey_digest(cert, md, bytes[1], &len[1]) != 1)
        return 0;
    for (int k = 0; k < 2; k++) {
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        for (unsigned i = 0; i < len[k]; i++)
            snprintf(hex + 2 * i, 3, "%02x", bytes[k][i]);
        for (size_t i = 0; i < s->tls.match.count; i++) {
            char want[2 * EVP_MAX_MD_SIZE + 1];
            fingerprint_normal(s->tls.match.item[i], want, sizeof want);
            if (strcmp(want, hex) == 0)
                return 1;
        }
    }
    return 0;
}

/* The connection's protocols, ciphers and, at the dane levels, the TLSA
 * records; 0, or -1 when the policy cannot be applied (logged). */
static int configure(SSL *ssl, const struct smtp_session *s)
{
    const struct tls_policy *p = &s->tls;
    int lowest, highest;
    unsigned long holes;
    struct strbuf list = STRBUF_INIT;
    int rc = -1;
    if (tls_protocol_range(p->protocols.s ? p->protocols.s : "", "protocols", &lowest, &highest,
                           &holes) != 0
        || !SSL_set_min_proto_version(ssl, lowest) || !SSL_set_max_proto_version(ssl, highest))
        goto out;
    if (holes)
        SSL_set_options(ssl, holes);
    if (tls_grade_cipherlist(p->ciphers.s ? p->ciphers.s : "medium", p->exclude.s, "ciphers",
                             &list) != 0)
        goto out;
    if (SSL_set_cipher_list(ssl, list.s) != 1) {
        msg_warn("invalid cipher list \"%s\"", list.s);
        goto out;
    }
    if (p->servername.len)
        /* SNI only when asked for (smtp_tls_servername, servername=); a
         * name, never an address (checked by tlspolicy.c); DANE sends its
         * base name */
        SSL_set_tlsext_host_name(ssl, p->servername.s);
    if (p->tlsa.count) {
        /* DANE: the TLSA base domain is the server's name (RFC 7672
         * 2.2.2); a DANE-EE(3) match needs no name (RFC 7672 3.1.1).
         * verify/secure with trust anchors (tafile=): the names of the
         * policy too, name_matches() has the last word */
        if (SSL_dane_enable(ssl, s->target->host) <= 0)
            goto out;
        SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        for (size_t i = 0; (p->level == TLS_VERIFY || p->level == TLS_SECURE) && i < p->match.count; i++) {
            const char *w = p->match.item[i];
            const char *name = strcasecmp(w, "hostname") == 0 ? s->target->host
                               : strcasecmp(w, "nexthop") == 0 || strcasecmp(w, "dot-nexthop") == 0
                                     ? p->nexthop_domain : w;
            char dotted[300];
            if (strcasecmp(w, "dot-nexthop") == 0) {
                snprintf(dotted, sizeof dotted, ".%s", name);
                name = dotted;
            }
            SSL_add1_host(ssl, name);
        }
        int usable = 0;
        for (size_t i = 0; i < p->tlsa.count; i++) {
            unsigned usage, selector, mtype;
            int off = 0;
            if (sscanf(p->tlsa.item[i], "%u %u %u %n", &usage, &selector, &mtype, &off) < 3 || !off)
                continue;
            const char *hex = p->tlsa.item[i] + off;
            size_t n = strlen(hex) / 2;
            unsigned char *data = xmalloc(n ? n : 1);
            for (size_t k = 0; k < n; k++) {
                unsigned v = 0;
                sscanf(hex + 2 * k, "%2x", &v);
                data[k] = (unsigned char)v;
            }
            if (SSL_dane_tlsa_add(ssl, (uint8_t)usage, (uint8_t)selector, (uint8_t)mtype, data, n) > 0)
                usable++;
            free(data);
        }
        ERR_clear_error();
        if (!usable)        /* nothing OpenSSL can match: nothing will verify */
            msg_warn("no usable TLSA record for %s", s->relay);
    }
    rc = 0;
out:
    strbuf_free(&list);
    return rc;
}

/* Postfix's plaintext fallback at "may" (its smtp.h,
 * PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE): only for a message that
 * has waited at least minimal_backoff_time, so a fresh message is deferred
 * once ("Cannot start TLS: handshake failure") and goes in clear at a
 * later attempt; then the failure is logged as "ID: Cannot start TLS:
 * handshake failure" and the same server is tried again without TLS. */
static int retry_in_clear(const struct smtp_session *s, enum tls_level level)
{
    const struct runner_request *req = s->batch->req;
    if (level != TLS_MAY || (long long)(time(NULL) - req->arrival) < conf_time("minimal_backoff_time"))
        return 0;
    /* Postfix: never in clear when a password would be sent */
    if (sasl_has_credentials(s))
        return 0;
    msg_info("%s: Cannot start TLS: handshake failure", *req->queue_id ? req->queue_id : "NOQUEUE");
    return 1;
}

int tls_client_starttls(struct smtp_session *s)
{
    const struct smtp_setup *setup = s->setup;
    enum tls_level level = s->tls.level;
    if (level == TLS_NONE || !client_ctx)
        return 0;
    if (s->target->sa.ss_family == AF_UNIX && level <= TLS_MAY)
        return 0;
    int required = level >= TLS_ENCRYPT;
    if (!s->features.starttls) {
        tlsrpt_record(s, "starttls-not-supported");
        if (!required)
            return 0;
        batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, "4.7.4"),
                          "TLS is required, but was not offered by host %s", s->host);
        return -1;
    }
    smtp_queue(&s->conn, "STARTTLS\r\n", 10);
    if (smtp_flush(&s->conn, setup->starttls_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, setup->starttls_timeout) != 0) {
        io_failure(s, s->relay, "sending STARTTLS");
        return -1;
    }
    if (s->reply.code != 220) {
        tlsrpt_record(s, "starttls-not-supported");
        if (!required)
            return 0;       /* "may": on in clear */
        batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, "4.7.5"),
                          "TLS is required, but host %s refused to start TLS: %s", s->host,
                          s->reply.text.s);
        return -1;
    }
    SSL *ssl = SSL_new(client_ctx);
    if (!ssl || SSL_set_fd(ssl, s->conn.fd) != 1 || configure(ssl, s) != 0) {
        tls_log_errors();
        SSL_free(ssl);
        s->conn.error = SMTP_IO_LOST;       /* the server waits for a handshake */
        batch_result_open(s->batch, s->relay, 0, "4.7.5", "Cannot start TLS: internal error");
        return -1;
    }
    cache_key(s, s->tls_cache_key);
    if (*s->tls_cache_key) {
        SSL_set_app_data(ssl, s->tls_cache_key);    /* for new_session() */
        cache_offer(ssl, s, s->tls_cache_key);
    }
    smtp_conn_set_tls(&s->conn, ssl);
    long long deadline = monotonic_ms() + (long long)setup->starttls_timeout * 1000;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!want || sock_wait(s->conn.fd, want, deadline) <= 0) {
            if (setup->tls_loglevel >= 1)
                msg_info("SSL_connect error to %s: %s", s->relay, want ? "timeout" : "handshake failure");
            tls_log_errors();
            if (*s->tls_cache_key) {
                /* a session the server no longer takes is not offered again */
                SSL_set_app_data(ssl, NULL);
                cachefile_delete(cache_path, s->tls_cache_key, time(NULL));
            }
            s->conn.error = SMTP_IO_LOST;       /* no QUIT through a broken session */
            tlsrpt_record(s, "validation-failure");
            s->tls_retry_plain = retry_in_clear(s, level);
            batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, "4.7.5"),
                              "Cannot start TLS: handshake failure");
            return -1;
        }
    }
    if (SSL_session_reused(ssl) && setup->tls_loglevel >= 2)
        msg_info("%s: Reusing old session", s->relay);
    X509 *cert = SSL_get1_peer_certificate(ssl);
    long verify = SSL_get_verify_result(ssl);
    int trusted = 0, matched = 0;
    if (cert) {
        switch (level) {
        case TLS_FINGERPRINT:
            trusted = matched = fingerprint_matches(cert, s);
            break;
        case TLS_HALF_DANE:
        case TLS_DANE:
            /* only a TLSA record authenticates at these levels */
            trusted = matched = verify == X509_V_OK && SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
            break;
        case TLS_VERIFY:
        case TLS_SECURE:
            /* Postfix 3.7 lets OpenSSL check the names with the chain: a
             * certificate of the wrong name is "Untrusted" (compared) */
            trusted = matched = verify == X509_V_OK && name_matches(cert, s);
            break;
        default:
            trusted = verify == X509_V_OK;
            break;
        }
    }
    if (setup->tls_loglevel >= 1) {
        const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
        int alg_bits = 0, bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
        char kex[80] = "", sig[160] = "";
        EVP_PKEY *tmp = NULL;
        if (SSL_get_peer_tmp_key(ssl, &tmp) == 1) {
            tls_describe_key(tmp, kex, sizeof kex, " key-exchange ", 0);
            EVP_PKEY_free(tmp);
        }
        int sig_nid = 0, digest_nid = NID_undef;
        SSL_get_peer_signature_type_nid(ssl, &sig_nid);
        char group[64];
        EVP_PKEY *peer_key = cert ? X509_get0_pubkey(cert) : NULL;
        if (peer_key && EVP_PKEY_get_base_id(peer_key) == EVP_PKEY_EC
            && EVP_PKEY_get_group_name(peer_key, group, sizeof group, NULL))
            /* Postfix 3.7's client names the peer's curve as OpenSSL 3
             * does: "ECDSA (prime256v1)" (compared on this machine) */
            snprintf(sig, sizeof sig, " server-signature ECDSA (%s)", group);
        else if (peer_key)
            tls_describe_key(peer_key, sig, sizeof sig, " server-signature ", sig_nid);
        /* " server-digest SHA256", as Postfix logs it (none for Ed25519) */
        if (cert && SSL_get_peer_signature_nid(ssl, &digest_nid) == 1 && digest_nid != NID_undef
            && strlen(sig) + 20 < sizeof sig)
            snprintf(sig + strlen(sig), sizeof sig - strlen(sig), " server-digest %s",
                     OBJ_nid2sn(digest_nid));
        /* a DANE match through an MX record DNSSEC did not sign is only
         * "Trusted": the MX name could be forged */
        msg_info("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)%s%s",
                 matched && level != TLS_HALF_DANE ? "Verified" : trusted ? "Trusted" : "Untrusted",
                 s->relay, SSL_get_version(ssl), cipher ? SSL_CIPHER_get_name(cipher) : "unknown",
                 bits, alg_bits, kex, sig);
    }
    X509_free(cert);
    if (SSL_session_reused(ssl) && !trusted && setup->tls_loglevel >= 1)
        msg_info("%s: re-using session with untrusted certificate, look for details earlier in the log",
                 s->relay);
    /* above encrypt the certificate must match (Postfix 3.7 says "not
     * verified" whether the chain or the name failed) */
    if (level > TLS_ENCRYPT && !matched) {
        tlsrpt_record(s, level == TLS_DANE || level == TLS_DANE_ONLY || level == TLS_HALF_DANE
                             ? "tlsa-invalid"
                         : verify == X509_V_ERR_CERT_HAS_EXPIRED ? "certificate-expired"
                         : verify == X509_V_OK ? "certificate-host-mismatch"
                         : "certificate-not-trusted");
        batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, "4.7.5"),
                          "Server certificate not verified");
        return -1;
    }
    s->tls_active = 1;
    tlsrpt_record(s, "success");
    s->tls_verified = matched && level != TLS_HALF_DANE;  /* "Verified" */
    /* the extensions again, now under TLS (RFC 3207) */
    smtp_queuef(&s->conn, "%s %s\r\n", setup->lmtp ? "LHLO" : "EHLO", setup->helo_name);
    if (smtp_flush(&s->conn, setup->helo_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, setup->helo_timeout) != 0) {
        io_failure(s, s->relay, "performing the EHLO handshake");
        /* the TLS session broke: "may" tries the server again in clear */
        s->tls_retry_plain = retry_in_clear(s, level);
        return -1;
    }
    if (s->reply.code / 100 != 2) {
        batch_result_open(s->batch, s->relay, s->reply.code >= 500, s->reply.dsn,
                          "host %s said: %s (in reply to EHLO command)", s->host, s->reply.text.s);
        return -1;
    }
    return session_features(s);
}
