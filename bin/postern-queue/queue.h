/* queue.h - the parts of postern-queue: the injection (injection_server.c, one
 * message from fd 0/1 into the queue, status on fd 3), the queue service
 * (service.c, `postern-queue -S`: a long-running server whose
 * persistent workers run one injection after another) and main.c (options, configuration,
 * the set-group-id rules of doc/privileges.md). */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <sys/types.h>

/* exit codes: qmail-queue(8)'s, INJECT_EXIT_* of lib/mail/outcome.h */
#include "outcome.h"

/* The caller is not trusted with the `uid` attribute (a set-group-id
 * injector run by a user, or a client of the service other than root and
 * the service's own user): the attribute becomes uid, whatever the
 * envelope says. */
void inject_record_caller(uid_t uid);

/* Store one message: the configuration is loaded, the message is on fd 0,
 * the envelope on fd 1, the status channel on fd 3 when open.  Returns the
 * qmail-queue exit code, having freed everything of the message (a worker
 * of the service stores the next one); the caller's uid rule of
 * inject_record_caller() applies to this message only. */
int inject_message(void);
/* The same, exiting with the code. */
_Noreturn void inject_run(void);

/* -t: a client of this uid (smtpd's user) is trusted as the service's own
 * user: its uid is not recorded over what the envelope says. */
void service_trust(uid_t uid);

/* Run the queue service (-S): the listening socket from systemd or bound
 * at queue_directory/public/queue with this mode; then, unless uid is
 * (uid_t)-1, uid:gid for good (-u, started by root); never returns. */
_Noreturn void service_run(int listen_fd, mode_t socket_mode, uid_t uid, gid_t gid);

/* Before the configuration (and with it the log file) is opened: take the
 * socket systemd passed (returned, or -1) and keep fds 0 to 3 occupied,
 * so that a child can put its descriptors there. */
int service_prepare_fds(void);

#endif
