/* mastercf.h - reading master.cf: Postfix's service table, which postern
 * keeps for what systemd units do not say (DESIGN.md, Configuration): the
 * inet services `postern start` listens on for a self-contained instance,
 * and (later) pipe transports and per-transport limits.
 *
 * Syntax (Postfix master(5)): one service per line,
 *     service type private unpriv chroot wakeup maxproc command [args...]
 * "#" comment lines and empty lines are skipped; a line starting with white
 * space continues the previous one; "-" in a column means its default.
 * Arguments are split on white space, "{ ... }" grouping one argument with
 * spaces (Postfix 3.0), as in `-o { name = value with spaces }`.
 */
#ifndef POSTERN_MASTERCF_H
#define POSTERN_MASTERCF_H

#include <stddef.h>

struct strbuf;

struct master_service {
    char *service;      /* "smtp", "127.0.0.1:2525", "submission", ... */
    char *type;         /* inet, unix, unix-dgram, fifo, pass */
    char *maxproc;      /* as written; "-" = default_process_limit */
    char *command;      /* "smtpd", "pipe", ... */
    char **args;        /* the arguments after the command, NULL-ended */
    size_t arg_count;
    int line;           /* where the entry starts, for messages */
};

struct master_table {
    struct master_service *service;
    size_t count;
};

/* Read a master.cf; 0, or -1 with "FILE, line N: ..." in err.  A missing
 * file is an empty table when allow_missing is set. */
int master_read(const char *path, int allow_missing, struct master_table *table,
                struct strbuf *err);
/* The same for text in memory (fuzzing, tests); `name` names it. */
int master_parse(const char *name, const char *text, size_t len, struct master_table *table,
                 struct strbuf *err);
/* maxproc as a number: default_value for "-", 0 for "0" (Postfix: no
 * limit); -1 when it is no number. */
long master_maxproc(const struct master_service *service, long default_value);
/* The settings of a service's "-o name=value" (and "-oname=value")
 * arguments, in order, as "name=value" (white space around "=" as
 * written), appended to out. */
struct strlist;
void master_service_overrides(const struct master_service *service, struct strlist *out);
/* Free one entry (its strings), or all of a table. */
void master_service_free(struct master_service *service);
void master_free(struct master_table *table);

#endif
