/* rewrite_checks.c - header_checks and body_checks (rewrite.h): the
 * action a table's result names, parsed as Postfix's cleanup reads it
 * ("ACTION optional text", the action's case ignored), and what each does
 * to one logical header or one body line.  The stream (rewrite_stream.c)
 * asks; this file decides and logs. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "map.h"
#include "rewrite.h"
#include "strbuf.h"

void rewrite_check_parse(const char *value, struct rewrite_check *out)
{
    static const struct { const char *name; enum rewrite_check_action action; } names[] = {
        {"REJECT", CHECK_REJECT}, {"WARN", CHECK_WARN}, {"INFO", CHECK_INFO},
        {"IGNORE", CHECK_IGNORE}, {"DUNNO", CHECK_DUNNO}, {"OK", CHECK_DUNNO},
        {"REPLACE", CHECK_REPLACE}, {"PREPEND", CHECK_PREPEND}, {"DISCARD", CHECK_UNIMPLEMENTED},
        {"HOLD", CHECK_UNIMPLEMENTED}, {"REDIRECT", CHECK_UNIMPLEMENTED},
        {"FILTER", CHECK_UNIMPLEMENTED}, {"BCC", CHECK_UNIMPLEMENTED},
    };
    size_t len = strcspn(value, " \t");
    const char *text = value + len;
    while (*text == ' ' || *text == '\t')
        text++;
    out->action = CHECK_UNKNOWN;
    out->name = value;
    out->name_len = len;
    out->text = text;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, value, len) == 0)
            out->action = names[i].action;
}

/* 1 when text is "Name: value" (a header for REPLACE and PREPEND). */
static int is_header(const char *text)
{
    size_t name_len;
    return header_field_name(text, strlen(text), &name_len);
}

/* Log an action as Postfix's cleanup does ("reject: header Subject: x
 * from client; from=<a> to=<b>: text"). */
static void log_action(const struct rewrite_message_info *info, const char *action,
                       const char *context, const char *content, const char *text)
{
    struct strbuf line = STRBUF_INIT, clean = STRBUF_INIT;
    strbuf_printf(&line, "%s: %s %s from %s;", action, context,
                  log_printable(&clean, content, 200),
                  info->log_client ? info->log_client : "local");
    strbuf_printf(&line, " from=<%s>", info->sender ? info->sender : "");
    if (text && *text) {
        strbuf_reset(&clean);
        strbuf_printf(&line, ": %s", log_printable(&clean, text, 1000));
    }
    msg_info("%s", strbuf_str(&line));
    strbuf_free(&line);
    strbuf_free(&clean);
}

int rewrite_check(const struct rewrite_config *cfg, const struct rewrite_message_info *info,
                  int body, const char *content, struct strbuf *replacement,
                  struct strbuf *prepend, struct strbuf *reject)
{
    struct maplist *maps = body ? cfg->body_checks : cfg->header_checks;
    const char *title = body ? "body_checks" : "header_checks";
    const char *context = body ? "body" : "header";
    struct strbuf value = STRBUF_INIT;
    int r = maplist_lookup(maps, content, &value);
    if (r == MAP_RETRY) {
        msg_warn("%s lookup problem -- message not accepted, try again later", title);
        strbuf_set(reject, "4.3.0 Error: temporary failure in content checks");
        strbuf_free(&value);
        return CHECK_REJECT;
    }
    if (r != MAP_FOUND) {
        strbuf_free(&value);
        return CHECK_DUNNO;
    }
    struct rewrite_check check;
    rewrite_check_parse(strbuf_str(&value), &check);
    int result = check.action;
    switch (check.action) {
    case CHECK_REJECT:
        strbuf_reset(reject);
        if (*check.text) {
            /* the text may start with its own X.Y.Z; else 5.7.1 */
            const char *t = check.text;
            if ((t[0] == '4' || t[0] == '5') && t[1] == '.' && isdigit((unsigned char)t[2]))
                strbuf_puts(reject, t);
            else
                strbuf_printf(reject, "5.7.1 %s", t);
        } else {
            strbuf_puts(reject, "5.7.1 message content rejected");
        }
        log_action(info, "reject", context, content, strbuf_str(reject));
        break;
    case CHECK_WARN:
        log_action(info, "warning", context, content, check.text);
        break;
    case CHECK_INFO:
        log_action(info, "info", context, content, check.text);
        break;
    case CHECK_IGNORE:
    case CHECK_DUNNO:
        break;
    case CHECK_REPLACE:
    case CHECK_PREPEND:
        if (!*check.text) {
            msg_warn("%.*s action without text in %s map", (int)check.name_len, check.name, title);
            result = CHECK_DUNNO;
        } else if (!body && !is_header(check.text)) {
            msg_warn("bad %.*s header text \"%s\" in %s map -- need \"headername: headervalue\"",
                     (int)check.name_len, check.name, check.text, title);
            result = CHECK_DUNNO;
        } else {
            log_action(info, check.action == CHECK_REPLACE ? "replace" : "prepend", context,
                       content, check.text);
            strbuf_set(check.action == CHECK_REPLACE ? replacement : prepend, check.text);
        }
        break;
    case CHECK_UNIMPLEMENTED:
        msg_warn("%s: action %.*s is not implemented by postern: ignored", title,
                 (int)check.name_len, check.name);
        result = CHECK_DUNNO;
        break;
    case CHECK_UNKNOWN:
        msg_warn("unknown command in %s map: %s", title, strbuf_str(&value));
        result = CHECK_DUNNO;
        break;
    }
    strbuf_free(&value);
    return result;
}
