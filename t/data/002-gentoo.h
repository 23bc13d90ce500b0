reject_invalid_hostname, warn_if_reject reject_non_fqdn_hostname, permit_mynetworks
no
$myhostname NO UCE ESMTP
