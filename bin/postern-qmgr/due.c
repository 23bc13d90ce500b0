/* due.c - the next attempt time of a deferred/ file.  It is the file's
 * mtime, as Postfix's (doc/queue-format.md), which qmgr sets with
 * futimens.  The kernel lets only a file's owner set an explicit time: a
 * file qmgr does not own (the queue service's, when it runs as its own
 * user; an ordinary user's, from the set-group-id injector) gets the
 * current time instead (any writer may set that) and its due time is kept
 * here, in memory, keyed by the queue id together with that mtime, so that
 * `postern queue release` (which sets the mtime to now) still makes it due
 * at once.  After a restart such a file is due by its mtime: one early
 * attempt, then it is known again.  Never an attempt every scan. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

#define DUE_BUCKETS 1024

struct due_entry {
    char *id;
    struct timespec mtime;      /* what the file had when we deferred it */
    time_t due;
    unsigned seen;              /* scan generation that last found it */
    struct due_entry *next;
};

static struct due_entry *buckets[DUE_BUCKETS];
static unsigned scan_generation;

static struct due_entry **bucket(const char *id)
{
    unsigned h = 5381;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = h * 33 + *p;
    return &buckets[h % DUE_BUCKETS];
}

/* The entry of id, or NULL; *link is where it hangs. */
static struct due_entry *lookup(const char *id, struct due_entry ***link)
{
    struct due_entry **l = bucket(id);
    for (; *l; l = &(*l)->next)
        if (strcmp((*l)->id, id) == 0)
            break;
    if (link)
        *link = l;
    return *l;
}

static void unlink_entry(struct due_entry **link)
{
    struct due_entry *e = *link;
    *link = e->next;
    free(e->id);
    free(e);
}

void due_forget(const char *id)
{
    struct due_entry **link;
    if (lookup(id, &link))
        unlink_entry(link);
}

void due_set(int fd, const char *id, time_t when)
{
    struct timespec times[2] = {{when, 0}, {when, 0}};
    due_forget(id);
    if (futimens(fd, times) == 0)
        return;
    int saved = errno;
    struct stat st;
    static int told;
    times[0].tv_nsec = times[1].tv_nsec = UTIME_NOW;
    if (saved != EPERM || futimens(fd, times) != 0 || fstat(fd, &st) != 0) {
        /* the time stays what it was (the last write: about now); the
         * entry below still holds it back */
        if (!told++) {
            errno = saved;
            msg_warn_errno("%s: set next attempt time", id);
        }
        if (fstat(fd, &st) != 0)
            return;
    } else if (!told++) {
        msg_warn("%s: queue file owned by uid %ld, not by mail_owner: its next attempt time "
                 "is kept in memory (an early attempt after a restart; doc/queue-format.md)",
                 id, (long)st.st_uid);
    }
    struct due_entry **link;
    lookup(id, &link);
    struct due_entry *e = xcalloc(1, sizeof *e);
    e->id = xstrdup(id);
    e->mtime = st.st_mtim;
    e->due = when;
    e->seen = scan_generation;
    *link = e;
}

int due_now(const char *id, const struct stat *st, time_t now)
{
    struct due_entry **link;
    struct due_entry *e = lookup(id, &link);
    if (e && (e->mtime.tv_sec != st->st_mtim.tv_sec || e->mtime.tv_nsec != st->st_mtim.tv_nsec)) {
        unlink_entry(link);         /* touched since: released, requeued */
        e = NULL;
    }
    if (e) {
        e->seen = scan_generation;
        return e->due <= now;
    }
    return st->st_mtime <= now;
}

void due_scan_begin(void)
{
    scan_generation++;
}

void due_scan_end(void)
{
    /* entries of files no longer in deferred/ (deleted, held) go */
    for (size_t i = 0; i < DUE_BUCKETS; i++)
        for (struct due_entry **l = &buckets[i]; *l;)
            if ((*l)->seen != scan_generation)
                unlink_entry(l);
            else
                l = &(*l)->next;
}
