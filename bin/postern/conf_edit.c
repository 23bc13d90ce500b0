/* conf_edit.c - `postern conf -e` and `-X`: change main.cf in place.
 *
 * An edited parameter's definition (its first line and the continuation
 * lines after it) is replaced by one line "name = value"; later definitions
 * of the same name are removed; a parameter not yet in the file is
 * appended.  Comments, blank lines and the order of everything else stay.
 * The new file is written beside the old one, fsynced and renamed over it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"
#include "postern.h"
#include "strbuf.h"
#include "xalloc.h"

struct edit {
    char *name;
    char *value;        /* NULL: remove */
    int done;
};

/* Parse "name = value" / "name=value" into an edit; fatal when malformed. */
static void parse_edit(const char *arg, struct edit *edit)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        msg_fatal("missing '=' after parameter name: \"%s\"", arg);
    const char *start = arg, *end = eq, *value = eq + 1;
    while (isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    if (!param_name_valid(start, (size_t)(end - start)))
        msg_fatal("bad parameter name: \"%s\"", arg);
    while (isspace((unsigned char)*value))
        value++;
    size_t len = strlen(value);
    while (len > 0 && isspace((unsigned char)value[len - 1]))
        len--;
    if (memchr(value, '\n', len))
        msg_fatal("parameter value must be one line: \"%s\"", arg);
    edit->name = xstrndup(start, (size_t)(end - start));
    edit->value = xstrndup(value, len);
}

/* The edit for the parameter a line defines, or NULL. */
static struct edit *edit_for_line(const char *line, size_t len, struct edit *edits, int count)
{
    if (len == 0 || isspace((unsigned char)line[0]) || line[0] == '#')
        return NULL;
    size_t name_len = 0;
    while (name_len < len && !isspace((unsigned char)line[name_len]) && line[name_len] != '=')
        name_len++;
    for (int i = 0; i < count; i++)
        if (strlen(edits[i].name) == name_len && strncmp(edits[i].name, line, name_len) == 0)
            return &edits[i];
    return NULL;
}

/* Read the current file (a missing file is empty); mode gets its mode. */
static void read_current(const char *path, struct strbuf *text, mode_t *mode)
{
    *mode = 0644;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno != ENOENT)
            msg_fatal_errno("open %s", path);
        return;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) == 0)
        *mode = st.st_mode & 07777;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        strbuf_append(text, buf, n);
        if (text->len > MAINCF_MAX_BYTES)
            msg_fatal("%s: larger than %d bytes", path, MAINCF_MAX_BYTES);
    }
    if (ferror(fp))
        msg_fatal_errno("read %s", path);
    fclose(fp);
}

/* Write text to path through a temporary file and rename. */
static void replace_file(const char *path, const struct strbuf *text, mode_t mode)
{
    struct strbuf tmp = STRBUF_INIT;
    strbuf_printf(&tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp.s);
    if (fd < 0)
        msg_fatal_errno("create %s", tmp.s);
    size_t off = 0;
    while (off < text->len) {
        ssize_t n = write(fd, text->s + off, text->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            unlink(tmp.s);
            msg_fatal_errno("write %s", tmp.s);
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp.s);
        msg_fatal_errno("finish %s", tmp.s);
    }
    if (rename(tmp.s, path) != 0) {
        unlink(tmp.s);
        msg_fatal_errno("rename %s to %s", tmp.s, path);
    }
    strbuf_free(&tmp);
}

int conf_edit_main_cf(int remove, int argc, char **argv)
{
    struct edit *edits = xcalloc((size_t)argc, sizeof *edits);
    for (int i = 0; i < argc; i++) {
        if (remove) {
            if (!param_name_valid(argv[i], strlen(argv[i])))
                msg_fatal("bad parameter name: \"%s\"", argv[i]);
            edits[i].name = xstrdup(argv[i]);
        } else {
            parse_edit(argv[i], &edits[i]);
        }
    }
    const char *path = config_file();
    struct strbuf old = STRBUF_INIT, new = STRBUF_INIT;
    mode_t mode;
    read_current(path, &old, &mode);
    int skipping = 0;           /* inside a replaced definition */
    for (size_t pos = 0; pos < old.len;) {
        const char *line = old.s + pos;
        const char *nl = memchr(line, '\n', old.len - pos);
        size_t len = nl ? (size_t)(nl - line) : old.len - pos;
        pos += len + (nl != NULL);
        if (skipping && len > 0 && isspace((unsigned char)line[0]))
            continue;           /* a continuation line of the old value */
        skipping = 0;
        struct edit *edit = edit_for_line(line, len, edits, argc);
        if (edit) {
            skipping = 1;
            if (edit->value && !edit->done)
                strbuf_printf(&new, "%s = %s\n", edit->name, edit->value);
            edit->done = 1;
            continue;
        }
        strbuf_append(&new, line, len);
        strbuf_putc(&new, '\n');
    }
    for (int i = 0; i < argc; i++)
        if (edits[i].value && !edits[i].done)
            strbuf_printf(&new, "%s = %s\n", edits[i].name, edits[i].value);
    replace_file(path, &new, mode);
    for (int i = 0; i < argc; i++) {
        free(edits[i].name);
        free(edits[i].value);
    }
    free(edits);
    strbuf_free(&old);
    strbuf_free(&new);
    return 0;
}
