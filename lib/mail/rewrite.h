/* rewrite.h - what postern-rewrite does to a message on its way to the
 * queue (Postfix's cleanup(8) and trivial-rewrite(8) "local" context):
 * qualify addresses (append_at_myorigin, append_dot_mydomain) in the
 * envelope and, for local submissions, in the address headers; add the
 * Message-ID, Date and From headers a local submission lacks; remove the
 * headers of message_drop_headers (Bcc, Content-Length, Resent-Bcc,
 * Return-Path); drop duplicate recipients.  The header is read one logical header at a time (bounded
 * by header_size_limit) and the body streams through untouched.
 *
 * The code holds no privilege and keeps no state between messages, so a
 * caller may run it in-process (DESIGN: rewrite may run inside its caller):
 * postern-smtpd does, pushing the message through a rewrite_stream as it
 * arrives; postern-rewrite pulls it with rewrite_message().
 * The companion issue's map-driven rewriting (canonical_maps, virtual alias
 * expansion, header_checks) belongs in rewrite_address() and
 * rewrite_header() of rewrite.c: see the marked places there. */
#ifndef POSTERN_REWRITE_H
#define POSTERN_REWRITE_H

#include <stddef.h>

#include "config.h"

struct strbuf;
struct envelope;

/* Settings, read once per process. */
struct rewrite_config {
    char *myhostname;
    char *myorigin;
    char *mydomain;
    int append_at_myorigin;
    int append_dot_mydomain;
    int always_add_missing_headers;
    size_t header_size_limit;
    size_t duplicate_filter_limit;
    long hopcount_limit;            /* Received: headers allowed */
    struct strlist drop_headers;    /* message_drop_headers */
    /* virtual alias expansion (rewrite_alias.c); NULL maps: none */
    struct maplist *virtual_alias_maps;
    struct resolver *resolver;      /* which domains are ours (any table set) */
    char *recipient_delimiter;
    int propagate_virtual;          /* propagate_unmatched_extensions has "virtual" */
    int propagate_canonical;        /* ... and "canonical" */
    /* canonical mapping and masquerading (rewrite_canonical.c), for the
     * address classes (REWRITE_ENV_FROM, ...) of their *_classes */
    struct maplist *canonical_maps, *sender_canonical_maps, *recipient_canonical_maps;
    unsigned canonical_classes, sender_canonical_classes, recipient_canonical_classes;
    struct strlist masquerade_domains;
    struct strlist masquerade_exceptions;
    unsigned masquerade_classes;
    char *remote_header_rewrite_domain;
    long virtual_alias_recursion_limit;
    size_t virtual_alias_expansion_limit;
    size_t virtual_alias_address_length_limit;
    /* header_checks and body_checks (rewrite_checks.c); NULL: none */
    struct maplist *header_checks, *body_checks;
    size_t body_checks_size_limit;
    size_t line_length_limit;       /* body lines are checked in pieces of this */
    /* mime_header_checks and nested_header_checks (both default to
     * $header_checks: then the same list), NULL: none; MIME is parsed
     * unless disable_mime_input_processing, nesting at most
     * mime_nesting_limit deep */
    struct maplist *mime_header_checks, *nested_header_checks;
    /* milter_header_checks: the header fields milters add or change
     * (smtpd asks, rewrite_check with CHECKS_MILTER), NULL: none */
    struct maplist *milter_header_checks;
    int mime;
    long mime_nesting_limit;
    /* the MIME errors to report and reject (MIME_ERR_* of rewrite_mime.h:
     * strict_7bit_headers, strict_8bitmime_body, strict_8bitmime,
     * strict_mime_encoding_domain; nesting with any of them or any header
     * checks, as Postfix), and mime_boundary_length_limit */
    unsigned mime_report;
    size_t mime_boundary_length_limit;
    /* header_address_token_limit: an address header is rewritten from its
     * first this many tokens only (0: no limit) */
    size_t header_token_limit;
    /* internal_mail_filter_classes: the REWRITE_INTERNAL_* classes of
     * postern's own mail that header_checks and body_checks see */
    unsigned internal_filter_classes;
    /* sender_bcc_maps, recipient_bcc_maps (NULL: none), always_bcc ("") */
    struct maplist *sender_bcc_maps, *recipient_bcc_maps;
    char *always_bcc;
    /* the RECEIVE_* flags of receive_override_options (config.h) it was
     * loaded with: their tables are not open */
    unsigned receive_override;
};

/* Address classes of canonical_classes, masquerade_classes, ... */
#define REWRITE_ENV_FROM 0x1        /* envelope_sender */
#define REWRITE_ENV_RCPT 0x2        /* envelope_recipient */
#define REWRITE_HDR_FROM 0x4        /* header_sender: From, Sender, Reply-To, ... */
#define REWRITE_HDR_RCPT 0x8        /* header_recipient: To, Cc, Bcc, ... */

/* Mail postern makes itself (the message attribute internal=, set by the
 * program that injects it): header_checks and body_checks skip it unless
 * internal_mail_filter_classes names its class, as Postfix's cleanup.
 * Forwarded mail (aliases, .forward) is never checked: Postfix's local(8)
 * re-injects it without content inspection, and no class turns it on. */
#define REWRITE_INTERNAL_BOUNCE 0x1     /* "bounce": bounces, delay and success notices */
#define REWRITE_INTERNAL_NOTIFY 0x2     /* "notify": postmaster notifications */
#define REWRITE_INTERNAL_FORWARD 0x4    /* forwarded by postern-local */
/* The class of an internal= value ("bounce", "notify", "forward"); 0 for
 * anything else. */
unsigned rewrite_internal_class(const char *name);
/* 1 when header_checks and body_checks apply to a message of this class
 * (0: not internal mail). */
int rewrite_content_checked(const struct rewrite_config *cfg, unsigned internal_class);

/* How header addresses are rewritten (Postfix's rewrite context): not at
 * all, as local mail (sendmail, local_header_rewrite_clients: qualify
 * with $myorigin and $mydomain, add missing headers), or as remote mail
 * (remote_header_rewrite_domain set: "user" becomes
 * "user@$remote_header_rewrite_domain", missing headers are added). */
enum rewrite_context {
    REWRITE_CONTEXT_NONE,
    REWRITE_CONTEXT_LOCAL,
    REWRITE_CONTEXT_REMOTE,
};

/* Fill cfg from main.cf (config_load() done), leaving out what the
 * RECEIVE_* flags of receive_override_options say (config.h): the program
 * that receives the message decides (smtpd: its receive_override_options;
 * postern-rewrite: the local submission's; 0 for postern's own mail,
 * as Postfix's internal mail).  Exits as a temporary failure when a table
 * cannot be opened (a configuration error). */
void rewrite_config_load(struct rewrite_config *cfg, unsigned receive_override);
void rewrite_config_free(struct rewrite_config *cfg);
/* For a process that keeps cfg (smtpd's zygote): open again each table
 * list whose file changed (map_changed); one that cannot be opened now
 * keeps what was read before, with a warning.  1 when one was. */
int rewrite_config_refresh(struct rewrite_config *cfg);

/* Qualify one address as trivial-rewrite does in the local context:
 * "user" -> "user@$myorigin" (append_at_myorigin), "user@host" ->
 * "user@host.$mydomain" (append_dot_mydomain).  The empty address (null
 * sender) stays empty.  Appends the result to out. */
void rewrite_address(const struct rewrite_config *cfg, const char *address,
                     struct strbuf *out);

/* Qualify an address of a class (one REWRITE_ENV_FROM, ...) in a context
 * (the envelope's is always local), then map it through
 * sender_/recipient_canonical_maps and canonical_maps and masquerade it,
 * as their *_classes say.  Appends the result to out.  0, or -1 when a
 * table could not answer (logged; the message must be deferred). */
int rewrite_address_class(const struct rewrite_config *cfg, enum rewrite_context context,
                          unsigned address_class, const char *address, struct strbuf *out);

/* The table search shared by canonical and virtual alias mapping
 * (rewrite_canonical.c): map_search_address() with the bare local part
 * tried for our own domains; MAP_RETRY when that cannot be told. */
enum addr_key_form;
struct maplist;
int rewrite_map_search(const struct rewrite_config *cfg, struct maplist *maps,
                       const char *address, struct strbuf *value, enum addr_key_form *form);
/* The extension of an address's local part with its delimiter ("+ext"),
 * or "", into ext. */
void rewrite_extension(const struct rewrite_config *cfg, const char *address, struct strbuf *ext);
/* A table's result as addresses: split on commas and white space, <>
 * removed, qualified, the extension put into each local part; appended
 * to out. */
void rewrite_crunch_result(const struct rewrite_config *cfg, const char *value,
                           const char *extension, struct strlist *out);

/* Rewrite the envelope in place: sender and recipients, then virtual
 * alias expansion of the recipients; a recipient that appears twice is
 * kept once (duplicate_filter_limit).  0, or -1 when the message must be
 * deferred, with "X.Y.Z text" in reason ("4.6.0 Alias expansion error":
 * an alias loop, a limit, a table that cannot answer). */
int rewrite_envelope(const struct rewrite_config *cfg, struct envelope *env,
                     struct strbuf *reason);

/* REDIRECT and BCC of smtpd's access tables, given as the message
 * attributes redirect=ADDRESS and bcc=ADDRESS (doc/injection.md):
 * applied as rewrite_actions_apply() does and removed.  1 when there
 * were such attributes. */
int rewrite_access_actions(const struct rewrite_config *cfg, struct envelope *env);

/* sender_bcc_maps, recipient_bcc_maps and always_bcc (rewrite_actions.c):
 * add their recipients, with NOTIFY=NEVER.  0, or -1 when a table could
 * not answer (the message must be deferred). */
int rewrite_bcc(const struct rewrite_config *cfg, struct envelope *env);

/* Virtual alias expansion of the T records (rewrite_alias.c): `given`
 * holds the recipients as they were given, one per T record, for the
 * ORCPT of expanded ones.  0 or -1 as rewrite_envelope(). */
struct strlist;
int rewrite_virtual_aliases(const struct rewrite_config *cfg, struct envelope *env,
                            const struct strlist *given, struct strbuf *reason);

/* What rewrite_message() needs to know about the message, from its
 * envelope (after rewrite_envelope). */
struct rewrite_message_info {
    int local;                  /* A origin=local: a sendmail submission */
    enum rewrite_context context;   /* of the header: local for origin=local,
                                       else A rewrite_context= (smtpd sets it) */
    const char *sender;         /* envelope sender, for a missing From: */
    const char *full_name;      /* A full_name=, or NULL */
    const char *uid;            /* A uid=, or NULL */
    const char *log_client;     /* A log_client= ("name[address]"), or NULL */
    unsigned internal;          /* A internal=: a REWRITE_INTERNAL_* class, or 0 */
    /* where header_checks and body_checks leave DISCARD, HOLD, REDIRECT,
     * FILTER, BCC and the lines they log (NULL: such actions are warned
     * about and ignored); the caller owns it */
    struct rewrite_actions *actions;
};
void rewrite_message_info_from(const struct envelope *env,
                               struct rewrite_message_info *info);

/* The message pushed through rewrite as it arrives, in pieces of any size
 * (the output is the same however the input is cut): begin, feed the
 * bytes, end.  Accepts CRLF line ends and then writes LF.  At most
 * header_size_limit bytes of one logical header and 64 kB of output are
 * held; the body goes on to out_fd as it comes.  cfg and info must
 * outlive the stream. */
struct rewrite_stream;
#define REWRITE_TOO_MANY_HOPS (-3)
#define REWRITE_DEFERRED (-4)       /* a table could not answer: 4.6.0 */
#define REWRITE_REJECTED (-5)       /* header_checks or body_checks REJECT: err
                                       holds "X.Y.Z text" (4.x.x: try again) */
/* The reason of a message deferred by rewrite, as Postfix's cleanup gives it. */
#define REWRITE_EXPANSION_ERROR "4.6.0 Alias expansion error"
struct rewrite_stream *rewrite_stream_begin(const struct rewrite_config *cfg,
                                            const struct rewrite_message_info *info,
                                            int out_fd);
/* Take n more bytes of the message.  Returns 0 while all is well, -2 once
 * writing failed (errno of the write: EPIPE when the next stage went
 * away), REWRITE_TOO_MANY_HOPS once the header turned out to have more
 * Received: headers than hopcount_limit (a mail loop: nothing more is
 * written, and the caller refuses with 5.4.6 and must not hand on the
 * envelope).  After a non-zero return more bytes are ignored. */
int rewrite_stream_feed(struct rewrite_stream *st, const void *bytes, size_t n);
/* The message is complete: finish the header if it was still open, write
 * what is buffered, free the stream.  Returns 0, -2 (errno) or
 * REWRITE_TOO_MANY_HOPS, with the reason in err. */
int rewrite_stream_end(struct rewrite_stream *st, struct strbuf *err);
/* Give up a stream without writing more (NULL is fine). */
void rewrite_stream_free(struct rewrite_stream *st);

/* Copy the message from in_fd to out_fd through a rewrite stream.
 * Returns as rewrite_stream_end(), or -1 when reading failed (errno, text
 * in err). */
int rewrite_message(const struct rewrite_config *cfg,
                    const struct rewrite_message_info *info,
                    int in_fd, int out_fd, struct strbuf *err);

/* Append to out the header (name, colon and value) with every address of
 * its value (at value_offset) rewritten as rewrite_address_class() does
 * for address_class in context.  0 or -1 as rewrite_address_class(). */
int rewrite_address_header(const struct rewrite_config *cfg, enum rewrite_context context,
                           unsigned address_class, const char *header, size_t value_offset,
                           struct strbuf *out);

/* header_checks and body_checks (rewrite_checks.c).  A table's result
 * is an action and an optional text, as Postfix's header_checks(5). */
enum rewrite_check_action {
    CHECK_DUNNO,                /* also OK, and what was not found */
    CHECK_REJECT, CHECK_WARN, CHECK_INFO, CHECK_IGNORE, CHECK_REPLACE, CHECK_PREPEND,
    CHECK_DISCARD, CHECK_HOLD, CHECK_REDIRECT, CHECK_FILTER, CHECK_BCC,
    CHECK_UNKNOWN,
};

/* What the checks decided about the message as a whole, kept until the
 * envelope is handed on (rewrite_actions_apply): Postfix's cleanup
 * flags and records. */
struct rewrite_actions {
    struct strlist log;         /* pairs: "hold: header Subject: x" and
                                   ": text" (or ""), to be logged with the
                                   queue id and the envelope between them */
    int discard;                /* DISCARD: accept, store nothing */
    int hold;                   /* HOLD: store into hold/ */
    char *filter;               /* FILTER transport:destination (the last) */
    char *redirect;             /* REDIRECT address (the last) */
    struct strlist bcc;         /* BCC addresses */
};
#define REWRITE_ACTIONS_INIT { STRLIST_INIT, 0, 0, NULL, NULL, STRLIST_INIT }
void rewrite_actions_free(struct rewrite_actions *actions);
/* Apply the actions to the envelope (after rewrite_envelope): REDIRECT
 * replaces every recipient (each keeping its ORCPT), BCC adds
 * recipients (NOTIFY=NEVER), and the queue is told the rest with the
 * message attributes of doc/injection.md: discard=yes, hold=yes,
 * filter=transport:destination, and one log_line= per logged action,
 * formatted as Postfix's cleanup ("hold: header Subject: x from
 * client; from=<a> to=<b> proto=ESMTP helo=<h>: text").  The queue logs
 * these with the queue id and stores none of them but filter. */
void rewrite_actions_apply(const struct rewrite_config *cfg,
                           const struct rewrite_actions *actions, struct envelope *env);
/* Log the lines of actions as a message that got no queue id does
 * ("NOQUEUE: reject: header ..."), with the envelope's details. */
void rewrite_actions_log_noqueue(const struct rewrite_actions *actions,
                                 const struct envelope *env);
/* One of the log lines above, formatted for env, appended to out. */
void rewrite_actions_format(const struct rewrite_actions *actions, size_t i,
                            const struct envelope *env, struct strbuf *out);
struct rewrite_check {
    enum rewrite_check_action action;
    const char *name;           /* the action word as written */
    size_t name_len;
    const char *text;           /* what follows it, white space skipped */
};
/* Split a table's result into its action and text (pointers into value). */
void rewrite_check_parse(const char *value, struct rewrite_check *out);
/* Which table rewrite_check() asks. */
#define CHECKS_HEADER 0             /* header_checks: the message's own headers */
#define CHECKS_BODY 1               /* body_checks: body lines */
#define CHECKS_MIME 2               /* mime_header_checks: MIME headers (Content-*,
                                       MIME-Version) and the headers of parts */
#define CHECKS_MILTER 4             /* milter_header_checks: a header field a
                                       milter added or changed; logged
                                       "milter-header-ACTION", PREPEND is
                                       not available (as in Postfix) */
#define CHECKS_NESTED 3             /* nested_header_checks: the headers of an
                                       attached message (message/rfc822) */
/* Look content (a logical header with its folding, or a body line without
 * its LF) up in the table `body` names (CHECKS_*) and act:
 * logs WARN, INFO, REJECT, ... as Postfix does; REPLACE puts the new text
 * in replacement, PREPEND in prepend, REJECT the "X.Y.Z text" in reject
 * (a table that cannot answer is a 4.3.0 reject).  Returns the action
 * that applies (CHECK_DUNNO for warnings that changed nothing). */
int rewrite_check(const struct rewrite_config *cfg, const struct rewrite_message_info *info,
                  int body, const char *content, struct strbuf *replacement,
                  struct strbuf *prepend, struct strbuf *reject);

/* Log a MIME error as Postfix's cleanup does ("reject: mime-error
 * improper use of 8-bit data in message header: Subject: ... from
 * client; from=<a> to=<b>"), showing the first 100 bytes of `text`. */
void rewrite_log_mime_error(const struct rewrite_message_info *info, const char *error,
                            const char *text, size_t len);

/* Header helpers shared with sendmail -t. */
/* 1 when line starts a header field ("Name:"), and then *name_len is the
 * length of the name (without trailing white space). */
int header_field_name(const char *line, size_t len, size_t *name_len);
/* The address class of a header that holds addresses, as Postfix's
 * header_opts: REWRITE_HDR_FROM (From, Sender, Reply-To, Errors-To, ...)
 * or REWRITE_HDR_RCPT (To, Cc, Bcc, Apparently-To, Resent-To, ...); 0
 * for other headers. */
unsigned header_address_class(const char *name, size_t name_len);

#endif
