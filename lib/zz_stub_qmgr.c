/* zz_stub_qmgr.c - TEMPORARY stand-in for the qmgr branch, until main
 * brings the real lib/queuefile.c (q-inject helper).  Delete this file when
 * it lands.  A reader and updater of doc/queue-format.md.
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
#include "log.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

/* ------------------------------------------------------------ queue file */

/* Read the whole file into memory. */
static int stub_slurp(int fd, struct strbuf *out)
{
    char buf[65536];
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return 0;
        strbuf_append(out, buf, (size_t)n);
    }
}

int queue_file_read(int fd, const char *id, struct queue_file *qf,
                    struct strbuf *err)
{
    memset(qf, 0, sizeof *qf);
    qf->id = xstrdup(id);
    struct strbuf data = STRBUF_INIT;
    if (stub_slurp(fd, &data) != 0) {
        strbuf_printf(err, "read: %s", strerror(errno));
        strbuf_free(&data);
        return -1;
    }
    const char *base = data.s ? data.s : "";
    size_t len = data.len, pos = 0;
    int stage = 0;              /* 0 V, 1 t, 2 F, 3 A/R/P/M, 4 after M, 5 after E */
    errno = 0;
#define CORRUPT(...) do { strbuf_printf(err, __VA_ARGS__); goto bad; } while (0)
    while (pos < len) {
        const char *nl = memchr(base + pos, '\n', len - pos);
        if (!nl)
            CORRUPT("record without LF at offset %zu", pos);
        size_t rec_len = (size_t)(nl - (base + pos));
        char *rec = xstrndup(base + pos, rec_len);
        size_t rec_off = pos;
        pos += rec_len + 1;
        char type = rec[0];
        const char *val = rec_len ? rec + 1 : "";
        if (rec_len == 0) {
            free(rec);
            CORRUPT("empty record at offset %zu", rec_off);
        }
        if (stage == 0) {
            if (strcmp(rec, "V1") != 0) { free(rec); CORRUPT("bad magic"); }
            stage = 1;
        } else if (stage == 1) {
            if (type != 't') { free(rec); CORRUPT("missing arrival time"); }
            char *end;
            qf->arrival_sec = strtoll(val, &end, 10);
            qf->arrival_usec = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
            stage = 2;
        } else if (stage == 2) {
            if (type != 'F') { free(rec); CORRUPT("missing sender"); }
            qf->sender = xstrdup(val);
            stage = 3;
        } else if (stage == 3) {
            if (type == 'A') {
                strlist_add(&qf->attrs, val);
            } else if (type == RCPT_TODO || type == RCPT_BOUNCE || type == RCPT_DONE) {
                qf->rcpt = xreallocarray(qf->rcpt, qf->rcpt_count + 1, sizeof *qf->rcpt);
                struct queue_recipient *r = &qf->rcpt[qf->rcpt_count++];
                memset(r, 0, sizeof *r);
                r->address = xstrdup(val);
                r->status_offset = (off_t)rec_off;
                r->status = type;
            } else if (type == 'P') {
                if (!qf->rcpt_count) { free(rec); CORRUPT("P record before any recipient"); }
                struct queue_recipient *r = &qf->rcpt[qf->rcpt_count - 1];
                if (strncmp(val, "ORCPT=", 6) == 0) { free(r->orcpt); r->orcpt = xstrdup(val + 6); }
                else if (strncmp(val, "NOTIFY=", 7) == 0) { free(r->notify); r->notify = xstrdup(val + 7); }
            } else if (type == 'M') {
                char *end;
                long long n = strtoll(val, &end, 10);
                if (end == val || *end || n < 0 || (size_t)n > len - pos)
                    { free(rec); CORRUPT("bad content length"); }
                if (!qf->rcpt_count) { free(rec); CORRUPT("no recipients"); }
                qf->content_offset = (off_t)pos;
                qf->content_length = n;
                pos += (size_t)n;
                if (pos >= len || base[pos] != '\n')
                    { free(rec); CORRUPT("content not followed by LF"); }
                pos++;
                stage = 4;
            } else {
                free(rec);
                CORRUPT("unexpected record type before content");
            }
        } else if (stage == 4) {
            if (type != 'E') { free(rec); CORRUPT("missing end record"); }
            stage = 5;
        } else {
            if (type == 'S') {
                char *end;
                long long off = strtoll(val, &end, 10);
                for (size_t i = 0; i < qf->rcpt_count && *end == ' '; i++)
                    if (qf->rcpt[i].status_offset == off) {
                        free(qf->rcpt[i].last_status);
                        qf->rcpt[i].last_status = xstrdup(end + 1);
                    }
            } else if (type == 'W') {
                qf->delay_warned = strtoll(val, NULL, 10);
            } else if (type == 'N') {
                long long off = strtoll(val, NULL, 10);
                for (size_t i = 0; i < qf->rcpt_count; i++)
                    if (qf->rcpt[i].status_offset == off)
                        qf->rcpt[i].success_noticed = 1;
            }
        }
        free(rec);
    }
    if (stage < 5)
        CORRUPT("truncated file (no E record)");
    qf->size = (off_t)len;
    strbuf_free(&data);
    return 0;
bad:
    strbuf_free(&data);
    return -1;
#undef CORRUPT
}

void queue_file_free(struct queue_file *qf)
{
    free(qf->id);
    free(qf->sender);
    strlist_free(&qf->attrs);
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        free(qf->rcpt[i].address);
        free(qf->rcpt[i].orcpt);
        free(qf->rcpt[i].notify);
        free(qf->rcpt[i].last_status);
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
    if (pwrite(fd, &status, 1, rcpt->status_offset) != 1)
        return -1;
    rcpt->status = status;
    return 0;
}

int queue_file_append(int fd, struct queue_file *qf, const char *record)
{
    struct strbuf line = STRBUF_INIT;
    strbuf_puts(&line, record);
    strbuf_putc(&line, '\n');
    ssize_t n = pwrite(fd, line.s, line.len, qf->size);
    int ok = n == (ssize_t)line.len;
    if (ok)
        qf->size += (off_t)line.len;
    strbuf_free(&line);
    return ok ? 0 : -1;
}

int queue_file_sync(int fd)
{
    return fdatasync(fd);
}
