/* policy_proto.c - encoding a policy request and parsing the answer
 * (policy_proto.h). */
#include <string.h>

#include "policy_proto.h"
#include "strbuf.h"

void policy_attr_put(struct strbuf *out, const char *name, const char *value)
{
    strbuf_puts(out, name);
    strbuf_putc(out, '=');
    for (const char *p = value ? value : ""; *p; p++)
        strbuf_putc(out, *p == '\r' || *p == '\n' ? ' ' : *p);
    strbuf_putc(out, '\n');
}

void policy_request_end(struct strbuf *out)
{
    strbuf_putc(out, '\n');
}

/* Is c white space as the protocol trims it? */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

enum policy_parse policy_answer_parse(const char *bytes, size_t len, struct strbuf *action,
                                      size_t *used, struct strbuf *why)
{
    size_t pos = 0;
    int have_action = 0;
    strbuf_reset(action);
    while (pos < len) {
        const char *line = bytes + pos;
        const char *nl = memchr(line, '\n', len - pos);
        if (!nl)
            break;
        size_t line_len = (size_t)(nl - line);
        pos += line_len + 1;
        while (line_len && is_space(line[line_len - 1]))
            line_len--;
        if (line_len == 0) {
            if (!have_action) {
                strbuf_set(why, "missing attribute action");
                return POLICY_PARSE_BAD;
            }
            *used = pos;
            return POLICY_PARSE_DONE;
        }
        const char *eq = memchr(line, '=', line_len);
        if (!eq || memchr(line, '\0', line_len)) {
            strbuf_set(why, "malformed attribute (no name=value)");
            return POLICY_PARSE_BAD;
        }
        const char *name = line;
        size_t name_len = (size_t)(eq - line);
        while (name_len && is_space(*name)) {
            name++;
            name_len--;
        }
        while (name_len && is_space(name[name_len - 1]))
            name_len--;
        if (name_len == 6 && memcmp(name, "action", 6) == 0) {
            const char *value = eq + 1;
            size_t value_len = line_len - (size_t)(value - line);
            while (value_len && is_space(*value)) {
                value++;
                value_len--;
            }
            /* the action becomes an SMTP reply and a log line: a
             * control byte there (a bare CR) is no answer */
            for (size_t i = 0; i < value_len; i++)
                if (((unsigned char)value[i] < 0x20 && value[i] != '\t')
                    || value[i] == 0x7f) {
                    strbuf_set(why, "control character in action");
                    return POLICY_PARSE_BAD;
                }
            strbuf_reset(action);
            strbuf_append(action, value, value_len);
            have_action = 1;
        }
    }
    if (len > POLICY_ANSWER_MAX) {
        strbuf_set(why, "answer too long");
        return POLICY_PARSE_BAD;
    }
    return POLICY_PARSE_MORE;
}
