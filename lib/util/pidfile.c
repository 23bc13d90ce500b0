/* pidfile.c - locked pid files (pidfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pidfile.h"

int pidfile_lock(const char *path, int attempts, char *holder, size_t holder_size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    for (int tries = 0; tries < attempts; tries++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK)
            break;
        if (tries + 1 < attempts)
            usleep(100000);
    }
    int saved = errno;
    if (holder_size > 0) {
        ssize_t n = pread(fd, holder, holder_size - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
    }
    close(fd);
    errno = saved;
    return -1;
}

int pidfile_publish(int fd)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        return -1;
    return 0;
}
