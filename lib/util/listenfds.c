/* listenfds.c - systemd's LISTEN_PID/LISTEN_FDS (listenfds.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

int listen_unix(const char *path, mode_t mode, uid_t owner, gid_t group, int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) + 4 >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    strcat(sun.sun_path, ".new");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (unlink(sun.sun_path) < 0 && errno != ENOENT)
        goto fail;
    mode_t old = umask(0777 & ~mode);
    int r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (r < 0)
        goto fail;
    if (((owner != (uid_t)-1 || group != (gid_t)-1) && chown(sun.sun_path, owner, group) < 0)
        || chmod(sun.sun_path, mode) < 0 || listen(fd, backlog) < 0
        || rename(sun.sun_path, path) < 0)
        goto fail_bound;
    return fd;
fail_bound:
    unlink(sun.sun_path);
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
