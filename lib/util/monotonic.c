/* monotonic.c - the monotonic clock in seconds (monotonic.h). */
#include <time.h>

#include "monotonic.h"

double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
