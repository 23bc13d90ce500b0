/* policy_impl.h - what the files of the restriction engine share
 * (policy.c: lists, stages and simple checks; policy_access.c: access(5)
 * tables; policy_unlisted.c: unknown senders and recipients). */
#ifndef POSTERN_SMTPD_POLICY_IMPL_H
#define POSTERN_SMTPD_POLICY_IMPL_H

#include "smtpd.h"

struct addrmatch;
struct maplist;

enum verdict { V_DUNNO, V_OK, V_REPLY };

/* What a check looks at: decides the "<what>: Xxx rejected:" text. */
enum subject { SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER, SUBJ_RECIPIENT };

struct check_ctx {
    struct session *s;
    const char *sender;
    const char *recipient;      /* NULL before RCPT */
    enum subject subject;       /* of the list being evaluated */
    struct strbuf *reply;
    int depth;                  /* access table results naming checks */
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
    struct restriction_list lists[5];   /* client, helo, sender, relay, recipient */
    struct addrmatch *mynetworks;
    int mynetworks_loaded;
    struct {
        char *spec;
        struct maplist *maps;
    } tables[32];
    size_t table_count;
};

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
enum verdict access_lookup(struct check_ctx *ctx, enum subject subj, const char *table);
enum verdict check_client_access(struct check_ctx *ctx, const char *table);
enum verdict check_helo_access(struct check_ctx *ctx, const char *table);
enum verdict check_sender_access(struct check_ctx *ctx, const char *table);
enum verdict check_recipient_access(struct check_ctx *ctx, const char *table);

/* policy_unlisted.c: a sender in one of our domains must exist; 0 or the
 * reply code with reply_text set. */
int unlisted_sender(struct session *s, const char *sender, struct strbuf *reply_text);

#endif
