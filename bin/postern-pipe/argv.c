/* argv.c - the command's argv from the service's argv= (Postfix's
 * pipe(8) macros): $name or ${name}, $$ for a '$'; an element naming a
 * recipient macro (recipient, original_recipient, user, extension,
 * mailbox, domain) becomes one element per recipient.  Values go into
 * argv as they are: no shell ever reads them, so quotes, $(...) and ';'
 * in an address reach the command literally. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mailbox.h"
#include "pipe.h"
#include "xalloc.h"

/* The macros that differ per recipient. */
static int per_recipient(const char *name, size_t len)
{
    static const char *const names[] = {
        "recipient", "original_recipient", "user", "extension", "mailbox", "domain", NULL,
    };
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
            return 1;
    return 0;
}

/* Fold a string to lower case in place. */
static void fold(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
}

/* An address with the flags' folding (h: the domain, u: the local part)
 * and quoting (q). */
static void address_value(const struct pipe_service *service, const char *address,
                          int quote, struct strbuf *out)
{
    const char *at = strrchr(address, '@');
    size_t local_len = at ? (size_t)(at - address) : strlen(address);
    size_t start = out->len;
    if (quote && (service->flags & PIPE_FLAG_QUOTE))
        mail_quote_local(out, address, local_len);
    else
        strbuf_append(out, address, local_len);
    if ((service->flags & PIPE_FLAG_USER) && out->len > start)
        fold(out->s + start, out->len - start);
    if (at) {
        size_t domain_start = out->len;
        strbuf_puts(out, at);
        if ((service->flags & PIPE_FLAG_HOST) && out->len > domain_start)
            fold(out->s + domain_start, out->len - domain_start);
    }
}

/* A recipient macro's value for recipient i; 0, or -1 when name is none. */
static int recipient_value(const struct pipe_service *service,
                           const struct runner_request *request, size_t i, const char *name,
                           size_t len, struct strbuf *out)
{
#define IS(s) (len == sizeof s - 1 && strncmp(name, s, len) == 0)
    const char *address = request->rcpt[i].address;
    if (IS("recipient")) {
        address_value(service, address, 1, out);
        return 0;
    }
    if (IS("original_recipient")) {
        const char *orig = runner_attr(&request->rcpt[i].attrs, "ORIG");
        address_value(service, orig && *orig ? orig : address, 1, out);
        return 0;
    }
    const char *at = strrchr(address, '@');
    size_t local_len = at ? (size_t)(at - address) : strlen(address);
    size_t start = out->len;
    if (IS("domain")) {
        strbuf_puts(out, at ? at + 1 : "");
        if ((service->flags & PIPE_FLAG_HOST) && out->len > start)
            fold(out->s + start, out->len - start);
        return 0;
    }
    /* user+extension: split at the first recipient_delimiter character */
    const char *delims = service->delimiters ? service->delimiters : "";
    size_t user_len = *delims ? strcspn(address, delims) : local_len;
    if (user_len > local_len || user_len == 0)
        user_len = local_len;
    if (IS("mailbox"))
        strbuf_append(out, address, local_len);
    else if (IS("user"))
        strbuf_append(out, address, user_len);
    else if (IS("extension")) {
        if (user_len < local_len)
            strbuf_append(out, address + user_len + 1, local_len - user_len - 1);
    } else
        return -1;
    if ((service->flags & PIPE_FLAG_USER) && out->len > start)
        fold(out->s + start, out->len - start);
    return 0;
#undef IS
}

/* A message macro's value; 0, or -1 when name is none. */
static int message_value(const struct pipe_service *service,
                         const struct runner_request *request, const char *name, size_t len,
                         struct strbuf *out)
{
    static const struct {
        const char *macro, *attribute;
    } attrs[] = {
        {"client_address", "client_address"}, {"client_hostname", "client_name"},
        {"client_port", "client_port"}, {"client_protocol", "protocol"},
        {"client_helo", "helo_name"}, {"sasl_method", "sasl_method"},
        {"sasl_username", "sasl_username"}, {"sasl_sender", "sasl_sender"},
    };
#define IS(s) (len == sizeof s - 1 && strncmp(name, s, len) == 0)
    if (IS("sender")) {
        address_value(service, pipe_sender(service, request), 1, out);
        return 0;
    }
    if (IS("nexthop")) {
        size_t start = out->len;
        strbuf_puts(out, request->nexthop);
        if ((service->flags & PIPE_FLAG_HOST) && out->len > start)
            fold(out->s + start, out->len - start);
        return 0;
    }
    if (IS("size")) {
        strbuf_printf(out, "%lld", (long long)request->msg_length);
        return 0;
    }
    if (IS("queue_id")) {
        strbuf_puts(out, request->queue_id);
        return 0;
    }
#undef IS
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (strlen(attrs[i].macro) == len && strncmp(attrs[i].macro, name, len) == 0) {
            const char *value = runner_attr(&request->attrs, attrs[i].attribute);
            strbuf_puts(out, value ? value : "");
            return 0;
        }
    return -1;
}

/* Find the macro at text (after its '$'): its name and length, and the
 * length of the whole reference; 0, or -1 when malformed. */
static int macro_at(const char *text, const char **name, size_t *len, size_t *ref)
{
    if (*text == '{') {
        const char *close = strchr(text, '}');
        if (!close)
            return -1;
        *name = text + 1;
        *len = (size_t)(close - text - 1);
        *ref = *len + 2;
    } else {
        *name = text;
        *len = 0;
        while (isalnum((unsigned char)text[*len]) || text[*len] == '_')
            (*len)++;
        *ref = *len;
    }
    return *len ? 0 : -1;
}

/* Expand one element for recipient i (ignored when the element names no
 * recipient macro); 0, or -1 with err set. */
static int expand(const struct pipe_service *service, const struct runner_request *request,
                  size_t i, const char *element, struct strbuf *out, struct strbuf *err)
{
    strbuf_reset(out);
    for (const char *p = element; *p;) {
        if (*p != '$') {
            strbuf_putc(out, *p++);
            continue;
        }
        if (p[1] == '$') {
            strbuf_putc(out, '$');
            p += 2;
            continue;
        }
        const char *name;
        size_t len, ref;
        if (macro_at(p + 1, &name, &len, &ref) != 0) {
            strbuf_printf(err, "service %s: bad macro in argv element \"%s\"", service->name,
                          element);
            return -1;
        }
        if (recipient_value(service, request, i, name, len, out) != 0
            && message_value(service, request, name, len, out) != 0) {
            strbuf_printf(err, "service %s: unknown macro name: \"%.*s\"", service->name,
                          (int)len, name);
            return -1;
        }
        p += 1 + ref;
    }
    return 0;
}

/* Whether an element names a recipient macro. */
static int names_recipient(const char *element)
{
    for (const char *p = strchr(element, '$'); p; p = strchr(p, '$')) {
        if (p[1] == '$') {
            p += 2;
            continue;
        }
        const char *name;
        size_t len, ref;
        if (macro_at(p + 1, &name, &len, &ref) == 0 && per_recipient(name, len))
            return 1;
        p++;
    }
    return 0;
}

int pipe_argv(const struct pipe_service *service, const struct runner_request *request,
              struct strlist *out, struct strbuf *err)
{
    struct strbuf value = STRBUF_INIT;
    int r = 0;
    for (size_t e = 0; e < service->argv.count && r == 0; e++) {
        const char *element = service->argv.item[e];
        size_t count = names_recipient(element) ? request->rcpt_count : 1;
        for (size_t i = 0; i < count && r == 0; i++) {
            r = expand(service, request, i, element, &value, err);
            if (r == 0)
                strlist_add(out, strbuf_str(&value));
        }
    }
    strbuf_free(&value);
    return r;
}
