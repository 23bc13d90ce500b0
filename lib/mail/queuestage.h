/* queuestage.h - starting postern-queue, the last stage of injection
 * (interface 2 of DESIGN.md, doc/injection.md), from the stage before it
 * (postern-rewrite, or smtpd when it runs rewrite in-process).
 *
 * The queue stage gets the message on its fd 0, the envelope on its fd 1
 * and the status channel on its fd 3, and ends with a qmail-queue exit
 * code.  How it is started is this module's business: it passes the
 * descriptors to the queue service (`postern-queue -S`, on the unix socket
 * queue_directory/public/queue), whose workers store them; one connection
 * serves the process's requests one after another (queue_stage_connect
 * makes it ahead of the first: smtpd at MAIL); when
 * no service listens there (no socket, nobody listening, no permission) it
 * forks and execs the (set-group-id) daemon_directory/postern-queue
 * instead, silently; so it does, with a warning once per process, on other
 * errors and when the service does not accept within 2 seconds (at its
 * process limit, or hung): nothing has been passed to it then.  The
 * caller sees only a handle and, at the end, a wait status as waitpid(2)
 * gives it, either way; a service that goes away before it reports a
 * status reads as exit 81 (temporary). */
#ifndef POSTERN_QUEUESTAGE_H
#define POSTERN_QUEUESTAGE_H

#include <sys/types.h>

struct queue_stage {
    pid_t pid;              /* the postern-queue process, or -1 */
    int service;            /* 1: through the service; conn is its socket */
    int conn;
};

/* Start the queue stage on these descriptors (status_fd -1: none; the
 * stage's fd 3 is then /dev/null, or closed under the service).  The caller
 * keeps its descriptors and closes them when it likes.  0, or -1 with
 * errno set. */
int queue_stage_start(struct queue_stage *stage, int message_fd, int envelope_fd,
                      int status_fd);

/* The same with the program at path (absolute; run with its base name as
 * argv[0]) as the stage, forked and exec'd: postern-rewrite for sendmail,
 * or a filter. */
int queue_stage_start_program(struct queue_stage *stage, const char *path, int message_fd,
                              int envelope_fd, int status_fd);

/* Wait for the stage to end; returns its wait status (WIFEXITED etc.);
 * a stage that could not be started or waited for reads as exit 81. */
int queue_stage_wait(struct queue_stage *stage);

/* Do not wait: the stage has said K (the message is stored), and its
 * exit says nothing more.  Its status is collected before the next stage
 * starts. */
void queue_stage_detach(struct queue_stage *stage);

/* Connect to the queue service now, ahead of the first message (smtpd
 * at MAIL, while the client types), so that starting the stage is only
 * passing descriptors.  0, or -1 when no service is there (starting the
 * stage then tries again, and falls back to the program).  Idempotent. */
int queue_stage_connect(void);

#endif
