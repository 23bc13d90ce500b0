/* monotonic.h - the monotonic clock in seconds (or ms), for deadlines and waits
 * that must not jump with the wall clock. */
#ifndef POSTERN_MONOTONIC_H
#define POSTERN_MONOTONIC_H

/* CLOCK_MONOTONIC as seconds with a fraction. */
double monotonic_now(void);
/* CLOCK_MONOTONIC in whole milliseconds (the services' idle times). */
long long monotonic_ms(void);

#endif
