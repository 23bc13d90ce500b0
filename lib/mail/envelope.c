/* envelope.c - the injection envelope in memory (envelope.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fdio.h"
#include "outcome.h"
#include "strbuf.h"
#include "xalloc.h"

/* The strict checks of one record after F; 0 or the exit code. */
static int check_strict(const struct strbuf *rec, int last_was_rcpt, struct strbuf *err)
{
    const char *value = rec->s + 1;
    const char *eq = strchr(value, '=');
    switch (rec->s[0]) {
    case 'T':
        if (rec->len - 1 > ENVELOPE_ADDRESS_MAX) {
            strbuf_printf(err, "envelope address longer than %d bytes", ENVELOPE_ADDRESS_MAX);
            return INJECT_EXIT_ADDRESS_TOO_LONG;
        }
        if (!*value) {
            strbuf_puts(err, "empty recipient in the envelope");
            return INJECT_EXIT_ENVELOPE_FORMAT;
        }
        return 0;
    case 'P':
        if (!last_was_rcpt || !eq || eq == value) {
            strbuf_puts(err, "malformed recipient attribute in the envelope");
            return INJECT_EXIT_ENVELOPE_FORMAT;
        }
        return 0;
    case 'A':
        if (!eq || eq == value) {
            strbuf_puts(err, "malformed message attribute in the envelope");
            return INJECT_EXIT_ENVELOPE_FORMAT;
        }
        return 0;
    default:
        strbuf_printf(err, "unknown envelope record type 0x%02x", (unsigned char)rec->s[0]);
        return INJECT_EXIT_ENVELOPE_FORMAT;
    }
}

int envelope_read(int fd, struct envelope *env, enum envelope_check check,
                  struct strbuf *err)
{
    struct record_reader *reader = xmalloc(sizeof *reader);
    struct strbuf rec = STRBUF_INIT;
    int status = 0, recipients = 0, last_was_rcpt = 0, strict = check == ENVELOPE_STRICT;
    size_t total = 0;
    record_reader_init(reader, fd);
    for (;;) {
        int r = record_read(reader, &rec, ENVELOPE_RECORD_MAX);
        if (r < 0 && errno == EMSGSIZE) {
            strbuf_printf(err, "envelope record longer than %d bytes", ENVELOPE_RECORD_MAX);
            status = INJECT_EXIT_ENVELOPE_FORMAT;
            break;
        }
        if (r < 0 && errno != EPROTO) {
            strbuf_printf(err, "cannot read the envelope: %s", strerror(errno));
            status = INJECT_EXIT_ENVELOPE_READ;
            break;
        }
        if (r <= 0) {
            /* the writer failed before it certified the message; one that
             * wrote nothing at all withdrew it (a refusal it has logged,
             * a client gone during DATA): err stays empty for it */
            if (r < 0 || env->sender)
                strbuf_puts(err, "envelope ends without its end record");
            status = strict ? INJECT_EXIT_ENVELOPE_READ : INJECT_EXIT_ENVELOPE_FORMAT;
            break;
        }
        if (rec.len == 0)
            break;
        total += rec.len;
        if (total > (size_t)ENVELOPE_TOTAL_MAX) {
            strbuf_printf(err, "envelope larger than %ld bytes", ENVELOPE_TOTAL_MAX);
            status = INJECT_EXIT_ENVELOPE_FORMAT;
            break;
        }
        if (memchr(rec.s, '\n', rec.len)) {
            strbuf_puts(err, "envelope record contains a line feed");
            status = INJECT_EXIT_ENVELOPE_FORMAT;
            break;
        }
        if (!env->sender) {
            if (rec.s[0] != 'F') {
                strbuf_puts(err, "envelope does not start with an F record");
                status = INJECT_EXIT_ENVELOPE_FORMAT;
                break;
            }
            if (strict && rec.len - 1 > ENVELOPE_ADDRESS_MAX) {
                strbuf_printf(err, "envelope address longer than %d bytes", ENVELOPE_ADDRESS_MAX);
                status = INJECT_EXIT_ADDRESS_TOO_LONG;
                break;
            }
            env->sender = xstrdup(rec.s + 1);
            continue;
        }
        if (strict && (status = check_strict(&rec, last_was_rcpt, err)) != 0)
            break;
        if (rec.s[0] == 'T')
            recipients++;
        if (rec.s[0] == 'T' || rec.s[0] == 'A')
            last_was_rcpt = rec.s[0] == 'T';
        strlist_add(&env->records, rec.s);
    }
    if (status == 0 && recipients == 0) {
        strbuf_puts(err, env->sender ? "envelope has no recipient" : "empty envelope");
        status = INJECT_EXIT_ENVELOPE_FORMAT;
    }
    strbuf_free(&rec);
    free(reader);
    return status;
}

void envelope_write(const struct envelope *env, struct strbuf *out)
{
    record_put(out, 'F', env->sender ? env->sender : "");
    for (size_t i = 0; i < env->records.count; i++)
        record_put(out, env->records.item[i][0], env->records.item[i] + 1);
    record_end(out);
}

const char *envelope_attr(const struct envelope *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < env->records.count; i++) {
        const char *r = env->records.item[i];
        if (r[0] == 'A' && strncmp(r + 1, name, n) == 0 && r[1 + n] == '=')
            return r + 2 + n;
    }
    return NULL;
}

void envelope_add(struct envelope *env, int type, const char *value)
{
    struct strbuf rec = STRBUF_INIT;
    strbuf_putc(&rec, type);
    strbuf_puts(&rec, value);
    strlist_add(&env->records, strbuf_str(&rec));
    strbuf_free(&rec);
}

size_t envelope_remove_attr(struct envelope *env, const char *name)
{
    size_t n = strlen(name), kept = 0, removed = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *r = env->records.item[i];
        if (r[0] == 'A' && strncmp(r + 1, name, n) == 0 && r[1 + n] == '=') {
            free(r);
            removed++;
        } else {
            env->records.item[kept++] = r;
        }
    }
    env->records.count = kept;
    return removed;
}

void envelope_free(struct envelope *env)
{
    free(env->sender);
    env->sender = NULL;
    strlist_free(&env->records);
}
