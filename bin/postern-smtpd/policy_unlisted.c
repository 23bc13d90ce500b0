/* policy_unlisted.c - unknown recipients and senders of our domains
 * (reject_unlisted_recipient, reject_unlisted_sender): the tables of the
 * address class decide, as Postfix's smtpd does. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "policy_impl.h"

/* Look an address up in the maps of a parameter: 1 found, 0 not, -1 retry. */
static int address_listed(struct session *s, const char *param, const char *address, int local)
{
    const char *value = conf_str(param);
    if (!*value)
        return 0;
    struct maplist *maps = policy_table(s->policy, value);
    if (!maps)
        return -1;
    struct strbuf result = STRBUF_INIT;
    int r = map_search_address(maps, address, conf_str("recipient_delimiter"), local, &result, NULL);
    strbuf_free(&result);
    return r == MAP_RETRY ? -1 : r == MAP_FOUND;
}

/* Is the address known in the tables of its class?  0 yes (or a class
 * without tables), else the reply code with reply_text set for `subj`. */
static int unlisted_address(struct session *s, const char *address_in, enum subject subj,
                            struct strbuf *reply_text)
{
    /* receive_override_options = no_unknown_recipient_checks: neither
     * recipients nor senders are looked up, as Postfix's smtpd (typically
     * the listener behind a content filter) */
    if (submit_receive_override() & RECEIVE_NO_UNKNOWN_RECIPIENT_CHECKS)
        return 0;
    const char *recipient = address_in;
    struct check_ctx ctx = {s, subj == SUBJ_SENDER ? address_in : strbuf_str(&s->tx.sender),
                            subj == SUBJ_RECIPIENT ? address_in : NULL, subj, reply_text, 0, NULL};
    struct destination d = DESTINATION_INIT;
    if (destination_resolve(recipient, &d) != 0) {
        destination_free(&d);
        temp_failure(&ctx, subj);
        return 451;
    }
    struct strbuf address = STRBUF_INIT;
    strbuf_puts(&address, strbuf_str(&d.localpart));
    if (d.domain.len)
        strbuf_printf(&address, "@%s", strbuf_str(&d.domain));
    const char *table = NULL, *code_param = NULL, *maps_param = NULL;
    int local = 0;
    switch (d.dest_class) {
    case DEST_LOCAL:
        maps_param = "local_recipient_maps";
        table = "local recipient table";
        code_param = "unknown_local_recipient_reject_code";
        local = 1;
        break;
    case DEST_VIRTUAL_ALIAS:
        table = "virtual alias table";
        code_param = "unknown_virtual_alias_reject_code";
        break;
    case DEST_VIRTUAL_MAILBOX:
        maps_param = "virtual_mailbox_maps";
        table = "virtual mailbox table";
        code_param = "unknown_virtual_mailbox_reject_code";
        break;
    case DEST_RELAY:
        maps_param = "relay_recipient_maps";
        table = "relay recipient table";
        code_param = "unknown_relay_recipient_reject_code";
        break;
    case DEST_DEFAULT:
        break;
    }
    int result = 0;
    struct strbuf moved = STRBUF_INIT;
    int relocated = subj == SUBJ_RECIPIENT
        ? destination_relocated(strbuf_str(&address), d.dest_class, &moved) : MAP_NOTFOUND;
    if (relocated == MAP_RETRY) {
        temp_failure(&ctx, subj);
        result = 451;
    } else if (relocated == MAP_FOUND) {
        /* relocated(5): refused whatever the class, as Postfix */
        struct strbuf text = STRBUF_INIT;
        strbuf_printf(&text, "User has moved to %s", strbuf_str(&moved));
        reject_with(&ctx, subj, 550, "5.1.6", strbuf_str(&text));
        strbuf_free(&text);
        result = 550;
    }
    strbuf_free(&moved);
    if (table && result == 0) {
        /* an aliased address is known whatever its class */
        int r = address_listed(s, "virtual_alias_maps", strbuf_str(&address), local);
        if (r == 0 && maps_param) {
            if (!*conf_str(maps_param))
                r = 1;          /* no table: every address is accepted */
            else
                r = address_listed(s, maps_param, strbuf_str(&address), local);
        }
        if (r < 0) {
            temp_failure(&ctx, subj);
            result = 451;
        } else if (r == 0) {
            int code = (int)conf_int(code_param);
            struct strbuf text = STRBUF_INIT;
            strbuf_printf(&text, "User unknown%s%s", conf_bool("show_user_unknown_table_name") ? " in " : "",
                          conf_bool("show_user_unknown_table_name") ? table : "");
            reject_with(&ctx, subj, code, smtp_reply_class(code) == REPLY_TRANSIENT ? "4.1.1" : "5.1.1", strbuf_str(&text));
            strbuf_free(&text);
            result = code;
        }
    }
    strbuf_free(&address);
    destination_free(&d);
    return result;
}

int policy_unlisted_recipient(struct session *s, const char *recipient, struct strbuf *reply_text)
{
    return unlisted_address(s, recipient, SUBJ_RECIPIENT, reply_text);
}

/* reject_unlisted_sender: a sender in one of our domains must exist. */
int unlisted_sender(struct session *s, const char *sender, struct strbuf *reply_text)
{
    if (!sender || !*sender)
        return 0;               /* the null sender is always fine */
    return unlisted_address(s, sender, SUBJ_SENDER, reply_text);
}
