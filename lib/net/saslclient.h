/* saslclient.h - the client side of the SMTP AUTH mechanisms postern-smtp
 * speaks (RFC 4954): SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 7677, RFC 5802;
 * without channel binding, "n,,"), PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195), chosen among what a server offers as Cyrus SASL
 * chooses for Postfix's smtp(8), under the same security options
 * (smtp_sasl_security_options: noplaintext, noactive, nodictionary,
 * noanonymous, mutual_auth).  No I/O: the caller sends "AUTH MECH
 * [initial]" and feeds each 334 challenge in, so the challenge decoder is
 * fuzzed alone (fuzz/sasl_client.c).
 */
#ifndef POSTERN_SASLCLIENT_H
#define POSTERN_SASLCLIENT_H

#include "strbuf.h"

/* What a mechanism resists (Cyrus's SASL_SEC_* properties); a security
 * option asks for each property it names. */
#define SASLC_NOPLAINTEXT   0x01    /* no password in the clear on the wire */
#define SASLC_NOACTIVE      0x02    /* no active (non-dictionary) attack */
#define SASLC_NODICTIONARY  0x04    /* no passive dictionary attack */
#define SASLC_NOANONYMOUS   0x08    /* not anonymous */
#define SASLC_MUTUAL_AUTH   0x10    /* the server proves itself too */

/* Read a security option list ("noplaintext, noanonymous"; "" asks for
 * nothing).  0 with *flags, or -1 with the unknown word in err. */
int saslc_security_parse(const char *value, unsigned *flags, struct strbuf *err);

/* The mechanism to use among `offered` (the server's names, separated by
 * spaces, case-insensitive), the strongest first: SCRAM-SHA-256,
 * SCRAM-SHA-1, CRAM-MD5, PLAIN, then LOGIN, each only when it has every
 * property in `required`.  NULL
 * when none qualifies (Cyrus's "no mechanism available"). */
const char *saslc_choose(const char *offered, unsigned required);

/* SCRAM: a server's iteration count above this is refused (RFC 7677
 * asks for at least 4096; servers use 4096 to some 10,000s) */
#define SASLC_SCRAM_MAX_ITERATIONS 200000

/* One exchange. */
struct saslc {
    const char *mech;           /* from saslc_choose() */
    const char *user, *password;
    int step;                   /* challenges answered */
    char nonce[33];             /* SCRAM: the client's nonce; made by
                                   saslc_first() unless set (test vectors) */
    struct strbuf scram;        /* SCRAM: client-first-message-bare, then
                                   the server signature it must show */
    int server_verified;        /* SCRAM: the server's signature matched */
};

/* Start: the initial response in base64 ("" when the mechanism has none,
 * and AUTH is sent without one). */
void saslc_first(struct saslc *c, struct strbuf *out);
/* Answer one challenge: the text after "334 " (base64).  0 with the
 * response in base64 in out, or -1 with the reason in err (a challenge
 * that does not decode, or one the mechanism does not expect). */
int saslc_next(struct saslc *c, const char *challenge, struct strbuf *out, struct strbuf *err);
/* Forget the exchange's state (wiped). */
void saslc_free(struct saslc *c);

#endif
