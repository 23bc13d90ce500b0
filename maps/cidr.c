/* cidr.c - the cidr table type: cidr_table(5) files of network/prefix
 * patterns, searched in file order, first match wins.
 *
 *     192.168.0.0/16   REJECT          a network
 *     192.168.1.1      OK              one address (/32, /128 for IPv6)
 *     !10.0.0.0/8      result          any address of the family outside it
 *     if 10.0.0.0/8 ... endif          (also "if !net"; they nest)
 * Addresses may be written inside [ ]; a network with host bits set is an
 * error, as in Postfix.  A pattern applies only to keys of its own address
 * family, negated or not: ::ffff:1.2.3.4 is an IPv6 key and does not match
 * 1.2.3.0/24 (turning mapped addresses into IPv4 ones is the caller's job,
 * as smtpd does in Postfix).  Keys that are not IP addresses match nothing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map_impl.h"
#include "rulenest.h"
#include "strbuf.h"
#include "textlines.h"
#include "xalloc.h"

enum cidr_op { CIDR_MATCH, CIDR_IF, CIDR_ENDIF };

struct cidr_rule {
    enum cidr_op op;
    int lineno;
    int negate;
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char net[16];      /* network address, host bits zero */
    unsigned prefix;            /* bits that must match */
    char *result;               /* CIDR_MATCH */
    size_t endif;               /* CIDR_IF: index of its endif */
};

struct cidr_table {
    const char *path;
    struct textlines *lines;    /* the file, while it is parsed */
    struct cidr_rule *rules;
    size_t count, alloc;
    struct rule_nesting nesting;    /* while it is parsed */
};

/* Parse an address of either family; its length in bytes, or 0. */
static size_t parse_address(const char *text, int *family, unsigned char *bytes)
{
    *family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(*family, text, bytes) != 1)
        return 0;
    return *family == AF_INET6 ? 16 : 4;
}

/* Do the first `prefix` bits of a and b agree? */
static int prefix_equal(const unsigned char *a, const unsigned char *b,
                        unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Parse "addr", "addr/len", "[addr]/len" or "[addr/len]" into a rule. */
static int parse_network(struct cidr_table *table, int lineno, const char *token,
                         struct cidr_rule *rule, struct strbuf *err)
{
    char *copy = xstrdup(token), *addr = copy, *mask = NULL;
    int status = -1;
    if (*addr == '[') {
        char *close = strchr(addr, ']');
        if (!close || (close[1] && close[1] != '/'))
            goto bad_pattern;
        if (close[1] == '/')
            mask = close + 2;
        *close = '\0';
        addr++;
    }
    char *slash = strchr(addr, '/');
    if (slash) {
        if (mask)
            goto bad_pattern;
        *slash = '\0';
        mask = slash + 1;
    }
    size_t len = parse_address(addr, &rule->family, rule->net);
    if (len == 0) {
        textlines_problem(table->lines, lineno, err,
                          "bad network address in \"%s\"", token);
        goto done;
    }
    rule->prefix = (unsigned)len * 8;
    if (mask) {
        size_t digits = strspn(mask, "0123456789");
        unsigned long bits = digits > 0 && digits < 5 ? strtoul(mask, NULL, 10) : 1000;
        if (mask[digits] != '\0' || bits > len * 8) {
            textlines_problem(table->lines, lineno, err,
                              "bad prefix length in \"%s\" (0 to %zu)",
                              token, len * 8);
            goto done;
        }
        rule->prefix = (unsigned)bits;
    }
    unsigned char network[16] = {0};
    memcpy(network, rule->net, len);
    for (unsigned bit = rule->prefix; bit < len * 8; bit++)
        network[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    if (memcmp(network, rule->net, len) != 0) {
        char shown[INET6_ADDRSTRLEN];
        inet_ntop(rule->family, network, shown, sizeof shown);
        textlines_problem(table->lines, lineno, err,
                          "non-null host address bits in \"%s\", perhaps you meant \"%s/%u\"",
                          token, shown, rule->prefix);
        goto done;
    }
    status = 0;
    goto done;
bad_pattern:
    textlines_problem(table->lines, lineno, err, "bad address pattern \"%s\"", token);
done:
    free(copy);
    return status;
}

/* A new rule at the end of the table. */
static struct cidr_rule *new_rule(struct cidr_table *table, enum cidr_op op,
                                  int lineno)
{
    if (table->count == table->alloc) {
        table->alloc = table->alloc ? 2 * table->alloc : 16;
        table->rules = xreallocarray(table->rules, table->alloc, sizeof *table->rules);
    }
    struct cidr_rule *rule = &table->rules[table->count++];
    memset(rule, 0, sizeof *rule);
    rule->op = op;
    rule->lineno = lineno;
    return rule;
}

/* Take "[!]pattern" at *pp into rule; *pp is left after the pattern. */
static int take_pattern(struct cidr_table *table, int lineno, char **pp,
                        struct cidr_rule *rule, struct strbuf *err)
{
    char *p = *pp;
    while (*p == '!' || textlines_is_blank((unsigned char)*p)) {
        if (*p == '!')
            rule->negate = !rule->negate;
        p++;
    }
    char *end = p;
    while (*end && !textlines_is_blank((unsigned char)*end))
        end++;
    if (end == p) {
        textlines_problem(table->lines, lineno, err, "missing address pattern");
        return -1;
    }
    char saved = *end;
    *end = '\0';
    int status = parse_network(table, lineno, p, rule, err);
    *end = saved;
    *pp = end;
    return status;
}

/* Skip blanks. */
static char *skip_blanks(char *p)
{
    while (textlines_is_blank((unsigned char)*p))
        p++;
    return p;
}

/* Parse one logical line into the table. */
static int parse_line(void *opaque, char *line, int lineno, struct strbuf *err)
{
    struct cidr_table *table = opaque;
    char *p;
    if (rule_keyword(line, "if", &p)) {
        struct cidr_rule *rule = new_rule(table, CIDR_IF, lineno);
        if (take_pattern(table, lineno, &p, rule, err) != 0)
            return -1;
        if (*skip_blanks(p)) {
            textlines_problem(table->lines, lineno, err,
                              "text after the \"if\" pattern (do not indent the lines between if and endif: an indented line continues the line before it)");
            return -1;
        }
        rule_nesting_open(&table->nesting, table->count - 1, lineno);
        return 0;
    }
    if (rule_keyword(line, "endif", &p)) {
        size_t if_rule;
        if (rule_nesting_close(&table->nesting, table->lines, lineno, p, err, &if_rule) != 0)
            return -1;
        new_rule(table, CIDR_ENDIF, lineno);
        table->rules[if_rule].endif = table->count - 1;
        return 0;
    }
    struct cidr_rule *rule = new_rule(table, CIDR_MATCH, lineno);
    p = line;
    if (take_pattern(table, lineno, &p, rule, err) != 0)
        return -1;
    p = skip_blanks(p);
    if (*p == '\0') {
        textlines_problem(table->lines, lineno, err,
                          "missing result after the address pattern");
        return -1;
    }
    rule->result = xstrdup(p);
    return 0;
}

/* Release everything a table holds. */
static void free_table(struct cidr_table *table)
{
    for (size_t i = 0; i < table->count; i++)
        free(table->rules[i].result);
    free(table->rules);
    rule_nesting_free(&table->nesting);
    free(table);
}

/* Parse table text (the whole file) into map->data. */
static int cidr_parse(struct map *map, const char *path, const char *text,
                      size_t len, struct strbuf *err)
{
    struct cidr_table *table = xcalloc(1, sizeof *table);
    struct textlines lines;
    table->path = path;
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

/* Read and parse the table file. */
static int cidr_open(struct map *map, const char *name, struct strbuf *err)
{
    struct strbuf text = STRBUF_INIT;
    int result = textlines_read_source(name, &text, err);
    if (result == 0)
        result = cidr_parse(map, name, strbuf_str(&text), text.len, err);
    strbuf_free(&text);
    return result;
}

/* Does the rule's pattern apply to the key?  Only within its family. */
static int rule_applies(const struct cidr_rule *rule, int family,
                        const unsigned char *key)
{
    if (rule->family != family)
        return 0;
    int inside = prefix_equal(rule->net, key, rule->prefix);
    return rule->negate ? !inside : inside;
}

/* The first rule that applies to the address in key. */
static int cidr_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct cidr_table *table = map->data;
    unsigned char address[16];
    int family;
    if (parse_address(key, &family, address) == 0)
        return MAP_NOTFOUND;
    for (size_t i = 0; i < table->count; i++) {
        const struct cidr_rule *rule = &table->rules[i];
        switch (rule->op) {
        case CIDR_MATCH:
            if (rule_applies(rule, family, address)) {
                strbuf_puts(value, rule->result);
                return MAP_FOUND;
            }
            continue;
        case CIDR_IF:
            if (!rule_applies(rule, family, address))
                i = rule->endif;
            continue;
        case CIDR_ENDIF:
            continue;
        }
    }
    return MAP_NOTFOUND;
}

/* Free the rules. */
static void cidr_close(struct map *map)
{
    if (map->data)
        free_table(map->data);
    map->data = NULL;
}

const struct map_type map_type_cidr = {
    .name = "cidr",
    .flags = MAP_PATTERN,
    .open = cidr_open,
    .lookup = cidr_lookup,
    .close = cidr_close,
    .file_suffix = "",
};
