/* tlstickets.c - TLS session tickets (RFC 5077, and TLS 1.3's) whose keys
 * every session of a service shares and the zygote rotates: Postfix's
 * tlsmgr(8) does this for its smtpd processes.
 *
 * The keys live in the zygote and are inherited by each child at fork, so
 * a client that comes back to another process of the service resumes its
 * session without a full handshake.  Every smtpd_tls_session_cache_timeout
 * the zygote makes a new key (tls_tickets_rotate, from its tick hook,
 * lib/util/zygote.h) and keeps the one before it for decryption only: a
 * ticket is good for one to two intervals, and a ticket sealed with the
 * previous key is renewed.  Keys older than that are wiped, so what a later
 * compromise of the process finds cannot open older tickets.  Without a
 * zygote (one smtpd per connection) each process has its own key: tickets
 * are issued but cannot resume elsewhere.  smtpd_tls_session_cache_timeout
 * <= 0 turns tickets off, as in Postfix; less than 2 minutes is 2 minutes.
 * A new key is logged at smtpd_tls_loglevel 2 and above.
 *
 * For tests only: POSTERN_TEST_TICKET_ROTATION=SECONDS in the zygote's
 * environment makes a new key every SECONDS instead (the lifetime hint
 * and OpenSSL's session timeout stay smtpd_tls_session_cache_timeout), so
 * that a test sees two rotations in seconds (t/99-tls-tickets.t).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "smtpd.h"

#define TICKET_TIMEOUT_MIN 120
#define TICKET_TIMEOUT_MAX (100 * 86400)
#define TEST_ROTATION_VARIABLE "POSTERN_TEST_TICKET_ROTATION"

struct ticket_key {
    unsigned char name[16];
    unsigned char cipher_key[32];       /* AES-256-CBC */
    unsigned char mac_key[32];          /* HMAC-SHA256 */
    int valid;
};

/* [0] seals and opens, [1] (the previous) only opens */
static struct ticket_key keys[2];
static long long interval;          /* the tickets' lifetime, -1: none */
static long long rotation;          /* seconds between keys: interval, or the test's */

/* A fresh key in keys[0], the current one moved to keys[1]. */
static int make_key(void)
{
    OPENSSL_cleanse(&keys[1], sizeof keys[1]);
    keys[1] = keys[0];
    struct ticket_key *k = &keys[0];
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->cipher_key, sizeof k->cipher_key) != 1
        || RAND_bytes(k->mac_key, sizeof k->mac_key) != 1) {
        msg_warn("TLS session ticket key: no random bytes");
        k->valid = 0;
        return -1;
    }
    k->valid = 1;
    return 0;
}

/* OpenSSL's ticket callback: seal with the current key, open with either. */
static int ticket_callback(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                           EVP_MAC_CTX *mac, int seal)
{
    (void)ssl;
    const struct ticket_key *k = NULL;
    int result = 1;
    if (seal) {
        k = keys[0].valid ? &keys[0] : NULL;
        if (!k || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        memcpy(name, k->name, sizeof k->name);
    } else {
        for (int i = 0; i < 2 && !k; i++)
            if (keys[i].valid && memcmp(name, keys[i].name, sizeof keys[i].name) == 0) {
                k = &keys[i];
                result = i == 0 ? 1 : 2;        /* 2: resume, and issue a new ticket */
            }
        if (!k)
            return 0;                           /* unknown or expired key: full handshake */
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->mac_key, sizeof k->mac_key),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(mac, params) != 1
        || (seal ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->cipher_key, iv)
                 : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->cipher_key, iv)) != 1)
        return -1;
    return result;
}

long long tls_tickets_interval(void)
{
    return interval > 0 ? rotation : interval;
}

void tls_tickets_attach(SSL_CTX *ctx)
{
    if (!interval) {
        long long timeout = conf_time("smtpd_tls_session_cache_timeout");
        interval = timeout <= 0 ? -1 : timeout < TICKET_TIMEOUT_MIN ? TICKET_TIMEOUT_MIN
                 : timeout > TICKET_TIMEOUT_MAX ? TICKET_TIMEOUT_MAX : timeout;
        if (interval > 0 && make_key() < 0)
            interval = -1;
        rotation = interval;
        const char *test = getenv(TEST_ROTATION_VARIABLE);
        if (test && atoll(test) > 0) {
            rotation = atoll(test);
            msg_warn("%s=%lld: TLS session ticket keys rotate every %lld seconds (for tests)",
                     TEST_ROTATION_VARIABLE, rotation, rotation);
        }
    }
    if (interval < 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        return;
    }
    SSL_CTX_set_timeout(ctx, (long)interval);   /* the lifetime hint clients see */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback);
}

void tls_tickets_rotate(void)
{
    if (interval > 0 && make_key() == 0 && conf_int("smtpd_tls_loglevel") >= 2)
        msg_info("new TLS session ticket key; the previous one still opens tickets");
}
