/* postern-virtual - final delivery to virtual mailboxes, as Postfix's
 * virtual(8): the mailbox of a recipient is $virtual_mailbox_base/ followed
 * by its virtual_mailbox_maps value (a Maildir when that ends in '/', else
 * an mbox file), written as the uid and gid that virtual_uid_maps and
 * virtual_gid_maps give.  The delivery protocol (request mode, shell mode)
 * is lib/mail/runner.c; the writing of Maildir and mbox files is lib/mail/maildir.c
 * and lib/mail/mbox.c.  Quotas are those of Postfix's VDA patch
 * (virtual_mailbox_limit_maps, Maildir++ maildirsize files kept with
 * lib/mail/maildirsize.c; see quota_for() below), and so is the user's
 * header filter in the Maildir (virtual_maildir_filter, with
 * virtual_maildir_filter_maps; lib/mail/maildirfilter.h).  See
 * doc/postern-virtual.8.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "maildirfilter.h"
#include "map.h"
#include "runner.h"
#include "strbuf.h"
#include "xalloc.h"

/* What the configuration says, read once per process. */
struct virtual_setup {
    const char *base;               /* virtual_mailbox_base */
    struct maplist *mailbox_maps;   /* virtual_mailbox_maps */
    struct maplist *uid_maps;       /* virtual_uid_maps */
    struct maplist *gid_maps;       /* virtual_gid_maps */
    long long minimum_uid;          /* virtual_minimum_uid */
    off_t mailbox_limit;            /* virtual_mailbox_limit (0: none) */
    const char *delimiters;         /* recipient_delimiter */
    struct mbox_options mbox;
    /* quotas (Postfix's VDA patch) */
    int vda;                        /* any VDA setting: Maildir quotas are on */
    struct maplist *limit_maps;     /* virtual_mailbox_limit_maps */
    struct maplist *message_maps;   /* virtual_maildir_limit_message_maps */
    int limit_override;             /* virtual_mailbox_limit_override */
    long long message_limit;        /* message_size_limit */
    struct maildir_quota quota;     /* the settings every Maildir shares */
    /* the user's header filter (the VDA patch's virtual_maildir_filter) */
    int filter;                     /* virtual_maildir_filter */
    struct maplist *filter_maps;    /* virtual_maildir_filter_maps */
    int filter_move;                /* virtual_maildir_extended: MOVE works */
    const char *suffix;             /* virtual_maildir_suffix: the Maildir below the mailbox */
    int privileged;                 /* running as root: switch to the owner */
    int broken;                     /* a configuration error: defer everything */
};

/* Open one list of tables; on failure log it and mark the setup broken.
 * `options` is MAP_OPEN_NO_REGSUB for the owner tables: as in Postfix's
 * virtual(8), the sender of a message chooses the recipient address and
 * must not choose a uid or gid with it.  Unlike Postfix, a mailbox table
 * may substitute ($1/Maildir/): every mailbox path is checked before use
 * (relative to virtual_mailbox_base, no ".." component), which is what
 * lets one ordinary pcre rule give each local part its own Maildir. */
static struct maplist *open_maps(struct virtual_setup *setup, const char *param,
                                 unsigned options)
{
    struct strbuf err = STRBUF_INIT;
    struct maplist *maps = maplist_open_flags(conf_str(param), options, &err);
    if (!maps) {
        msg_warn("%s: %s", param, err.s);
        setup->broken = 1;
    }
    strbuf_free(&err);
    return maps;
}

/* A value without the double quotes around it: seed 000 writes
 * virtual_trash_name = ".Trash", which Postfix would take with its quotes
 * (and so never find the folder); no folder name holds them. */
static const char *unquoted(const char *value)
{
    size_t len = strlen(value);
    if (len < 2 || value[0] != '"' || value[len - 1] != '"')
        return value;
    static char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(len - 2), value + 1);
    return name;
}

/* Read the parameters and open the tables (once, at start). */
static void virtual_setup_init(struct virtual_setup *setup)
{
    memset(setup, 0, sizeof *setup);
    setup->base = conf_str("virtual_mailbox_base");
    if (setup->base[0] != '/') {
        msg_warn("do not specify relative pathname: virtual_mailbox_base = %s", setup->base);
        setup->broken = 1;
    }
    setup->minimum_uid = conf_int("virtual_minimum_uid");
    long long limit = conf_size("virtual_mailbox_limit");
    long long message_limit = conf_size("message_size_limit");
    if (limit < 0 || (limit > 0 && (limit < message_limit || message_limit == 0))) {
        /* Postfix's virtual(8) refuses this too (a fatal error): the limit
         * must fit any accepted message, and message_size_limit = 0 accepts
         * any size, so it needs virtual_mailbox_limit = 0 as well.
         * `postern check` reports it. */
        msg_warn("main.cf configuration error: virtual_mailbox_limit is smaller than message_size_limit");
        setup->broken = 1;
    }
    setup->mailbox_limit = (off_t)limit;
    setup->delimiters = conf_str("recipient_delimiter");
    struct strbuf err = STRBUF_INIT;
    if (mbox_lock_styles(conf_str("virtual_mailbox_lock"), &setup->mbox.lock_styles, &err) != 0) {
        msg_warn("virtual_mailbox_lock: %s", err.s);
        setup->broken = 1;
    }
    strbuf_free(&err);
    setup->mbox.lock_attempts = (int)conf_int("deliver_lock_attempts");
    if (setup->mbox.lock_attempts < 1)
        setup->mbox.lock_attempts = 1;
    setup->mbox.lock_delay = (int)conf_time("deliver_lock_delay");
    setup->mbox.stale_lock_time = (long)conf_time("stale_lock_time");
    setup->mbox.check_owner = conf_bool("strict_mailbox_ownership");
    setup->privileged = geteuid() == 0;
    setup->message_limit = message_limit;
    setup->limit_override = conf_bool("virtual_mailbox_limit_override");
    int extended = conf_bool("virtual_maildir_extended");
    setup->quota = (struct maildir_quota){
        /* virtual_maildir_extended is the newer name of the two older ones */
        .keep_maildirsize = extended || conf_bool("virtual_create_maildirsize"),
        .size_in_name = extended || conf_bool("virtual_mailbox_extended"),
        .inbox_only = conf_bool("virtual_mailbox_limit_inbox"),
        .count_trash = conf_bool("virtual_trash_count"),
        .trash_name = unquoted(conf_str("virtual_trash_name")),
        .bounce = conf_bool("virtual_overquota_bounce"),
        .message = conf_str("virtual_maildir_limit_message"),
    };
    setup->vda = *conf_str("virtual_mailbox_limit_maps") || setup->quota.keep_maildirsize
                 || setup->quota.size_in_name;
    setup->filter = conf_bool("virtual_maildir_filter");
    setup->suffix = conf_str("virtual_maildir_suffix");
    setup->filter_move = extended;
    if (!setup->broken) {
        setup->mailbox_maps = open_maps(setup, "virtual_mailbox_maps", 0);
        setup->uid_maps = open_maps(setup, "virtual_uid_maps", MAP_OPEN_NO_REGSUB);
        setup->gid_maps = open_maps(setup, "virtual_gid_maps", MAP_OPEN_NO_REGSUB);
        setup->limit_maps = open_maps(setup, "virtual_mailbox_limit_maps", 0);
        setup->message_maps = open_maps(setup, "virtual_maildir_limit_message_maps", 0);
        if (setup->filter && *conf_str("virtual_maildir_filter_maps"))
            setup->filter_maps = open_maps(setup, "virtual_maildir_filter_maps", 0);
    }
}

/* Close the tables. */
static void virtual_setup_free(struct virtual_setup *setup)
{
    maplist_close(setup->mailbox_maps);
    maplist_close(setup->uid_maps);
    maplist_close(setup->gid_maps);
    maplist_close(setup->limit_maps);
    maplist_close(setup->message_maps);
    maplist_close(setup->filter_maps);
}

/* Parse a numeric id from a table value; -1 when it is not a number. */
static long long parse_id(const char *value)
{
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (errno || end == value || *end || n < 0)
        return -1;
    return n;
}

/* Text from the recipient or a table in the form a log line may hold it
 * (log_printable), in buf. */
static const char *shown(struct strbuf *buf, const char *text)
{
    strbuf_reset(buf);
    return log_printable(buf, text, 500);
}

/* Look up the owner's uid or gid; the id, or -1 after reporting a
 * deferral (Postfix's 4.3.5 for every configuration problem). */
static long long lookup_id(struct runner_request *req, size_t i, const char *user,
                           struct maplist *maps, const char *param, long long minimum,
                           const char *what)
{
    struct strbuf value = STRBUF_INIT, shown_user = STRBUF_INIT, shown_value = STRBUF_INIT;
    int found = map_search_address(maps, user, NULL, 0, &value, NULL);
    long long id = -1;
    if (found != MAP_FOUND)
        msg_warn("recipient %s: not found in %s", shown(&shown_user, user), param);
    else if ((id = parse_id(value.s)) < minimum || id < 0) {
        msg_warn("recipient %s: bad %s %s in %s", shown(&shown_user, user), what,
                 shown(&shown_value, value.s), param);
        id = -1;
    }
    if (id < 0)
        runner_result(req, i, "4.3.5", "mail system configuration error");
    strbuf_free(&value);
    strbuf_free(&shown_user);
    strbuf_free(&shown_value);
    return id;
}

/* Whether a mailbox path from the table climbs out of the base with a ".."
 * component.  Pattern tables cannot put the recipient's text into the
 * path (open_maps); this also keeps other tables, whose values someone
 * other than the administrator may write (SQL rows), inside the base. */
static int leaves_base(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n;
        p += strspn(p, "/");
    }
    return 0;
}

/* Parse a quota from virtual_mailbox_limit_maps: an integer (bytes; a
 * database may add a fraction, which is dropped), blanks around it.
 * 0, or -1 when it is no number or beyond 2^63-1. */
static int parse_quota(const char *text, long long *quota)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text)
        return -1;
    if (*end == '.')
        for (end++; isdigit((unsigned char)*end); end++)
            ;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *quota = n;
    return 0;
}

/* The quota of one recipient, as Postfix's VDA patch decides it:
 * virtual_mailbox_limit_maps' value (bytes; 0: no limit), else
 * virtual_mailbox_limit; a negative value, or (without
 * virtual_mailbox_limit_override) one below message_size_limit, falls back
 * to virtual_mailbox_limit.  *limit gets it and *from_table whether the
 * table gave it.  0, or -1 after a deferral (the table failed). */
static int quota_for(struct virtual_setup *setup, struct runner_request *req, size_t i,
                     const char *user, long long *limit, int *from_table)
{
    *limit = setup->vda ? (long long)setup->mailbox_limit : 0;
    *from_table = 0;
    if (!setup->limit_maps || maplist_count(setup->limit_maps) == 0)
        return 0;
    struct strbuf value = STRBUF_INIT, shown_user = STRBUF_INIT, shown_value = STRBUF_INIT;
    int found = map_search_address(setup->limit_maps, user, setup->delimiters, 0, &value, NULL);
    long long n = 0;
    int result = 0;
    if (found == MAP_RETRY) {
        msg_warn("table %s: lookup %s: temporary failure", conf_str("virtual_mailbox_limit_maps"),
                 shown(&shown_user, user));
        runner_result(req, i, "4.3.5", "mail system configuration error");
        result = -1;
    } else if (found == MAP_FOUND && parse_quota(value.s, &n) != 0) {
        msg_warn("recipient %s: bad quota %s in virtual_mailbox_limit_maps",
                 shown(&shown_user, user), shown(&shown_value, value.s));
        runner_result(req, i, "4.3.5", "mail system configuration error");
        result = -1;
    } else if (found == MAP_FOUND && n == 0) {
        *limit = 0;             /* seed 002: 0 switches the quota off */
        *from_table = 1;
    } else if (found == MAP_FOUND && n > 0) {
        if (n < setup->message_limit && !setup->limit_override)
            msg_warn("deliver_maildir: recipient %s - virtual maildir limit is smaller than "
                     "message_size_limit in virtual_mailbox_limit_maps - falling back to "
                     "virtual_mailbox_limit", shown(&shown_user, user));
        else {
            *limit = n;
            *from_table = 1;
        }
    }
    strbuf_free(&value);
    strbuf_free(&shown_user);
    strbuf_free(&shown_value);
    return result;
}

/* The text of an over-quota result: virtual_maildir_limit_message_maps'
 * value for the recipient, else virtual_maildir_limit_message. */
static void limit_message(struct virtual_setup *setup, const char *user, struct strbuf *text)
{
    if (setup->message_maps
        && map_search_address(setup->message_maps, user, setup->delimiters, 0, text, NULL)
               == MAP_FOUND)
        return;
    strbuf_set(text, setup->quota.message);
}

/* The recipient's value of virtual_maildir_filter_maps into *filter (in
 * `text`; none: no filter this time).  0, or -1 after a deferral (the
 * table failed: a database that is down never means "no filter"). */
static int filter_value(struct virtual_setup *setup, struct runner_request *req, size_t i,
                        const char *user, struct maildir_filter *filter, struct strbuf *text)
{
    if (!setup->filter_maps)
        return 0;
    int found = map_search_address(setup->filter_maps, user, setup->delimiters, 0, text, NULL);
    if (found == MAP_RETRY) {
        struct strbuf shown_user = STRBUF_INIT;
        msg_warn("table %s: lookup %s: temporary failure", conf_str("virtual_maildir_filter_maps"),
                 shown(&shown_user, user));
        strbuf_free(&shown_user);
        runner_result(req, i, "4.3.5", "mail system configuration error");
        return -1;
    }
    filter->table_value = found == MAP_FOUND ? text->s : NULL;
    return 0;
}

/* Deliver the message to recipient i and report its result. */
static void deliver(struct virtual_setup *setup, struct runner_request *req, size_t i)
{
    struct runner_recipient *rcpt = &req->rcpt[i];
    if (setup->broken) {
        runner_result(req, i, "4.3.5", "mail system configuration error");
        return;
    }
    /* every decision uses the address folded to lower case (Postfix) */
    char *user = xstrdup(rcpt->address);
    for (char *p = user; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    struct strbuf value = STRBUF_INIT, path = STRBUF_INIT;
    struct strbuf shown_user = STRBUF_INIT, shown_value = STRBUF_INIT, message = STRBUF_INIT;
    struct strbuf filter_text = STRBUF_INIT, mailbox = STRBUF_INIT;
    int found = map_search_address(setup->mailbox_maps, user, setup->delimiters, 0,
                                   &value, NULL);
    if (found == MAP_NOTFOUND) {
        runner_result(req, i, "5.1.1", "unknown user: \"%s\"", user);
        goto out;
    }
    if (found != MAP_FOUND || value.len == 0) {
        msg_warn("table %s: lookup %s: %s", conf_str("virtual_mailbox_maps"),
                 shown(&shown_user, user),
                 found == MAP_FOUND ? "empty result" : "temporary failure");
        runner_result(req, i, "4.3.5", "mail system configuration error");
        goto out;
    }
    if (leaves_base(value.s)) {
        msg_warn("recipient %s: mailbox %s in virtual_mailbox_maps leaves virtual_mailbox_base",
                 shown(&shown_user, user), shown(&shown_value, value.s));
        runner_result(req, i, "4.3.5", "mail system configuration error");
        goto out;
    }
    long long uid = lookup_id(req, i, user, setup->uid_maps, "virtual_uid_maps",
                              setup->minimum_uid, "uid");
    if (uid < 0)
        goto out;
    long long gid = lookup_id(req, i, user, setup->gid_maps, "virtual_gid_maps", 1, "gid");
    if (gid < 0)
        goto out;
    strbuf_printf(&path, "%s/%s", setup->base, value.s);
    long long quota_limit;
    int quota_from_table;
    if (quota_for(setup, req, i, user, &quota_limit, &quota_from_table) != 0)
        goto out;
    limit_message(setup, user, &message);
    struct maildir_quota quota = setup->quota;
    quota.limit = quota_limit;
    quota.message = message.s;
    /* an mbox file: the table's quota bounds the file (0: no bound) */
    off_t mbox_limit = quota_from_table ? (off_t)quota_limit : setup->mailbox_limit;

    const char *orig = runner_attr(&rcpt->attrs, "ORIG");
    struct mail_source src = {
        .fd = req->msg_fd, .offset = req->msg_offset, .length = req->msg_length,
        .sender = req->sender, .orig_rcpt = orig ? orig : rcpt->address,
        .delivered_to = rcpt->address,
    };
    struct mailbox_status status = {.dsn = "", .text = STRBUF_INIT};
    int maildir = path.s[path.len - 1] == '/';
    struct maildir_filter filter = {.from_table = setup->filter_maps != NULL,
                                    .allow_move = setup->filter_move};
    /* virtual_maildir_suffix (the VDA patch): the Maildir, its maildirsize
     * and its folders are below the mailbox; maildirfilter stays in it */
    if (maildir && *setup->suffix) {
        strbuf_set(&mailbox, path.s);
        filter.file_dir = mailbox.s;
        strbuf_puts(&path, setup->suffix);
        if (path.s[path.len - 1] != '/')
            strbuf_putc(&path, '/');
    }
    if (maildir && setup->filter && filter_value(setup, req, i, user, &filter, &filter_text) != 0)
        goto out;
    if (setup->privileged)
        runner_become((uid_t)uid, (gid_t)gid);
    setup->mbox.owner = setup->privileged ? (uid_t)uid : geteuid();
    int r = maildir ? maildir_deliver_quota(path.s, &src, setup->mailbox_limit,
                                            setup->vda ? &quota : NULL,
                                            setup->filter ? &filter : NULL, &status)
                    : mbox_deliver(path.s, &src, mbox_limit, &setup->mbox, &status);
    if (setup->privileged)
        runner_become_root();
    if (r > 0)          /* the user's filter discarded it */
        runner_result(req, i, status.dsn, "%s", status.text.s);
    else if (r == 0)
        runner_result(req, i, "2.0.0", maildir ? "delivered to maildir" : "delivered to mailbox");
    else        /* qmgr logs it as status=deferred/bounced; Postfix's virtual adds no warning */
        runner_result(req, i, status.dsn, "%s", status.text.s);
    strbuf_free(&status.text);
out:
    strbuf_free(&filter_text);
    strbuf_free(&mailbox);
    strbuf_free(&message);
    strbuf_free(&shown_user);
    strbuf_free(&shown_value);
    strbuf_free(&value);
    strbuf_free(&path);
    free(user);
}

/* One request (qmgr's or the shell's): every recipient gets one result. */
int main(int argc, char **argv)
{
    struct runner_request req;
    runner_start(argc, argv, "virtual", NULL, &req);
    struct virtual_setup setup;
    virtual_setup_init(&setup);
    do {
        for (size_t i = 0; i < req.rcpt_count; i++)
            deliver(&setup, &req, i);
    } while (runner_next(&req));
    virtual_setup_free(&setup);
    return runner_finish(&req);
}
