/* mailbox.h - writing one message into a Maildir or an mbox file, as
 * Postfix's virtual(8) and local(8) do: the part of final delivery that
 * postern-virtual and postern-local share.
 *
 * The caller decides where the mail goes and as whom (it switches to the
 * mailbox owner's ids around these calls); this module writes it crash-safely
 * and says what happened as an RFC 3463 code and text.
 *
 * What is written before the message (Postfix's order):
 *     From SENDER  DATE            (mbox only; MAILER-DAEMON for <>)
 *     Return-Path: <SENDER>
 *     X-Original-To: ORIG_RCPT     (when given)
 *     Delivered-To: RECIPIENT      (folded to lower case)
 * mbox also quotes body lines that start with "From " as ">From ", ends the
 * message with a newline if it lacks one, and appends an empty line.
 */
#ifndef POSTERN_MAILBOX_H
#define POSTERN_MAILBOX_H

#include <sys/types.h>

#include "strbuf.h"

/* The message and its envelope, as a runner has them. */
struct mail_source {
    int fd;                     /* message content: length bytes at offset */
    off_t offset;
    off_t length;
    const char *sender;         /* "" is the null sender */
    const char *orig_rcpt;      /* X-Original-To; NULL or "" to leave it out */
    const char *delivered_to;   /* Delivered-To; NULL or "" to leave it out
                                   (local(8)'s prepend_delivered_header) */
};

/* What happened, when a delivery did not succeed. */
struct mailbox_status {
    char dsn[16];               /* "4.2.0", "5.2.2", ... */
    struct strbuf text;         /* "maildir delivery failed: ..." */
    long long offset;           /* mbox_deliver: where the message starts (biff) */
};

/* mbox locking styles (virtual_mailbox_lock, mailbox_delivery_lock). */
#define MBOX_LOCK_FCNTL   0x1
#define MBOX_LOCK_FLOCK   0x2
#define MBOX_LOCK_DOTLOCK 0x4

struct mbox_options {
    unsigned lock_styles;       /* MBOX_LOCK_* */
    int lock_attempts;          /* deliver_lock_attempts */
    int lock_delay;             /* deliver_lock_delay, seconds */
    long stale_lock_time;       /* stale_lock_time, seconds */
    int check_owner;            /* strict_mailbox_ownership */
    uid_t owner;                /* the uid the file must belong to */
    /* A root caller delivering into a spool directory only it may write
     * in (Postfix's mail_spool_directory): the lock file is made with the
     * caller's ids, the mailbox opened and written with the owner's.
     * NULL: everything with the caller's ids. */
    void (*write_as)(const struct mbox_options *options, int owner_ids);
    gid_t owner_gid;            /* with write_as: the owner's group */
};

/* Parse a lock style list ("fcntl, dotlock"); 0, or -1 with err set. */
int mbox_lock_styles(const char *value, unsigned *styles, struct strbuf *err);

/* Deliver into the Maildir `dir` (ending in '/'): tmp/NAME, fsync, rename
 * into new/NAME, fsync new/.  Creates missing tmp/, new/ and cur/ (and the
 * directories above them) with mode 0700.  `size_limit` (0: none) bounds
 * the size of the file.  Returns 0 when the message is durably in new/,
 * else -1 with `status` set. */
int maildir_deliver(const char *dir, const struct mail_source *src,
                    off_t size_limit, struct mailbox_status *status);

/* Maildir++ quota for one delivery (Postfix's VDA patch; maildirsize.h). */
struct maildir_quota {
    long long limit;            /* bytes the Maildir may hold; 0: no limit */
    int keep_maildirsize;       /* read and update DIR/maildirsize */
    int size_in_name;           /* ",S=SIZE" in the new/ file name (Maildir++) */
    int inbox_only;             /* the limit counts new/ and cur/ only, not .Folders */
    int count_trash;            /* the trash folder counts */
    const char *trash_name;     /* ".Trash" */
    int bounce;                 /* over the limit: 5.2.2 (else 4.2.2, try again) */
    const char *message;        /* the text of that result */
};

struct maildir_filter;

/* maildir_deliver() with a quota (NULL: none) and the user's header
 * filter (NULL: none; maildirfilter.h).  A message that does not
 * fit is refused before it is written: "maildir delivery failed: MESSAGE"
 * with 5.2.2 (quota->bounce, or a message larger than the whole limit)
 * or 4.2.2.  The maildirsize file gets one line per delivery.  A message
 * that fits then meets the filter: REJECT fails with 5.0.0, MOVE delivers
 * into the folder it names, and DISCARD writes nothing and returns 1 with
 * status "2.0.0" and its text. */
int maildir_deliver_quota(const char *dir, const struct mail_source *src,
                          off_t size_limit, const struct maildir_quota *quota,
                          const struct maildir_filter *filter,
                          struct mailbox_status *status);

/* Append to the mbox file `path` under the locks in `options`, fsync, and
 * on any failure truncate the file back to its size before.  `size_limit`
 * (0: none) bounds the size of the whole file.  Returns 0 or -1 with
 * `status` set. */
int mbox_deliver(const char *path, const struct mail_source *src,
                 off_t size_limit, const struct mbox_options *options,
                 struct mailbox_status *status);

/* ---- shared by the two (lib/mail/mailcopy.c) ---- */

/* Append a local part of n bytes, in quotes (with '"' and '\\' escaped)
 * when RFC 5322 wants them (8-bit transparent, as Postfix's
 * quote_822_local): specials, controls, white space, misplaced dots. */
void mail_quote_local(struct strbuf *out, const char *local, size_t n);

/* The lines written before the message (see above); `mbox_from` adds the
 * "From " line with the current time. */
void mail_prefix(struct strbuf *out, const struct mail_source *src, int mbox_from);

enum mail_copy_result {
    MAIL_COPY_OK = 0,
    MAIL_COPY_READ_ERROR,       /* errno; 0 when the message ended early */
    MAIL_COPY_WRITE_ERROR,      /* errno (EFBIG past the limit) */
};
/* Write `prefix` and the message to `out` (positioned where it goes);
 * `mbox` quotes "From " lines and adds the final empty line.  At most
 * `room` bytes are written (negative: no limit); more is EFBIG. */
enum mail_copy_result mail_copy(int out, const struct mail_source *src,
                                const struct strbuf *prefix, int mbox,
                                off_t room);
/* Postfix's status for a failed write: 5.2.2 for EFBIG and EDQUOT (the
 * mailbox is full), 4.3.1 for ENOSPC... else `fallback`. */
const char *mail_errno_dsn(int err, const char *fallback);
/* Fill `status` from a mail_copy() result and errno. */
void mail_copy_status(struct mailbox_status *status, enum mail_copy_result result,
                      int err);
/* Set `status` to dsn and printf text. */
void mailbox_status_set(struct mailbox_status *status, const char *dsn,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
