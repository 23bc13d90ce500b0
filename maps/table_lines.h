/* table_lines.h - read a lookup-table file as Postfix logical lines
 * (private to maps/; used by the pattern types pcre, regexp and cidr).
 *
 * Logical lines as Postfix reads them: blank lines and lines whose first
 * non-blank character is '#' are skipped; a line that starts with white
 * space continues the logical line before it (the text is joined as it
 * stands, without the newline); trailing white space is removed.  A line
 * is numbered by the physical line it starts on.
 */
#ifndef POSTERN_TABLE_LINES_H
#define POSTERN_TABLE_LINES_H

#include <stddef.h>

struct strbuf;

/* Called for each logical line (NUL-terminated, may be modified); returns
 * 0 to go on, -1 (with err set) to stop. */
typedef int (*table_line_fn)(char *line, int lineno, void *ctx,
                             struct strbuf *err);

/* Read the whole file at path into text.  0, or -1 with err set. */
int table_read_file(const char *path, struct strbuf *text, struct strbuf *err);
/* The text of a table named `name`: the file, or for an inline table
 * (Postfix 3.7: "pcre:{ {rule 1}, {rule 2} }", name "{ ... }") its rules,
 * one per line.  0, or -1 with err set. */
int table_read_source(const char *name, struct strbuf *text, struct strbuf *err);
/* Split text (len bytes) into logical lines and call fn for each.  A NUL
 * byte or a continuation line with nothing before it is an error.  0, or
 * -1 with "PATH, line N: ..." in err. */
int table_each_line(const char *path, const char *text, size_t len,
                    table_line_fn fn, void *ctx, struct strbuf *err);
/* Append "PATH, line N: " and the formatted message to err. */
void table_error(struct strbuf *err, const char *path, int lineno,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Log "warning: PATH, line N: message" (for what Postfix also only warns
 * about and that cannot change what the table means). */
void table_warning(const char *path, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* White space as Postfix's table readers see it (the C locale's). */
int table_is_blank(int c);

#endif
