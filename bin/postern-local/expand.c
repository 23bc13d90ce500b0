/* expand.c - the entries of an alias value, a .forward file and an
 * :include: file, as Postfix's local(8) reads them: "|command", "/file"
 * (a Maildir when it ends in '/'), ":include:/file", "\user" and
 * addresses, separated by commas (and, in files, by newlines; lines
 * starting with '#' are comments).  Addresses are forwarded in one new
 * message through the injection chain (lib/mail/injection_client.h) with
 * Delivered-To: RECIPIENT prepended, which is what catches forwarding
 * loops when the copy comes back; the new message passes postern-rewrite
 * as sendmail's does (Postfix's local forwards through cleanup).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "injection_client.h"
#include "local.h"
#include "log.h"
#include "xalloc.h"

/* A .forward or :include: file larger than this is refused. */
#define LIST_FILE_MAX (1024 * 1024)

/* Read a whole list file (opened with the current effective ids).  0 with
 * its text, -1 with errno (ENOENT: there is none), -2 when it is not a
 * regular file or too large. */
static int read_list_file(const char *path, struct strbuf *text, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > LIST_FILE_MAX) {
        close(fd);
        return -2;
    }
    strbuf_reset(text);
    strbuf_grow(text, (size_t)st->st_size + 1);
    ssize_t got = read_full(fd, text->s, (size_t)st->st_size);
    int saved = errno;
    close(fd);
    if (got < 0) {
        errno = saved;
        return -1;
    }
    text->len = (size_t)got;
    text->s[got] = 0;
    return 0;
}

/* Read a list file as privs (effective ids when we are root). */
static int read_as(struct local_delivery *d, const struct local_privs *privs, const char *path,
                   struct strbuf *text, struct stat *st)
{
    if (d->setup->privileged)
        runner_become(privs->uid, privs->gid);
    int r = read_list_file(path, text, st);
    int saved = errno;
    if (d->setup->privileged)
        runner_become_root();
    errno = saved;
    return r;
}

/* Remove surrounding white space and one pair of double quotes. */
static char *trim_entry(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        e[-1] = 0;
        s++;
    }
    return s;
}

/* An address to forward to: qualified with myorigin, without <>; each
 * address once per recipient. */
static void add_forward(struct local_delivery *d, const char *entry)
{
    struct strbuf address = STRBUF_INIT;
    size_t len = strlen(entry);
    if (len >= 2 && entry[0] == '<' && entry[len - 1] == '>')
        strbuf_append(&address, entry + 1, len - 2);
    else
        strbuf_puts(&address, entry);
    if (address.len && !strchr(address.s, '@'))
        strbuf_printf(&address, "@%s", d->setup->myorigin);
    int seen = 0;
    for (size_t i = 0; i < d->forward.count && !seen; i++)
        seen = strcasecmp(d->forward.item[i], address.s) == 0;
    if (!seen && address.len)
        strlist_add(&d->forward, address.s);
    strbuf_free(&address);
}

/* Whether an entry names the recipient itself (the alias, or the user of
 * a .forward): then the mailbox gets the mail. */
static int self_reference(struct local_delivery *d, const char *entry, unsigned klass)
{
    const char *self = klass == CLASS_ALIAS && d->alias ? d->alias : d->user;
    size_t n = strlen(self);
    if (strncasecmp(entry, self, n) != 0)
        return 0;
    if (!entry[n])
        return 1;
    return entry[n] == '@' && (strcasecmp(entry + n + 1, d->domain) == 0
                               || strcasecmp(entry + n + 1, d->setup->myorigin) == 0);
}

/* The mailbox of `name`, bypassing aliases and .forward ("\user" and
 * self-references). */
static void mailbox_of(struct local_delivery *d, const char *name)
{
    struct unix_user pw;
    int r = local_user_lookup(d->setup, name, &pw);
    if (r == MAP_FOUND)
        local_mailbox(d, &pw);
    else if (r == MAP_NOTFOUND && local_mailbox_transport(d, name))
        ;   /* Postfix hands it over whether or not passwd knows the user */
    else if (r == MAP_RETRY)
        local_result(d, "4.3.0", "user lookup failed: passwd table unavailable");
    else
        local_result(d, "5.1.1", "unknown user: \"%s\"", name);
    unix_user_free(&pw);
}

/* An :include: file: its entries with the file owner's ids (unless root
 * owns it: then the includer's). */
static void include_file(struct local_delivery *d, const char *path, unsigned klass,
                         const struct local_privs *privs, int depth)
{
    if (depth >= LOCAL_MAX_DEPTH) {
        msg_warn("%s: include nesting exceeds %d", path, LOCAL_MAX_DEPTH);
        local_result(d, "5.4.6", "mail forwarding loop for %s", d->address);
        return;
    }
    if (path[0] != '/') {
        local_result(d, "5.3.5", "mail system configuration error: :include:%s is not an absolute path", path);
        return;
    }
    struct strbuf text = STRBUF_INIT;
    struct stat st;
    int r = read_as(d, privs, path, &text, &st);
    if (r == -1) {
        int e = errno;
        msg_warn("cannot open include file %s: %s", path, strerror(e));
        local_result(d, e == ENOENT ? "5.3.5" : "4.3.0", "cannot open include file %s: %s",
                     path, strerror(e));
    } else if (r == -2) {
        local_result(d, "5.3.5", "include file %s is not a regular file or too large", path);
    } else {
        struct local_privs owner = *privs;
        if (d->setup->privileged && st.st_uid != 0) {
            owner.uid = st.st_uid;
            owner.gid = st.st_gid;
            if (st.st_uid != privs->uid)
                owner.user = NULL;
        }
        (void)klass;
        local_expand_entries(d, text.s, CLASS_INCLUDE, &owner, depth + 1);
    }
    strbuf_free(&text);
}

/* One entry. */
static void deliver_entry(struct local_delivery *d, char *entry, unsigned klass,
                          const struct local_privs *privs, int depth)
{
    struct local_setup *setup = d->setup;
    if (entry[0] == '|') {
        if (!(setup->allow_commands & klass)) {
            local_result(d, "5.7.1", "mail to command is restricted");
            return;
        }
        local_command(d, entry + 1, privs, PREPEND_COMMAND);
    } else if (entry[0] == '/') {
        if (!(setup->allow_files & klass)) {
            local_result(d, "5.7.1", "mail to file is restricted");
            return;
        }
        local_file(d, entry, privs, PREPEND_FILE, "file");
    } else if (strncasecmp(entry, ":include:", 9) == 0) {
        include_file(d, trim_entry(entry + 9), klass, privs, depth);
    } else if (entry[0] == '\\') {
        mailbox_of(d, entry + 1);
    } else if (self_reference(d, entry, klass)) {
        mailbox_of(d, d->user);
    } else {
        add_forward(d, entry);
    }
}

void local_expand_entries(struct local_delivery *d, const char *text, unsigned klass,
                          const struct local_privs *privs, int depth)
{
    char *copy = xstrdup(text), *start = copy;
    int quoted = 0, angle = 0, comment_line = 1;
    for (char *p = copy;; p++) {
        if (comment_line && klass != CLASS_ALIAS) {
            /* a line of a file starting with '#' is a comment */
            char *q = p;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '#') {
                char *nl = strchr(q, '\n');
                if (!nl)
                    break;
                p = nl;
                start = p + 1;
                continue;
            }
            comment_line = 0;
        }
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '<')
            angle = 1;
        else if (!quoted && *p == '>')
            angle = 0;
        if (*p && (quoted || angle || (*p != ',' && *p != '\n')))
            continue;
        int end = !*p;
        if (*p == '\n')
            comment_line = 1;
        *p = 0;
        char *entry = trim_entry(start);
        if (*entry)
            deliver_entry(d, entry, klass, privs, depth);
        if (end)
            break;
        start = p + 1;
        quoted = angle = 0;
    }
    free(copy);
}

int local_forward_file(struct local_delivery *d, const struct unix_user *pw)
{
    struct strlist paths = STRLIST_INIT;
    struct strbuf expanded = STRBUF_INIT, err = STRBUF_INIT, text = STRBUF_INIT;
    int done = 0;
    if (local_expand(d, pw, d->setup->forward_path, conf_str("forward_expansion_filter"),
                     &expanded, &err) != 0) {
        msg_warn("forward_path: %s", err.s);
        local_result(d, "4.3.0", "mail system configuration error");
        done = 1;
    } else if (list_split(strbuf_str(&expanded), &paths, &err) != 0) {
        msg_warn("forward_path: %s", err.s);
        local_result(d, "4.3.0", "mail system configuration error");
        done = 1;
    }
    struct local_privs privs = {pw->uid, pw->gid, pw}, entry_privs;
    struct unix_user holder = {0};
    for (size_t i = 0; !done && i < paths.count; i++) {
        struct stat st;
        int r = read_as(d, &privs, paths.item[i], &text, &st);
        if (r == -1 && (errno == ENOENT || errno == ENOTDIR))
            continue;
        done = 1;
        if (r == -1) {
            msg_warn("cannot open %s: %s", paths.item[i], strerror(errno));
            local_result(d, "4.3.0", "cannot open %s: %s", paths.item[i], strerror(errno));
        } else if (r == -2 || (st.st_uid != pw->uid && st.st_uid != 0)) {
            msg_warn("%s: not a regular file owned by %s, or too large: ignored",
                     paths.item[i], pw->name);
            done = 0;
        } else if (local_user_privs(d, pw, &holder, &entry_privs) == 0)
            local_expand_entries(d, text.s, CLASS_FORWARD, &entry_privs, 0);
    }
    unix_user_free(&holder);
    strlist_free(&paths);
    strbuf_free(&expanded);
    strbuf_free(&err);
    strbuf_free(&text);
    return done;
}

void local_file(struct local_delivery *d, const char *path, const struct local_privs *privs,
                unsigned prepend, const char *what)
{
    struct local_setup *setup = d->setup;
    struct mail_source src;
    local_source(d, prepend, &src);
    struct mailbox_status status = {.dsn = "", .text = STRBUF_INIT};
    struct mbox_options mbox = setup->mbox;
    mbox.owner = privs->uid;
    mbox.check_owner = 0;       /* a file of an alias may be anyone's it can write */
    int maildir = path[strlen(path) - 1] == '/';
    if (setup->privileged)
        runner_become(privs->uid, privs->gid);
    int r = maildir ? maildir_deliver(path, &src, setup->mailbox_limit, &status)
                    : mbox_deliver(path, &src, setup->mailbox_limit, &mbox, &status);
    if (setup->privileged)
        runner_become_root();
    if (r == 0)
        local_result(d, "2.0.0", "delivered to %s: %s", what, path);
    else
        local_result(d, status.dsn, "%s", strbuf_str(&status.text));
    strbuf_free(&status.text);
}

void local_forward_send(struct local_delivery *d)
{
    struct runner_request *req = d->req;
    /* through postern-rewrite, as sendmail's mail (Postfix's local(8)
     * forwards through cleanup: virtual aliases apply to the new addresses) */
    struct strbuf err = STRBUF_INIT, prefix = STRBUF_INIT, rewrite = STRBUF_INIT;
    strbuf_printf(&rewrite, "%s/postern-rewrite", conf_str("daemon_directory"));
    struct injection_options options = {.program = rewrite.s, .message_fd = -1, .rewrite = NULL};
    struct injection_client inj;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    if (injection_start(&inj, &options, &err) < 0) {
        msg_warn("forward: %s", err.s);
        local_result(d, "4.3.0", "cannot forward: %s", err.s);
        strbuf_free(&err);
        strbuf_free(&rewrite);
        return;
    }
    struct mail_source src;
    local_source(d, PREPEND_FORWARD, &src);
    if (src.delivered_to)
        strbuf_printf(&prefix, "Delivered-To: %s\n", src.delivered_to);
    enum mail_copy_result copied = mail_copy(inj.message_fd, &src, &prefix, 0, -1);
    if (copied == MAIL_COPY_WRITE_ERROR)
        injection_write_failed(&inj, errno);
    struct envelope env = ENVELOPE_INIT;
    env.sender = xstrdup(d->forward_sender ? d->forward_sender : req->sender);
    for (size_t i = 0; i < d->forward.count; i++)
        envelope_add(&env, 'T', d->forward.item[i]);
    /* as Postfix's local(8): forwarded mail gets address mapping but no
     * header_checks or body_checks */
    envelope_add(&env, 'A', "internal=forward");
    static const char *const kept[] = {"BODY", "SMTPUTF8"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const char *v = runner_attr(&req->attrs, kept[i]);
        if (v) {
            struct strbuf a = STRBUF_INIT;
            strbuf_printf(&a, "%s=%s", kept[i], v);
            envelope_add(&env, 'A', a.s);
            strbuf_free(&a);
        }
    }
    enum outcome outcome = copied == MAIL_COPY_READ_ERROR ? OUTCOME_DEFERRED
                         : injection_finish(&inj, copied == MAIL_COPY_OK ? &env : NULL, &verdict);
    if (copied == MAIL_COPY_READ_ERROR) {
        injection_abort(&inj);
        local_result(d, "4.3.0", "cannot forward: error reading the queue file");
    } else if (outcome == OUTCOME_SENT)
        local_result(d, "2.0.0", "forwarded as %s", strbuf_str(&verdict.text));
    else {
        struct strbuf dsn = STRBUF_INIT, text = STRBUF_INIT;
        dsn_split(strbuf_str(&verdict.text), outcome == OUTCOME_BOUNCED ? "5.3.0" : "4.3.0", &dsn, &text);
        msg_warn("forward to %s: %s%s%s", d->forward.item[0], strbuf_str(&verdict.text),
                 verdict.detail.len ? ": " : "", strbuf_str(&verdict.detail));
        local_result(d, strbuf_str(&dsn), "cannot forward: %s", strbuf_str(&text));
        strbuf_free(&dsn);
        strbuf_free(&text);
    }
    envelope_free(&env);
    injection_verdict_free(&verdict);
    strbuf_free(&prefix);
    strbuf_free(&err);
    strbuf_free(&rewrite);
}
