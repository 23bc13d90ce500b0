"""data_probes.py - the dialogues of t/35: smtpd_data_restrictions,
smtpd_end_of_data_restrictions, reject_multi_recipient_bounce and the
per-client rate limits, as restriction_probes.py has them for t/33
(t/data/postfix-3.7-data-rates.txt holds what the real Postfix 3.7
answered, recorded by `t/lib/gen_postfix_restrictions.py PORT data_probes`).

The restriction cases play the client with XCLIENT; the rate cases
cannot (Postfix does not count clients that may use XCLIENT) and connect
from 127.0.0.1 with no exceptions.  Each rate case uses a counter no
other case touches, so that anvil's counts do not carry over.
"""
from restriction_probes import BASE, CLIENT, CRLF, MESSAGE, PAUSE, RECONNECT  # noqa: F401

TX = [CLIENT, "HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>"]
BOUNCE = [CLIENT, "HELO helo.example", "MAIL FROM:<>", "RCPT TO:<b@example.com>"]
RATES = {"smtpd_authorized_xclient_hosts": "", "smtpd_client_event_limit_exceptions": ""}
TLS = {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": "{maps}/cert.pem",
       "smtpd_tls_key_file": "{maps}/key.pem"}

CASES = [
    ("smtpd_data_restrictions = reject: DATA refused",
     {"smtpd_data_restrictions": "reject"}, {}, TX + ["DATA", "RSET", "QUIT"]),
    ("smtpd_data_restrictions = defer: DATA deferred",
     {"smtpd_data_restrictions": "defer"}, {}, TX + ["DATA", "QUIT"]),
    ("smtpd_data_restrictions: check_client_access, check_sender_access, check_recipient_access",
     {"smtpd_data_restrictions": "check_recipient_access texthash:{maps}/rcpt, "
      "check_sender_access texthash:{maps}/senders, check_client_access texthash:{maps}/clients"},
     {"rcpt": "b@example.com REJECT 5.7.9 not b\n", "senders": "s@example.org DEFER later\n",
      "clients": "192.0.2.10 554 no such client\n"},
     TX + ["DATA", "RSET", "MAIL FROM:<s@example.org>", "RCPT TO:<c@example.com>", "DATA", "RSET",
           "MAIL FROM:<a@example.org>", "RCPT TO:<c@example.com>", "RCPT TO:<b@example.com>", "DATA",
           "QUIT"]),
    ("reject_multi_recipient_bounce at DATA",
     {"smtpd_data_restrictions": "reject_multi_recipient_bounce"}, {},
     BOUNCE + ["RCPT TO:<c@example.com>", "DATA", "RSET", "MAIL FROM:<>", "RCPT TO:<b@example.com>",
               "DATA", MESSAGE, "QUIT"]),
    ("reject_multi_recipient_bounce at RCPT",
     {"smtpd_recipient_restrictions": "reject_multi_recipient_bounce, permit"}, {},
     BOUNCE + ["RCPT TO:<c@example.com>", "RSET", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
               "RCPT TO:<c@example.com>", "QUIT"]),
    ("smtpd_end_of_data_restrictions: refused after the dot, then accepted",
     {"smtpd_end_of_data_restrictions": "check_sender_access texthash:{maps}/senders, "
      "reject_multi_recipient_bounce"},
     {"senders": "bad@example.org REJECT\n"},
     [CLIENT, "HELO helo.example", "MAIL FROM:<bad@example.org>", "RCPT TO:<b@example.com>", "DATA",
      MESSAGE, "RSET", "MAIL FROM:<>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA", MESSAGE,
      "RSET", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "DATA", MESSAGE, "QUIT"]),
    ("smtpd_end_of_data_restrictions = reject",
     {"smtpd_end_of_data_restrictions": "reject"}, {}, TX + ["DATA", MESSAGE, "QUIT"]),
    ("smtpd_client_message_rate_limit = 2",
     dict(RATES, smtpd_client_message_rate_limit="2"), {},
     ["HELO helo.example", "MAIL FROM:<a@example.org>", "RSET", "MAIL FROM:<a@example.org>", "RSET",
      "MAIL FROM:<a@example.org>", "QUIT"]),
    ("smtpd_client_recipient_rate_limit = 2",
     dict(RATES, smtpd_client_recipient_rate_limit="2"), {},
     ["HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
      "RCPT TO:<c@example.com>", "RCPT TO:<d@example.com>", "QUIT"]),
    ("smtpd_client_connection_rate_limit = 2",
     dict(RATES, smtpd_client_connection_rate_limit="2"), {},
     ["QUIT", RECONNECT, "QUIT", RECONNECT]),
    ("defer at every stage",
     {"smtpd_client_restrictions": "check_client_access texthash:{maps}/clients",
      "smtpd_helo_restrictions": "check_helo_access texthash:{maps}/helos",
      "smtpd_sender_restrictions": "check_sender_access texthash:{maps}/senders",
      "smtpd_recipient_restrictions": "check_recipient_access texthash:{maps}/rcpts, permit",
      "smtpd_restriction_classes": "deferring", "deferring": "defer"},
     {"clients": "192.0.2.66 deferring\n", "helos": "defer.example deferring\n",
      "senders": "defer@example.org deferring\n", "rcpts": "defer@example.com deferring\n"},
     [CLIENT, "HELO defer.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RSET",
      "HELO helo.example", "MAIL FROM:<defer@example.org>", "RCPT TO:<b@example.com>", "RSET",
      "MAIL FROM:<a@example.org>", "RCPT TO:<defer@example.com>", "RSET", RECONNECT,
      "XCLIENT NAME=client.example ADDR=192.0.2.66", "HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
      "QUIT"]),
    ("reject_unauth_pipelining at RCPT and at DATA",
     {"smtpd_recipient_restrictions": "reject_unauth_pipelining, permit",
      "smtpd_data_restrictions": "reject_unauth_pipelining"}, {},
     [CLIENT, "HELO helo.example", "MAIL FROM:<a@example.org>" + CRLF + "RCPT TO:<b@example.com>",
      "RCPT TO:<c@example.com>", "DATA" + CRLF + "QUIT"]),
    ("reject_unauth_pipelining at DATA only",
     {"smtpd_data_restrictions": "reject_unauth_pipelining"}, {},
     [CLIENT, "EHLO helo.example", "MAIL FROM:<a@example.org>" + CRLF + "RCPT TO:<b@example.com>",
      "DATA" + CRLF + "QUIT"]),
    ("smtpd_client_new_tls_session_rate_limit = 1",
     dict(RATES, smtpd_client_new_tls_session_rate_limit="1", **TLS), {},
     ["EHLO helo.example", "STARTTLS", "EHLO helo.example", "QUIT", RECONNECT, "EHLO helo.example", "STARTTLS",
      "EHLO helo.example", "QUIT", RECONNECT, "EHLO helo.example", "STARTTLS", "QUIT"]),
    ("anvil_rate_time_unit = 2s: a new window after it",
     dict(RATES, smtpd_client_message_rate_limit="1", anvil_rate_time_unit="2s"), {},
     ["HELO helo.example", "MAIL FROM:<a@example.org>", "RSET", "MAIL FROM:<a@example.org>", "RSET",
      PAUSE + "3>", "MAIL FROM:<a@example.org>", "QUIT"]),
    ("seed 001's limits (anvil_rate_time_unit = 120s, 2400 connections, 12000 messages): "
     "smtpd_client_event_limit_exceptions is $mynetworks",
     {"anvil_rate_time_unit": "120s", "smtpd_client_connection_rate_limit": "2400",
      "smtpd_client_message_rate_limit": "12000", "smtpd_client_recipient_rate_limit": "1",
      "smtpd_authorized_xclient_hosts": ""}, {},
     ["HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>",
      "RCPT TO:<d@example.com>", "QUIT"]),
    ("seed 001's limits, smtpd_client_event_limit_exceptions = 192.0.2.0/24: 127.0.0.1 is counted",
     {"anvil_rate_time_unit": "120s", "smtpd_client_connection_rate_limit": "2400",
      "smtpd_client_message_rate_limit": "12000", "smtpd_client_recipient_rate_limit": "1",
      "smtpd_client_event_limit_exceptions": "192.0.2.0/24", "smtpd_authorized_xclient_hosts": ""}, {},
     ["HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>",
      "QUIT"]),
]
