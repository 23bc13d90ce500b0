/* smtpd.h - postern-smtpd's session state and the interfaces between its
 * files: io.c (buffered client I/O), command.c (the command loop and the
 * simple commands), mail.c (MAIL and RCPT with their ESMTP parameters),
 * data.c (DATA and BDAT), submit.c (smtpd's side of the injection
 * chain: rewrite in-process, the queue stage, the Received header), policy*.c (the restriction engine), destination.c (where an
 * address goes, for relay control), peer.c (who the client is).
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stddef.h>
#include <sys/types.h>

#include "outcome.h"
#include "strbuf.h"

#define SMTPD_INBUF_SIZE    16384

/* The SMTP commands counted in the "disconnect from" log line, in
 * Postfix's order. */
enum smtpd_command {
    CMD_HELO, CMD_EHLO, CMD_XCLIENT, CMD_XFORWARD, CMD_STARTTLS, CMD_AUTH,
    CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT, CMD_RSET, CMD_NOOP, CMD_VRFY,
    CMD_ETRN, CMD_QUIT, CMD_UNKNOWN, CMD_COUNT
};

struct client {
    char name[256];             /* "unknown" without reverse DNS */
    char address[64];
    char port[16];
    char local_address[64];
    char local_port[16];
    char namaddr[340];          /* name[address] for log lines */
    /* smtpd_peername_lookup (peer.c): the first PTR name ("unknown" when
     * none) and how the lookups went: 'F' found, 'N' not found, 'R' try
     * again, 0 not looked up (the reverse_client_hostname and
     * client_hostname checks of Postfix judge these) */
    char reverse_name[256];
    char reverse_status;
    char forward_status;
    /* the connection's own peer address, which XCLIENT leaves alone
     * (permit_inet_interfaces judges it, as Postfix's does) */
    char peer_address[64];
};

/* XFORWARD: the origin of the next message, as a proxy saw it. */
struct forwarded {
    int set;
    char name[256];
    char address[64];
    char port[16];
    char helo[256];
    char protocol[16];
};

struct transaction {
    int active;                 /* MAIL was accepted */
    struct strbuf sender;
    struct strbuf attributes;   /* A records (message attributes) */
    struct strbuf recipients;   /* T and P records */
    size_t recipient_count;
    struct strbuf last_recipient;   /* for the Received header's "for" */
    struct strbuf actions;      /* A records for the envelope that access tables
                                   asked for (policy_access.c): discard, hold,
                                   filter, redirect, bcc */
    struct strbuf prepend;      /* headers of PREPEND actions, "Name: value\n" each */
    long long declared_size;    /* SIZE=, 0 when absent */
    int smtputf8;
    int bdat_started;           /* a BDAT chunk was received */
    int bdat_failed;            /* an error was answered; drop the chunks */
    int queue_prepared;         /* the queue service was reached for it */
};

struct injection_client;
struct rewrite_config;

struct session {
    int in_fd, out_fd;
    unsigned char inbuf[SMTPD_INBUF_SIZE];
    size_t in_start, in_end;
    struct strbuf out;          /* replies not yet written */
    long long timeout;          /* smtpd_timeout, seconds */
    int per_request_deadline;   /* smtpd_per_request_deadline: timeout per request, not per read */
    long long min_data_rate;    /* smtpd_min_data_rate: bytes/s that extend a DATA deadline */
    long long request_deadline; /* monotonic ms by which the request must be in (0: none) */
    long long session_deadline; /* monotonic ms: smtpd_session_deadline (0: none) */

    struct client client;
    int local_submission;       /* -S: sendmail -bs */
    const char *myhostname;
    struct strbuf helo;         /* HELO/EHLO argument, "" before */
    const char *protocol;       /* "SMTP", "ESMTP" */
    int xforward_allowed, xclient_allowed;

    struct transaction tx;
    struct forwarded forwarded;     /* reset with each transaction */
    struct injection_client *injection;    /* BDAT: the chain being fed */

    int error_count;
    int junk_count;
    unsigned command_count[CMD_COUNT];
    unsigned command_failed[CMD_COUNT];
    const char *where;          /* the last command, for "lost connection after" */
    int in_data;                /* reading message text: log the byte count */
    int improper_pipelining;    /* RFC 2920 broken (logged; reject_unauth_pipelining) */
    int hangup;                 /* a 421 or 521 was replied: end after the command */
    long long data_bytes;       /* bytes of message text received so far */

    /* configuration read once */
    long long message_size_limit;
    long long line_length_limit;
    long long recipient_limit;
    long long error_sleep_time, soft_error_limit, hard_error_limit, junk_limit;
    int helo_required;
    int sasl_enabled;           /* smtpd_sasl_auth_enable (auth.c) */
    int sasl_exception;         /* in smtpd_sasl_exceptions_networks: AUTH not offered */
    char sasl_method[32];       /* after AUTH: "PLAIN", ... */
    char sasl_username[256];    /* after AUTH; "" before */
    int tls_level;              /* smtpd_tls_security_level: TLS_LEVEL_* */
    int tls_wrappermode;        /* smtpd_tls_wrappermode: TLS from the first byte */
    struct ssl_st *tls;         /* the TLS session (tls.c), NULL in the clear */
    int bare_newline;           /* 0 no, 1 normalize, 2 reject */
    int bare_newline_reject_code;
    struct policy *policy;
    struct strbuf access_denied;    /* smtpd_delay_reject = no: the refusal at connect */

    /* smtpd_milters (milter.c) */
    struct strbuf milter_reply;     /* a milter_header_checks REJECT at end of message */
    const char *milter_sender;      /* {mail_addr} while MAIL is told */
    const char *milter_recipient;   /* {rcpt_addr} while RCPT is told */
    int milter_discard;             /* a milter said DISCARD for this message */
    size_t milter_own_bytes;        /* smtpd's header fields ahead of the held text */
};

/* ---- io.c ---- */
/* Read the stress-dependent timeouts (after config_apply_stress) and start
 * the session's deadline. */
void io_limits(struct session *s);
/* A new request (command line, DATA or BDAT text) starts: with
 * smtpd_per_request_deadline, smtpd_timeout counts from here. */
void io_request_begin(struct session *s);
void io_init(struct session *s, int in_fd, int out_fd);
/* Queue a reply line (CRLF added); sent at the next flush. */
void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write queued replies now. Exits on a write error (lost connection). */
void io_flush(struct session *s);
/* Close the client's connection (fd 0 and 1) at the end of a session. */
void io_close(struct session *s);
/* Wait for fd to be ready for events (POLLIN, POLLOUT) within the read
 * limits (smtpd_timeout, the request and session deadlines): 1 ready, 0
 * the time is up.  For tls.c. */
int io_wait(struct session *s, int fd, short events);
/* Read a command line into line (without CR LF), at most `max` bytes kept
 * (the rest of a longer line is discarded).  Returns 1 for a line, 0 at end
 * of input.  Flushes replies before it waits; exits on a timeout.  *bare_lf
 * is set when the line ended in LF without CR. */
int io_read_line(struct session *s, struct strbuf *line, size_t max, int *bare_lf);
/* The next data bytes: a chunk of at most `max` bytes ending at the first
 * LF (included) or earlier.  Returns the chunk length, 0 at end of input. */
size_t io_read_chunk(struct session *s, struct strbuf *chunk, size_t max);
/* Read exactly n bytes (BDAT), handing them to fn piece by piece.  Returns
 * 1, or 0 at end of input. */
int io_read_exact(struct session *s, long long n,
                  void (*fn)(struct session *s, const unsigned char *p, size_t len, void *ctx),
                  void *ctx);
/* Leave: log and exit after a lost connection or a timeout. */
_Noreturn void session_lost(struct session *s);
_Noreturn void session_timeout(struct session *s);
/* The client did not read a reply in time: log and leave, replying nothing. */
_Noreturn void session_write_timeout(struct session *s);
/* Log "disconnect from ..." with the command counts and exit. */
_Noreturn void session_end(struct session *s, int status);

/* ---- command.c ---- */
/* The greeting: 220, or with smtpd_delay_reject = no the client
 * restrictions' refusal (then every command but QUIT gets 503). */
void session_greet(struct session *s);
/* smtpd_discard_ehlo_keywords, split once per value (in a zygote, once
 * for every child). */
const struct strlist *discarded_ehlo_keywords(void);
void command_loop(struct session *s);
/* Count an error reply: sleep, and end the session at the hard limit. */
void session_error(struct session *s);
/* Forget the transaction (RSET, after DATA, HELO). */
void transaction_reset(struct session *s);

/* ---- mail.c ---- */
void cmd_mail(struct session *s, char *args);
void cmd_rcpt(struct session *s, char *args);
/* their arguments are parsed by lib/mail/smtpargs.c */

/* ---- auth.c ---- */
/* Read the SASL settings for this client (after peer_identify). */
void auth_prepare(struct session *s);
/* The mechanisms to offer in EHLO ("PLAIN LOGIN"), or NULL when AUTH is
 * not offered (disabled, TLS required first, an excepted client, the
 * auth service unavailable). */
const char *auth_ehlo_mechanisms(struct session *s);
void cmd_auth(struct session *s, char *args);
/* Forget the login and the server's connection: STARTTLS starts the
 * session over (RFC 3207), and the mechanisms change with TLS. */
void auth_forget(struct session *s);

/* ---- clientrate.c ---- */
/* The events counted per client across the service's sessions. */
enum client_event { CLIENT_AUTH, CLIENT_MAIL, CLIENT_RCPT, CLIENT_NEWTLS, CLIENT_EVENTS };
/* In the zygote, before it forks: the table of per-client counts that
 * every session of the service shares (smtpd_client_*_rate_limit). */
void client_rate_init(void);
/* The event's limit (smtpd_client_..._rate_limit) for this client, per
 * anvil_rate_time_unit: 0 when it is within it (or when nothing is
 * counted: no table, an exception), else the rate.  `add` counts the
 * event, and an excess is logged with Postfix's warning; without, the
 * count so far is compared (STARTTLS: a new session is counted once it is
 * made). */
unsigned client_rate_exceeded(struct session *s, enum client_event ev, int add);
/* "address:port" of the service, for log lines. */
const char *client_rate_service(struct session *s);

/* ---- xclient.c ---- */
void cmd_xclient(struct session *s, char *args);
void cmd_xforward(struct session *s, char *args);

/* ---- data.c ---- */
void cmd_data(struct session *s, char *args);
void cmd_bdat(struct session *s, char *args);

/* ---- submit.c ---- */
/* Read rewrite's settings, once per process: a zygote before it forks,
 * else the first submit_start (an idle session never needs them). */
void submit_init(void);
/* receive_override_options (config.h's RECEIVE_* flags), read once. */
unsigned submit_receive_override(void);
/* In a zygote, before a connection: rewrite's tables (virtual_alias_maps,
 * canonical maps, header and body checks, bcc maps) opened again when a
 * file changed; 1 when one was. */
int submit_refresh(void);
/* rewrite's settings as submit_init() read them (milter_header_checks),
 * or NULL before. */
const struct rewrite_config *submit_rewrite_config(void);
/* Start the chain through the injection client (rewrite in-process, then
 * the queue stage of lib/mail/queuestage.h) and write the Received header
 * into it.  NULL when it cannot start (reply given). */
struct injection_client *submit_start(struct session *s);
/* Reach the queue service ahead of DATA (the injection client keeps the
 * connection for the session's messages); cheap when done already. */
void submit_prepare(void);
/* Message bytes (LF line ends) go in with injection_write(); once it
 * fails, the rest is dropped and submit_finish() says why. */
/* Message size so far. */
long long submit_size(const struct injection_client *inj);
/* Finish: close the message, write the envelope, read the verdict, reply
 * to the client and log; 1 when the message was queued.  `size_exceeded`
 * refuses with 552 instead. */
int submit_finish(struct session *s, struct injection_client *inj, int size_exceeded);
/* Give up a message (client lost, BDAT error): the chain stores nothing. */
void submit_abort(struct injection_client *inj);

/* ---- tls.c ---- */
enum { TLS_LEVEL_NONE, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT };
/* smtpd_tls_security_level, or the legacy smtpd_use_tls/smtpd_enforce_tls. */
int tls_level_from_config(void);
/* Read the TLS settings and, when TLS may be used, build the server
 * context (certificates and keys): once, before a zygote forks.  A
 * failure is logged and leaves TLS unavailable (STARTTLS: 454). */
void tls_server_init(struct session *s);
/* In a zygote, before it forks: a handshake with itself in memory, so
 * that OpenSSL's first-use work is done once for all children. */
void tls_zygote_prepare(void);
/* In a zygote, on SIGHUP: read the certificates and keys again (the next
 * connection gets them); on failure keep serving the old ones. */
void tls_reload(void);

/* ---- tlstickets.c ---- */
struct ssl_ctx_st;
/* Session tickets for a server context with the keys the zygote shares
 * with its children (or none: smtpd_tls_session_cache_timeout <= 0). */
void tls_tickets_attach(struct ssl_ctx_st *ctx);
/* In the zygote, every tls_tickets_interval() seconds: a new key. */
void tls_tickets_rotate(void);
/* The rotation interval in seconds, -1 without tickets, 0 before attach. */
long long tls_tickets_interval(void);
/* STARTTLS: the handshake, then the session starts over. */
void cmd_starttls(struct session *s, char *args);
/* smtpd_tls_wrappermode: the handshake before the greeting (or the end). */
void tls_wrapper_start(struct session *s);
/* 1 when EHLO offers STARTTLS now. */
int tls_offered(const struct session *s);
/* Is this session under TLS?  1 or 0; *fingerprint (when not NULL) is set
 * to the client certificate's fingerprint (smtpd_tls_fingerprint_digest,
 * "AB:CD:...") or NULL when the client sent none (smtpd_tls_ask_ccert). */
int tls_session_active(const struct session *s, const char **fingerprint);
/* The client certificate: 0 none, 1 presented, 2 presented and verified
 * (smtpd_tls_CAfile/CApath); its fingerprint and its public key's
 * (smtpd_tls_fingerprint_digest), NULL without one. */
int tls_client_cert(const struct session *s, const char **cert_fp, const char **pkey_fp);
/* The client certificate's CommonName ("" without one). */
const char *tls_client_cn(const struct session *s);
/* Received header lines about the session (smtpd_tls_received_header). */
void tls_received_clause(const struct session *s, struct strbuf *out);
/* io.c's reads and writes under TLS: tls_read returns bytes read, 0 at
 * the end (it ends the session itself on a timeout); tls_write 0, -1 when
 * the client has gone, -2 when it did not read in time. */
ssize_t tls_read(struct session *s, void *buf, size_t len);
int tls_write(struct session *s, const void *buf, size_t len);

/* Sendmail macros of the TLS session ({tls_version}, {cipher},
 * {cipher_bits}): 1 with out set, 0 when unknown or not under TLS. */
int tls_macro(const struct session *s, const char *name, struct strbuf *out);

/* ---- policy_access.c ---- */
/* Note a message attribute ("discard=yes", "hold=yes", ...) for the
 * transaction's envelope (tx.actions). */
void policy_note_action(struct session *s, const char *value);

/* ---- policy.c ---- */
struct policy *policy_open(struct session *s);
/* Parse every restriction list and open mynetworks now rather than on
 * first use (a zygote does it once for all its children). */
void policy_prepare(struct session *s);
/* In a zygote, before a connection: open again the tables (and lists
 * holding tables) whose files have changed; 1 when one had. */
int policy_refresh(struct session *s);
/* The restrictions at RCPT (client, helo, sender, relay, recipient, with
 * smtpd_delay_reject).  Returns 0 to accept, or the reply code with the
 * whole reply in `reply_text` ("554 5.7.1 <x>: Relay access denied"). */
int policy_check_rcpt(struct session *s, const char *recipient, struct strbuf *reply_text);
/* smtpd_delay_reject = no: the client restrictions at connect, the HELO
 * restrictions at HELO/EHLO, the sender restrictions at MAIL; 0 or the
 * reply code with the reply in reply_text. */
int policy_check_connect(struct session *s, struct strbuf *reply_text);
int policy_check_helo(struct session *s, struct strbuf *reply_text);
int policy_check_mail(struct session *s, const char *sender, struct strbuf *reply_text);
/* smtpd_data_restrictions, smtpd_end_of_data_restrictions: 0 or the reply
 * code with reply_text set (the refusal logged). */
int policy_check_data(struct session *s, struct strbuf *reply_text);
int policy_check_eod(struct session *s, struct strbuf *reply_text);
/* 1 when the client is in mynetworks, 0 if not, -1 when a table failed. */
int policy_mynetworks(struct session *s);
/* ETRN: 1 when the domain may be flushed (fast_flush_domains). */
int policy_etrn_domain(struct session *s, const char *domain);
/* Is the address a valid recipient (reject_unlisted_recipient)?  0 yes, or
 * a reply code with reply_text set. */
int policy_unlisted_recipient(struct session *s, const char *recipient, struct strbuf *reply_text);
/* Does the client match an address list (xclient/xforward hosts)? */
int policy_client_in(struct session *s, const char *param_name);

/* ---- milter.c ---- */
struct envelope;
/* Connect to smtpd_milters and tell them of the client (before the
 * greeting): NULL, or a milter's refusal (logged; a 421 also sets
 * s->hangup), which answers MAIL and later commands. */
const char *milter_connect(struct session *s);
/* In the zygote: what every session's milters need, read once
 * (milter_macro_defaults). */
void milter_prepare(void);
/* 1 when smtpd_milters are in use for this session. */
int milter_active(void);
/* The events: NULL to go on, else the SMTP reply to give (logged as
 * Postfix logs "milter-reject"); a 421 also sets s->hangup.  At HELO the
 * caller refuses only a 421 (any other refusal waits for MAIL, as in
 * Postfix, and after a 5xx EHLO offers only ENHANCEDSTATUSCODES). */
const char *milter_helo(struct session *s, const char *helo);
const char *milter_mail(struct session *s, const char *sender, const char *args);
const char *milter_rcpt(struct session *s, const char *recipient, const char *args);
const char *milter_data(struct session *s);
void milter_unknown(struct session *s, const char *command);
/* The transaction ends without a message (RSET, HELO, a refusal). */
void milter_abort(struct session *s);
/* The session ends. */
void milter_quit(struct session *s);
/* End of message: the held text (injection_held_fd) to the milters, their
 * changes applied to it and to env, the result written into the chain.
 * NULL when the message goes on (perhaps with a hold= or discard= record
 * added to env), else the SMTP reply (the chain gets nothing). */
const char *milter_message(struct session *s, struct injection_client *inj, size_t own_bytes,
                           struct envelope *env);

/* ---- destination.c ---- */
enum dest_class { DEST_LOCAL, DEST_VIRTUAL_ALIAS, DEST_VIRTUAL_MAILBOX, DEST_RELAY, DEST_DEFAULT };
struct destination {
    enum dest_class dest_class;
    int routed;                 /* the local part still routes (% ! @) */
    struct strbuf localpart;
    struct strbuf domain;       /* lower case, no trailing dot, "" for none */
};
#define DESTINATION_INIT { DEST_DEFAULT, 0, STRBUF_INIT, STRBUF_INIT }
/* Resolve an address as trivial-rewrite does for relay control: source
 * routes, quoting, % and ! routing, trailing dots.  0, or -1 when a table
 * could not answer (the caller defers 4.3.0). */
int destination_resolve(const char *address, struct destination *out);
/* In a zygote: open the resolver's lists and tables once, for every child. */
void destination_prepare(void);
/* In a zygote, before a connection: open them again when a table's file
 * changed; 1 when it did. */
int destination_refresh(void);
void destination_free(struct destination *d);
/* relocated_maps for an address (resolve_relocated): MAP_FOUND with the
 * new contact text in moved, MAP_NOTFOUND or MAP_RETRY. */
int destination_relocated(const char *address, enum dest_class dest_class, struct strbuf *moved);
/* The class of a domain alone; -1 on a table failure. */
int destination_domain_class(const char *domain, enum dest_class *out);
/* Is this numeric address one of this machine's (inet_interfaces and
 * proxy_interfaces)?  1 or 0; -1 when the lists cannot be read. */
int destination_own_address(const char *address);

/* ---- peer.c ---- */
/* Who the client is: UCSPI variables, systemd's, getpeername, or a local
 * submission. */
void peer_identify(struct session *s);
/* Read the hosts file for smtpd_peername_lookup (in a zygote: once, before
 * it forks), and read it again when it changed (the zygote, between
 * connections). */
void peer_prepare(void);
int peer_refresh(void);

/* ---- the reply text Postfix gives when a table fails ---- */
#define REPLY_TEMP_LOOKUP "451 4.3.0 Error: queue file write error"

#endif
