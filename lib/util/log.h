/* log.h - the one logging and error-exit path of every postern program.
 *
 * Lines look like Postfix's, so that pflogsumm and fail2ban read them:
 *     Nov 22 03:50:13 host postern/smtpd[4242]: 3F2A1C0D: client=...
 * and with syslog_name = postfix (or postfix-*) each program logs under its
 * Postfix counterpart's name ("postfix/cleanup" for the queue), as
 * doc/logging.md tabulates.
 * Destinations: syslog (facility `syslog_facility`, default mail) by default;
 * the file `maillog_file` instead when that parameter is set (self-contained
 * instances); and stderr as well when the program was given -v or is a
 * command run by a person (LOG_STDERR).  Each line is written with one
 * write(2) on an O_APPEND descriptor, so concurrent programs never interleave.
 *
 * msg_fatal*() log and exit: with the program's permanent-failure code (1 by
 * default) or, for msg_fatal_temp*(), its temporary-failure code (75,
 * EX_TEMPFAIL, by default); programs in the injection chain set qmail's codes
 * with log_exit_codes().
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stddef.h>

struct strbuf;

#define LOG_STDERR   1      /* also write every line to stderr (commands) */

/* Name the program ("smtpd" logs as "postern/smtpd") and start logging with
 * the defaults (syslog, facility mail; stderr when flags has LOG_STDERR). */
void log_open(const char *program, unsigned flags);
/* Apply the logging parameters once the configuration is read: syslog_name,
 * syslog_facility (e.g. "mail", "local0"), maillog_file ("" = syslog).
 * Returns 0, or -1 with a warning logged when the file cannot be opened
 * (logging then stays on syslog). */
int log_configure(const char *syslog_name, const char *facility,
                  const char *maillog_file);
/* -v: copy every line to stderr and enable msg_debug(). */
void log_set_verbose(int level);
int log_verbose(void);
/* Exit codes of msg_fatal (permanent) and msg_fatal_temp (temporary). */
void log_exit_codes(int temp_code, int perm_code);
/* The program name as given to log_open ("smtpd"). */
const char *log_program(void);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line about the work of another program: logged under `program` (a
 * postern program, e.g. "smtpd"; NULL: this one) or, when syslog_name is
 * postfix or postfix-*, under `postfix_program` (the Postfix daemon that
 * does that work: "smtpd", "pickup", "virtual"; NULL: this one), with `pid`
 * when > 0 - so that Postfix's log tools count it.  (With such a
 * syslog_name every program also logs under its Postfix counterpart's name:
 * queue and rewrite as cleanup, accept as master.) */
void msg_info_as(const char *program, const char *postfix_program, long pid,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 1 when lines take Postfix's program names (syslog_name = postfix...). */
int log_postfix_names(void);
void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "warning: ..."; the _errno forms append ": strerror(errno)". */
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "error: ..." - a problem that makes the command fail at the end. */
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal_temp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal_temp_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Append s to out with control characters and non-ASCII bytes replaced by
 * '?' and at most `max` bytes kept (0 = no limit): the form in which text
 * from the network or a user may appear in a log line.  Returns out's text. */
const char *log_printable(struct strbuf *out, const char *s, size_t max);

#endif
