/* sendmail - the Sendmail-compatible submission command, as Postfix's
 * sendmail(1): reads a message on stdin and hands it, with its envelope,
 * to daemon_directory/postern-rewrite (interface 2, doc/injection.md),
 * which passes it to postern-queue.  Also `mailq` (-bp), `newaliases`
 * (-bi, -I) and `sendmail -q` (flush).  Exit codes from sysexits.h.
 *
 * usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret]
 *                 [-V envid] [-B type] [-C dir] [-o opt] [-v] [--] [recipient ...]
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "addrlist.h"
#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "injection_client.h"
#include "linereader.h"
#include "log.h"
#include "map_build.h"
#include "queuefile.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

enum mode { MODE_ENQUEUE, MODE_MAILQ, MODE_NEWALIASES, MODE_FLUSH,
            MODE_SMTP, MODE_DAEMON, MODE_VERIFY };

struct options {
    enum mode mode;
    int extract;                /* -t */
    int dot_ends;               /* without -i / -oi */
    const char *sender;         /* -f / -r */
    const char *full_name;      /* -F */
    struct strbuf notify;       /* -N, as NOTIFY= wants it */
    const char *ret;            /* -R: FULL / HDRS */
    const char *envid;          /* -V */
    const char *body;           /* -B: 7BIT / 8BITMIME */
    int gateway;                /* -G: a relayed message, not a user's */
};

/* The invoking user, for messages and the default sender. */
static char *login_name;
static long login_uid;

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: sendmail [-G] [-t] [-i] [-f sender] [-F full_name] [-N dsn] [-R ret] [-V envid]\n"
                    "                [-B type] [-C config_dir] [-o option] [-v] [--] [recipient ...]\n");
    exit(EX_USAGE);
}

/* Die with a sysexits code, naming the user as Postfix does. */
static _Noreturn void die_status(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void die_status(int code, const char *fmt, ...)
{
    struct strbuf text = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&text, fmt, ap);
    va_end(ap);
    log_exit_codes(code, code);
    msg_fatal("%s(%ld): %s", login_name ? login_name : "?", login_uid, strbuf_str(&text));
}

/* -N: "delay, failure" -> "DELAY,FAILURE"; "never" alone. 0 on a bad list. */
static int parse_notify(const char *arg, struct strbuf *out)
{
    struct strlist words = STRLIST_INIT;
    int never = 0, ok = 1;
    list_split(arg, &words, NULL);
    strbuf_reset(out);
    for (size_t i = 0; i < words.count; i++) {
        const char *w = words.item[i];
        if (strcasecmp(w, "never") == 0) {
            never = 1;
        } else if (strcasecmp(w, "success") == 0 || strcasecmp(w, "failure") == 0
                   || strcasecmp(w, "delay") == 0) {
            if (out->len)
                strbuf_putc(out, ',');
            for (const char *p = w; *p; p++)
                strbuf_putc(out, *p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        } else {
            ok = 0;
        }
    }
    if ((never && out->len) || words.count == 0)
        ok = 0;
    if (never && ok)
        strbuf_set(out, "NEVER");
    strlist_free(&words);
    if (!ok)
        strbuf_reset(out);
    return ok;
}

/* The sender's full name when -F is not given: $NAME, else the GECOS
 * field up to its first comma, '&' standing for the capitalised login. */
static char *default_full_name(const struct passwd *pw)
{
    const char *name = getenv("NAME");
    if (name && *name)
        return xstrdup(name);
    if (!pw || !pw->pw_gecos || !*pw->pw_gecos)
        return NULL;
    struct strbuf out = STRBUF_INIT;
    for (const char *p = pw->pw_gecos; *p && *p != ','; p++) {
        if (*p == '&') {
            strbuf_putc(&out, pw->pw_name[0] >= 'a' && pw->pw_name[0] <= 'z'
                                  ? pw->pw_name[0] - 32 : pw->pw_name[0]);
            strbuf_puts(&out, pw->pw_name + (pw->pw_name[0] ? 1 : 0));
        } else {
            strbuf_putc(&out, *p);
        }
    }
    return out.len ? strbuf_detach(&out) : (strbuf_free(&out), NULL);
}

/* addrlist_scan callback: collect addresses as T records. */
static void add_recipient(const char *text, size_t start, size_t end,
                          const char *address, void *ctx)
{
    (void)text, (void)start, (void)end;
    strlist_add(ctx, address);
}

/* The one address of -f ("<>" and "" are the null sender). */
static char *parse_sender(const char *arg)
{
    struct strlist found = STRLIST_INIT;
    addrlist_scan(arg, add_recipient, &found);
    char *sender = xstrdup(found.count ? found.item[0] : "");
    strlist_free(&found);
    return sender;
}

/* Headers of the message, for -t: recipients by kind. */
struct extracted {
    struct strlist plain;       /* To, Cc, Bcc */
    struct strlist resent;      /* Resent-To, Resent-Cc, Resent-Bcc */
    int resent_seen;            /* any Resent- header */
};

/* Look at one complete logical header (for -t). */
static void extract_header(const struct strbuf *header, struct extracted *x)
{
    size_t name_len;
    if (!header_field_name(header->s, header->len, &name_len))
        return;
    const char *name = header->s;
    if (name_len > 7 && strncasecmp(name, "Resent-", 7) == 0)
        x->resent_seen = 1;
#define IS(literal) (name_len == sizeof literal - 1 && strncasecmp(name, literal, name_len) == 0)
    struct strlist *into = NULL;
    if (IS("To") || IS("Cc") || IS("Bcc"))
        into = &x->plain;
    else if (IS("Resent-To") || IS("Resent-Cc") || IS("Resent-Bcc"))
        into = &x->resent;
#undef IS
    if (into) {
        const char *colon = memchr(header->s, ':', header->len);
        addrlist_scan(colon + 1, add_recipient, into);
    }
}

/* Copy stdin into an anonymous file: leading "From " lines dropped, CR
 * before LF removed (sendmail_fix_line_endings=always), a lone "." ends
 * input unless -i; with -t the header's recipients are collected.  The
 * file is complete before the chain starts (doc/injection.md). */
static int read_message(const struct options *opt, struct extracted *x,
                        size_t header_limit)
{
    int fd = memfd_create("sendmail-message", MFD_CLOEXEC);
    if (fd < 0)
        die_status(EX_OSERR, "memfd_create: %s", strerror(errno));
    struct line_reader *reader = xmalloc(sizeof *reader);
    struct strbuf line = STRBUF_INIT, out = STRBUF_INIT, header = STRBUF_INIT;
    int at_start = 1, in_header = 1, line_start = 1;
    line_reader_init(reader, 0);
    for (;;) {
        int r = line_read(reader, &line, 65536);
        if (r < 0)
            die_status(EX_DATAERR, "error reading input: %s", strerror(errno));
        if (r == 0)
            break;
        int complete = r == 1;
        if (complete)
            while (line.len && line.s[line.len - 1] == '\r')
                strbuf_truncate(&line, line.len - 1);
        if (line_start && complete && opt->dot_ends && line.len == 1 && line.s[0] == '.')
            break;
        if (at_start && line_start) {
            const char *p = line.s ? line.s + strspn(line.s, ">") : "";
            if (strncmp(p, "From ", 5) == 0) {
                while (!complete && (r = line_read(reader, &line, 65536)) == 2)
                    ;
                continue;
            }
        }
        at_start = 0;
        if (in_header && line_start && opt->extract) {
            size_t name_len;
            int continuation = line.len && (line.s[0] == ' ' || line.s[0] == '\t') && header.len;
            if (!continuation) {
                if (header.len)
                    extract_header(&header, x);
                strbuf_reset(&header);
                if (line.len && header_field_name(line.s, line.len, &name_len))
                    strbuf_append(&header, line.s, line.len);
                else
                    in_header = 0;
            } else if (header.len + line.len < header_limit) {
                strbuf_putc(&header, '\n');
                strbuf_append(&header, line.s, line.len);
            }
        }
        strbuf_append(&out, line.s ? line.s : "", line.len);
        if (complete)
            strbuf_putc(&out, '\n');
        line_start = complete;
        if (out.len >= 65536) {
            if (write_all(fd, out.s, out.len) < 0)
                die_status(EX_TEMPFAIL, "error writing queue file: %s", strerror(errno));
            strbuf_reset(&out);
        }
    }
    if (header.len && in_header)
        extract_header(&header, x);
    if (out.len && write_all(fd, out.s, out.len) < 0)
        die_status(EX_TEMPFAIL, "error writing queue file: %s", strerror(errno));
    if (lseek(fd, 0, SEEK_SET) < 0)
        die_status(EX_OSERR, "lseek: %s", strerror(errno));
    strbuf_free(&line);
    strbuf_free(&out);
    strbuf_free(&header);
    free(reader);
    return fd;
}

/* Hand the message and the envelope to postern-rewrite through the
 * injection client; exit as sysexits.h says. */
static _Noreturn void submit(int message_fd, struct envelope *env)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-rewrite", conf_str("daemon_directory"));
    struct injection_options options = {.program = path.s, .message_fd = message_fd};
    struct injection_client inj;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    if (injection_start(&inj, &options, &err) < 0)
        die_status(EX_OSERR, "%s", strbuf_str(&err));
    enum outcome outcome = injection_finish(&inj, env, &verdict);
    int code = verdict.exit_code;
    if (outcome == OUTCOME_SENT) {
        msg_debug("queued as %s", strbuf_str(&verdict.text));
        exit(EX_OK);
    }
    int status = outcome == OUTCOME_BOUNCED ? EX_UNAVAILABLE : EX_TEMPFAIL;
    if (verdict.from_stage)         /* the refusal's text, without its code */
        die_status(status, "%s", strbuf_str(&verdict.text) + dsn_code_length(verdict.text.s)
                                     + (verdict.text.s[dsn_code_length(verdict.text.s)] == ' '));
    if (code < 0)
        die_status(status, "queue file write error: the injector was killed");
    if (code > 0 && code != INJECT_EXIT_REFUSED && code != INJECT_EXIT_REFUSED_FOR_NOW)
        die_status(status, "%s (status %d)", inject_exit_text(code), code);
    die_status(status, "%s", code ? inject_exit_text(code) : strbuf_str(&verdict.detail));
}

/* Write one request byte into qmgr's trigger FIFO (sendmail -q). */
static int poke_qmgr(char request)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", conf_str("queue_directory"), QUEUE_TRIGGER);
    int fd = open(path.s, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        msg_warn_errno("cannot flush the queue: %s", path.s);
        strbuf_free(&path);
        return EX_UNAVAILABLE;
    }
    ssize_t w = write(fd, &request, 1);
    close(fd);
    strbuf_free(&path);
    return w == 1 || errno == EAGAIN ? EX_OK : EX_UNAVAILABLE;
}

/* mailq, newaliases, -bd: run the `postern` command for it. */
static _Noreturn void run_postern(const char *const *args)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern", conf_str("command_directory"));
    char *argv[16];
    size_t n = 0;
    argv[n++] = path.s;
    argv[n++] = (char *)*args++;        /* the subcommand, then its options */
    argv[n++] = "-c";
    argv[n++] = (char *)config_dir();
    for (; *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    execv(path.s, argv);
    die_status(EX_UNAVAILABLE, "execute %s: %s", path.s, strerror(errno));
}

/* newaliases, -bi, -I: build every table of alias_database in-process
 * (maps/map_build.c), as `postern alias` without arguments does. */
static int newaliases(void)
{
    struct strbuf err = STRBUF_INIT;
    int failed = alias_build_database(conf_str("alias_database"),
                                      conf_str("default_database_type"), &err);
    if (failed) {
        const char *line = strbuf_str(&err);
        while (*line) {
            size_t n = strcspn(line, "\n");
            msg_error("%.*s", (int)n, line);
            line += n + (line[n] == '\n');
        }
    }
    strbuf_free(&err);
    return failed ? EX_UNAVAILABLE : EX_OK;
}

/* Sendmail's "-o x" options: -oi means -i; -o name=value is a postern
 * main.cf override; the rest are ignored, as Postfix does. */
static void old_option(const char *arg, struct options *opt)
{
    if (strcmp(arg, "i") == 0)
        opt->dot_ends = 0;
    else if (strchr(arg, '='))
        config_add_override(arg);
    else if (arg[0] == 'A')
        msg_warn("-oA (alias database) is not supported; ignored");
    else
        msg_debug("-o%s ignored", arg);
}

/* Parse the command line (Postfix's option letters). */
static void parse_options(int argc, char **argv, struct options *opt)
{
    int c;
    while (optind < argc) {
        if (strcmp(argv[optind], "-q") == 0) {      /* not getopt-able */
            opt->mode = MODE_FLUSH;
            optind++;
            continue;
        }
        c = getopt(argc, argv, "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx");
        if (c == -1)
            break;
        switch (c) {
        case 'B':
            if (strcmp(optarg, "8BITMIME") == 0 || strcmp(optarg, "7BIT") == 0)
                opt->body = optarg;
            else
                die_status(EX_USAGE, "-B option needs 8BITMIME or 7BIT");
            break;
        case 'C': {
            /* -C config_dir, or -C config_dir/main.cf as Postfix allows */
            const char *slash = strrchr(optarg, '/');
            if (slash && strcmp(slash + 1, "main.cf") == 0) {
                char *dir = xstrndup(optarg, (size_t)(slash - optarg));
                config_set_dir(*dir ? dir : "/");
                free(dir);
            } else {
                config_set_dir(optarg);
            }
            break;
        }
        case 'F':
            opt->full_name = optarg;
            break;
        case 'G':
            opt->gateway = 1;
            break;
        case 'I':
            opt->mode = MODE_NEWALIASES;
            break;
        case 'N':
            if (!parse_notify(optarg, &opt->notify))
                msg_warn("bad -N option value -- ignored");
            break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                opt->ret = "FULL";
            else if (strcasecmp(optarg, "hdrs") == 0)
                opt->ret = "HDRS";
            else
                msg_warn("bad -R option value -- ignored");
            break;
        case 'V':
            if (strlen(optarg) > 100 || strpbrk(optarg, "\n\r"))
                die_status(EX_USAGE, "-V option value is not a valid envid");
            opt->envid = optarg;
            break;
        case 'b':
            switch (optarg[0]) {
            case 'p': opt->mode = MODE_MAILQ; break;
            case 'i': opt->mode = MODE_NEWALIASES; break;
            case 'm': opt->mode = MODE_ENQUEUE; break;
            case 's': opt->mode = MODE_SMTP; break;
            case 'd': case 'l': opt->mode = MODE_DAEMON; break;
            case 'v': opt->mode = MODE_VERIFY; break;
            case 'h': case 'H': break;
            default: die_status(EX_USAGE, "unsupported: -%c%c", c, optarg[0]);
            }
            break;
        case 'f':
        case 'r':
            opt->sender = optarg;
            break;
        case 'i':
            opt->dot_ends = 0;
            break;
        case 'n':
            die_status(EX_USAGE, "-%c option not supported", c);
        case 'o':
            old_option(optarg, opt);
            break;
        case 'q':
            if (optarg[0] == 'I' || optarg[0] == 'R')
                opt->mode = MODE_FLUSH;   /* postern flushes the whole queue */
            break;                        /* -q30m: an interval, ignored */
        case 't':
            opt->extract = 1;
            break;
        case 'v':
            log_set_verbose(log_verbose() + 1);
            break;
        case '?':
            usage();
        default:
            break;              /* -A -L -O -U -X -c -e -h -m -p -x: ignored */
        }
    }
}

/* Build the envelope and submit (the default mode). */
static _Noreturn void enqueue(struct options *opt, char **recipients, int count,
                              const struct passwd *pw)
{
    struct extracted x = {STRLIST_INIT, STRLIST_INIT, 0};
    struct strlist rcpt = STRLIST_INIT;
    for (int i = 0; i < count; i++)
        addrlist_scan(recipients[i], add_recipient, &rcpt);
    if (!opt->extract && rcpt.count == 0)
        die_status(EX_USAGE, "Recipient addresses must be specified on the command line or via the -t option");
    long long limit = conf_int("header_size_limit");
    int message_fd;
    if (opt->mode == MODE_VERIFY && !opt->extract) {
        /* -bv collects no message (Postfix): an empty one carries the
         * envelope through rewriting and routing */
        message_fd = memfd_create("sendmail-verify", MFD_CLOEXEC);
        if (message_fd < 0)
            die_status(EX_OSERR, "memfd_create: %s", strerror(errno));
    } else {
        message_fd = read_message(opt, &x, limit > 0 ? (size_t)limit : 102400);
    }
    struct strlist *from_header = x.resent_seen ? &x.resent : &x.plain;
    for (size_t i = 0; i < from_header->count; i++)
        strlist_add(&rcpt, from_header->item[i]);
    if (rcpt.count == 0)
        die_status(EX_USAGE, "No recipient addresses found in message header");

    struct envelope env = ENVELOPE_INIT;
    env.sender = opt->sender ? parse_sender(opt->sender) : xstrdup(login_name);
    for (size_t i = 0; i < rcpt.count; i++) {
        if (strpbrk(rcpt.item[i], "\r\n"))
            die_status(EX_DATAERR, "bad recipient address");
        envelope_add(&env, 'T', rcpt.item[i]);
        if (opt->notify.len) {
            struct strbuf p = STRBUF_INIT;
            strbuf_printf(&p, "NOTIFY=%s", opt->notify.s);
            envelope_add(&env, 'P', p.s);
            strbuf_free(&p);
        }
    }
    struct strbuf attr = STRBUF_INIT;
    envelope_add(&env, 'A', "origin=local");
    if (opt->gateway)
        /* -G: the header is a relayed message's, rewritten as remote
         * mail (remote_header_rewrite_domain) or not at all, as Postfix */
        envelope_add(&env, 'A', "rewrite_context=remote");
    if (opt->mode == MODE_VERIFY)
        /* each recipient verified, nothing delivered, a report to the
         * sender (qmgr, postern-bounce -k verify) */
        envelope_add(&env, 'A', "verify=report");
    strbuf_printf(&attr, "uid=%ld", login_uid);
    envelope_add(&env, 'A', attr.s);
    char *full_name = opt->full_name ? xstrdup(opt->full_name) : default_full_name(pw);
    if (full_name && *full_name && !strpbrk(full_name, "\r\n")) {
        strbuf_reset(&attr);
        strbuf_printf(&attr, "full_name=%s", full_name);
        envelope_add(&env, 'A', attr.s);
    }
    free(full_name);
    if (opt->envid) {
        strbuf_reset(&attr);
        strbuf_printf(&attr, "ENVID=%s", opt->envid);
        envelope_add(&env, 'A', attr.s);
    }
    if (opt->ret) {
        strbuf_reset(&attr);
        strbuf_printf(&attr, "RET=%s", opt->ret);
        envelope_add(&env, 'A', attr.s);
    }
    if (opt->body) {
        strbuf_reset(&attr);
        strbuf_printf(&attr, "BODY=%s", opt->body);
        envelope_add(&env, 'A', attr.s);
    }
    submit(message_fd, &env);
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    log_open("sendmail", LOG_STDERR);
    login_uid = (long)getuid();
    struct passwd *pw = getpwuid(getuid());
    login_name = pw ? xstrdup(pw->pw_name) : NULL;
    signal(SIGPIPE, SIG_IGN);

    struct options opt = {.mode = MODE_ENQUEUE, .dot_ends = 1, .notify = STRBUF_INIT};
    if (strcmp(base, "mailq") == 0)
        opt.mode = MODE_MAILQ;
    else if (strcmp(base, "newaliases") == 0)
        opt.mode = MODE_NEWALIASES;
    parse_options(argc, argv, &opt);
    config_load(0);
    /* the programs this one starts read the same main.cf */
    setenv("POSTERN_CONFIG_DIR", config_dir(), 1);

    switch (opt.mode) {
    case MODE_MAILQ: {
        static const char *const args[] = {"queue", "list", NULL};
        run_postern(args);
    }
    case MODE_NEWALIASES:
        return newaliases();
    case MODE_DAEMON: {
        static const char *const args[] = {"start", NULL};
        run_postern(args);
    }
    case MODE_FLUSH:
        return poke_qmgr('F');
    case MODE_SMTP: {
        /* SMTP on stdin/stdout: postern-smtpd in local-submission mode
         * (postern-smtpd(8) -S); the configuration directory goes along in
         * POSTERN_CONFIG_DIR, set above */
        struct strbuf path = STRBUF_INIT;
        strbuf_printf(&path, "%s/postern-smtpd", conf_str("daemon_directory"));
        char *smtpd_argv[] = {(char *)"postern-smtpd", (char *)"-S", NULL};
        execv(path.s, smtpd_argv);
        die_status(EX_UNAVAILABLE, "execute %s: %s", path.s, strerror(errno));
    }
    case MODE_VERIFY:
    case MODE_ENQUEUE:
        break;
    }
    if (!login_name)
        die_status(EX_OSERR, "no login name found for user ID %ld", login_uid);
    enqueue(&opt, argv + optind, argc - optind, pw);
}
