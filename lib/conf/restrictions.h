/* restrictions.h - the names of the smtpd restrictions (smtpd_*_restrictions,
 * access table results): which postern implements, which are Postfix's and
 * not implemented yet (smtpd answers 451 4.3.5 when it meets one), and
 * which nobody knows.  One table, read by postern-smtpd (which gives each
 * implemented name its function by id) and by `postern check` (which names
 * each restriction that will answer 451 at run time).
 */
#ifndef POSTERN_RESTRICTIONS_H
#define POSTERN_RESTRICTIONS_H

enum restriction_id {
    RESTRICT_CHECK_CLIENT_ACCESS,
    RESTRICT_CHECK_HELO_ACCESS,
    RESTRICT_CHECK_RECIPIENT_ACCESS,
    RESTRICT_CHECK_SENDER_ACCESS,
    RESTRICT_DEFER,
    RESTRICT_DEFER_UNAUTH_DESTINATION,
    RESTRICT_DUNNO,
    RESTRICT_PERMIT,
    RESTRICT_PERMIT_AUTH_DESTINATION,
    RESTRICT_PERMIT_MYNETWORKS,
    RESTRICT_PERMIT_NAKED_IP_ADDRESS,
    RESTRICT_PERMIT_SASL_AUTHENTICATED,
    RESTRICT_PERMIT_TLS_ALL_CLIENTCERTS,
    RESTRICT_PERMIT_TLS_CLIENTCERTS,
    RESTRICT_REJECT,
    RESTRICT_REJECT_INVALID_HELO_HOSTNAME,
    RESTRICT_REJECT_NON_FQDN_HELO_HOSTNAME,
    RESTRICT_REJECT_NON_FQDN_RECIPIENT,
    RESTRICT_REJECT_NON_FQDN_SENDER,
    RESTRICT_REJECT_UNAUTH_DESTINATION,
    RESTRICT_REJECT_UNAUTH_PIPELINING,
    RESTRICT_REJECT_RBL_CLIENT,
    RESTRICT_REJECT_RHSBL_CLIENT,
    RESTRICT_REJECT_RHSBL_HELO,
    RESTRICT_REJECT_RHSBL_RECIPIENT,
    RESTRICT_REJECT_RHSBL_REVERSE_CLIENT,
    RESTRICT_REJECT_RHSBL_SENDER,
    RESTRICT_REJECT_UNKNOWN_CLIENT_HOSTNAME,
    RESTRICT_REJECT_UNKNOWN_HELO_HOSTNAME,
    RESTRICT_REJECT_UNKNOWN_RECIPIENT_DOMAIN,
    RESTRICT_REJECT_UNKNOWN_SENDER_DOMAIN,
    RESTRICT_REJECT_UNKNOWN_REVERSE_CLIENT_HOSTNAME,
    RESTRICT_REJECT_UNLISTED_RECIPIENT,
    RESTRICT_REJECT_UNLISTED_SENDER,
    RESTRICT_WARN_IF_REJECT,
    RESTRICT_REJECT_SENDER_LOGIN_MISMATCH,
    RESTRICT_REJECT_AUTHENTICATED_SENDER_LOGIN_MISMATCH,
    RESTRICT_REJECT_UNAUTHENTICATED_SENDER_LOGIN_MISMATCH,
    RESTRICT_REJECT_KNOWN_SENDER_LOGIN_MISMATCH,
    RESTRICT_CHECK_POLICY_SERVICE,
    RESTRICT_DEFER_IF_PERMIT,
    RESTRICT_DEFER_IF_REJECT,
    RESTRICT_PERMIT_DNSWL_CLIENT,
    RESTRICT_PERMIT_RHSWL_CLIENT,
    RESTRICT_CHECK_CLIENT_MX_ACCESS,
    RESTRICT_CHECK_CLIENT_NS_ACCESS,
    RESTRICT_CHECK_CLIENT_A_ACCESS,
    RESTRICT_CHECK_HELO_MX_ACCESS,
    RESTRICT_CHECK_HELO_NS_ACCESS,
    RESTRICT_CHECK_HELO_A_ACCESS,
    RESTRICT_CHECK_SENDER_MX_ACCESS,
    RESTRICT_CHECK_SENDER_NS_ACCESS,
    RESTRICT_CHECK_SENDER_A_ACCESS,
    RESTRICT_CHECK_RECIPIENT_MX_ACCESS,
    RESTRICT_CHECK_RECIPIENT_NS_ACCESS,
    RESTRICT_CHECK_RECIPIENT_A_ACCESS,
    RESTRICT_REJECT_MULTI_RECIPIENT_BOUNCE,
    RESTRICT_REJECT_UNVERIFIED_RECIPIENT,
    RESTRICT_REJECT_UNVERIFIED_SENDER,
    RESTRICT_CHECK_CCERT_ACCESS,
    RESTRICT_CHECK_SASL_ACCESS,
    RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_ACCESS,
    RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_MX_ACCESS,
    RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_NS_ACCESS,
    RESTRICT_CHECK_REVERSE_CLIENT_HOSTNAME_A_ACCESS,
    RESTRICT_PERMIT_MX_BACKUP,
    RESTRICT_REJECT_PLAINTEXT_SESSION,
    RESTRICT_PERMIT_INET_INTERFACES,
    RESTRICT_SLEEP,
    RESTRICT_CHECK_RELAY_DOMAINS,
    RESTRICT_COUNT
};

struct restriction_name {
    const char *name;
    enum restriction_id id;     /* several names may share one (old spellings) */
    int needs_table;            /* check_*_access type:table, reject_rbl_client zone,
                                   sleep seconds: the next word is its argument */
};

struct strbuf;

/* check_ccert_access's argument, "type:table" or "type:table, {
 * search_order = cert_fingerprint, pubkey_fingerprint }" (what is left
 * of Postfix's "{ type:table, { search_order = ... } }" once the list is
 * split): the table, and the order of the lookups in `order` ('c' the
 * certificate's fingerprint, 'p' its public key's; "cp" by default).
 * Returns 0, or -1 with err set. */
int restriction_ccert_argument(const char *argument, struct strbuf *table, char order[3],
                               struct strbuf *err);
/* The implemented restriction of this name (any case), or NULL. */
const struct restriction_name *restriction_find(const char *name);
/* 1 when Postfix has a restriction of this name that postern does not
 * implement yet (none today: the list is kept for the next one): smtpd
 * answers 451 4.3.5 when it reaches one, so mail waits rather than
 * slipping past a check the administrator set. */
int restriction_not_implemented(const char *name);

#endif
