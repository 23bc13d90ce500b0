/* mastercf.c - master.cf's service lines (see mastercf.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mastercf.h"
#include "strbuf.h"
#include "strlist.h"
#include "xalloc.h"

#define MASTER_LINE_MAX 65536

/* Split an entry into words: white space separates, "{ ... }" is one word
 * (outer braces and the spaces next to them removed).  Returns the count,
 * or -1 with err set for an unbalanced brace. */
static int split_words(char *text, char ***words_out, struct strbuf *err)
{
    char **words = NULL;
    size_t count = 0;
    char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *start = p, *end;
        if (*p == '{') {
            int depth = 0;
            for (end = p; *end; end++) {
                if (*end == '{')
                    depth++;
                else if (*end == '}' && --depth == 0)
                    break;
            }
            if (!*end) {
                strbuf_puts(err, "missing '}'");
                for (size_t i = 0; i < count; i++)
                    free(words[i]);
                free(words);
                return -1;
            }
            start = p + 1;
            p = end + 1;
            while (*start == ' ' || *start == '\t' || *start == '\n')
                start++;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
                end--;
        } else {
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
            end = p;
        }
        words = xreallocarray(words, count + 2, sizeof *words);
        words[count++] = xstrndup(start, (size_t)(end - start));
        words[count] = NULL;
    }
    *words_out = words;
    return (int)count;
}

/* Turn one entry's text into a service; 0, or -1 with err set. */
static int add_entry(struct master_table *table, char *text, int line, struct strbuf *err)
{
    char **words;
    int n = split_words(text, &words, err);
    if (n < 0)
        return -1;
    if (n < 8) {
        strbuf_printf(err, "%d fields, expected at least 8 (service type private "
                      "unpriv chroot wakeup maxproc command)", n);
        for (int i = 0; i < n; i++)
            free(words[i]);
        free(words);
        return -1;
    }
    table->service = xreallocarray(table->service, table->count + 1, sizeof *table->service);
    struct master_service *s = &table->service[table->count++];
    memset(s, 0, sizeof *s);
    s->service = words[0];
    s->type = words[1];
    free(words[2]);
    free(words[3]);
    free(words[4]);
    free(words[5]);
    s->maxproc = words[6];
    s->command = words[7];
    s->arg_count = (size_t)n - 8;
    s->args = xcalloc(s->arg_count + 1, sizeof *s->args);
    for (size_t i = 0; i < s->arg_count; i++)
        s->args[i] = words[8 + i];
    s->line = line;
    free(words);
    return 0;
}

/* Read entries from an open stream; `path` names it in messages. */
static int read_stream(FILE *f, const char *path, struct master_table *table,
                       struct strbuf *err)
{
    struct strbuf entry = STRBUF_INIT, problem = STRBUF_INIT;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    int lineno = 0, entry_line = 0, rc = 0;
    while (rc == 0 && (len = getline(&line, &size, f)) >= 0) {
        lineno++;
        if (len > MASTER_LINE_MAX || (size_t)len != strlen(line)) {
            strbuf_printf(err, "%s, line %d: line too long or holding a NUL byte", path, lineno);
            rc = -1;
            break;
        }
        const char *p = line + strspn(line, " \t\r\n");
        if (*p == '#' || *p == '\0')
            continue;                       /* comments may sit inside an entry */
        if (line[0] == ' ' || line[0] == '\t') {
            if (entry.len == 0) {
                strbuf_printf(err, "%s, line %d: continuation line without an entry before it",
                              path, lineno);
                rc = -1;
                break;
            }
            strbuf_putc(&entry, ' ');
            strbuf_puts(&entry, line);
            continue;
        }
        if (entry.len && add_entry(table, entry.s, entry_line, &problem) < 0) {
            strbuf_printf(err, "%s, line %d: %s", path, entry_line, problem.s);
            rc = -1;
            break;
        }
        strbuf_set(&entry, line);
        entry_line = lineno;
    }
    if (rc == 0 && ferror(f)) {
        strbuf_printf(err, "read %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && entry.len && add_entry(table, entry.s, entry_line, &problem) < 0) {
        strbuf_printf(err, "%s, line %d: %s", path, entry_line, problem.s);
        rc = -1;
    }
    free(line);
    strbuf_free(&entry);
    strbuf_free(&problem);
    if (rc < 0)
        master_free(table);
    return rc;
}

int master_read(const char *path, int allow_missing, struct master_table *table,
                struct strbuf *err)
{
    table->service = NULL;
    table->count = 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT && allow_missing)
            return 0;
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = read_stream(f, path, table, err);
    fclose(f);
    return rc;
}

int master_parse(const char *name, const char *text, size_t len, struct master_table *table,
                 struct strbuf *err)
{
    table->service = NULL;
    table->count = 0;
    if (len == 0)
        return 0;
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        strbuf_printf(err, "%s: %s", name, strerror(errno));
        return -1;
    }
    int rc = read_stream(f, name, table, err);
    fclose(f);
    return rc;
}

void master_service_overrides(const struct master_service *service, struct strlist *out)
{
    for (size_t i = 0; i < service->arg_count; i++) {
        const char *arg = service->args[i];
        if (strcmp(arg, "-o") == 0 && i + 1 < service->arg_count)
            strlist_add(out, service->args[++i]);
        else if (strncmp(arg, "-o", 2) == 0 && arg[2])
            strlist_add(out, arg + 2);
    }
}

long master_maxproc(const struct master_service *service, long default_value)
{
    if (strcmp(service->maxproc, "-") == 0)
        return default_value;
    char *end;
    errno = 0;
    long n = strtol(service->maxproc, &end, 10);
    if (!*service->maxproc || *end || errno || n < 0)
        return -1;
    return n;
}

void master_service_free(struct master_service *s)
{
    free(s->service);
    free(s->type);
    free(s->maxproc);
    free(s->command);
    for (size_t j = 0; j < s->arg_count; j++)
        free(s->args[j]);
    free(s->args);
    memset(s, 0, sizeof *s);
}

void master_free(struct master_table *table)
{
    for (size_t i = 0; i < table->count; i++)
        master_service_free(&table->service[i]);
    free(table->service);
    table->service = NULL;
    table->count = 0;
}
