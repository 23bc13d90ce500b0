/* textlines.h - the logical lines of a table source file, as Postfix reads
 * them (postmap(1), postalias(1), texthash, and the rule files of pcre,
 * regexp and cidr tables):
 *   - a line whose first non-blank character is '#' is a comment;
 *   - empty and all-blank lines are ignored;
 *   - a line that starts with white space continues the logical line before
 *     it (comments and blank lines in between do not end that line); it is
 *     appended as written, its leading white space included;
 *   - white space at the end of a logical line is removed;
 *   - a line is numbered by the physical line it starts on.
 * Problems (a NUL byte, a continuation with nothing before it, a logical
 * line longer than the reader's limit) are reported as "FILE, line N: ..."
 * lines appended to an error buffer, in printable text (the file may hold
 * anything).  By default the offending line is skipped and reading goes
 * on, so that postmap can list every bad line; with TEXTLINES_STOP the
 * first problem (the reader's or the caller's) ends the reading, as the
 * pattern tables want.
 */
#ifndef POSTERN_TEXTLINES_H
#define POSTERN_TEXTLINES_H

#include <stddef.h>

struct strbuf;

#define TEXTLINES_MAX         (1024 * 1024)       /* postmap/postalias sources */
#define TEXTLINES_PATTERN_MAX (16 * 1024 * 1024)  /* pattern tables: one rule may
                                                     be a long alternation */
#define TEXTLINES_MAX_SHOWN   20                  /* problems spelled out in err */

#define TEXTLINES_STOP 0x01     /* the first problem ends the reading */

struct textlines {
    const char *file;       /* for messages */
    const char *buf;
    size_t len;
    size_t pos;             /* start of the first unread physical line */
    size_t max_line;        /* bytes in one logical line */
    unsigned flags;         /* TEXTLINES_STOP */
    int lineno;             /* number of the last physical line read */
    int problems;           /* problems found so far */
};

/* Read the len bytes at buf, which came from `file`.  max_line bounds a
 * logical line (TEXTLINES_MAX, TEXTLINES_PATTERN_MAX). */
void textlines_init(struct textlines *tl, const char *file, const char *buf,
                    size_t len, size_t max_line, unsigned flags);
/* The next logical line into `line` (without newline; NUL-terminated and
 * the caller's to modify), the number of its first physical line in
 * *lineno.  Returns 1, or 0 at the end (or after a problem, with
 * TEXTLINES_STOP). */
int textlines_next(struct textlines *tl, struct strbuf *line, int *lineno,
                   struct strbuf *err);
/* Report a problem with a line: "FILE, line N: text\n" into err, in
 * printable text (only the first TEXTLINES_MAX_SHOWN are spelled out), and
 * count it. */
void textlines_problem(struct textlines *tl, int lineno, struct strbuf *err,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Log "warning: FILE, line N: text" (for what Postfix also only warns
 * about and that cannot change what the table means). */
void textlines_warning(const struct textlines *tl, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Finish the report: a line saying how many problems were not shown. */
void textlines_finish(struct textlines *tl, struct strbuf *err);

/* Read a whole source file (a regular file of at most 1 GB) into out.
 * 0, or -1 with err set. */
int textlines_read_file(const char *path, struct strbuf *out, struct strbuf *err);
/* The text of a pattern table called `name`: the file, or for an inline
 * table (Postfix 3.7: "pcre:{ {rule 1}, {rule 2} }", name "{ ... }") its
 * rules, one per line.  0, or -1 with err set. */
int textlines_read_source(const char *name, struct strbuf *out, struct strbuf *err);

/* White space as Postfix's table readers see it (the C locale's). */
int textlines_is_blank(int c);

#endif
