/* cache.c - the verify service's cache (address_verify_map): entries in
 * memory, keyed by the address in lower case, each in Postfix's form
 * "STATUS:PROBED:UPDATED:TEXT" (verify_proto.h).  With a table named
 * (Postfix's default btree:$data_directory/verify_cache) the cache
 * survives a restart: whatever the type says, postern keeps it in a text
 * journal at the table's path, one line "ADDRESS TAB ENTRY" per change
 * (an empty ENTRY removes the address), appended as changes happen and
 * rewritten, without the expired entries, at start and every
 * address_verify_cache_cleanup_interval.  An empty address_verify_map
 * keeps the cache in memory only, as in Postfix. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "linereader.h"
#include "log.h"
#include "strbuf.h"
#include "strtable.h"
#include "verify.h"
#include "verify_proto.h"
#include "xalloc.h"

static struct strtable *table;
static char *journal_path;          /* NULL: in memory only */
static char *cache_spec;            /* address_verify_map, for log lines */
static int journal_fd = -1;
static size_t live;                 /* entries that have a value */

/* The key of an address: lower case, as Postfix's tables fold it. */
static void make_key(const char *address, struct strbuf *key)
{
    strbuf_reset(key);
    for (const char *p = address; *p; p++)
        strbuf_putc(key, tolower((unsigned char)*p));
}

/* Set key to value (NULL: remove) in memory only. */
static void table_set(const char *key, const char *value)
{
    const char *old = strtable_get(table, key);
    if (old && !value)
        live--;
    else if (!old && value)
        live++;
    strtable_put(table, key, value, 1);
}

/* Append one journal line; a failure costs only what a restart forgets. */
static void journal_append(const char *key, const char *value)
{
    if (journal_fd < 0)
        return;
    struct strbuf line = STRBUF_INIT;
    strbuf_printf(&line, "%s\t%s\n", key, value ? value : "");
    if (write_all(journal_fd, line.s, line.len) < 0)
        msg_warn_errno("verify service: append to %s", journal_path);
    strbuf_free(&line);
}

/* Replay the journal into the table; lines that do not parse are skipped. */
static void journal_read(void)
{
    int fd = open(journal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            msg_warn_errno("verify service: open %s", journal_path);
        return;
    }
    struct line_reader reader;
    struct strbuf line = STRBUF_INIT;
    size_t bad = 0;
    line_reader_init(&reader, fd);
    int r, longer = 0;
    while ((r = line_read(&reader, &line, VERIFY_ADDRESS_MAX + VERIFY_TEXT_MAX + 128)) > 0) {
        /* a piece of a line too long, or a last line cut short */
        int skip = longer || r == 2;
        longer = r == 2;
        char *tab = strchr(strbuf_str(&line), '\t');
        struct verify_entry entry;
        if (skip || !tab || tab == line.s) {
            bad++;
            continue;
        }
        *tab = 0;
        if (!tab[1])
            table_set(line.s, NULL);
        else if (verify_entry_parse(tab + 1, &entry) == 0)
            table_set(line.s, tab + 1);
        else
            bad++;
    }
    if (r < 0)
        msg_warn_errno("verify service: read %s", journal_path);
    if (bad)
        msg_warn("verify service: %s: %zu malformed lines skipped", journal_path, bad);
    strbuf_free(&line);
    close(fd);
}

/* 1 when the entry can go: Postfix's cleanup drops what has expired and
 * a probe that never came back. */
static int expired(const struct verify_entry *e, long long now, const struct verify_settings *s)
{
    if (e->updated == 0)
        return e->probed + VERIFY_PROBE_TTL < now;
    if (e->status == VERIFY_OK)
        return e->updated + s->positive_expire < now;
    return e->updated + s->negative_expire < now;
}

void cache_cleanup(long long now, const struct verify_settings *s)
{
    struct strtable *old = table;
    table = strtable_new();
    live = 0;
    size_t dropped = 0;
    for (size_t i = 0; i < strtable_count(old); i++) {
        const char *value = strtable_value(old, i);
        struct verify_entry e;
        if (!value)
            continue;
        if (verify_entry_parse(value, &e) < 0 || expired(&e, now, s))
            dropped++;
        else
            table_set(strtable_key(old, i), value);
    }
    strtable_free(old);
    if (!journal_path)
        return;
    msg_info("cache %s full cleanup: retained=%zu dropped=%zu entries", cache_spec, live, dropped);
    /* the journal again, with only what is kept: a new file renamed over */
    struct strbuf tmp = STRBUF_INIT, text = STRBUF_INIT;
    strbuf_printf(&tmp, "%s.new", journal_path);
    int fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    for (size_t i = 0; fd >= 0 && i < strtable_count(table); i++)
        if (strtable_value(table, i))
            strbuf_printf(&text, "%s\t%s\n", strtable_key(table, i), strtable_value(table, i));
    if (fd < 0 || write_all(fd, text.s ? text.s : "", text.len) < 0 || fsync(fd) < 0
        || rename(tmp.s, journal_path) < 0) {
        msg_warn_errno("verify service: rewrite %s", journal_path);
        if (fd >= 0)
            unlink(tmp.s);
    }
    if (fd >= 0)
        close(fd);
    if (journal_fd >= 0)
        close(journal_fd);
    journal_fd = open(journal_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (journal_fd < 0)
        msg_warn_errno("verify service: open %s", journal_path);
    strbuf_free(&tmp);
    strbuf_free(&text);
}

int cache_open(const char *spec, const struct verify_settings *s, struct strbuf *err)
{
    table = strtable_new();
    live = 0;
    while (*spec == ' ' || *spec == '\t')
        spec++;
    if (*spec) {
        /* type:path; the type is Postfix's (btree, hash, lmdb, ...) */
        const char *colon = strchr(spec, ':');
        const char *path = colon ? colon + 1 : spec;
        if (*path != '/') {
            strbuf_printf(err, "address_verify_map: %s: not an absolute path", spec);
            return -1;
        }
        journal_path = xstrdup(path);
        cache_spec = xstrdup(spec);
        mode_t saved = umask(022);
        journal_read();
        cache_cleanup((long long)time(NULL), s);
        umask(saved);
        if (journal_fd < 0) {
            strbuf_printf(err, "address_verify_map: cannot write %s: %s", journal_path,
                          strerror(errno));
            return -1;
        }
    }
    return 0;
}

const char *cache_get(const char *address)
{
    struct strbuf key = STRBUF_INIT;
    make_key(address, &key);
    const char *value = strtable_get(table, key.s);
    strbuf_free(&key);
    return value;
}

void cache_put(const char *address, const struct verify_entry *entry)
{
    struct strbuf key = STRBUF_INIT, value = STRBUF_INIT;
    make_key(address, &key);
    verify_entry_format(entry, &value);
    table_set(key.s, value.s);
    journal_append(key.s, value.s);
    strbuf_free(&key);
    strbuf_free(&value);
}

void cache_delete(const char *address)
{
    struct strbuf key = STRBUF_INIT;
    make_key(address, &key);
    if (strtable_get(table, key.s)) {
        table_set(key.s, NULL);
        journal_append(key.s, NULL);
    }
    strbuf_free(&key);
}

size_t cache_count(void)
{
    return live;
}

void cache_close(void)
{
    if (journal_fd >= 0)
        close(journal_fd);
    journal_fd = -1;
    strtable_free(table);
    table = NULL;
    free(journal_path);
    journal_path = NULL;
    free(cache_spec);
    cache_spec = NULL;
}
