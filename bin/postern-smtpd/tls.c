/* tls.c - postern-smtpd's TLS (OpenSSL): the server context, built once
 * from main.cf (in a zygote before it forks, so every connection only pays
 * for its handshake), STARTTLS and wrapper mode (465), reading and writing
 * through the TLS session with smtpd_timeout, and what Postfix logs and
 * writes into the Received header about a TLS session.
 *
 * OpenSSL is linked statically into this static-pie program: it is told
 * never to read openssl.cnf (OPENSSL_INIT_NO_LOAD_CONFIG), so no engine or
 * provider module is loaded; the built-in default provider does the work
 * (nolookup.c keeps the name service and dlopen out of the link).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "filekeeper.h"
#include "log.h"
#include "smtpd.h"
#include "strlist.h"
#include "tlscommon.h"
#include "xalloc.h"
#include "zygote.h"

/* a certificate or key file larger than this is not read */
#define TLS_FILE_MAX (1 << 20)

static SSL_CTX *server_ctx;     /* NULL: TLS not available (STARTTLS says 454) */
static SSL_CTX *context_new(int mandatory);
static int tls_loglevel;
static int received_header;
static int ask_ccert;
static int req_ccert;           /* smtpd_tls_req_ccert under encrypt */
static long long handshake_timeout;
static int dh_file_bits;        /* smtpd_tls_dh1024_param_file's group, 0: automatic */

/* What the session negotiated, for the log line and the Received header. */
static struct {
    char protocol[32];          /* "TLSv1.3" */
    char cipher[80];
    int usebits, algbits;
    char kex[64];               /* " key-exchange X25519" or "" */
    char sig[128];              /* " server-signature RSA-PSS (2048 bits) server-digest SHA256" */
    char fingerprint[200];      /* the client certificate's, "" without one */
    char pkey_fingerprint[200]; /* its public key's */
    char peer_cn[128], issuer_cn[128];
    int peer_cert, peer_verified;
} info;


/* ---- the server context ---- */


/* The cipher grade (smtpd_tls_ciphers: export, low, medium, high, null)
 * as its tls_*_cipherlist, minus the excluded ciphers.  TLS 1.3 suites are
 * OpenSSL's own, as in Postfix. */
static int apply_ciphers(SSL_CTX *ctx, const char *grade_param, int mandatory)
{
    struct strbuf exclusions = STRBUF_INIT, list = STRBUF_INIT;
    strbuf_puts(&exclusions, conf_str("smtpd_tls_exclude_ciphers"));
    if (mandatory)
        strbuf_printf(&exclusions, " %s", conf_str("smtpd_tls_mandatory_exclude_ciphers"));
    int rc = tls_grade_cipherlist(conf_str(grade_param), exclusions.s, grade_param, &list);
    if (rc == 0 && !SSL_CTX_set_cipher_list(ctx, strbuf_str(&list))) {
        msg_warn("invalid cipher list \"%s\": disabling TLS support", strbuf_str(&list));
        rc = -1;
    }
    strbuf_free(&exclusions);
    strbuf_free(&list);
    return rc;
}

/* Key exchange: the ECDHE groups of tls_eecdh_auto_curves (those OpenSSL
 * knows; smtpd_tls_eecdh_grade is ignored, as Postfix 3.6 and later do),
 * and the DHE group of smtpd_tls_dh1024_param_file, else OpenSSL's choice
 * by key size. */
static void apply_key_exchange(SSL_CTX *ctx)
{
    struct strlist curves = STRLIST_INIT;
    conf_list("tls_eecdh_auto_curves", &curves);
    struct strbuf groups = STRBUF_INIT;
    for (size_t i = 0; i < curves.count; i++)
        if (SSL_CTX_set1_groups_list(ctx, curves.item[i]) == 1)
            strbuf_printf(&groups, "%s%s", groups.len ? ":" : "", curves.item[i]);
    ERR_clear_error();
    if (!groups.len || SSL_CTX_set1_groups_list(ctx, strbuf_str(&groups)) != 1) {
        msg_warn("no usable curve in tls_eecdh_auto_curves: using OpenSSL's");
        (void)SSL_CTX_set1_groups_list(ctx, "X25519:prime256v1:secp384r1");
    }
    strbuf_free(&groups);
    strlist_free(&curves);
    const char *file = conf_str("smtpd_tls_dh1024_param_file");
    EVP_PKEY *dh = NULL;
    if (*file) {
        BIO *bio = BIO_new_file(file, "r");
        dh = bio ? PEM_read_bio_Parameters(bio, NULL) : NULL;
        BIO_free(bio);
        int bits = dh ? EVP_PKEY_get_bits(dh) : 0;
        if (dh && SSL_CTX_set0_tmp_dh_pkey(ctx, dh) == 1) {
            dh_file_bits = bits;
            return;
        }
        EVP_PKEY_free(dh);
        tls_log_errors();
        msg_warn("cannot load DH parameters from file \"%s\": using the built-in ones", file);
    }
    SSL_CTX_set_dh_auto(ctx, 1);
}

/* The files that hold certificates and keys: smtpd_tls_chain_files (each
 * a key and its chain; one per algorithm, RSA and ECDSA), else
 * smtpd_tls_cert_file and smtpd_tls_key_file (the key in the certificate's
 * file when empty).  Each item is "c" (certificate chain), "k" (key) or
 * "ck" (both), then the path. */
static void key_files(struct strlist *out)
{
    struct strlist files = STRLIST_INIT;
    conf_list("smtpd_tls_chain_files", &files);
    struct strbuf item = STRBUF_INIT;
    for (size_t i = 0; i < files.count; i++) {
        strbuf_reset(&item);
        strbuf_printf(&item, "ck%s", files.item[i]);
        strlist_add(out, item.s);
    }
    const char *cert = conf_str("smtpd_tls_cert_file"), *key = conf_str("smtpd_tls_key_file");
    if (!files.count && *cert) {
        strbuf_reset(&item);
        strbuf_printf(&item, "%s%s", *key && strcmp(key, cert) != 0 ? "c" : "ck", cert);
        strlist_add(out, item.s);
        if (*key && strcmp(key, cert) != 0) {
            strbuf_reset(&item);
            strbuf_printf(&item, "k%s", key);
            strlist_add(out, item.s);
        }
    }
    strbuf_free(&item);
    strlist_free(&files);
}

/* The path of a key_files() item. */
static const char *key_file_path(const char *item)
{
    return item + strspn(item, "ck");
}

/* PEM pass phrases are not asked for: an encrypted key does not load. */
static int no_passphrase(char *buf, int size, int rwflag, void *data)
{
    (void)buf, (void)size, (void)rwflag, (void)data;
    return -1;
}

/* The certificate and its chain from PEM text, as
 * SSL_CTX_use_certificate_chain_file does from a file: the first
 * certificate is the server's (for its key's algorithm), the others its
 * chain; other PEM blocks (the key) are skipped. */
static int use_chain(SSL_CTX *ctx, BIO *bio)
{
    X509 *cert = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
    if (!cert || SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1) {
        X509_free(cert);
        return -1;
    }
    X509_free(cert);
    X509 *ca;
    while ((ca = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            return -1;
        }
    unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) != ERR_LIB_PEM || ERR_GET_REASON(err) != PEM_R_NO_START_LINE)
        return -1;
    ERR_clear_error();              /* the end of the file */
    return 0;
}

/* The private key from PEM text. */
static int use_key(SSL_CTX *ctx, BIO *bio)
{
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    int rc = pkey && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 ? 0 : -1;
    EVP_PKEY_free(pkey);
    return rc;
}

/* Load the certificates and keys of key_files().  The files are read
 * whole through the file keeper (lib/util/filekeeper.h: a root process
 * that opens them again for a zygote that gave root up, so that a reload
 * can read a key only root may read), then parsed from memory. */
static int load_keys(SSL_CTX *ctx)
{
    struct strlist files = STRLIST_INIT;
    key_files(&files);
    int rc = 0;
    if (!files.count) {
        msg_warn("no certificate: smtpd_tls_cert_file and smtpd_tls_chain_files are empty");
        rc = -1;
    }
    for (size_t i = 0; i < files.count && rc == 0; i++) {
        const char *item = files.item[i], *path = key_file_path(item);
        char *pem = NULL;
        size_t len = 0;
        /* Postfix's words for each kind of file */
        int chain_file = *conf_str("smtpd_tls_chain_files") != '\0';
        const char *what = chain_file ? "cannot load a key and certificate chain from file"
                         : item[0] == 'c' ? "cannot get certificate from file"
                         : "cannot get private key from file";
        if (filekeeper_read(path, TLS_FILE_MAX, &pem, &len) < 0) {
            msg_warn_errno("%s \"%s\"", what, path);
            rc = -1;
            break;
        }
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio) {
            rc = -1;
        } else if (item[0] == 'c' && use_chain(ctx, bio) < 0) {
            msg_warn("%s \"%s\"", chain_file ? "cannot load a key and certificate chain from file"
                                               : "cannot get certificate from file", path);
            rc = -1;
        } else if (memchr(item, 'k', (size_t)(path - item)) && (BIO_reset(bio) != 1 || use_key(ctx, bio) < 0)) {
            msg_warn("%s \"%s\"", chain_file ? "cannot load a key and certificate chain from file"
                                               : "cannot get private key from file", path);
            rc = -1;
        }
        BIO_free(bio);
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    strlist_free(&files);
    if (rc == 0 && SSL_CTX_check_private_key(ctx) != 1) {
        msg_warn("the private key does not match the certificate");
        rc = -1;
    }
    return rc;
}

/* A zygote started as root that will drop to another user (postern-accept
 * -z -u): a file keeper, forked before anything secret is read, opens the
 * certificate and key files again for a reload (filekeeper.h). */
static void start_file_keeper(void)
{
    const char *ids = getenv(ZYGOTE_USER_VARIABLE);
    if (!getenv(ZYGOTE_FD_VARIABLE) || !ids || geteuid() != 0 || strncmp(ids, "0:", 2) == 0)
        return;
    struct strlist files = STRLIST_INIT;
    key_files(&files);
    const char **paths = xreallocarray(NULL, files.count + 1, sizeof *paths);
    for (size_t i = 0; i < files.count; i++)
        paths[i] = key_file_path(files.item[i]);
    if (files.count && filekeeper_start(paths, files.count) < 0)
        msg_warn_errno("cannot start the process that reads the TLS key again: "
                       "a reload will need a key readable by the zygote's user");
    /* the keeper has its copy of the list (fork) */
    free(paths);
    strlist_free(&files);
}

/* Accept every client certificate during the handshake; whether it was
 * verified is read afterwards (Postfix's "Untrusted" and "Trusted"). */
static int verify_any(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1;
}

int tls_level_from_config(void)
{
    const char *level = conf_str("smtpd_tls_security_level");
    if (*level) {
        if (strcasecmp(level, "encrypt") == 0)
            return TLS_LEVEL_ENCRYPT;
        if (strcasecmp(level, "may") == 0)
            return TLS_LEVEL_MAY;
        if (strcasecmp(level, "none") != 0)
            msg_warn("invalid smtpd_tls_security_level value \"%s\": using \"none\"", level);
        return TLS_LEVEL_NONE;
    }
    if (conf_bool("smtpd_enforce_tls"))
        return TLS_LEVEL_ENCRYPT;
    return conf_bool("smtpd_use_tls") ? TLS_LEVEL_MAY : TLS_LEVEL_NONE;
}

void tls_server_init(struct session *s)
{
    s->tls_level = tls_level_from_config();
    s->tls_wrappermode = conf_bool("smtpd_tls_wrappermode");
    tls_loglevel = (int)conf_int("smtpd_tls_loglevel");
    received_header = conf_bool("smtpd_tls_received_header");
    ask_ccert = conf_bool("smtpd_tls_ask_ccert");
    handshake_timeout = conf_time("smtpd_starttls_timeout");
    if (conf_bool("smtpd_tls_req_ccert")) {
        if (s->tls_level == TLS_LEVEL_ENCRYPT)
            req_ccert = ask_ccert = 1;      /* requiring implies asking */
        else
            msg_warn("Can't require client certs unless TLS is required");
    }
    if (s->tls_level == TLS_LEVEL_NONE && !s->tls_wrappermode)
        return;
    /* no clean-up at exit: OpenSSL's atexit handler frees every object
     * it holds, and in a zygote's child each free writes to a page shared
     * with the zygote (copy on write): 133 page faults per connection,
     * three times a plain child's cost, for memory the exit returns anyway */
    if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS
                          | OPENSSL_INIT_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_ATEXIT, NULL)) {
        tls_log_errors();
        return;
    }
    start_file_keeper();
    /* encrypt is mandatory TLS: the mandatory settings */
    server_ctx = context_new(s->tls_level == TLS_LEVEL_ENCRYPT);
}

/* A server context from main.cf's certificates, keys and settings; NULL
 * (logged) when one cannot be loaded. */
static SSL_CTX *context_new(int mandatory)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_log_errors();
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (conf_bool("tls_preempt_cipherlist"))
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* the session id context lets tickets resume sessions that had a
     * client certificate asked for; the ticket keys are the zygote's, which
     * every child shares and the zygote rotates (tlstickets.c) */
    static const unsigned char sid_context[] = "postern-smtpd";
    SSL_CTX_set_session_id_context(ctx, sid_context, sizeof sid_context - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    tls_tickets_attach(ctx);
    if (tls_apply_protocols(ctx, mandatory ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols")
        || apply_ciphers(ctx, mandatory ? "smtpd_tls_mandatory_ciphers" : "smtpd_tls_ciphers",
                         mandatory)
        || load_keys(ctx)) {
        tls_log_errors();
        msg_warn("TLS disabled: STARTTLS is answered with 454 4.7.0");
        SSL_CTX_free(ctx);
        return NULL;
    }
    apply_key_exchange(ctx);
    if (ask_ccert) {
        const char *cafile = conf_str("smtpd_tls_CAfile"), *capath = conf_str("smtpd_tls_CApath");
        if ((*cafile || *capath)
            && SSL_CTX_load_verify_locations(ctx, *cafile ? cafile : NULL,
                                             *capath ? capath : NULL) != 1) {
            tls_log_errors();
            msg_warn("cannot load the client CA certificates: smtpd_tls_CAfile, smtpd_tls_CApath");
        }
        if (*cafile) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cafile);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, verify_any);
        SSL_CTX_set_verify_depth(ctx, (int)conf_int("smtpd_tls_ccert_verifydepth"));
    }
    return ctx;
}

void tls_reload(void)
{
    if (!server_ctx)
        return;                 /* TLS was not on: a restart turns it on */
    SSL_CTX *fresh = context_new(tls_level_from_config() == TLS_LEVEL_ENCRYPT);
    if (!fresh) {
        msg_warn("TLS reload failed: still serving the certificates read before");
        return;
    }
    SSL_CTX_free(server_ctx);
    server_ctx = fresh;
    tls_zygote_prepare();
    msg_info("TLS certificates and keys read again");
}

/* In a zygote: one handshake with itself, in memory, so that what OpenSSL
 * 3 prepares on first use (the algorithms it fetches from its provider,
 * the RSA key's Montgomery and blinding values) is made once here and
 * inherited by every child instead of being made again in each. */
void tls_zygote_prepare(void)
{
    if (!server_ctx)
        return;
    SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
    SSL *client = client_ctx ? SSL_new(client_ctx) : NULL;
    SSL *server = SSL_new(server_ctx);
    BIO *client_bio = NULL, *server_bio = NULL;
    if (client && server && BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1) {
        SSL_set_bio(client, client_bio, client_bio);
        SSL_set_bio(server, server_bio, server_bio);
        SSL_set_connect_state(client);
        SSL_set_accept_state(server);
        int client_done = 0, server_done = 0;
        for (int round = 0; round < 20 && !(client_done && server_done); round++) {
            client_done = client_done || SSL_do_handshake(client) == 1;
            server_done = server_done || SSL_do_handshake(server) == 1;
        }
        char byte = 'x';
        if (client_done && server_done && SSL_write(client, &byte, 1) == 1)
            (void)SSL_read(server, &byte, 1);
    }
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(client_ctx);
    ERR_clear_error();
}

/* ---- one session ---- */

/* Wait until fd is ready for `events`, at most `timeout` seconds (0: no
 * limit).  1 ready, 0 timed out. */
static int wait_ready(int fd, short events, long long timeout)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, timeout > 0 ? (int)(timeout * 1000) : -1);
        if (r < 0 && errno == EINTR)
            continue;
        return r != 0;
    }
}

/* A TLS operation's "want read/write": wait for it, within the
 * handshake's time limit or else the session's (io_wait).  1 to retry, 0
 * timed out, -1 a real failure. */
static int tls_retry(struct session *s, int result, int in_handshake)
{
    int want = SSL_get_error(s->tls, result);
    if (want != SSL_ERROR_WANT_READ && want != SSL_ERROR_WANT_WRITE)
        return -1;
    int fd = want == SSL_ERROR_WANT_READ ? s->in_fd : s->out_fd;
    short events = want == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return in_handshake ? wait_ready(fd, events, handshake_timeout) : io_wait(s, fd, events);
}

ssize_t tls_read(struct session *s, void *buf, size_t len)
{
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(s->tls, buf, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n > 0)
            return n;
        int r = tls_retry(s, n, 0);
        if (r == 0)
            session_timeout(s);
        if (r < 0)
            return 0;           /* end of the connection, or a TLS error */
    }
}

int tls_write(struct session *s, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ERR_clear_error();
        int n = SSL_write(s->tls, p, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int r = tls_retry(s, n, 0);
        if (r <= 0)
            return r == 0 ? -2 : -1;
    }
    return 0;
}



/* "AB:CD:..." of a digest, into out. */
static void format_digest(const unsigned char *hash, unsigned len, char *out, size_t size)
{
    out[0] = '\0';
    for (unsigned i = 0; i < len && 3 * i + 3 <= size; i++)
        snprintf(out + 3 * i, 4, i + 1 < len ? "%02X:" : "%02X", hash[i]);
}

/* Read what the handshake settled: protocol, cipher, key exchange,
 * signature, and the client certificate. */
static void record_session(struct session *s)
{
    SSL *ssl = s->tls;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    snprintf(info.protocol, sizeof info.protocol, "%s", SSL_get_version(ssl));
    snprintf(info.cipher, sizeof info.cipher, "%s", cipher ? SSL_CIPHER_get_name(cipher) : "unknown");
    info.usebits = cipher ? SSL_CIPHER_get_bits(cipher, &info.algbits) : 0;
    EVP_PKEY *kex = NULL;
    info.kex[0] = '\0';
    if (SSL_get_peer_tmp_key(ssl, &kex) == 1) {
        tls_describe_key(kex, info.kex, sizeof info.kex, " key-exchange ", 0);
        EVP_PKEY_free(kex);
    } else if (cipher && SSL_CIPHER_get_kx_nid(cipher) == NID_kx_dhe) {
        /* OpenSSL keeps neither side's DH key after a TLS 1.2 handshake:
         * the group is the parameter file's, or the one OpenSSL picks for
         * the key's strength (ssl_get_auto_dh) */
        int bits = dh_file_bits;
        EVP_PKEY *own = SSL_get_privatekey(ssl);
        int strength = own ? EVP_PKEY_get_security_bits(own) : 0;
        if (!bits)
            bits = strength >= 192 ? 8192 : strength >= 152 ? 7680 : strength >= 128 ? 3072
                 : strength >= 112 ? 2048 : 1024;
        snprintf(info.kex, sizeof info.kex, " key-exchange DHE (%d bits)", bits);
    }
    info.sig[0] = '\0';
    int sig_type = NID_undef, digest = NID_undef;
    EVP_PKEY *own = SSL_get_privatekey(ssl);
    if (own && SSL_get_signature_type_nid(ssl, &sig_type) == 1) {
        tls_describe_key(own, info.sig, sizeof info.sig, " server-signature ", sig_type);
        if (SSL_get_signature_nid(ssl, &digest) == 1 && digest != NID_undef) {
            size_t used = strlen(info.sig);
            snprintf(info.sig + used, sizeof info.sig - used, " server-digest %s", OBJ_nid2sn(digest));
        }
    }
    info.fingerprint[0] = '\0';
    X509 *peer = SSL_get1_peer_certificate(ssl);
    info.peer_cert = peer != NULL;
    if (peer) {
        info.peer_verified = SSL_get_verify_result(ssl) == X509_V_OK;
        tls_common_name(X509_get_subject_name(peer), info.peer_cn, sizeof info.peer_cn);
        tls_common_name(X509_get_issuer_name(peer), info.issuer_cn, sizeof info.issuer_cn);
        const EVP_MD *md = EVP_get_digestbyname(conf_str("smtpd_tls_fingerprint_digest"));
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned hash_len = 0;
        info.pkey_fingerprint[0] = '\0';
        if (!md) {
            msg_warn("unsupported smtpd_tls_fingerprint_digest \"%s\"",
                     conf_str("smtpd_tls_fingerprint_digest"));
        } else {
            if (X509_digest(peer, md, hash, &hash_len) == 1)
                format_digest(hash, hash_len, info.fingerprint, sizeof info.fingerprint);
            /* the public key's fingerprint is Postfix's: the digest of
             * the whole SubjectPublicKeyInfo in DER (X509_pubkey_digest
             * covers only the key's bits) */
            unsigned char *spki = NULL;
            int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), &spki);
            if (spki_len > 0 && EVP_Digest(spki, (size_t)spki_len, hash, &hash_len, md, NULL) == 1)
                format_digest(hash, hash_len, info.pkey_fingerprint, sizeof info.pkey_fingerprint);
            OPENSSL_free(spki);
        }
        X509_free(peer);
    }
}

/* The handshake, as server, on the session's descriptors.  Returns 1, or
 * 0 after logging why it failed. */
static int handshake(struct session *s)
{
    if (tls_loglevel >= 2)
        msg_info("setting up TLS connection from %s", s->client.namaddr);
    s->tls = SSL_new(server_ctx);
    if (!s->tls || !SSL_set_rfd(s->tls, s->in_fd) || !SSL_set_wfd(s->tls, s->out_fd)) {
        tls_log_errors();
        return 0;
    }
    /* non-blocking, so that smtpd_starttls_timeout and smtpd_timeout hold
     * inside a record as well */
    int fds[2] = {s->in_fd, s->out_fd};
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags < 0 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) < 0)
            msg_warn_errno("fcntl O_NONBLOCK");
    }
    /* TLS writes a flight of records, then the session tickets, then our
     * reply: with Nagle's algorithm the last small write waits for the
     * client's delayed ACK (40 ms a session).  Replies are written whole at
     * each flush, so nothing is lost by sending at once.  (Not a socket,
     * or not TCP: nothing to do.) */
    int one = 1;
    (void)setsockopt(s->out_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (;;) {
        ERR_clear_error();
        int r = SSL_accept(s->tls);
        if (r == 1)
            break;
        int wait = tls_retry(s, r, 1);
        if (wait > 0)
            continue;
        if (wait == 0)
            msg_info("SSL_accept error from %s: timeout", s->client.namaddr);
        else
            msg_info("SSL_accept error from %s: %d", s->client.namaddr, r);
        tls_log_errors();
        SSL_free(s->tls);
        s->tls = NULL;
        return 0;
    }
    record_session(s);
    if (tls_loglevel >= 1)
        msg_info("%s TLS connection established from %s: %s with cipher %s (%d/%d bits)%s%s",
                 !info.peer_cert ? "Anonymous" : info.peer_verified ? "Trusted" : "Untrusted",
                 s->client.namaddr, info.protocol, info.cipher, info.usebits, info.algbits, info.kex,
                 info.sig);
    /* smtpd_client_new_tls_session_rate_limit: a new session counts once
     * it is made; over the limit, Postfix says so in it and hangs up */
    if (!SSL_session_reused(s->tls) && client_rate_exceeded(s, CLIENT_NEWTLS, 1)) {
        reply(s, "421 4.7.0 %s Error: too many new TLS sessions from %s", conf_str("myhostname"),
              s->client.namaddr);
        if (!s->tls_wrappermode)
            s->command_failed[CMD_STARTTLS]++;
        session_end(s, 0);
    }
    return 1;
}

/* A failed handshake: nothing more can be said to the client. */
static _Noreturn void handshake_failed(struct session *s)
{
    strbuf_reset(&s->out);
    if (!s->tls_wrappermode)
        s->command_failed[CMD_STARTTLS]++;
    msg_info("lost connection after %s from %s", s->where, s->client.namaddr);
    session_end(s, 0);
}

/* smtpd_tls_req_ccert: a client without a verified certificate is sent
 * away, as Postfix does. */
static void require_client_cert(struct session *s)
{
    if (!req_ccert || (info.peer_cert && info.peer_verified))
        return;
    const char *why = info.peer_cert ? "Client certificate not trusted" : "No client certificate presented";
    msg_info("NOQUEUE: abort: TLS from %s: %s", s->client.namaddr, why);
    reply(s, "421 4.7.1 %s Error: %s", s->myhostname, why);
    session_end(s, 0);
}

void cmd_starttls(struct session *s, char *args)
{
    while (*args == ' ')
        args++;
    if (*args) {
        reply(s, "501 5.5.4 Syntax: STARTTLS");
        goto failed;
    }
    if (s->tls) {
        reply(s, "554 5.5.1 Error: TLS already active");
        goto failed;
    }
    if (!tls_offered(s)) {
        reply(s, "502 5.5.1 Error: command not implemented");
        goto failed;
    }
    if (!server_ctx) {
        reply(s, "454 4.7.0 TLS not available due to local problem");
        goto failed;
    }
    if (client_rate_exceeded(s, CLIENT_NEWTLS, 0)) {
        msg_warn("Refusing STARTTLS request from %s for service %s", s->client.namaddr,
                 client_rate_service(s));
        reply(s, "454 4.7.0 Error: too many new TLS sessions from %s", s->client.namaddr);
        goto failed;
    }
    reply(s, "220 2.0.0 Ready to start TLS");
    io_flush(s);
    /* CVE-2011-0411: whatever the client sent after STARTTLS in the clear
     * is not a command of the TLS session */
    s->in_start = s->in_end = 0;
    if (!handshake(s))
        handshake_failed(s);
    require_client_cert(s);
    /* the session starts over: nothing said in the clear carries over */
    transaction_reset(s);
    strbuf_reset(&s->helo);
    auth_forget(s);
    return;
failed:
    s->command_failed[CMD_STARTTLS]++;
    session_error(s);
}

void tls_wrapper_start(struct session *s)
{
    if (!server_ctx) {
        msg_warn("Wrapper-mode request dropped from %s for service smtpd: "
                 "TLS context initialization failed", s->client.namaddr);
        session_end(s, 0);
    }
    if (!handshake(s))
        handshake_failed(s);
    require_client_cert(s);
}

int tls_offered(const struct session *s)
{
    if (s->tls || s->tls_wrappermode || s->tls_level == TLS_LEVEL_NONE)
        return 0;
    /* smtpd_discard_ehlo_keywords = starttls disables it, as in Postfix */
    const struct strlist *discard = discarded_ehlo_keywords();
    int discarded = 0;
    for (size_t i = 0; i < discard->count; i++)
        discarded |= strcasecmp(discard->item[i], "STARTTLS") == 0;
    return !discarded;
}

int tls_session_active(const struct session *s, const char **fingerprint)
{
    if (fingerprint)
        *fingerprint = s->tls && info.fingerprint[0] ? info.fingerprint : NULL;
    return s->tls != NULL;
}

int tls_client_cert(const struct session *s, const char **cert_fp, const char **pkey_fp)
{
    int present = s->tls && info.peer_cert && info.fingerprint[0];
    *cert_fp = present ? info.fingerprint : NULL;
    *pkey_fp = present && info.pkey_fingerprint[0] ? info.pkey_fingerprint : NULL;
    return !present ? 0 : info.peer_verified ? 2 : 1;
}

const char *tls_client_cn(const struct session *s)
{
    return s->tls && info.peer_cert ? info.peer_cn : "";
}

void tls_received_clause(const struct session *s, struct strbuf *out)
{
    if (!s->tls || !received_header)
        return;
    strbuf_printf(out, "\t(using %s with cipher %s (%d/%d bits)", info.protocol, info.cipher,
                  info.usebits, info.algbits);
    if (info.kex[0] || info.sig[0])
        strbuf_printf(out, "\n\t%s%s", info.kex, info.sig);
    strbuf_puts(out, ")\n");
    if (info.peer_cert)
        strbuf_printf(out, "\t(Client CN \"%s\", Issuer \"%s\" (%s))\n", info.peer_cn, info.issuer_cn,
                      info.peer_verified ? "verified OK" : "not verified");
    else if (ask_ccert)
        strbuf_puts(out, "\t(Client did not present a certificate)\n");
    else
        strbuf_puts(out, "\t(No client certificate requested)\n");
}

int tls_macro(const struct session *s, const char *name, struct strbuf *out)
{
    if (!s->tls)
        return 0;
    if (strcmp(name, "{tls_version}") == 0)
        strbuf_puts(out, info.protocol);
    else if (strcmp(name, "{cipher}") == 0)
        strbuf_puts(out, info.cipher);
    else if (strcmp(name, "{cipher_bits}") == 0)
        strbuf_printf(out, "%d", info.usebits);
    else
        return 0;
    return 1;
}
