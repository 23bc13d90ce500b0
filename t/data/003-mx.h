proxy:unix:passwd.byname proxy:hash:/etc/aliases proxy:hash:/etc/postfix/hash/addresses proxy:hash:/etc/postfix/hash/domains proxy:hash:/etc/postfix/hash/backupserver-fingerprints proxy:hash:/etc/postfix/hash/whitelist-ips proxy:hash:/etc/postfix/hash/whitelist-domains
debug_peer_list
permit_mynetworks permit_tls_clientcerts check_client_access proxy:hash:/etc/postfix/hash/whitelist-ips reject_non_fqdn_sender reject_non_fqdn_recipient reject_invalid_helo_hostname reject_non_fqdn_helo_hostname reject_unknown_sender_domain reject_unknown_recipient_domain reject_unauth_pipelining reject_unlisted_recipient reject_unknown_reverse_client_hostname check_client_access proxy:hash:/etc/postfix/hash/whitelist-domains check_policy_service inet:127.0.0.1:15000
hash:/etc/postfix/hash/backupserver-fingerprints
$myhostname

