/* map_build.c - write NAME.cdb from a source file (see map_build.h). */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strlist.h"
#include "log.h"
#include "map_build.h"
#include "maptext.h"
#include "strbuf.h"
#include "strtable.h"
#include "textlines.h"
#include "xalloc.h"

int map_build_type_ok(const char *type)
{
    return strcmp(type, "hash") == 0 || strcmp(type, "btree") == 0
        || strcmp(type, "cdb") == 0;
}

struct collect_ctx {
    struct strtable *entries;
    const char *file;
    unsigned flags;
};

/* Keep an entry; handle a repeated key as the flags say. */
static void collect_entry(const char *key, const char *value, int lineno, void *ctx)
{
    struct collect_ctx *collect = ctx;
    int replace = (collect->flags & MAP_BUILD_DUP_REPLACE) != 0;
    if (!strtable_put(collect->entries, key, value, replace)
        && !(collect->flags & (MAP_BUILD_DUP_REPLACE | MAP_BUILD_DUP_QUIET)))
        msg_warn("%s, line %d: duplicate entry: \"%s\"", collect->file, lineno, key);
}

/* fsync the directory that holds path, so a rename in it is on disk. */
static int sync_directory(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int result = fsync(fd);
    close(fd);
    return result;
}

/* Write every entry to an open temporary file; 0 or -1 with errno. */
static int write_cdb(int fd, struct strtable *entries, unsigned flags)
{
    struct cdb_make make;
    if (cdb_make_start(&make, fd) != 0)
        return -1;
    unsigned extra = (flags & MAP_BUILD_WITH_NUL) ? 1 : 0;
    for (size_t i = 0; i < strtable_count(entries); i++) {
        const char *key = strtable_key(entries, i);
        const char *value = strtable_value(entries, i);
        size_t klen = strlen(key) + extra, vlen = strlen(value) + extra;
        if (klen >= 0x7fffffff || vlen >= 0x7fffffff) {
            errno = EFBIG;
            return -1;
        }
        if (cdb_make_add(&make, key, (unsigned)klen, value, (unsigned)vlen) != 0)
            return -1;
    }
    return cdb_make_finish(&make);
}

/* Fill the temporary file, give it its mode and owner, and fsync it.
 * NULL, or the step that failed (errno set). */
static const char *fill_temp(int fd, struct strtable *entries, unsigned flags,
                             mode_t mode, const struct stat *source)
{
    if (write_cdb(fd, entries, flags) != 0)
        return "write";
    if (fchmod(fd, mode) != 0)
        return "chmod";
    if (geteuid() == 0 && fchown(fd, source->st_uid, source->st_gid) != 0)
        return "chown";
    if (fsync(fd) != 0)
        return "fsync";
    return NULL;
}

/* Write NAME.cdb through a temporary file; 0 or -1 with err set. */
static int install_cdb(const char *name, const struct stat *source,
                       struct strtable *entries, unsigned flags, struct strbuf *err)
{
    struct strbuf final = STRBUF_INIT, temp = STRBUF_INIT;
    strbuf_printf(&final, "%s.cdb", name);
    strbuf_printf(&temp, "%s.cdb.XXXXXX", name);
    int fd = mkostemp(temp.s, O_CLOEXEC);
    if (fd < 0) {
        strbuf_printf(err, "create a temporary file for %s: %s", final.s, strerror(errno));
        strbuf_free(&final);
        strbuf_free(&temp);
        return -1;
    }
    mode_t mode = source->st_mode & 0777;
    if (flags & MAP_BUILD_PLAIN_MODE) {
        mode_t mask = umask(022);
        umask(mask);
        mode = 0644 & ~mask;
    }
    const char *failed = fill_temp(fd, entries, flags, mode, source);
    int saved = errno;
    if (close(fd) != 0 && !failed) {
        failed = "close";
        saved = errno;
    }
    if (!failed && rename(temp.s, final.s) != 0) {
        failed = "rename";
        saved = errno;
    }
    int ok = !failed;
    if (!ok) {
        strbuf_printf(err, "%s %s: %s", failed, temp.s, strerror(saved));
        unlink(temp.s);
    } else if (sync_directory(final.s) != 0) {
        msg_warn_errno("fsync the directory of %s", final.s);
    }
    strbuf_free(&final);
    strbuf_free(&temp);
    return ok ? 0 : -1;
}

long map_build(const char *spec, const char *default_type, unsigned flags,
               struct strbuf *err)
{
    while (strncmp(spec, "proxy:", 6) == 0)
        spec += 6;
    const char *colon = strchr(spec, ':');
    char *type = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(default_type);
    const char *name = colon ? colon + 1 : spec;
    if (!map_build_type_ok(type)) {
        strbuf_printf(err, "%s:%s: table type \"%s\" is not built by postern map "
                      "(only hash, btree and cdb are; the others are read as they are)",
                      type, name, type);
        free(type);
        return -1;
    }
    free(type);
    if (!*name) {
        strbuf_printf(err, "\"%s\": no file name", spec);
        return -1;
    }
    struct strbuf text = STRBUF_INIT;
    if (textlines_read_file(name, &text, err) != 0) {
        strbuf_free(&text);
        return -1;
    }
    struct stat source;
    if (stat(name, &source) != 0) {
        strbuf_printf(err, "stat %s: %s", name, strerror(errno));
        strbuf_free(&text);
        return -1;
    }
    struct collect_ctx collect = {strtable_new(), name, flags};
    unsigned parse_flags = (flags & MAP_BUILD_KEEP_CASE) ? MAPTEXT_KEEP_CASE : 0;
    int bad = (flags & MAP_BUILD_ALIASES)
        ? aliases_parse(name, text.s, text.len, parse_flags, collect_entry, &collect, err)
        : maptext_parse(name, text.s, text.len, parse_flags, collect_entry, &collect, err);
    strbuf_free(&text);
    long count = (long)strtable_count(collect.entries);
    if (bad) {
        strbuf_printf(err, "%s: %d bad line%s; %s.cdb not changed\n", name, bad,
                      bad == 1 ? "" : "s", name);
        count = -1;
    } else if (install_cdb(name, &source, collect.entries, flags, err) != 0) {
        count = -1;
    }
    strtable_free(collect.entries);
    strbuf_trim_end(err);
    return count;
}

int alias_build_database(const char *alias_database, const char *default_type,
                         struct strbuf *err)
{
    struct strlist tables = STRLIST_INIT;
    if (list_split(alias_database, &tables, err) != 0)
        return -1;
    int result = 0;
    for (size_t i = 0; i < tables.count; i++) {
        struct strbuf problems = STRBUF_INIT;
        if (map_build(tables.item[i], default_type, MAP_BUILD_ALIASES, &problems) < 0) {
            if (err->len)
                strbuf_putc(err, '\n');
            strbuf_append(err, problems.s, problems.len);
            result = -1;
        }
        strbuf_free(&problems);
    }
    strlist_free(&tables);
    return result;
}
