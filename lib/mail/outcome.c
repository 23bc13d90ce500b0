/* outcome.c - the mappings of the one outcome vocabulary (outcome.h). */
#include <string.h>

#include "outcome.h"
#include "strbuf.h"

int inject_exit_permanent(int code)
{
    return code == INJECT_EXIT_ADDRESS_TOO_LONG || code == INJECT_EXIT_REFUSED
           || code == INJECT_EXIT_ENVELOPE_FORMAT;
}

const char *inject_exit_text(int code)
{
    switch (code) {
    case INJECT_EXIT_ADDRESS_TOO_LONG: return "address too long";
    case INJECT_EXIT_REFUSED: return "message refused";
    case INJECT_EXIT_NO_MEMORY: return "out of memory";
    case INJECT_EXIT_TIMEOUT: return "timeout";
    case INJECT_EXIT_MESSAGE_READ:
    case INJECT_EXIT_ENVELOPE_READ: return "cannot read the message";
    case INJECT_EXIT_ENVELOPE_FORMAT: return "envelope format error";
    default: return "queue file write error";
    }
}

enum outcome outcome_of_dsn(const char *dsn)
{
    switch (dsn[0]) {
    case '2': return OUTCOME_SENT;
    case '5': return OUTCOME_BOUNCED;
    default: return OUTCOME_DEFERRED;
    }
}

enum outcome outcome_of_exit(int code)
{
    if (code == 0)
        return OUTCOME_SENT;
    if (code < 0 || code == EX_TEMPFAIL || code == EX_OSERR || code == QMAIL_EXIT_TEMPORARY)
        return OUTCOME_DEFERRED;
    return OUTCOME_BOUNCED;
}

const char *sysexit_text(int code, const char **dsn)
{
    static const struct { int code; const char *dsn, *text; } table[] = {
        {EX_USAGE, "5.3.0", "command line usage error"},
        {EX_DATAERR, "5.6.0", "data format error"},
        {EX_NOINPUT, "5.3.0", "cannot open input"},
        {EX_NOUSER, "5.1.1", "user unknown"},
        {EX_NOHOST, "5.1.2", "host name unknown"},
        {EX_UNAVAILABLE, "5.3.0", "service unavailable"},
        {EX_SOFTWARE, "5.3.0", "internal software error"},
        {EX_OSERR, "4.3.0", "system resource problem"},
        {EX_OSFILE, "5.3.0", "critical OS file missing"},
        {EX_CANTCREAT, "5.2.0", "can't create user output file"},
        {EX_IOERR, "5.3.0", "input/output error"},
        {EX_TEMPFAIL, "4.3.0", "temporary failure"},
        {EX_PROTOCOL, "5.5.0", "remote error in protocol"},
        {EX_NOPERM, "5.7.0", "permission denied"},
        {EX_CONFIG, "5.3.5", "local configuration error"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code) {
            *dsn = table[i].dsn;
            return table[i].text;
        }
    return NULL;
}

const char *outcome_word(enum outcome outcome)
{
    switch (outcome) {
    case OUTCOME_SENT: return "sent";
    case OUTCOME_BOUNCED: return "bounced";
    default: return "deferred";
    }
}

int smtp_reply_class(int code)
{
    return code >= 200 && code <= 599 ? code / 100 : 0;
}

size_t dsn_code_length(const char *text)
{
    const char *p = text;
    if (!((*p == '2' || *p == '4' || *p == '5') && p[1] == '.'))
        return 0;
    p += 2;
    size_t n = strspn(p, "0123456789");
    if (n < 1 || n > 3 || p[n] != '.')
        return 0;
    p += n + 1;
    n = strspn(p, "0123456789");
    if (n < 1 || n > 3 || (p[n] != ' ' && p[n] != '\0'))
        return 0;
    return (size_t)(p + n - text);
}

void dsn_split(const char *status, const char *fallback, struct strbuf *dsn,
               struct strbuf *text)
{
    strbuf_reset(dsn);
    strbuf_reset(text);
    size_t n = dsn_code_length(status);
    if (n) {
        strbuf_append(dsn, status, n);
        const char *p = status + n;
        while (*p == ' ')
            p++;
        strbuf_puts(text, p);
    } else {
        strbuf_puts(dsn, fallback);
        strbuf_puts(text, status);
    }
}

const char *reply_split(const char *value, int default_code, int *code)
{
    if (strlen(value) > 4 && value[0] >= '2' && value[0] <= '5' && value[1] >= '0'
        && value[1] <= '9' && value[2] >= '0' && value[2] <= '9' && value[3] == ' ') {
        *code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return value + 4;
    }
    *code = default_code;
    return value;
}
