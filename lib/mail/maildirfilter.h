/* maildirfilter.h - the per-user header filter of Postfix's VDA patch
 * (virtual_maildir_filter = yes), for postern-virtual's Maildir deliveries.
 *
 * Each Maildir may hold a file "maildirfilter": a regexp table in
 * Postfix's regexp_table(5) syntax, written by the user (or a webmail),
 * that sees the message's header once, as one string:
 *   - the lines written before the message (Return-Path:, X-Original-To:,
 *     Delivered-To:), then the message's header up to the empty line;
 *   - folded lines unfolded: a continuation line is joined to the line
 *     before without a newline, its leading TAB made a space;
 *   - lines joined with "\n" (the last one, too), at most
 *     MAILDIR_FILTER_HEADER_MAX bytes (then the rest is not seen);
 *   - folded to lower case.
 * The first rule that matches says what happens ("ACTION text"; the
 * action in any case):
 *   REJECT [text]    the delivery fails for good (5.0.0 "User filter -
 *                    REJECT"), the sender gets a bounce;
 *   DISCARD [text]   nothing is written; the recipient is done (2.0.0);
 *   MOVE folder      (only with virtual_maildir_extended = yes) into the
 *                    Maildir++ folder ".folder/" (blanks, '/' and ".."
 *                    removed from the name, one leading '.' added), which
 *                    is made with its "maildirfolder" file when missing;
 *   WARN text, LOG text   a warning in the log; delivered as usual;
 *   INFO text        an informational log line; delivered as usual;
 *   anything else    delivered as usual.
 * With virtual_maildir_filter_maps, the recipient's value in that table
 * (an SQL row, say) is the filter: it starts "# M" and a number (a
 * version stamp, such as the time it was saved); a rule starting "/^"
 * starts a line (the character before it, the comma that joins SQL rows,
 * becomes a newline), carriage returns are dropped.  When that stamp is
 * not the one at the start of the Maildir's maildirfilter file, the file
 * is written again from the value.  A recipient without a value (or with
 * one that lacks the stamp) has no filter then.
 */
#ifndef POSTERN_MAILDIRFILTER_H
#define POSTERN_MAILDIRFILTER_H

#include <sys/types.h>

#include "strbuf.h"

#define MAILDIR_FILTER_FILE       "maildirfilter"
#define MAILDIR_FILTER_HEADER_MAX 7168      /* header bytes the rules see */
#define MAILDIR_FILTER_LINE_MAX   1023      /* bytes of one header line */
#define MAILDIR_FILTER_TABLE_MAX  65536     /* bytes of a table's filter */

/* What the runner gives for one delivery. */
struct maildir_filter {
    int from_table;             /* virtual_maildir_filter_maps is set */
    const char *table_value;    /* with it: the recipient's value (NULL: none) */
    int allow_move;             /* virtual_maildir_extended: MOVE works */
    const char *file_dir;       /* where maildirfilter lives (ending in '/'):
                                 * the mailbox above a virtual_maildir_suffix
                                 * Maildir, as the VDA patch; NULL: the Maildir */
};

enum maildir_filter_action {
    MAILDIR_FILTER_DELIVER = 0,
    MAILDIR_FILTER_REJECT,
    MAILDIR_FILTER_DISCARD,
    MAILDIR_FILTER_MOVE,
};

struct maildir_filter_verdict {
    enum maildir_filter_action action;
    struct strbuf text;         /* REJECT's or DISCARD's text; MOVE's
                                   folder as a directory name (".Spam") */
};

/* Apply the filter of the Maildir `dir` (ending in '/') to the header
 * (above) of the message: `prefix` (the lines written before it) and
 * `length` bytes at `offset` of `fd`.  Called as the Maildir's owner.
 * 0 with the verdict (MAILDIR_FILTER_DELIVER without a filter), or -1 with
 * the reason in err (the filter cannot be read: try again later). */
int maildir_filter_apply(const char *dir, const struct maildir_filter *filter,
                         const struct strbuf *prefix, int fd, off_t offset, off_t length,
                         struct maildir_filter_verdict *verdict, struct strbuf *err);

/* The header string the rules see, from `text` (the prefix and the start
 * of the message); for the fuzz target and the tests. */
void maildir_filter_header(const char *text, size_t len, struct strbuf *out);

/* A table's value as the filter file's text: 1 with the stamp in *stamp,
 * 0 when the value has no "# M" stamp. */
int maildir_filter_table_text(const char *value, struct strbuf *text, long long *stamp);

#endif
