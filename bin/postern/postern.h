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
int cmd_queue(int argc, char **argv);   /* postqueue, postsuper, postcat */

/* instance.c: start argv as a daemon (own session, stderr to the log). */
pid_t spawn_daemon(char *const argv[]);
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
