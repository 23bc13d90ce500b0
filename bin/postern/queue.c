/* queue.c - `postern queue`: postqueue, postsuper and postcat in one
 * subcommand (postern-queue(1)): list, flush [DOMAIN], delete, hold,
 * release, requeue, cat, init.  Messages move between the queue
 * directories by rename(2) only, as doc/queue-format.md requires. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "postern.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *queue_dir;

/* Queues a message may be taken from by each action (Postfix's defaults). */
static const char *const all_queues[] = {
    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, NULL,
};

/* Print the usage; the exit status for it. */
static int usage(void)
{
    fprintf(stderr,
            "usage: postern queue [-c DIR] [-o name=value]... ACTION [ARGS]\n"
            "  list                      the queue, as mailq\n"
            "  flush [DOMAIN]            deliver deferred mail now (for DOMAIN only)\n"
            "  delete ID...|ALL [QUEUE]  remove messages (ID \"-\": ids from stdin)\n"
            "  hold ID...|ALL [QUEUE]    put messages on hold\n"
            "  release ID...|ALL         release messages from hold\n"
            "  requeue ID...|ALL [QUEUE] send messages through the queue manager again\n"
            "  cat ID...                 print queue files readably\n"
            "  init                      create the queue directories\n");
    return 2;
}

/* "queue_dir/queue/id" into path. */
static const char *message_path(struct strbuf *path, const char *queue, const char *id)
{
    strbuf_reset(path);
    strbuf_printf(path, "%s/%s/%s", queue_dir, queue, id);
    return path->s;
}

/* 1 when name is one of the queues an action may take from. */
static int queue_allowed(const char *queue, const char *const *from)
{
    for (; *from; from++)
        if (strcmp(*from, queue) == 0)
            return 1;
    return 0;
}

/* What an action does to one message found in `queue`: 1 done, 0 skipped,
 * -1 failed (logged). */
typedef int (*action_fn)(const char *queue, const char *id);

/* Set a deferred file's next-attempt time (its mtime) to now. */
static int make_due_now(const char *path)
{
    struct timespec times[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};
    if (utimensat(AT_FDCWD, path, times, 0) < 0) {
        msg_warn_errno("set the time of %s", path);
        return -1;
    }
    return 0;
}

/* Move a message to another queue (no replacing). 1 or -1. */
static int move_message(const char *from, const char *to, const char *id)
{
    struct strbuf src = STRBUF_INIT, dst = STRBUF_INIT;
    message_path(&src, from, id);
    message_path(&dst, to, id);
    int rc = renameat2(AT_FDCWD, src.s, AT_FDCWD, dst.s, RENAME_NOREPLACE);
    if (rc < 0 && (errno == EINVAL || errno == ENOSYS))
        rc = rename(src.s, dst.s);
    if (rc < 0)
        msg_warn_errno("move %s to %s", src.s, dst.s);
    else if (strcmp(to, QUEUE_DEFERRED) == 0)
        (void)make_due_now(dst.s);
    strbuf_free(&src);
    strbuf_free(&dst);
    return rc < 0 ? -1 : 1;
}

/* action_fn of "delete": remove the file, and empty it first when a slot
 * of recycle/ links it too (invalid only, in active/: qmgr may be reading
 * it), so that the message never comes back from there
 * (doc/queue-format.md, "Commit"). */
static int do_delete(const char *queue, const char *id)
{
    struct strbuf path = STRBUF_INIT;
    int rc = queue_file_unlink(AT_FDCWD, message_path(&path, queue, id),
                               strcmp(queue, QUEUE_ACTIVE) == 0);
    if (rc < 0)
        msg_warn_errno("remove %s", path.s);
    else
        msg_info("%s: removed", id);
    strbuf_free(&path);
    return rc < 0 ? -1 : 1;
}

/* action_fn of "hold": move the message to hold/. */
static int do_hold(const char *queue, const char *id)
{
    if (strcmp(queue, QUEUE_HOLD) == 0)
        return 0;
    int rc = move_message(queue, QUEUE_HOLD, id);
    if (rc > 0)
        msg_info("%s: placed on hold", id);
    return rc;
}

/* action_fn of "release": move a held message to deferred/, due now. */
static int do_release(const char *queue, const char *id)
{
    if (strcmp(queue, QUEUE_HOLD) != 0)
        return 0;
    int rc = move_message(queue, QUEUE_DEFERRED, id);
    if (rc > 0)
        msg_info("%s: released from hold", id);
    return rc;
}

/* action_fn of "requeue": move the message to incoming/ for qmgr. */
static int do_requeue(const char *queue, const char *id)
{
    if (strcmp(queue, QUEUE_INCOMING) == 0)
        return 1;                   /* already where qmgr takes new mail */
    int rc = move_message(queue, QUEUE_INCOMING, id);
    if (rc > 0)
        msg_info("%s: requeued", id);
    return rc;
}

/* Apply fn to every message of the allowed queues. */
static int apply_all(action_fn fn, const char *const *from, int *done)
{
    int failed = 0;
    for (const char *const *q = from; *q; q++) {
        struct strbuf path = STRBUF_INIT;
        strbuf_printf(&path, "%s/%s", queue_dir, *q);
        DIR *dir = opendir(path.s);
        if (!dir) {
            if (errno != ENOENT) {
                msg_warn_errno("open %s", path.s);
                failed = 1;
            }
            strbuf_free(&path);
            continue;
        }
        strbuf_free(&path);
        struct strlist ids = STRLIST_INIT;
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL)
            if (queue_id_valid(entry->d_name))
                strlist_add(&ids, entry->d_name);
        closedir(dir);
        for (size_t i = 0; i < ids.count; i++) {
            int r = fn(*q, ids.item[i]);
            if (r > 0)
                (*done)++;
            else if (r < 0)
                failed = 1;
        }
        strlist_free(&ids);
    }
    return failed;
}

/* "-" as an id: ids from stdin, one per line (the first word; a trailing
 * `*` or `!` from mailq output is ignored), as postsuper reads them. */
static void read_ids(struct strlist *ids)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        size_t n = strcspn(line, " \t\r\n*!");
        if (n == 0)
            continue;
        line[n] = '\0';
        strlist_add(ids, line);
    }
    free(line);
}

/* delete/hold/release/requeue: IDs ("-": from stdin), or ALL with an
 * optional queue name. */
static int run_action(action_fn fn, const char *verb, const char *const *from,
                      int argc, char **argv)
{
    if (argc < 1)
        return usage();
    int done = 0, failed = 0;
    if (strcmp(argv[0], "ALL") == 0) {
        const char *only[8] = {NULL};
        if (argc > 2)
            return usage();
        /* ALL means the live queues, as postsuper: corrupt/ only by name */
        size_t n = 0;
        for (const char *const *q = from; *q && n < 7; q++)
            if (strcmp(*q, QUEUE_CORRUPT) != 0)
                only[n++] = *q;
        from = only;
        if (argc == 2) {
            if (!queue_allowed(argv[1], all_queues) && strcmp(argv[1], QUEUE_CORRUPT) != 0) {
                msg_error("unknown queue: %s", argv[1]);
                return 1;
            }
            only[0] = argv[1];
            only[1] = NULL;
        }
        failed = apply_all(fn, from, &done);
    } else {
        struct strlist ids = STRLIST_INIT;
        for (int i = 0; i < argc; i++) {
            if (strcmp(argv[i], "-") == 0)
                read_ids(&ids);
            else
                strlist_add(&ids, argv[i]);
        }
        for (size_t i = 0; i < ids.count; i++) {
            const char *queue = queue_find(queue_dir, ids.item[i]);
            if (!queue || !queue_allowed(queue, from)) {
                msg_warn("%s: no such message%s", ids.item[i],
                         queue ? " in a queue this acts on" : "");
                failed = 1;
                continue;
            }
            int r = fn(queue, ids.item[i]);
            if (r > 0)
                done++;
            else if (r < 0)
                failed = 1;
        }
        strlist_free(&ids);
    }
    if (done)
        msg_info("%s: %d message%s", verb, done, done == 1 ? "" : "s");
    return failed;
}

/* The domain of an address, after its last '@' ("" when none). */
static const char *address_domain(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : "";
}

/* flush DOMAIN: deferred messages with a recipient in DOMAIN are due now. */
static int flush_domain(const char *domain)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/" QUEUE_DEFERRED, queue_dir);
    DIR *dir = opendir(path.s);
    if (!dir) {
        msg_warn_errno("open %s", path.s);
        strbuf_free(&path);
        return 1;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (!queue_id_valid(entry->d_name))
            continue;
        message_path(&path, QUEUE_DEFERRED, entry->d_name);
        int fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct queue_file qf;
        if (fd < 0 || queue_file_read(fd, entry->d_name, &qf, &err) < 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        close(fd);
        for (size_t i = 0; i < qf.rcpt_count; i++) {
            if (qf.rcpt[i].status == RCPT_TODO
                && strcasecmp(address_domain(qf.rcpt[i].address), domain) == 0) {
                (void)make_due_now(path.s);
                break;
            }
        }
        queue_file_free(&qf);
    }
    closedir(dir);
    strbuf_free(&path);
    strbuf_free(&err);
    return 0;
}

/* Print a time as postcat does. */
static void print_time(const char *label, long long when)
{
    time_t t = (time_t)when;
    char text[64];
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(text, sizeof text, "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(text, sizeof text, "%lld", when);
    printf("%s: %s\n", label, text);
}

/* Copy length bytes at offset of fd to stdout. */
static int copy_content(int fd, off_t offset, off_t length)
{
    char buf[64 * 1024];
    fflush(stdout);
    while (length > 0) {
        size_t want = length < (off_t)sizeof buf ? (size_t)length : sizeof buf;
        ssize_t got = pread_retry(fd, buf, want, offset);
        if (got <= 0)
            return -1;
        if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
            return -1;
        offset += got;
        length -= got;
    }
    return 0;
}

/* cat ID: the queue file, readably (postcat). */
static int cat_message(const char *id)
{
    const char *queue = queue_find(queue_dir, id);
    if (!queue) {
        msg_error("%s: no such message", id);
        return 1;
    }
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    message_path(&path, queue, id);
    int fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct queue_file qf;
    if (fd < 0) {
        msg_error("open %s: %s", path.s, strerror(errno));
        strbuf_free(&path);
        strbuf_free(&err);
        return 1;
    }
    if (queue_file_read(fd, id, &qf, &err) < 0) {
        msg_error("%s: corrupt queue file: %s", path.s, strbuf_str(&err));
        close(fd);
        strbuf_free(&path);
        strbuf_free(&err);
        return 1;
    }
    const char *where = path.s + strlen(queue_dir) + 1;
    printf("*** ENVELOPE RECORDS %s ***\n", where);
    printf("message_size: %lld\n", (long long)qf.content_length);
    print_time("message_arrival_time", qf.arrival_sec);
    printf("sender: %s\n", qf.sender);
    for (size_t i = 0; i < qf.attrs.count; i++)
        printf("named_attribute: %s\n", qf.attrs.item[i]);
    for (size_t i = 0; i < qf.rcpt_count; i++) {
        const struct queue_recipient *r = &qf.rcpt[i];
        printf("%s: %s\n", r->status == RCPT_DONE ? "done_recipient"
               : r->status == RCPT_BOUNCE ? "bounce_recipient" : "recipient", r->address);
        if (r->orcpt)
            printf("original_recipient: %s\n", r->orcpt);
        if (r->notify)
            printf("notify_flags: %s\n", r->notify);
    }
    printf("*** MESSAGE CONTENTS %s ***\n", where);
    int rc = 0;
    if (copy_content(fd, qf.content_offset, qf.content_length) < 0) {
        msg_error("%s: read error in the message content", path.s);
        rc = 1;
    }
    printf("*** HEADER EXTRACTED %s ***\n", where);
    for (size_t i = 0; i < qf.rcpt_count; i++) {
        const struct queue_recipient *r = &qf.rcpt[i];
        if (r->last_status)
            printf("status: %s: %s\n", r->address, r->last_status);
        if (r->success_noticed)
            printf("success_notice_sent: %s\n", r->address);
    }
    if (qf.delay_warned)
        print_time("warning_message_time", qf.delay_warned);
    printf("*** MESSAGE FILE END %s ***\n", where);
    close(fd);
    queue_file_free(&qf);
    strbuf_free(&path);
    strbuf_free(&err);
    return rc;
}

/* init: the queue tree, owned by mail_owner:setgid_group when run as root. */
static int init_queue(void)
{
    uid_t owner = (uid_t)-1, data_owner = (uid_t)-1;
    gid_t group = (gid_t)-1, data_group = (gid_t)-1;
    if (geteuid() == 0) {
        const char *user = conf_str("mail_owner"), *grname = conf_str("setgid_group");
        struct passwd *pw = getpwnam(user);
        struct group *gr = getgrnam(grname);
        if (!pw || !gr) {
            msg_error("%s %s does not exist: create it first (mail_owner and setgid_group)",
                      pw ? "group" : "user", pw ? grname : user);
            return 1;
        }
        owner = data_owner = pw->pw_uid;
        group = gr->gr_gid;
        data_group = pw->pw_gid;
    }
    struct strbuf err = STRBUF_INIT;
    int rc = queue_dirs_create(queue_dir, owner, group, &err);
    /* data_directory: mail_owner's, as Postfix's /var/lib/postfix (the
     * verify service's cache, the runners' TLS-RPT records) */
    if (rc == 0)
        rc = data_dir_create(conf_str("data_directory"), data_owner, data_group, &err);
    if (rc < 0)
        msg_error("%s", strbuf_str(&err));
    strbuf_free(&err);
    return rc < 0;
}

int cmd_queue(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:o:v")) != -1)
        if (!config_common_option(opt, optarg))
            return usage();
    argc -= optind;
    argv += optind;
    if (argc < 1)
        return usage();
    config_load(0);
    queue_dir = xstrdup(conf_str("queue_directory"));
    const char *action = argv[0];
    argc--;
    argv++;
    static const char *const from_hold[] = {QUEUE_HOLD, NULL};
    static const char *const any_queue[] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, NULL,
    };
    if (strcmp(action, "list") == 0 && argc == 0)
        return queue_list(queue_dir, stdout) < 0 || fflush(stdout) != 0;
    if (strcmp(action, "flush") == 0 && argc <= 1) {
        /* postqueue -f, or -s DOMAIN: qmgr takes the domain's deferred
         * mail, defer_transports included */
        if (!argc) {
            queue_trigger(queue_dir, 'F');
            return 0;
        }
        if (queue_trigger_site(queue_dir, argv[0]) != 0) {
            msg_warn("flush: not a domain: %s", argv[0]);
            return 1;
        }
        /* due now as well: a qmgr that is not running takes them first
         * when it starts */
        return flush_domain(argv[0]);
    }
    if (strcmp(action, "cat") == 0 && argc >= 1) {
        int rc = 0;
        for (int i = 0; i < argc; i++)
            rc |= cat_message(argv[i]);
        return rc | (fflush(stdout) != 0);
    }
    if (strcmp(action, "init") == 0 && argc == 0)
        return init_queue();
    /* postsuper's actions log as postsuper does */
    log_open("postsuper", LOG_STDERR);
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
    if (strcmp(action, "delete") == 0)
        return run_action(do_delete, "Deleted", any_queue, argc, argv);
    if (strcmp(action, "hold") == 0)
        return run_action(do_hold, "Placed on hold", all_queues, argc, argv);
    if (strcmp(action, "release") == 0)
        return run_action(do_release, "Released from hold", from_hold, argc, argv);
    if (strcmp(action, "requeue") == 0) {
        int rc = run_action(do_requeue, "Requeued", all_queues, argc, argv);
        queue_trigger(queue_dir, 'A');
        return rc;
    }
    return usage();
}
