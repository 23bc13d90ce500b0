/* sigfd.c - signals read from a signalfd (sigfd.h). */
#include <signal.h>
#include <sys/signalfd.h>

#include "log.h"
#include "sigfd.h"

int sigfd_open(const int *signals, size_t count)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < count; i++)
        sigaddset(&set, signals[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        msg_fatal_errno("sigprocmask");
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        msg_fatal_errno("signalfd");
    return fd;
}
