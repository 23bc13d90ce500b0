/* zygote.h - "an acceptor that forks an initialised program without exec"
 * (DESIGN.md, interface 1): `postern-accept -z` starts the per-connection
 * program once, as a zygote; the program reads its configuration and opens
 * its tables, then calls zygote_wait().  From then on, for every connection
 * postern-accept passes the socket and the UCSPI variables to the zygote,
 * which forks; zygote_wait() returns in the child with the connection on fd
 * 0 and 1 and the variables set, as if the program had been started for
 * that connection.  exec(2) of a dynamically linked program costs more than
 * the whole SMTP greeting, so this is how a fork-per-connection server
 * reaches the connection rate of Postfix's reused processes.
 *
 * The protocol runs over a SOCK_SEQPACKET socketpair whose descriptor is in
 * POSTERN_ZYGOTE_FD: postern-accept sends one message per connection (the
 * variables as "NAME=value" strings, each ended by NUL, with the connection
 * as SCM_RIGHTS); the zygote answers, in order, ZYGOTE_STARTED with the
 * child's pid for each, and ZYGOTE_ENDED with the wait status when a child
 * ends.  When postern-accept goes away the zygote exits; its children finish
 * their sessions.
 *
 * Children forked ahead: the zygote keeps `pool` children (struct
 * zygote_hooks) forked before any connection, each waiting for exactly
 * one connection on its own socketpair, whose other end the zygote hands
 * to postern-accept (ZYGOTE_READY, the descriptor attached) and closes.
 * postern-accept then passes a connection straight to a waiting child,
 * in the message the zygote would have got: one process wakes for the
 * client (the child), not three (postern-accept, the zygote, the child),
 * and postern-accept counts the child at once.  The child serves that
 * one connection and exits (nothing crosses connections).  It tells the
 * zygote it has been taken by closing its end of a pipe, and the zygote
 * forks the next, off the client's path; while postern-accept still has
 * a waiting child, the new one is announced with the zygote's next
 * report (the end of a session), so that postern-accept wakes once for
 * both.  postern-accept keeps a copy of a connection it handed out until
 * the child's end (ZYGOTE_ENDED): a child that ended without writing to
 * it (killed while it waited) has it served again.  When postern-accept
 * has no waiting child (a burst), it passes the connection to the
 * zygote, which forks a child for it (ZYGOTE_STARTED) as before.
 *
 * A child forked ahead serves with what the zygote had when it forked,
 * so whatever changes that replaces the waiting children: the zygote
 * sends ZYGOTE_RETIRE with a new generation, and postern-accept closes
 * the sockets of the older generations' children, which end.  A reload
 * is asked in the same stream as the connections ("reload", a message
 * without a descriptor), so that every connection passed after it is
 * served with what the reload read; until the zygote answers it
 * (ZYGOTE_RETIRE, pid 1) postern-accept hands no child out.  The child
 * itself checks, once its connection has come, whether a table file or
 * the hosts file changed (the hooks below), so a change made before a
 * connection is always seen by it.  The zygote reports the end of every
 * child postern-accept has heard of (ZYGOTE_ENDED), waiting or not;
 * postern-accept forgets the pids it does not count.
 *
 * The TLS file keeper (filekeeper.h) outlives a zygote: the first zygote
 * sends its socket (ZYGOTE_KEEPER) and postern-accept gives it to every
 * zygote it starts after a crash (FILEKEEPER_FD_VARIABLE), which can no
 * longer fork a keeper of its own once postern-accept has given root up.
 */
#ifndef POSTERN_ZYGOTE_H
#define POSTERN_ZYGOTE_H

#include <stddef.h>
#include <stdint.h>

#define ZYGOTE_FD_VARIABLE "POSTERN_ZYGOTE_FD"
/* "uid:gid" (numbers): postern-accept -z -u started the zygote with its
 * own privileges, so that it could read what only they may (smtpd's TLS
 * key); zygote_wait() drops to these ids before the first connection. */
#define ZYGOTE_USER_VARIABLE "POSTERN_ZYGOTE_USER"
#define ZYGOTE_MESSAGE_MAX 2048

enum zygote_report_type {
    ZYGOTE_STARTED = 1,     /* pid: the child serving the oldest connection sent */
    ZYGOTE_ENDED = 2,       /* pid, status: waitpid's status */
    ZYGOTE_FAILED = 3,      /* the oldest connection sent could not be forked */
    ZYGOTE_READY = 4,       /* pid, status = generation, a descriptor: a child waiting */
    ZYGOTE_RETIRE = 5,      /* status = generation: children of older ones go; pid 1:
                               the answer to a reload asked */
    ZYGOTE_KEEPER = 6,      /* a descriptor: the TLS file keeper's socket */
};
/* postern-accept's messages to the zygote without a descriptor */
#define ZYGOTE_RELOAD_MESSAGE "reload"

struct zygote_report {
    int32_t type;
    int32_t pid;
    int32_t status;
};

/* ---- the program's side ---- */
/* Work the zygote does between connections, in its own flow (never in a
 * signal handler, so it may allocate): `reload` on SIGHUP (smtpd reads its
 * certificates again), `tick` every tick_seconds (smtpd rotates its TLS
 * ticket keys), `refresh` before a fork, at most once a second (smtpd
 * reads its hosts file again when it changed, so that no child has to),
 * `changed` before every connection (smtpd opens again the tables whose
 * files changed).  refresh and changed return 1 when they read something
 * again: the children forked ahead are then replaced.  A child forked
 * ahead runs both itself once its connection has come (in the child:
 * what they read is its own).  Any may be NULL.
 * `pool`: how many children to keep forked ahead (0: fork per
 * connection).  Set before zygote_wait(). */
struct zygote_hooks {
    void (*reload)(void);
    void (*tick)(void);
    unsigned tick_seconds;
    int (*refresh)(void);
    int (*changed)(void);
    unsigned pool;
};
void zygote_set_hooks(const struct zygote_hooks *hooks);

/* Return at once unless started as a zygote (POSTERN_ZYGOTE_FD set); else
 * serve as the zygote and return only in a child, with its connection. */
void zygote_wait(void);

/* ---- postern-accept's side ---- */
/* A connection is passed (to the zygote, or to a child forked ahead) as
 * its variables (NUL-ended strings, back to back) with the connection
 * attached, in one message (fdpass.h). */
/* Read one report, the descriptor attached to it in *fd (-1 for none);
 * 1, 0 when the zygote has gone, -1 on error (errno; EAGAIN when nothing
 * is waiting on a non-blocking descriptor). */
int zygote_read_report(int zygote_fd, struct zygote_report *report, int *fd);

#endif
