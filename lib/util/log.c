/* log.c - logging to syslog, maillog_file and stderr (see log.h).
 *
 * Threads: the lookup service's database threads log while its main
 * thread may reconfigure (SIGHUP: syslog_name, maillog_file).  The names
 * a line is written under are therefore one immutable record, swapped
 * whole through an atomic pointer and never freed (syslog(3) keeps the
 * ident openlog was given), and the log file keeps its descriptor number
 * across a reopen (dup3). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <bsd/string.h>

#include "log.h"
#include "strbuf.h"

static char program_name[64] = "postern";    /* set once, before any thread */

#define IDENT_MAX 160
/* The names a line goes out under; a record is never changed or freed
 * once published. */
struct log_names {
    char ident[IDENT_MAX];          /* "postern/smtpd", "postfix/cleanup" */
    char prefix[96];                /* syslog_name */
    int postfix_names;              /* syslog_name is postfix or postfix-*: log as Postfix */
    const struct log_names *older;  /* the record it replaced: kept, and reachable */
};
static const char *postfix_program(const char *program);
static const struct log_names initial_names = {"postern", "postern", 0, NULL};
static _Atomic(const struct log_names *) current_names = &initial_names;

/* The names in use now. */
static const struct log_names *names_now(void)
{
    return atomic_load_explicit(&current_names, memory_order_acquire);
}

/* Publish new names (a new record, unless they are the ones in use). */
static void names_set(const char *prefix, int postfix_names, const char *program)
{
    struct log_names fresh;
    memset(&fresh, 0, sizeof fresh);
    strlcpy(fresh.prefix, prefix, sizeof fresh.prefix);
    fresh.postfix_names = postfix_names;
    snprintf(fresh.ident, sizeof fresh.ident, "%s/%s", fresh.prefix, program);
    const struct log_names *now = names_now();
    if (strcmp(now->ident, fresh.ident) == 0 && strcmp(now->prefix, fresh.prefix) == 0
        && now->postfix_names == fresh.postfix_names)
        return;
    struct log_names *record = malloc(sizeof *record);
    if (!record)
        return;                     /* keep the old names */
    *record = fresh;
    record->older = now;
    atomic_store_explicit(&current_names, record, memory_order_release);
}
static unsigned log_flags;
static int verbose_level;
static int file_fd = -1;            /* maillog_file, when set */
static int syslog_opened;
static int syslog_facility = LOG_MAIL;
static int exit_temp = EX_TEMPFAIL, exit_perm = 1;
static char hostname[256];

void log_open(const char *program, unsigned flags)
{
    const char *slash = strrchr(program, '/');
    if (slash)
        program = slash + 1;
    /* "postern-smtpd" runs as "smtpd" in the log, as Postfix's daemons do */
    if (strncmp(program, "postern-", 8) == 0 && program[8])
        program += 8;
    strlcpy(program_name, program, sizeof program_name);
    const struct log_names *names = names_now();
    names_set(names->prefix, names->postfix_names,
              names->postfix_names ? postfix_program(program_name) : program_name);
    log_flags = flags;
    if (gethostname(hostname, sizeof hostname - 1) != 0)
        strlcpy(hostname, "localhost", sizeof hostname);
    char *dot = strchr(hostname, '.');
    if (dot)
        *dot = '\0';
}

/* The Postfix daemon that does the work of a postern program, by the name
 * Postfix's log tools know it (pflogsumm counts "cleanup", "pickup" and
 * "smtpd" lines by name); programs without a counterpart keep their name. */
static const char *postfix_program(const char *program)
{
    static const struct { const char *postern, *postfix; } table[] = {
        {"queue", "cleanup"}, {"rewrite", "cleanup"}, {"accept", "master"},
        {"lookup", "proxymap"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(program, table[i].postern) == 0)
            return table[i].postfix;
    return program;
}

/* The syslog code of a facility name (syslog_facility), or -1. */
static int facility_code(const char *name)
{
    static const struct { const char *name; int code; } table[] = {
        {"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcasecmp(name, table[i].name) == 0)
            return table[i].code;
    return -1;
}

int log_configure(const char *syslog_name, const char *facility,
                  const char *maillog_file)
{
    if (syslog_name && *syslog_name) {
        int postfix_names = strcmp(syslog_name, "postfix") == 0
                            || strncmp(syslog_name, "postfix-", 8) == 0;
        names_set(syslog_name, postfix_names,
                  postfix_names ? postfix_program(program_name) : program_name);
    }
    int code = facility && *facility ? facility_code(facility) : LOG_MAIL;
    if (code < 0) {
        msg_warn("unknown syslog_facility \"%s\"; using mail", facility);
        code = LOG_MAIL;
    }
    /* syslog connects at the first line sent there, not now: programs that
     * log to maillog_file never open /dev/log */
    if (syslog_opened)
        closelog();
    syslog_facility = code;
    openlog(names_now()->ident, LOG_PID, code);
    syslog_opened = 1;
    if (!maillog_file || !*maillog_file) {
        if (file_fd >= 0) {
            /* no file any more: the descriptor is left pointing at
             * /dev/null rather than closed, so a thread that is writing a
             * line now never writes into a descriptor reused meanwhile */
            int old = file_fd, null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
            file_fd = -1;
            if (null_fd >= 0 && dup3(null_fd, old, O_CLOEXEC) < 0)
                close(old);     /* no /dev/null in its place: closed after all */
            if (null_fd >= 0)
                close(null_fd);
        }
        return 0;
    }
    int fd;
    if (strcmp(maillog_file, "/dev/stdout") == 0) {
        fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    } else if (strcmp(maillog_file, "/dev/stderr") == 0) {
        fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    } else {
        fd = open(maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd >= 0 && fd <= 2) {
            /* never let the log take over a standard descriptor */
            int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            close(fd);
            fd = moved;
        }
    }
    if (fd < 0) {
        msg_warn_errno("open maillog_file %s", maillog_file);
        return -1;
    }
    if (file_fd >= 0) {
        /* a reopen (SIGHUP): the new file takes the old descriptor's
         * number in one step, so threads logging meanwhile (the lookup
         * service's database threads) write to one file or the other,
         * never to a closed or reused descriptor */
        if (dup3(fd, file_fd, O_CLOEXEC) < 0) {
            msg_warn_errno("reopen maillog_file %s", maillog_file);
            close(fd);
            return -1;
        }
        close(fd);
    } else {
        file_fd = fd;
    }
    return 0;
}

void log_set_verbose(int level)
{
    verbose_level = level;
}

int log_verbose(void)
{
    return verbose_level;
}

void log_exit_codes(int temp_code, int perm_code)
{
    exit_temp = temp_code;
    exit_perm = perm_code;
}

const char *log_program(void)
{
    return program_name;
}

/* Write the whole buffer, retrying short writes; errors are ignored because
 * there is nowhere left to report them. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Format one line and send it to every destination, under `ident` and
 * `pid` (the program's own, or those msg_info_as() lends it). */
static void log_line_as(int priority, const char *prefix, const char *ident, long pid,
                        const char *fmt, va_list ap, int saved_errno)
{
    struct strbuf text = STRBUF_INIT;
    strbuf_puts(&text, prefix);
    strbuf_vprintf(&text, fmt, ap);
    if (saved_errno)
        strbuf_printf(&text, ": %s", strerror(saved_errno));
    /* one line per message, whatever the caller gave us */
    for (size_t i = 0; i < text.len; i++)
        if (text.s[i] == '\n' || text.s[i] == '\r')
            text.s[i] = ' ';

    if (file_fd >= 0) {
        struct strbuf line = STRBUF_INIT;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
        strbuf_printf(&line, "%s %s %s[%ld]: %s\n", stamp, hostname, ident, pid, text.s);
        write_all(file_fd, line.s, line.len);
        strbuf_free(&line);
    } else if (ident != names_now()->ident || pid != (long)getpid()) {
        /* another name or pid: syslog(3) takes both from openlog */
        char lent[IDENT_MAX + 24];
        snprintf(lent, sizeof lent, "%s[%ld]", ident, pid);
        if (syslog_opened)
            closelog();
        openlog(lent, 0, syslog_facility);
        syslog(priority, "%s", text.s);
        closelog();
        openlog(names_now()->ident, LOG_PID, syslog_facility);
        syslog_opened = 1;
    } else {
        if (!syslog_opened) {
            openlog(ident, LOG_PID, syslog_facility);
            syslog_opened = 1;
        }
        syslog(priority, "%s", text.s);
    }
    if ((log_flags & LOG_STDERR) || verbose_level) {
        struct strbuf line = STRBUF_INIT;
        if (log_flags & LOG_STDERR)
            strbuf_printf(&line, "%s: %s\n", ident, text.s);
        else
            strbuf_printf(&line, "%s[%ld]: %s\n", ident, pid, text.s);
        write_all(2, line.s, line.len);
        strbuf_free(&line);
    }
    strbuf_free(&text);
}

/* Format one line under the program's own name and pid. */
static void log_line(int priority, const char *prefix, const char *fmt,
                     va_list ap, int saved_errno)
{
    log_line_as(priority, prefix, names_now()->ident, (long)getpid(), fmt, ap, saved_errno);
}

#define LOG_WITH(priority, prefix, with_errno)                    \
    do {                                                          \
        int saved_errno_ = (with_errno) ? errno : 0;              \
        va_list ap_;                                              \
        va_start(ap_, fmt);                                       \
        log_line(priority, prefix, fmt, ap_, saved_errno_);       \
        va_end(ap_);                                              \
    } while (0)

void msg_info(const char *fmt, ...) { LOG_WITH(LOG_INFO, "", 0); }

void msg_info_as(const char *program, const char *postfix_program, long pid,
                 const char *fmt, ...)
{
    const struct log_names *names = names_now();
    char ident[IDENT_MAX];
    const char *use = names->ident;
    const char *name = names->postfix_names ? postfix_program : program;
    if (name) {
        snprintf(ident, sizeof ident, "%s/%s", names->prefix, name);
        use = ident;
    }
    va_list ap;
    va_start(ap, fmt);
    log_line_as(LOG_INFO, "", use, name && pid > 0 ? pid : (long)getpid(), fmt, ap, 0);
    va_end(ap);
}

int log_postfix_names(void)
{
    return names_now()->postfix_names;
}

void msg_debug(const char *fmt, ...)
{
    if (verbose_level)
        LOG_WITH(LOG_DEBUG, "", 0);
}

void msg_warn(const char *fmt, ...) { LOG_WITH(LOG_WARNING, "warning: ", 0); }
void msg_warn_errno(const char *fmt, ...) { LOG_WITH(LOG_WARNING, "warning: ", 1); }
void msg_error(const char *fmt, ...) { LOG_WITH(LOG_ERR, "error: ", 0); }

void msg_fatal(const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ", 0);
    exit(exit_perm);
}

void msg_fatal_errno(const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ", 1);
    exit(exit_perm);
}

void msg_fatal_temp(const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ", 0);
    exit(exit_temp);
}

void msg_fatal_temp_errno(const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ", 1);
    exit(exit_temp);
}

const char *log_printable(struct strbuf *out, const char *s, size_t max)
{
    size_t start = out->len;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (max && out->len - start >= max)
            break;
        strbuf_putc(out, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
    }
    return strbuf_str(out);
}
