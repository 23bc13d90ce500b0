/* services.h - the services behind unix sockets of `postern
 * start|stop|status` for a self-contained instance: the lookup service
 * (postern-lookup), the queue service (postern-queue -S) and the runner
 * services (postern-spawn TRANSPORT); services.c. */
#ifndef POSTERN_SERVICES_H
#define POSTERN_SERVICES_H

#include <stddef.h>

/* The services, by index in starting order (the supervisor's table,
 * supervise.c): how many, the name of one; start it unless it runs (one
 * line; 0, or 1 with the reason); stop it (0, or 1 when it did not stop in
 * time; not running is no error); 1 while it runs or when its program is
 * not there. */
size_t services_count(void);
const char *service_name(size_t i);
int service_start_nth(size_t i);
int service_stop_nth(size_t i);
int service_running_nth(size_t i);
/* Print one line each; 1 when one is not running. */
int services_status(void);

#endif
