/* queuedirs.c - the queue directory tree: creating it with the modes of
 * doc/privileges.md, finding a message in it, and poking qmgr through the
 * trigger FIFO (doc/queue-format.md). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "queuefile.h"
#include "strbuf.h"

/* Make one directory (or FIFO) with exactly this mode and ownership. */
static int make_node(const char *path, int fifo, mode_t mode, uid_t owner,
                     gid_t group, struct strbuf *err)
{
    int r = fifo ? mkfifo(path, mode) : mkdir(path, mode);
    if (r < 0 && errno != EEXIST) {
        strbuf_printf(err, "create %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) < 0) {
        strbuf_printf(err, "stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (fifo ? !S_ISFIFO(st.st_mode) : !S_ISDIR(st.st_mode)) {
        strbuf_printf(err, "%s exists and is not a %s", path, fifo ? "FIFO" : "directory");
        return -1;
    }
    int changed = (st.st_mode & 07777) != mode;
    if ((owner != (uid_t)-1 || group != (gid_t)-1)
        && (st.st_uid != owner || st.st_gid != group)) {
        if (lchown(path, owner, group) < 0) {
            strbuf_printf(err, "chown %s: %s", path, strerror(errno));
            return -1;
        }
        changed = 1;
    }
    /* chmod after chown: chown clears the set-id bits */
    if (chmod(path, mode) < 0) {
        strbuf_printf(err, "chmod %s: %s", path, strerror(errno));
        return -1;
    }
    /* an owner or mode on disk only after the inode's fsync (a power cut
     * would give recycle/ back to root, and the slots made in it then) */
    if (changed && fsync_path(AT_FDCWD, path) < 0) {
        strbuf_printf(err, "fsync %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group,
                      struct strbuf *err)
{
    static const struct {
        const char *name;
        mode_t mode;
        int fifo;
    } nodes[] = {                   /* the group's bits are in the modes */
        {"", 0755, 0},
        {QUEUE_INCOMING, 03770, 0},     /* new files get the group, whoever writes */
        {QUEUE_ACTIVE, 0700, 0},
        {QUEUE_DEFERRED, 0700, 0},
        {QUEUE_HOLD, 0700, 0},
        {QUEUE_CORRUPT, 0700, 0},
        {QUEUE_RECYCLE, 02770, 0},     /* slots qmgr makes get the injectors' group */
        {"pid", 0700, 0},
        {"private", 0700, 0},       /* the runner services' sockets (qmgr only) */
        {"public", 0711, 0},         /* others reach public/queue */
        {QUEUE_TRIGGER, 0622, 1},      /* anyone may poke qmgr (smtpd: ETRN), as Postfix */
    };
    mode_t old_umask = umask(0);
    int rc = 0;
    struct strbuf path = STRBUF_INIT;
    for (size_t i = 0; rc == 0 && i < sizeof nodes / sizeof nodes[0]; i++) {
        strbuf_reset(&path);
        strbuf_puts(&path, queue_dir);
        if (*nodes[i].name)
            strbuf_printf(&path, "/%s", nodes[i].name);
        rc = make_node(path.s, nodes[i].fifo, nodes[i].mode, owner, group, err);
    }
    umask(old_umask);
    /* the slots, so that the first messages find their names on disk */
    int qfd = rc == 0 ? open(queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (qfd >= 0) {
        if (queue_slots_stock(qfd) < 0) {
            strbuf_printf(err, "make the slots of %s/" QUEUE_RECYCLE ": %s", queue_dir,
                          strerror(errno));
            rc = -1;
        }
        close(qfd);
    }
    strbuf_free(&path);
    return rc;
}

const char *queue_find(const char *queue_dir, const char *id)
{
    static const char *const queues[] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
    };
    if (!queue_id_valid(id))
        return NULL;
    struct strbuf path = STRBUF_INIT;
    const char *found = NULL;
    for (size_t i = 0; !found && i < sizeof queues / sizeof queues[0]; i++) {
        strbuf_reset(&path);
        strbuf_printf(&path, "%s/%s/%s", queue_dir, queues[i], id);
        struct stat st;
        if (lstat(path.s, &st) == 0 && S_ISREG(st.st_mode))
            found = queues[i];
    }
    strbuf_free(&path);
    return found;
}

void queue_trigger(const char *queue_dir, char request)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_TRIGGER, queue_dir);
    int fd = open(path.s, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    strbuf_free(&path);
    if (fd < 0)
        return;                 /* no qmgr listening: it scans on its timer */
    ssize_t w;
    do
        w = write(fd, &request, 1);
    while (w < 0 && errno == EINTR);
    close(fd);                  /* EAGAIN (a full FIFO) is not an error */
}

int queue_trigger_site(const char *queue_dir, const char *domain)
{
    size_t len = strlen(domain);
    if (len == 0 || len > QUEUE_SITE_MAX || strspn(domain, QUEUE_SITE_CHARS) != len)
        return -1;
    char request[QUEUE_SITE_MAX + 2];
    request[0] = 'S';
    memcpy(request + 1, domain, len);
    request[len + 1] = '\n';
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_TRIGGER, queue_dir);
    int fd = open(path.s, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    strbuf_free(&path);
    if (fd < 0)
        return 0;               /* no qmgr listening: the next one scans */
    ssize_t w;
    /* one write of at most PIPE_BUF bytes: never mixed with another's */
    do
        w = write(fd, request, len + 2);
    while (w < 0 && errno == EINTR);
    close(fd);
    return 0;
}

int queue_space_short(unsigned long long free_bytes, long long minfree, long long limit,
                      long long size)
{
    unsigned long long need = minfree > 0 ? (unsigned long long)minfree : 0;
    if (limit > 0 && (unsigned long long)limit / 2 * 3 > need)
        need = (unsigned long long)limit / 2 * 3 + (unsigned long long)limit % 2;
    if (free_bytes <= need)
        return 1;
    if (size > 0 && ((unsigned long long)size >= free_bytes - (minfree > 0 ? (unsigned long long)minfree : 0)
                     || (unsigned long long)size >= free_bytes / 2))
        return 1;
    return 0;
}

int data_dir_create(const char *data_dir, uid_t owner, gid_t group, struct strbuf *err)
{
    if (!*data_dir)
        return 0;
    mode_t old_umask = umask(077);
    int rc = make_node(data_dir, 0, 0700, owner, group, err);
    umask(old_umask);
    return rc;
}
