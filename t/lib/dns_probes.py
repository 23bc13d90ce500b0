"""dns_probes.py - the dialogues of t/33-smtpd-dns-postfix.t: the DNS-based
restrictions with answers that exist, the client's name
(smtpd_peername_lookup), and the session's log lines, side by side with
Postfix 3.7 (t/data/postfix-3.7-dns.txt holds what the real Postfix
answered, recorded by `t/lib/gen_postfix_restrictions.py PORT dns_probes`,
which starts an unbound with RECORDS on DNS_ADDR port 53 and runs the
Postfix anchor in a mount namespace whose /etc/resolv.conf names it and
whose /etc/hosts names only 127.0.0.1 localhost).

The test gives postern the same data: an unbound with RECORDS on a free
port (POSTERN_DNS_SERVER for the lookup service) and a hosts file with
the one line.

Two kinds of client:
 - XCLIENT NAME=... ADDR=192.0.2.N: where the client's name is given
   (RBL lookups by address, rhsbl by name, the HELO, sender and
   recipient checks);
 - real source addresses 127.0.0.N (FROM): where the name must be looked
   up, PTR and then A, as each server does it itself.
     127.0.0.2  no PTR record
     127.0.0.3  PTR good.test, whose A is 127.0.0.3 (confirmed)
     127.0.0.4  PTR liar.test, whose A is elsewhere
     127.0.0.5  PTR noaddr.test, which has no address
     127.0.0.6  the PTR lookup fails (SERVFAIL)
     127.0.0.7  PTR host.fail.test, whose A lookup fails
     127.0.0.8  PTR multi.test, two A records, one of them 127.0.0.8
     127.0.0.9  PTR listed.test (confirmed), listed in dbl.test and hwl.test
     127.0.0.10 PTR gone.test, which does not exist
Names under fail.test and the reverse zone of 127.0.0.6 go to a server
that refuses them: unbound answers SERVFAIL at once (SERVFAIL).  The
clients 192.0.2.0/24 may use XCLIENT too, so that one connection plays
several clients.

permit_mx_backup: lo.test (127.0.0.1, which inet_interfaces names) is a
backup MX of backup.test and elsewhere.test, the primary of primary.test;
the other hosts of those domains are elsewhere, missing (nowhere.test) or
failing (host.fail.test).

Every case's log lines are recorded (all of Postfix smtpd's); the test
compares the connect, disconnect, lost connection, too many errors,
timeout, NOQUEUE and warning lines.
"""

DNS_ADDR = "127.0.0.131"        # the recording's unbound, port 53
LOG_ALL = True                  # record every smtpd log line of a case

RECORDS = [
    # client names (FROM 127.0.0.N)
    "3.0.0.127.in-addr.arpa. PTR good.test.",
    "good.test. A 127.0.0.3",
    "4.0.0.127.in-addr.arpa. PTR liar.test.",
    "liar.test. A 192.0.2.99",
    "5.0.0.127.in-addr.arpa. PTR noaddr.test.",
    'noaddr.test. TXT "exists, but no A, AAAA or MX"',
    "7.0.0.127.in-addr.arpa. PTR host.fail.test.",
    "8.0.0.127.in-addr.arpa. PTR multi.test.",
    "multi.test. A 192.0.2.98",
    "multi.test. A 127.0.0.8",
    "9.0.0.127.in-addr.arpa. PTR listed.test.",
    "listed.test. A 127.0.0.9",
    "10.0.0.127.in-addr.arpa. PTR gone.test.",
    # the names XCLIENT and HELO give
    "client.example. A 192.0.2.10",
    "helo.example. A 192.0.2.10",
    # DNS block and allow lists
    "10.2.0.192.rbl.test. A 127.0.0.2",
    '10.2.0.192.rbl.test. TXT "Listed for testing"',
    "11.2.0.192.rbl.test. A 127.0.0.11",
    "12.2.0.192.rbl.test. A 127.0.0.4",
    '12.2.0.192.rbl.test. TXT "the only reason"',
    "10.2.0.192.wl.test. A 127.0.0.2",
    "11.2.0.192.wl.test. A 127.0.0.9",
    "bad.example.dbl.test. A 127.0.1.2",
    'bad.example.dbl.test. TXT "bad domain"',
    "listed.test.dbl.test. A 127.0.1.2",
    "listed.test.hwl.test. A 127.0.0.2",
    "good.test.hwl.test. A 127.0.0.2",
    # domains
    "ok.test. A 192.0.2.1",
    "mx-only.test. MX 10 mail.ok.test.",
    "mail.ok.test. A 192.0.2.1",
    "v6only.test. AAAA 2001:db8::5",
    "nullmx.test. MX 0 .",
    "nullmx.test. A 192.0.2.50",
    "lomx.test. MX 10 lo.test.",
    "lo.test. A 127.0.0.1",
    "privmx.test. MX 10 priv.test.",
    "priv.test. A 10.1.2.3",
    "badmx.test. MX 10 nowhere.test.",
    "spam.test. MX 10 mx.spamhost.test.",
    "mx.spamhost.test. A 203.0.113.5",
    "spam.test. NS ns1.badns.test.",
    "ns1.badns.test. A 198.51.100.53",
    "other.test. MX 10 mx.other.test.",
    "mx.other.test. A 198.51.100.20",
    "other.test. NS ns1.fine.test.",
    "ns1.fine.test. A 198.51.100.54",
    "nomx.test. A 203.0.113.6",
    "exempt.test. MX 10 mx.exempt.spamhost.test.",
    "mx.exempt.spamhost.test. A 203.0.113.7",
    # our own domain
    "example.com. MX 10 mx.example.com.",
    "mx.example.com. A 192.0.2.25",
    "example.org. A 192.0.2.26",
    # permit_mx_backup: lo.test (127.0.0.1, inet_interfaces) as a backup
    # or primary MX, or not at all
    "backup.test. MX 10 mx.primary.test.",
    "backup.test. MX 20 lo.test.",
    "mx.primary.test. A 198.51.100.30",
    "primary.test. MX 10 lo.test.",
    "primary.test. MX 20 mx.primary.test.",
    "notus.test. MX 10 mx.primary.test.",
    "elsewhere.test. MX 10 mx.elsewhere.test.",
    "elsewhere.test. MX 20 lo.test.",
    "mx.elsewhere.test. A 203.0.113.40",
    "badbackup.test. MX 10 mx.primary.test.",
    "badbackup.test. MX 20 nowhere.test.",
    "failbackup.test. MX 10 mx.primary.test.",
    "failbackup.test. MX 20 host.fail.test.",
    "failprimary.test. MX 10 host.fail.test.",
    "failprimary.test. MX 20 lo.test.",
]
ZONES = ["test.", "example.", "example.com.", "example.org.", "2.0.192.in-addr.arpa.", "0.0.127.in-addr.arpa."]
SERVFAIL = ["fail.test.", "6.0.0.127.in-addr.arpa."]
HOSTS = "127.0.0.1\tlocalhost\n"

ADDRS = ["127.0.0.%d" % n for n in range(2, 10)]


def xclient(addr="192.0.2.10", name="client.example"):
    return f"XCLIENT NAME={name} ADDR={addr}"


def tx(sender="a@ok.test", rcpt="b@example.com", helo="helo.example"):
    return [f"HELO {helo}", f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>", "RSET"]


def from_each(addrs=ADDRS, sender="a@ok.test"):
    """A connection from each source address, one transaction each."""
    out = []
    for a in addrs:
        out += [f"<FROM {a}>", "HELO helo.example", f"MAIL FROM:<{sender}>", "RCPT TO:<b@example.com>", "QUIT"]
    return out


def xclient_each(addrs, names=None, sender="a@ok.test", rcpt="b@example.com"):
    out = []
    for i, a in enumerate(addrs):
        out += [xclient(a, names[i] if names else "client.example")] + tx(sender, rcpt)
    return out + ["QUIT"]


SERVERS = ("spamhost.test REJECT mail servers of spammers\n"
           "exempt.spamhost.test DUNNO\n"
           "198.51.100.53 554 5.7.9 bad name server\n"
           "203.0.113.6 REJECT bad address\n"
           "127.0.0.1 REJECT loopback mail server\n"
           "10.1.2.3 REJECT private mail server\n"
           "mx.other.test OK\n")
DOMAINS = ["ok.test", "mx-only.test", "v6only.test", "nullmx.test", "lomx.test", "privmx.test",
           "badmx.test", "noaddr.test", "nope.test", "x.fail.test"]
RBL_ADDRS = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"]

CASES = [
    # ---- the client's name ----
    ("smtpd_peername_lookup: the name of each source address", {}, {}, from_each()),
    ("reject_unknown_client_hostname, each source address",
     {"smtpd_client_restrictions": "reject_unknown_client_hostname"}, {}, from_each()),
    ("reject_unknown_reverse_client_hostname, each source address",
     {"smtpd_client_restrictions": "reject_unknown_reverse_client_hostname"}, {}, from_each()),
    ("reject_unknown_client_hostname, unknown_client_reject_code = 550",
     {"smtpd_client_restrictions": "reject_unknown_client_hostname", "unknown_client_reject_code": "550"},
     {}, from_each(["127.0.0.2", "127.0.0.4", "127.0.0.6", "127.0.0.7"])),
    ("reject_unknown_client_hostname with smtpd_delay_reject = no: at connect",
     {"smtpd_client_restrictions": "reject_unknown_client_hostname", "smtpd_delay_reject": "no"}, {},
     from_each(["127.0.0.2", "127.0.0.3", "127.0.0.6"])),
    ("reject_unknown_client_hostname, then permit: XCLIENT names",
     {"smtpd_client_restrictions": "reject_unknown_client_hostname, reject_unknown_reverse_client_hostname"},
     {}, xclient_each(["192.0.2.10", "192.0.2.11", "192.0.2.12"],
                      ["client.example", "[UNAVAILABLE]", "[TEMPUNAVAIL]"])),
    ("check_client_access by the looked-up name and its parents",
     {"smtpd_client_restrictions": "check_client_access texthash:{maps}/clients"},
     {"clients": "good.test REJECT good is bad here\ntest 450 4.7.1 the whole test domain\n"
                 "unknown REJECT unknown name\n"},
     from_each(["127.0.0.3", "127.0.0.8", "127.0.0.2"])),
    ("reject_rhsbl_client and reject_rhsbl_reverse_client by the looked-up name",
     {"smtpd_client_restrictions": "reject_rhsbl_reverse_client dbl.test, reject_rhsbl_client dbl.test"},
     {}, from_each(["127.0.0.9", "127.0.0.3"])),
    ("permit_rhswl_client by the looked-up name",
     {"smtpd_client_restrictions": "permit_rhswl_client hwl.test, reject"}, {},
     from_each(["127.0.0.3", "127.0.0.9", "127.0.0.2"])),
    ("a PTR name that does not exist",
     {"smtpd_client_restrictions": "reject_unknown_client_hostname"}, {}, from_each(["127.0.0.10"])),
    ("XCLIENT in the disconnect line's counts", {}, {},
     ["EHLO helo.example", "NOOP", xclient(), "HELO helo.example", "XCLIENT NAME=other.example", "QUIT"]),
    # ---- DNS block lists ----
    ("reject_rbl_client: listed with and without TXT, not listed",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test"}, {}, xclient_each(RBL_ADDRS)),
    ("reject_rbl_client rbl.test=127.0.0.2",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test=127.0.0.2"}, {}, xclient_each(RBL_ADDRS)),
    ("reject_rbl_client rbl.test=127.0.0.[2..10]",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test=127.0.0.[2..10]"}, {}, xclient_each(RBL_ADDRS)),
    ("reject_rbl_client rbl.test=127.0.0.[3;11]",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test=127.0.0.[3;11]"}, {}, xclient_each(RBL_ADDRS)),
    ("reject_rbl_client, a zone whose server fails",
     {"smtpd_client_restrictions": "reject_rbl_client x.fail.test"}, {}, xclient_each(RBL_ADDRS[:1])),
    ("rbl_reply_maps and default_rbl_reply",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test, reject_rhsbl_sender dbl.test",
      "rbl_reply_maps": "texthash:{maps}/rbl_replies",
      "default_rbl_reply": "$rbl_code 5.7.9 <$rbl_what> listed by $rbl_domain${rbl_reason?: $rbl_reason}"},
     {"rbl_replies": "rbl.test 450 4.7.1 Try later [$client_address] ($client_name, $rbl_class $rbl_what)"
                     "${rbl_reason?: $rbl_reason}\n"},
     xclient_each(["192.0.2.10", "192.0.2.11", "192.0.2.13"], sender="x@bad.example")),
    ("maps_rbl_reject_code = 550",
     {"smtpd_client_restrictions": "reject_rbl_client rbl.test", "maps_rbl_reject_code": "550"}, {},
     xclient_each(RBL_ADDRS[:2])),
    ("permit_dnswl_client wl.test, then reject",
     {"smtpd_client_restrictions": "permit_dnswl_client wl.test, reject"}, {}, xclient_each(RBL_ADDRS)),
    ("permit_dnswl_client wl.test=127.0.0.2, then reject",
     {"smtpd_client_restrictions": "permit_dnswl_client wl.test=127.0.0.2, reject"}, {},
     xclient_each(RBL_ADDRS[:2])),
    ("permit_dnswl_client, a zone whose server fails, then reject",
     {"smtpd_client_restrictions": "permit_dnswl_client x.fail.test, reject"}, {}, xclient_each(RBL_ADDRS[:1])),
    ("permit_dnswl_client never permits relaying",
     {"smtpd_recipient_restrictions": "permit_dnswl_client wl.test, reject_unauth_destination"}, {},
     xclient_each(RBL_ADDRS[:1], rcpt="x@elsewhere.test")),
    ("reject_rhsbl_client, reject_rhsbl_helo, reject_rhsbl_sender, reject_rhsbl_recipient",
     {"smtpd_client_restrictions": "reject_rhsbl_client dbl.test",
      "smtpd_helo_restrictions": "reject_rhsbl_helo dbl.test",
      "smtpd_sender_restrictions": "reject_rhsbl_sender dbl.test",
      "smtpd_recipient_restrictions": "reject_rhsbl_recipient dbl.test"}, {},
     [xclient("192.0.2.20", "bad.example")] + tx()
     + [xclient("192.0.2.20", "ok.example")] + tx(helo="bad.example")
     + tx(helo="ok.example", sender="a@bad.example") + tx(helo="ok.example", rcpt="b@bad.example")
     + tx(helo="ok.example", sender="a@ok.example") + ["QUIT"]),
    # ---- HELO, sender and recipient domains ----
    ("reject_unknown_helo_hostname",
     {"smtpd_helo_restrictions": "reject_unknown_helo_hostname"}, {},
     [xclient()] + sum((tx(helo=d) for d in DOMAINS + ["[192.0.2.1]", "helo"]), []) + ["QUIT"]),
    ("reject_unknown_helo_hostname, unknown_hostname_reject_code = 550, then reject",
     {"smtpd_helo_restrictions": "reject_unknown_helo_hostname, reject",
      "unknown_hostname_reject_code": "550"}, {},
     [xclient()] + sum((tx(helo=d) for d in ["nope.test", "x.fail.test"]), []) + ["QUIT"]),
    ("reject_unknown_sender_domain",
     {"smtpd_sender_restrictions": "reject_unknown_sender_domain"}, {},
     [xclient(), "HELO helo.example"]
     + sum(([f"MAIL FROM:<a@{d}>", "RCPT TO:<b@example.com>", "RSET"] for d in DOMAINS + ["example.com"]), [])
     + ["MAIL FROM:<>", "RCPT TO:<b@example.com>", "QUIT"]),
    ("reject_unknown_sender_domain, unknown_address_reject_code = 550, "
     "unknown_address_tempfail_action = defer, then reject",
     {"smtpd_sender_restrictions": "reject_unknown_sender_domain, reject",
      "unknown_address_reject_code": "550", "unknown_address_tempfail_action": "defer"}, {},
     [xclient(), "HELO helo.example"]
     + sum(([f"MAIL FROM:<a@{d}>", "RCPT TO:<b@example.com>", "RSET"] for d in ["nope.test", "x.fail.test"]), [])
     + ["QUIT"]),
    ("reject_unknown_recipient_domain",
     {"smtpd_relay_restrictions": "reject_unknown_recipient_domain, permit_mynetworks, reject_unauth_destination"},
     {}, [xclient("127.0.0.20"), "HELO helo.example", "MAIL FROM:<a@ok.test>"]
     + [f"RCPT TO:<b@{d}>" for d in DOMAINS + ["example.com"]] + ["QUIT"]),
    ("reject_non_fqdn_helo_hostname, reject_non_fqdn_sender, reject_non_fqdn_recipient",
     {"smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname",
      "smtpd_sender_restrictions": "reject_non_fqdn_sender",
      "smtpd_recipient_restrictions": "reject_non_fqdn_recipient, permit_mynetworks, reject_unauth_destination"},
     {},
     [xclient()] + sum((tx(helo=h) for h in ["helo", "helo.test.", "[IPv6:2001:db8::1]", "192.0.2.1",
                                              "[192.0.2.1]"]), [])
     + ["HELO helo.example"]
     + sum(([f"MAIL FROM:<{a}>", "RCPT TO:<b@example.com>", "RSET"]
            for a in ["a@foo", "a@foo.test.", "postmaster", "a"]), [])
     + ["MAIL FROM:<a@ok.test>"] + [f"RCPT TO:<{r}>" for r in ["b@foo", "b@example.com.", "postmaster", "b"]]
     + ["QUIT"]),
    # ---- check_*_{mx,ns,a}_access ----
    ("check_sender_mx_access, check_sender_ns_access, check_sender_a_access",
     {"smtpd_sender_restrictions": "check_sender_mx_access texthash:{maps}/servers, "
      "check_sender_ns_access texthash:{maps}/servers, check_sender_a_access texthash:{maps}/servers"},
     {"servers": SERVERS},
     [xclient(), "HELO helo.example"]
     + sum(([f"MAIL FROM:<a@{d}>", "RCPT TO:<b@example.com>", "RSET"]
            for d in ["spam.test", "nomx.test", "exempt.test", "other.test", "lomx.test", "privmx.test",
                      "nullmx.test", "nope.test", "x.fail.test"]), [])
     + ["QUIT"]),
    ("check_helo_mx_access, check_helo_a_access, check_client_a_access, check_client_mx_access",
     {"smtpd_helo_restrictions": "check_helo_a_access texthash:{maps}/servers, "
      "check_helo_mx_access texthash:{maps}/servers",
      "smtpd_client_restrictions": "check_client_a_access texthash:{maps}/servers, "
      "check_client_mx_access texthash:{maps}/servers"},
     {"servers": SERVERS},
     [xclient("192.0.2.30", "nomx.test")] + tx() + [xclient("192.0.2.30", "spam.test")] + tx()
     + [xclient("192.0.2.30", "client.example")] + tx(helo="nomx.test") + tx(helo="spam.test")
     + tx(helo="lomx.test") + ["QUIT"]),
    ("check_recipient_mx_access, check_recipient_ns_access",
     {"smtpd_recipient_restrictions": "check_recipient_mx_access texthash:{maps}/servers, "
      "check_recipient_ns_access texthash:{maps}/servers, permit"},
     {"servers": SERVERS},
     [xclient(), "HELO helo.example", "MAIL FROM:<a@ok.test>"]
     + [f"RCPT TO:<b@{d}>" for d in ["spam.test", "other.test", "privmx.test", "exempt.test"]] + ["QUIT"]),
    # ---- check_reverse_client_hostname_{mx,ns,a}_access ----
    ("check_reverse_client_hostname_mx_access, _ns_access, _a_access",
     {"smtpd_client_restrictions": "check_reverse_client_hostname_mx_access texthash:{maps}/servers, "
      "check_reverse_client_hostname_ns_access texthash:{maps}/servers, "
      "check_reverse_client_hostname_a_access texthash:{maps}/servers"},
     {"servers": SERVERS},
     sum(([f"XCLIENT NAME=client.example REVERSE_NAME={n} ADDR=192.0.2.30"] + tx()
          for n in ["spam.test", "nomx.test", "exempt.test", "other.test", "lomx.test", "nope.test",
                    "x.fail.test", "[UNAVAILABLE]", "ok.test"]), [])
     + ["QUIT"]),
    # ---- permit_mx_backup ----
    ("permit_mx_backup: backup, primary, not listed, no MX, ours, DNS failures",
     {"inet_interfaces": "127.0.0.1", "smtpd_relay_restrictions": "permit_mx_backup, reject"},
     {},
     [xclient(), "HELO helo.example", "MAIL FROM:<a@ok.test>"]
     + [f"RCPT TO:<b@{d}>" for d in ["backup.test", "primary.test", "notus.test", "nomx.test", "example.com",
                                      "x.fail.test", "badbackup.test", "failbackup.test", "failprimary.test",
                                      "elsewhere.test", "[192.0.2.77]"]] + ["QUIT"]),
    ("permit_mx_backup with permit_mx_backup_networks",
     {"inet_interfaces": "127.0.0.1", "permit_mx_backup_networks": "198.51.100.0/24",
      "smtpd_relay_restrictions": "permit_mx_backup, reject"},
     {},
     [xclient(), "HELO helo.example", "MAIL FROM:<a@ok.test>"]
     + [f"RCPT TO:<b@{d}>" for d in ["backup.test", "elsewhere.test", "failprimary.test"]] + ["QUIT"]),
    # ---- the session's end, in the log ----
    ("lost connection after RCPT", {}, {}, [xclient(), "EHLO helo.example", "MAIL FROM:<a@ok.test>",
                                            "RCPT TO:<b@example.com>", "RCPT TO:<c@elsewhere.test>"]),
    ("lost connection after CONNECT and after DATA", {}, {},
     ["<FROM 127.0.0.3>", "<FROM 127.0.0.3>", "EHLO helo.example", "MAIL FROM:<a@ok.test>",
      "RCPT TO:<b@example.com>", "DATA"]),
    ("too many errors after RCPT",
     {"smtpd_hard_error_limit": "3", "smtpd_recipient_restrictions": "reject"}, {},
     [xclient(), "HELO helo.example", "MAIL FROM:<a@ok.test>", "RCPT TO:<b@example.com>",
      "RCPT TO:<c@example.com>", "RCPT TO:<d@example.com>", "RCPT TO:<e@example.com>", "QUIT"]),
    ("too many errors after unknown commands",
     {"smtpd_hard_error_limit": "2"}, {},
     ["<FROM 127.0.0.3>", "EHLO helo.example", "BOGUS", "MAIL", "NOOP", "QUIT"]),
    ("timeout after MAIL",
     {"smtpd_timeout": "2s"}, {},
     ["<FROM 127.0.0.3>", "EHLO helo.example", "MAIL FROM:<a@ok.test>", "<PAUSE 3.5>", "NOOP"]),
    ("a session with QUIT: the disconnect line", {}, {},
     ["<FROM 127.0.0.8>", "EHLO helo.example", "MAIL FROM:<a@ok.test>", "RCPT TO:<b@example.com>",
      "RCPT TO:<c@elsewhere.test>", "NOOP", "RSET", "VRFY b@example.com", "QUIT"]),
]

# one connection plays several clients: each may send XCLIENT again
for _case in CASES:
    _case[1].setdefault("smtpd_authorized_xclient_hosts", "127.0.0.0/8, 192.0.2.0/24")
