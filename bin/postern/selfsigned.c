/* selfsigned.c - a self-signed certificate for a self-contained instance
 * (`postern init`), made with the OpenSSL library: an RSA 2048 key and an
 * X.509 v3 certificate for the host name, localhost and 127.0.0.1, valid
 * for a year.  Good for trying STARTTLS out; a real server takes its
 * certificate from a CA. */
#include <stdint.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "postern.h"

/* A memory BIO's contents appended to out. */
static void bio_to_strbuf(BIO *bio, struct strbuf *out)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0)
        strbuf_append(out, data, (size_t)len);
}

/* Add an X.509 v3 extension given in OpenSSL's text form. */
static int add_extension(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

int selfsigned_make(const char *hostname, struct strbuf *key_pem, struct strbuf *cert_pem)
{
    int ok = 0;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *cert = X509_new();
    BIO *key_bio = BIO_new(BIO_s_mem()), *cert_bio = BIO_new(BIO_s_mem());
    unsigned char serial[16];
    BIGNUM *serial_bn = NULL;
    struct strbuf san = STRBUF_INIT;
    strbuf_printf(&san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
    if (!key || !cert || !key_bio || !cert_bio || RAND_bytes(serial, sizeof serial) != 1)
        goto done;
    serial[0] &= 0x7f;          /* a positive serial number */
    serial_bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *name = X509_get_subject_name(cert);
    if (!serial_bn || !X509_set_version(cert, 2) || !BN_to_ASN1_INTEGER(serial_bn, X509_get_serialNumber(cert))
        || !X509_gmtime_adj(X509_getm_notBefore(cert), 0)
        || !X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)hostname, -1, -1, 0)
        || !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, key)
        || !add_extension(cert, NID_basic_constraints, "critical,CA:FALSE")
        || !add_extension(cert, NID_subject_alt_name, strbuf_str(&san))
        || !add_extension(cert, NID_subject_key_identifier, "hash")
        || !X509_sign(cert, key, EVP_sha256())
        || !PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL)
        || !PEM_write_bio_X509(cert_bio, cert))
        goto done;
    bio_to_strbuf(key_bio, key_pem);
    bio_to_strbuf(cert_bio, cert_pem);
    ok = 1;
done:
    if (!ok) {
        char text[256];
        ERR_error_string_n(ERR_get_error(), text, sizeof text);
        msg_warn("cannot make a self-signed certificate: %s", text);
    }
    BN_free(serial_bn);
    BIO_free(key_bio);
    BIO_free(cert_bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    strbuf_free(&san);
    return ok ? 0 : -1;
}
