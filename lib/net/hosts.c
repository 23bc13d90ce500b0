/* hosts.c - the hosts file read without NSS (hosts.h): each address with
 * the canonical name of its first line, sorted for a binary search.  A
 * hosts file of ad-blocking lists holds thousands of lines for one address
 * (0.0.0.0): only the first line of each address is kept. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "hosts.h"
#include "log.h"
#include "xalloc.h"

#define HOSTS_FILE_MAX (16 << 20)   /* more is not read */
#define NAME_MAX_LEN 255

struct hosts_entry {
    unsigned char family;       /* 4 or 6 */
    unsigned char addr[16];
    size_t line;                /* order in the file, for "first line wins" */
    char *name;
};

struct hosts {
    struct hosts_entry *entry;
    size_t count;
    char *path;                 /* NULL: parsed from text */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

/* An address in text form (a "%zone" suffix ignored) as family and bytes. */
static int parse_address(const char *text, size_t len, unsigned char *family, unsigned char *addr)
{
    char buf[INET6_ADDRSTRLEN + 1];
    const char *zone = memchr(text, '%', len);
    if (zone)
        len = (size_t)(zone - text);
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, mapped, 12) == 0) {   /* ::ffff:a.b.c.d is a.b.c.d */
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = 4;
    } else {
        *family = 6;
    }
    return 0;
}

static int compare_entries(const void *a, const void *b)
{
    const struct hosts_entry *x = a, *y = b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    int c = memcmp(x->addr, y->addr, 16);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The next field of [p, end): its start and length; 0 when none. */
static size_t next_field(const char **p, const char *end, const char **field)
{
    while (*p < end && is_blank(**p))
        (*p)++;
    *field = *p;
    while (*p < end && !is_blank(**p))
        (*p)++;
    return (size_t)(*p - *field);
}

struct hosts *hosts_parse(const char *text, size_t len)
{
    struct hosts *h = xcalloc(1, sizeof *h);
    size_t cap = 0, lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(line_end - p));
        const char *stop = hash ? hash : line_end;
        const char *addr_text, *name;
        size_t addr_len = next_field(&p, stop, &addr_text);
        size_t name_len = addr_len ? next_field(&p, stop, &name) : 0;
        struct hosts_entry e = {0};
        if (name_len && name_len <= NAME_MAX_LEN && !memchr(name, '\0', name_len)
            && parse_address(addr_text, addr_len, &e.family, e.addr) == 0) {
            if (h->count == cap) {
                cap = cap ? 2 * cap : 16;
                h->entry = xreallocarray(h->entry, cap, sizeof *h->entry);
            }
            e.line = lineno;
            e.name = xstrndup(name, name_len);
            h->entry[h->count++] = e;
        }
        lineno++;
        p = nl ? nl + 1 : end;
    }
    if (h->count)
        qsort(h->entry, h->count, sizeof *h->entry, compare_entries);
    /* keep the first line of each address */
    size_t kept = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (kept && h->entry[kept - 1].family == h->entry[i].family
            && memcmp(h->entry[kept - 1].addr, h->entry[i].addr, 16) == 0) {
            free(h->entry[i].name);
            continue;
        }
        h->entry[kept++] = h->entry[i];
    }
    h->count = kept;
    return h;
}

/* Does nsswitch.conf's "hosts:" line name "files" first? */
static int files_first(void)
{
    int fd = open("/etc/nsswitch.conf", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[16384];
    ssize_t n = read_full(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *line = buf; line; ) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        while (is_blank(*line))
            line++;
        if (strncmp(line, "hosts:", 6) == 0) {
            line += 6;
            while (is_blank(*line))
                line++;
            return strncmp(line, "files", 5) == 0 && (line[5] == '\0' || is_blank(line[5]));
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* Read and parse path; NULL when it cannot be read. */
static struct hosts *load(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    size_t size = st.st_size > HOSTS_FILE_MAX ? HOSTS_FILE_MAX : (size_t)st.st_size;
    char *text = xmalloc(size + 1);
    ssize_t n = read_full(fd, text, size);
    close(fd);
    if (n < 0) {
        msg_warn_errno("read %s", path);
        free(text);
        return NULL;
    }
    struct hosts *h = hosts_parse(text, (size_t)n);
    free(text);
    h->path = xstrdup(path);
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    h->size = st.st_size;
    h->mtime = st.st_mtim;
    return h;
}

struct hosts *hosts_open(void)
{
    const char *path = getenv(HOSTS_FILE_VARIABLE);
    if (path && *path)
        return load(path);
    return files_first() ? load("/etc/hosts") : NULL;
}

struct hosts *hosts_refresh(struct hosts *h)
{
    if (!h || !h->path)
        return h;
    struct stat st;
    if (stat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino
        && st.st_size == h->size && st.st_mtim.tv_sec == h->mtime.tv_sec
        && st.st_mtim.tv_nsec == h->mtime.tv_nsec)
        return h;
    struct hosts *fresh = load(h->path);
    if (!fresh)
        return h;               /* gone or unreadable for now: keep what we had */
    hosts_free(h);
    return fresh;
}

int hosts_name_of(const struct hosts *h, const char *addr, char *name, size_t size)
{
    struct hosts_entry key = {0};
    if (!h || !h->count || parse_address(addr, strlen(addr), &key.family, key.addr) != 0)
        return 0;
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct hosts_entry *e = &h->entry[mid];
        int c = e->family != key.family ? (e->family < key.family ? -1 : 1)
                                        : memcmp(e->addr, key.addr, 16);
        if (c == 0) {
            if (strlen(e->name) >= size)
                return 0;
            memcpy(name, e->name, strlen(e->name) + 1);
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

void hosts_free(struct hosts *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++)
        free(h->entry[i].name);
    free(h->entry);
    free(h->path);
    free(h);
}
