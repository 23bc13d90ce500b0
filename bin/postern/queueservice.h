/* queueservice.h - the queue service (`postern-queue -S`) of `postern
 * start|stop|status` for a self-contained instance (queueservice.c). */
#ifndef POSTERN_QUEUESERVICE_H
#define POSTERN_QUEUESERVICE_H

/* Start it unless it runs; prints one line; 0, or 1 (with the reason). */
int queue_service_start(void);
/* Stop it (SIGTERM; injections in progress finish); 0, or 1 when it did
 * not stop in time.  Not running is not an error. */
int queue_service_stop(void);
/* 1 while it runs, or when there is no postern-queue to run. */
int queue_service_running(void);
/* Print one line; 1 when it is not running. */
int queue_service_status(void);

#endif
