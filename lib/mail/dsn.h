/* dsn.h - delivery status notifications (RFC 3464): building the report.
 *
 * A report is a multipart/report; report-type=delivery-status message with
 * three parts, as Postfix's bounce(8) writes them: a text/plain part for
 * people, a message/delivery-status part for programs, and the original
 * message (message/rfc822) or its header (text/rfc822-headers).  The caller
 * describes the notice in a struct dsn_report; dsn_write() produces the
 * whole message (header and body, LF line ends, every line shorter than 998
 * bytes) on a descriptor.  Nothing here reads main.cf: the caller passes the
 * values of myhostname, mail_name, bounce_size_limit and so on.
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct strbuf;

enum dsn_kind {
    DSN_FAILURE,        /* "Undelivered Mail Returned to Sender" */
    DSN_DELAY,          /* "Delayed Mail (still being retried)" */
    DSN_SUCCESS,        /* "Successful Mail Delivery Report" */
    DSN_VERIFY,         /* "Mail Delivery Status Report" (sendmail -bv):
                         * deliverable / undeliverable, nothing delivered */
};

/* One recipient's lines in the report. */
struct dsn_recipient {
    const char *address;        /* Final-Recipient */
    const char *orcpt;          /* ORCPT as received ("rfc822;a@b"), or NULL */
    const char *action;         /* failed, delayed, delivered, relayed, expanded;
                                 * NULL: the kind's default */
    const char *status;         /* "5.1.1"; NULL: the kind's default */
    const char *text;           /* the reason, as logged; NULL: none known */
    const char *diagnostic;     /* "smtp; 550 5.1.1 ..." or NULL (derived) */
    const char *remote_mta;     /* "mx.example.net" or "dns; mx..." or NULL */
};

struct dsn_report {
    enum dsn_kind kind;
    int postmaster_copy;        /* no boilerplate, "Postmaster ..." subject */
    const char *queue_id;       /* of the original message */
    const char *myhostname;
    const char *mail_name;      /* "Postern": X-Postern-Queue-ID */
    const char *to;             /* the notice's recipient (To:) */
    const char *sender;         /* the original envelope sender ("" = <>) */
    long long arrival;          /* seconds; 0 = unknown */
    const char *envid;          /* DSN ENVID or NULL */
    int ret_headers;            /* return only the header (RET=HDRS) */
    int eight_bit;              /* the original was 8BITMIME */
    int smtputf8;               /* the original used SMTPUTF8 */
    long long size_limit;       /* bounce_size_limit; 0 = none */
    long long delay_warning;    /* seconds, for the delay text */
    long long queue_lifetime;   /* maximal_queue_lifetime, seconds */
    int content_fd;             /* the original: a seekable descriptor... */
    off_t content_offset;       /* ...the first byte of the message... */
    off_t content_length;       /* ...and its length; -1 fd: unavailable */
    const struct dsn_recipient *rcpt;
    size_t rcpt_count;
    time_t now;                 /* Date: */
    const char *boundary_salt;  /* unique text for the MIME boundary */
};

/* Write the whole report (header fields and body) to fd.  Returns 0, or -1
 * with the reason in err (a write or read error; errno is set). */
int dsn_write(const struct dsn_report *report, int fd, struct strbuf *err);

/* The default Action: for a kind ("failed", "delayed", "delivered",
 * "deliverable"). */
const char *dsn_default_action(enum dsn_kind kind);
/* An RFC 5322 date ("Sun, 22 Nov 2026 04:01:11 +0000 (UTC)") into out. */
void dsn_date(struct strbuf *out, time_t when);

#endif
