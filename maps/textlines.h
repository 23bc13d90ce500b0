/* textlines.h - the logical lines of a table source file, as Postfix reads
 * them (postmap(1), postalias(1), texthash):
 *   - a line whose first non-blank character is '#' is a comment;
 *   - empty and all-blank lines are ignored;
 *   - a line that starts with white space continues the logical line before
 *     it (comments and blank lines in between do not end that line); it is
 *     appended as written, its leading white space included.
 * Problems (a NUL byte, a continuation with nothing before it, a logical
 * line longer than TEXTLINES_MAX) are reported as "FILE, line N: ..." lines
 * appended to an error buffer; the offending line is skipped.
 */
#ifndef POSTERN_TEXTLINES_H
#define POSTERN_TEXTLINES_H

#include <stddef.h>

struct strbuf;

#define TEXTLINES_MAX       (1024 * 1024)   /* bytes in one logical line */
#define TEXTLINES_MAX_SHOWN 20              /* problems spelled out in err */

struct textlines {
    const char *file;       /* for messages */
    const char *buf;
    size_t len;
    size_t pos;             /* start of the first unread physical line */
    int lineno;             /* number of the last physical line read */
    int problems;           /* problems found so far */
};

void textlines_init(struct textlines *tl, const char *file,
                    const char *buf, size_t len);
/* The next logical line into `line` (without newline), the number of its
 * first physical line in *lineno.  Returns 1, or 0 at the end. */
int textlines_next(struct textlines *tl, struct strbuf *line, int *lineno,
                   struct strbuf *err);
/* Report a problem with a line: "FILE, line N: text" into err (only the
 * first TEXTLINES_MAX_SHOWN are spelled out) and count it. */
void textlines_problem(struct textlines *tl, int lineno, struct strbuf *err,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Finish the report: a line saying how many problems were not shown. */
void textlines_finish(struct textlines *tl, struct strbuf *err);
/* Read a whole source file into out.  0, or -1 with err set. */
int textlines_read_file(const char *path, struct strbuf *out, struct strbuf *err);

#endif
