/* maildirsize.c - Maildir++ quotas: parse, read, append to and remake the
 * maildirsize file of a Maildir, and count a Maildir (see maildirsize.h).
 * The parser takes bytes from disk that another program (or the user)
 * wrote: it is bounded, checks every number for 64-bit overflow, and
 * fuzzed (fuzz/maildirsize.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "maildirsize.h"
#include "strbuf.h"

const char *maildir_hostname(void)
{
    static char name[256];
    if (name[0])
        return name;
    char host[200];
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    size_t o = 0;
    for (const char *p = host; *p && o + 5 < sizeof name; p++) {
        if (*p == '/')
            o += (size_t)snprintf(name + o, sizeof name - o, "\\057");
        else if (*p == ':')
            o += (size_t)snprintf(name + o, sizeof name - o, "\\072");
        else
            name[o++] = *p;
    }
    name[o] = '\0';
    return name;
}

/* Parse a decimal integer with an optional '-' at *p (at most end); moves
 * *p past it.  0, or -1 for no digits or a value beyond 64 bits. */
static int parse_integer(const char **p, const char *end, long long *out)
{
    const char *s = *p;
    int negative = 0;
    if (s < end && (*s == '-' || *s == '+')) {
        negative = *s == '-';
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    long long value = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        int digit = *s - '0';
        if (__builtin_mul_overflow(value, 10, &value)
            || __builtin_add_overflow(value, negative ? -digit : digit, &value))
            return -1;
    }
    *p = s;
    *out = value;
    return 0;
}

int maildir_limits_parse(const char *text, size_t len, struct maildir_limits *limits)
{
    const char *p = text, *end = text + len;
    limits->bytes = limits->messages = 0;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (p < end) {
        long long value;
        if (parse_integer(&p, end, &value) != 0 || value < 0 || p >= end)
            return -1;
        char kind = *p++;
        if (kind == 'S')
            limits->bytes = value;
        else if (kind == 'C')
            limits->messages = value;
        /* other letters: a later extension; ignored as Courier does */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p++ != ',')
            return -1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    return 0;
}

int maildirsize_parse(const char *text, size_t len, struct maildir_limits *limits,
                      struct maildir_usage *usage)
{
    const char *end = text + len;
    const char *nl = memchr(text, '\n', len);
    if (!nl || maildir_limits_parse(text, (size_t)(nl - text), limits) != 0)
        return -1;
    usage->bytes = usage->messages = 0;
    for (const char *p = nl + 1; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return -1;          /* a line still being written, or cut off */
        long long bytes, messages;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        if (parse_integer(&p, eol, &bytes) != 0)
            return -1;
        if (p >= eol || (*p != ' ' && *p != '\t'))
            return -1;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        if (parse_integer(&p, eol, &messages) != 0)
            return -1;
        while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        if (p != eol)
            return -1;
        if (__builtin_add_overflow(usage->bytes, bytes, &usage->bytes)
            || __builtin_add_overflow(usage->messages, messages, &usage->messages))
            return -1;
        p = eol + 1;
    }
    /* negative lines are deletions; a negative total is a broken file,
     * which would never count as over quota: remade like any malformed one */
    if (usage->bytes < 0 || usage->messages < 0)
        return -1;
    return 0;
}

void maildir_limits_format(char *buf, size_t size, const struct maildir_limits *limits)
{
    if (limits->messages > 0)
        snprintf(buf, size, "%lldS,%lldC", limits->bytes, limits->messages);
    else
        snprintf(buf, size, "%lldS", limits->bytes);
}

int maildir_over_quota(const struct maildir_limits *limits, const struct maildir_usage *usage,
                       long long bytes)
{
    if (limits->bytes > 0) {
        /* usage + bytes > limit, without computing the sum */
        if (bytes > limits->bytes || usage->bytes > limits->bytes - bytes)
            return 1;
    }
    if (limits->messages > 0 && usage->messages >= limits->messages)
        return 1;
    return 0;
}

/* The size a Maildir++ file name states (",S=NNN" before the ':' of the
 * flags), or -1 when it states none. */
static long long size_in_name(const char *name)
{
    const char *colon = strchr(name, ':');
    size_t len = colon ? (size_t)(colon - name) : strlen(name);
    for (size_t i = len; i >= 3; i--) {
        if (name[i - 3] == ',' && name[i - 2] == 'S' && name[i - 1] == '=') {
            const char *p = name + i, *end = name + len;
            long long size;
            if (parse_integer(&p, end, &size) == 0 && size >= 0 && (p == end || *p == ','))
                return size;
            return -1;
        }
    }
    return -1;
}

/* Add the messages in one directory (new/ or cur/) to usage; a missing
 * directory adds nothing.  0 or -1 (errno). */
static int count_dir(int parent, const char *name, struct maildir_usage *usage)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -1;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        long long size = size_in_name(entry->d_name);
        if (size < 0) {
            struct stat st;
            if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0
                || !S_ISREG(st.st_mode))
                continue;       /* gone meanwhile (read and moved), or not mail */
            size = (long long)st.st_size;
        } else if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) {
            continue;
        }
        if (__builtin_add_overflow(usage->bytes, size, &usage->bytes))
            usage->bytes = INT64_MAX;
        usage->messages++;
    }
    closedir(dir);
    return 0;
}

/* Add new/ and cur/ of the folder `name` (NULL: the Maildir itself). */
static int count_folder(int root, const char *name, struct maildir_usage *usage)
{
    int fd = root;
    if (name) {
        fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return 0;           /* not a folder (a file called .something) */
    }
    int r = count_dir(fd, "new", usage) == 0 && count_dir(fd, "cur", usage) == 0 ? 0 : -1;
    if (name)
        close(fd);
    return r;
}

int maildir_count_usage(const char *dir, const struct maildir_count_rules *rules,
                  struct maildir_usage *usage)
{
    usage->bytes = usage->messages = 0;
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return errno == ENOENT ? 0 : -1;
    int r = count_folder(root, NULL, usage);
    if (r == 0 && !rules->inbox_only) {
        int fd = dup(root);
        DIR *folders = fd >= 0 ? fdopendir(fd) : NULL;
        if (!folders) {
            if (fd >= 0)
                close(fd);
            r = -1;
        }
        struct dirent *entry;
        while (r == 0 && (entry = readdir(folders))) {
            const char *n = entry->d_name;
            if (n[0] != '.' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                continue;
            if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN)
                continue;
            if (!rules->count_trash && rules->trash_name && strcmp(n, rules->trash_name) == 0)
                continue;
            r = count_folder(root, n, usage);
        }
        if (folders)
            closedir(folders);
    }
    int saved = errno;
    close(root);
    errno = saved;
    return r;
}

int maildirsize_remake(const char *dir, int lock_fd, const struct maildir_limits *limits,
                       const struct maildir_count_rules *rules, struct maildir_usage *usage)
{
    if (flock(lock_fd, LOCK_EX) != 0)
        return -1;
    /* the whole Maildir, as other readers of the file count it */
    struct maildir_count_rules whole = *rules;
    whole.inbox_only = 0;
    int result = -1, saved;
    struct strbuf tmp = STRBUF_INIT, final = STRBUF_INIT, text = STRBUF_INIT;
    if (maildir_count_usage(dir, &whole, usage) != 0)
        goto out;
    char definition[64];
    maildir_limits_format(definition, sizeof definition, limits);
    strbuf_printf(&text, "%s\n%lld %lld\n", definition, usage->bytes, usage->messages);
    struct timeval now;
    gettimeofday(&now, NULL);
    static unsigned count;
    strbuf_printf(&tmp, "%stmp/%lld.M%06ldP%dQ%u.%s,maildirsize", dir, (long long)now.tv_sec,
                  (long)now.tv_usec, (int)getpid(), ++count, maildir_hostname());
    strbuf_printf(&final, "%smaildirsize", dir);
    int fd = open(tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        goto out;
    int wrote = write_all(fd, text.s, text.len);
    saved = errno;
    if (close(fd) != 0 && wrote == 0) {
        wrote = -1;
        saved = errno;
    }
    if (wrote != 0 || rename(tmp.s, final.s) != 0) {
        saved = wrote != 0 ? saved : errno;
        unlink(tmp.s);
        errno = saved;
        goto out;
    }
    result = 0;
out:
    saved = errno;
    flock(lock_fd, LOCK_UN);
    strbuf_free(&tmp);
    strbuf_free(&final);
    strbuf_free(&text);
    errno = saved;
    return result;
}

/* Read the file; 1 when it is usable as it is, 0 when it must be remade,
 * -1 (errno) when it cannot be read. */
static int read_file(const char *dir, struct maildir_limits *file_limits,
                     struct maildir_usage *usage, time_t *mtime)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%smaildirsize", dir);
    int fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    strbuf_free(&path);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP ? 0 : -1;
    struct stat st;
    char text[MAILDIRSIZE_MAX_BYTES];
    int r = 0;
    if (fstat(fd, &st) != 0) {
        r = -1;
    } else if (S_ISREG(st.st_mode) && st.st_size < MAILDIRSIZE_MAX_BYTES) {
        ssize_t n = read_full(fd, text, sizeof text);
        if (n < 0)
            r = -1;
        else if ((size_t)n < sizeof text
                 && maildirsize_parse(text, (size_t)n, file_limits, usage) == 0)
            r = 1;
        *mtime = st.st_mtime;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int maildirsize_get(const char *dir, int lock_fd, const struct maildir_limits *limits,
                    const struct maildir_count_rules *rules, struct maildir_usage *usage,
                    struct maildir_limits *file_limits, enum maildirsize_source *source,
                    time_t *mtime)
{
    int r = read_file(dir, file_limits, usage, mtime);
    if (r < 0)
        return -1;
    if (r == 1 && file_limits->bytes == limits->bytes) {
        *source = MAILDIRSIZE_READ;
        return 0;
    }
    /* missing, malformed, too large, or another byte limit: remake it
     * with ours (a count limit is the table's business: none) */
    *file_limits = *limits;
    *source = MAILDIRSIZE_REMADE;
    *mtime = time(NULL);
    return maildirsize_remake(dir, lock_fd, limits, rules, usage);
}

int maildirsize_append(const char *dir, long long bytes, long long messages)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%smaildirsize", dir);
    int fd = open(path.s, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    strbuf_free(&path);
    if (fd < 0)
        return -1;
    char line[64];
    int len = snprintf(line, sizeof line, "%lld %lld\n", bytes, messages);
    /* one write: O_APPEND makes it land whole after every other line */
    ssize_t n = write(fd, line, (size_t)len);
    int saved = errno;
    close(fd);
    if (n != len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}
