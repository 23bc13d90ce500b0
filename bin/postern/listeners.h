/* listeners.h - the SMTP listeners of `postern start|stop|status` for a
 * self-contained instance: one postern-accept per `inet` service of the
 * instance's master.cf whose command is smtpd (listeners.c). */
#ifndef POSTERN_LISTENERS_H
#define POSTERN_LISTENERS_H

/* Start what is not running yet, with the programs in program_dir.
 * Prints one line per service; returns 0, or 1 when one failed to start
 * (with the reason). */
int listeners_start(const char *program_dir);
/* Stop them (SIGTERM; sessions in progress finish).  Returns 0, or 1 when
 * one did not stop in time. */
int listeners_stop(void);
/* SIGHUP to each running postern-accept: main.cf's limits again, and its
 * zygote's TLS certificates and keys (postern-accept(8), SIGNALS).  One
 * line per service; returns the number not running. */
int listeners_reload(void);
/* 1 when every service listens (or there is nothing to listen with). */
int listeners_running(void);
/* Print one line per service: address, running or not, pid.  Returns the
 * number of services not running (0 when smtpd is not installed). */
int listeners_status(void);

#endif
