/* runnerservice.h - the runner services (postern-spawn, one per transport
 * of privileged_transports) of `postern start|stop|status` for a
 * self-contained instance (runnerservice.c). */
#ifndef POSTERN_RUNNERSERVICE_H
#define POSTERN_RUNNERSERVICE_H

/* Start those not running; a line each; 0, or 1 (with the reason). */
int runner_services_start(void);
/* Stop them; 0, or 1 when one did not stop in time. */
int runner_services_stop(void);
/* A line each; 1 when one is not running. */
int runner_services_status(void);

#endif
