/* config_parse.c - main.cf text to `name = value` pairs, as Postfix reads it.
 *
 * A logical line starts in column 1; lines that start with white space
 * continue it; lines whose first non-blank character is '#' and blank lines
 * are skipped (also between continuation lines).  The pieces are joined with
 * one space, trailing and leading white space removed.  A '#' elsewhere is
 * text.  Bad lines are reported with file:line and parsing goes on.
 */
#include <ctype.h>
#include <string.h>

#include "config_impl.h"
#include "log.h"
#include "strbuf.h"

int param_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return 0;
    }
    return 1;
}

/* Append "FILE, line N: " and a printable excerpt of text to report. */
static void report_line(struct strbuf *report, const char *file, int line,
                        const char *what, const char *text)
{
    struct strbuf printable = STRBUF_INIT;
    log_printable(&printable, text ? text : "", 100);
    strbuf_printf(report, "%s, line %d: %s", file, line, what);
    if (text)
        strbuf_printf(report, ": \"%s%s\"", strbuf_str(&printable),
                      strlen(text) > 100 ? "..." : "");
    strbuf_putc(report, '\n');
    strbuf_free(&printable);
}

/* Split one logical line into name and value and hand it on; 0 or 1 problem. */
static int parse_logical(struct strbuf *logical, const char *file, int line,
                         maincf_entry_fn *fn, void *ctx, struct strbuf *report)
{
    char *text = logical->s;
    char *eq = strchr(text, '=');
    if (!eq) {
        report_line(report, file, line, "missing '=' after parameter name", text);
        return 1;
    }
    char *name_end = eq;
    while (name_end > text && isspace((unsigned char)name_end[-1]))
        name_end--;
    size_t name_len = (size_t)(name_end - text);
    if (name_len == 0) {
        report_line(report, file, line, "missing parameter name", text);
        return 1;
    }
    if (!param_name_valid(text, name_len)) {
        report_line(report, file, line, "bad parameter name", text);
        return 1;
    }
    *name_end = '\0';
    char *value = eq + 1;
    while (isspace((unsigned char)*value))
        value++;
    fn(text, value, line, ctx);
    return 0;
}

/* Hand a complete logical line to parse_logical, or report it as too long;
 * the number of problems (0 or 1). */
static int finish_logical(struct strbuf *logical, int too_long, const char *file,
                          int line, maincf_entry_fn *fn, void *ctx,
                          struct strbuf *report)
{
    if (too_long) {
        report_line(report, file, line, "line too long", NULL);
        return 1;
    }
    return parse_logical(logical, file, line, fn, ctx, report);
}

int maincf_parse(const char *text, size_t len, const char *file,
                 maincf_entry_fn *fn, void *ctx, struct strbuf *report,
                 struct strbuf *warnings)
{
    struct strbuf logical = STRBUF_INIT;
    int problems = 0, line_no = 0, logical_line = 0, too_long = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (memchr(start, '\0', n)) {
            report_line(report, file, line_no, "NUL character in line (not a text file?)", NULL);
            problems++;
            continue;
        }
        /* trim the end (CR too), find the first non-blank */
        while (n > 0 && isspace((unsigned char)start[n - 1]))
            n--;
        size_t lead = 0;
        while (lead < n && isspace((unsigned char)start[lead]))
            lead++;
        if (lead == n || start[lead] == '#')
            continue;                       /* blank or comment */
        if (lead > 0) {                     /* continuation */
            if (!logical_line) {
                struct strbuf excerpt = STRBUF_INIT;
                strbuf_append(&excerpt, start, n < 200 ? n : 200);
                /* Postfix warns and skips the line */
                report_line(warnings, file, line_no, "logical line must not start with white space",
                            strbuf_str(&excerpt));
                strbuf_free(&excerpt);
                continue;
            }
            if (too_long)
                continue;
            if (logical.len + 1 + (n - lead) > MAINCF_MAX_LINE) {
                too_long = 1;
                continue;
            }
            strbuf_putc(&logical, ' ');
            strbuf_append(&logical, start + lead, n - lead);
            continue;
        }
        /* a new logical line: finish the previous one */
        if (logical_line)
            problems += finish_logical(&logical, too_long, file, logical_line, fn, ctx, report);
        strbuf_reset(&logical);
        logical_line = line_no;
        too_long = n > MAINCF_MAX_LINE;
        if (!too_long)
            strbuf_append(&logical, start, n);
    }
    if (logical_line)
        problems += finish_logical(&logical, too_long, file, logical_line, fn, ctx, report);
    strbuf_free(&logical);
    return problems;
}
