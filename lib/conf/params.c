/* params.c - the registry: every main.cf parameter postern implements, once,
 * with Postfix's name, type and default (Postfix 3.7's, with postern's own
 * names and paths where the value names the product).  Keep the table
 * sorted by name (checked at run time); add a parameter with one line.
 * Defaults computed from the machine are in params_derived.c.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR "/etc/postern"
#endif
#ifndef DEF_DAEMON_DIR
#define DEF_DAEMON_DIR "/usr/local/libexec/postern"
#endif
#ifndef DEF_COMMAND_DIR
#define DEF_COMMAND_DIR "/usr/local/sbin"
#endif
#ifndef DEF_QUEUE_DIR
#define DEF_QUEUE_DIR "/var/spool/postern"
#endif
#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0"
#endif

#define STR(name, value)           {name, PARAM_STR, value, NULL, 0, 0, 0}
#define DERIVED(name, fn)          {name, PARAM_STR, NULL, fn, 0, 0, 0}
#define BOOL(name, value)          {name, PARAM_BOOL, value, NULL, 0, 0, 0}
#define INT(name, value, lo, hi)   {name, PARAM_INT, value, NULL, 0, lo, hi}
#define TIME(name, value, unit)    {name, PARAM_TIME, value, NULL, unit, 0, 0}
#define SIZE(name, value)          {name, PARAM_SIZE, value, NULL, 0, 0, 0}

/* The levels below 2 give Postfix's old defaults (relay_domains, ...);
 * postern starts at the newest level Postfix 3.7 knows. */
static const struct param_def params[] = {
    STR("2bounce_notice_recipient", "postmaster"),
    INT("access_map_defer_code", "450", 400, 499),
    INT("access_map_reject_code", "554", 400, 599),
    STR("alias_database", "hash:/etc/aliases"),
    STR("alias_maps", "hash:/etc/aliases"),
    STR("allow_mail_to_commands", "alias, forward"),
    STR("allow_mail_to_files", "alias, forward"),
    BOOL("allow_percent_hack", "yes"),
    BOOL("allow_untrusted_routing", "no"),
    STR("alternate_config_directories", ""),
    BOOL("always_add_missing_headers", "no"),
    STR("always_bcc", ""),
    TIME("anvil_rate_time_unit", "60s", 's'),
    BOOL("append_at_myorigin", "yes"),
    BOOL("append_dot_mydomain", "${{$compatibility_level} <level {1} ? {yes} : {no}}"),
    BOOL("biff", "yes"),
    STR("body_checks", ""),
    SIZE("body_checks_size_limit", "51200"),
    STR("bounce_notice_recipient", "postmaster"),
    TIME("bounce_queue_lifetime", "5d", 'd'),
    SIZE("bounce_size_limit", "50000"),
    BOOL("broken_sasl_auth_clients", "no"),
    STR("canonical_classes", "envelope_sender, envelope_recipient, header_sender, header_recipient"),
    STR("canonical_maps", ""),
    STR("command_directory", DEF_COMMAND_DIR),
    STR("command_expansion_filter", "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    TIME("command_time_limit", "1000s", 's'),
    STR("compatibility_level", "3.6"),
    STR("config_directory", DEF_CONFIG_DIR),
    STR("cyrus_sasl_config_path", ""),
    STR("daemon_directory", DEF_DAEMON_DIR),
    TIME("daemon_timeout", "18000s", 's'),
    STR("default_database_type", "hash"),
    INT("default_destination_concurrency_limit", "20", 1, 1000000),
    INT("default_destination_recipient_limit", "50", 1, 1000000000),
    STR("default_privs", "nobody"),
    INT("default_process_limit", "100", 1, 1000000),
    STR("default_rbl_reply", "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}"),
    STR("default_transport", "smtp"),
    INT("defer_code", "450", 400, 499),
    STR("defer_transports", ""),
    STR("delay_notice_recipient", "postmaster"),
    TIME("delay_warning_time", "0h", 'h'),
    INT("deliver_lock_attempts", "20", 1, 1000000),
    TIME("deliver_lock_delay", "1s", 's'),
    BOOL("disable_mime_input_processing", "no"),
    BOOL("disable_vrfy_command", "no"),
    STR("double_bounce_sender", "double-bounce"),
    INT("duplicate_filter_limit", "1000", 0, 0),
    STR("empty_address_default_transport_maps_lookup_key", "<>"),
    STR("empty_address_relayhost_maps_lookup_key", "<>"),
    STR("error_notice_recipient", "postmaster"),
    BOOL("expand_owner_alias", "no"),
    STR("export_environment", "TZ MAIL_CONFIG LANG"),
    STR("fallback_transport", ""),
    STR("fallback_transport_maps", ""),
    STR("fast_flush_domains", "$relay_domains"),
    STR("forward_expansion_filter", "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    STR("forward_path", "$home/.forward${recipient_delimiter}${extension}, $home/.forward"),
    STR("header_checks", ""),
    INT("header_size_limit", "102400", 0, 0),
    STR("home_mailbox", ""),
    INT("hopcount_limit", "50", 0, 0),
    STR("inet_interfaces", "all"),
    STR("inet_protocols", "all"),
    INT("invalid_hostname_reject_code", "501", 400, 599),
    INT("line_length_limit", "2048", 0, 1000000000),
    STR("lmtp_address_preference", "any"),
    STR("lmtp_bind_address", ""),
    STR("lmtp_bind_address6", ""),
    TIME("lmtp_connect_timeout", "0s", 's'),
    TIME("lmtp_data_done_timeout", "600s", 's'),
    TIME("lmtp_data_init_timeout", "120s", 's'),
    TIME("lmtp_data_xfer_timeout", "180s", 's'),
    BOOL("lmtp_enforce_tls", "no"),
    STR("lmtp_host_lookup", "dns"),
    STR("lmtp_lhlo_name", "$myhostname"),
    TIME("lmtp_lhlo_timeout", "300s", 's'),
    TIME("lmtp_mail_timeout", "300s", 's'),
    INT("lmtp_mx_address_limit", "5", 0, 1000),
    INT("lmtp_mx_session_limit", "2", 0, 1000),
    TIME("lmtp_quit_timeout", "300s", 's'),
    BOOL("lmtp_randomize_addresses", "yes"),
    TIME("lmtp_rcpt_timeout", "300s", 's'),
    BOOL("lmtp_skip_5xx_greeting", "yes"),
    TIME("lmtp_starttls_timeout", "300s", 's'),
    STR("lmtp_tcp_port", "24"),
    STR("lmtp_tls_CAfile", ""),
    STR("lmtp_tls_CApath", ""),
    STR("lmtp_tls_cert_file", ""),
    STR("lmtp_tls_key_file", "$lmtp_tls_cert_file"),
    INT("lmtp_tls_loglevel", "0", 0, 4),
    STR("lmtp_tls_mandatory_protocols", ">=TLSv1"),
    STR("lmtp_tls_protocols", ">=TLSv1"),
    STR("lmtp_tls_security_level", ""),
    BOOL("lmtp_use_tls", "no"),
    STR("local_command_shell", ""),
    INT("local_destination_concurrency_limit", "2", 1, 1000000),
    INT("local_destination_recipient_limit", "1", 1, 1000000000),
    STR("local_header_rewrite_clients", "permit_inet_interfaces"),
    STR("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps"),
    STR("local_transport", "local:$myhostname"),
    STR("luser_relay", ""),
    STR("mail_name", "postern"),
    STR("mail_owner", "postern"),
    STR("mail_spool_directory", "/var/mail"),
    STR("mail_version", POSTERN_VERSION),
    STR("mailbox_command", ""),
    STR("mailbox_delivery_lock", "fcntl, dotlock"),
    SIZE("mailbox_size_limit", "51200000"),
    STR("mailbox_transport", ""),
    STR("mailbox_transport_maps", ""),
    STR("maillog_file", ""),
    INT("maps_rbl_reject_code", "554", 400, 599),
    STR("masquerade_classes", "envelope_sender, header_sender, header_recipient"),
    STR("masquerade_domains", ""),
    STR("masquerade_exceptions", ""),
    TIME("max_idle", "100s", 's'),
    INT("max_use", "100", 1, 1000000000),
    TIME("maximal_backoff_time", "4000s", 's'),
    TIME("maximal_queue_lifetime", "5d", 'd'),
    STR("message_drop_headers", "bcc, content-length, resent-bcc, return-path"),
    SIZE("message_size_limit", "10240000"),
    STR("mime_header_checks", "$header_checks"),
    INT("mime_nesting_limit", "100", 0, 0),
    TIME("minimal_backoff_time", "300s", 's'),
    STR("multi_instance_directories", ""),
    STR("multi_instance_name", ""),
    STR("mydestination", "$myhostname, localhost.$mydomain, localhost"),
    DERIVED("mydomain", derive_mydomain),
    DERIVED("myhostname", derive_myhostname),
    DERIVED("mynetworks", derive_mynetworks),
    STR("mynetworks_style", "${{$compatibility_level} <level {2} ? {subnet} : {host}}"),
    STR("myorigin", "$myhostname"),
    STR("nested_header_checks", "$header_checks"),
    INT("non_fqdn_reject_code", "504", 400, 599),
    STR("notify_classes", "resource, software"),
    BOOL("owner_request_special", "yes"),
    STR("parent_domain_matches_subdomains", "debug_peer_list,fast_flush_domains,mynetworks,"
        "permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps"),
    STR("prepend_delivered_header", "command, file, forward"),
    STR("privileged_transports", ""),
    STR("propagate_unmatched_extensions", "canonical, virtual"),
    STR("proxy_interfaces", ""),
    STR("proxy_read_maps", "$local_recipient_maps $mydestination $virtual_alias_maps $virtual_alias_domains $virtual_mailbox_maps $virtual_mailbox_domains $relay_recipient_maps $relay_domains $canonical_maps $sender_canonical_maps $recipient_canonical_maps $relocated_maps $transport_maps $mynetworks $smtpd_sender_login_maps $sender_bcc_maps $recipient_bcc_maps $smtp_generic_maps $lmtp_generic_maps $alias_maps $smtpd_client_restrictions $smtpd_helo_restrictions $smtpd_sender_restrictions $smtpd_relay_restrictions $smtpd_recipient_restrictions $address_verify_sender_dependent_default_transport_maps $address_verify_sender_dependent_relayhost_maps $address_verify_transport_maps $fallback_transport_maps $lmtp_discard_lhlo_keyword_address_maps $lmtp_pix_workaround_maps $lmtp_sasl_password_maps $lmtp_tls_policy_maps $mailbox_command_maps $mailbox_transport_maps $postscreen_discard_ehlo_keyword_address_maps $rbl_reply_maps $sender_dependent_default_transport_maps $sender_dependent_relayhost_maps $smtp_discard_ehlo_keyword_address_maps $smtp_pix_workaround_maps $smtp_sasl_password_maps $smtp_tls_policy_maps $smtpd_discard_ehlo_keyword_address_maps $smtpd_milter_maps $virtual_gid_maps $virtual_uid_maps $local_login_sender_maps $postscreen_reject_footer_maps $smtpd_reject_footer_maps $tls_server_sni_maps $tlsproxy_client_policy_maps $default_delivery_status_filter $lmtp_delivery_status_filter $lmtp_dns_reply_filter $lmtp_reply_filter $local_delivery_status_filter $pipe_delivery_status_filter $postscreen_command_filter $smtp_delivery_status_filter $smtp_dns_reply_filter $smtp_reply_filter $smtpd_command_filter $smtpd_dns_reply_filter $virtual_delivery_status_filter $body_checks $header_checks $lmtp_body_checks $lmtp_header_checks $lmtp_mime_header_checks $lmtp_nested_header_checks $milter_header_checks $mime_header_checks $nested_header_checks $smtp_body_checks $smtp_header_checks $smtp_mime_header_checks $smtp_nested_header_checks $virtual_mailbox_limit_maps $virtual_maildir_limit_message_maps"),
    INT("qmgr_message_active_limit", "20000", 1, 1000000000),
    STR("queue_directory", DEF_QUEUE_DIR),
    SIZE("queue_minfree", "0"),
    TIME("queue_run_delay", "300s", 's'),
    /* postern's own: the user of the queue service (postern-queue -S) that
     * `postern start` runs as root (doc/privileges.md) */
    STR("queue_service_user", "postern-queue"),
    STR("rbl_reply_maps", ""),
    STR("recipient_bcc_maps", ""),
    STR("recipient_canonical_classes", "envelope_recipient, header_recipient"),
    STR("recipient_canonical_maps", ""),
    STR("recipient_delimiter", ""),
    INT("reject_code", "554", 400, 599),
    STR("reject_tempfail_action", "defer_if_permit"),
    STR("relay_clientcerts", ""),
    STR("relay_domains", "${{$compatibility_level} <level {2} ? {$mydestination} : {}}"),
    INT("relay_domains_reject_code", "554", 400, 599),
    STR("relay_recipient_maps", ""),
    STR("relay_transport", "relay"),
    STR("relayhost", ""),
    STR("relocated_maps", ""),
    STR("remote_header_rewrite_domain", ""),
    BOOL("resolve_dequoted_address", "yes"),
    STR("sender_bcc_maps", ""),
    STR("sender_canonical_classes", "envelope_sender, header_sender"),
    STR("sender_canonical_maps", ""),
    STR("sender_dependent_default_transport_maps", ""),
    STR("sender_dependent_relayhost_maps", ""),
    STR("setgid_group", "postern-drop"),
    BOOL("show_user_unknown_table_name", "yes"),
    STR("smtp_address_preference", "any"),
    STR("smtp_bind_address", ""),
    STR("smtp_bind_address6", ""),
    TIME("smtp_connect_timeout", "30s", 's'),
    TIME("smtp_data_done_timeout", "600s", 's'),
    TIME("smtp_data_init_timeout", "120s", 's'),
    TIME("smtp_data_xfer_timeout", "180s", 's'),
    BOOL("smtp_enforce_tls", "no"),
    STR("smtp_helo_name", "$myhostname"),
    TIME("smtp_helo_timeout", "300s", 's'),
    STR("smtp_host_lookup", "dns"),
    TIME("smtp_mail_timeout", "300s", 's'),
    INT("smtp_mx_address_limit", "5", 0, 1000),
    INT("smtp_mx_session_limit", "2", 0, 1000),
    BOOL("smtp_never_send_ehlo", "no"),
    TIME("smtp_quit_timeout", "300s", 's'),
    BOOL("smtp_randomize_addresses", "yes"),
    TIME("smtp_rcpt_timeout", "300s", 's'),
    BOOL("smtp_skip_5xx_greeting", "yes"),
    TIME("smtp_starttls_timeout", "300s", 's'),
    STR("smtp_tcp_port", "smtp"),
    STR("smtp_tls_CAfile", ""),
    STR("smtp_tls_CApath", ""),
    STR("smtp_tls_cert_file", ""),
    STR("smtp_tls_key_file", "$smtp_tls_cert_file"),
    INT("smtp_tls_loglevel", "0", 0, 4),
    STR("smtp_tls_mandatory_protocols", ">=TLSv1"),
    STR("smtp_tls_protocols", ">=TLSv1"),
    STR("smtp_tls_security_level", ""),
    BOOL("smtp_use_tls", "no"),
    STR("smtpd_authorized_xclient_hosts", ""),
    STR("smtpd_authorized_xforward_hosts", ""),
    STR("smtpd_banner", "$myhostname ESMTP $mail_name"),
    INT("smtpd_client_auth_rate_limit", "0", 0, 1000000000),
    INT("smtpd_client_connection_count_limit", "50", 0, 1000000000),
    INT("smtpd_client_connection_rate_limit", "0", 0, 1000000000),
    STR("smtpd_client_event_limit_exceptions", "${smtpd_client_connection_limit_exceptions:$mynetworks}"),
    STR("smtpd_client_restrictions", ""),
    BOOL("smtpd_delay_reject", "yes"),
    STR("smtpd_discard_ehlo_keywords", ""),
    BOOL("smtpd_enforce_tls", "no"),
    TIME("smtpd_error_sleep_time", "1s", 's'),
    STR("smtpd_forbid_bare_newline", "normalize"),
    STR("smtpd_forbid_bare_newline_exclusions", "$mynetworks"),
    INT("smtpd_forbid_bare_newline_reject_code", "550", 400, 599),
    INT("smtpd_hard_error_limit", "${stress?{1}:{20}}", 1, 1000000),
    BOOL("smtpd_helo_required", "no"),
    STR("smtpd_helo_restrictions", ""),
    INT("smtpd_junk_command_limit", "${stress?{1}:{100}}", 1, 1000000),
    INT("smtpd_min_data_rate", "500", 1, 1000000000),
    STR("smtpd_null_access_lookup_key", "<>"),
    BOOL("smtpd_peername_lookup", "yes"),
    STR("smtpd_per_record_deadline", ""),
    BOOL("smtpd_per_request_deadline",
         "${smtpd_per_record_deadline?{$smtpd_per_record_deadline}:{${stress?{yes}:{no}}}}"),
    STR("smtpd_policy_service_default_action", "451 4.3.5 Server configuration problem"),
    TIME("smtpd_policy_service_max_idle", "300s", 's'),
    TIME("smtpd_policy_service_max_ttl", "1000s", 's'),
    STR("smtpd_policy_service_policy_context", ""),
    INT("smtpd_policy_service_request_limit", "0", 0, 2147483647),
    TIME("smtpd_policy_service_retry_delay", "1s", 's'),
    TIME("smtpd_policy_service_timeout", "100s", 's'),
    INT("smtpd_policy_service_try_limit", "2", 1, 2147483647),
    /* postern's own: children of the zygote (postern-accept -z) forked
     * before their connection comes, each to serve one (postern-smtpd(8)) */
    INT("smtpd_prefork_count", "2", 0, 1000),
    INT("smtpd_recipient_limit", "1000", 1, 1000000000),
    STR("smtpd_recipient_restrictions", ""),
    BOOL("smtpd_reject_unlisted_recipient", "yes"),
    BOOL("smtpd_reject_unlisted_sender", "no"),
    STR("smtpd_relay_restrictions", "${{$compatibility_level} <level {1} ? {} : "
        "{permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}"),
    STR("smtpd_restriction_classes", ""),
    BOOL("smtpd_sasl_auth_enable", "no"),
    BOOL("smtpd_sasl_authenticated_header", "no"),
    STR("smtpd_sasl_exceptions_networks", ""),
    STR("smtpd_sasl_local_domain", ""),
    STR("smtpd_sasl_mechanism_filter", "!external, static:rest"),
    STR("smtpd_sasl_path", "smtpd"),
    INT("smtpd_sasl_response_limit", "12288", 1, 1000000),
    STR("smtpd_sasl_security_options", "noanonymous"),
    STR("smtpd_sasl_service", "smtp"),
    STR("smtpd_sasl_tls_security_options", "$smtpd_sasl_security_options"),
    STR("smtpd_sasl_type", "cyrus"),
    STR("smtpd_sender_login_maps", ""),
    STR("smtpd_sender_restrictions", ""),
    /* postern's own: a deadline for the whole session (Postfix has only the
     * daemon_timeout watchdog, which is the default) */
    TIME("smtpd_session_deadline", "${stress?{120s}:{$daemon_timeout}}", 's'),
    INT("smtpd_soft_error_limit", "10", 1, 1000000),
    TIME("smtpd_starttls_timeout", "${stress?{10}:{300}}s", 's'),
    TIME("smtpd_timeout", "${stress?{10}:{300}}s", 's'),
    STR("smtpd_tls_CAfile", ""),
    STR("smtpd_tls_CApath", ""),
    BOOL("smtpd_tls_ask_ccert", "no"),
    BOOL("smtpd_tls_auth_only", "no"),
    INT("smtpd_tls_ccert_verifydepth", "9", 1, 100),
    STR("smtpd_tls_cert_file", ""),
    STR("smtpd_tls_chain_files", ""),
    STR("smtpd_tls_ciphers", "medium"),
    STR("smtpd_tls_dh1024_param_file", ""),
    /* ignored, as by Postfix 3.6 and later: tls_eecdh_auto_curves rule */
    STR("smtpd_tls_eecdh_grade", "auto"),
    STR("smtpd_tls_exclude_ciphers", ""),
    STR("smtpd_tls_fingerprint_digest", "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}"),
    STR("smtpd_tls_key_file", "$smtpd_tls_cert_file"),
    INT("smtpd_tls_loglevel", "0", 0, 4),
    STR("smtpd_tls_mandatory_ciphers", "medium"),
    STR("smtpd_tls_mandatory_exclude_ciphers", ""),
    STR("smtpd_tls_mandatory_protocols", ">=TLSv1"),
    STR("smtpd_tls_protocols", ">=TLSv1"),
    BOOL("smtpd_tls_received_header", "no"),
    BOOL("smtpd_tls_req_ccert", "no"),
    STR("smtpd_tls_security_level", ""),
    TIME("smtpd_tls_session_cache_timeout", "3600s", 's'),
    BOOL("smtpd_tls_wrappermode", "no"),
    BOOL("smtpd_use_tls", "no"),
    /* postern's own: the user postern-accept and smtpd run as when `postern
     * start` runs as root (units/: User postern-smtpd) */
    STR("smtpd_user", "postern-smtpd"),
    BOOL("smtputf8_enable", "yes"),
    BOOL("soft_bounce", "no"),
    TIME("stale_lock_time", "500s", 's'),
    STR("stress", ""),
    BOOL("strict_mailbox_ownership", "yes"),
    BOOL("swap_bangpath", "yes"),
    STR("syslog_facility", "mail"),
    STR("syslog_name", "${multi_instance_name?{$multi_instance_name}:{postern}}"),
    STR("tls_eecdh_auto_curves", "X25519 X448 prime256v1 secp521r1 secp384r1"),
    STR("tls_export_cipherlist", "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH"),
    STR("tls_high_cipherlist", "aNULL:-aNULL:HIGH:@STRENGTH"),
    STR("tls_low_cipherlist", "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH"),
    STR("tls_medium_cipherlist", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"),
    STR("tls_null_cipherlist", "eNULL:!aNULL"),
    BOOL("tls_preempt_cipherlist", "no"),
    STR("transport_maps", ""),
    INT("unknown_address_reject_code", "450", 400, 599),
    STR("unknown_address_tempfail_action", "$reject_tempfail_action"),
    INT("unknown_client_reject_code", "450", 400, 599),
    STR("unknown_helo_hostname_tempfail_action", "$reject_tempfail_action"),
    INT("unknown_hostname_reject_code", "450", 400, 599),
    INT("unknown_local_recipient_reject_code", "550", 400, 599),
    INT("unknown_relay_recipient_reject_code", "550", 400, 599),
    INT("unknown_virtual_alias_reject_code", "550", 400, 599),
    INT("unknown_virtual_mailbox_reject_code", "550", 400, 599),
    INT("virtual_alias_address_length_limit", "1000", 1, 1000000),
    STR("virtual_alias_domains", "$virtual_alias_maps"),
    INT("virtual_alias_expansion_limit", "1000", 1, 1000000),
    STR("virtual_alias_maps", "$virtual_maps"),
    INT("virtual_alias_recursion_limit", "1000", 1, 1000000),
    /* virtual_create_maildirsize ... virtual_trash_name: Postfix's VDA
     * patch (Maildir++ quotas), not Postfix 3.7 itself */
    BOOL("virtual_create_maildirsize", "no"),
    STR("virtual_gid_maps", ""),
    STR("virtual_mailbox_base", ""),
    STR("virtual_mailbox_domains", "$virtual_mailbox_maps"),
    BOOL("virtual_mailbox_extended", "no"),
    SIZE("virtual_mailbox_limit", "51200000"),
    BOOL("virtual_mailbox_limit_inbox", "no"),
    STR("virtual_mailbox_limit_maps", ""),
    BOOL("virtual_mailbox_limit_override", "no"),
    STR("virtual_mailbox_lock", "fcntl, dotlock"),
    STR("virtual_mailbox_maps", ""),
    BOOL("virtual_maildir_extended", "no"),
    BOOL("virtual_maildir_filter", "no"),
    STR("virtual_maildir_filter_maps", ""),
    STR("virtual_maildir_limit_message",
        "Sorry, the user's maildir has overdrawn his diskspace quota, please try again later."),
    STR("virtual_maildir_limit_message_maps", ""),
    STR("virtual_maps", ""),
    INT("virtual_minimum_uid", "100", 1, 2147483647),
    BOOL("virtual_overquota_bounce", "no"),
    STR("virtual_transport", "virtual"),
    BOOL("virtual_trash_count", "no"),
    STR("virtual_trash_name", ".Trash"),
    STR("virtual_uid_maps", ""),
};
#define PARAM_COUNT (sizeof params / sizeof params[0])

/* Compare a name with a declaration (for bsearch). */
static int compare_param(const void *key, const void *entry)
{
    return strcmp(key, ((const struct param_def *)entry)->name);
}

/* The table must stay sorted for bsearch: a merge that breaks it fails loudly. */
static void check_sorted(void)
{
    static int checked;
    if (checked)
        return;
    checked = 1;
    for (size_t i = 1; i < PARAM_COUNT; i++)
        if (strcmp(params[i - 1].name, params[i].name) >= 0)
            msg_fatal("lib/conf/params.c: %s is out of order (the table must be sorted)",
                      params[i].name);
}

const struct param_def *param_find(const char *name)
{
    check_sorted();
    return bsearch(name, params, PARAM_COUNT, sizeof params[0], compare_param);
}

const struct param_def *param_table(size_t *count)
{
    check_sorted();
    *count = PARAM_COUNT;
    return params;
}
