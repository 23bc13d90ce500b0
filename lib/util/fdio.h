/* fdio.h - whole reads and writes on descriptors, and pread, retrying
 * EINTR and short transfers; and NUL-terminated records (interfaces 2 and
 * 4 of DESIGN.md, described in doc/injection.md and doc/delivery.md). */
#ifndef POSTERN_FDIO_H
#define POSTERN_FDIO_H

#include <stddef.h>
#include <sys/types.h>

struct strbuf;

/* Write all n bytes; 0, or -1 with errno set. */
int write_all(int fd, const void *bytes, size_t n);
/* Read until n bytes or end of file; returns the count read, -1 on error. */
ssize_t read_full(int fd, void *bytes, size_t n);
/* pread that tries again after EINTR: the count read (at most n), 0 at end
 * of file, -1 on error (errno). */
ssize_t pread_retry(int fd, void *bytes, size_t n, off_t offset);
/* fsync the file or directory at path (openat's dir_fd and path, never
 * following a last symbolic link; a FIFO is opened without blocking):
 * after a chown or chmod, so that the change survives a power cut.  0 or
 * -1 (errno). */
int fsync_path(int dir_fd, const char *path);

/* A buffered reader of NUL-terminated records. */
struct record_reader {
    int fd;
    size_t start, end;
    int eof;
    char buf[4096];
};

void record_reader_init(struct record_reader *reader, int fd);
/* Read the next record (without its NUL) into rec, replacing its contents.
 * Returns 1 for a record (an empty record, rec->len == 0, ends an envelope
 * or request), 0 at end of input before any byte of a record, -1 on a read
 * error (errno), on a record longer than max bytes (errno EMSGSIZE) and on
 * end of input inside a record (errno EPROTO). */
int record_read(struct record_reader *reader, struct strbuf *rec, size_t max);

/* Append one record (type byte, value, NUL) to out. */
void record_put(struct strbuf *out, int type, const char *value);
void record_putf(struct strbuf *out, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append the empty record that ends an envelope or request. */
void record_end(struct strbuf *out);

#endif
