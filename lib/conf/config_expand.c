/* config_expand.c - $name expansion with Postfix's syntax (postconf(5)).
 *
 *   $name ${name} $(name)      the value (undefined: empty)
 *   $$                         a literal '$'
 *   ${name?value} ${name?{value}} ${name?{v1}:{v2}}   value when name is non-empty
 *   ${name:value} ${name:{value}}                     value when name is empty
 *   ${{text1} OP {text2} ? {v1} : {v2}}   OP: == != (text), < <= > >= (numbers,
 *                                         else text), <level <=level >level >=level
 *                                         (versions); without "? ..." "true" or ""
 * Values of other parameters come already expanded from the lookup callback,
 * which caches them and detects loops; the output size is bounded.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"
#include "strbuf.h"

/* Characters of a name after '$' (Postfix: letters, digits, underscore). */
static int is_name_char(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Index of the bracket closing the one at text[open], or -1. */
static long find_close(const char *text, size_t len, size_t open)
{
    char opener = text[open], closer = opener == '{' ? '}' : ')';
    int depth = 0;
    for (size_t i = open; i < len; i++) {
        if (text[i] == opener)
            depth++;
        else if (text[i] == closer && --depth == 0)
            return (long)i;
    }
    return -1;
}

/* Skip white space in text[*pos..len). */
static void skip_space(const char *text, size_t len, size_t *pos)
{
    while (*pos < len && isspace((unsigned char)text[*pos]))
        (*pos)++;
}

/* Read "{...}" at *pos: the inner text without leading white space.  0, or -1 when absent. */
static int read_braced(const char *text, size_t len, size_t *pos,
                       const char **inner, size_t *inner_len)
{
    skip_space(text, len, pos);
    if (*pos >= len || text[*pos] != '{')
        return -1;
    long close = find_close(text, len, *pos);
    if (close < 0)
        return -1;
    size_t start = *pos + 1, end = (size_t)close;
    while (start < end && isspace((unsigned char)text[start]))
        start++;
    *inner = text + start;          /* Postfix skips leading space only */
    *inner_len = end - start;
    *pos = (size_t)close + 1;
    return 0;
}

static int expand_span(const char *text, size_t len, expand_lookup_fn *lookup, void *ctx,
                       struct strbuf *out, struct strbuf *err, int depth);

/* Expand a piece of text into a fresh string (caller frees). */
static char *expand_piece(const char *text, size_t len, expand_lookup_fn *lookup, void *ctx,
                          struct strbuf *err, int depth)
{
    struct strbuf piece = STRBUF_INIT;
    if (expand_span(text, len, lookup, ctx, &piece, err, depth) != 0) {
        strbuf_free(&piece);
        return NULL;
    }
    strbuf_str(&piece);
    return piece.s ? strbuf_detach(&piece) : calloc(1, 1);
}

/* Compare dotted version numbers ("3.6" vs "2"): <0, 0, >0; -2 when malformed. */
static int compare_levels(const char *a, const char *b)
{
    while (*a || *b) {
        char *end_a, *end_b;
        long x = *a ? strtol(a, &end_a, 10) : 0, y = *b ? strtol(b, &end_b, 10) : 0;
        if (*a && end_a == a)
            return -2;
        if (*b && end_b == b)
            return -2;
        if (x != y)
            return x < y ? -1 : 1;
        a = *a ? end_a + (*end_a == '.') : a;
        b = *b ? end_b + (*end_b == '.') : b;
        if ((*a && !isdigit((unsigned char)*a)) || (*b && !isdigit((unsigned char)*b)))
            return -2;
    }
    return 0;
}

/* Evaluate "text1 OP text2" (both expanded): 1 true, 0 false, -1 error. */
static int evaluate_relation(const char *left, const char *op, size_t op_len,
                             const char *right, struct strbuf *err)
{
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">=",
                                      "<level", "<=level", ">level", ">=level"};
    int which = -1;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strlen(ops[i]) == op_len && strncmp(ops[i], op, op_len) == 0)
            which = (int)i;
    if (which < 0) {
        strbuf_printf(err, "unknown operator \"%.*s\" in ${{...}}", (int)op_len, op);
        return -1;
    }
    if (which == 0)
        return strcmp(left, right) == 0;
    if (which == 1)
        return strcmp(left, right) != 0;
    int cmp;
    if (which >= 6) {
        cmp = compare_levels(left, right);
        if (cmp == -2) {
            strbuf_printf(err, "bad compatibility level in ${{%s} %.*s {%s}}", left,
                          (int)op_len, op, right);
            return -1;
        }
    } else {
        char *end_l, *end_r;
        long long l = strtoll(left, &end_l, 10), r = strtoll(right, &end_r, 10);
        if (!*left || *end_l || !*right || *end_r)
            cmp = strcmp(left, right);  /* not numbers: as text, as Postfix */
        else
            cmp = l < r ? -1 : l > r;
    }
    switch (which) {
    case 2: case 6: return cmp < 0;
    case 3: case 7: return cmp <= 0;
    case 4: case 8: return cmp > 0;
    default:        return cmp >= 0;   /* 5, 9 */
    }
}

/* ${{text1} OP {text2} ? {v1} : {v2}}: the body between the outer braces. */
static int expand_relation(const char *body, size_t len, expand_lookup_fn *lookup, void *ctx,
                           struct strbuf *out, struct strbuf *err, int depth)
{
    size_t pos = 0, l_len, r_len, t_len, f_len = 0;
    const char *l_text, *r_text, *t_text, *f_text = "";
    if (read_braced(body, len, &pos, &l_text, &l_len) != 0)
        goto syntax;
    skip_space(body, len, &pos);
    size_t op_start = pos;
    while (pos < len && !isspace((unsigned char)body[pos]) && body[pos] != '{')
        pos++;
    size_t op_len = pos - op_start;
    if (read_braced(body, len, &pos, &r_text, &r_len) != 0)
        goto syntax;
    skip_space(body, len, &pos);
    if (pos >= len) {                   /* no "? ...": the result is "true" or "" */
        t_text = "true";
        t_len = 4;
    } else if (body[pos++] != '?' || read_braced(body, len, &pos, &t_text, &t_len) != 0) {
        goto syntax;
    }
    skip_space(body, len, &pos);
    if (pos < len && body[pos] == ':') {
        pos++;
        if (read_braced(body, len, &pos, &f_text, &f_len) != 0)
            goto syntax;
        skip_space(body, len, &pos);
    }
    if (pos != len)
        goto syntax;
    char *left = expand_piece(l_text, l_len, lookup, ctx, err, depth);
    char *right = left ? expand_piece(r_text, r_len, lookup, ctx, err, depth) : NULL;
    int truth = right ? evaluate_relation(left, body + op_start, op_len, right, err) : -1;
    free(left);
    free(right);
    if (truth < 0)
        return -1;
    return truth ? expand_span(t_text, t_len, lookup, ctx, out, err, depth)
                 : expand_span(f_text, f_len, lookup, ctx, out, err, depth);
syntax:
    strbuf_printf(err, "syntax error in \"${%.*s}\": expected ${{text} OP {text} ? {value} : {value}}",
                  (int)(len > 200 ? 200 : len), body);
    return -1;
}

/* ${name?...} / ${name:...}: rest is the text after '?' or ':'. */
static int expand_conditional(const char *value, char kind, const char *rest, size_t len,
                              expand_lookup_fn *lookup, void *ctx, struct strbuf *out,
                              struct strbuf *err, int depth)
{
    int nonempty = value && *value;
    size_t pos = 0;
    skip_space(rest, len, &pos);
    if (pos >= len || rest[pos] != '{') {      /* ${name?value}: the text as is */
        if ((kind == '?') == nonempty)
            return expand_span(rest, len, lookup, ctx, out, err, depth);
        return 0;
    }
    const char *first, *second = NULL;
    size_t first_len, second_len = 0;
    if (read_braced(rest, len, &pos, &first, &first_len) != 0) {
        strbuf_printf(err, "unbalanced '{' in \"%.*s\"", (int)(len > 200 ? 200 : len), rest);
        return -1;
    }
    skip_space(rest, len, &pos);
    if (pos < len && rest[pos] == ':') {
        pos++;
        skip_space(rest, len, &pos);
        if (pos < len && rest[pos] == '{') {
            if (read_braced(rest, len, &pos, &second, &second_len) != 0) {
                strbuf_printf(err, "unbalanced '{' in \"%.*s\"", (int)(len > 200 ? 200 : len), rest);
                return -1;
            }
            skip_space(rest, len, &pos);
        } else {
            second = rest + pos;
            second_len = len - pos;
            pos = len;
        }
    }
    if (pos != len) {
        strbuf_printf(err, "unexpected text after '}' in \"%.*s\"", (int)(len > 200 ? 200 : len), rest);
        return -1;
    }
    if ((kind == '?') == nonempty)
        return expand_span(first, first_len, lookup, ctx, out, err, depth);
    return second ? expand_span(second, second_len, lookup, ctx, out, err, depth) : 0;
}

/* A ${...} or $(...) reference; body is the text between the brackets. */
static int expand_braced(const char *body, size_t len, expand_lookup_fn *lookup, void *ctx,
                         struct strbuf *out, struct strbuf *err, int depth)
{
    if (len > 0 && body[0] == '{')
        return expand_relation(body, len, lookup, ctx, out, err, depth);
    size_t start = 0;                   /* white space around the name is allowed */
    skip_space(body, len, &start);
    size_t name_end = start;
    while (name_end < len && is_name_char(body[name_end]))
        name_end++;
    size_t after = name_end;
    skip_space(body, len, &after);
    if (name_end == start) {
        strbuf_printf(err, "empty parameter name in \"${%.*s}\"", (int)(len > 200 ? 200 : len), body);
        return -1;
    }
    if (after < len && body[after] != '?' && body[after] != ':') {
        strbuf_printf(err, "bad parameter name in \"${%.*s}\"", (int)(len > 200 ? 200 : len), body);
        return -1;
    }
    char *name = strndup(body + start, name_end - start);
    if (!name)
        return strbuf_puts(err, "out of memory"), -1;
    const char *value = NULL;
    int result = lookup(name, ctx, &value, err);
    free(name);
    if (result != 0)
        return -1;
    if (after == len) {
        if (value)
            strbuf_puts(out, value);
        return 0;
    }
    return expand_conditional(value, body[after], body + after + 1, len - after - 1,
                              lookup, ctx, out, err, depth);
}

/* Expand text[0..len) into out. */
static int expand_span(const char *text, size_t len, expand_lookup_fn *lookup, void *ctx,
                       struct strbuf *out, struct strbuf *err, int depth)
{
    if (++depth > EXPAND_MAX_DEPTH) {
        strbuf_puts(err, "${...} nested too deeply");
        return -1;
    }
    size_t pos = 0;
    while (pos < len) {
        const char *dollar = memchr(text + pos, '$', len - pos);
        size_t plain = dollar ? (size_t)(dollar - (text + pos)) : len - pos;
        strbuf_append(out, text + pos, plain);
        pos += plain;
        if (pos >= len)
            break;
        pos++;                                  /* the '$' */
        if (pos < len && text[pos] == '$') {
            strbuf_putc(out, '$');
            pos++;
        } else if (pos < len && (text[pos] == '{' || text[pos] == '(')) {
            long close = find_close(text, len, pos);
            if (close < 0) {
                strbuf_printf(err, "unterminated \"$%c\" in \"%.*s\"", text[pos],
                              (int)(len - pos + 1 > 200 ? 200 : len - pos + 1), text + pos - 1);
                return -1;
            }
            if (expand_braced(text + pos + 1, (size_t)close - pos - 1, lookup, ctx, out, err, depth) != 0)
                return -1;
            pos = (size_t)close + 1;
        } else if (pos < len && is_name_char(text[pos])) {
            size_t start = pos;
            while (pos < len && is_name_char(text[pos]))
                pos++;
            if (expand_braced(text + start, pos - start, lookup, ctx, out, err, depth) != 0)
                return -1;
        } else {
            strbuf_printf(err, "'$' without a parameter name in \"%.*s\" (write $$ for a '$')",
                          (int)(len > 200 ? 200 : len), text);
            return -1;
        }
        if (out->len > EXPAND_MAX_BYTES) {
            strbuf_printf(err, "value longer than %d bytes after expansion", EXPAND_MAX_BYTES);
            return -1;
        }
    }
    return 0;
}

int expand_text(const char *text, expand_lookup_fn *lookup, void *ctx,
                struct strbuf *out, struct strbuf *err)
{
    return expand_span(text, strlen(text), lookup, ctx, out, err, 0);
}

void expand_references(const char *text, void (*fn)(const char *name, size_t len, void *ctx),
                       void *ctx)
{
    for (const char *p = text; *p; p++) {
        if (*p != '$')
            continue;
        if (p[1] == '$') {
            p++;
            continue;
        }
        const char *start = p + 1;
        if (*start == '{' || *start == '(')
            start++;
        const char *end = start;
        while (is_name_char(*end))
            end++;
        if (end > start)
            fn(start, (size_t)(end - start), ctx);
        p = end - 1;
    }
}
