/* regexp.c - the regexp table type: regexp_table(5) files matched with
 * POSIX regular expressions (regcomp/regexec).
 *
 * The file syntax is regex_table.c's, plus the old "/re1/!/re2/ result"
 * form.  Defaults as regexp_table(5): extended syntax, case-insensitive;
 * the flags toggle them: i (case), x (extended syntax), m (REG_NEWLINE:
 * ^ and $ also match at newlines).
 */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "map_impl.h"
#include "regex_table.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAX_SPANS 100
#define MAX_NESTING 256         /* parentheses in one pattern */
#define MAX_COST 200000         /* regcomp nodes beyond the pattern's length */

/* regerror's text for a code. */
static void regexp_error_text(int code, const regex_t *re, struct strbuf *out)
{
    char message[256];
    (void)regerror(code, re, message, sizeof message);
    strbuf_puts(out, message);
}

/* Past the end of the bracket expression that starts at p: "[...]",
 * "[^...]", a "]" first in the list, and [:class:], [.coll.], [=equiv=]
 * inside. */
static const char *skip_bracket(const char *p)
{
    p += 1 + (p[1] == '^');
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char terminator[] = {p[1], ']', '\0'};
            const char *close = strstr(p + 2, terminator);
            if (close) {
                p = close + 2;
                continue;
            }
        }
        p++;
    }
    return *p ? p + 1 : p;
}

/* An upper bound of the nodes glibc's regcomp builds for a pattern: it
 * copies the operand of "+" once and that of "{n,m}" max(n,m) times, so
 * stacked or nested repetitions ("a++++++++", "((a{99}){99}){99}") grow
 * exponentially and a short pattern can take all memory.  Bracket
 * expressions and escaped characters count as one node; both the ERE and
 * the BRE operators are counted (an overestimate in either syntax). */
static double regexp_cost(const char *p)
{
    double total[MAX_NESTING], last[MAX_NESTING];
    int depth = 0, after_repeat = 0;
    total[0] = last[0] = 0;
    while (*p) {
        int escaped = *p == '\\' && p[1];
        char c = escaped ? p[1] : *p;
        const char *next = p + 1 + escaped;
        int repeat = !escaped && (c == '*' || c == '+' || c == '?'
                                  || (c == '{' && isdigit((unsigned char)*next)));
        /* "a**", "a+*+": POSIX leaves stacked repetitions undefined, and
         * glibc's regcomp takes time that grows with the square of the
         * pattern for them (minutes for 40 bytes) */
        if (repeat && after_repeat)
            return 1e300;
        after_repeat = repeat;
        if (c == '(' && (escaped || *p == '(')) {
            if (depth + 1 == MAX_NESTING)
                return 1e300;
            depth++;
            total[depth] = last[depth] = 0;
        } else if (c == ')' && depth > 0) {
            double size = total[depth] + last[depth] + 1;
            depth--;
            total[depth] += last[depth];
            last[depth] = size;
        } else if (c == '|') {
            total[depth] += last[depth];
            last[depth] = 0;
        } else if (c == '+') {
            last[depth] = 2 * last[depth] + 1;
        } else if (c == '*' || c == '?') {
            last[depth] += 1;
        } else if (c == '{' && isdigit((unsigned char)*next)) {
            char *end;
            unsigned long low = strtoul(next, &end, 10), high = low;
            if (*end == ',')
                high = isdigit((unsigned char)end[1]) ? strtoul(end + 1, &end, 10) : (end++, low + 1);
            last[depth] = last[depth] * (double)(high > low ? high : low) + 1;
            next = end + (*end == '\\') + (*end != '\0');    /* past "}" or "\}" */
        } else if (!escaped && c == '[') {
            next = skip_bracket(p);
            total[depth] += last[depth];
            last[depth] = 1;
        } else {
            total[depth] += last[depth];
            last[depth] = 1;
        }
        p = next;
    }
    double sum = 0;
    for (int i = 0; i <= depth; i++)
        sum += total[i] + last[i];
    return sum;
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
    size_t length = strlen(pattern);
    if (regexp_cost(pattern) > (double)MAX_COST + 4.0 * (double)length) {
        strbuf_puts(err, "regexp pattern too complex: stacked or deeply nested repetitions (use pcre: for such patterns)");
        return NULL;
    }
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
    .file_suffix = "",
};
