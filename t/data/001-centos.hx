example.com
example.com, localhost
example.com ESMTP Why, hello there!
permit_sasl_authenticated, reject_invalid_hostname, reject_non_fqdn_sender, reject_non_fqdn_recipient, reject_unauth_destination, reject_rbl_client zen.spamhaus.org, reject_rbl_client psbl.surriel.com, reject_rbl_client bl.spamcop.net, check_policy_service unix:private/policy-spf, check_policy_service unix:postgrey/socket, permit
