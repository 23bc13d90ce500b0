/* tlsrpt.h - TLS-RPT (RFC 8460) data that two programs share: the line the
 * smtp runner appends to data_directory/tlsrpt/DAY for each TLS attempt,
 * which `postern tlsrpt` reads back, and the parser of a policy domain's
 * _smtp._tls TXT record.
 *
 * A line (fields separated by tabs, no tab or newline inside one):
 *
 *   TIME POLICY-DOMAIN POLICY-TYPE RESULT MX-HOST RECEIVING-IP [SENDING-IP [POLICY-STRING]]
 *
 * POLICY-TYPE is "tlsa", "sts" or "no-policy-found"; RESULT "success" or
 * an RFC 8460 result type; SENDING-IP "-" when unknown; POLICY-STRING the
 * policy's lines joined by '|' ("-" or absent: none).  Older lines have
 * the first six fields only.
 */
#ifndef POSTERN_TLSRPT_H
#define POSTERN_TLSRPT_H

#include <stddef.h>

struct strlist;

struct tlsrpt_line {
    long long time;
    char domain[256];
    char policy_type[20];
    char result[32];
    char mx_host[256];
    char receiving_ip[64];
    char sending_ip[64];            /* "" when unknown */
    char policy_string[2048];       /* lines joined by '|', "" none */
};

/* 1 when word is "success" or one of RFC 8460's result types. */
int tlsrpt_result_known(const char *word);
/* Parse one line (without its newline; len bytes).  0, or -1 when it is
 * not a well-formed line (the caller skips it). */
int tlsrpt_line_parse(const char *line, size_t len, struct tlsrpt_line *out);
/* Format r as one line with its newline into out; its length, or -1 when
 * it does not fit or a field holds a tab, a newline or (but the policy
 * string's joints) nothing valid. */
int tlsrpt_line_format(const struct tlsrpt_line *r, char *out, size_t size);

/* A _smtp._tls TXT record: 0 with its rua URIs (mailto:ADDRESS, the
 * address %-decoded and without ?headers, or https:...) appended to rua,
 * or -1 when it is not a TLSRPTv1 record or names no usable URI. */
int tlsrpt_txt_parse(const char *txt, struct strlist *rua);

#endif
