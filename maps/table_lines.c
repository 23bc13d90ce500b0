/* table_lines.c - read a lookup-table file as Postfix logical lines (see
 * table_lines.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "table_lines.h"
#include "xalloc.h"

int table_is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v'
        || c == '\f';
}

void table_error(struct strbuf *err, const char *path, int lineno,
                 const char *fmt, ...)
{
    va_list ap;
    struct strbuf message = STRBUF_INIT;
    strbuf_printf(&message, "%s, line %d: ", path, lineno);
    va_start(ap, fmt);
    strbuf_vprintf(&message, fmt, ap);
    va_end(ap);
    /* the message quotes the file, which may hold anything */
    log_printable(err, strbuf_str(&message), 0);
    strbuf_free(&message);
}

void table_warning(const char *path, int lineno, const char *fmt, ...)
{
    va_list ap;
    struct strbuf message = STRBUF_INIT, shown = STRBUF_INIT;
    va_start(ap, fmt);
    strbuf_vprintf(&message, fmt, ap);
    va_end(ap);
    msg_warn("%s, line %d: %s", path, lineno,
             log_printable(&shown, strbuf_str(&message), 0));
    strbuf_free(&message);
    strbuf_free(&shown);
}

int table_read_file(const char *path, struct strbuf *text, struct strbuf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        strbuf_grow(text, 65536);
        ssize_t n = read(fd, text->s + text->len, text->size - text->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_printf(err, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        text->len += (size_t)n;
        text->s[text->len] = '\0';
    }
    close(fd);
    return 0;
}

int table_read_source(const char *name, struct strbuf *text, struct strbuf *err)
{
    if (*name != '{')
        return table_read_file(name, text, err);
    size_t len = strlen(name);
    while (len > 1 && table_is_blank((unsigned char)name[len - 1]))
        len--;
    if (len < 2 || name[len - 1] != '}') {
        strbuf_printf(err, "inline table \"%s\": expected { {rule}, {rule} ... }", name);
        return -1;
    }
    char *inner = xstrndup(name + 1, len - 2);
    struct strlist rules = STRLIST_INIT;
    int status = list_split(inner, &rules, err);
    for (size_t i = 0; status == 0 && i < rules.count; i++) {
        strbuf_puts(text, rules.item[i]);
        strbuf_putc(text, '\n');
    }
    strlist_free(&rules);
    free(inner);
    return status;
}

/* Hand one finished logical line to fn, trailing white space removed. */
static int flush_line(struct strbuf *line, int lineno, table_line_fn fn,
                      void *ctx, struct strbuf *err)
{
    if (line->len == 0)
        return 0;
    strbuf_trim_end(line);
    int result = fn(line->s, lineno, ctx, err);
    strbuf_reset(line);
    return result;
}

int table_each_line(const char *path, const char *text, size_t len,
                    table_line_fn fn, void *ctx, struct strbuf *err)
{
    struct strbuf line = STRBUF_INIT;
    int lineno = 0, start_line = 0, result = 0;
    size_t pos = 0;
    while (pos < len && result == 0) {
        const char *begin = text + pos;
        const char *newline = memchr(begin, '\n', len - pos);
        size_t n = newline ? (size_t)(newline - begin) : len - pos;
        pos += n + (newline != NULL);
        lineno++;
        if (memchr(begin, '\0', n)) {
            table_error(err, path, lineno, "NUL byte in table text");
            result = -1;
            break;
        }
        size_t skip = 0;
        while (skip < n && table_is_blank((unsigned char)begin[skip]))
            skip++;
        if (skip == n || begin[skip] == '#')
            continue;
        if (skip > 0) {
            if (line.len == 0) {
                table_error(err, path, lineno,
                            "line starts with white space but continues nothing");
                result = -1;
                break;
            }
            strbuf_append(&line, begin, n);
            continue;
        }
        result = flush_line(&line, start_line, fn, ctx, err);
        strbuf_append(&line, begin, n);
        start_line = lineno;
    }
    if (result == 0)
        result = flush_line(&line, start_line, fn, ctx, err);
    strbuf_free(&line);
    return result;
}
