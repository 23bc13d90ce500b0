/* smtp.h - the parts of postern-smtp (and postern-lmtp, the same program)
 * and what they share: main.c (the runner loop, settings, next hops and the
 * per-recipient results), session.c (one SMTP/LMTP dialog with one
 * server), tlspolicy.c (the TLS policy of one connection: the security
 * level, smtp_tls_policy_maps, DANE), tls.c (STARTTLS as a client). */
#ifndef POSTERN_SMTP_RUNNER_H
#define POSTERN_SMTP_RUNNER_H

#include <stddef.h>

#include "mime_downgrade.h"
#include "nexthop.h"
#include "runner.h"
#include "smtpconn.h"
#include "strbuf.h"
#include "strlist.h"

/* Postfix's TLS security levels, weakest first (its tls_level.c order) */
enum tls_level { TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_FINGERPRINT, TLS_HALF_DANE, TLS_DANE,
                 TLS_DANE_ONLY, TLS_VERIFY, TLS_SECURE };

/* The TLS policy of one connection (tlspolicy.c). */
struct tls_policy {
    enum tls_level level;               /* effective, after the table and DANE */
    int invalid;                        /* no connection: dsn and why say why */
    char dsn[8];
    struct strbuf why;
    struct strbuf protocols;            /* "protocols=", else main.cf's */
    struct strbuf ciphers;              /* grade: "ciphers=", else main.cf's */
    struct strbuf exclude;              /* "exclude=", else main.cf's */
    struct strlist match;               /* verify/secure: names and strategies;
                                           fingerprint: digests */
    struct strlist tlsa;                /* DANE: usable "U S M HEX" records */
    char nexthop_domain[256];           /* "nexthop" for certificate names */
    struct strbuf servername;           /* SNI ("servername=", else
                                           smtp_tls_servername): "" none */
    /* TLS-RPT (tlsrpt.c): what an MTA-STS policy server said of the
     * policy (Postfix 3.10's policy_type=, policy_domain=,
     * policy_string=, mx_host_pattern=, policy_failure=) */
    char policy_type[20];               /* "sts", "tlsa", ...; "" none said */
    char policy_domain[256];
    struct strbuf policy_string;        /* lines joined by '|' */
    char policy_failure[32];            /* sts-policy-fetch-error, ... */
};
struct sasl_setup;
struct reuse_setup;

/* What main.cf says, read once per process (smtp_* or lmtp_*). */
struct smtp_setup {
    int lmtp;                           /* started as postern-lmtp */
    const char *proto;                  /* "smtp" or "lmtp" (parameter prefix) */
    const char *helo_name;
    const char *myhostname;
    int connect_timeout, helo_timeout, mail_timeout, rcpt_timeout, data_init_timeout,
        data_xfer_timeout, data_done_timeout, quit_timeout, starttls_timeout;
    int skip_5xx_greeting;
    int never_send_ehlo;
    int session_limit;                  /* smtp_mx_session_limit, 0: none */
    int dnssec;                         /* smtp_dns_support_level = dnssec */
    int dane_insecure_mx;               /* smtp_tls_dane_insecure_mx_policy:
                                           TLS_MAY, TLS_ENCRYPT or TLS_DANE */
    int smtputf8_enable;
    int mime_output_conversion;         /* not disable_mime_output_conversion */
    int send_xforward;                  /* smtp_send_xforward_command */
    struct mime_downgrade_limits downgrade;
    const char *fallback_relay;         /* smtp_fallback_relay, "" for none */
    struct sockaddr_storage bind4, bind6;
    socklen_t bind4_len, bind6_len;
    struct nexthop_options nexthop;
    enum tls_level tls_level;
    int tls_loglevel;
    int broken;                         /* a setting is wrong: defer everything */
    struct reuse_setup *reuse;          /* smtp_connection_*: reuse.c */
    struct sasl_setup *sasl;            /* smtp_sasl_*: sasl.c; NULL when disabled */
    const char *discard_ehlo;           /* smtp_discard_ehlo_keywords */
    struct maplist *discard_ehlo_maps;  /* ..._keyword_address_maps, by server address */
};

/* Where a recipient of the batch stands. */
enum rcpt_state { RCPT_PENDING, RCPT_ACCEPTED, RCPT_FINAL };

/* One delivery attempt: a batch of recipients of a request to one next hop. */
struct smtp_batch {
    struct runner_request *req;
    const char *nexthop;
    size_t *index;                      /* the recipients' indexes in req */
    enum rcpt_state *state;
    struct strbuf *soft_dsn, *soft_text, *soft_relay;   /* the last "try again" */
    unsigned char *server_dsn;          /* delivered to a server that offered DSN */
    size_t count;
    size_t sessions;                    /* sessions that got past the greeting */
};

/* One connection to one server, for a batch. */
struct smtp_session {
    const struct smtp_setup *setup;
    struct smtp_batch *batch;
    const struct nexthop_target *target;
    int final;                          /* the last server to try */
    char host[400];                     /* "mx.example.com[192.0.2.1]" for texts */
    char relay[420];                    /* "mx.example.com[192.0.2.1]:25" for relay= */
    struct smtp_conn conn;
    struct smtp_reply reply;
    struct smtp_features features;
    int esmtp;
    int tls_active;
    int tls_verified;                   /* the certificate matched (verify, secure) */
    struct nexthop_target own_target;   /* target points here (a copy) */
    long long born_ms;                  /* monotonic time of its first transaction */
    unsigned uses;                      /* transactions after the first (reuse.c) */
    struct tls_policy tls;              /* this connection's (tlspolicy.c) */
    int tls_retry_plain;                /* "may" and the handshake failed:
                                           the same server again in clear */
    int plaintext_fallback;             /* this is that session: never kept */
    char tls_cache_key[65];             /* its TLS session cache key, "": none */
};

/* session.c: the server's EHLO features from s->reply, less those that
 * smtp_discard_ehlo_keyword_address_maps (by the server's address) or
 * else smtp_discard_ehlo_keywords names (logged as Postfix does).  0, or
 * -1 when the table failed (results given: try again later). */
int session_features(struct smtp_session *s);

/* main.c: a recipient's result (final now, or kept as "try again" while
 * other servers remain: final is 0 and dsn is 4.x.x). */
void batch_result(struct smtp_batch *b, size_t k, const char *relay, int final,
                  const char *dsn, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same result for every recipient still open (pending or accepted). */
void batch_result_open(struct smtp_batch *b, const char *relay, int final, const char *dsn,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* session.c: a failed read or write in Postfix's words ("conversation
 * with HOST timed out while DOING", "lost connection with HOST while
 * DOING") for every recipient still open. */
void io_failure(struct smtp_session *s, const char *relay, const char *doing);
/* session.c: deliver what is still pending of the batch through one
 * server.  Returns 1 when a session was had (greeting and EHLO done),
 * else 0. */
int session_deliver(const struct smtp_setup *setup, struct smtp_batch *batch,
                    const struct nexthop_target *target, int final);

/* session.c, for reuse.c: another request's batch over a kept session:
 * RSET, then the transaction.  1 when it ran (the session is kept again
 * or closed), 0 when the session was gone (closed; nothing said about the
 * recipients). */
int session_again(struct smtp_session *s, struct smtp_batch *batch);
/* QUIT (when the connection is sound), close and free. */
void session_close(struct smtp_session *s);

/* reuse.c: one kept session per runner process */
/* Read the smtp_connection_* settings. */
void reuse_setup(struct smtp_setup *setup);
/* Deliver the batch over the kept session when it goes to the same next
 * hop; 1 when a session was had (its server's address in *server, which
 * the rest of the batch does not try again), 0 when there was none. */
int reuse_deliver(const struct smtp_setup *setup, struct smtp_batch *batch,
                  struct sockaddr_storage *server);
/* 1 when two socket addresses are the same address and port. */
int same_server_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Keep a session whose transaction ended cleanly when the settings and
 * qmgr's backlog say so (the session is reuse.c's then: 1), else 0. */
int reuse_keep(struct smtp_session *s);
/* QUIT and close a kept session (the runner ends). */
void reuse_close(void);

/* sasl.c */
/* Read the smtp_sasl_* settings; 0, or -1 when they are wrong (logged). */
int sasl_client_setup(struct smtp_setup *setup);
/* Log in when SASL is enabled, the server offers AUTH and the password
 * table has an entry for this sender, server or next hop.  0 to go on
 * (logged in, or nothing to do), -1 when the session failed (results
 * given). */
int sasl_client_login(struct smtp_session *s);
/* 1 when the credentials depend on the sender (a kept session is then
 * only for the same sender). */
int sasl_sender_dependent(const struct smtp_setup *setup);
/* 1 when SASL is on and this session has (or may have: the table failed)
 * a password: then no TLS failure falls back to clear, as in Postfix. */
int sasl_has_credentials(const struct smtp_session *s);

/* tlspolicy.c */
/* Read the TLS settings (level, tables, DNSSEC); 0, or -1 when they are
 * wrong (logged).  Before dns_open(). */
int tls_policy_setup(struct smtp_setup *setup);
/* The policy for the connection s is about to make (s->target, the
 * batch's next hop) into s->tls; 0, or -1 when no connection may be made
 * (results given: a table error, a DANE lookup failure, dane-only without
 * usable TLSA records). */
int tls_policy_find(struct smtp_session *s);
void tls_policy_free(struct tls_policy *p);
/* Whether TLS may be wanted at all (a level above none, or a table). */
int tls_policy_may_want_tls(void);
/* The level's name as Postfix spells it. */
const char *tls_level_name(enum tls_level level);

/* requiretls.c (RFC 8689) */
/* 1 when the message asks for REQUIRETLS and this connection is held to it. */
int requiretls_wanted(const struct smtp_session *s);
/* The status for a TLS failure: dsn as it is, or for a REQUIRETLS message
 * 5.7.10 at the last server (4.7.10 while others remain). */
const char *requiretls_dsn(const struct smtp_session *s, const char *dsn);
/* After tls_policy_find: a REQUIRETLS message needs a verifying level
 * (-1, results given, when the level does not verify); "TLS-Required: No"
 * lowers a level above encrypt to may.  0 to go on. */
int requiretls_policy(struct smtp_session *s);
/* After STARTTLS: a REQUIRETLS message needs a verified session with a
 * server that offers REQUIRETLS; 0 to go on, -1 when not (results given). */
int requiretls_server(struct smtp_session *s);

/* tlsrpt.c: one TLS attempt's result ("success", or an RFC 8460 result
 * type) appended to the day's file under data_directory/tlsrpt, with
 * smtp_tls_report_enable. */
void tlsrpt_record(const struct smtp_session *s, const char *result);

/* tls.c */
/* Build the client context; 0, or -1 when the settings are wrong
 * (logged). */
int tls_client_setup(struct smtp_setup *setup);
/* Run STARTTLS when the policy (s->tls) wants it and the server offers
 * it.  0 to go on (in TLS or in clear), -1 when the session failed
 * (results given; s->tls_retry_plain set when "may" should try the same
 * server again without TLS, as Postfix does). */
int tls_client_starttls(struct smtp_session *s);

#endif
