/* linereader.c - buffered reading of bounded line pieces (linereader.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "linereader.h"
#include "strbuf.h"

void line_reader_init(struct line_reader *reader, int fd)
{
    reader->fd = fd;
    reader->start = reader->end = 0;
    reader->eof = 0;
}

/* Refill the empty buffer; 1 when bytes arrived, 0 at end, -1 on error. */
static int line_reader_fill(struct line_reader *reader)
{
    if (reader->eof)
        return 0;
    for (;;) {
        ssize_t r = read(reader->fd, reader->buf, sizeof reader->buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        reader->start = 0;
        reader->end = (size_t)r;
        if (r == 0) {
            reader->eof = 1;
            return 0;
        }
        return 1;
    }
}

int line_read(struct line_reader *reader, struct strbuf *line, size_t max)
{
    strbuf_reset(line);
    int got = 0;
    for (;;) {
        if (reader->start == reader->end) {
            int r = line_reader_fill(reader);
            if (r < 0)
                return -1;
            if (r == 0)
                return got ? 2 : 0;
        }
        char *from = reader->buf + reader->start;
        size_t avail = reader->end - reader->start;
        size_t room = max - line->len;
        char *lf = memchr(from, '\n', avail < room ? avail : room);
        size_t take = lf ? (size_t)(lf - from) : (avail < room ? avail : room);
        strbuf_append(line, from, take);
        reader->start += take;
        got = 1;
        if (lf) {
            reader->start++;
            return 1;
        }
        if (line->len >= max)
            return 2;
    }
}

const char *line_reader_take(struct line_reader *reader, size_t *n)
{
    const char *p = reader->buf + reader->start;
    *n = reader->end - reader->start;
    reader->start = reader->end = 0;
    return p;
}
