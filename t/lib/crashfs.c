/* crashfs.c - a FUSE file system for the power-loss test (t/29-power-loss.t):
 * every operation passes through to a backing directory, and a second,
 * "durable" image receives only what a strict reading of POSIX makes
 * durable: a file's data and size when the file is fsynced or
 * fdatasynced, its owner and mode only when it is fsynced (fdatasync
 * need not write them), a directory's entries (create, link, rename,
 * unlink) when that directory is fsynced (a new entry's file with the
 * owner and mode it has then, unless an fsync made others durable).  That is stricter than ext4, whose journal
 * commits every earlier metadata change with any fsync; a program that
 * survives here survives a file system that orders less.
 *
 *   crashfs BACKING OUT MOUNTPOINT
 *
 * Everything in BACKING at the start counts as durable.  A stat of
 * MOUNTPOINT/.crashfs-cut is the power cut: the durable image is written
 * to OUT (created; files with several durable names are hard links),
 * OUT/.complete marks it done, and from then on every operation fails
 * with EIO, as a dead disk would, until the file system is unmounted.
 *
 * It runs single-threaded (every operation in turn, so a cut falls
 * between two of them) and as root for a test that runs daemons as other
 * users: new files get their creator's uid and gid (the directory's group
 * under a set-group-id directory), and the kernel checks permissions
 * (default_permissions).  Locks (flock, fcntl) stay in the kernel. */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

/* One inode as the durable image knows it.  A backing inode number can
 * be reused after a file is removed, so a node is made anew whenever a
 * file is created; the number maps to its newest node. */
struct dent {
    char *name;
    struct node *node;
};

struct node {
    unsigned long id;
    ino_t ino;
    mode_t mode;                /* type and permissions as last made durable */
    uid_t uid;
    gid_t gid;
    int has_data;               /* SHADOW/<id> holds its durable content */
    int has_meta;
    struct dent *entries;       /* a directory's durable entries */
    size_t count;
    char *emitted;              /* where the cut wrote it (for hard links) */
    struct node *next_in_bucket;
};

#define BUCKETS 4096
static struct node *buckets[BUCKETS];
static unsigned long next_id = 1;
static int backing = -1;        /* the backing directory */
static char *out_dir, *shadow_dir;
static int cut;
static int tracing;             /* CRASHFS_TRACE: each operation on stderr */

/* One line per operation when tracing (for a failing power-loss run). */
static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
    if (!tracing)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static struct node *node_lookup(ino_t ino)
{
    for (struct node *n = buckets[ino % BUCKETS]; n; n = n->next_in_bucket)
        if (n->ino == ino)
            return n;
    return NULL;
}

/* A new node for ino, replacing the mapping (the old node lives on in
 * whatever durable directory still names it). */
static struct node *node_new(ino_t ino)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->id = next_id++;
    n->ino = ino;
    struct node **p = &buckets[ino % BUCKETS];
    for (struct node **q = p; *q; q = &(*q)->next_in_bucket)
        if ((*q)->ino == ino) {
            *q = (*q)->next_in_bucket;  /* unmap the old one */
            break;
        }
    n->next_in_bucket = *p;
    *p = n;
    return n;
}

static struct node *node_of(ino_t ino)
{
    struct node *n = node_lookup(ino);
    return n ? n : node_new(ino);
}

/* The path relative to the backing directory ("." for the root). */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static void set_meta(struct node *n, const struct stat *st)
{
    n->mode = st->st_mode;
    n->uid = st->st_uid;
    n->gid = st->st_gid;
    n->has_meta = 1;
}

/* Copy the current content of fd into the node's shadow file. */
static int save_data(struct node *n, int fd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%lu", shadow_dir, n->id);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0)
        return -errno;
    char buf[65536];
    off_t at = 0;
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, at);
        if (got < 0) {
            int e = errno;
            close(out);
            return -e;
        }
        if (got == 0)
            break;
        if (write(out, buf, (size_t)got) != got) {
            close(out);
            return -EIO;
        }
        at += got;
    }
    close(out);
    n->has_data = 1;
    return 0;
}

/* Record a directory's present entries as its durable ones. */
static int snapshot_dir(struct node *dn, int dfd)
{
    int fd = dup(dfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    rewinddir(d);
    for (size_t i = 0; i < dn->count; i++)
        free(dn->entries[i].name);
    dn->count = 0;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        struct node *child = node_of(st.st_ino);
        if (!child->has_meta)
            set_meta(child, &st);
        if (dn->count == cap) {
            cap = cap ? cap * 2 : 16;
            dn->entries = realloc(dn->entries, cap * sizeof *dn->entries);
            if (!dn->entries)
                abort();
        }
        dn->entries[dn->count].name = strdup(de->d_name);
        dn->entries[dn->count].node = child;
        dn->count++;
    }
    closedir(d);
    return 0;
}

/* At the start everything is durable: every directory's entries, every
 * file's content. */
static void snapshot_tree(int dfd)
{
    struct stat st;
    if (fstat(dfd, &st) < 0)
        return;
    struct node *dn = node_of(st.st_ino);
    set_meta(dn, &st);
    snapshot_dir(dn, dfd);
    for (size_t i = 0; i < dn->count; i++) {
        struct node *c = dn->entries[i].node;
        if (S_ISDIR(c->mode)) {
            int sub = openat(dfd, dn->entries[i].name, O_RDONLY | O_DIRECTORY);
            if (sub >= 0) {
                snapshot_tree(sub);
                close(sub);
            }
        } else if (S_ISREG(c->mode) && !c->has_data) {
            int f = openat(dfd, dn->entries[i].name, O_RDONLY);
            if (f >= 0) {
                save_data(c, f);
                close(f);
            }
        }
    }
}

/* Write one directory's durable entries under path. */
static void emit_dir(struct node *dn, const char *path)
{
    for (size_t i = 0; i < dn->count; i++) {
        struct node *c = dn->entries[i].node;
        char to[PATH_MAX];
        snprintf(to, sizeof to, "%s/%s", path, dn->entries[i].name);
        if (S_ISDIR(c->mode)) {
            if (c->emitted)
                continue;           /* a directory named twice: once */
            if (mkdir(to, c->mode & 07777) < 0)
                continue;
            c->emitted = strdup(to);
            emit_dir(c, to);
        } else if (S_ISREG(c->mode)) {
            if (c->emitted) {
                if (link(c->emitted, to) == 0)
                    continue;
            }
            int fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0)
                continue;
            if (c->has_data) {
                char from[PATH_MAX], buf[65536];
                snprintf(from, sizeof from, "%s/%lu", shadow_dir, c->id);
                int in = open(from, O_RDONLY);
                ssize_t got;
                while (in >= 0 && (got = read(in, buf, sizeof buf)) > 0)
                    if (write(fd, buf, (size_t)got) != got)
                        break;
                if (in >= 0)
                    close(in);
            }
            close(fd);
            trace("emit %s node=%lu has_data=%d", to, c->id, c->has_data);
            c->emitted = strdup(to);
        } else if (S_ISFIFO(c->mode)) {
            if (mkfifo(to, c->mode & 07777) < 0)
                continue;
        } else {
            continue;               /* sockets: made again by their server */
        }
        if (lchown(to, c->uid, c->gid) < 0 || chmod(to, c->mode & 07777) < 0)
            fprintf(stderr, "crashfs: owner or mode of %s: %s\n", to, strerror(errno));
    }
}

static void power_cut(void)
{
    if (cut)
        return;
    cut = 1;
    struct stat st;
    if (fstat(backing, &st) < 0 || mkdir(out_dir, 0755) < 0) {
        fprintf(stderr, "crashfs: cannot write the durable image to %s: %s\n", out_dir,
                strerror(errno));
        return;
    }
    struct node *root = node_of(st.st_ino);
    if (root->has_meta) {
        chmod(out_dir, root->mode & 07777);
        if (lchown(out_dir, root->uid, root->gid) < 0)
            fprintf(stderr, "crashfs: owner of %s: %s\n", out_dir, strerror(errno));
    }
    emit_dir(root, out_dir);
    char done[PATH_MAX];
    snprintf(done, sizeof done, "%s/.complete", out_dir);
    int fd = open(done, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
        close(fd);
    fprintf(stderr, "crashfs: power cut; durable image in %s\n", out_dir);
}

#define LIVE() do { if (cut) return -EIO; } while (0)

/* A new file: its creator's uid, the gid of a set-group-id parent or the
 * creator's, and a node of its own. */
static void created(const char *path, int fd)
{
    struct fuse_context *ctx = fuse_get_context();
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", rel(path));
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(parent, ".");
    struct stat pst, st;
    gid_t gid = ctx->gid;
    if (fstatat(backing, parent, &pst, 0) == 0 && (pst.st_mode & S_ISGID))
        gid = pst.st_gid;
    if (fd >= 0) {
        if (fchown(fd, ctx->uid, gid) < 0)
            fprintf(stderr, "crashfs: chown %s: %s\n", path, strerror(errno));
        if (fstat(fd, &st) == 0)
            set_meta(node_new(st.st_ino), &st);
    } else {
        if (fchownat(backing, rel(path), ctx->uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            fprintf(stderr, "crashfs: chown %s: %s\n", path, strerror(errno));
        if (fstatat(backing, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0)
            set_meta(node_new(st.st_ino), &st);
    }
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (path && strcmp(path, "/.crashfs-cut") == 0) {
        power_cut();
        return -EIO;
    }
    LIVE();
    int r = fi ? fstat((int)fi->fh, st)
               : path ? fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW) : (errno = ENOENT, -1);
    return r < 0 ? -errno : 0;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
    LIVE();
    ssize_t n = readlinkat(backing, rel(path), buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
    LIVE();
    if (mknodat(backing, rel(path), mode, rdev) < 0)
        return -errno;
    created(path, -1);
    return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
    LIVE();
    if (mkdirat(backing, rel(path), mode) < 0)
        return -errno;
    created(path, -1);
    return 0;
}

static int fs_unlink(const char *path)
{
    LIVE();
    int r = unlinkat(backing, rel(path), 0) < 0 ? -errno : 0;
    trace("unlink %s r=%d", path, r);
    return r;
}

static int fs_rmdir(const char *path)
{
    LIVE();
    return unlinkat(backing, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int fs_symlink(const char *target, const char *path)
{
    LIVE();
    if (symlinkat(target, backing, rel(path)) < 0)
        return -errno;
    created(path, -1);
    return 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
    LIVE();
    int r = renameat2(backing, rel(from), backing, rel(to), flags) < 0 ? -errno : 0;
    trace("rename %s %s r=%d", from, to, r);
    return r;
}

static int fs_link(const char *from, const char *to)
{
    LIVE();
    int r = linkat(backing, rel(from), backing, rel(to), 0) < 0 ? -errno : 0;
    trace("link %s %s r=%d", from, to, r);
    return r;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LIVE();
    int r = fi ? fchmod((int)fi->fh, mode) : fchmodat(backing, rel(path), mode, 0);
    return r < 0 ? -errno : 0;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    LIVE();
    int r = fi ? fchown((int)fi->fh, uid, gid)
               : fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
    return r < 0 ? -errno : 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    LIVE();
    trace("truncate %s %lld", path, (long long)size);
    if (fi)
        return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
    int fd = openat(backing, rel(path), O_WRONLY);
    if (fd < 0)
        return -errno;
    int r = ftruncate(fd, size) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* Files are opened read-write underneath whenever allowed (we are root),
 * so that an fsync through a write-only descriptor can read the content. */
static int open_backing(const char *path, int flags, mode_t mode)
{
    int base = flags & ~(O_ACCMODE | O_NOFOLLOW | O_EXCL | O_CREAT | O_TRUNC);
    int fd = openat(backing, rel(path), base | O_RDWR | (flags & (O_CREAT | O_EXCL | O_TRUNC)),
                    mode);
    if (fd < 0 && (errno == EISDIR || errno == EACCES || errno == EROFS || errno == ETXTBSY))
        fd = openat(backing, rel(path), flags & ~O_NOFOLLOW, mode);
    return fd;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    LIVE();
    int fd = open_backing(path, fi->flags, 0);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LIVE();
    int fd = open_backing(path, fi->flags | O_CREAT, mode);
    if (fd < 0)
        return -errno;
    created(path, fd);
    trace("create %s node=%lu", path, next_id - 1);
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    LIVE();
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    LIVE();
    ssize_t n = (fi->flags & O_APPEND) ? write((int)fi->fh, buf, size)
                                       : pwrite((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int fs_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    LIVE();
    return fstatvfs(backing, st) < 0 ? -errno : 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

/* fsync and fdatasync: the file's content and size become durable; its
 * owner and mode only with fsync. */
static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    LIVE();
    struct stat st;
    if (fstat((int)fi->fh, &st) < 0)
        return -errno;
    struct node *n = node_of(st.st_ino);
    if (!datasync)
        set_meta(n, &st);
    int r = save_data(n, (int)fi->fh);
    if (tracing) {
        char tail[64] = "";
        off_t at = st.st_size > 40 ? st.st_size - 40 : 0;
        ssize_t got = pread((int)fi->fh, tail, sizeof tail - 1, at);
        tail[got > 0 ? got : 0] = '\0';
        for (char *c = tail; *c; c++)
            if (*c == '\n')
                *c = '|';
        trace("%s %s node=%lu ino=%llu size=%lld mode=%o tail=%s r=%d", datasync ? "fdatasync" : "fsync",
              path ? path : "-", n->id,
              (unsigned long long)st.st_ino, (long long)st.st_size, st.st_mode & 07777, tail, r);
    }
    return r;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
    LIVE();
    int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    LIVE();
    int fd = dup((int)fi->fh);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type)};
        if (fill(buf, de->d_name, &st, 0, 0))
            break;
    }
    closedir(d);
    return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

/* fsync of a directory: its entries become durable. */
static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    LIVE();
    struct stat st;
    if (fstat((int)fi->fh, &st) < 0)
        return -errno;
    struct node *n = node_of(st.st_ino);
    set_meta(n, &st);
    int r = snapshot_dir(n, (int)fi->fh);
    if (tracing) {
        trace("fsyncdir %s node=%lu entries=%zu", path ? path : "-", n->id, n->count);
        for (size_t i = 0; i < n->count; i++)
            trace("  entry %s node=%lu", n->entries[i].name, n->entries[i].node->id);
    }
    return r;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    LIVE();
    int r = fi ? futimens((int)fi->fh, tv)
               : utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW);
    return r < 0 ? -errno : 0;
}

static int fs_access(const char *path, int mask)
{
    LIVE();
    (void)path;
    (void)mask;
    return 0;                       /* default_permissions: the kernel checks */
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->hard_remove = 1;           /* no .fuse_hidden files in the image */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->kernel_cache = 0;
    cfg->nullpath_ok = 1;
    return NULL;
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .readlink = fs_readlink,
    .mknod = fs_mknod,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .link = fs_link,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .truncate = fs_truncate,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .statfs = fs_statfs,
    .release = fs_release,
    .fsync = fs_fsync,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .fsyncdir = fs_fsyncdir,
    .utimens = fs_utimens,
    .access = fs_access,
};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: crashfs BACKING OUT MOUNTPOINT\n");
        return 2;
    }
    backing = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (backing < 0) {
        perror(argv[1]);
        return 1;
    }
    out_dir = realpath(argv[2], NULL) ? realpath(argv[2], NULL) : strdup(argv[2]);
    char tmpl[] = "/tmp/crashfs-shadow.XXXXXX";
    shadow_dir = mkdtemp(tmpl);
    if (!shadow_dir || !out_dir) {
        perror("crashfs: shadow directory");
        return 1;
    }
    shadow_dir = strdup(shadow_dir);
    /* the kernel has applied the caller's umask to every mode we are
     * given: ours must not take more away */
    umask(0);
    tracing = getenv("CRASHFS_TRACE") != NULL;
    snapshot_tree(backing);
    char *fargv[] = {argv[0], "-f", "-s", "-o",
                     "allow_other,default_permissions,fsname=crashfs,subtype=crashfs",
                     argv[3], NULL};
    int r = fuse_main(6, fargv, &ops, NULL);
    /* the shadow copies are ours alone */
    char cmd[PATH_MAX];
    DIR *d = opendir(shadow_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        snprintf(cmd, sizeof cmd, "%s/%s", shadow_dir, de->d_name);
        if (de->d_name[0] != '.')
            unlink(cmd);
    }
    if (d)
        closedir(d);
    rmdir(shadow_dir);
    return r;
}
