/* rewrite_checks.c - header_checks and body_checks (rewrite.h): the
 * action a table's result names, parsed as Postfix's cleanup reads it
 * ("ACTION optional text", the action's case ignored), and what each does
 * to one logical header or one body line.  The stream (rewrite_stream.c)
 * asks; this file decides and logs. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "map.h"
#include "rewrite.h"
#include "strbuf.h"
#include "xalloc.h"

void rewrite_check_parse(const char *value, struct rewrite_check *out)
{
    static const struct { const char *name; enum rewrite_check_action action; } names[] = {
        {"REJECT", CHECK_REJECT}, {"WARN", CHECK_WARN}, {"INFO", CHECK_INFO},
        {"IGNORE", CHECK_IGNORE}, {"DUNNO", CHECK_DUNNO}, {"OK", CHECK_DUNNO},
        {"REPLACE", CHECK_REPLACE}, {"PREPEND", CHECK_PREPEND}, {"DISCARD", CHECK_DISCARD},
        {"HOLD", CHECK_HOLD}, {"REDIRECT", CHECK_REDIRECT},
        {"FILTER", CHECK_FILTER}, {"BCC", CHECK_BCC},
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
 * from client; from=<a> to=<b>: text"): kept in info->actions until the
 * envelope and the queue id are known, or at once when there is none. */
static void log_action(const struct rewrite_message_info *info, const char *action,
                       const char *context, const char *content, const char *text)
{
    struct strbuf head = STRBUF_INIT, tail = STRBUF_INIT, clean = STRBUF_INIT;
    /* milter_header_checks: "milter-header-reject: header X-Spam: yes"
     * with 60 bytes of the header, as Postfix's cleanup_milter logs */
    if (strcmp(context, "milter header") == 0)
        strbuf_printf(&head, "milter-header-%s: header %s", action, log_printable(&clean, content, 60));
    else
        strbuf_printf(&head, "%s: %s %s", action, context, log_printable(&clean, content, 200));
    if (text && *text) {
        strbuf_reset(&clean);
        strbuf_printf(&tail, ": %s", log_printable(&clean, text, 1000));
    }
    if (info->actions) {
        strlist_add(&info->actions->log, strbuf_str(&head));
        strlist_add(&info->actions->log, strbuf_str(&tail));
    } else {
        strbuf_reset(&clean);
        msg_info("%s from %s; from=<%s>%s", strbuf_str(&head),
                 info->log_client ? info->log_client : "local",
                 log_printable(&clean, info->sender ? info->sender : "", 0), strbuf_str(&tail));
    }
    strbuf_free(&head);
    strbuf_free(&tail);
    strbuf_free(&clean);
}

void rewrite_log_mime_error(const struct rewrite_message_info *info, const char *error,
                            const char *text, size_t len)
{
    struct strbuf context = STRBUF_INIT, content = STRBUF_INIT;
    strbuf_printf(&context, "mime-error %s:", error);
    strbuf_append(&content, text, len < 100 ? len : 100);
    log_action(info, "reject", strbuf_str(&context), strbuf_str(&content), NULL);
    strbuf_free(&context);
    strbuf_free(&content);
}

/* DISCARD, HOLD, REDIRECT, FILTER, BCC: note the action for the
 * envelope (rewrite_actions_apply) and log it.  The action that applies:
 * CHECK_DUNNO when it was malformed (warned) or cannot be kept. */
static int message_action(const struct rewrite_message_info *info, const struct rewrite_check *check,
                          const char *title, const char *context, const char *content)
{
    struct rewrite_actions *actions = info->actions;
    const char *text = check->text;
    int needs_text = check->action == CHECK_REDIRECT || check->action == CHECK_FILTER
                     || check->action == CHECK_BCC;
    if (needs_text && !*text) {
        msg_warn("missing %.*s argument in %s map", (int)check->name_len, check->name, title);
        return CHECK_DUNNO;
    }
    if (check->action == CHECK_FILTER && (!strchr(text, ':') || *text == ':')) {
        msg_warn("bad FILTER action syntax \"%s\" in %s map -- need \"transport:destination\"",
                 text, title);
        return CHECK_DUNNO;
    }
    if (!actions) {
        msg_warn("%s: action %.*s is not available here: ignored", title,
                 (int)check->name_len, check->name);
        return CHECK_DUNNO;
    }
    static const char *const names[] = {
        [CHECK_DISCARD] = "discard", [CHECK_HOLD] = "hold", [CHECK_REDIRECT] = "redirect",
        [CHECK_FILTER] = "filter", [CHECK_BCC] = "bcc",
    };
    log_action(info, names[check->action], context, content, text);
    switch (check->action) {
    case CHECK_DISCARD:
        actions->discard = 1;
        break;
    case CHECK_HOLD:
        actions->hold = 1;
        break;
    case CHECK_REDIRECT:
        free(actions->redirect);
        actions->redirect = xstrdup(text);
        break;
    case CHECK_FILTER:
        free(actions->filter);
        actions->filter = xstrdup(text);
        break;
    default:
        strlist_add(&actions->bcc, text);
        break;
    }
    return check->action;
}

int rewrite_check(const struct rewrite_config *cfg, const struct rewrite_message_info *info,
                  int body, const char *content, struct strbuf *replacement,
                  struct strbuf *prepend, struct strbuf *reject)
{
    static const char *const titles[] = {
        [CHECKS_HEADER] = "header_checks", [CHECKS_BODY] = "body_checks",
        [CHECKS_MIME] = "mime_header_checks", [CHECKS_NESTED] = "nested_header_checks",
        [CHECKS_MILTER] = "milter_header_checks",
    };
    struct maplist *maps = body == CHECKS_BODY ? cfg->body_checks
                           : body == CHECKS_MILTER ? cfg->milter_header_checks
                           : body == CHECKS_MIME ? cfg->mime_header_checks
                           : body == CHECKS_NESTED ? cfg->nested_header_checks : cfg->header_checks;
    const char *title = titles[body];
    const char *context = body == CHECKS_BODY ? "body" : body == CHECKS_MILTER ? "milter header" : "header";
    if (!maps)
        return CHECK_DUNNO;
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
        if (check.action == CHECK_PREPEND && body == CHECKS_MILTER) {
            msg_warn("%s: action PREPEND is not available here: ignored", title);
            result = CHECK_DUNNO;
        } else if (!*check.text) {
            msg_warn("%.*s action without text in %s map", (int)check.name_len, check.name, title);
            result = CHECK_DUNNO;
        } else if (body != CHECKS_BODY && !is_header(check.text)) {
            msg_warn("bad %.*s header text \"%s\" in %s map -- need \"headername: headervalue\"",
                     (int)check.name_len, check.name, check.text, title);
            result = CHECK_DUNNO;
        } else {
            log_action(info, check.action == CHECK_REPLACE ? "replace" : "prepend", context,
                       content, check.text);
            strbuf_set(check.action == CHECK_REPLACE ? replacement : prepend, check.text);
        }
        break;
    case CHECK_DISCARD:
    case CHECK_HOLD:
    case CHECK_REDIRECT:
    case CHECK_FILTER:
    case CHECK_BCC:
        result = message_action(info, &check, title, context, content);
        break;
    case CHECK_UNKNOWN:
        msg_warn("unknown command in %s map: %s", title, strbuf_str(&value));
        result = CHECK_DUNNO;
        break;
    }
    strbuf_free(&value);
    return result;
}
