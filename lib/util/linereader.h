/* linereader.h - buffered reading of LF-ended lines from a descriptor, in
 * pieces of bounded size, for programs that stream a message (sendmail,
 * before it hands the message on) and must never hold a whole line of
 * unbounded length. */
#ifndef POSTERN_LINEREADER_H
#define POSTERN_LINEREADER_H

#include <stddef.h>
#include <sys/types.h>

struct strbuf;

#define LINE_READER_BUFSIZE 65536

struct line_reader {
    int fd;
    size_t start, end;
    int eof;
    char buf[LINE_READER_BUFSIZE];
};

void line_reader_init(struct line_reader *reader, int fd);
/* Read the next piece of a line into `line` (replacing its contents,
 * without the LF): at most `max` bytes.  Returns 1 when the piece ends with
 * the line's LF, 2 when it does not (the line is longer than max and goes
 * on, or input ended without a final LF), 0 at end of input, -1 on a read
 * error (errno). */
int line_read(struct line_reader *reader, struct strbuf *line, size_t max);
/* Hand out what is buffered but not yet read (for streaming the rest of the
 * input with large reads); *n is its length.  The buffer is then empty. */
const char *line_reader_take(struct line_reader *reader, size_t *n);

#endif
