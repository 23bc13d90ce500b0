/* saslclient_test.c - lib/net/saslclient.c's SCRAM against the examples
 * of RFC 5802 (SCRAM-SHA-1) and RFC 7677 (SCRAM-SHA-256): the same client
 * messages from the same nonce, the server's signature accepted, a wrong
 * one, a foreign nonce, an iteration count out of range and a server
 * error refused; the mechanism chosen first when offered. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "saslclient.h"
#include "tap.h"

/* base64 of a text, or the text of base64, for comparing */
static const char *b64(const char *text, int decode)
{
    static char out[1024];
    int n = decode ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text, (int)strlen(text))
                   : EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)strlen(text));
    out[n > 0 ? n : 0] = '\0';      /* decoded padding shows as NULs: the text ends there */
    return out;
}

/* One RFC example: user "user", password "pencil". */
static void example(const char *mech, const char *nonce, const char *server_first,
                    const char *client_final, const char *server_final)
{
    char name[200];
    struct saslc c = {.mech = mech, .user = "user", .password = "pencil"};
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
    snprintf(c.nonce, sizeof c.nonce, "%s", nonce);
    saslc_first(&c, &out);
    char want[300];
    snprintf(want, sizeof want, "n,,n=user,r=%s", nonce);
    snprintf(name, sizeof name, "%s: client-first-message as in the RFC", mech);
    is_str(b64(out.s, 1), want, name);
    char challenge[600];
    snprintf(challenge, sizeof challenge, "%s", b64(server_first, 0));
    snprintf(name, sizeof name, "%s: server-first-message answered", mech);
    is_int(saslc_next(&c, challenge, &out, &err), 0, name);
    snprintf(name, sizeof name, "%s: client-final-message with the RFC's proof", mech);
    is_str(b64(out.s, 1), client_final, name);
    snprintf(challenge, sizeof challenge, "%s", b64(server_final, 0));
    snprintf(name, sizeof name, "%s: the server's signature verifies", mech);
    is_int(saslc_next(&c, challenge, &out, &err), 0, name);
    snprintf(name, sizeof name, "%s: ... answered with an empty line", mech);
    is_int((long)out.len, 0, name);
    ok(c.server_verified, "%s: the server proved it knows the password", mech);
    saslc_free(&c);

    /* the same with a server that does not know the password */
    struct saslc bad = {.mech = mech, .user = "user", .password = "pencil"};
    snprintf(bad.nonce, sizeof bad.nonce, "%s", nonce);
    saslc_first(&bad, &out);
    saslc_next(&bad, b64(server_first, 0), &out, &err);
    char forged[200];
    snprintf(forged, sizeof forged, "v=%s", b64("0123456789abcdef0123456789abcdef", 0));
    snprintf(name, sizeof name, "%s: a wrong server signature is refused", mech);
    is_int(saslc_next(&bad, b64(forged, 0), &out, &err), -1, name);
    ok(strstr(err.s ? err.s : "", "does not match") != NULL, "%s: ... saying so (%s)", mech, err.s);
    saslc_free(&bad);
    strbuf_free(&out);
    strbuf_free(&err);
}

/* A server-first-message that must be refused. */
static void refused(const char *server_first, const char *why)
{
    struct saslc c = {.mech = "SCRAM-SHA-256", .user = "user", .password = "pencil"};
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
    snprintf(c.nonce, sizeof c.nonce, "%s", "rOprNGfwEbeRWgbNEkqO");
    saslc_first(&c, &out);
    is_int(saslc_next(&c, b64(server_first, 0), &out, &err), -1, why);
    saslc_free(&c);
    strbuf_free(&out);
    strbuf_free(&err);
}

int main(void)
{
    /* RFC 5802, section 5 */
    example("SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    /* RFC 7677, section 3 */
    example("SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

    refused("r=someoneelsesnonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "a nonce that does not start with ours");
    refused("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "a nonce with nothing of the server's");
    refused("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999", "an iteration count out of range");
    refused("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "an iteration count of 0");
    refused("m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "a mandatory extension");
    refused("r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", "no salt");

    /* a server error in server-final */
    struct saslc c = {.mech = "SCRAM-SHA-1", .user = "user", .password = "pencil"};
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
    saslc_first(&c, &out);
    ok(strlen(c.nonce) >= 24, "without a nonce given, one of 24 random characters is made");
    char first[300];
    snprintf(first, sizeof first, "r=%sxyz,s=QSXCR+Q6sek8bf92,i=4096", c.nonce);
    is_int(saslc_next(&c, b64(first, 0), &out, &err), 0, "a server-first with our random nonce");
    is_int(saslc_next(&c, b64("e=invalid-proof", 0), &out, &err), -1, "e=invalid-proof: refused");
    is_str(err.s, "SCRAM server error: invalid-proof", "... with the server's word");
    saslc_free(&c);

    /* user names are escaped */
    struct saslc e = {.mech = "SCRAM-SHA-256", .user = "a,b=c", .password = "x"};
    snprintf(e.nonce, sizeof e.nonce, "%s", "N");
    saslc_first(&e, &out);
    is_str(b64(out.s, 1), "n,,n=a=2Cb=3Dc,r=N", "',' and '=' in a user name as =2C and =3D");
    saslc_free(&e);

    is_str(saslc_choose("PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256", 0), "SCRAM-SHA-256",
           "SCRAM-SHA-256 is chosen first");
    is_str(saslc_choose("PLAIN SCRAM-SHA-1 CRAM-MD5", 0), "SCRAM-SHA-1", "then SCRAM-SHA-1");
    is_str(saslc_choose("PLAIN CRAM-MD5", SASLC_MUTUAL_AUTH), NULL, "mutual_auth: neither PLAIN nor CRAM-MD5");
    is_str(saslc_choose("PLAIN SCRAM-SHA-1", SASLC_MUTUAL_AUTH | SASLC_NOACTIVE), "SCRAM-SHA-1",
           "mutual_auth, noactive: SCRAM");
    strbuf_free(&out);
    strbuf_free(&err);
    return tap_done();
}
