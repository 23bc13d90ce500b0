/* postern.h - the subcommands of the `postern` administration command. */
#ifndef POSTERN_CMD_H
#define POSTERN_CMD_H

#include <sys/types.h>

#include "strbuf.h"

/* Each takes the argv after "postern" (argv[0] is the subcommand name) and
 * returns the exit status. */
int cmd_conf(int argc, char **argv);    /* postconf */
int cmd_map(int argc, char **argv);     /* postmap */
int cmd_alias(int argc, char **argv);   /* postalias */
int cmd_check(int argc, char **argv);   /* postfix check */
/* selfsigned.c: a key and a self-signed certificate for hostname (and
 * localhost, 127.0.0.1, ::1), as PEM text; 0, or -1 (logged). */
int selfsigned_make(const char *hostname, struct strbuf *key_pem, struct strbuf *cert_pem);
/* instance.c: a self-contained instance and its daemon */
int cmd_init(int argc, char **argv);    /* write DIR/main.cf and the queue */
int cmd_start(int argc, char **argv);   /* postfix start */
int cmd_stop(int argc, char **argv);    /* postfix stop */
int cmd_status(int argc, char **argv);  /* postfix status */
int cmd_reload(int argc, char **argv);  /* postfix reload: the SMTP listeners */
int cmd_queue(int argc, char **argv);   /* postqueue, postsuper, postcat */
int cmd_dns(int argc, char **argv);     /* lookups through lib/net/dns */
int cmd_tlsrpt(int argc, char **argv);  /* TLS-RPT reports (RFC 8460) */

/* instance.c: postern-qmgr of the instance (a line of supervise.c's
 * table): start it unless it runs (0, or 1 with the reason), stop it (1
 * when it was not running or did not stop), 1 while it runs. */
int qmgr_start(void);
int qmgr_stop(void);
int qmgr_running(void);
/* users.c: who a daemon runs as when `postern start` runs as root. */
enum daemon_role {
    ROLE_QMGR, ROLE_LOOKUP, ROLE_QUEUE_SERVICE, ROLE_SMTPD, ROLE_AUTH,
    ROLE_AS_STARTED,            /* stays root: a runner service (postern-spawn) */
    ROLE_COUNT
};
struct run_as {
    char user[64];
    uid_t uid;
    gid_t gid;
    gid_t groups[2];            /* supplementary */
    size_t group_count;
};
/* As root: find and check mail_owner, setgid_group, smtpd_user and
 * queue_service_user; 0, or 1 after saying what is wrong and how to fix
 * it (root then refuses to start anything).  Anyone else: 0. */
int instance_users_check(void);
/* As root, after the check: the queue's owners, the pid files and the log
 * made fit for those users.  0 or 1. */
int instance_users_prepare(void);
/* The user of a role, or NULL when the daemons run as the invoking user. */
const struct run_as *instance_user(enum daemon_role role);

/* instance.c: start argv as a daemon (own session, stderr to the log), as
 * the user `as` says (NULL: as we are). */
pid_t spawn_daemon(char *const argv[], const struct run_as *as);
/* instance.c: fork a daemon: in the child (0 returned) its own session, no
 * blocked signals, stdin and stdout on /dev/null, stderr into maillog_file. */
pid_t fork_daemon(void);
/* instance.c: SIGTERM to pid, then wait up to timeout_ms; 1 when it ended. */
int process_stop(pid_t pid, long timeout_ms);
/* instance.c: 1 when pid is a live process (not a zombie). */
int process_running(pid_t pid);
/* instance.c: 1 when pid is live and its argv[0] (or script) names program. */
int process_is(pid_t pid, const char *program);
/* instance.c: the pid a pid file holds, 0 when none. */
pid_t pid_file_read(const char *path);
/* instance.c: sleep ms milliseconds (waiting for a daemon). */
void sleep_ms(long ms);

/* conf_edit.c: `postern conf -e` (args "name = value") and -X (args are
 * names): rewrite main.cf keeping comments and order.  Exit status. */
int conf_edit_main_cf(int remove, int argc, char **argv);

/* postern map and postern alias (aliases: the aliases(5) source syntax). */
int table_command(int argc, char **argv, int aliases);

#endif
