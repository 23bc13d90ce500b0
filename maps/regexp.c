/* regexp.c - the regexp table type: regexp_table(5) files matched with
 * POSIX regular expressions (regcomp/regexec).
 *
 * The file syntax is regex_table.c's, plus the old "/re1/!/re2/ result"
 * form.  Defaults as regexp_table(5): extended syntax, case-insensitive;
 * the flags toggle them: i (case), x (extended syntax), m (REG_NEWLINE:
 * ^ and $ also match at newlines).
 */
#include <regex.h>
#include <stdlib.h>

#include "map_impl.h"
#include "regex_table.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAX_SPANS 100

/* regerror's text for a code. */
static void regexp_error_text(int code, const regex_t *re, struct strbuf *out)
{
    char message[256];
    (void)regerror(code, re, message, sizeof message);
    strbuf_puts(out, message);
}

/* Compile one pattern (struct regex_engine.compile). */
static void *regexp_compile_pattern(const char *pattern, const char *flags,
                                    size_t flags_len, int want_groups,
                                    size_t *groups, struct strbuf *err)
{
    int options = REG_EXTENDED | REG_ICASE;
    for (size_t i = 0; i < flags_len; i++) {
        switch (flags[i]) {
        case 'i': options ^= REG_ICASE; break;
        case 'm': options ^= REG_NEWLINE; break;
        case 'x': options ^= REG_EXTENDED; break;
        default:
            strbuf_printf(err, "unknown regexp flag \"%c\" (flags are i m x)", flags[i]);
            return NULL;
        }
    }
    if (!want_groups)
        options |= REG_NOSUB;
    regex_t *re = xmalloc(sizeof *re);
    int code = regcomp(re, pattern, options);
    if (code != 0) {
        strbuf_puts(err, "error in regexp pattern: ");
        regexp_error_text(code, re, err);
        free(re);
        return NULL;
    }
    *groups = re->re_nsub;
    return re;
}

/* Match a key (struct regex_engine.match). */
static int regexp_match_key(void *compiled, const char *key, size_t key_len,
                            size_t *spans, size_t nspans, struct strbuf *err)
{
    regmatch_t match[MAX_SPANS];
    (void)key_len;
    if (nspans > MAX_SPANS)
        nspans = MAX_SPANS;
    int code = regexec(compiled, key, spans ? nspans : 0, spans ? match : NULL, 0);
    if (code == REG_NOMATCH)
        return 0;
    if (code != 0) {
        regexp_error_text(code, compiled, err);
        return -1;
    }
    for (size_t i = 0; spans && i < nspans; i++) {
        int set = match[i].rm_so >= 0;
        spans[2 * i] = set ? (size_t)match[i].rm_so : REGEX_SPAN_UNSET;
        spans[2 * i + 1] = set ? (size_t)match[i].rm_eo : REGEX_SPAN_UNSET;
    }
    return 1;
}

/* Free a compiled pattern (struct regex_engine.free). */
static void regexp_free_pattern(void *compiled)
{
    regfree(compiled);
    free(compiled);
}

static const struct regex_engine regexp_engine = {
    .type = "regexp",
    .second_pattern = 1,
    .compile = regexp_compile_pattern,
    .match = regexp_match_key,
    .free = regexp_free_pattern,
};

/* Read and compile the table file. */
static int regexp_open(struct map *map, const char *name, struct strbuf *err)
{
    return regex_table_open(map, name, &regexp_engine, err);
}

const struct map_type map_type_regexp = {
    .name = "regexp",
    .flags = MAP_PATTERN,
    .open = regexp_open,
    .lookup = regex_table_lookup,
    .close = regex_table_close,
};
