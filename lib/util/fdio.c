/* fdio.c - whole reads and writes, NUL-terminated records, fsync by path (fdio.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "strbuf.h"

int write_all(int fd, const void *bytes, size_t n)
{
    const char *p = bytes;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t read_full(int fd, void *bytes, size_t n)
{
    char *p = bytes;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t pread_retry(int fd, void *bytes, size_t n, off_t offset)
{
    ssize_t got;
    do
        got = pread(fd, bytes, n, offset);
    while (got < 0 && errno == EINTR);
    return got;
}

int fsync_path(int dir_fd, const char *path)
{
    int fd = openat(dir_fd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st);
    /* a FIFO's or a socket's inode is the directory's business */
    if (rc == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

void record_reader_init(struct record_reader *reader, int fd)
{
    reader->fd = fd;
    reader->start = reader->end = 0;
    reader->eof = 0;
}

int record_read(struct record_reader *reader, struct strbuf *rec, size_t max)
{
    strbuf_reset(rec);
    int started = 0;
    for (;;) {
        if (reader->start < reader->end) {
            char *from = reader->buf + reader->start;
            size_t avail = reader->end - reader->start;
            char *nul = memchr(from, '\0', avail);
            size_t take = nul ? (size_t)(nul - from) : avail;
            if (rec->len + take > max) {
                errno = EMSGSIZE;
                return -1;
            }
            strbuf_append(rec, from, take);
            started = 1;
            reader->start += take + (nul ? 1 : 0);
            if (nul)
                return 1;
            continue;
        }
        if (reader->eof) {
            if (!started)
                return 0;
            errno = EPROTO;     /* input ended inside a record */
            return -1;
        }
        ssize_t r = read(reader->fd, reader->buf, sizeof reader->buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        reader->start = 0;
        reader->end = (size_t)r;
        if (r == 0)
            reader->eof = 1;
    }
}

void record_put(struct strbuf *out, int type, const char *value)
{
    strbuf_putc(out, type);
    strbuf_puts(out, value);
    strbuf_putc(out, '\0');
}

void record_putf(struct strbuf *out, int type, const char *fmt, ...)
{
    va_list ap;
    strbuf_putc(out, type);
    va_start(ap, fmt);
    strbuf_vprintf(out, fmt, ap);
    va_end(ap);
    strbuf_putc(out, '\0');
}

void record_end(struct strbuf *out)
{
    strbuf_putc(out, '\0');
}
