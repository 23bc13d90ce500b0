/* listenfds.c - systemd's LISTEN_PID/LISTEN_FDS (listenfds.h). */
#include <stdlib.h>
#include <unistd.h>

#include "listenfds.h"

#define LISTEN_FDS_MAX 64       /* more than any unit of ours passes */

int listen_fds_take(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    char *end;
    long n = strtol(fds, &end, 10);
    int bad = end == fds || *end || n < 0 || n > LISTEN_FDS_MAX;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return bad ? -1 : (int)n;
}
