/* smtpargs.h - the arguments of SMTP commands, parsed without a
 * connection: the verb of a command line, the path and ESMTP parameters of
 * MAIL FROM (SIZE, BODY, RET, ENVID, SMTPUTF8, REQUIRETLS, AUTH) and RCPT TO (NOTIFY,
 * ORCPT), turned into envelope records (doc/injection.md), with Postfix's
 * replies for what does not parse.  postern-smtpd calls these; so does the
 * fuzz target fuzz/smtp_command.c.
 */
#ifndef POSTERN_SMTPARGS_H
#define POSTERN_SMTPARGS_H

#include <stddef.h>

#include "strbuf.h"

#define SMTP_ADDR_MAX   2048    /* bytes of an address (as postern-queue) */
#define SMTP_VERB_MAX   16      /* the verb buffer: longer verbs are cut */

/* Split a command line at its first space: the verb (cut to
 * SMTP_VERB_MAX - 1 bytes) into verb, and the rest (with its leading
 * space) as the return value. */
char *smtp_command_split(char *line, char verb[SMTP_VERB_MAX]);

struct smtp_mail_args {
    struct strbuf sender;       /* the internal form: no source route, no quotes */
    struct strbuf attributes;   /* A records: BODY, RET, ENVID, SMTPUTF8, REQUIRETLS */
    long long size;             /* SIZE=, 0 when not given */
    int smtputf8;               /* SMTPUTF8 was given (and is enabled) */
    int utf8_address;           /* the address has bytes outside ASCII */
    int requiretls;             /* REQUIRETLS (RFC 8689) was given: the
                                 * caller decides whether the session allows it */
};
#define SMTP_MAIL_ARGS_INIT { STRBUF_INIT, STRBUF_INIT, 0, 0, 0, 0 }

/* Parse the arguments of MAIL ("FROM:<address> PARAM=VALUE ...").  args
 * is changed.  0, or -1 with the reply in reply ("501 5.5.4 Syntax: MAIL
 * FROM:<address>", "555 5.5.4 Unsupported option: X", ...). */
int smtp_parse_mail(char *args, int smtputf8_enable, struct smtp_mail_args *out,
                    struct strbuf *reply);
void smtp_mail_args_free(struct smtp_mail_args *a);

struct smtp_rcpt_args {
    struct strbuf recipient;    /* the internal form */
    struct strbuf records;      /* P records: NOTIFY, ORCPT */
    int utf8_address;
};
#define SMTP_RCPT_ARGS_INIT { STRBUF_INIT, STRBUF_INIT, 0 }

/* Parse the arguments of RCPT ("TO:<address> PARAM=VALUE ..."); as
 * smtp_parse_mail. */
int smtp_parse_rcpt(char *args, struct smtp_rcpt_args *out, struct strbuf *reply);
void smtp_rcpt_args_free(struct smtp_rcpt_args *a);

/* Decode RFC 3461 xtext into out (no control bytes); -1 when malformed. */
int xtext_decode(const char *in, struct strbuf *out);
/* Encode text as RFC 3461 xtext (ENVID, ORCPT going out), appended to out. */
void xtext_encode(const char *in, struct strbuf *out);
/* An address in the internal form as it goes into MAIL FROM:<> and
 * RCPT TO:<> (smtp_quote_rfc821_envelope): a local part that is no
 * dot-atom is quoted. */
void smtp_address_external(const char *address, struct strbuf *out);

#endif
