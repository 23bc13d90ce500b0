/* saslclient.c - SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN and CRAM-MD5 as
 * a client (saslclient.h): which one a server's offer and the security
 * options allow, and the responses, in base64 (OpenSSL's encoder, HMAC,
 * PBKDF2 and random bytes).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "saslclient.h"
#include "strlist.h"

/* The mechanisms, strongest first, with what each resists (as Cyrus's
 * plugins declare it). */
static const struct mechanism {
    const char *name;
    unsigned resists;
} mechanisms[] = {
    {"SCRAM-SHA-256", SASLC_NOPLAINTEXT | SASLC_NOACTIVE | SASLC_NOANONYMOUS | SASLC_MUTUAL_AUTH},
    {"SCRAM-SHA-1", SASLC_NOPLAINTEXT | SASLC_NOACTIVE | SASLC_NOANONYMOUS | SASLC_MUTUAL_AUTH},
    {"CRAM-MD5", SASLC_NOPLAINTEXT | SASLC_NOANONYMOUS},
    {"PLAIN", SASLC_NOANONYMOUS},
    {"LOGIN", SASLC_NOANONYMOUS},
};

int saslc_security_parse(const char *value, unsigned *flags, struct strbuf *err)
{
    static const struct { const char *word; unsigned flag; } words[] = {
        {"noplaintext", SASLC_NOPLAINTEXT}, {"noactive", SASLC_NOACTIVE},
        {"nodictionary", SASLC_NODICTIONARY}, {"noanonymous", SASLC_NOANONYMOUS},
        {"mutual_auth", SASLC_MUTUAL_AUTH},
    };
    struct strlist list = STRLIST_INIT;
    *flags = 0;
    if (list_split(value, &list, err) != 0) {
        strlist_free(&list);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < list.count && rc == 0; i++) {
        size_t w = 0;
        while (w < sizeof words / sizeof words[0] && strcasecmp(list.item[i], words[w].word) != 0)
            w++;
        if (w == sizeof words / sizeof words[0]) {
            strbuf_printf(err, "unknown SASL security option \"%s\"", list.item[i]);
            rc = -1;
        } else {
            *flags |= words[w].flag;
        }
    }
    strlist_free(&list);
    return rc;
}

/* 1 when the space-separated list names the mechanism. */
static int offered_has(const char *offered, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = offered; *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

const char *saslc_choose(const char *offered, unsigned required)
{
    for (size_t i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++)
        if ((mechanisms[i].resists & required) == required && offered_has(offered, mechanisms[i].name))
            return mechanisms[i].name;
    return NULL;
}

/* Append bytes to out in base64. */
static void encode64(const void *bytes, size_t n, struct strbuf *out)
{
    strbuf_reset(out);
    strbuf_grow(out, 4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out->s, bytes, (int)n);
    out->len = len > 0 ? (size_t)len : 0;
    out->s[out->len] = '\0';
}

/* Decode a challenge; -1 when it is not base64. */
static int decode64(const char *text, struct strbuf *out)
{
    size_t n = strlen(text);
    strbuf_reset(out);
    if (n == 0)
        return 0;
    if (n % 4 != 0 || n > 1 << 20)
        return -1;
    strbuf_grow(out, n / 4 * 3 + 1);
    int len = EVP_DecodeBlock((unsigned char *)out->s, (const unsigned char *)text, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as bytes */
    if (text[n - 1] == '=')
        len--;
    if (text[n - 2] == '=')
        len--;
    out->len = (size_t)len;
    out->s[out->len] = '\0';
    return 0;
}

/* SCRAM's hash for the mechanism, NULL when it is no SCRAM. */
static const EVP_MD *scram_md(const char *mech)
{
    if (strcasecmp(mech, "SCRAM-SHA-256") == 0)
        return EVP_sha256();
    if (strcasecmp(mech, "SCRAM-SHA-1") == 0)
        return EVP_sha1();
    return NULL;
}

/* client-first-message: "n,,n=USER,r=NONCE", the user name with '=' and
 * ',' escaped (RFC 5802 5.1; no SASLprep: names and passwords of
 * printable ASCII are their own). */
static void scram_first(struct saslc *c, struct strbuf *out)
{
    if (!c->nonce[0]) {
        unsigned char random[18];
        if (RAND_bytes(random, sizeof random) != 1) {
            c->step = -1;           /* saslc_next refuses to go on */
            return;
        }
        EVP_EncodeBlock((unsigned char *)c->nonce, random, sizeof random);    /* 24 chars */
    }
    strbuf_reset(&c->scram);
    strbuf_puts(&c->scram, "n=");
    for (const char *p = c->user; *p; p++)
        strbuf_puts(&c->scram, *p == ',' ? "=2C" : *p == '=' ? "=3D" : (char[]){*p, 0});
    strbuf_printf(&c->scram, ",r=%s", c->nonce);
    struct strbuf first = STRBUF_INIT;
    strbuf_printf(&first, "n,,%s", c->scram.s);
    encode64(first.s, first.len, out);
    strbuf_free(&first);
}

/* The value of attribute `name` in a SCRAM message ("r=...,s=...,i=..."),
 * NULL when absent; *len its length. */
static const char *scram_attr(const char *msg, char name, size_t *len)
{
    for (const char *p = msg; *p;) {
        size_t n = strcspn(p, ",");
        if (n >= 2 && p[0] == name && p[1] == '=') {
            *len = n - 2;
            return p + 2;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return NULL;
}

/* HMAC with the mechanism's hash; 0 or -1. */
static int scram_hmac(const EVP_MD *md, const void *key, size_t key_len, const void *data,
                      size_t n, unsigned char *out)
{
    unsigned int len = 0;
    return HMAC(md, key, (int)key_len, data, n, out, &len) ? 0 : -1;
}

/* Answer server-first-message with client-final-message (RFC 5802 3),
 * and keep the ServerSignature to check; 0 or -1 with err. */
static int scram_final(struct saslc *c, const struct strbuf *server_first, struct strbuf *out,
                       struct strbuf *err)
{
    const EVP_MD *md = scram_md(c->mech);
    size_t h = (size_t)EVP_MD_get_size(md);
    size_t nonce_len = 0, salt_len = 0, iter_len = 0;
    const char *msg = server_first->s ? server_first->s : "";
    if (strlen(msg) != server_first->len || msg[0] == 'm') {
        strbuf_set(err, "unsupported SCRAM server message");
        return -1;
    }
    const char *nonce = scram_attr(msg, 'r', &nonce_len);
    const char *salt64 = scram_attr(msg, 's', &salt_len);
    const char *iter = scram_attr(msg, 'i', &iter_len);
    size_t mine = strlen(c->nonce);
    if (!nonce || !salt64 || !iter || nonce_len <= mine || strncmp(nonce, c->nonce, mine) != 0) {
        strbuf_set(err, "malformed SCRAM server-first-message (or a nonce that is not ours)");
        return -1;
    }
    char *end;
    long iterations = strtol(iter, &end, 10);
    if (end != iter + iter_len || iterations < 1 || iterations > SASLC_SCRAM_MAX_ITERATIONS) {
        strbuf_set(err, "SCRAM iteration count out of range");
        return -1;
    }
    struct strbuf salt = STRBUF_INIT, salt_text = STRBUF_INIT, final = STRBUF_INIT,
                  auth = STRBUF_INIT;
    strbuf_append(&salt_text, salt64, salt_len);
    unsigned char salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE],
        signature[EVP_MAX_MD_SIZE], server_key[EVP_MAX_MD_SIZE];
    unsigned int stored_len = 0;
    int rc = -1;
    if (decode64(strbuf_str(&salt_text), &salt) != 0 || salt.len == 0) {
        strbuf_set(err, "malformed SCRAM salt");
        goto out;
    }
    /* client-final-message-without-proof: "c=biws" is base64("n,,") */
    strbuf_printf(&final, "c=biws,r=%.*s", (int)nonce_len, nonce);
    strbuf_printf(&auth, "%s,%s,%s", c->scram.s, msg, final.s);
    if (PKCS5_PBKDF2_HMAC(c->password, (int)strlen(c->password), (unsigned char *)salt.s,
                          (int)salt.len, (int)iterations, md, (int)h, salted) != 1
        || scram_hmac(md, salted, h, "Client Key", 10, client_key) != 0
        || EVP_Digest(client_key, h, stored, &stored_len, md, NULL) != 1
        || scram_hmac(md, stored, h, auth.s, auth.len, signature) != 0
        || scram_hmac(md, salted, h, "Server Key", 10, server_key) != 0) {
        strbuf_set(err, "SCRAM computation failed");
        goto out;
    }
    for (size_t i = 0; i < h; i++)
        client_key[i] ^= signature[i];          /* ClientProof */
    struct strbuf proof = STRBUF_INIT;
    encode64(client_key, h, &proof);
    strbuf_printf(&final, ",p=%s", proof.s);
    strbuf_free(&proof);
    if (scram_hmac(md, server_key, h, auth.s, auth.len, signature) != 0) {
        strbuf_set(err, "SCRAM computation failed");
        goto out;
    }
    strbuf_reset(&c->scram);
    strbuf_append(&c->scram, signature, h);     /* what server-final must show */
    encode64(final.s, final.len, out);
    rc = 0;
out:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(server_key, sizeof server_key);
    OPENSSL_cleanse(stored, sizeof stored);
    strbuf_free(&salt);
    strbuf_free(&salt_text);
    strbuf_free(&final);
    strbuf_free(&auth);
    return rc;
}

/* server-final-message: "v=SIGNATURE" must be the one computed; 0 (an
 * empty response follows) or -1 with err. */
static int scram_verify(struct saslc *c, const struct strbuf *server_final, struct strbuf *err)
{
    size_t len = 0;
    const char *msg = server_final->s ? server_final->s : "";
    const char *e = scram_attr(msg, 'e', &len);
    if (e) {
        strbuf_printf(err, "SCRAM server error: %.*s", (int)(len < 100 ? len : 100), e);
        return -1;
    }
    const char *v = scram_attr(msg, 'v', &len);
    struct strbuf text = STRBUF_INIT, sig = STRBUF_INIT;
    int rc = -1;
    if (v)
        strbuf_append(&text, v, len);
    if (!v || decode64(strbuf_str(&text), &sig) != 0 || sig.len != c->scram.len
        || CRYPTO_memcmp(sig.s, c->scram.s, sig.len) != 0)
        strbuf_set(err, "the server's SCRAM signature does not match: it does not know the password");
    else
        rc = 0, c->server_verified = 1;
    strbuf_free(&text);
    strbuf_free(&sig);
    return rc;
}

void saslc_free(struct saslc *c)
{
    if (c->scram.s)
        OPENSSL_cleanse(c->scram.s, c->scram.size);
    strbuf_free(&c->scram);
}

void saslc_first(struct saslc *c, struct strbuf *out)
{
    c->step = 0;
    strbuf_reset(out);
    if (scram_md(c->mech)) {
        scram_first(c, out);
    } else if (strcasecmp(c->mech, "PLAIN") == 0) {
        /* authzid (empty), authcid, password (RFC 4616) */
        struct strbuf plain = STRBUF_INIT;
        strbuf_putc(&plain, '\0');
        strbuf_puts(&plain, c->user);
        strbuf_putc(&plain, '\0');
        strbuf_puts(&plain, c->password);
        encode64(plain.s, plain.len, out);
        explicit_bzero(plain.s, plain.len);
        strbuf_free(&plain);
    } else if (strcasecmp(c->mech, "LOGIN") == 0) {
        /* the user name as initial response, as Cyrus's LOGIN client sends it */
        encode64(c->user, strlen(c->user), out);
    }
}

int saslc_next(struct saslc *c, const char *challenge, struct strbuf *out, struct strbuf *err)
{
    struct strbuf decoded = STRBUF_INIT;
    int rc = -1;
    if (c->step < 0) {
        strbuf_set(err, "no random bytes for a SCRAM nonce");
        goto out;
    }
    c->step++;
    if (decode64(challenge, &decoded) != 0) {
        strbuf_set(err, "malformed server challenge");
        goto out;
    }
    if (scram_md(c->mech) && c->step <= 2) {
        /* server-first, then server-final (answered with an empty line) */
        strbuf_reset(out);
        rc = c->step == 1 ? scram_final(c, &decoded, out, err) : scram_verify(c, &decoded, err);
    } else if (strcasecmp(c->mech, "LOGIN") == 0 && c->step <= 2) {
        /* "Username:" again (a server that ignored the initial response),
         * else the password */
        const char *answer = strncasecmp(decoded.s ? decoded.s : "", "User", 4) == 0
                             ? c->user : c->password;
        encode64(answer, strlen(answer), out);
        rc = 0;
    } else if (strcasecmp(c->mech, "CRAM-MD5") == 0 && c->step == 1 && decoded.len > 0) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digest_len = 0;
        if (!HMAC(EVP_md5(), c->password, (int)strlen(c->password),
                  (const unsigned char *)decoded.s, decoded.len, digest, &digest_len)) {
            strbuf_set(err, "HMAC-MD5 failed");
            goto out;
        }
        struct strbuf answer = STRBUF_INIT;
        strbuf_printf(&answer, "%s ", c->user);
        for (unsigned int i = 0; i < digest_len; i++)
            strbuf_printf(&answer, "%02x", digest[i]);
        encode64(answer.s, answer.len, out);
        strbuf_free(&answer);
        rc = 0;
    } else {
        strbuf_printf(err, "unexpected server challenge for %s", c->mech);
    }
out:
    strbuf_free(&decoded);
    return rc;
}
