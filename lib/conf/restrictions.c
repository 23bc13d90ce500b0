/* restrictions.c - the one table of smtpd restriction names
 * (restrictions.h): implemented ones, and the Postfix ones not yet.
 */
#include <string.h>
#include <strings.h>

#include "restrictions.h"
#include "strbuf.h"
#include "strlist.h"

static const struct restriction_name implemented[] = {
    {"check_ccert_access", RESTRICT_CHECK_CCERT_ACCESS, 1},
    {"check_client_a_access", RESTRICT_CHECK_CLIENT_A_ACCESS, 1},
    {"check_client_access", RESTRICT_CHECK_CLIENT_ACCESS, 1},
    {"check_client_mx_access", RESTRICT_CHECK_CLIENT_MX_ACCESS, 1},
    {"check_client_ns_access", RESTRICT_CHECK_CLIENT_NS_ACCESS, 1},
    {"check_helo_a_access", RESTRICT_CHECK_HELO_A_ACCESS, 1},
    {"check_helo_access", RESTRICT_CHECK_HELO_ACCESS, 1},
    {"check_helo_mx_access", RESTRICT_CHECK_HELO_MX_ACCESS, 1},
    {"check_helo_ns_access", RESTRICT_CHECK_HELO_NS_ACCESS, 1},
    {"check_policy_service", RESTRICT_CHECK_POLICY_SERVICE, 1},
    {"check_recipient_maps", RESTRICT_REJECT_UNLISTED_RECIPIENT, 0},
    {"check_recipient_a_access", RESTRICT_CHECK_RECIPIENT_A_ACCESS, 1},
    {"check_recipient_access", RESTRICT_CHECK_RECIPIENT_ACCESS, 1},
    {"check_recipient_mx_access", RESTRICT_CHECK_RECIPIENT_MX_ACCESS, 1},
    {"check_recipient_ns_access", RESTRICT_CHECK_RECIPIENT_NS_ACCESS, 1},
    {"check_relay_domains", RESTRICT_CHECK_RELAY_DOMAINS, 0},
    {"check_reverse_client_hostname_a_access", RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_A_ACCESS, 1},
    {"check_reverse_client_hostname_access", RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_ACCESS, 1},
    {"check_reverse_client_hostname_mx_access", RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_MX_ACCESS, 1},
    {"check_reverse_client_hostname_ns_access", RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_NS_ACCESS, 1},
    {"check_sasl_access", RESTRICT_CHECK_SASL_ACCESS, 1},
    {"check_sender_a_access", RESTRICT_CHECK_SENDER_A_ACCESS, 1},
    {"check_sender_access", RESTRICT_CHECK_SENDER_ACCESS, 1},
    {"check_sender_mx_access", RESTRICT_CHECK_SENDER_MX_ACCESS, 1},
    {"check_sender_ns_access", RESTRICT_CHECK_SENDER_NS_ACCESS, 1},
    {"defer", RESTRICT_DEFER, 0},
    {"defer_if_permit", RESTRICT_DEFER_IF_PERMIT, 0},
    {"defer_if_reject", RESTRICT_DEFER_IF_REJECT, 0},
    {"defer_unauth_destination", RESTRICT_DEFER_UNAUTH_DESTINATION, 0},
    {"dunno", RESTRICT_DUNNO, 0},
    {"permit", RESTRICT_PERMIT, 0},
    {"permit_auth_destination", RESTRICT_PERMIT_AUTH_DESTINATION, 0},
    {"permit_dnswl_client", RESTRICT_PERMIT_DNSWL_CLIENT, 1},
    {"permit_inet_interfaces", RESTRICT_PERMIT_INET_INTERFACES, 0},
    {"permit_mx_backup", RESTRICT_PERMIT_MX_BACKUP, 0},
    {"permit_mynetworks", RESTRICT_PERMIT_MYNETWORKS, 0},
    {"permit_naked_ip_address", RESTRICT_PERMIT_NAKED_IP_ADDRESS, 0},
    {"permit_rhswl_client", RESTRICT_PERMIT_RHSWL_CLIENT, 1},
    {"permit_sasl_authenticated", RESTRICT_PERMIT_SASL_AUTHENTICATED, 0},
    {"permit_tls_all_clientcerts", RESTRICT_PERMIT_TLS_ALL_CLIENTCERTS, 0},
    {"permit_tls_clientcerts", RESTRICT_PERMIT_TLS_CLIENTCERTS, 0},
    {"reject", RESTRICT_REJECT, 0},
    {"reject_authenticated_sender_login_mismatch", RESTRICT_REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH, 0},
    {"reject_invalid_helo_hostname", RESTRICT_REJECT_INVALID_HELO_HOSTNAME, 0},
    {"reject_invalid_hostname", RESTRICT_REJECT_INVALID_HELO_HOSTNAME, 0},
    {"reject_known_sender_login_mismatch", RESTRICT_REJECT_KNOWN_SENDER_LOGIN_MISMATCH, 0},
    {"reject_multi_recipient_bounce", RESTRICT_REJECT_MULTI_RECIPIENT_BOUNCE, 0},
    {"reject_non_fqdn_helo_hostname", RESTRICT_REJECT_NON_FQDN_HELO_HOSTNAME, 0},
    {"reject_non_fqdn_hostname", RESTRICT_REJECT_NON_FQDN_HELO_HOSTNAME, 0},
    {"reject_non_fqdn_recipient", RESTRICT_REJECT_NON_FQDN_RECIPIENT, 0},
    {"reject_non_fqdn_sender", RESTRICT_REJECT_NON_FQDN_SENDER, 0},
    {"reject_plaintext_session", RESTRICT_REJECT_PLAINTEXT_SESSION, 0},
    {"reject_rbl", RESTRICT_REJECT_RBL_CLIENT, 1},
    {"reject_rbl_client", RESTRICT_REJECT_RBL_CLIENT, 1},
    {"reject_rhsbl_client", RESTRICT_REJECT_RHSBL_CLIENT, 1},
    {"reject_rhsbl_helo", RESTRICT_REJECT_RHSBL_HELO, 1},
    {"reject_rhsbl_recipient", RESTRICT_REJECT_RHSBL_RECIPIENT, 1},
    {"reject_rhsbl_reverse_client", RESTRICT_REJECT_RHSBL_REVERSE_CLIENT, 1},
    {"reject_rhsbl_sender", RESTRICT_REJECT_RHSBL_SENDER, 1},
    {"reject_sender_login_mismatch", RESTRICT_REJECT_SENDER_LOGIN_MISMATCH, 0},
    {"reject_unauth_destination", RESTRICT_REJECT_UNAUTH_DESTINATION, 0},
    {"reject_unauth_pipelining", RESTRICT_REJECT_UNAUTH_PIPELINING, 0},
    {"reject_unknown_address", RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN, 0},
    {"reject_unauthenticated_sender_login_mismatch", RESTRICT_REJECT_UNAUTHENTICATED_SENDER_LOGIN_MISMATCH, 0},
    {"reject_unlisted_recipient", RESTRICT_REJECT_UNLISTED_RECIPIENT, 0},
    {"reject_unlisted_sender", RESTRICT_REJECT_UNLISTED_SENDER, 0},
    {"reject_unverified_recipient", RESTRICT_REJECT_UNVERIFIED_RECIPIENT, 0},
    {"reject_unverified_sender", RESTRICT_REJECT_UNVERIFIED_SENDER, 0},
    {"reject_unknown_client", RESTRICT_REJECT_UNKNOWN_CLIENT_HOSTNAME, 0},
    {"reject_unknown_client_hostname", RESTRICT_REJECT_UNKNOWN_CLIENT_HOSTNAME, 0},
    {"reject_unknown_helo_hostname", RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME, 0},
    {"reject_unknown_hostname", RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME, 0},
    {"reject_unknown_recipient", RESTRICT_REJECT_UNLISTED_RECIPIENT, 0},
    {"reject_unknown_recipient_domain", RESTRICT_REJECT_UNKNOWN_RECIPIENT_DOMAIN, 0},
    {"reject_unknown_reverse_client_hostname", RESTRICT_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME, 0},
    {"reject_unknown_sender_domain", RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN, 0},
    {"sleep", RESTRICT_SLEEP, 1},
    {"warn_if_reject", RESTRICT_WARN_IF_REJECT, 0},
};

const struct restriction_name *restriction_find(const char *name)
{
    for (size_t i = 0; i < sizeof implemented / sizeof implemented[0]; i++)
        if (strcasecmp(implemented[i].name, name) == 0)
            return &implemented[i];
    return NULL;
}

int restriction_not_implemented(const char *name)
{
    /* Postfix 3.7's restrictions that postern lacks: none now.  A name
     * that is neither here nor implemented is one Postfix does not know
     * either ("check_address_map", a local_header_rewrite_clients word,
     * is one): both answer "unknown smtpd restriction" and 451 4.3.5. */
    static const char *const names[] = {NULL};
    if (restriction_find(name))
        return 0;
    for (int i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

int restriction_ccert_argument(const char *argument, struct strbuf *table, char order[3],
                               struct strbuf *err)
{
    struct strlist items = STRLIST_INIT, words = STRLIST_INIT;
    struct strbuf why = STRBUF_INIT;
    int ok = list_split(argument, &items, &why) == 0 && items.count >= 1 && items.count <= 2
             && strchr(items.item[0], ':');
    strcpy(order, "cp");
    if (ok)
        strbuf_set(table, items.item[0]);
    if (ok && items.count == 2) {
        /* "search_order = word, word" */
        const char *attr = items.item[1];
        size_t n = strcspn(attr, " \t=");
        const char *value = attr + n + strspn(attr + n, " \t");
        ok = n == 12 && strncasecmp(attr, "search_order", 12) == 0 && *value == '='
             && list_split(value + 1, &words, &why) == 0 && words.count >= 1 && words.count <= 2;
        for (size_t i = 0; ok && i < words.count; i++) {
            if (strcasecmp(words.item[i], "cert_fingerprint") == 0)
                order[i] = 'c';
            else if (strcasecmp(words.item[i], "pubkey_fingerprint") == 0)
                order[i] = 'p';
            else
                ok = 0;
        }
        if (ok)
            order[words.count] = 0;
    }
    if (!ok)
        strbuf_printf(err, "check_ccert_access: cannot parse \"%.200s\"%s%s: expected type:table or "
                      "{ type:table, { search_order = cert_fingerprint, pubkey_fingerprint } }",
                      argument, why.len ? ": " : "", strbuf_str(&why));
    strlist_free(&items);
    strlist_free(&words);
    strbuf_free(&why);
    return ok ? 0 : -1;
}
