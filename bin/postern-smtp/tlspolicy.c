/* tlspolicy.c - the TLS policy of one connection, as Postfix's smtp(8)
 * computes it (its smtp_tls_policy.c):
 *
 *   1. smtp_tls_security_level (or the old smtp_use_tls/smtp_enforce_tls);
 *   2. overridden by smtp_tls_policy_maps, keyed by the next hop as the
 *      delivery names it: "example.com" (then ".example.com", ".com", as
 *      transport(5) searches), or "[mx.example.com]:587", "host:port"
 *      verbatim (LMTP: without "inet:"/"unix:").  The value is a level
 *      (none, may, encrypt, fingerprint, dane, dane-only, verify, secure)
 *      and attributes: ciphers=, protocols=, exclude= (values separated by
 *      colons), match= (verify/secure: names and the strategies hostname,
 *      nexthop, dot-nexthop, separated by colons; fingerprint: digests
 *      separated by '|'), tafile= (verify/secure: trust anchors instead of
 *      smtp_tls_CAfile; else smtp_tls_trust_anchor_file), servername= (the SNI name: hostname, nexthop or
 *      a name; else smtp_tls_servername, empty: no SNI, as Postfix),
 *      connection_reuse= (read, without effect: no connection reuse yet);
 *   3. at the dane levels (RFC 7672), with smtp_dns_support_level = dnssec:
 *      the TLSA records _PORT._tcp.HOST of the server, found through
 *      DNSSEC-validated MX and address records, decide:
 *        usable records       the certificate must match one (DANE-TA 2,
 *                             DANE-EE 3; PKIX-TA/EE 0/1 are unusable in SMTP)
 *        records, none usable "encrypt" (dane-only: deferred)
 *        none, or not signed  "may" (dane-only: deferred)
 *        lookup failure or a bogus signature: deferred, 4.7.5
 *      An MX record that is not signed gives "may" unless
 *      smtp_tls_dane_insecure_mx_policy says dane (the default at level
 *      dane); a match through such an MX is logged "Trusted", never
 *      "Verified".
 * A policy that cannot be had (a table that fails, a bad attribute, a
 * TLSA lookup that fails) defers the recipients with Postfix's words and
 * its "TLS policy lookup for DEST/HOST: ..." warning.  The handshake and
 * the checks after it are tls.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "smtp.h"

static enum tls_level global_level;
static struct maplist *policy_maps;
static const char *proto_prefix = "smtp";

static const struct { const char *word; enum tls_level level; } level_words[] = {
    {"none", TLS_NONE}, {"may", TLS_MAY}, {"encrypt", TLS_ENCRYPT},
    {"fingerprint", TLS_FINGERPRINT}, {"dane", TLS_DANE}, {"dane-only", TLS_DANE_ONLY},
    {"verify", TLS_VERIFY}, {"secure", TLS_SECURE},
};

/* A level by its word; -1 when unknown. */
static int level_lookup(const char *word)
{
    for (size_t i = 0; i < sizeof level_words / sizeof level_words[0]; i++)
        if (strcasecmp(word, level_words[i].word) == 0)
            return (int)level_words[i].level;
    return -1;
}

const char *tls_level_name(enum tls_level level)
{
    if (level == TLS_HALF_DANE)
        return "half-dane";
    for (size_t i = 0; i < sizeof level_words / sizeof level_words[0]; i++)
        if (level_words[i].level == level)
            return level_words[i].word;
    return "unknown";
}

/* proto_NAME as a parameter name (smtp_... or lmtp_...). */
static const char *param(const char *name)
{
    static char buf[96];
    snprintf(buf, sizeof buf, "%s_%s", proto_prefix, name);
    return buf;
}

int tls_policy_setup(struct smtp_setup *setup)
{
    proto_prefix = setup->proto;
    const char *word = conf_str(param("tls_security_level"));
    if (*word) {
        int level = level_lookup(word);
        if (level < 0) {
            msg_warn("invalid tls security level: \"%s\"", word);
            return -1;
        }
        global_level = (enum tls_level)level;
    } else if (conf_bool(param("enforce_tls"))) {
        global_level = TLS_ENCRYPT;
    } else {
        global_level = conf_bool(param("use_tls")) ? TLS_MAY : TLS_NONE;
    }
    setup->tls_level = global_level;
    const char *support = conf_str(param("dns_support_level"));
    setup->dnssec = strcasecmp(support, "dnssec") == 0;
    if (*support && !setup->dnssec && strcasecmp(support, "enabled") != 0
        && strcasecmp(support, "disabled") != 0) {
        msg_warn("invalid %s value: \"%s\"", param("dns_support_level"), support);
        return -1;
    }
    if (setup->dnssec) {
        /* without anchors libunbound cannot start at all: mail would wait
         * on every DNS lookup; without DNSSEC it only loses DANE */
        const char *anchors = conf_str("dnssec_trust_anchor_file");
        if (access(anchors, R_OK) != 0) {
            msg_warn("dnssec_trust_anchor_file %s: %s: no DNSSEC validation", anchors,
                     strerror(errno));
            setup->dnssec = 0;
        } else {
            dns_set_trust_anchor(anchors);
        }
    }
    setup->dane_insecure_mx = TLS_MAY;
    if (!setup->lmtp) {
        int mx = level_lookup(conf_str("smtp_tls_dane_insecure_mx_policy"));
        if (mx == TLS_DANE || mx == TLS_ENCRYPT)
            setup->dane_insecure_mx = mx;
    }
    const char *maps = conf_str(param("tls_policy_maps"));
    if (*maps) {
        struct strbuf err = STRBUF_INIT;
        policy_maps = maplist_open(maps, &err);
        if (!policy_maps) {
            msg_warn("%s: %s", param("tls_policy_maps"), err.s);
            strbuf_free(&err);
            return -1;
        }
        strbuf_free(&err);
    }
    return 0;
}

int tls_policy_may_want_tls(void)
{
    return global_level != TLS_NONE || policy_maps != NULL;
}

/* Mark the policy unusable: no connection, this reason. */
static void invalid(struct tls_policy *p, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void invalid(struct tls_policy *p, const char *dsn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->invalid = 1;
    snprintf(p->dsn, sizeof p->dsn, "%s", dsn);
    strbuf_reset(&p->why);
    strbuf_vprintf(&p->why, fmt, ap);
    va_end(ap);
}

/* Split an attribute's value on the separator characters into list. */
static void split_into(const char *value, const char *separators, struct strlist *list)
{
    const char *p = value;
    while (*p) {
        size_t n = strcspn(p, separators);
        if (n) {
            char *word = strndup(p, n);
            if (!word)
                msg_fatal("out of memory");
            strlist_add(list, word);
            free(word);
        }
        p += n;
        if (*p)
            p++;
    }
}

/* Trust anchors from a PEM file (certificates and public keys), as
 * DANE-TA records "2 0 0 DER" / "2 1 0 DER" in p->tlsa, which OpenSSL's
 * SSL_dane_* then trusts instead of smtp_tls_CAfile (Postfix's tafile=
 * and smtp_tls_trust_anchor_file).  0, or -1 (logged). */
static int load_trust_anchors(struct tls_policy *p, const char *file)
{
    BIO *bio = BIO_new_file(file, "r");
    if (!bio) {
        msg_warn("error opening trust anchor file: %s: %s", file, strerror(errno));
        return -1;
    }
    int count = 0, rc = 0;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len;
    ERR_clear_error();
    while (rc == 0 && PEM_read_bio(bio, &name, &header, &data, &len)) {
        int selector = strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ? 0
                       : strcmp(name, PEM_STRING_PUBLIC) == 0 ? 1 : -1;
        const unsigned char *in = data;
        X509 *cert = selector == 0 ? d2i_X509(NULL, &in, len) : NULL;
        EVP_PKEY *key = selector == 1 ? d2i_PUBKEY(NULL, &in, len) : NULL;
        if ((!cert && !key) || in != data + len) {
            msg_warn("error reading: %s: malformed trust-anchor %s", file,
                     selector == 1 ? "public key" : "certificate");
            rc = -1;
        } else {
            struct strbuf record = STRBUF_INIT;
            strbuf_printf(&record, "2 %d 0 ", selector);
            for (long i = 0; i < len; i++)
                strbuf_printf(&record, "%02x", data[i]);
            strlist_add(&p->tlsa, record.s);
            strbuf_free(&record);
            count++;
        }
        X509_free(cert);
        EVP_PKEY_free(key);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (rc == 0 && count == 0) {
        msg_warn("error reading: %s: no trust-anchor certificate or public key", file);
        rc = -1;
    }
    return rc;
}

/* The TLS-RPT attributes an MTA-STS policy server adds to its answer
 * (Postfix 3.10): policy_type=sts|tlsa|no-policy-found, policy_domain=,
 * policy_string= and mx_host_pattern= (each may repeat; kept for the
 * report), policy_ttl= (read), policy_failure= (an RFC 8460 sts-* result
 * type).  Returns 1 when the word is one of them, 0 when it is none of
 * them, -1 (warned) when it is one of them and wrong. */
static int tlsrpt_attribute(struct tls_policy *p, const char *w, size_t n, const char *val,
                            const char *where)
{
    if (n == 11 && strncasecmp(w, "policy_type", n) == 0) {
        if (strcmp(val, "sts") != 0 && strcmp(val, "tlsa") != 0 && strcmp(val, "no-policy-found") != 0) {
            msg_warn("%s: invalid policy_type \"%s\"", where, val);
            return -1;
        }
        snprintf(p->policy_type, sizeof p->policy_type, "%s", val);
    } else if (n == 13 && strncasecmp(w, "policy_domain", n) == 0) {
        if (!dns_labels_valid(val)) {
            msg_warn("%s: invalid policy_domain \"%s\"", where, val);
            return -1;
        }
        snprintf(p->policy_domain, sizeof p->policy_domain, "%s", val);
    } else if ((n == 13 && strncasecmp(w, "policy_string", n) == 0)
               || (n == 15 && strncasecmp(w, "mx_host_pattern", n) == 0)) {
        if (n == 15)        /* a policy's "mx:" line, when it gives no string */
            return 1;
        if (strpbrk(val, "|\t\r\n"))
            return 1;       /* cannot be kept in the record: left out */
        if (p->policy_string.len)
            strbuf_putc(&p->policy_string, '|');
        strbuf_puts(&p->policy_string, val);
    } else if (n == 10 && strncasecmp(w, "policy_ttl", n) == 0) {
        return 1;
    } else if (n == 14 && strncasecmp(w, "policy_failure", n) == 0) {
        if (strncmp(val, "sts-", 4) != 0 && strcmp(val, "dnssec-invalid") != 0
            && strcmp(val, "tlsa-invalid") != 0) {
            msg_warn("%s: invalid policy_failure \"%s\"", where, val);
            return -1;
        }
        snprintf(p->policy_failure, sizeof p->policy_failure, "%s", val);
    } else {
        return 0;
    }
    return 1;
}

/* Apply one table answer ("secure match=.example.com ciphers=high") to p;
 * *level receives its level.  Errors make p invalid (Postfix: "client TLS
 * configuration problem"), with a warning naming where. */
static void apply_entry(struct tls_policy *p, enum tls_level *level, const char *value,
                        const char *where)
{
    struct strlist words = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    list_split(value, &words, &err);
    strbuf_free(&err);
    int attrs_seen[3] = {0, 0, 0};      /* ciphers, protocols, exclude */
    if (words.count == 0) {
        msg_warn("%s: invalid empty policy", where);
        goto bad;
    }
    int l = level_lookup(words.item[0]);
    if (l < 0) {
        msg_warn("%s: invalid security level \"%s\"", where, words.item[0]);
        goto bad;
    }
    *level = (enum tls_level)l;
    if (*level < TLS_MAY) {
        for (size_t i = 1; i < words.count; i++)
            msg_warn("%s: ignoring attribute \"%s\" with TLS disabled", where, words.item[i]);
        goto out;
    }
    for (size_t i = 1; i < words.count; i++) {
        const char *w = words.item[i];
        const char *eq = strchr(w, '=');
        if (!eq || eq == w) {
            msg_warn("%s: malformed attribute/value pair \"%s\": missing '='", where, w);
            goto bad;
        }
        /* "{ name = value }" (a value with spaces, grouped in braces) */
        size_t n = (size_t)(eq - w);
        while (n && isspace((unsigned char)w[n - 1]))
            n--;
        const char *val = eq + 1;
        while (isspace((unsigned char)*val))
            val++;
        int rpt;
        static const char *const single[] = {"ciphers", "protocols", "exclude"};
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (strlen(single[j]) == n && strncasecmp(w, single[j], n) == 0)
                k = j;
        if (k >= 0) {
            if (attrs_seen[k]++) {
                msg_warn("%s: attribute \"%s\" is specified multiple times", where, single[k]);
                goto bad;
            }
            if (k != 1 && !*val) {
                msg_warn("%s: attribute \"%s\" has empty value", where, single[k]);
                goto bad;
            }
            strbuf_set(k == 0 ? &p->ciphers : k == 1 ? &p->protocols : &p->exclude, val);
        } else if (n == 5 && strncasecmp(w, "match", 5) == 0) {
            if (!*val) {
                msg_warn("%s: attribute \"match\" has empty value", where);
                goto bad;
            }
            if (*level == TLS_FINGERPRINT)
                split_into(val, "|", &p->match);
            else if (*level == TLS_VERIFY || *level == TLS_SECURE)
                split_into(val, ":", &p->match);
            else {
                msg_warn("%s: attribute \"match\" invalid at security level \"%s\"", where,
                         tls_level_name(*level));
                goto bad;
            }
        } else if (n == 6 && strncasecmp(w, "tafile", 6) == 0) {
            if (*level != TLS_VERIFY && *level != TLS_SECURE) {
                msg_warn("%s: attribute \"tafile\" invalid at security level \"%s\"", where,
                         tls_level_name(*level));
                goto bad;
            }
            if (!*val) {
                msg_warn("%s: attribute \"tafile\" has empty value", where);
                goto bad;
            }
            if (load_trust_anchors(p, val) != 0)
                goto bad;
        } else if (n == 10 && strncasecmp(w, "servername", 10) == 0) {
            if (p->servername.len) {
                msg_warn("%s: attribute \"servername\" is specified multiple times", where);
                goto bad;
            }
            strbuf_set(&p->servername, val);
        } else if ((rpt = tlsrpt_attribute(p, w, n, val, where)) != 0) {
            if (rpt < 0)
                goto bad;
        } else if (n == 16 && strncasecmp(w, "connection_reuse", 16) == 0) {
            if (parse_bool(val) < 0) {
                msg_warn("%s: malformed attribute/value pair \"%s\"", where, w);
                goto bad;
            }
            /* read; postern-smtp has no connection reuse yet */
        } else {
            msg_warn("%s: invalid attribute name: \"%.*s\"", where, (int)n, w);
            goto bad;
        }
    }
    goto out;
bad:
    invalid(p, "4.7.5", "client TLS configuration problem");
out:
    strlist_free(&words);
}

/* Whether key looks like a host name (not "[host]", not "host:port"). */
static int hostname_key(const char *key)
{
    /* Postfix's valid_hostname(): an address is no host name */
    return *key && dns_labels_valid(key) && strspn(key, "0123456789.") != strlen(key);
}

/* Look the next hop up in smtp_tls_policy_maps; 1 found (applied), 0 not
 * found, -1 invalid. */
static int table_lookup(struct tls_policy *p, enum tls_level *level, const char *key)
{
    struct strbuf value = STRBUF_INIT, where = STRBUF_INIT;
    int found = 0;
    const char *name = key;
    for (;;) {
        int r = maplist_lookup(policy_maps, name, &value);
        if (r == MAP_RETRY) {
            msg_warn("%s, next-hop destination \"%s\": policy table lookup error",
                     param("tls_policy_maps"), name);
            invalid(p, "4.7.5", "client TLS configuration problem");
            found = -1;
            break;
        }
        if (r == MAP_FOUND) {
            strbuf_printf(&where, "%s, next-hop destination \"%s\"", param("tls_policy_maps"), name);
            apply_entry(p, level, value.s ? value.s : "", where.s);
            found = p->invalid ? -1 : 1;
            break;
        }
        /* a domain: its parents as ".example.com" (transport(5)'s order) */
        if (!hostname_key(key) || !(name = strchr(name + 1, '.')))
            break;
    }
    strbuf_free(&value);
    strbuf_free(&where);
    return found;
}

/* One TLSA record "U S M HEX" that RFC 7672 lets an SMTP client use:
 * DANE-TA(2) or DANE-EE(3), a full certificate or key (0) or its SHA-256
 * (1) or SHA-512 (2) digest of the right length. */
static int tlsa_usable(const char *record)
{
    unsigned usage, selector, mtype;
    char hex[16];
    int off = 0;
    if (sscanf(record, "%u %u %u %n%15s", &usage, &selector, &mtype, &off, hex) < 3 || !off)
        return 0;
    size_t bytes = strlen(record + off) / 2;
    return (usage == 2 || usage == 3) && selector <= 1
           && (mtype == 0 ? bytes > 0 : mtype == 1 ? bytes == 32 : mtype == 2 ? bytes == 64 : 0);
}

/* Postfix's dane_incompat(): at "dane" fall back (to encrypt when records
 * exist but none is usable, else to may); at "dane-only" defer.  A
 * configuration error (config) is a warning, and at dane-only a
 * configuration problem. */
static void dane_incompat(struct tls_policy *p, int config, int unusable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void dane_incompat(struct tls_policy *p, int config, int unusable, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (p->level == TLS_DANE) {
        p->level = unusable ? TLS_ENCRYPT : TLS_MAY;
        if (config)
            msg_warn("%s", text);
    } else if (config) {
        msg_warn("%s", text);
        invalid(p, "4.7.5", "client TLS configuration problem");
    } else {
        invalid(p, "4.7.5", "%s", text);
    }
}

/* The dane levels: the TLSA records decide (see the top of the file). */
static void dane_init(struct smtp_session *s, const char *dest)
{
    struct tls_policy *p = &s->tls;
    const struct nexthop_target *t = s->target;
    if (!t->port) {
        msg_warn("%s: the \"dane\" security level is invalid for delivery via unix-domain sockets",
                 dest);
        invalid(p, "4.7.5", "client TLS configuration problem");
        return;
    }
    if (!s->setup->dnssec) {
        dane_incompat(p, 1, 0, "%s: %s configured with dnssec lookups disabled", dest,
                      tls_level_name(p->level));
        return;
    }
    int half = 0;
    if (t->from_mx && !t->mx_secure) {
        if (p->level == TLS_DANE_ONLY || s->setup->dane_insecure_mx == TLS_MAY) {
            dane_incompat(p, 0, 0, "non DNSSEC destination");
            return;
        }
        half = 1;
    }
    if (!t->addr_secure) {          /* no TLSA lookup for an insecure host */
        dane_incompat(p, 0, 0, "no TLSA records found");
        return;
    }
    char qname[320];
    snprintf(qname, sizeof qname, "_%d._tcp.%s", t->port, t->host);
    struct dns_answer ans;
    dns_lookup(qname, DNS_T_TLSA, &ans);
    if (ans.status == DNS_RETRY) {
        msg_warn("DANE TLSA lookup problem: %s: %s", qname, ans.why ? ans.why : "try again");
        /* a bogus signature (dns.h: DNS_RETRY with this reason) */
        if (ans.why && strcmp(ans.why, "DNSSEC validation failed") == 0)
            tlsrpt_record(s, "dnssec-invalid");
        invalid(p, "4.7.5", "TLSA lookup error for %s:%d", t->host, t->port);
    } else if (ans.status == DNS_NOTFOUND || !ans.secure) {
        dane_incompat(p, 0, 0, "no TLSA records found");
    } else {
        for (size_t i = 0; i < ans.count; i++)
            if (tlsa_usable(ans.records[i].text)) {
                strlist_add(&p->tlsa, ans.records[i].text);
                /* the report's policy-string: the usable records */
                if (p->policy_string.len + strlen(ans.records[i].text) < 1800) {
                    if (p->policy_string.len)
                        strbuf_putc(&p->policy_string, '|');
                    strbuf_puts(&p->policy_string, ans.records[i].text);
                }
            }
        if (p->tlsa.count == 0)
            dane_incompat(p, 0, 1, "TLSA records unusable");
        else if (half && s->setup->dane_insecure_mx == TLS_ENCRYPT) {
            p->level = TLS_ENCRYPT;     /* TLS required, nothing authenticated */
            strlist_free(&p->tlsa);
        } else if (half)
            p->level = TLS_HALF_DANE;
        else
            p->level = TLS_DANE;
    }
    dns_answer_free(&ans);
}

int tls_policy_find(struct smtp_session *s)
{
    struct tls_policy *p = &s->tls;
    memset(p, 0, sizeof *p);
    p->level = global_level;
    /* the next hop as the delivery names it; LMTP's inet:/unix: is not part
     * of the key, and a unix socket's name is $myhostname */
    const char *dest = s->target->dest ? s->target->dest : s->batch->nexthop;
    if (s->setup->lmtp && (strncmp(dest, "inet:", 5) == 0 || strncmp(dest, "unix:", 5) == 0))
        dest += 5;
    if (s->target->sa.ss_family == AF_UNIX) {
        snprintf(p->nexthop_domain, sizeof p->nexthop_domain, "%s", s->setup->myhostname);
    } else {
        const char *d = dest[0] == '[' ? dest + 1 : dest;
        size_t n = dest[0] == '[' ? strcspn(d, "]") : strcspn(d, ":");
        snprintf(p->nexthop_domain, sizeof p->nexthop_domain, "%.*s", (int)n, d);
        if (strncasecmp(p->nexthop_domain, "ipv6:", 5) == 0)
            memmove(p->nexthop_domain, p->nexthop_domain + 5, strlen(p->nexthop_domain + 5) + 1);
        for (char *c = p->nexthop_domain; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    enum tls_level level = global_level;
    if (policy_maps && table_lookup(p, &level, dest) < 0)
        goto out;
    p->level = level;
    if (p->level == TLS_DANE || p->level == TLS_DANE_ONLY)
        dane_init(s, dest);
    if (p->invalid || p->level == TLS_NONE)
        goto out;
    /* SNI: none by default (Postfix: "absent DANE, no SNI name is sent");
     * "hostname", "nexthop" or a DNS name */
    if (!p->servername.len)
        strbuf_set(&p->servername, conf_str(param("tls_servername")));
    if (strcasecmp(p->servername.s ? p->servername.s : "", "hostname") == 0)
        strbuf_set(&p->servername, s->target->host);
    else if (strcasecmp(p->servername.s ? p->servername.s : "", "nexthop") == 0)
        strbuf_set(&p->servername, p->nexthop_domain);
    if (p->servername.len && (!dns_labels_valid(p->servername.s)
                              || strspn(p->servername.s, "0123456789.") == p->servername.len)) {
        msg_warn("%s: invalid TLS servername \"%s\"", dest, p->servername.s);
        invalid(p, "4.7.5", "client TLS configuration problem");
        goto out;
    }
    int mandatory = p->level >= TLS_ENCRYPT;
    if (!p->protocols.len)
        strbuf_set(&p->protocols, conf_str(param(mandatory ? "tls_mandatory_protocols"
                                                            : "tls_protocols")));
    if (!p->ciphers.len)
        strbuf_set(&p->ciphers, conf_str(param(mandatory ? "tls_mandatory_ciphers" : "tls_ciphers")));
    if (!p->exclude.len) {
        strbuf_set(&p->exclude, conf_str(param("tls_exclude_ciphers")));
        if (mandatory)
            strbuf_printf(&p->exclude, " %s", conf_str(param("tls_mandatory_exclude_ciphers")));
    }
    /* Postfix: encrypt excludes eNULL; authenticated levels aNULL */
    strbuf_puts(&p->exclude, p->level == TLS_ENCRYPT ? " eNULL" : mandatory ? " aNULL" : "");
    if ((p->level == TLS_VERIFY || p->level == TLS_SECURE) && p->tlsa.count == 0) {
        struct strlist files = STRLIST_INIT;
        conf_list(param("tls_trust_anchor_file"), &files);
        for (size_t i = 0; i < files.count && !p->invalid; i++)
            if (load_trust_anchors(p, files.item[i]) != 0)
                invalid(p, "4.7.5", "client TLS configuration problem");
        strlist_free(&files);
        if (p->invalid)
            goto out;
    }
    if (p->match.count == 0) {
        struct strbuf err = STRBUF_INIT;
        if (p->level == TLS_VERIFY || p->level == TLS_SECURE) {
            list_split(conf_str(param(p->level == TLS_VERIFY ? "tls_verify_cert_match"
                                                             : "tls_secure_cert_match")),
                       &p->match, &err);
        } else if (p->level == TLS_FINGERPRINT) {
            list_split(conf_str(param("tls_fingerprint_cert_match")), &p->match, &err);
            if (p->match.count == 0) {
                msg_warn("nexthop domain %s: configured at fingerprint security level, but with "
                         "no fingerprints to match.", dest);
                invalid(p, "4.7.5", "client TLS configuration problem");
            }
        }
        strbuf_free(&err);
    }
out:
    if (!p->invalid)
        return 0;
    msg_warn("TLS policy lookup for %s/%s: %s", dest, s->target->host, p->why.s);
    batch_result_open(s->batch, "none", 0, p->dsn, "%s", p->why.s);
    return -1;
}

void tls_policy_free(struct tls_policy *p)
{
    strbuf_free(&p->why);
    strbuf_free(&p->protocols);
    strbuf_free(&p->ciphers);
    strbuf_free(&p->exclude);
    strlist_free(&p->match);
    strlist_free(&p->tlsa);
    strbuf_free(&p->servername);
    strbuf_free(&p->policy_string);
}
