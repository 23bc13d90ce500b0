/* queuestage.h - starting postern-queue, the last stage of injection
 * (interface 2 of DESIGN.md, doc/injection.md), from the stage before it
 * (postern-rewrite, or smtpd when it runs rewrite in-process).
 *
 * The queue stage gets the message on its fd 0, the envelope on its fd 1
 * and the status channel on its fd 3, and ends with a qmail-queue exit
 * code.  How it is started is this module's business: today it forks and
 * execs daemon_directory/postern-queue; the caller sees only a handle and,
 * at the end, a wait status as waitpid(2) gives it. */
#ifndef POSTERN_QUEUESTAGE_H
#define POSTERN_QUEUESTAGE_H

#include <sys/types.h>

struct queue_stage {
    pid_t pid;              /* the postern-queue process, or -1 */
};

/* Start the queue stage on these descriptors (status_fd -1: none; the
 * stage's fd 3 is then /dev/null).  The caller keeps its descriptors and
 * closes them when it likes.  0, or -1 with errno set. */
int queue_stage_start(struct queue_stage *stage, int message_fd, int envelope_fd,
                      int status_fd);

/* Wait for the stage to end; returns its wait status (WIFEXITED etc.);
 * a stage that could not be started or waited for reads as exit 81. */
int queue_stage_wait(struct queue_stage *stage);

#endif
