/* textlines.c - logical lines of table source files (see textlines.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strlist.h"
#include "log.h"
#include "strbuf.h"
#include "textlines.h"
#include "xalloc.h"

#define SOURCE_FILE_MAX (1024L * 1024 * 1024)  /* cdb files stop at 4 GB */

int textlines_is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v'
        || c == '\f';
}

void textlines_init(struct textlines *tl, const char *file, const char *buf,
                    size_t len, size_t max_line, unsigned flags)
{
    tl->file = file;
    tl->buf = buf;
    tl->len = len;
    tl->pos = 0;
    tl->max_line = max_line;
    tl->flags = flags;
    tl->lineno = 0;
    tl->problems = 0;
}

void textlines_problem(struct textlines *tl, int lineno, struct strbuf *err,
                       const char *fmt, ...)
{
    tl->problems++;
    if (tl->problems > TEXTLINES_MAX_SHOWN)
        return;
    struct strbuf message = STRBUF_INIT;
    strbuf_printf(&message, "%s, line %d: ", tl->file, lineno);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&message, fmt, ap);
    va_end(ap);
    log_printable(err, strbuf_str(&message), 0);
    strbuf_putc(err, '\n');
    strbuf_free(&message);
}

void textlines_warning(const struct textlines *tl, int lineno, const char *fmt, ...)
{
    struct strbuf message = STRBUF_INIT, shown = STRBUF_INIT;
    strbuf_printf(&message, "%s, line %d: ", tl->file, lineno);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&message, fmt, ap);
    va_end(ap);
    msg_warn("%s", log_printable(&shown, strbuf_str(&message), 0));
    strbuf_free(&message);
    strbuf_free(&shown);
}

void textlines_finish(struct textlines *tl, struct strbuf *err)
{
    if (tl->problems > TEXTLINES_MAX_SHOWN)
        strbuf_printf(err, "%s: %d more problems not shown\n", tl->file,
                      tl->problems - TEXTLINES_MAX_SHOWN);
}

/* Has a problem ended the reading (TEXTLINES_STOP)? */
static int stopped(const struct textlines *tl)
{
    return (tl->flags & TEXTLINES_STOP) && tl->problems > 0;
}

/* The kinds of physical line. */
enum line_kind { LINE_SKIP, LINE_START, LINE_CONTINUE, LINE_BAD };

/* Classify the physical line [s, s+n). */
static enum line_kind classify(const char *s, size_t n)
{
    if (memchr(s, '\0', n))
        return LINE_BAD;
    size_t i = 0;
    while (i < n && textlines_is_blank((unsigned char)s[i]))
        i++;
    if (i == n || s[i] == '#')
        return LINE_SKIP;
    return i == 0 ? LINE_START : LINE_CONTINUE;
}

/* One logical line, or an empty one (*too_long set) when it was too long. */
static int next_line(struct textlines *tl, struct strbuf *line, int *lineno,
                     struct strbuf *err, int *too_long_out)
{
    int have = 0, too_long = 0;
    strbuf_reset(line);
    while (tl->pos < tl->len && !stopped(tl)) {
        const char *s = tl->buf + tl->pos;
        size_t rest = tl->len - tl->pos;
        const char *nl = memchr(s, '\n', rest);
        size_t n = nl ? (size_t)(nl - s) : rest;
        size_t next = tl->pos + n + (nl ? 1 : 0);
        enum line_kind kind = classify(s, n);
        if (kind == LINE_START && have)
            break;              /* leave it for the next call */
        tl->pos = next;
        tl->lineno++;
        switch (kind) {
        case LINE_SKIP:
            break;
        case LINE_BAD:
            textlines_problem(tl, tl->lineno, err, "NUL character in line (binary file?)");
            break;
        case LINE_CONTINUE:
            if (!have) {
                textlines_problem(tl, tl->lineno, err,
                                  "logical line must not start with white space "
                                  "(an indented line continues the line before it; "
                                  "this one continues nothing)");
                break;
            }
            /* fall through */
        case LINE_START:
            if (!have) {
                have = 1;
                *lineno = tl->lineno;
            }
            if (too_long || line->len + n > tl->max_line) {
                too_long = 1;
                strbuf_reset(line);
            } else {
                strbuf_append(line, s, n);
            }
            break;
        }
    }
    if (stopped(tl))
        return 0;
    while (line->len > 0 && textlines_is_blank((unsigned char)line->s[line->len - 1]))
        line->s[--line->len] = '\0';
    *too_long_out = have && too_long;
    return have;
}

int textlines_next(struct textlines *tl, struct strbuf *line, int *lineno,
                   struct strbuf *err)
{
    int too_long;
    while (next_line(tl, line, lineno, err, &too_long)) {
        if (!too_long)
            return 1;
        textlines_problem(tl, *lineno, err, "line longer than %zu bytes", tl->max_line);
    }
    return 0;
}

int textlines_read_file(const char *path, struct strbuf *out, struct strbuf *err)
{
    strbuf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *problem = NULL;
    if (fstat(fd, &st) != 0)
        problem = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        problem = "not a regular file";
    else if (st.st_size > SOURCE_FILE_MAX)
        problem = "larger than 1 GB";
    if (problem) {
        strbuf_printf(err, "%s: %s", path, problem);
        close(fd);
        return -1;
    }
    strbuf_grow(out, (size_t)st.st_size);
    for (;;) {
        strbuf_grow(out, 65536);
        ssize_t got = read(fd, out->s + out->len, out->size - out->len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            strbuf_printf(err, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        out->len += (size_t)got;
        out->s[out->len] = '\0';
        if (out->len > SOURCE_FILE_MAX) {
            strbuf_printf(err, "%s: larger than 1 GB", path);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

int textlines_read_source(const char *name, struct strbuf *out, struct strbuf *err)
{
    if (*name != '{')
        return textlines_read_file(name, out, err);
    strbuf_reset(out);
    size_t len = strlen(name);
    while (len > 1 && textlines_is_blank((unsigned char)name[len - 1]))
        len--;
    if (len < 2 || name[len - 1] != '}') {
        strbuf_printf(err, "inline table \"%s\": expected { {rule}, {rule} ... }", name);
        return -1;
    }
    char *inner = xstrndup(name + 1, len - 2);
    struct strlist rules = STRLIST_INIT;
    int status = list_split(inner, &rules, err);
    for (size_t i = 0; status == 0 && i < rules.count; i++) {
        strbuf_puts(out, rules.item[i]);
        strbuf_putc(out, '\n');
    }
    strlist_free(&rules);
    free(inner);
    return status;
}
