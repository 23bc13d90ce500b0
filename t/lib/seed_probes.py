"""seed_probes.py - the differential dialogues of t/33-smtpd-seeds-postfix.t:
the full restriction settings of seeds 000-003 (/work/shared/seeds/), as
the seeds write them, each under both smtpd_delay_reject values, every
access(5) action at each class, and defer_if_permit kept across stages;
t/data/postfix-3.7-seeds.txt holds what the real Postfix 3.7 answered,
recorded by `t/lib/gen_postfix_restrictions.py PORT seed_probes`.

Every client is played with XCLIENT (name, address; HELO is sent).  Where
a check asks the DNS, the names are ones every resolver answers the same
way, with NXDOMAIN: names under .invalid (RFC 6761), and the RBL zones
(this machine's resolver, which the recorded Postfix used, answers
NXDOMAIN there; the test's unbound is given those zones empty).  Client
names that are unknown come from XCLIENT NAME=[UNAVAILABLE] and
[TEMPUNAVAIL], so no reverse lookup is made.  What stays uncompared: DNS
answers that exist (an A or MX found, an RBL listing), which t/32 tests
against unbound without Postfix.

Changes to the seeds' settings, the same for both servers:
 - tables point at test data: pcre:/etc/postfix/login_maps.pcre (seed 001)
   and seed 003's proxy:hash:/etc/postfix/hash/whitelist-* become tables
   in {maps} (texthash: no postmap needed);
 - the policy services (seed 001's SPF service, seed 003's decency on
   127.0.0.1:15000) are a port nobody listens on ({deadport}), and each
   such seed is also played without them;
 - smtpd_error_sleep_time = 0 (seed 001: 60, seed 003: 5s), so the test
   does not sleep;
 - the seeds' smtpd_relay_restrictions is Postfix 3.7's default (the
   seeds predate it), written out;
 - seed 000's submission service (its master.cf -o
   smtpd_client_restrictions=permit_sasl_authenticated,reject) is played
   as a case of its own, without SASL.
"""
from restriction_probes import RECONNECT

RELAY_DEFAULT = "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"

SEED000 = {
    "smtpd_helo_restrictions": "permit_sasl_authenticated, reject_invalid_hostname, "
                               "reject_unknown_hostname, reject_non_fqdn_hostname",
    "smtpd_helo_required": "yes",
    "disable_vrfy_command": "yes",
    "smtpd_relay_restrictions": RELAY_DEFAULT,
    "smtpd_recipient_restrictions": "",
}
SEED000_SUBMISSION = dict(SEED000, smtpd_client_restrictions="permit_sasl_authenticated,reject")
SEED001 = {
    "smtpd_client_restrictions": "reject_unknown_client_hostname, permit",
    "smtpd_helo_required": "yes",
    "smtpd_helo_restrictions": "reject_unknown_helo_hostname, reject_non_fqdn_helo_hostname, "
                               "reject_invalid_helo_hostname, permit",
    "smtpd_sender_login_maps": "pcre:{maps}/login_maps.pcre",
    "smtpd_sender_restrictions": "reject_non_fqdn_sender, reject_sender_login_mismatch, "
                                 "reject_unknown_sender_domain, permit",
    "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject_invalid_hostname, "
                                    "reject_non_fqdn_sender, reject_non_fqdn_recipient, "
                                    "reject_unauth_destination, reject_rbl_client zen.spamhaus.org, "
                                    "reject_rbl_client psbl.surriel.com, reject_rbl_client bl.spamcop.net, "
                                    "permit",
    "smtpd_relay_restrictions": RELAY_DEFAULT,
}
SEED001_POLICY = dict(SEED001, smtpd_recipient_restrictions=SEED001["smtpd_recipient_restrictions"].replace(
    ", permit", ", check_policy_service inet:127.0.0.1:{deadport}, permit"))
SEED002 = {
    "smtpd_helo_restrictions": "reject_invalid_hostname,",
    "smtpd_helo_required": "yes",
    "disable_vrfy_command": "yes",
    "smtpd_relay_restrictions": RELAY_DEFAULT,
    "smtpd_recipient_restrictions": "",
}
SEED003_SENDER = ("permit_mynetworks permit_tls_clientcerts check_client_access texthash:{maps}/whitelist-ips "
                  "reject_non_fqdn_sender reject_non_fqdn_recipient reject_invalid_helo_hostname "
                  "reject_non_fqdn_helo_hostname reject_unknown_sender_domain reject_unknown_recipient_domain "
                  "reject_unauth_pipelining reject_unlisted_recipient reject_unknown_reverse_client_hostname "
                  "check_client_access texthash:{maps}/whitelist-domains")
SEED003 = {
    "smtpd_helo_required": "yes",
    "smtpd_soft_error_limit": "5",
    "smtpd_hard_error_limit": "15",
    "smtpd_client_restrictions": "",
    "smtpd_helo_restrictions": "",
    "smtpd_sender_restrictions": SEED003_SENDER + " check_policy_service inet:127.0.0.1:{deadport}",
    "smtpd_recipient_restrictions": "reject_unauth_destination permit",
    "smtpd_relay_restrictions": RELAY_DEFAULT,
    "parent_domain_matches_subdomains": "debug_peer_list",
}
SEED003_NO_POLICY = dict(SEED003, smtpd_sender_restrictions=SEED003_SENDER)

MAPS = {
    "login_maps.pcre": "/^(.*)@example.com$/ ${1}\n",
    "whitelist-ips": "192.0.2.20 OK\n",
    "whitelist-domains": "friend.invalid OK\n",
}

# the clients, by XCLIENT
GOOD = "XCLIENT NAME=client.example ADDR=192.0.2.10"
CLIENTS = [
    GOOD,
    "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.11",
    "XCLIENT NAME=[TEMPUNAVAIL] ADDR=192.0.2.12",
    "XCLIENT NAME=client.example REVERSE_NAME=[UNAVAILABLE] ADDR=192.0.2.13",
    "XCLIENT NAME=friend.invalid ADDR=192.0.2.20",
    "XCLIENT NAME=localhost ADDR=127.0.0.2",
]
HELOS = ["mail.invalid", "bogus", "-bad-.invalid", "[192.0.2.10]", "192.0.2.10", "[300.1.2.3]"]
TRANSACTIONS = [
    ["MAIL FROM:<a@sender.invalid>", "RCPT TO:<b@example.com>", "RCPT TO:<x@elsewhere.invalid>"],
    ["MAIL FROM:<user>", "RCPT TO:<user2>", "RCPT TO:<postmaster>"],
    ["MAIL FROM:<me@example.com>", "RCPT TO:<b@example.com>"],
    ["MAIL FROM:<>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>"],
]


def session(client, helo, transactions=TRANSACTIONS):
    out = [RECONNECT, client] + ([f"HELO {helo}"] if helo else [])
    for t in transactions:
        out += t + ["RSET"]
    return out


def seed_dialogue():
    steps = []
    for helo in HELOS:
        steps += session(GOOD, helo)
    for client in CLIENTS[1:]:
        steps += session(client, "mail.invalid")
    steps += session(GOOD, None, TRANSACTIONS[:1])     # no HELO (smtpd_helo_required)
    steps.append("QUIT")
    return steps[1:]                                   # the first connection is the dialogue's own


# every access(5) action, at each class
ACTIONS = [
    ("ok", "OK"), ("reject", "REJECT"), ("rejtext", "REJECT no thanks"), ("defer", "DEFER"),
    ("defertext", "DEFER 4.7.8 come back"), ("dir", "DEFER_IF_REJECT maybe"),
    ("dip", "DEFER_IF_PERMIT later"), ("c5", "554 5.7.9 enhanced given"), ("c4", "451 plain text"),
    ("c5b", "550 no enhanced code"), ("discard", "DISCARD"), ("hold", "HOLD"), ("dunno", "DUNNO"),
    ("prepend", "PREPEND X-Probe: yes"), ("redirect", "REDIRECT other@example.com"),
    ("filter", "FILTER smtp:[127.0.0.1]:25"), ("warn", "WARN odd"), ("bcc", "BCC copy@example.com"),
    ("info", "INFO noted"), ("class", "strict"), ("c421", "421 go away"),
]
ACTION_SETTINGS = {
    "smtpd_client_restrictions": "check_client_access texthash:{maps}/clients",
    "smtpd_helo_restrictions": "check_helo_access texthash:{maps}/helos",
    "smtpd_sender_restrictions": "check_sender_access texthash:{maps}/senders",
    "smtpd_recipient_restrictions": "check_recipient_access texthash:{maps}/rcpts, permit_mynetworks, "
                                    "reject_unauth_destination",
    "smtpd_restriction_classes": "strict", "strict": "reject",
}
ACTION_MAPS = {
    "clients": "".join(f"{k}.client.invalid {v}\n" for k, v in ACTIONS),
    "helos": "".join(f"{k}.helo.invalid {v}\n" for k, v in ACTIONS),
    "senders": "".join(f"{k}@sender.invalid {v}\n" for k, v in ACTIONS),
    "rcpts": "".join(f"{k}@example.com {v}\n" for k, v in ACTIONS),
}


def action_dialogue():
    steps = []
    for k, _ in ACTIONS:
        steps += [RECONNECT, f"XCLIENT NAME={k}.client.invalid ADDR=192.0.2.30", "HELO helo.example",
                  "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RSET"]
        steps += [RECONNECT, "XCLIENT NAME=client.example ADDR=192.0.2.10", f"HELO {k}.helo.invalid",
                  "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RSET"]
        steps += [RECONNECT, "XCLIENT NAME=client.example ADDR=192.0.2.10", "HELO helo.example",
                  f"MAIL FROM:<{k}@sender.invalid>", "RCPT TO:<b@example.com>", "RSET",
                  "MAIL FROM:<a@example.org>", f"RCPT TO:<{k}@example.com>", "RCPT TO:<b@example.com>", "RSET"]
    steps.append("QUIT")
    return steps[1:]


# defer_if_permit kept from the stage before (smtpd_delay_reject = no
# answers it at RCPT, as with yes)
T = [GOOD, "HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
     "RCPT TO:<c@example.com>", "DATA", "QUIT"]
KEPT = [
    ("client defer_if_permit", {"smtpd_client_restrictions": "defer_if_permit, permit"}, {}, T),
    ("client defer_if_permit, a recipient refused",
     {"smtpd_client_restrictions": "defer_if_permit, permit",
      "smtpd_recipient_restrictions": "check_recipient_access texthash:{maps}/rcpts, permit"},
     {"rcpts": "c@example.com REJECT\n"}, T),
    ("helo defer_if_permit", {"smtpd_helo_restrictions": "defer_if_permit"}, {}, T),
    ("sender defer_if_permit", {"smtpd_sender_restrictions": "defer_if_permit"}, {}, T),
    ("a sender's DEFER_IF_PERMIT is forgotten at the next MAIL",
     {"smtpd_sender_restrictions": "check_sender_access texthash:{maps}/senders"},
     {"senders": "d@example.org DEFER_IF_PERMIT\n"},
     [GOOD, "HELO helo.example", "MAIL FROM:<d@example.org>", "RCPT TO:<b@example.com>", "RSET",
      "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "QUIT"]),
    ("client defer_if_reject, sender reject",
     {"smtpd_client_restrictions": "defer_if_reject", "smtpd_sender_restrictions": "reject"}, {}, T),
    ("a HELO's DEFER_IF_PERMIT is forgotten at the next HELO",
     {"smtpd_helo_restrictions": "check_helo_access texthash:{maps}/helos"},
     {"helos": "bad.example DEFER_IF_PERMIT\n"},
     [GOOD, "HELO bad.example", "HELO helo.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>",
      "QUIT"]),
    ("client and HELO defer_if_permit: the client's reason stands",
     {"smtpd_client_restrictions": "defer_if_permit",
      "smtpd_helo_restrictions": "check_helo_access texthash:{maps}/helos"},
     {"helos": "helo.example DEFER_IF_PERMIT helo reason\n"}, T),
    ("no HELO: the client's deferral reaches RCPT",
     {"smtpd_client_restrictions": "defer_if_permit"}, {},
     [GOOD, "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "QUIT"]),
]

SEEDS = [
    ("seed 000", SEED000, {}),
    ("seed 000 submission", SEED000_SUBMISSION, {}),
    ("seed 001", SEED001, MAPS),
    ("seed 001 with its SPF policy service unreachable", SEED001_POLICY, MAPS),
    ("seed 002", SEED002, {}),
    ("seed 003", SEED003, MAPS),
    ("seed 003 without its policy service", SEED003_NO_POLICY, MAPS),
]

CASES = []
for delay in ("yes", "no"):
    for title, settings, maps in SEEDS:
        CASES.append((f"{title}, smtpd_delay_reject = {delay}", dict(settings, smtpd_delay_reject=delay), maps,
                      seed_dialogue()))
    CASES.append((f"every access action at each class, smtpd_delay_reject = {delay}",
                  dict(ACTION_SETTINGS, smtpd_delay_reject=delay), ACTION_MAPS, action_dialogue()))
    for title, settings, maps, steps in KEPT:
        CASES.append((f"{title}, smtpd_delay_reject = {delay}", dict(settings, smtpd_delay_reject=delay), maps,
                      steps))
