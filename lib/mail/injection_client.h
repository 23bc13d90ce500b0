/* inject.h - handing a message to the injection chain (interface 2 of
 * DESIGN.md, doc/injection.md) from a program of our own: start the next
 * stage with the message on its fd 0, the envelope on its fd 1 and the
 * status channel on its fd 3, then read its verdict. */
#ifndef POSTERN_INJECT_H
#define POSTERN_INJECT_H

#include <sys/types.h>

struct strbuf;

struct injection {
    pid_t pid;
    int message_fd;         /* write the message here (LF line ends) */
    int status_fd;          /* the stage's fd 3 */
    int cut_short;          /* the stage stopped reading before the end */
    int write_errno;        /* a write error other than EPIPE, or 0 */
    char *program;
};

/* Start program (argv[0] only) with the envelope records (ended by the
 * empty record); the configuration directory is passed on in
 * POSTERN_CONFIG_DIR when it is not the default.  0, or -1 with err set. */
int inject_start(struct injection *inj, const char *program,
                 const struct strbuf *envelope, struct strbuf *err);
/* Record that writing the message failed with errnum (EPIPE: the stage
 * stopped reading early). */
void inject_write_failed(struct injection *inj, int errnum);
/* Close the message, read the status channel, wait for the stage.
 * Returns 'K' with the queue id in result (empty when the stage gave
 * none), or 'Z' (temporary) / 'D' (permanent) with "X.Y.Z text". */
int inject_finish(struct injection *inj, struct strbuf *result);

#endif
