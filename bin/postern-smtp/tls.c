/* tls.c - STARTTLS as a client, as Postfix's smtp_tls_security_level says:
 *   none      never
 *   may       when the server offers it; in clear when it does not (or
 *             refuses STARTTLS); the certificate is not checked
 *   encrypt   always; a server that does not offer it is tried later
 *   verify    always, with a certificate that smtp_tls_CAfile (else the
 *             system's store) trusts, issued to the server's name
 *   secure    the same, issued to the next-hop domain (or a name under it)
 * smtp_tls_cert_file / smtp_tls_key_file give a client certificate, and
 * smtp_tls_loglevel >= 1 logs "Untrusted/Trusted/Verified TLS connection
 * established to HOST[ADDR]:PORT: ..." as Postfix does.  The library
 * helpers shared with smtpd are lib/net/tlscommon.c.  DANE, MTA-STS and
 * smtp_tls_policy_maps are not implemented yet.
 */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "smtp.h"
#include "tlscommon.h"

static SSL_CTX *client_ctx;

/* The level from smtp_tls_security_level (or the old smtp_use_tls and
 * smtp_enforce_tls); -1 when the word is unknown. */
static int level_from_config(const char *proto)
{
    char name[64];
    snprintf(name, sizeof name, "%s_tls_security_level", proto);
    const char *level = conf_str(name);
    if (!*level) {
        snprintf(name, sizeof name, "%s_enforce_tls", proto);
        if (conf_bool(name))
            return TLS_ENCRYPT;
        snprintf(name, sizeof name, "%s_use_tls", proto);
        return conf_bool(name) ? TLS_MAY : TLS_NONE;
    }
    static const struct { const char *word; int level; } words[] = {
        {"none", TLS_NONE}, {"may", TLS_MAY}, {"encrypt", TLS_ENCRYPT},
        {"verify", TLS_VERIFY}, {"secure", TLS_SECURE},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(level, words[i].word) == 0)
            return words[i].level;
    msg_warn("%s: \"%s\" is not implemented (none, may, encrypt, verify, secure are)", name, level);
    return -1;
}

int tls_client_setup(struct smtp_setup *setup)
{
    char name[64];
    int level = level_from_config(setup->proto);
    if (level < 0)
        return -1;
    setup->tls_level = (enum tls_level)level;
    snprintf(name, sizeof name, "%s_tls_loglevel", setup->proto);
    setup->tls_loglevel = (int)conf_int(name);
    if (setup->tls_level == TLS_NONE)
        return 0;
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx) {
        tls_log_errors();
        return -1;
    }
    snprintf(name, sizeof name, "%s_tls_%sprotocols", setup->proto,
             setup->tls_level >= TLS_ENCRYPT ? "mandatory_" : "");
    if (tls_apply_protocols(client_ctx, name) != 0)
        return -1;
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
    return 0;
}

/* Whether the certificate names the host (verify) or the next-hop domain
 * (secure: the domain itself or a name under it). */
static int name_matches(X509 *cert, const struct smtp_session *s)
{
    if (s->setup->tls_level == TLS_SECURE) {
        const char *nexthop = s->batch->nexthop;
        char domain[256];
        size_t n = strcspn(nexthop[0] == '[' ? nexthop + 1 : nexthop, "]:, ");
        snprintf(domain, sizeof domain, "%.*s", (int)n, nexthop[0] == '[' ? nexthop + 1 : nexthop);
        if (X509_check_host(cert, domain, 0, 0, NULL) == 1)
            return 1;
        char sub[260];
        snprintf(sub, sizeof sub, ".%s", domain);
        return X509_check_host(cert, sub, 0, X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS, NULL) == 1;
    }
    return X509_check_host(cert, s->target->host, 0, 0, NULL) == 1;
}

int tls_client_starttls(struct smtp_session *s)
{
    const struct smtp_setup *setup = s->setup;
    if (setup->tls_level == TLS_NONE || s->target->sa.ss_family == AF_UNIX)
        return 0;
    int required = setup->tls_level >= TLS_ENCRYPT;
    if (!s->features.starttls) {
        if (!required)
            return 0;
        batch_result_open(s->batch, s->relay, 0, "4.7.4",
                          "TLS is required, but was not offered by host %s", s->host);
        return -1;
    }
    smtp_queue(&s->conn, "STARTTLS\r\n", 10);
    if (smtp_flush(&s->conn, setup->starttls_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, setup->starttls_timeout) != 0) {
        batch_result_open(s->batch, s->relay, 0, "4.4.2", "%s with %s while sending STARTTLS",
                          s->conn.error == SMTP_IO_TIMEOUT ? "conversation timed out"
                                                           : "lost connection", s->host);
        return -1;
    }
    if (s->reply.code != 220) {
        if (!required)
            return 0;       /* "may": on in clear */
        batch_result_open(s->batch, s->relay, 0, "4.7.5",
                          "TLS is required, but host %s refused to start TLS: %s", s->host,
                          s->reply.text.s);
        return -1;
    }
    SSL *ssl = SSL_new(client_ctx);
    if (!ssl || SSL_set_fd(ssl, s->conn.fd) != 1) {
        tls_log_errors();
        SSL_free(ssl);
        batch_result_open(s->batch, s->relay, 0, "4.7.5", "Cannot start TLS: internal error");
        return -1;
    }
    /* SNI names a host, never an address (RFC 6066, 3) */
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s->target->host, addr) != 1
        && inet_pton(AF_INET6, s->target->host, addr) != 1)
        SSL_set_tlsext_host_name(ssl, s->target->host);
    smtp_conn_set_tls(&s->conn, ssl);
    long long deadline = smtp_now_ms() + (long long)setup->starttls_timeout * 1000;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!want || smtp_wait_fd(s->conn.fd, want, deadline) <= 0) {
            if (setup->tls_loglevel >= 1)
                msg_info("SSL_connect error to %s: %s", s->relay, want ? "timeout" : "handshake failure");
            tls_log_errors();
            s->conn.error = SMTP_IO_LOST;       /* no QUIT through a broken session */
            batch_result_open(s->batch, s->relay, 0, "4.7.5", "Cannot start TLS: handshake failure");
            return -1;
        }
    }
    X509 *cert = SSL_get1_peer_certificate(ssl);
    int trusted = cert && SSL_get_verify_result(ssl) == X509_V_OK;
    int verified = trusted && name_matches(cert, s);
    if (setup->tls_loglevel >= 1) {
        const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
        int alg_bits = 0, bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
        char kex[80] = "", sig[160] = "";
        EVP_PKEY *tmp = NULL;
        if (SSL_get_peer_tmp_key(ssl, &tmp) == 1) {
            tls_describe_key(tmp, kex, sizeof kex, " key-exchange ", 0);
            EVP_PKEY_free(tmp);
        }
        int sig_nid = 0;
        SSL_get_peer_signature_type_nid(ssl, &sig_nid);
        if (cert)
            tls_describe_key(X509_get0_pubkey(cert), sig, sizeof sig, " server-signature ", sig_nid);
        msg_info("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)%s%s",
                 verified ? "Verified" : trusted ? "Trusted" : "Untrusted", s->relay,
                 SSL_get_version(ssl), cipher ? SSL_CIPHER_get_name(cipher) : "unknown", bits,
                 alg_bits, kex, sig);
    }
    X509_free(cert);
    if (setup->tls_level >= TLS_VERIFY && !verified) {
        batch_result_open(s->batch, s->relay, 0, "4.7.5",
                          "Server certificate not %s", trusted ? "verified" : "trusted");
        return -1;
    }
    s->tls_active = 1;
    s->tls_verified = verified;
    /* the extensions again, now under TLS (RFC 3207) */
    smtp_queuef(&s->conn, "%s %s\r\n", setup->lmtp ? "LHLO" : "EHLO", setup->helo_name);
    if (smtp_flush(&s->conn, setup->helo_timeout) != 0
        || smtp_read_reply(&s->conn, &s->reply, setup->helo_timeout) != 0) {
        batch_result_open(s->batch, s->relay, 0, "4.4.2", "lost connection with %s while performing the EHLO handshake",
                          s->host);
        return -1;
    }
    if (s->reply.code / 100 != 2) {
        batch_result_open(s->batch, s->relay, s->reply.code >= 500, s->reply.dsn,
                          "host %s said: %s (in reply to EHLO command)", s->host, s->reply.text.s);
        return -1;
    }
    smtp_features_parse(&s->reply, &s->features);
    return 0;
}
