/* maildirsize.h - Maildir++ quotas: the maildirsize file that Courier,
 * Dovecot (quota = maildir), maildrop and Postfix's VDA patch share.
 *
 * The file sits in the Maildir's root:
 *     10485760S,1000C          the quota definition: bytes (S), messages (C)
 *     123456 42                a size and a count: the usage when it was made
 *     4321 1                   one line per delivery, appended in one write
 *     -4321 -1                 ... or per removal (negative)
 * The usage is the sum of the lines after the first.  The file is remade
 * (scan of new/ and cur/ of the Maildir and its .Folders, written to tmp/
 * and renamed) when it is missing, malformed, 5120 bytes or larger, when
 * its definition is not the quota the deliverer applies, or when it says
 * "over quota" and is older than 15 minutes.
 *
 * postern's deliveries update it under a lock on the Maildir directory
 * (shared: deliveries run side by side; exclusive: a recalculation), so
 * that its own concurrent deliveries never lose or double a line.  Other
 * writers (Dovecot) follow the Maildir++ rules without that lock; the file
 * can then drift until the next recalculation, as the specification says.
 */
#ifndef POSTERN_MAILDIRSIZE_H
#define POSTERN_MAILDIRSIZE_H

#include <stddef.h>
#include <time.h>

#define MAILDIRSIZE_MAX_BYTES 5120          /* at this size: recalculate */
#define MAILDIRSIZE_STALE_SECONDS (15 * 60) /* over quota and older: recalculate */

/* A quota definition: 0 in a field is "no limit". */
struct maildir_limits {
    long long bytes;
    long long messages;
};

/* A usage: what the files in the Maildir add up to. */
struct maildir_usage {
    long long bytes;
    long long messages;
};

/* Parse the text of a maildirsize file.  0 with the definition and the
 * sum of its lines, or -1 when it is malformed (a line that is not two
 * integers, a sum beyond 64 bits, a last line without its newline): the
 * caller recalculates. */
int maildirsize_parse(const char *text, size_t len, struct maildir_limits *limits,
                      struct maildir_usage *usage);

/* Parse a quota definition ("10000S,100C"; either part may be missing;
 * unknown letters are ignored).  0, or -1 when malformed. */
int maildir_limits_parse(const char *text, size_t len, struct maildir_limits *limits);

/* How a Maildir is counted and its file kept. */
struct maildir_count_rules {
    int inbox_only;             /* new/ and cur/ of the Maildir itself, no .Folders */
    int count_trash;            /* count the trash folder as well */
    const char *trash_name;     /* ".Trash" */
};

/* Add up new/ and cur/ of the Maildir `dir` (ending in '/') and of its
 * Maildir++ folders (.NAME/) as the rules say: each file's size from its
 * ",S=" name part, else from stat.  0, or -1 (errno) when `dir` cannot be
 * read (a missing Maildir counts as empty). */
int maildir_count_usage(const char *dir, const struct maildir_count_rules *rules,
                  struct maildir_usage *usage);

/* What maildirsize_get() found. */
enum maildirsize_source {
    MAILDIRSIZE_READ,           /* the file, as it was */
    MAILDIRSIZE_REMADE,         /* recalculated just now */
};

/* The usage of the Maildir `dir` from its maildirsize file, remade (under
 * the exclusive lock on `lock_fd`, the Maildir opened O_DIRECTORY) when it
 * is missing, malformed, too large, or defines other limits than
 * `limits`.  `file_limits` gets the definition the file holds (the file's
 * own count limit is kept when its byte limit agrees with `limits`).
 * 0, or -1 (errno) when the file can neither be read nor remade. */
int maildirsize_get(const char *dir, int lock_fd, const struct maildir_limits *limits,
                    const struct maildir_count_rules *rules, struct maildir_usage *usage,
                    struct maildir_limits *file_limits, enum maildirsize_source *source,
                    time_t *mtime);

/* Recalculate the file now (exclusive lock on `lock_fd`); the new usage. */
int maildirsize_remake(const char *dir, int lock_fd, const struct maildir_limits *limits,
                       const struct maildir_count_rules *rules, struct maildir_usage *usage);

/* Append one "SIZE COUNT" line in one write, if the file exists (it is
 * never created here: only a recalculation makes it).  0 or -1 (errno). */
int maildirsize_append(const char *dir, long long bytes, long long messages);

/* "10000S" or "10000S,100C" ("0S" when neither is set). */
void maildir_limits_format(char *buf, size_t size, const struct maildir_limits *limits);

/* Whether `usage` plus one message of `bytes` passes `limits`.  Free of
 * overflow for every value up to 2^63-1. */
int maildir_over_quota(const struct maildir_limits *limits, const struct maildir_usage *usage,
                       long long bytes);

/* The host name used in Maildir file names ('/' and ':' escaped). */
const char *maildir_hostname(void);

#endif
