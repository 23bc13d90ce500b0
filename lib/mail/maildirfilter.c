/* maildirfilter.c - the VDA patch's per-user header filter for Maildir
 * deliveries (maildirfilter.h): the header string, the table's value as
 * the filter file, and the verdict of the first matching rule. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "maildirfilter.h"
#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

#define MESSAGE_HEAD_READ 65536     /* message bytes read to find the header */
#define STAMP_READ 127              /* bytes of the file read for its stamp */

/* Append one header line of n bytes (without its newline), at most
 * MAILDIR_FILTER_LINE_MAX of them, a trailing CR dropped. */
static void put_line(struct strbuf *out, const char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > MAILDIR_FILTER_LINE_MAX)
        n = MAILDIR_FILTER_LINE_MAX;
    strbuf_append(out, line, n);
}

void maildir_filter_header(const char *text, size_t len, struct strbuf *out)
{
    strbuf_reset(out);
    size_t pos = 0;
    int first = 1, last_empty = 0;
    while (pos < len && !last_empty && out->len < MAILDIR_FILTER_HEADER_MAX) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *line = text + pos;
        pos += n + (nl ? 1 : 0);
        size_t start = out->len;
        if (!first && n > 0 && (line[0] == ' ' || line[0] == '\t')) {
            /* a continuation: joined to its line, a TAB made a space */
            put_line(out, line, n);
            if (out->s[start] == '\t')
                out->s[start] = ' ';
        } else {
            if (!first)
                strbuf_putc(out, '\n');
            put_line(out, line, n);
        }
        last_empty = n == 0 || (n == 1 && line[0] == '\r');
        first = 0;
    }
    for (size_t i = 0; i < out->len; i++)
        out->s[i] = (char)tolower((unsigned char)out->s[i]);
}

int maildir_filter_table_text(const char *value, struct strbuf *text, long long *stamp)
{
    strbuf_reset(text);
    for (const char *p = value; *p && text->len < MAILDIR_FILTER_TABLE_MAX; p++)
        if (*p != '\r')
            strbuf_putc(text, *p);
    if (text->len < 4 || strncmp(text->s, "# M", 3) != 0)
        return 0;
    *stamp = strtoll(text->s + 3, NULL, 10);
    if (*stamp == 0)
        return 0;           /* as the patch: no stamp, no filter */
    /* one rule per line: a "/^" begins a rule, the byte before it (the
     * comma that joins SQL rows) ends the one before */
    for (size_t i = 4; i + 1 < text->len; i++)
        if (text->s[i] == '/' && text->s[i + 1] == '^')
            text->s[i - 1] = '\n';
    if (text->s[text->len - 1] != '\n')
        strbuf_putc(text, '\n');
    return 1;
}

/* The stamp at the start of the filter file ("# M" and a number); 0 when
 * it has none or cannot be read. */
static long long file_stamp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    char head[STAMP_READ + 1];
    ssize_t n = read_full(fd, head, STAMP_READ);
    close(fd);
    if (n < 4)
        return 0;
    head[n] = '\0';
    return strncmp(head, "# M", 3) == 0 ? strtoll(head + 3, NULL, 10) : 0;
}

/* Write the table's filter text into the filter file (a temporary name in
 * the Maildir, then renamed over it); 0 or -1 (logged). */
static int write_filter_file(const char *dir, const char *path, const struct strbuf *text)
{
    struct strbuf tmp = STRBUF_INIT;
    strbuf_printf(&tmp, "%s.%s.%ld.tmp", dir, MAILDIR_FILTER_FILE, (long)getpid());
    int result = -1;
    int fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        msg_warn_errno("cannot create filter file %s", tmp.s);
    } else {
        int ok = write_all(fd, text->s, text->len) == 0;
        if (close(fd) != 0)
            ok = 0;
        if (!ok || rename(tmp.s, path) != 0) {
            msg_warn_errno("cannot write filter file %s", path);
            unlink(tmp.s);
        } else {
            result = 0;
        }
    }
    strbuf_free(&tmp);
    return result;
}

/* Compiled filter tables by path, for a runner that serves many
 * deliveries (reuse mode): each is compiled again only when its file
 * changed (map_changed), as the VDA patch keeps its dictionaries. */
#define FILTER_CACHE_SIZE 8
static struct {
    char *path;
    struct map *map;
} filter_cache[FILTER_CACHE_SIZE];
static unsigned filter_cache_next;

/* The regexp table of the filter file `path` (which exists); NULL with
 * err set when it cannot be read as one. */
static struct map *filter_table(const char *path, struct strbuf *err)
{
    size_t slot = FILTER_CACHE_SIZE;
    for (size_t i = 0; i < FILTER_CACHE_SIZE; i++) {
        if (!filter_cache[i].path || strcmp(filter_cache[i].path, path) != 0)
            continue;
        if (!map_changed(filter_cache[i].map))
            return filter_cache[i].map;
        map_close(filter_cache[i].map);
        free(filter_cache[i].path);
        filter_cache[i].path = NULL;
        filter_cache[i].map = NULL;
        slot = i;
        break;
    }
    struct strbuf spec = STRBUF_INIT;
    strbuf_printf(&spec, "regexp:%s", path);
    struct map *map = map_open(spec.s, err);
    strbuf_free(&spec);
    if (!map)
        return NULL;
    if (slot == FILTER_CACHE_SIZE) {
        slot = filter_cache_next++ % FILTER_CACHE_SIZE;
        map_close(filter_cache[slot].map);
        free(filter_cache[slot].path);
    }
    filter_cache[slot].path = xstrdup(path);
    filter_cache[slot].map = map;
    return map;
}

/* A MOVE target as a Maildir++ folder name: blanks, '/' and ".." cut
 * out, one '.' in front.  0 when nothing usable is left (the inbox). */
static int folder_name(const char *arg, struct strbuf *out)
{
    struct strbuf cut = STRBUF_INIT;
    for (const char *p = arg; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '/')
            strbuf_putc(&cut, *p);
    strbuf_reset(out);
    for (const char *p = strbuf_str(&cut); *p;) {
        if (p[0] == '.' && p[1] == '.') {
            p += 2;
            continue;
        }
        strbuf_putc(out, *p++);
    }
    strbuf_free(&cut);
    if (out->len == 0 || out->s[0] != '.') {
        struct strbuf dotted = STRBUF_INIT;
        strbuf_printf(&dotted, ".%s", out->s ? out->s : "");
        strbuf_set(out, dotted.s);
        strbuf_free(&dotted);
    }
    return out->len > 1 && out->len <= 255;
}

/* The verdict of a rule's result "ACTION text". */
static void verdict_of(const char *dir, const char *result, int allow_move,
                       struct maildir_filter_verdict *verdict)
{
    size_t n = strcspn(result, " \t");
    const char *arg = result + n;
    arg += strspn(arg, " \t");
    verdict->action = MAILDIR_FILTER_DELIVER;
    strbuf_reset(&verdict->text);
#define IS(word) (n == sizeof(word) - 1 && strncasecmp(result, word, n) == 0)
    if (IS("REJECT")) {
        verdict->action = MAILDIR_FILTER_REJECT;
        strbuf_set(&verdict->text, arg);
    } else if (IS("DISCARD")) {
        verdict->action = MAILDIR_FILTER_DISCARD;
        strbuf_set(&verdict->text, arg);
    } else if (IS("MOVE")) {
        if (allow_move && folder_name(arg, &verdict->text))
            verdict->action = MAILDIR_FILTER_MOVE;
        else if (!allow_move)
            msg_info("%s%s: MOVE needs virtual_maildir_extended = yes: delivered to the inbox",
                     dir, MAILDIR_FILTER_FILE);
    } else if (IS("WARN") || IS("LOG")) {
        msg_warn("deliver_maildir: header check warning: %s", arg);
    } else if (IS("INFO")) {
        msg_info("deliver_maildir: header check info: %s", arg);
    }
#undef IS
}

int maildir_filter_apply(const char *dir, const struct maildir_filter *filter,
                         const struct strbuf *prefix, int fd, off_t offset, off_t length,
                         struct maildir_filter_verdict *verdict, struct strbuf *err)
{
    verdict->action = MAILDIR_FILTER_DELIVER;
    strbuf_reset(&verdict->text);
    if (filter->file_dir)
        dir = filter->file_dir;
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s%s", dir, MAILDIR_FILTER_FILE);
    int result = 0;
    if (filter->from_table) {
        /* the table's value is the filter; the file follows it */
        struct strbuf text = STRBUF_INIT;
        long long stamp = 0;
        int use = filter->table_value
                  && maildir_filter_table_text(filter->table_value, &text, &stamp);
        if (use && file_stamp(path.s) != stamp && write_filter_file(dir, path.s, &text) != 0)
            use = 0;
        strbuf_free(&text);
        if (!use)
            goto out;
    }
    struct stat st;
    if (lstat(path.s, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;               /* no filter (a symlink is none either) */

    struct strbuf head = STRBUF_INIT, header = STRBUF_INIT, err_open = STRBUF_INIT;
    strbuf_append(&head, prefix->s ? prefix->s : "", prefix->len);
    size_t want = length < MESSAGE_HEAD_READ ? (size_t)length : MESSAGE_HEAD_READ;
    strbuf_grow(&head, want + 1);
    ssize_t got = pread_retry(fd, head.s + head.len, want, offset);
    if (got < 0) {
        strbuf_printf(err, "read the message: %s", strerror(errno));
        result = -1;
    } else {
        head.len += (size_t)got;
        head.s[head.len] = '\0';
        maildir_filter_header(head.s, head.len, &header);
        struct strbuf value = STRBUF_INIT;
        struct map *map = filter_table(path.s, &err_open);
        if (!map)
            msg_warn("%s: %s: delivered without the filter", path.s, strbuf_str(&err_open));
        else if (map_lookup(map, header.s, &value) == MAP_FOUND)
            verdict_of(dir, value.s, filter->allow_move, verdict);
        strbuf_free(&value);
    }
    strbuf_free(&head);
    strbuf_free(&header);
    strbuf_free(&err_open);
out:
    strbuf_free(&path);
    return result;
}
