/* smtpreply.h - what an SMTP or LMTP server answers, as the client side
 * reads it (RFC 5321 section 4.2): replies of one or more lines with one
 * three-digit code, the RFC 3463 code at the start of the text, and the
 * extensions an EHLO/LHLO reply announces.  No I/O: lines go in one at a
 * time (lib/net/smtpconn.c reads them), so the parser is fuzzed alone
 * (fuzz/smtp_reply.c).
 */
#ifndef POSTERN_SMTPREPLY_H
#define POSTERN_SMTPREPLY_H

#include <stddef.h>

#include "strbuf.h"

#define SMTP_REPLY_MAX_LINES    100     /* lines of one reply before it is refused */
#define SMTP_REPLY_MAX_TEXT     4096    /* bytes of reply text kept (the rest dropped) */

struct smtp_reply {
    int code;                   /* 250, 550, ...; 0 while incomplete */
    char dsn[16];               /* "5.1.1" from the first line, else "5.0.0" by class */
    struct strbuf text;         /* the lines joined with spaces, each as sent
                                   ("550-5.1.1 a 550 5.1.1 b"): Postfix's form */
    struct strlist_lines {
        char **line;            /* each line's text after "NNN-"/"NNN " */
        size_t count;
    } lines;
    int done;                   /* the last line came */
};
#define SMTP_REPLY_INIT { 0, "", STRBUF_INIT, { NULL, 0 }, 0 }

/* Start a new reply in r (keeping its buffers). */
void smtp_reply_reset(struct smtp_reply *r);
/* Add one line (without CR LF) to r.  1 when the reply is complete, 0 when
 * more lines follow, -1 when the line is not a reply line (no three-digit
 * code, a code that changes between lines, too many lines). */
int smtp_reply_add(struct smtp_reply *r, const char *line, size_t len);
void smtp_reply_free(struct smtp_reply *r);

/* The extensions of an EHLO or LHLO reply that the client uses. */
struct smtp_features {
    int pipelining, eightbitmime, smtputf8, dsn, starttls, chunking, size_given;
    unsigned long long size;    /* SIZE N (0: no limit announced) */
    struct strbuf auth;         /* the AUTH mechanisms, space-separated */
    int requiretls;             /* REQUIRETLS (RFC 8689) */
    unsigned xforward;          /* XFORWARD (Postfix's XFORWARD_README): the
                                   SMTP_XFORWARD_* attributes it names */
};
#define SMTP_FEATURES_INIT { 0, 0, 0, 0, 0, 0, 0, 0, STRBUF_INIT, 0, 0 }
#define SMTP_XFORWARD_NAME 0x01u
#define SMTP_XFORWARD_ADDR 0x02u
#define SMTP_XFORWARD_PORT 0x04u
#define SMTP_XFORWARD_PROTO 0x08u
#define SMTP_XFORWARD_HELO 0x10u
#define SMTP_XFORWARD_IDENT 0x20u
#define SMTP_XFORWARD_SOURCE 0x40u
/* Read the keywords of a positive EHLO/LHLO reply (its lines after the
 * first); unknown keywords are ignored, as RFC 5321 asks. */
void smtp_features_parse(const struct smtp_reply *r, struct smtp_features *f);
void smtp_features_free(struct smtp_features *f);

#endif
