/* services.h - the services behind unix sockets of `postern
 * start|stop|status` for a self-contained instance: the lookup service
 * (postern-lookup), the queue service (postern-queue -S) and the runner
 * services (postern-spawn TRANSPORT); services.c. */
#ifndef POSTERN_SERVICES_H
#define POSTERN_SERVICES_H

/* Start those not running, in order, the runner services last; prints one
 * line each; 0, or 1 (with the reason) when one did not start. */
int services_start(void);
/* Stop them but the runner services in reverse order (SIGTERM; requests
 * in progress finish); 0, or 1 when one did not stop in time.  Not
 * running is not an error. */
int services_stop(void);
/* Stop the runner services of privileged_transports (after qmgr: their
 * runners end when qmgr closes their channels); 0, or 1. */
int runner_services_stop(void);
/* Print one line each; 1 when one is not running. */
int services_status(void);

#endif
