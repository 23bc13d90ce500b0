/* regex_table.h - what pcre and regexp tables share (private to maps/).
 *
 * Both follow the same file syntax (pcre_table(5), regexp_table(5)):
 *     /pattern/flags result        first matching rule wins
 *     !/pattern/flags result       the rule applies when the pattern does not match
 *     if /pattern/flags  ...  endif   (also "if !/pattern/"; they nest)
 * with any non-alphanumeric delimiter, and $1..$99, ${n}, $(n), $$ in the
 * result ($n refused when the map is opened with MAP_OPEN_NO_REGSUB).
 * regex_table.c parses that and runs the rules; an engine (PCRE2
 * in pcre.c, POSIX regcomp in regexp.c) compiles and matches patterns.
 */
#ifndef POSTERN_REGEX_TABLE_H
#define POSTERN_REGEX_TABLE_H

#include <stddef.h>

struct map;
struct strbuf;

#define REGEX_SPAN_UNSET ((size_t)-1)   /* a group that did not take part */

struct regex_engine {
    const char *type;           /* "pcre", "regexp": names the table in messages */
    int second_pattern;         /* accepts the old "/re1/!/re2/ result" form */
    /* Compile pattern with the flag letters flags[0..flags_len) toggling the
     * engine's defaults.  want_groups: the result substitutes groups.
     * Returns the compiled pattern and its group count, or NULL with a
     * message (no file:line) in err. */
    void *(*compile)(const char *pattern, const char *flags, size_t flags_len,
                     int want_groups, size_t *groups, struct strbuf *err);
    /* 1 when key matches, 0 when not, -1 on a matching error (message in
     * err).  spans (2 * nspans offsets, may be NULL) get the start and end
     * of group 0..nspans-1, REGEX_SPAN_UNSET for groups that did not match. */
    int (*match)(void *compiled, const char *key, size_t key_len,
                 size_t *spans, size_t nspans, struct strbuf *err);
    void (*free)(void *compiled);
};

/* Open map from the file `path` (the map's name). */
int regex_table_open(struct map *map, const char *path,
                     const struct regex_engine *engine, struct strbuf *err);
/* The same from text in memory; path names it in messages. */
int regex_table_parse(struct map *map, const char *path, const char *text,
                      size_t len, const struct regex_engine *engine,
                      struct strbuf *err);
int regex_table_lookup(struct map *map, const char *key, struct strbuf *value);
void regex_table_close(struct map *map);

#endif
