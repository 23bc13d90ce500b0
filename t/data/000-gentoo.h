pgsql:/etc/postfix/pgsql/relay_domains.cf
permit_sasl_authenticated, reject_invalid_hostname, reject_unknown_hostname, reject_non_fqdn_hostname
20971520
no
75
$myhostname ESMTP NO UCE
