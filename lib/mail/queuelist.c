/* queuelist.c - the mail queue in mailq(1) format (Postfix's postqueue -p /
 * showq output), for `postern queue list`, `mailq` and `sendmail -bp`.
 * A message is what the start-up scan would deliver (doc/queue-format.md,
 * "Commit"): a new file of incoming/ only with a valid commit record, and
 * a committed slot of recycle/ that no queue name links yet (a crash
 * before its link) under the id of its commit record. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "queuefile.h"
#include "strbuf.h"

#define LIST_ROW        "%-11s %7s %-20s %s\n"
#define LIST_SENDER     "%-11s %7lld %20.20s %s\n"

/* qsort comparison of two strings. */
static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The message ids in one queue directory, sorted; -1 when unreadable. */
static int queue_ids(const char *queue_dir, const char *queue, struct strlist *ids)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", queue_dir, queue);
    DIR *dir = opendir(path.s);
    if (!dir) {
        int missing = errno == ENOENT;
        if (!missing)
            msg_warn_errno("open %s", path.s);
        strbuf_free(&path);
        return missing ? 0 : -1;
    }
    strbuf_free(&path);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (queue_id_valid(entry->d_name))
            strlist_add(ids, entry->d_name);
    closedir(dir);
    if (ids->count > 1)
        qsort(ids->item, ids->count, sizeof *ids->item, compare_names);
    return 0;
}

/* Print one message read from fd (queue: where it is, for the mark);
 * returns its size, or -1 when it is no message (corrupt, or in incoming/
 * without a valid commit record: not listed, as showq does). */
static long long list_fd(int fd, const char *queue, const char *id, int first, FILE *out)
{
    struct strbuf err = STRBUF_INIT;
    struct queue_file qf;
    if (queue_file_read(fd, id, &qf, &err) < 0) {
        strbuf_free(&err);
        return -1;
    }
    if (strcmp(queue, QUEUE_INCOMING) == 0 && queue_file_verify(fd, &qf, &err) < 0) {
        queue_file_free(&qf);
        strbuf_free(&err);
        return -1;
    }
    strbuf_free(&err);
    if (first)
        fprintf(out, LIST_ROW, "-Queue ID-", "--Size--", "----Arrival Time----",
                "-Sender/Recipient-------");
    else
        fputc('\n', out);
    char decorated[40];
    snprintf(decorated, sizeof decorated, "%s%s", id,
             strcmp(queue, QUEUE_ACTIVE) == 0 ? "*" : strcmp(queue, QUEUE_HOLD) == 0 ? "!" : "");
    time_t arrival = (time_t)qf.arrival_sec;
    struct tm tm;
    char when[64] = "";
    if (localtime_r(&arrival, &tm))
        asctime_r(&tm, when);
    fprintf(out, LIST_SENDER, decorated, (long long)qf.content_length, when,
            *qf.sender ? qf.sender : "MAILER-DAEMON");
    const char *shown_reason = "";
    for (size_t i = 0; i < qf.rcpt_count; i++) {
        const struct queue_recipient *r = &qf.rcpt[i];
        if (r->status != RCPT_TODO)
            continue;
        /* the reason without its DSN code, shown once per run of recipients */
        const char *reason = "";
        if (r->last_status) {
            const char *space = strchr(r->last_status, ' ');
            reason = space ? space + 1 : r->last_status;
        }
        if (strcmp(reason, shown_reason) != 0) {
            const char *text = *reason ? reason : "reason unavailable";
            int padding = 76 - (int)strlen(text);
            fprintf(out, "%*s(%s)\n", padding > 0 ? padding : 0, "", text);
            shown_reason = reason;
        }
        fprintf(out, LIST_ROW, "", "", "", r->address);
    }
    long long size = (long long)qf.content_length;
    queue_file_free(&qf);
    return size;
}

/* Print one message of a queue directory (see list_fd). */
static long long list_message(const char *queue_dir, const char *queue,
                              const char *id, int first, FILE *out)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s/%s", queue_dir, queue, id);
    int fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    strbuf_free(&path);
    if (fd < 0)
        return -1;
    long long size = list_fd(fd, queue, id, first, out);
    close(fd);
    return size;
}

/* The committed slots of recycle/ that no queue name links (a crash
 * before the link; qmgr names them when it starts), as messages of
 * incoming/ under the id of their commit record.  A slot being written
 * (locked) is not one yet. */
static void list_slots(const char *queue_dir, unsigned long long *total, unsigned long *count,
                       FILE *out)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_RECYCLE, queue_dir);
    DIR *dir = opendir(path.s);
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        int fd = openat(dirfd(dir), entry->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size > 0
            && flock(fd, LOCK_SH | LOCK_NB) == 0) {
            struct queue_file qf;
            struct strbuf err = STRBUF_INIT;
            int todo = 0;
            if (queue_file_read(fd, entry->d_name, &qf, &err) == 0) {
                if (qf.commit_id && queue_file_verify(fd, &qf, &err) == 0)
                    for (size_t i = 0; i < qf.rcpt_count; i++)
                        todo |= qf.rcpt[i].status != RCPT_DONE;
                if (todo) {
                    char id[32];
                    snprintf(id, sizeof id, "%s", qf.commit_id);
                    long long size = list_fd(fd, QUEUE_INCOMING, id, *count == 0, out);
                    if (size >= 0) {
                        *total += (unsigned long long)size;
                        ++*count;
                    }
                }
                queue_file_free(&qf);
            }
            strbuf_free(&err);
        }
        close(fd);
    }
    if (dir)
        closedir(dir);
    strbuf_free(&path);
}

int queue_list(const char *queue_dir, FILE *out)
{
    enum { QUEUES = 4 };
    static const char *const queues[QUEUES] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
    };
    /* all names first: a queue that cannot be read means no report at all,
     * never a misleading "Mail queue is empty" */
    struct strlist ids[QUEUES] = {STRLIST_INIT, STRLIST_INIT, STRLIST_INIT, STRLIST_INIT};
    int rc = 0;
    for (size_t q = 0; q < QUEUES; q++)
        if (queue_ids(queue_dir, queues[q], &ids[q]) < 0)
            rc = -1;
    unsigned long long total = 0;
    unsigned long count = 0;
    for (size_t q = 0; q < QUEUES && rc == 0; q++) {
        for (size_t i = 0; i < ids[q].count; i++) {
            long long size = list_message(queue_dir, queues[q], ids[q].item[i], count == 0, out);
            if (size >= 0) {
                total += (unsigned long long)size;
                count++;
            }
        }
    }
    if (rc == 0)
        list_slots(queue_dir, &total, &count, out);
    for (size_t q = 0; q < QUEUES; q++)
        strlist_free(&ids[q]);
    if (rc < 0) {
        msg_error("queue report unavailable: cannot read the queue in %s", queue_dir);
        return -1;
    }
    if (count == 0)
        fprintf(out, "Mail queue is empty\n");
    else
        fprintf(out, "\n-- %llu Kbytes in %lu Request%s.\n", total / 1024, count,
                count == 1 ? "" : "s");
    return 0;
}
