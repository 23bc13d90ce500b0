/* receive.c - what a receiving program adds to or leaves out of each
 * message it accepts, as Postfix's smtpd(8) and pickup(8) do
 * (FILTER_README): content_filter, the FILTER every message gets, and
 * receive_override_options, the checks and mappings it skips.  smtpd
 * reads both from its own configuration (main.cf and its service's -o);
 * local submission (sendmail, whose mail Postfix's pickup receives) from
 * the -o of master.cf's pickup service when it sets them, else main.cf
 * (config.h, "Receiving").
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "mastercf.h"
#include "strbuf.h"

/* name_mask's loop; with `unknown`, the first name the table lacks is kept
 * there (and nothing is said of it) */
static unsigned mask_of_words(const char *param, const char *value, const struct name_flag *table,
                              size_t count, unsigned flags, struct strbuf *unknown)
{
    int any_case = (flags & NAME_MASK_ANY_CASE) != 0;
    struct strlist words = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    unsigned mask = 0;
    if (list_split(value, &words, &err) != 0 && !(flags & NAME_MASK_IGNORE))
        msg_warn("%s: %s", param, strbuf_str(&err));
    for (size_t i = 0; i < words.count; i++) {
        size_t j = 0;
        while (j < count && (any_case ? strcasecmp(table[j].name, words.item[i])
                                      : strcmp(table[j].name, words.item[i])) != 0)
            j++;
        if (j < count)
            mask |= table[j].flag;
        else if (unknown) {
            if (!unknown->len)
                strbuf_set(unknown, words.item[i]);
        } else if (flags & NAME_MASK_FATAL)
            msg_fatal_temp("unknown %s value \"%s\" in \"%s\"", param, words.item[i], value);
        else if (!(flags & NAME_MASK_IGNORE))
            msg_warn("unknown %s value \"%s\" ignored", param, words.item[i]);
    }
    strlist_free(&words);
    strbuf_free(&err);
    return mask;
}

unsigned name_mask(const char *param, const char *value, const struct name_flag *table,
                   size_t count, unsigned flags)
{
    return mask_of_words(param, value, table, count, flags, NULL);
}

/* receive_override_options' names: case matters, and an unknown name is
 * fatal, as in Postfix's input_transp: mail is not received with checks
 * it was meant to skip or without those it was meant to have */
static const struct name_flag receive_names[] = {
    {"no_unknown_recipient_checks", RECEIVE_NO_UNKNOWN_RECIPIENT_CHECKS},
    {"no_address_mappings", RECEIVE_NO_ADDRESS_MAPPINGS},
    {"no_header_body_checks", RECEIVE_NO_HEADER_BODY_CHECKS},
    {"no_milters", RECEIVE_NO_MILTERS},
};

unsigned receive_override_mask(const char *value)
{
    return name_mask("receive_override_options", value, receive_names,
                     sizeof receive_names / sizeof receive_names[0], NAME_MASK_FATAL);
}

const char *receive_override_unknown(const char *value, struct strbuf *name)
{
    strbuf_reset(name);
    (void)mask_of_words("receive_override_options", value, receive_names,
                        sizeof receive_names / sizeof receive_names[0], NAME_MASK_IGNORE, name);
    return name->len ? strbuf_str(name) : NULL;
}

/* The value that the last "-o name=value" of a service gives,
 * unexpanded (pointing into overrides); NULL when none sets it. */
static const char *service_option(const struct strlist *overrides, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < overrides->count; i++) {
        const char *arg = overrides->item[i];
        while (*arg == ' ' || *arg == '\t')
            arg++;
        if (strncmp(arg, name, n) != 0)
            continue;
        const char *rest = arg + n;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        if (*rest != '=')
            continue;
        rest++;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        found = rest;
    }
    return found;
}

void receive_local_setting(const char *name, struct strbuf *out)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    struct master_table table = {0};
    int from_pickup = 0;
    strbuf_reset(out);
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (master_read(strbuf_str(&path), 1, &table, &err) == 0) {
        for (size_t i = 0; i < table.count; i++) {
            if (strcmp(table.service[i].command, "pickup") != 0)
                continue;
            struct strlist overrides = STRLIST_INIT;
            master_service_overrides(&table.service[i], &overrides);
            const char *value = service_option(&overrides, name);
            if (!value) {
                strlist_free(&overrides);
                continue;
            }
            struct strbuf expanded = STRBUF_INIT;
            if (conf_expand(value, &expanded, &err) == 0) {
                strbuf_set(out, strbuf_str(&expanded));
                from_pickup = 1;
            } else {
                msg_warn("master.cf, service %s: -o %s: %s", table.service[i].service, name,
                         strbuf_str(&err));
            }
            strbuf_free(&expanded);
            strlist_free(&overrides);
        }
    }
    if (!from_pickup)
        strbuf_set(out, conf_str(name));
    master_free(&table);
    strbuf_free(&path);
    strbuf_free(&err);
}
