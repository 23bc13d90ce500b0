/* policy_proto.h - Postfix's policy delegation protocol (SMTPD_POLICY_README),
 * the client's side: a request is "name=value" lines ended by an empty
 * line; the answer is the same, and postern reads only its `action`
 * attribute (an access(5) action: "DUNNO", "DEFER_IF_PERMIT text",
 * "PREPEND header: value", "550 5.7.1 text", ...).  smtpd's policy client
 * (bin/postern-smtpd/policy_service.c) talks; this file only encodes and
 * parses, so that the parser can be fuzzed (fuzz/policy_answer.c).
 */
#ifndef POSTERN_POLICY_PROTO_H
#define POSTERN_POLICY_PROTO_H

#include <stddef.h>

struct strbuf;

/* The longest answer postern reads (Postfix's line_length_limit is 2048
 * per line; an answer of several lines stays well below this). */
#define POLICY_ANSWER_MAX 8192

/* Append "name=value\n"; CR, LF and NUL in the value become spaces, so a
 * value can never end the request or add an attribute. */
void policy_attr_put(struct strbuf *out, const char *name, const char *value);
/* Append the empty line that ends a request. */
void policy_request_end(struct strbuf *out);

enum policy_parse {
    POLICY_PARSE_MORE = 0,      /* no empty line yet: read more */
    POLICY_PARSE_DONE = 1,      /* an answer with an action */
    POLICY_PARSE_BAD = -1,      /* a line without '=', no action, too long */
};

/* Parse the bytes received so far.  With POLICY_PARSE_DONE, `action` holds
 * the action (white space around it removed; the last one wins, as in
 * Postfix) and *used the bytes the answer took (an answer never runs into
 * the next one: the server speaks only when asked).  With
 * POLICY_PARSE_BAD, `why` says what was wrong. */
enum policy_parse policy_answer_parse(const char *bytes, size_t len, struct strbuf *action,
                                      size_t *used, struct strbuf *why);

#endif
