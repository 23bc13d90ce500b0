/* queuefile.c - reading a queue file and updating it in place (recipient
 * status bytes, appended records), as doc/queue-format.md describes.  The
 * reader trusts nothing in the file: every length and offset is checked
 * against the file's size, and any surprise makes the file corrupt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

#define QF_MAX_RECORD   65536       /* longest record line accepted */

/* A pread-based line reader over the queue file. */
struct qf_scan {
    int fd;
    off_t file_size;
    off_t pos;                      /* file offset of the next line */
    off_t buf_off;                  /* file offset of buf[0] */
    size_t buf_len;
    char buf[8192];
};

enum { LINE_EOF = 0, LINE_OK = 1, LINE_PARTIAL = 2 };

/* Read the line at s->pos (without its LF) into line.  LINE_OK, LINE_EOF at
 * the end of the file, LINE_PARTIAL for a last line without LF, -1 on a read
 * error (errno) or a line longer than QF_MAX_RECORD (errno EMSGSIZE). */
static int scan_line(struct qf_scan *s, struct strbuf *line)
{
    strbuf_reset(line);
    if (s->pos >= s->file_size)
        return LINE_EOF;
    for (;;) {
        if (s->pos < s->buf_off || s->pos >= s->buf_off + (off_t)s->buf_len) {
            ssize_t got = pread_retry(s->fd, s->buf, sizeof s->buf, s->pos);
            if (got < 0)
                return -1;
            s->buf_off = s->pos;
            s->buf_len = (size_t)got;
            if (got == 0)
                return line->len ? LINE_PARTIAL : LINE_EOF;
        }
        const char *from = s->buf + (s->pos - s->buf_off);
        size_t avail = s->buf_len - (size_t)(s->pos - s->buf_off);
        const char *lf = memchr(from, '\n', avail);
        size_t take = lf ? (size_t)(lf - from) : avail;
        if (line->len + take > QF_MAX_RECORD) {
            errno = EMSGSIZE;
            return -1;
        }
        strbuf_append(line, from, take);
        s->pos += (off_t)take + (lf ? 1 : 0);
        if (lf)
            return LINE_OK;
        if (s->pos >= s->file_size)
            return LINE_PARTIAL;
    }
}

/* Parse a decimal number that fills all of text; -1 when it does not. */
static long long parse_decimal(const char *text, size_t len)
{
    long long n = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        n = n * 10 + (text[i] - '0');
    }
    return n;
}

/* Set a format error with the offset of the record that caused it. */
static int corrupt(struct strbuf *err, off_t offset, const char *what)
{
    strbuf_reset(err);
    strbuf_printf(err, "%s at offset %lld", what, (long long)offset);
    errno = 0;
    return -1;
}

/* Parse "t<seconds>.<6 digits>". */
static int parse_arrival(const char *v, size_t len, struct queue_file *qf)
{
    const char *dot = memchr(v, '.', len);
    if (!dot || v + len - dot - 1 != 6)
        return -1;
    long long sec = parse_decimal(v, (size_t)(dot - v));
    long long usec = parse_decimal(dot + 1, 6);
    if (sec < 0 || usec < 0)
        return -1;
    qf->arrival_sec = sec;
    qf->arrival_usec = (long)usec;
    return 0;
}

/* A name=value attribute with a non-empty name. */
static int is_attribute(const char *v)
{
    const char *eq = strchr(v, '=');
    return eq && eq != v;
}

/* Store a per-recipient attribute of the last recipient. */
static void set_rcpt_attr(struct queue_recipient *r, const char *v)
{
    if (strncmp(v, "ORCPT=", 6) == 0) {
        free(r->orcpt);
        r->orcpt = xstrdup(v + 6);
    } else if (strncmp(v, "NOTIFY=", 7) == 0) {
        free(r->notify);
        r->notify = xstrdup(v + 7);
    }                               /* others are kept in the file only */
}

/* The recipient whose record starts at offset, or NULL (binary search:
 * recipients are in file order). */
static struct queue_recipient *rcpt_at(struct queue_file *qf, long long offset)
{
    size_t low = 0, high = qf->rcpt_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (qf->rcpt[mid].status_offset == offset)
            return &qf->rcpt[mid];
        if (qf->rcpt[mid].status_offset < offset)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

/* Parse a record appended after E (S, Y, W, N).  0 or -1 (format error). */
static int parse_appended(struct queue_file *qf, const char *rec, size_t len)
{
    const char *v = rec + 1;
    size_t vlen = len - 1;
    if (rec[0] == 'W') {
        long long t = parse_decimal(v, vlen);
        if (t < 0)
            return -1;
        qf->delay_warned = t;
        return 0;
    }
    const char *space = memchr(v, ' ', vlen);
    size_t numlen = space ? (size_t)(space - v) : vlen;
    long long offset = parse_decimal(v, numlen);
    struct queue_recipient *r = offset < 0 ? NULL : rcpt_at(qf, offset);
    if (!r)
        return -1;
    if (rec[0] == 'N' && !space) {
        r->success_noticed = 1;
        return 0;
    }
    if (rec[0] == 'S' && space && space[1]) {
        free(r->last_status);
        r->last_status = xstrdup(space + 1);
        return 0;
    }
    if (rec[0] == 'Y' && space) {
        /* "Y812 mx.example.com"; "Y812 " forgets it (the last try reached
         * no host) */
        free(r->remote_mta);
        r->remote_mta = space[1] ? xstrndup(space + 1, vlen - (size_t)(space + 1 - v)) : NULL;
        return 0;
    }
    return -1;
}

/* The header part: V, t, F, A*, (R|B|D P*)+, M.  0 or -1. */
static int read_header(struct qf_scan *s, struct queue_file *qf,
                       struct strbuf *line, struct strbuf *err)
{
    int step = 0;                   /* 0 V, 1 t, 2 F, 3 A/R, 4 R/P/M */
    for (;;) {
        off_t at = s->pos;
        int r = scan_line(s, line);
        if (r < 0) {
            strbuf_reset(err);
            strbuf_printf(err, errno == EMSGSIZE ? "record too long at offset %lld"
                          : "read error at offset %lld", (long long)at);
            if (errno == EMSGSIZE)
                errno = 0;
            return -1;
        }
        if (r != LINE_OK)
            return corrupt(err, at, "premature end of file");
        if (line->len == 0 || memchr(line->s, '\0', line->len))
            return corrupt(err, at, "malformed record");
        char type = line->s[0];
        const char *v = line->s + 1;
        size_t vlen = line->len - 1;
        if (step == 0) {
            if (strcmp(line->s, "V1") != 0)
                return corrupt(err, at, "not a queue file of version 1");
            step = 1;
        } else if (step == 1) {
            if (type != 't' || parse_arrival(v, vlen, qf) < 0)
                return corrupt(err, at, "bad arrival time record");
            step = 2;
        } else if (step == 2) {
            if (type != 'F')
                return corrupt(err, at, "sender record expected");
            qf->sender = xstrdup(v);
            step = 3;
        } else if (type == 'A' && step == 3) {
            if (!is_attribute(v))
                return corrupt(err, at, "malformed attribute");
            strlist_add(&qf->attrs, v);
        } else if (type == RCPT_TODO || type == RCPT_BOUNCE || type == RCPT_DONE) {
            if (vlen == 0)
                return corrupt(err, at, "empty recipient");
            size_t n = qf->rcpt_count;
            if (n >= 8 ? (n & (n - 1)) == 0 : n == 0)   /* capacity doubles */
                qf->rcpt = xreallocarray(qf->rcpt, n ? n * 2 : 8, sizeof *qf->rcpt);
            struct queue_recipient *rc = &qf->rcpt[qf->rcpt_count++];
            memset(rc, 0, sizeof *rc);
            rc->address = xstrdup(v);
            rc->status = type;
            rc->status_offset = at;
            step = 4;
        } else if (type == 'P' && step == 4) {
            if (!is_attribute(v))
                return corrupt(err, at, "malformed recipient attribute");
            set_rcpt_attr(&qf->rcpt[qf->rcpt_count - 1], v);
        } else if (type == 'M' && step == 4) {
            qf->header_end = at;
            long long length = parse_decimal(v, vlen);
            if (length < 0)
                return corrupt(err, at, "bad content length");
            qf->content_offset = s->pos;
            qf->content_length = length;
            if (length > s->file_size - s->pos - 1)
                return corrupt(err, at, "content length past the end of the file");
            return 0;
        } else {
            return corrupt(err, at, "unexpected record");
        }
    }
}

/* The commit record's value "<id> <8 hex digits>".  0 or -1. */
static int parse_commit(const char *v, size_t len, struct queue_file *qf)
{
    const char *space = memchr(v, ' ', len);
    if (!space || v + len - space - 1 != 8 || space - v >= 32)
        return -1;
    char id[32];
    memcpy(id, v, (size_t)(space - v));
    id[space - v] = '\0';
    if (!queue_id_valid(id))
        return -1;
    uint32_t crc = 0;
    for (const char *h = space + 1; h < v + len; h++) {
        int d = *h >= '0' && *h <= '9' ? *h - '0' : *h >= 'A' && *h <= 'F' ? *h - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        crc = crc << 4 | (uint32_t)d;
    }
    qf->commit_id = xstrdup(id);
    qf->checksum = crc;
    return 0;
}

/* Continue crc over the bytes [from, to) of the file, with the status
 * bytes of the recipients from *next on counted as R.  0 or -1 (errno). */
static int crc_range(int fd, const struct queue_file *qf, size_t *next, off_t from, off_t to,
                     uint32_t *crc)
{
    char buf[65536];
    while (from < to) {
        size_t want = to - from < (off_t)sizeof buf ? (size_t)(to - from) : sizeof buf;
        ssize_t got = pread_retry(fd, buf, want, from);
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return -1;
        }
        for (; *next < qf->rcpt_count && qf->rcpt[*next].status_offset < from + got; ++*next)
            if (qf->rcpt[*next].status_offset >= from)
                buf[qf->rcpt[*next].status_offset - from] = RCPT_TODO;
        *crc = crc32c(*crc, buf, (size_t)got);
        from += got;
    }
    return 0;
}

int queue_file_verify(int fd, const struct queue_file *qf, struct strbuf *err)
{
    if (!qf->commit_id)
        return 1;
    uint32_t crc = 0;
    size_t next = 0;
    if (crc_range(fd, qf, &next, 0, qf->header_end, &crc) < 0
        || crc_range(fd, qf, &next, qf->content_offset,
                     qf->content_offset + qf->content_length, &crc) < 0) {
        strbuf_reset(err);
        strbuf_printf(err, "read error: %s", strerror(errno));
        return -1;
    }
    crc = crc32c(crc, qf->commit_id, strlen(qf->commit_id));
    if (crc != qf->checksum) {
        strbuf_reset(err);
        strbuf_printf(err, "checksum mismatch (%08X, the commit record says %08X)",
                      (unsigned)crc, (unsigned)qf->checksum);
        errno = 0;
        return -1;
    }
    return 0;
}

int queue_file_read(int fd, const char *id, struct queue_file *qf,
                    struct strbuf *err)
{
    memset(qf, 0, sizeof *qf);
    qf->id = xstrdup(id ? id : "");
    struct stat st;
    if (fstat(fd, &st) < 0) {
        strbuf_set(err, "cannot stat the queue file");
        return -1;
    }
    if (!S_ISREG(st.st_mode))
        return corrupt(err, 0, "not a regular file");
    struct qf_scan *s = xmalloc(sizeof *s);
    s->fd = fd;
    s->file_size = st.st_size;
    s->pos = 0;
    s->buf_off = 0;
    s->buf_len = 0;
    struct strbuf line = STRBUF_INIT;
    int rc = read_header(s, qf, &line, err);
    if (rc == 0) {
        /* the byte after the content is LF, then the commit record: "E"
         * (an older postern) or "E<id> <CRC-32C in 8 hex digits>" */
        char after[3 + 32 + 10];
        off_t end = qf->content_offset + qf->content_length;
        ssize_t got = pread_retry(fd, after, sizeof after, end);
        const char *lf = got > 2 ? memchr(after + 2, '\n', (size_t)got - 2) : NULL;
        if (got < 0) {
            strbuf_set(err, "read error after the content");
            rc = -1;
        } else if (got < 3 || memcmp(after, "\nE", 2) != 0 || !lf) {
            rc = corrupt(err, end, "no end record after the content");
        } else if (lf > after + 2 && parse_commit(after + 2, (size_t)(lf - after - 2), qf) < 0) {
            rc = corrupt(err, end + 1, "bad commit record");
        } else {
            s->pos = end + (off_t)(lf - after) + 1;
            qf->size = s->pos;
        }
    }
    while (rc == 0) {
        off_t at = s->pos;
        int r = scan_line(s, &line);
        if (r < 0) {
            strbuf_reset(err);
            strbuf_printf(err, "bad appended record at offset %lld", (long long)at);
            errno = errno == EMSGSIZE ? 0 : errno;
            rc = -1;
        } else if (r != LINE_OK) {
            break;                  /* a record cut short by a crash: ignored */
        } else if (line.len < 2 || memchr(line.s, '\0', line.len)
                   || parse_appended(qf, line.s, line.len) < 0) {
            rc = corrupt(err, at, "bad appended record");
        } else {
            qf->size = s->pos;
        }
    }
    strbuf_free(&line);
    free(s);
    if (rc < 0) {
        int saved = errno;
        queue_file_free(qf);
        errno = saved;
    }
    return rc;
}

void queue_file_free(struct queue_file *qf)
{
    free(qf->id);
    free(qf->sender);
    free(qf->commit_id);
    strlist_free(&qf->attrs);
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        free(qf->rcpt[i].address);
        free(qf->rcpt[i].orcpt);
        free(qf->rcpt[i].notify);
        free(qf->rcpt[i].last_status);
        free(qf->rcpt[i].remote_mta);
        free(qf->rcpt[i].routed);
        free(qf->rcpt[i].part_status);
    }
    free(qf->rcpt);
    memset(qf, 0, sizeof *qf);
}

const char *queue_file_attr(const struct queue_file *qf, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < qf->attrs.count; i++)
        if (strncmp(qf->attrs.item[i], name, n) == 0 && qf->attrs.item[i][n] == '=')
            return qf->attrs.item[i] + n + 1;
    return NULL;
}

int queue_file_set_status(int fd, struct queue_recipient *rcpt, char status)
{
    ssize_t w;
    do
        w = pwrite(fd, &status, 1, rcpt->status_offset);
    while (w < 0 && errno == EINTR);
    if (w != 1) {
        if (w >= 0)
            errno = EIO;
        return -1;
    }
    rcpt->status = status;
    return 0;
}

int queue_file_append(int fd, struct queue_file *qf, const char *record)
{
    if (!*record || strchr(record, '\n')) {
        errno = EINVAL;
        return -1;
    }
    struct strbuf line = STRBUF_INIT;
    strbuf_puts(&line, record);
    strbuf_putc(&line, '\n');
    size_t done = 0;
    int rc = 0;
    while (done < line.len) {
        ssize_t w = pwrite(fd, line.s + done, line.len - done, qf->size + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            rc = -1;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0)
        qf->size += (off_t)line.len;
    strbuf_free(&line);
    return rc;
}

int queue_file_sync(int fd)
{
    return fdatasync(fd);
}

int queue_id_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!((name[n] >= '0' && name[n] <= '9') || (name[n] >= 'A' && name[n] <= 'F')))
            return 0;
    return n >= 6 && n < 32;
}
