/* regex_table.c - the rule files of pcre and regexp tables: parsing
 * (patterns, flags, negation, if/endif, $n in results) and the first-match
 * search.  The regular expressions themselves are the engine's (see
 * regex_table.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map_impl.h"
#include "regex_table.h"
#include "rulenest.h"
#include "strbuf.h"
#include "textlines.h"
#include "xalloc.h"

#define MAX_GROUP 99            /* $1 .. $99, as Postfix documents */

enum rule_op { RULE_MATCH, RULE_IF, RULE_ENDIF };

/* A piece of a result: literal text, or the text of group `group`. */
struct piece {
    size_t group;               /* 0: literal */
    char *text;
};

struct rule {
    enum rule_op op;
    int lineno;
    int negate;                 /* the rule applies when re does not match */
    void *re;
    int negate2;                /* regexp's "/re1/!/re2/": re2 must not match */
    void *re2;
    size_t max_group;           /* highest $n in the result; 0: none */
    struct piece *pieces;       /* the result, split at each $n */
    size_t piece_count;
    size_t endif;               /* RULE_IF: index of its endif */
};

struct regex_table {
    const struct regex_engine *engine;
    const char *path;           /* the map's name */
    struct textlines *lines;    /* the file, while it is parsed */
    int no_regsub;              /* MAP_OPEN_NO_REGSUB: results may not use $n */
    struct rule *rules;
    size_t count, alloc;
    struct rule_nesting nesting;    /* if rules not yet closed, while it is parsed */
};

/* A pattern as written: the text between the delimiters, and its flags. */
struct pattern_text {
    int negate;
    char *regex;
    const char *flags;
    size_t flags_len;
};

/* Take "[!]<d>regex<d>flags" from *pp; the closing delimiter is overwritten
 * with NUL.  *pp is left after the flags. */
static int take_pattern(struct regex_table *table, int lineno, char **pp,
                        struct pattern_text *pat, struct strbuf *err)
{
    char *p = *pp;
    pat->negate = 0;
    while (*p == '!' || textlines_is_blank((unsigned char)*p)) {
        if (*p == '!')
            pat->negate = !pat->negate;
        p++;
    }
    if (*p == '\0') {
        textlines_problem(table->lines, lineno, err, "missing pattern");
        return -1;
    }
    char delimiter = *p++;
    if (isalnum((unsigned char)delimiter) || delimiter == '\\') {
        textlines_problem(table->lines, lineno, err,
                          "a pattern is written between delimiters, as in /pattern/, not after \"%c\"",
                          delimiter);
        return -1;
    }
    pat->regex = p;
    while (*p && *p != delimiter) {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    if (*p == '\0') {
        textlines_problem(table->lines, lineno, err,
                          "no closing delimiter \"%c\" after the pattern", delimiter);
        return -1;
    }
    *p++ = '\0';
    pat->flags = p;
    while (*p && !textlines_is_blank((unsigned char)*p)
           && !(*p == '!' && table->engine->second_pattern))
        p++;
    pat->flags_len = (size_t)(p - pat->flags);
    *pp = p;
    return 0;
}

/* Append a piece to a rule's result. */
static void add_piece(struct rule *rule, size_t group, const char *text,
                      size_t len)
{
    rule->pieces = xreallocarray(rule->pieces, rule->piece_count + 1,
                                 sizeof *rule->pieces);
    struct piece *piece = &rule->pieces[rule->piece_count++];
    piece->group = group;
    piece->text = group ? NULL : xstrndup(text, len);
}

/* Split a result at $n, ${n}, $(n) and turn $$ into $. */
static int parse_result(struct regex_table *table, int lineno,
                        const char *result, struct rule *rule,
                        struct strbuf *err)
{
    struct strbuf literal = STRBUF_INIT;
    const char *p = result;
    int status = 0;
    while (*p && status == 0) {
        if (*p != '$') {
            size_t n = strcspn(p, "$");
            strbuf_append(&literal, p, n);
            p += n;
            continue;
        }
        p++;
        if (*p == '$') {
            strbuf_putc(&literal, '$');
            p++;
            continue;
        }
        const char *name = p;
        size_t name_len;
        if (*p == '{' || *p == '(') {
            const char *close = strchr(p, *p == '{' ? '}' : ')');
            if (!close) {
                textlines_problem(table->lines, lineno, err,
                                  "unbalanced \"$%c\" in the result", *p);
                status = -1;
                break;
            }
            name = p + 1;
            name_len = (size_t)(close - name);
            p = close + 1;
        } else {
            name_len = 0;
            while (isalnum((unsigned char)name[name_len]) || name[name_len] == '_')
                name_len++;
            p += name_len;
        }
        size_t digits = 0;
        while (digits < name_len && isdigit((unsigned char)name[digits]))
            digits++;
        if (name_len == 0 || digits != name_len) {
            textlines_problem(table->lines, lineno, err,
                              "\"$%.*s\" in the result is not $1..$%d (write $$ for a $, ${1} before letters or digits)",
                              (int)(name_len > 40 ? 40 : name_len), name, MAX_GROUP);
            status = -1;
            break;
        }
        size_t group = 0;
        for (size_t i = 0; i < name_len && group <= MAX_GROUP; i++)
            group = group * 10 + (size_t)(name[i] - '0');
        if (group < 1 || group > MAX_GROUP) {
            textlines_problem(table->lines, lineno, err,
                              "\"$%.*s\" in the result: groups are numbered 1 to %d",
                              (int)(name_len > 40 ? 40 : name_len), name, MAX_GROUP);
            status = -1;
            break;
        }
        if (literal.len)
            add_piece(rule, 0, literal.s, literal.len);
        strbuf_reset(&literal);
        add_piece(rule, group, NULL, 0);
        if (group > rule->max_group)
            rule->max_group = group;
    }
    if (status == 0 && (literal.len || rule->piece_count == 0))
        add_piece(rule, 0, strbuf_str(&literal), literal.len);
    strbuf_free(&literal);
    return status;
}

/* Compile a pattern, prefixing the engine's message with file:line. */
static void *compile_pattern(struct regex_table *table, int lineno,
                             const struct pattern_text *pat, int want_groups,
                             size_t *groups, struct strbuf *err)
{
    struct strbuf why = STRBUF_INIT;
    void *re = table->engine->compile(pat->regex, pat->flags, pat->flags_len,
                                      want_groups, groups, &why);
    if (!re)
        textlines_problem(table->lines, lineno, err, "%s", strbuf_str(&why));
    strbuf_free(&why);
    return re;
}

/* A new rule at the end of the table. */
static struct rule *new_rule(struct regex_table *table, enum rule_op op,
                             int lineno)
{
    if (table->count == table->alloc) {
        table->alloc = table->alloc ? 2 * table->alloc : 16;
        table->rules = xreallocarray(table->rules, table->alloc,
                                     sizeof *table->rules);
    }
    struct rule *rule = &table->rules[table->count++];
    memset(rule, 0, sizeof *rule);
    rule->op = op;
    rule->lineno = lineno;
    return rule;
}

/* "/re/flags result" (and "!/re/", and regexp's "/re1/!/re2/"). */
static int parse_match_rule(struct regex_table *table, int lineno, char *p,
                            struct strbuf *err)
{
    struct pattern_text first, second = {0};
    int has_second = 0;
    if (take_pattern(table, lineno, &p, &first, err) != 0)
        return -1;
    if (*p == '!') {
        if (take_pattern(table, lineno, &p, &second, err) != 0)
            return -1;
        has_second = 1;
    }
    while (textlines_is_blank((unsigned char)*p))
        p++;
    if (*p == '\0') {
        textlines_problem(table->lines, lineno, err, "missing result after the pattern");
        return -1;
    }
    struct rule *rule = new_rule(table, RULE_MATCH, lineno);
    rule->negate = first.negate;
    if (parse_result(table, lineno, p, rule, err) != 0)
        return -1;
    if (rule->max_group && rule->negate) {
        textlines_problem(table->lines, lineno, err,
                          "$%zu in the result of a negated pattern (a pattern that did not match has no groups)",
                          rule->max_group);
        return -1;
    }
    if (rule->max_group && table->no_regsub) {
        textlines_problem(table->lines, lineno, err,
                          "regular expression substitution is not allowed in this table "
                          "(the result uses $%zu; the lookup key must not put its own text here)",
                          rule->max_group);
        return -1;
    }
    size_t groups = 0;
    rule->re = compile_pattern(table, lineno, &first, rule->max_group > 0,
                               &groups, err);
    if (!rule->re)
        return -1;
    if (rule->max_group > groups) {
        textlines_problem(table->lines, lineno, err,
                          "the result uses $%zu but the pattern has %zu group%s",
                          rule->max_group, groups, groups == 1 ? "" : "s");
        return -1;
    }
    if (has_second) {
        rule->negate2 = second.negate;
        rule->re2 = compile_pattern(table, lineno, &second, 0, &groups, err);
        if (!rule->re2)
            return -1;
    }
    return 0;
}

/* Parse one logical line into the table. */
static int parse_line(void *opaque, char *line, int lineno, struct strbuf *err)
{
    struct regex_table *table = opaque;
    char *p;
    if (!isalnum((unsigned char)line[0]))
        return parse_match_rule(table, lineno, line, err);
    if (rule_keyword(line, "if", &p)) {
        struct pattern_text pat;
        while (textlines_is_blank((unsigned char)*p))
            p++;
        if (take_pattern(table, lineno, &p, &pat, err) != 0)
            return -1;
        while (textlines_is_blank((unsigned char)*p))
            p++;
        if (*p) {
            textlines_problem(table->lines, lineno, err,
                              "text after the \"if\" pattern (do not indent the lines between if and endif: an indented line continues the line before it)");
            return -1;
        }
        struct rule *rule = new_rule(table, RULE_IF, lineno);
        rule->negate = pat.negate;
        size_t groups;
        rule->re = compile_pattern(table, lineno, &pat, 0, &groups, err);
        if (!rule->re)
            return -1;
        rule_nesting_open(&table->nesting, table->count - 1, lineno);
        return 0;
    }
    if (rule_keyword(line, "endif", &p)) {
        size_t if_rule;
        if (rule_nesting_close(&table->nesting, table->lines, lineno, p, err, &if_rule) != 0)
            return -1;
        new_rule(table, RULE_ENDIF, lineno);
        table->rules[if_rule].endif = table->count - 1;
        return 0;
    }
    textlines_problem(table->lines, lineno, err,
                      "expected \"/pattern/ result\", \"if /pattern/\" or \"endif\"");
    return -1;
}

/* Release everything a table holds. */
static void free_table(struct regex_table *table)
{
    for (size_t i = 0; i < table->count; i++) {
        struct rule *rule = &table->rules[i];
        if (rule->re)
            table->engine->free(rule->re);
        if (rule->re2)
            table->engine->free(rule->re2);
        for (size_t j = 0; j < rule->piece_count; j++)
            free(rule->pieces[j].text);
        free(rule->pieces);
    }
    free(table->rules);
    rule_nesting_free(&table->nesting);
    free(table);
}

int regex_table_parse(struct map *map, const char *path, const char *text,
                      size_t len, const struct regex_engine *engine,
                      struct strbuf *err)
{
    struct regex_table *table = xcalloc(1, sizeof *table);
    struct textlines lines;
    table->engine = engine;
    table->path = path;
    table->no_regsub = (map->options & MAP_OPEN_NO_REGSUB) != 0;
    table->lines = &lines;
    int failed = rule_file_parse(&lines, path, text, len, &table->nesting, parse_line,
                                 table, err);
    table->lines = NULL;
    if (failed) {
        free_table(table);
        return -1;
    }
    map->data = table;
    return 0;
}

int regex_table_open(struct map *map, const char *path,
                     const struct regex_engine *engine, struct strbuf *err)
{
    struct strbuf text = STRBUF_INIT;
    int result = textlines_read_source(path, &text, err);
    if (result == 0)
        result = regex_table_parse(map, path, strbuf_str(&text), text.len,
                                   engine, err);
    strbuf_free(&text);
    return result;
}

/* Match one pattern of a rule; a matching error is logged and counts as
 * "the rule does not apply", as in Postfix. */
static int rule_applies(struct regex_table *table, const struct rule *rule,
                        void *re, int negate, const char *key, size_t key_len,
                        size_t *spans, size_t nspans)
{
    struct strbuf why = STRBUF_INIT;
    int matched = table->engine->match(re, key, key_len, spans, nspans, &why);
    if (matched < 0) {
        msg_warn("%s map %s, line %d: %s", table->engine->type, table->path,
                 rule->lineno, strbuf_str(&why));
        strbuf_free(&why);
        return 0;
    }
    strbuf_free(&why);
    return negate ? !matched : matched;
}

/* Write a rule's result with the groups of the match substituted. */
static void expand_result(const struct rule *rule, const char *key,
                          const size_t *spans, struct strbuf *value)
{
    for (size_t i = 0; i < rule->piece_count; i++) {
        const struct piece *piece = &rule->pieces[i];
        if (piece->group == 0) {
            strbuf_puts(value, piece->text);
            continue;
        }
        size_t start = spans[2 * piece->group], end = spans[2 * piece->group + 1];
        if (start != REGEX_SPAN_UNSET && end > start)
            strbuf_append(value, key + start, end - start);
    }
}

int regex_table_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct regex_table *table = map->data;
    size_t key_len = strlen(key);
    size_t spans[2 * (MAX_GROUP + 1)];
    for (size_t i = 0; i < table->count; i++) {
        const struct rule *rule = &table->rules[i];
        switch (rule->op) {
        case RULE_MATCH: {
            size_t nspans = rule->max_group ? rule->max_group + 1 : 0;
            if (!rule_applies(table, rule, rule->re, rule->negate, key, key_len,
                              nspans ? spans : NULL, nspans))
                continue;
            if (rule->re2 && !rule_applies(table, rule, rule->re2, rule->negate2,
                                           key, key_len, NULL, 0))
                continue;
            expand_result(rule, key, spans, value);
            return MAP_FOUND;
        }
        case RULE_IF:
            if (!rule_applies(table, rule, rule->re, rule->negate, key, key_len,
                              NULL, 0))
                i = rule->endif;
            continue;
        case RULE_ENDIF:
            continue;
        }
    }
    return MAP_NOTFOUND;
}

void regex_table_close(struct map *map)
{
    if (map->data)
        free_table(map->data);
    map->data = NULL;
}
