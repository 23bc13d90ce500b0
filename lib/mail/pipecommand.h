/* pipecommand.h - running a delivery command, as Postfix's pipe_command
 * does for local(8) and pipe(8): the one place that forks, drops
 * privileges for good, execs without a shell, feeds the message on stdin,
 * keeps the start of the command's output for the reason of a failure,
 * enforces a time limit by killing the command's process group (also
 * killed when the runner dies: a keeper process leads it), and reads
 * the exit status (an "X.Y.Z text" at the start of the output, else
 * sysexits as outcome.h says; qmail's 111 and a signal defer).
 * Used by postern-local (mailbox_command, |command aliases) and
 * postern-pipe. */
#ifndef POSTERN_PIPECOMMAND_H
#define POSTERN_PIPECOMMAND_H

#include <sys/types.h>

#include "strbuf.h"

/* Bytes of the command's output kept for the reason. */
#define PIPE_COMMAND_OUTPUT_MAX 500

struct pipe_command {
    char *const *argv;      /* argv[0] is looked up in PATH of env */
    char *const *env;       /* the whole environment */
    int input_fd;           /* becomes stdin, read from its current offset */
    int switch_ids;         /* take uid/gid (and only gid as group) for good */
    uid_t uid;
    gid_t gid;
    const char *cwd;        /* NULL, or a directory that may be missing: then "/" */
    int cwd_required;       /* cwd must be entered (pipe's directory=, local's
                               command_execution_directory): else a warning
                               in the log and EX_TEMPFAIL, as Postfix */
    long long time_limit;   /* seconds; 0: none */
};

struct pipe_command_status {
    int timed_out;          /* killed at its time limit */
    int signal;             /* died of this signal, else 0 */
    int exit_code;          /* when it exited */
    struct strbuf output;   /* its first PIPE_COMMAND_OUTPUT_MAX bytes of
                               stdout and stderr, on one printable line */
};
#define PIPE_COMMAND_STATUS_INIT {0, 0, 0, STRBUF_INIT}

/* Run the command and wait for it.  0 with status filled, or -1 with the
 * reason in err (nothing ran: fork or pipe failed). */
int pipe_command_run(const struct pipe_command *cmd, struct pipe_command_status *status,
                     struct strbuf *err);
/* What a finished command's status means: "2.0.0" and an empty text for
 * success; else the RFC 3463 code and Postfix's reason ("Command died with
 * status 1: \"NAME\". Command output: ..."), `shown` naming the command. */
void pipe_command_verdict(const struct pipe_command_status *status, const char *shown,
                          struct strbuf *dsn, struct strbuf *text);
void pipe_command_status_free(struct pipe_command_status *status);

#endif
