/* postern-local - final delivery to local users, as Postfix's local(8):
 * aliases (alias_maps), .forward files, and the user's mailbox
 * (mailbox_command, home_mailbox: a Maildir when it ends in '/', else an
 * mbox file; else mail_spool_directory/USER), each written as the user.
 *
 * mailbox_transport(_maps) and fallback_transport(_maps) hand the
 * recipient back to qmgr with a new route (runner_handover(): Postfix's
 * deliver_pass; doc/delivery.md, "Hand-over").
 *
 * Started by qmgr (-S) or, in a system install, by the runner service
 * postern-spawn as root (privileged_transports = local); from a shell as
 * `postern-local -f SENDER USER...`.  As root it takes the recipient's ids
 * for every write (effective ids) and for every command (permanently, in
 * the child); not as root (a self-contained instance) it delivers for the
 * invoking user only and defers others with the reason.  Users come from
 * the passwd database through the lookup service (unix:passwd.byname):
 * this program is static and never calls getpwnam.
 *
 * This file: the configuration, one recipient's path, the mailbox.
 * expand.c: alias, .forward and :include: entries; command.c: commands.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "biff.h"
#include "local.h"
#include "log.h"
#include "xalloc.h"

/* The passwd table, always through the lookup service (doc/lookup.md). */
#define PASSWD_TABLE UNIX_PASSWD_TABLE

/* Headers read for the Delivered-To loop check. */
#define HEADER_SCAN_MAX (1024 * 1024)

/* Parse a class list ("alias, forward, include"; for
 * prepend_delivered_header "command, file, forward") into bits. */
static unsigned parse_classes(struct local_setup *setup, const char *param)
{
    static const struct class_name { const char *name; unsigned bit; }
    entry_classes[] = {{"alias", CLASS_ALIAS}, {"forward", CLASS_FORWARD},
                       {"include", CLASS_INCLUDE}, {NULL, 0}},
    prepend_classes[] = {{"command", PREPEND_COMMAND}, {"file", PREPEND_FILE},
                         {"forward", PREPEND_FORWARD}, {NULL, 0}};
    const struct class_name *names = strcmp(param, "prepend_delivered_header") == 0
                                     ? prepend_classes : entry_classes;
    struct strlist items = STRLIST_INIT;
    conf_list(param, &items);
    unsigned bits = 0;
    for (size_t i = 0; i < items.count; i++) {
        size_t j;
        for (j = 0; names[j].name && strcasecmp(items.item[i], names[j].name) != 0; j++)
            ;
        if (!names[j].name) {
            msg_warn("%s: unknown class \"%s\"", param, items.item[i]);
            setup->broken = 1;
        }
        bits |= names[j].bit;
    }
    strlist_free(&items);
    return bits;
}

/* Read the parameters and open the tables (once, at start). */
static void local_setup_init(struct local_setup *setup)
{
    memset(setup, 0, sizeof *setup);
    struct strbuf err = STRBUF_INIT;
    setup->delimiters = conf_str("recipient_delimiter");
    setup->home_mailbox = conf_str("home_mailbox");
    setup->spool = conf_str("mail_spool_directory");
    setup->mailbox_command = conf_raw("mailbox_command");
    setup->forward_path = conf_raw("forward_path");
    setup->luser_relay = conf_raw("luser_relay");
    setup->command_shell = conf_str("local_command_shell");
    setup->exec_directory = conf_raw("command_execution_directory");
    setup->myorigin = conf_str("myorigin");
    setup->default_privs = conf_str("default_privs");
    setup->allow_commands = parse_classes(setup, "allow_mail_to_commands");
    setup->allow_files = parse_classes(setup, "allow_mail_to_files");
    setup->prepend = parse_classes(setup, "prepend_delivered_header");
    setup->expand_owner_alias = conf_bool("expand_owner_alias");
    setup->owner_request_special = conf_bool("owner_request_special");
    setup->command_time_limit = conf_time("command_time_limit");
    long long limit = conf_size("mailbox_size_limit");
    long long message_limit = conf_size("message_size_limit");
    if (limit < 0 || (limit > 0 && (limit < message_limit || message_limit == 0))) {
        /* a fatal error in Postfix's local(8) as well */
        msg_warn("main.cf configuration error: mailbox_size_limit is smaller than message_size_limit");
        setup->broken = 1;
    }
    setup->mailbox_limit = (off_t)limit;
    setup->biff = conf_bool("biff");
    conf_list("export_environment", &setup->export_env);
    if (mbox_lock_styles(conf_str("mailbox_delivery_lock"), &setup->mbox.lock_styles, &err) != 0) {
        msg_warn("mailbox_delivery_lock: %s", err.s);
        setup->broken = 1;
    }
    setup->mbox.lock_attempts = (int)conf_int("deliver_lock_attempts");
    setup->mbox.lock_delay = (int)conf_time("deliver_lock_delay");
    setup->mbox.stale_lock_time = (long)conf_time("stale_lock_time");
    setup->mbox.check_owner = conf_bool("strict_mailbox_ownership");
    setup->privileged = geteuid() == 0;
    strbuf_reset(&err);
    if (!(setup->alias_maps = maplist_open(conf_str("alias_maps"), &err))) {
        msg_warn("alias_maps: %s", err.s);
        setup->broken = 1;
    }
    /* as in Postfix, a regexp table may not build a transport from the address */
    setup->mailbox_transport = conf_str("mailbox_transport");
    setup->fallback_transport = conf_str("fallback_transport");
    strbuf_reset(&err);
    if (!(setup->mailbox_transport_maps = maplist_open_flags(conf_str("mailbox_transport_maps"),
                                                             MAP_OPEN_NO_REGSUB, &err))) {
        msg_warn("mailbox_transport_maps: %s", err.s);
        setup->broken = 1;
    }
    strbuf_reset(&err);
    /* a command run as the user: no regexp substitution from the
     * address into it (Postfix opens it "paranoid" as well) */
    if (!(setup->mailbox_command_maps = maplist_open_flags(conf_str("mailbox_command_maps"),
                                                           MAP_OPEN_NO_REGSUB, &err))) {
        msg_warn("mailbox_command_maps: %s", err.s);
        setup->broken = 1;
    }
    strbuf_reset(&err);
    if (!(setup->fallback_transport_maps = maplist_open_flags(conf_str("fallback_transport_maps"),
                                                              MAP_OPEN_NO_REGSUB, &err))) {
        msg_warn("fallback_transport_maps: %s", err.s);
        setup->broken = 1;
    }
    strbuf_reset(&err);
    if (!(setup->passwd = maplist_open(PASSWD_TABLE, &err))) {
        msg_warn("%s: %s", PASSWD_TABLE, err.s);
        setup->broken = 1;
    }
    strbuf_free(&err);
    /* commands write into pipes that may close early */
    signal(SIGPIPE, SIG_IGN);
}

static void local_setup_free(struct local_setup *setup)
{
    maplist_close(setup->alias_maps);
    maplist_close(setup->passwd);
    maplist_close(setup->mailbox_transport_maps);
    maplist_close(setup->mailbox_command_maps);
    maplist_close(setup->fallback_transport_maps);
    strlist_free(&setup->export_env);
}

/* The rank of an outcome for combining results. */
static int rank(enum outcome o)
{
    return o == OUTCOME_DEFERRED ? 3 : o == OUTCOME_BOUNCED ? 2 : o == OUTCOME_SENT ? 1 : 0;
}

void local_result(struct local_delivery *d, const char *dsn, const char *fmt, ...)
{
    enum outcome o = outcome_of_dsn(dsn);
    if (rank(o) < rank(d->worst))
        return;
    if (rank(o) == rank(d->worst) && o != OUTCOME_SENT)
        return;     /* the first failure of its kind says why */
    d->worst = o;
    snprintf(d->dsn, sizeof d->dsn, "%s", dsn);
    strbuf_reset(&d->text);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&d->text, fmt, ap);
    va_end(ap);
}

int local_user_lookup(struct local_setup *setup, const char *name, struct unix_user *pw)
{
    return unix_user_lookup(setup->passwd, name, pw);
}

void local_source(struct local_delivery *d, unsigned prepend, struct mail_source *src)
{
    struct runner_request *req = d->req;
    memset(src, 0, sizeof *src);
    src->fd = req->msg_fd;
    src->offset = req->msg_offset;
    src->length = req->msg_length;
    src->sender = req->sender;
    src->orig_rcpt = d->orig;
    src->delivered_to = !prepend || (d->setup->prepend & prepend) ? d->address : NULL;
}

/* The value of one delivery attribute for local_expand (NULL: unknown). */
static const char *attribute(struct local_delivery *d, const struct unix_user *pw,
                             const char *name, size_t len)
{
#define IS(s) (len == sizeof s - 1 && strncmp(name, s, len) == 0)
    if (IS("user"))
        return pw ? pw->name : d->user;
    if (IS("home"))
        return pw ? pw->home : "";
    if (IS("shell"))
        return pw ? pw->shell : "";
    if (IS("extension"))
        return d->extension;
    if (IS("recipient_delimiter"))
        return d->delimiter;
    if (IS("local"))
        return d->local;
    if (IS("domain"))
        return d->domain;
    if (IS("recipient"))
        return d->address;
    if (IS("sender"))
        return d->req->sender;
#undef IS
    return NULL;
}

int local_expand(struct local_delivery *d, const struct unix_user *pw, const char *text,
                 const char *filter, struct strbuf *out, struct strbuf *err)
{
    strbuf_reset(out);
    for (const char *p = text; *p;) {
        if (*p != '$') {
            strbuf_putc(out, *p++);
            continue;
        }
        const char *start = p++;
        const char *name, *alt = NULL;
        size_t len, alt_len = 0;
        char op = 0;
        if (*p == '{') {
            name = ++p;
            len = strcspn(p, "}?:");
            if (p[len] == '?' || p[len] == ':') {
                op = p[len];
                alt = p + len + 1;
                alt_len = strcspn(alt, "}");
                if (!alt[alt_len]) {
                    strbuf_printf(err, "unterminated ${ in \"%s\"", text);
                    return -1;
                }
                p = alt + alt_len + 1;
            } else if (!p[len]) {
                strbuf_printf(err, "unterminated ${ in \"%s\"", text);
                return -1;
            } else
                p += len + 1;
        } else {
            name = p;
            len = 0;
            while (isalnum((unsigned char)p[len]) || p[len] == '_')
                len++;
            p += len;
        }
        const char *value = attribute(d, pw, name, len);
        if (!value) {
            /* not ours ($EXTENSION of a mailbox_command is the shell's): as is */
            strbuf_putc(out, '$');
            strbuf_append(out, start + 1, (size_t)(p - start - 1));
            continue;
        }
        if (op == '?')
            value = *value ? NULL : "";
        else if (op == ':')
            value = *value ? "" : NULL;
        if (value) {
            for (const char *v = value; *v; v++)
                strbuf_putc(out, !filter || strchr(filter, *v) ? *v : '_');
        } else {
            /* the text of ${name?text} or ${name:text}, itself expanded */
            struct strbuf sub = STRBUF_INIT, inner = STRBUF_INIT;
            strbuf_append(&sub, alt, alt_len);
            int r = local_expand(d, pw, strbuf_str(&sub), filter, &inner, err);
            if (r == 0)
                strbuf_puts(out, strbuf_str(&inner));
            strbuf_free(&sub);
            strbuf_free(&inner);
            if (r != 0)
                return -1;
        }
    }
    return 0;
}

/* Whether the message's headers hold "Delivered-To: address" (a loop). */
static int delivered_before(struct local_delivery *d)
{
    struct runner_request *req = d->req;
    size_t want = req->msg_length < HEADER_SCAN_MAX ? (size_t)req->msg_length : HEADER_SCAN_MAX;
    char *buf = xmalloc(want + 1);
    ssize_t got = pread_retry(req->msg_fd, buf, want, req->msg_offset);
    int found = 0;
    if (got < 0)
        got = 0;
    buf[got] = 0;
    size_t alen = strlen(d->address);
    for (char *line = buf; line < buf + got && *line != '\n' && !found;) {
        char *end = memchr(line, '\n', (size_t)(buf + got - line));
        if (!end)
            end = buf + got;
        if (end - line > 13 && strncasecmp(line, "Delivered-To:", 13) == 0) {
            char *v = line + 13, *e = end;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            found = (size_t)(e - v) == alen && strncasecmp(v, d->address, alen) == 0;
        }
        line = end + 1;
        if (line[-1] == '\r' && *line == '\n')
            break;
    }
    free(buf);
    return found;
}

/* Split the local part at the recipient delimiter (Postfix's rules, with
 * owner_request_special: owner-NAME and NAME-request stay whole when '-'
 * is a delimiter). */
static void split_extension(struct local_delivery *d)
{
    const char *delims = d->setup->delimiters;
    const char *local = d->local;
    size_t len = strlen(local);
    size_t at = *delims ? strcspn(local, delims) : len;
    if (at < len && local[at] == '-' && d->setup->owner_request_special
        && (strncmp(local, "owner-", 6) == 0 || (len > 8 && strcmp(local + len - 8, "-request") == 0)))
        at = len;
    if (at == 0 || at >= len) {
        d->user = xstrdup(local);
        d->extension = xstrdup("");
        d->delimiter[0] = 0;
        return;
    }
    d->user = xstrndup(local, at);
    if (strchr(local + at + 1, '/')) {
        /* it would name a file outside the home in forward_path: Postfix
         * drops such an extension too */
        msg_warn("%s: address with illegal extension: %s", d->address, local + at + 1);
        d->extension = xstrdup("");
    } else
        d->extension = xstrdup(local + at + 1);
    d->delimiter[0] = local[at];
    d->delimiter[1] = 0;
}

/* The file of an alias_maps table whose owner decides the ids of its
 * commands and files (Postfix: the database file's owner): NAME.cdb for
 * the indexed types, NAME for other file types.  0 with st filled, or -1
 * when the table has no file. */
static int table_file(struct map *map, struct stat *st)
{
    const char *spec = map_spec(map);
    if (strncmp(spec, "proxy:", 6) == 0)
        spec += 6;
    const char *colon = strchr(spec, ':');
    if (!colon || colon[1] != '/')
        return -1;
    struct strbuf path = STRBUF_INIT;
    strbuf_puts(&path, colon + 1);
    size_t type_len = (size_t)(colon - spec);
    if ((type_len == 4 && strncmp(spec, "hash", 4) == 0) || (type_len == 5 && strncmp(spec, "btree", 5) == 0)
        || (type_len == 3 && strncmp(spec, "cdb", 3) == 0))
        strbuf_puts(&path, ".cdb");
    int r = stat(path.s, st);
    strbuf_free(&path);
    return r == 0 ? 0 : -1;
}

/* The ids of an alias's commands and files: the alias table's owner, or
 * default_privs when root owns it (Postfix); not as root: our own. */
static int alias_privs(struct local_delivery *d, struct map *table, struct unix_user *owner,
                       struct local_privs *privs)
{
    memset(privs, 0, sizeof *privs);
    if (!d->setup->privileged) {
        privs->uid = geteuid();
        privs->gid = getegid();
        return 0;
    }
    struct stat st;
    if (table_file(table, &st) == 0 && st.st_uid != 0) {
        privs->uid = st.st_uid;
        privs->gid = st.st_gid;
        return 0;
    }
    return local_default_privs(d, owner, privs);
}

int local_default_privs(struct local_delivery *d, struct unix_user *owner,
                        struct local_privs *privs)
{
    int r = local_user_lookup(d->setup, d->setup->default_privs, owner);
    if (r != MAP_FOUND || owner->uid == 0) {
        msg_warn("default_privs: %s: %s", d->setup->default_privs,
                 r == MAP_NOTFOUND ? "unknown user" : r == MAP_FOUND ? "must not be root"
                 : "lookup failed");
        local_result(d, "4.3.0", "mail system configuration error");
        return -1;
    }
    privs->uid = owner->uid;
    privs->gid = owner->gid;
    return 0;
}

/* Look the alias up in each table; MAP_FOUND with the table in *table. */
static int alias_lookup(struct local_delivery *d, const char *name, struct strbuf *value,
                        struct map **table)
{
    struct maplist *maps = d->setup->alias_maps;
    for (size_t i = 0; i < maplist_count(maps); i++) {
        int r = map_lookup(maplist_at(maps, i), name, value);
        if (r != MAP_NOTFOUND) {
            *table = maplist_at(maps, i);
            if (r == MAP_RETRY) {
                msg_warn("table %s: lookup of %s failed", map_spec(*table), name);
                local_result(d, "4.3.0", "alias database unavailable");
            }
            return r;
        }
    }
    return MAP_NOTFOUND;
}

/* Deliver through an alias when there is one: 1 when the recipient was
 * an alias (its result recorded), 0 when not. */
static int deliver_alias(struct local_delivery *d)
{
    struct strbuf value = STRBUF_INIT, owner_value = STRBUF_INIT, key = STRBUF_INIT;
    struct map *table = NULL, *owner_table = NULL;
    const char *name = d->local;
    int r = alias_lookup(d, name, &value, &table);
    if (r == MAP_NOTFOUND && *d->extension) {
        name = d->user;
        r = alias_lookup(d, name, &value, &table);
    }
    if (r == MAP_NOTFOUND) {
        strbuf_free(&value);
        return 0;
    }
    if (r == MAP_FOUND) {
        /* an owner-NAME alias makes owner-NAME the sender of forwarded
         * copies (unless owner_request_special = no, as in Postfix) */
        strbuf_printf(&key, "owner-%s", name);
        if (d->setup->owner_request_special && strncmp(name, "owner-", 6) != 0
            && alias_lookup(d, key.s, &owner_value, &owner_table) == MAP_FOUND) {
            if (d->setup->expand_owner_alias && owner_value.len
                && !strpbrk(owner_value.s, ", \t|/:\\\"")) {
                if (!strchr(owner_value.s, '@'))
                    strbuf_printf(&owner_value, "@%s", d->setup->myorigin);
                d->forward_sender = xstrdup(owner_value.s);
            } else {
                strbuf_printf(&key, "@%s", d->setup->myorigin);
                d->forward_sender = xstrdup(key.s);
            }
        }
        struct unix_user owner = {0};
        struct local_privs privs;
        d->alias = xstrdup(name);
        if (alias_privs(d, table, &owner, &privs) == 0)
            local_expand_entries(d, strbuf_str(&value), CLASS_ALIAS, &privs, 0);
        unix_user_free(&owner);
    }
    strbuf_free(&key);
    strbuf_free(&owner_value);
    strbuf_free(&value);
    return 1;
}

/* Whether this process may deliver as pw (not as root: only as ourselves);
 * records the deferral when not. */
static int may_deliver_as(struct local_delivery *d, const struct unix_user *pw)
{
    if (d->setup->privileged || pw->uid == geteuid())
        return 1;
    msg_warn("cannot deliver to %s (uid %lu): postern-local runs as uid %lu, not root "
             "(a self-contained instance delivers for its own user only)",
             pw->name, (unsigned long)pw->uid, (unsigned long)geteuid());
    local_result(d, "4.3.0", "cannot deliver as user %s: this postern-local runs as uid %lu, "
                 "not as root", pw->name, (unsigned long)geteuid());
    return 0;
}

int local_user_privs(struct local_delivery *d, const struct unix_user *pw,
                     struct unix_user *holder, struct local_privs *privs)
{
    if (pw->uid != 0 || !d->setup->privileged) {
        *privs = (struct local_privs){pw->uid, pw->gid, pw};
        return 0;
    }
    int r = local_default_privs(d, holder, privs);
    privs->user = pw;
    return r;
}

/* Create the spool mbox as root for the user (the spool directory is
 * root's; Postfix's local does the same), so the user owns it. */
static int create_spool_file(const char *path, const struct unix_user *pw,
                             struct mailbox_status *status)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        mailbox_status_set(status, "4.2.0", "cannot create mailbox %s: %s", path, strerror(errno));
        return -1;
    }
    if (fchown(fd, pw->uid, pw->gid) != 0) {
        mailbox_status_set(status, "4.2.0", "cannot chown mailbox %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

/* mbox write_as for the spool: the owner's ids to write, root's after. */
static void spool_write_as(const struct mbox_options *options, int owner_ids)
{
    if (owner_ids)
        runner_become(options->owner, options->owner_gid);
    else
        runner_become_root();
}

/* Hand the mailbox of `user` (the recipient's, or an alias's "\\user"
 * member's) over to the transport that `maps` (looked up by the user
 * name, without the extension) or `transport` names: 1 when one does (or
 * a table failed: deferred), 0 when neither is set for it. */
static int hand_over(struct local_delivery *d, const char *user, struct maplist *maps,
                     const char *maps_param, const char *transport, const char *param)
{
    struct strbuf value = STRBUF_INIT;
    int r = maplist_count(maps) ? maplist_lookup(maps, user, &value) : MAP_NOTFOUND;
    const char *route = NULL, *setting = NULL;
    if (r == MAP_RETRY) {
        msg_warn("%s: lookup of %s failed", maps_param, user);
        local_result(d, "4.3.0", "table lookup failure");
        strbuf_free(&value);
        return 1;
    }
    if (r == MAP_FOUND) {
        route = strbuf_str(&value);
        setting = maps_param;
    } else if (*transport) {
        route = transport;
        setting = param;
    }
    if (!route) {
        strbuf_free(&value);
        return 0;
    }
    /* transport[:nexthop]; without a nexthop, ours (Postfix's deliver_pass) */
    size_t name_len = strcspn(route, ":");
    if (name_len == 0) {
        msg_warn("%s: missing transport name in \"%s\"", setting, route);
        local_result(d, "4.3.0", "mail system configuration error");
        strbuf_free(&value);
        return 1;
    }
    struct strbuf full = STRBUF_INIT, address = STRBUF_INIT;
    if (route[name_len] == ':' && route[name_len + 1])
        strbuf_puts(&full, route);
    else
        strbuf_printf(&full, "%.*s:%s", (int)name_len, route, d->req->nexthop);
    /* a member other than the recipient itself: user@myorigin, as Postfix
     * qualifies a bare name of an alias */
    if (strcmp(user, d->user) != 0)
        strbuf_printf(&address, "%s@%s", user, d->setup->myorigin);
    int seen = 0;
    for (size_t i = 0; i < d->handover.count && !seen; i++)
        seen = strcmp(d->handover.item[i], full.s) == 0
               && strcasecmp(d->handover_address.item[i], strbuf_str(&address)) == 0;
    if (!seen) {
        strlist_add(&d->handover, full.s);
        strlist_add(&d->handover_address, strbuf_str(&address));
        if (!d->handover_setting)
            d->handover_setting = setting;
    }
    strbuf_free(&full);
    strbuf_free(&address);
    strbuf_free(&value);
    return 1;
}

int local_mailbox_transport(struct local_delivery *d, const char *user)
{
    return hand_over(d, user, d->setup->mailbox_transport_maps, "mailbox_transport_maps",
                     d->setup->mailbox_transport, "mailbox_transport");
}

void local_mailbox(struct local_delivery *d, const struct unix_user *pw)
{
    struct local_setup *setup = d->setup;
    if (local_mailbox_transport(d, pw->name))
        return;     /* no privileges needed: qmgr's runner of that transport delivers */
    if (!may_deliver_as(d, pw))
        return;
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT, mapped = STRBUF_INIT;
    /* mailbox_command_maps by the user name, then mailbox_command, as
     * Postfix's local(8) */
    const char *command = setup->mailbox_command, *command_param = "mailbox_command";
    int found = maplist_count(setup->mailbox_command_maps)
                    ? maplist_lookup(setup->mailbox_command_maps, pw->name, &mapped)
                    : MAP_NOTFOUND;
    if (found == MAP_RETRY) {
        msg_warn("mailbox_command_maps: lookup of %s failed", pw->name);
        local_result(d, "4.3.0", "table lookup failure");
        goto out;
    }
    if (found == MAP_FOUND) {
        command = strbuf_str(&mapped);
        command_param = "mailbox_command_maps";
    }
    if (*command) {
        struct local_privs privs;
        struct unix_user holder = {0};
        if (local_expand(d, pw, command, conf_str("command_expansion_filter"), &path, &err) != 0) {
            msg_warn("%s: %s", command_param, err.s);
            local_result(d, "4.3.0", "mail system configuration error");
        } else if (local_user_privs(d, pw, &holder, &privs) == 0)
            local_command(d, path.s, &privs, PREPEND_COMMAND);
        unix_user_free(&holder);
        goto out;
    }
    struct mail_source src;
    local_source(d, 0, &src);
    struct mailbox_status status = {.dsn = "", .text = STRBUF_INIT};
    int spool = !*setup->home_mailbox, r;
    if (spool)
        strbuf_printf(&path, "%s/%s", setup->spool, pw->name);
    else
        strbuf_printf(&path, "%s/%s", pw->home, setup->home_mailbox);
    int maildir = path.s[path.len - 1] == '/';
    struct mbox_options mbox = setup->mbox;
    mbox.owner = pw->uid;
    if (spool && !maildir && setup->privileged) {
        /* the spool directory is root's (and group mail's): the file and
         * the lock file are made as root, the mail is written as the user */
        mbox.write_as = spool_write_as;
        mbox.owner_gid = pw->gid;
        r = create_spool_file(path.s, pw, &status);
        if (r == 0)
            r = mbox_deliver(path.s, &src, setup->mailbox_limit, &mbox, &status);
    } else {
        if (setup->privileged)
            runner_become(pw->uid, pw->gid);
        r = maildir ? maildir_deliver(path.s, &src, setup->mailbox_limit, &status)
                    : mbox_deliver(path.s, &src, setup->mailbox_limit, &mbox, &status);
        if (setup->privileged)
            runner_become_root();
    }
    if (r == 0 && !maildir && setup->biff)
        biff_notify(pw->name, status.offset);
    if (r == 0)
        local_result(d, "2.0.0", maildir ? "delivered to maildir" : "delivered to mailbox");
    else
        local_result(d, status.dsn, "%s", strbuf_str(&status.text));
    strbuf_free(&status.text);
out:
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&mapped);
}

/* A user unknown to aliases and passwd: mailbox_transport (Postfix's
 * precedence), fallback_transport, luser_relay, else a bounce. */
static void unknown_user(struct local_delivery *d)
{
    if (local_mailbox_transport(d, d->user)
        || hand_over(d, d->user, d->setup->fallback_transport_maps, "fallback_transport_maps",
                     d->setup->fallback_transport, "fallback_transport"))
        return;
    if (*d->setup->luser_relay) {
        struct strbuf relay = STRBUF_INIT, err = STRBUF_INIT;
        if (local_expand(d, NULL, d->setup->luser_relay, NULL, &relay, &err) != 0) {
            msg_warn("luser_relay: %s", err.s);
            local_result(d, "4.3.0", "mail system configuration error");
        } else if (relay.len)
            strlist_add(&d->forward, relay.s);
        else
            local_result(d, "5.1.1", "unknown user: \"%s\"", d->local);
        strbuf_free(&relay);
        strbuf_free(&err);
        return;
    }
    local_result(d, "5.1.1", "unknown user: \"%s\"", d->local);
}

/* Deliver the message to recipient i and report its result. */
static void deliver(struct local_setup *setup, struct runner_request *req, size_t i)
{
    struct runner_recipient *rcpt = &req->rcpt[i];
    if (setup->broken) {
        runner_result(req, i, "4.3.0", "mail system configuration error");
        return;
    }
    struct local_delivery d = {.setup = setup, .req = req, .index = i, .text = STRBUF_INIT,
                               .forward = STRLIST_INIT, .handover = STRLIST_INIT,
                               .handover_address = STRLIST_INIT};
    d.address = xstrdup(rcpt->address);
    for (char *p = d.address; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *at = strrchr(d.address, '@');
    d.local = at ? xstrndup(d.address, (size_t)(at - d.address)) : xstrdup(d.address);
    d.domain = xstrdup(at ? at + 1 : "");
    const char *orig = runner_attr(&rcpt->attrs, "ORIG");
    d.orig = orig ? orig : rcpt->address;
    split_extension(&d);
    struct unix_user pw = {0};
    if (delivered_before(&d)) {
        local_result(&d, "5.4.6", "mail forwarding loop for %s", d.address);
    } else if (!deliver_alias(&d)) {
        int r = local_user_lookup(setup, d.user, &pw);
        if (r == MAP_RETRY)
            local_result(&d, "4.3.0", "user lookup failed: passwd table unavailable");
        else if (r == MAP_NOTFOUND)
            unknown_user(&d);
        else if (may_deliver_as(&d, &pw) && !local_forward_file(&d, &pw))
            local_mailbox(&d, &pw);
    }
    if (d.forward.count)
        local_forward_send(&d);
    if (d.handover.count && !req->request_mode && d.worst != OUTCOME_DEFERRED) {
        /* from a shell there is no qmgr to pass the mailbox part to */
        runner_result(req, i, "4.3.0", "%s sends this recipient to %s: only qmgr can hand it "
                      "over (deliver it through sendmail)", d.handover_setting, d.handover.item[0]);
    } else if (d.handover.count && d.worst != OUTCOME_DEFERRED) {
        /* the mailbox parts go on through qmgr, each to its address; what
         * was done here (a file, a forward, a bounce of another part) is
         * the recipient's own result, which qmgr combines with theirs.  A
         * deferral repeats the whole recipient instead, as in Postfix. */
        for (size_t k = 0; k < d.handover.count; k++)
            (void)runner_handover(req, i, *d.handover_address.item[k] ? d.handover_address.item[k]
                                  : NULL, d.handover.item[k]);
        if (d.worst == OUTCOME_PENDING)
            runner_handover_end(req, i);
        else
            runner_result(req, i, d.dsn, "%s", strbuf_str(&d.text));
    } else {
        if (d.worst == OUTCOME_PENDING)      /* an alias or .forward of nothing but itself? */
            local_result(&d, "2.0.0", "discarded: nothing to deliver to");
        runner_result(req, i, d.dsn, "%s", strbuf_str(&d.text));
    }
    strlist_free(&d.handover);
    strlist_free(&d.handover_address);
    unix_user_free(&pw);
    strlist_free(&d.forward);
    strbuf_free(&d.text);
    free(d.forward_sender);
    free(d.alias);
    free(d.address);
    free(d.local);
    free(d.domain);
    free(d.user);
    free(d.extension);
}

/* One request (qmgr's or the shell's): every recipient gets one result. */
int main(int argc, char **argv)
{
    struct runner_request req;
    runner_start(argc, argv, "local", NULL, &req);
    struct local_setup setup;
    local_setup_init(&setup);
    do {
        for (size_t i = 0; i < req.rcpt_count; i++)
            deliver(&setup, &req, i);
    } while (runner_next(&req));
    local_setup_free(&setup);
    return runner_finish(&req);
}
