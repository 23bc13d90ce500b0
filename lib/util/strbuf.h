/* strbuf.h - the one counted, growable string buffer of postern.
 *
 * Every piece of text that grows (lines read from the network or a file,
 * values built from parts, replies) lives in a struct strbuf.  The buffer is
 * always NUL-terminated, may also hold NUL bytes inside (len counts them),
 * and never fails: running out of memory ends the program as a temporary
 * failure (see die.h), so callers need no NULL checks.
 */
#ifndef POSTERN_STRBUF_H
#define POSTERN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *s;        /* the bytes; NULL until the first append */
    size_t len;     /* bytes in use, not counting the final NUL */
    size_t size;    /* bytes allocated */
};

#define STRBUF_INIT { NULL, 0, 0 }

/* Make room for at least `more` further bytes plus the final NUL. */
void strbuf_grow(struct strbuf *sb, size_t more);
/* Append n bytes (may contain NULs). */
void strbuf_append(struct strbuf *sb, const void *bytes, size_t n);
/* Append a C string. */
void strbuf_puts(struct strbuf *sb, const char *s);
/* Append one byte. */
void strbuf_putc(struct strbuf *sb, int c);
/* Append printf-style formatted text. */
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Replace the contents with a C string. */
void strbuf_set(struct strbuf *sb, const char *s);
/* Empty the buffer, keeping its memory. */
void strbuf_reset(struct strbuf *sb);
/* Shorten to len bytes (no-op when already shorter). */
void strbuf_truncate(struct strbuf *sb, size_t len);
/* Remove trailing white space (and CR/LF). */
void strbuf_trim_end(struct strbuf *sb);
/* The contents as a C string; "" for a buffer never written. */
const char *strbuf_str(const struct strbuf *sb);
/* Give the memory to the caller (caller frees) and reset the buffer. */
char *strbuf_detach(struct strbuf *sb);
/* Release the memory. */
void strbuf_free(struct strbuf *sb);

#endif
