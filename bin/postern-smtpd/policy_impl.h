/* policy_impl.h - what the files of the restriction engine share
 * (policy.c: lists, stages, classes, deferrals and simple checks;
 * policy_access.c: access(5) tables and actions; policy_dns.c: the DNS
 * checks; policy_service.c: check_policy_service; policy_unlisted.c:
 * unknown senders and recipients). */
#ifndef POSTERN_SMTPD_POLICY_IMPL_H
#define POSTERN_SMTPD_POLICY_IMPL_H

#include "dns.h"
#include "smtpd.h"

struct addrmatch;
struct check_ctx;
struct maplist;

enum verdict { V_DUNNO, V_OK, V_REPLY };

/* What a check looks at: decides the "<what>: Xxx rejected:" text.  The
 * lists are of the first six; the last three are what some client checks
 * judge (the unverified reverse name, the TLS client certificate, the
 * SASL login name). */
enum subject {
    SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER, SUBJ_RECIPIENT, SUBJ_DATA, SUBJ_EOD,
    SUBJ_REV_CLIENT, SUBJ_CCERT, SUBJ_SASL,
};

/* Postfix's name of a subject in replies and warnings: "Client host",
 * "Helo command", "Sender address", "Recipient address", "Data command",
 * "End-of-data", "Unverified Client host", "Client certificate", "SASL
 * login name". */
const char *policy_subject_class(enum subject subj);
/* The <what> of a subject's replies (the client's name[address], the
 * HELO name, the address, the certificate's CommonName, ...). */
void policy_subject_what(struct check_ctx *ctx, enum subject subj, struct strbuf *out);

struct check_ctx {
    struct session *s;
    const char *sender;
    const char *recipient;      /* NULL before RCPT */
    enum subject subject;       /* of the list being evaluated */
    struct strbuf *reply;
    int depth;                  /* access table results naming checks, classes */
    const char *stage;          /* "CONNECT", "HELO", "MAIL", "RCPT", "DATA",
                                   "END-OF-MESSAGE" for log lines */
};

struct restriction_name;
typedef enum verdict check_fn(struct check_ctx *ctx, const char *table);

struct restriction {
    const struct restriction_name *def;     /* lib/conf/restrictions.h; NULL: not implemented */
    char *name;                 /* as written, for messages */
    char *table;                /* the table argument, opened lazily */
};

struct restriction_list {
    const char *param;
    int loaded;
    struct restriction *items;
    size_t count;
};

struct policy {
    struct restriction_list lists[7];   /* client, helo, sender, relay, recipient,
                                           data, end_of_data */
    struct addrmatch *mynetworks;
    int mynetworks_loaded;
    struct {
        char *spec;
        struct maplist *maps;
    } tables[32];
    size_t table_count;
    struct {                            /* policy_client_in's lists */
        const char *param;
        char *value;                    /* the value they were built from */
        struct addrmatch *list;
    } client_lists[8];
    size_t client_list_count;
    struct restriction_list *classes;   /* smtpd_restriction_classes, loaded on use */
    size_t class_count;
    /* smtpd_delay_reject = no: the defer_if_permit deferral standing after
     * the client, HELO and sender stages (each starts from the one before),
     * answered at RCPT when nothing refuses there (Postfix's
     * defer_if_permit_client, _helo, _sender) */
    struct strbuf kept[3];
};

/* policy_dns.c: the checks of the client's DNS names. */
enum verdict check_unknown_client_hostname(struct check_ctx *ctx, const char *table);
enum verdict check_unknown_reverse_client_hostname(struct check_ctx *ctx, const char *table);
/* ... and the DNS block lists; `zone` is "domain[=filter]" */
enum verdict check_rbl_client(struct check_ctx *ctx, const char *zone);
enum verdict check_rhsbl_client(struct check_ctx *ctx, const char *zone);
enum verdict check_rhsbl_reverse_client(struct check_ctx *ctx, const char *zone);
enum verdict check_rhsbl_helo(struct check_ctx *ctx, const char *zone);
enum verdict check_rhsbl_sender(struct check_ctx *ctx, const char *zone);
enum verdict check_rhsbl_recipient(struct check_ctx *ctx, const char *zone);
/* ... and names that must exist; a DNS failure is a deferral answered at
 * the end of the stage when nothing refuses (policy_deferred) */
enum verdict check_unknown_helo_hostname(struct check_ctx *ctx, const char *table);
enum verdict check_unknown_sender_domain(struct check_ctx *ctx, const char *table);
enum verdict check_unknown_recipient_domain(struct check_ctx *ctx, const char *table);
/* permit_dnswl_client, permit_rhswl_client: the allow lists */
enum verdict check_dnswl_client(struct check_ctx *ctx, const char *zone);
enum verdict check_rhswl_client(struct check_ctx *ctx, const char *zone);
/* check_{client,helo,sender,recipient}_{mx,ns,a}_access, and
 * check_reverse_client_hostname_{mx,ns,a}_access (subj SUBJ_REV_CLIENT) */
enum verdict check_server_access(struct check_ctx *ctx, enum subject subj, int type,
                                 const char *table);

/* The DNS answers of one evaluation (policy_dns.c): forget those of the
 * last one; ask the lookups of the checks from lists[0]->items[first] to
 * the end of the lists together, in one round trip (the checks then find
 * them); whether a restriction is one of those checks. */
void policy_dns_forget(void);
void policy_dns_prefetch(struct check_ctx *ctx, struct restriction_list *const *lists,
                         size_t list_count, size_t first);
int policy_dns_needs_lookups(const struct restriction *r);
/* permit_mx_backup: the recipient's domain names this machine as a
 * backup MX host (policy_mxbackup.c) */
enum verdict check_permit_mx_backup(struct check_ctx *ctx, const char *table);
/* policy.c: 1 when the recipient's destination is ours or relayed for
 * (permit_auth_destination), 0 if not, -1 on a table failure */
int policy_authorized_destination(const char *recipient);
/* policy.c: where a recipient goes (a bare local part in $myorigin); 0,
 * or -1 on a table failure */
int policy_resolve_recipient(const char *recipient, struct destination *d);
/* policy_dns.c: the lookup service's answer for a record type at name
 * (dns.h's DNS_T_*), kept for the evaluation: MAP_FOUND with the records
 * one a line (MX "PREF HOST"), MAP_NOTFOUND with "nxdomain" or "nodata",
 * MAP_RETRY */
int policy_dns_ask(enum dns_type type, const char *name, struct strbuf *value);
/* policy.c: does name[address] match the address list of a parameter
 * (mynetworks syntax; permit_mx_backup_networks)?  1, 0, -1 when the
 * list cannot be built. */
int policy_list_match(struct session *s, const char *param_name, const char *name, const char *address);

/* policy.c: defer_if_permit and defer_if_reject, kept for the request.
 * The first deferral of each kind counts: a defer_if_permit one is the
 * answer when nothing refuses (policy_deferred), a defer_if_reject one
 * replaces a later 5xx refusal. */
void policy_defer_reset(void);
enum verdict policy_defer_if_permit(struct check_ctx *ctx, enum subject subj, int code,
                                    const char *dsn, const char *text);
enum verdict policy_defer_if_reject(struct check_ctx *ctx, enum subject subj, int code,
                                    const char *dsn, const char *text);
/* The same, with <what> given (the client's address or name, as Postfix's
 * DNS allow lists say it). */
enum verdict policy_defer_if_reject_what(struct check_ctx *ctx, enum subject subj, int code,
                                         const char *dsn, const char *what, const char *text);
/* The deferral kept for this request: its code with reply_text set, or 0. */
int policy_deferred(struct strbuf *reply_text);
/* A check could not look something up: as the *_tempfail_action
 * parameter says, "defer" now or "defer_if_permit" (the default). */
enum verdict policy_tempfail(struct check_ctx *ctx, const char *param, enum subject subj,
                             int code, const char *dsn, const char *text);
/* The same with the whole reply written already. */
enum verdict policy_tempfail_reply(struct check_ctx *ctx, const char *param, const char *reply);
/* Log "NOQUEUE: what: STAGE from client: text; from=<> to=<> proto= helo=<>". */
void policy_log_event(struct check_ctx *ctx, const char *what, const char *text);

/* Set the reply "CODE X.Y.Z <what>: Subject rejected: text". */
enum verdict reject_with(struct check_ctx *ctx, enum subject subj, int code,
                         const char *dsn, const char *text);
/* A table failed: 451 4.3.0, never a hard refusal. */
enum verdict temp_failure(struct check_ctx *ctx, enum subject subj);
/* The configuration is broken: 451 4.3.5. */
enum verdict config_error(struct check_ctx *ctx);
/* A table list opened once per process (NULL when it cannot be opened). */
struct maplist *policy_table(struct policy *p, const char *spec);
/* A check named in an access table's result. */
enum verdict run_named_check(struct check_ctx *ctx, const char *name);

/* policy_access.c */
/* An access(5) action from a table or a policy service (`source` names it
 * in warnings), its replies about `subj`. */
enum verdict access_action(struct check_ctx *ctx, enum subject subj, const char *action,
                           const char *source);
enum verdict access_lookup(struct check_ctx *ctx, enum subject subj, const char *table);
enum verdict check_client_access(struct check_ctx *ctx, const char *table);
enum verdict check_helo_access(struct check_ctx *ctx, const char *table);
enum verdict check_sender_access(struct check_ctx *ctx, const char *table);
enum verdict check_recipient_access(struct check_ctx *ctx, const char *table);
/* check_reverse_client_hostname_access, check_sasl_access,
 * check_ccert_access (its argument "type:table" or "type:table, {
 * search_order = ... }") */
enum verdict check_reverse_client_access(struct check_ctx *ctx, const char *table);
enum verdict check_sasl_access(struct check_ctx *ctx, const char *table);
enum verdict check_ccert_access(struct check_ctx *ctx, const char *table);
/* An access table gave OK where Postfix allows none (the DNS-based and
 * reverse-name checks): its three warnings and 451 4.3.5. */
enum verdict policy_forbid_ok(struct check_ctx *ctx, const char *restriction, const char *target);

/* policy_service.c: check_policy_service */
enum verdict check_policy_service(struct check_ctx *ctx, const char *server);

/* policy_verify.c: reject_unverified_recipient, reject_unverified_sender
 * (the verify service, postern-verify(8)) */
enum verdict check_unverified_recipient(struct check_ctx *ctx, const char *table);
enum verdict check_unverified_sender(struct check_ctx *ctx, const char *table);

/* policy_unlisted.c: a sender in one of our domains must exist; 0 or the
 * reply code with reply_text set. */
int unlisted_sender(struct session *s, const char *sender, struct strbuf *reply_text);

#endif
