/* tlscommon.h - OpenSSL helpers shared by the TLS server (postern-smtpd)
 * and client (postern-smtp): see tlscommon.c. */
#ifndef POSTERN_TLSCOMMON_H
#define POSTERN_TLSCOMMON_H

#include <stddef.h>

#include <openssl/ssl.h>

/* OpenSSL's queued errors, one "warning: TLS library problem" line each. */
void tls_log_errors(void);
/* Apply a protocol list parameter in Postfix's syntax (">=TLSv1",
 * "!SSLv2, !SSLv3", "TLSv1.2 TLSv1.3", "<=TLSv1.2") to ctx; 0, or -1 for
 * a name it does not know (logged). */
int tls_apply_protocols(SSL_CTX *ctx, const char *param);
/* A key as Postfix logs it after prefix: "RSA (2048 bits)", "X25519",
 * "ECDSA (P-256)"; sig_nid tells RSA-PSS apart. "" for NULL. */
void tls_describe_key(EVP_PKEY *key, char *out, size_t size, const char *prefix, int sig_nid);
/* The common name of a certificate name, printable, "" without one. */
void tls_common_name(X509_NAME *name, char *out, size_t size);

#endif
