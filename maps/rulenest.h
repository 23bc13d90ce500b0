/* rulenest.h - what the pattern tables (pcre, regexp, cidr) share while
 * their file is parsed: the loop over its logical lines, and the if/endif
 * nesting (which "if" rules are still open, so that each "endif" can be
 * tied to its "if" and one left open reported). */
#ifndef POSTERN_RULENEST_H
#define POSTERN_RULENEST_H

#include <stddef.h>

struct strbuf;
struct textlines;

struct rule_nesting {
    size_t *rules;          /* index of each open "if" rule, innermost last */
    int *linenos;           /* the line each one is on */
    size_t depth, alloc;
};

/* Does line start with the keyword `word` ("if", "endif"; any case, not
 * followed by a letter or digit)?  Sets *rest after it. */
int rule_keyword(char *line, const char *word, char **rest);

/* The "if" rule at index `rule` (on line lineno) is open. */
void rule_nesting_open(struct rule_nesting *nesting, size_t rule, int lineno);
/* An "endif" on line lineno, `rest` the text after the word (a warning
 * when it is not blank): the index of the "if" it closes in *rule.  0, or
 * -1 after reporting "endif without if" through lines. */
int rule_nesting_close(struct rule_nesting *nesting, struct textlines *lines,
                       int lineno, const char *rest, struct strbuf *err, size_t *rule);
/* At the end of the file: 0, or -1 after reporting the innermost "if"
 * left open as "if without endif". */
int rule_nesting_finish(const struct rule_nesting *nesting, struct textlines *lines,
                        struct strbuf *err);
void rule_nesting_free(struct rule_nesting *nesting);

/* Parse the text of a pattern table (from `path`): parse_line gets each
 * logical line and reports its problems through `lines` (which the table
 * may keep a pointer to meanwhile); then an "if" left open in nesting is
 * reported, and nesting freed.  0, or -1 with one message in err. */
int rule_file_parse(struct textlines *lines, const char *path, const char *text,
                    size_t len, struct rule_nesting *nesting,
                    int (*parse_line)(void *table, char *line, int lineno, struct strbuf *err),
                    void *table, struct strbuf *err);

#endif
