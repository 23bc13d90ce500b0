/* saslclient.c - PLAIN, LOGIN and CRAM-MD5 as a client (saslclient.h):
 * which one a server's offer and the security options allow, and the
 * responses, in base64 (OpenSSL's encoder and HMAC-MD5).
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "saslclient.h"
#include "strlist.h"

/* The mechanisms, strongest first, with what each resists (as Cyrus's
 * plugins declare it). */
static const struct mechanism {
    const char *name;
    unsigned resists;
} mechanisms[] = {
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

void saslc_first(struct saslc *c, struct strbuf *out)
{
    c->step = 0;
    strbuf_reset(out);
    if (strcasecmp(c->mech, "PLAIN") == 0) {
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
    c->step++;
    if (decode64(challenge, &decoded) != 0) {
        strbuf_set(err, "malformed server challenge");
        goto out;
    }
    if (strcasecmp(c->mech, "LOGIN") == 0 && c->step <= 2) {
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
