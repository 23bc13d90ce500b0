/* envelope.c - the injection envelope in memory (envelope.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fdio.h"
#include "strbuf.h"
#include "xalloc.h"

int envelope_read(int fd, struct envelope *env, struct strbuf *err)
{
    struct record_reader *reader = xmalloc(sizeof *reader);
    struct strbuf rec = STRBUF_INIT;
    int status = 0, recipients = 0;
    record_reader_init(reader, fd);
    for (;;) {
        int r = record_read(reader, &rec, ENVELOPE_RECORD_MAX);
        if (r < 0 && errno == EMSGSIZE) {
            strbuf_printf(err, "envelope record longer than %d bytes", ENVELOPE_RECORD_MAX);
            status = 91;
            break;
        }
        if (r < 0) {
            strbuf_printf(err, "cannot read the envelope: %s", strerror(errno));
            status = errno == EPROTO ? 91 : 55;
            break;
        }
        if (r == 0) {
            strbuf_puts(err, "envelope ends without its end record");
            status = 91;
            break;
        }
        if (rec.len == 0)
            break;
        if (memchr(rec.s, '\n', rec.len)) {
            strbuf_puts(err, "envelope record contains a line feed");
            status = 91;
            break;
        }
        if (!env->sender) {
            if (rec.s[0] != 'F') {
                strbuf_puts(err, "envelope does not start with an F record");
                status = 91;
                break;
            }
            env->sender = xstrdup(rec.s + 1);
            continue;
        }
        if (rec.s[0] == 'T')
            recipients++;
        strlist_add(&env->records, rec.s);
    }
    if (status == 0 && recipients == 0) {
        strbuf_puts(err, env->sender ? "envelope has no recipient" : "empty envelope");
        status = 91;
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

void envelope_free(struct envelope *env)
{
    free(env->sender);
    env->sender = NULL;
    strlist_free(&env->records);
}
