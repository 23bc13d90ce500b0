/* rulenest.c - the line loop and the if/endif nesting of the pattern
 * tables (see rulenest.h). */
#include <stdlib.h>

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include "rulenest.h"
#include "strbuf.h"
#include "textlines.h"
#include "xalloc.h"

int rule_keyword(char *line, const char *word, char **rest)
{
    size_t n = strlen(word);
    if (strncasecmp(line, word, n) != 0 || isalnum((unsigned char)line[n]))
        return 0;
    *rest = line + n;
    return 1;
}

void rule_nesting_open(struct rule_nesting *nesting, size_t rule, int lineno)
{
    if (nesting->depth == nesting->alloc) {
        nesting->alloc = nesting->alloc ? 2 * nesting->alloc : 8;
        nesting->rules = xreallocarray(nesting->rules, nesting->alloc, sizeof *nesting->rules);
        nesting->linenos = xreallocarray(nesting->linenos, nesting->alloc,
                                         sizeof *nesting->linenos);
    }
    nesting->rules[nesting->depth] = rule;
    nesting->linenos[nesting->depth] = lineno;
    nesting->depth++;
}

int rule_nesting_close(struct rule_nesting *nesting, struct textlines *lines,
                       int lineno, const char *rest, struct strbuf *err, size_t *rule)
{
    while (textlines_is_blank((unsigned char)*rest))
        rest++;
    if (*rest)
        textlines_warning(lines, lineno, "ignoring text after \"endif\"");
    if (nesting->depth == 0) {
        textlines_problem(lines, lineno, err, "endif without if");
        return -1;
    }
    *rule = nesting->rules[--nesting->depth];
    return 0;
}

int rule_nesting_finish(const struct rule_nesting *nesting, struct textlines *lines,
                        struct strbuf *err)
{
    if (nesting->depth == 0)
        return 0;
    textlines_problem(lines, nesting->linenos[nesting->depth - 1], err, "if without endif");
    return -1;
}

void rule_nesting_free(struct rule_nesting *nesting)
{
    free(nesting->rules);
    free(nesting->linenos);
    *nesting = (struct rule_nesting){0};
}

int rule_file_parse(struct textlines *lines, const char *path, const char *text,
                    size_t len, struct rule_nesting *nesting,
                    int (*parse_line)(void *table, char *line, int lineno, struct strbuf *err),
                    void *table, struct strbuf *err)
{
    struct strbuf line = STRBUF_INIT;
    int lineno, failed = 0;
    textlines_init(lines, path, text, len, TEXTLINES_PATTERN_MAX, TEXTLINES_STOP);
    while (!failed && textlines_next(lines, &line, &lineno, err))
        failed = parse_line(table, line.s, lineno, err) != 0;
    if (!failed && !lines->problems)
        rule_nesting_finish(nesting, lines, err);
    rule_nesting_free(nesting);
    strbuf_free(&line);
    if (failed || lines->problems) {
        strbuf_trim_end(err);       /* one message, not a report of lines */
        return -1;
    }
    return 0;
}
