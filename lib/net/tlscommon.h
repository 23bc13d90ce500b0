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
/* The same for a value (colons also separate, as in a policy table's
 * "protocols="): the lowest and highest version and the SSL_OP_NO_*
 * options for holes; 0, or -1 (logged, naming what). */
int tls_protocol_range(const char *value, const char *what, int *min_version,
                       int *max_version, unsigned long *no_options);
struct strbuf;
/* A cipher grade (export, low, medium, high, null) as an OpenSSL cipher
 * list: tls_GRADE_cipherlist minus the excluded ciphers; 0, or -1 for an
 * unknown grade (logged, naming what). */
int tls_grade_cipherlist(const char *grade, const char *exclusions, const char *what,
                         struct strbuf *out);
/* A key as Postfix logs it after prefix: "RSA (2048 bits)", "X25519",
 * "ECDSA (P-256)"; sig_nid tells RSA-PSS apart. "" for NULL. */
void tls_describe_key(EVP_PKEY *key, char *out, size_t size, const char *prefix, int sig_nid);
/* The common name of a certificate name, printable, "" without one. */
void tls_common_name(X509_NAME *name, char *out, size_t size);

#endif
