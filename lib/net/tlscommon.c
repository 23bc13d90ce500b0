/* tlscommon.c - the OpenSSL helpers the TLS server (postern-smtpd) and the
 * TLS client (postern-smtp) share: library errors into the log, Postfix's
 * protocol lists, and the words Postfix logs for keys and names. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "strlist.h"
#include "tlscommon.h"

/* OpenSSL's queued errors, one "warning: TLS library problem" line each. */
void tls_log_errors(void)
{
    unsigned long code;
    const char *file, *data;
    int line, flags;
    while ((code = ERR_get_error_all(&file, &line, NULL, &data, &flags)) != 0) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        msg_warn("TLS library problem: %s:%s:%d:%s", text, file, line,
                 (flags & ERR_TXT_STRING) && data ? data : "");
    }
}

/* Postfix's protocol list syntax: ">=TLSv1", "!SSLv2, !SSLv3",
 * "TLSv1.2 TLSv1.3", "<=TLSv1.2" (a policy table's "protocols=" separates
 * with colons).  0 with the bounds and the holes to switch off, or -1 for
 * a name it does not know or an empty range (logged, naming `what`). */
int tls_protocol_range(const char *value, const char *what, int *min_version,
                       int *max_version, unsigned long *no_options)
{
    static const struct {
        const char *name;
        int version;
        unsigned long no_option;
    } known[] = {
        {"SSLv2", 0, 0}, {"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
        {"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1}, {"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
        {"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2}, {"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
    };
    enum { N = sizeof known / sizeof known[0] };
    int included = 0, excluded = 0, floor_index = 0, ceiling_index = N - 1;
    struct strlist words = STRLIST_INIT;
    struct strbuf text = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_puts(&text, value);
    for (char *p = text.s; p && *p; p++)
        if (*p == ':')
            *p = ' ';
    list_split(text.s ? text.s : "", &words, &err);
    int rc = 0;
    for (size_t i = 0; i < words.count && rc == 0; i++) {
        const char *w = words.item[i];
        int kind = 0;           /* 0 include, 1 exclude, 2 floor, 3 ceiling */
        if (w[0] == '!')
            kind = 1, w++;
        else if (strncmp(w, ">=", 2) == 0)
            kind = 2, w += 2;
        else if (strncmp(w, "<=", 2) == 0)
            kind = 3, w += 2;
        int k = -1;
        for (int j = 0; j < N; j++)
            if (strcasecmp(w, known[j].name) == 0)
                k = j;
        if (k < 0) {
            msg_warn("Invalid TLS protocol list \"%s\" (%s): disabling TLS support", value, what);
            rc = -1;
        } else if (kind == 0) {
            included |= 1 << k;
        } else if (kind == 1) {
            excluded |= 1 << k;
        } else if (kind == 2) {
            floor_index = k;
        } else {
            ceiling_index = k;
        }
    }
    strlist_free(&words);
    strbuf_free(&text);
    strbuf_free(&err);
    if (rc)
        return rc;
    int allowed = (included ? included : (1 << N) - 1) & ~excluded;
    allowed &= ~1;              /* SSLv2 is gone from OpenSSL */
    int lowest = -1, highest = -1;
    for (int j = floor_index; j <= ceiling_index; j++)
        if (allowed & (1 << j)) {
            if (lowest < 0)
                lowest = j;
            highest = j;
        }
    if (lowest < 0) {
        msg_warn("no TLS protocol left in \"%s\" (%s): disabling TLS support", value, what);
        return -1;
    }
    *min_version = known[lowest].version;
    *max_version = known[highest].version;
    *no_options = 0;
    for (int j = lowest + 1; j < highest; j++)     /* holes: "!TLSv1.1" */
        if (!(allowed & (1 << j)))
            *no_options |= known[j].no_option;
    return 0;
}

int tls_apply_protocols(SSL_CTX *ctx, const char *param)
{
    int lowest, highest;
    unsigned long holes;
    if (tls_protocol_range(conf_str(param), param, &lowest, &highest, &holes) != 0)
        return -1;
    if (!SSL_CTX_set_min_proto_version(ctx, lowest) || !SSL_CTX_set_max_proto_version(ctx, highest))
        return -1;
    if (holes)
        SSL_CTX_set_options(ctx, holes);
    return 0;
}

/* A cipher grade (export, low, medium, high, null) as OpenSSL's cipher
 * list: its tls_GRADE_cipherlist, minus each excluded cipher (the words of
 * `exclusions`, separated by white space, commas or colons).  0, or -1 for
 * an unknown grade (logged, naming `what`). */
int tls_grade_cipherlist(const char *grade, const char *exclusions, const char *what,
                         struct strbuf *out)
{
    static const char *const grades[] = {"export", "low", "medium", "high", "null", NULL};
    int known = -1;
    for (int i = 0; grades[i]; i++)
        if (strcasecmp(grade, grades[i]) == 0)
            known = i;
    if (known < 0) {
        msg_warn("invalid %s value \"%s\": disabling TLS support", what, grade);
        return -1;
    }
    char name[40];
    snprintf(name, sizeof name, "tls_%s_cipherlist", grades[known]);
    strbuf_reset(out);
    strbuf_puts(out, conf_str(name));
    struct strbuf text = STRBUF_INIT, err = STRBUF_INIT;
    struct strlist words = STRLIST_INIT;
    strbuf_puts(&text, exclusions ? exclusions : "");
    for (char *p = text.s; p && *p; p++)
        if (*p == ':')
            *p = ' ';
    list_split(text.s ? text.s : "", &words, &err);
    for (size_t i = 0; i < words.count; i++)
        strbuf_printf(out, ":!%s", words.item[i]);
    strlist_free(&words);
    strbuf_free(&text);
    strbuf_free(&err);
    return 0;
}

/* The name of a key's algorithm as Postfix logs it, and its size. */
void tls_describe_key(EVP_PKEY *key, char *out, size_t size, const char *prefix, int sig_nid)
{
    if (!key) {
        out[0] = '\0';
        return;
    }
    const char *name;
    char group[64] = "";
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        name = sig_nid == EVP_PKEY_RSA_PSS ? "RSA-PSS" : "RSA";
        break;
    case EVP_PKEY_RSA_PSS:
        name = "RSA-PSS";
        break;
    case EVP_PKEY_EC:
        name = prefix[1] == 'k' ? "ECDHE" : "ECDSA";
        if (!EVP_PKEY_get_group_name(key, group, sizeof group, NULL))
            group[0] = '\0';
        break;
    case EVP_PKEY_DH:
        name = "DHE";
        break;
    case EVP_PKEY_X25519:
        name = "X25519";
        break;
    case EVP_PKEY_X448:
        name = "X448";
        break;
    case EVP_PKEY_ED25519:
        name = "ED25519";
        break;
    case EVP_PKEY_ED448:
        name = "ED448";
        break;
    default:
        name = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
    }
    int bits = EVP_PKEY_get_bits(key);
    /* ECDSA with a named curve shows the curve's NIST name: "(P-256)" */
    if (*group) {
        int nid = OBJ_sn2nid(group);
        const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
        snprintf(out, size, "%s%s (%s)", prefix, name, nist ? nist : group);
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_X25519 || EVP_PKEY_get_base_id(key) == EVP_PKEY_X448
               || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED448) {
        snprintf(out, size, "%s%s", prefix, name);
    } else {
        snprintf(out, size, "%s%s (%d bits)", prefix, name, bits);
    }
}

/* The common name of a certificate name, printable, "" without one. */
void tls_common_name(X509_NAME *name, char *out, size_t size)
{
    out[0] = '\0';
    if (name && X509_NAME_get_text_by_NID(name, NID_commonName, out, (int)size) < 0)
        out[0] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
            *p = '?';
}
