/* cachefile.c - a cache of keys and values with expiry times in one file,
 * shared by short-lived processes under flock (cachefile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefile.h"
#include "fdio.h"

#define MAX_FILE (CACHEFILE_MAX_ENTRIES * (CACHEFILE_MAX_KEY + 2 * CACHEFILE_MAX_VALUE + 32))

/* One parsed line. */
struct entry {
    long long expires;
    const char *line;                   /* its first byte */
    const char *key, *hex;
    size_t key_len, hex_len;
};

/* A key the file can hold: printable, no white space, bounded. */
static int key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > CACHEFILE_MAX_KEY)
        return 0;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p <= ' ' || *p >= 127)
            return 0;
    return 1;
}

/* Open and lock the file: the caller's own, 0600 or stricter. */
static int open_locked(const char *path, int op)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    while (flock(fd, op) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Read the whole file into buf (a file over the bound reads as empty). */
static int read_all(int fd, struct strbuf *buf)
{
    struct stat st;
    strbuf_reset(buf);
    if (fstat(fd, &st) != 0)
        return -1;
    if (st.st_size <= 0 || st.st_size > MAX_FILE)
        return 0;
    strbuf_grow(buf, (size_t)st.st_size);
    ssize_t n = pread_retry(fd, buf->s, (size_t)st.st_size, 0);
    if (n < 0)
        return -1;
    buf->len = (size_t)n;
    buf->s[buf->len] = '\0';
    return 0;
}

/* The next well-formed line at *pos (malformed ones are skipped); 0 at
 * the end. */
static int next_entry(const struct strbuf *buf, size_t *pos, struct entry *e)
{
    while (*pos < buf->len) {
        const char *line = buf->s + *pos;
        const char *nl = memchr(line, '\n', buf->len - *pos);
        if (!nl)            /* a torn last line */
            return *pos = buf->len, 0;
        *pos = (size_t)(nl - buf->s) + 1;
        e->line = line;
        /* digits first: strtoll would skip white space, newlines too, and
         * read into the next line */
        if (*line < '0' || *line > '9')
            continue;
        char *end;
        errno = 0;
        e->expires = strtoll(line, &end, 10);
        if (errno || end >= nl || *end != ' ')
            continue;
        e->key = end + 1;
        const char *sp = memchr(e->key, ' ', (size_t)(nl - e->key));
        if (!sp || sp == e->key)
            continue;
        e->key_len = (size_t)(sp - e->key);
        e->hex = sp + 1;
        e->hex_len = (size_t)(nl - e->hex);
        if (e->hex_len % 2 || e->hex_len > 2 * CACHEFILE_MAX_VALUE
            || strspn(e->hex, "0123456789abcdef") < e->hex_len)
            continue;
        return 1;
    }
    return 0;
}

static int same_key(const struct entry *e, const char *key)
{
    return e->key_len == strlen(key) && memcmp(e->key, key, e->key_len) == 0;
}

/* Hex to bytes (already checked by next_entry). */
static void unhex(const char *hex, size_t n, struct strbuf *out)
{
    static const char digits[] = "0123456789abcdef";
    strbuf_reset(out);
    strbuf_grow(out, n / 2);
    for (size_t i = 0; i + 1 < n; i += 2)
        strbuf_putc(out, (int)((strchr(digits, hex[i]) - digits) << 4 | (strchr(digits, hex[i + 1]) - digits)));
}

int cachefile_get(const char *path, const char *key, long long now, struct strbuf *out)
{
    if (!key_ok(key))
        return 0;
    int fd = open_locked(path, LOCK_SH);
    if (fd < 0)
        return -1;
    struct strbuf buf = STRBUF_INIT;
    int rc = read_all(fd, &buf);
    close(fd);
    size_t pos = 0;
    struct entry e;
    while (rc == 0 && next_entry(&buf, &pos, &e)) {
        if (e.expires > now && same_key(&e, key)) {
            unhex(e.hex, e.hex_len, out);
            rc = 1;
        }
    }
    if (buf.s)
        explicit_bzero(buf.s, buf.len);
    strbuf_free(&buf);
    return rc;
}

/* Rewrite the file without key and expired entries, with the new entry
 * (line, may be NULL) added; the entries closest to expiring give way to
 * keep the count bounded. */
static int rewrite(const char *path, const char *key, const char *line, long long expires,
                   long long now)
{
    int fd = open_locked(path, LOCK_EX);
    if (fd < 0)
        return -1;
    struct strbuf buf = STRBUF_INIT, next = STRBUF_INIT;
    int rc = read_all(fd, &buf);
    size_t pos = 0, kept = 0;
    struct entry e;
    long long floor = now;              /* drop entries expiring before this */
    for (;;) {
        size_t count = 0;
        long long soonest = 0;
        pos = 0;
        while (rc == 0 && next_entry(&buf, &pos, &e))
            if (e.expires > floor && !same_key(&e, key)) {
                if (!count || e.expires < soonest)
                    soonest = e.expires;
                count++;
            }
        if (count + (line ? 1 : 0) <= CACHEFILE_MAX_ENTRIES || (line && soonest >= expires))
            break;
        floor = soonest;                /* drop the soonest to expire, and again */
    }
    pos = 0;
    while (rc == 0 && next_entry(&buf, &pos, &e)) {
        if (e.expires <= floor || same_key(&e, key) || kept >= CACHEFILE_MAX_ENTRIES - (line ? 1 : 0))
            continue;
        strbuf_append(&next, e.line, (size_t)(e.hex + e.hex_len - e.line) + 1);
        kept++;
    }
    if (line)
        strbuf_puts(&next, line);
    if (rc == 0 && ((next.len && pwrite(fd, next.s, next.len, 0) != (ssize_t)next.len)
                    || ftruncate(fd, (off_t)next.len) != 0))
        rc = -1;
    int saved = errno;
    close(fd);
    if (buf.s)
        explicit_bzero(buf.s, buf.len);
    if (next.s)
        explicit_bzero(next.s, next.len);
    strbuf_free(&buf);
    strbuf_free(&next);
    errno = saved;
    return rc;
}

int cachefile_put(const char *path, const char *key, const void *value, size_t len,
                  long long expires, long long now)
{
    if (!key_ok(key) || len > CACHEFILE_MAX_VALUE || expires <= now) {
        errno = EINVAL;
        return -1;
    }
    static const char digits[] = "0123456789abcdef";
    struct strbuf line = STRBUF_INIT;
    strbuf_printf(&line, "%lld %s ", expires, key);
    const unsigned char *bytes = value;
    for (size_t i = 0; i < len; i++) {
        strbuf_putc(&line, digits[bytes[i] >> 4]);
        strbuf_putc(&line, digits[bytes[i] & 15]);
    }
    strbuf_putc(&line, '\n');
    int rc = rewrite(path, key, line.s, expires, now);
    explicit_bzero(line.s, line.len);
    strbuf_free(&line);
    return rc;
}

int cachefile_delete(const char *path, const char *key, long long now)
{
    if (!key_ok(key))
        return 0;
    return rewrite(path, key, NULL, 0, now);
}
