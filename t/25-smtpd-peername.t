#!/usr/bin/env python3
# smtpd_peername_lookup: postern-smtpd names its client as Postfix does,
# by the forward-confirmed PTR name, which the lookup service finds
# (proxy:dns:client, doc/dns.md) from a real DNS server (unbound) the test
# starts on loopback: the name in the log lines and the Received header,
# "unknown" for an unconfirmed name (with Postfix's warning), no PTR
# record, a DNS server that fails, no lookup service, and with the
# setting off.  The client address comes from TCPREMOTEIP, as tcpserver
# and postern-accept set it.
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
from dnsserver import DnsServer, UNBOUND
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data", "logs"))

if not os.access(UNBOUND, os.X_OK):
    skip_all("unbound is not installed (./deps installs it)")

dns = DnsServer([
    "ok.test. A 192.0.2.1",
    "1.2.0.192.in-addr.arpa. PTR ok.test.",
    "2.2.0.192.in-addr.arpa. PTR liar.test.",
    "liar.test. A 192.0.2.99",
    "10.2.0.192.rbl.test. A 127.0.0.2",
    '10.2.0.192.rbl.test. TXT "Listed for testing"',
    "11.2.0.192.rbl.test. A 127.0.0.11",
    "bad.example.dbl.test. A 127.0.1.2",
    "ok.test.dbl.test. A 127.0.1.2",
    "mx-only.test. MX 10 mail.ok.test.",
    "nullmx.test. MX 0 .",
    "nullmx.test. A 192.0.2.50",
    "v6only.test. AAAA 2001:db8::5",
    "noaddr.test. TXT \"exists, but no A, AAAA or MX\"",
], zones=["test.", "2.0.192.in-addr.arpa."], broken=["9.2.0.192.in-addr.arpa.", "fail.test."])

inst = smtpdtest.Instance()
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
svc = start([prog("postern-lookup"), "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_DNS_TIMEOUT_MS": "1500"})
ok(smtpdtest.wait_for(lambda: os.path.exists(os.path.join(queue, "public", "lookup"))),
   "the lookup service listens")


def session(addr, mail=True):
    """One SMTP session from addr; returns the banner and the message smtpd handed on."""
    return smtpdtest.session_from(inst, addr, mail=mail)


banner, msg = session("192.0.2.1")
like(banner, r"^220 ", "a named client is greeted")
like(inst.log(), r"connect from ok\.test\[192\.0\.2\.1\]", "PTR ok.test, confirmed by its A record: logged as ok.test[192.0.2.1]")
like(msg, r"Received: from client\.example \(ok\.test \[192\.0\.2\.1\]\)",
     "... and named so in the Received header")

_, msg = session("192.0.2.2")
like(inst.log(), r"connect from unknown\[192\.0\.2\.2\]", "PTR liar.test, whose A record is elsewhere: unknown")
like(inst.log(), r"warning: hostname liar\.test does not resolve to address 192\.0\.2\.2\n",
     "... with Postfix's warning")
like(msg, r"\(unknown \[192\.0\.2\.2\]\)", "... and unknown in the Received header")

session("192.0.2.3", mail=False)
like(inst.log(), r"connect from unknown\[192\.0\.2\.3\]", "no PTR record: unknown")
unlike(inst.log(), r"hostname \S+ does not resolve to address 192\.0\.2\.3", "... without a warning")

t0 = time.monotonic()
banner, _ = session("192.0.2.9", mail=False)
like(banner, r"^220 ", "the reverse zone's server is down: the client is still served")
like(inst.log(), r"connect from unknown\[192\.0\.2\.9\]", "... as unknown")
ok(time.monotonic() - t0 < 6, f"... after the DNS deadline, not longer ({time.monotonic() - t0:.1f}s)")

inst.set(smtpd_peername_lookup="no")
session("192.0.2.1", mail=False)
like(inst.log(), r"connect from unknown\[192\.0\.2\.1\]", "smtpd_peername_lookup = no: no lookup, unknown")
inst.set(smtpd_peername_lookup="yes")

# ---- reject_unknown_client_hostname, reject_unknown_reverse_client_hostname ----
def rcpt_reply(addr, **kw):
    return smtpdtest.rcpt_reply(inst, addr, **kw)


inst.set(smtpd_client_restrictions="reject_unknown_client_hostname")
is_(rcpt_reply("192.0.2.1")[:3], "250", "reject_unknown_client_hostname: a confirmed name passes")
is_(rcpt_reply("192.0.2.2"), "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.2]",
    "an unconfirmed name: Postfix 3.7's reply, unknown_client_reject_code 450")
like(inst.log(), r"NOQUEUE: reject: RCPT from unknown\[192\.0\.2\.2\]: 450 4\.7\.25 Client host rejected: "
     r"cannot find your hostname, \[192\.0\.2\.2\]; from=<a@example\.org> to=<postmaster@example\.com> "
     r"proto=ESMTP helo=<client\.example>", "... logged as Postfix logs it")
inst.set(unknown_client_reject_code="550")
is_(rcpt_reply("192.0.2.3"), "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.3]",
    "no PTR record: unknown_client_reject_code (550), the enhanced code's class with it")
is_(rcpt_reply("192.0.2.9"), "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.9]",
    "a DNS failure: 450 whatever unknown_client_reject_code says, never a 5xx")
inst.set(smtpd_client_restrictions="reject_unknown_reverse_client_hostname",
         unknown_client_reject_code="450")
is_(rcpt_reply("192.0.2.2")[:3], "250",
    "reject_unknown_reverse_client_hostname: a PTR name, even unconfirmed, passes")
is_(rcpt_reply("192.0.2.3"), "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.3]",
    "no PTR record: Postfix 3.7's reply")
is_(rcpt_reply("192.0.2.9"), "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.9]",
    "a DNS failure: 450")
inst.set(smtpd_client_restrictions="")

# ---- DNS block lists ----
inst.set(smtpd_client_restrictions="reject_rbl_client rbl.test", syslog_name="postfix")
is_(rcpt_reply("192.0.2.1")[:3], "250", "reject_rbl_client: a client not listed passes")
is_(rcpt_reply("192.0.2.10"),
    "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using rbl.test; Listed for testing",
    "a listed client: default_rbl_reply as Postfix's, with the TXT record")
like(inst.log(), r"postfix/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[192\.0\.2\.10\]: 554 5\.7\.1 "
     r"Service unavailable; Client host \[192\.0\.2\.10\] blocked using rbl\.test; Listed for testing; "
     r"from=<a@example\.org> to=<postmaster@example\.com> proto=ESMTP helo=<client\.example>",
     "... logged as Postfix logs it")
import logtools
if os.access(logtools.FAIL2BAN_REGEX, os.X_OK):
    report = logtools.fail2ban(os.path.join(inst.dir, "maillog"), logtools.FAIL2BAN_FILTERS["postfix-rbl"])
    matched = logtools.fail2ban_matched(report)
    ok(len(matched) == 1 and "192.0.2.10" in matched[0], "fail2ban's postfix-rbl filter matches that line") \
        or diag(report[-2000:])
else:
    ok(False, "fail2ban-regex is missing (./deps installs fail2ban)")
is_(rcpt_reply("192.0.2.11")[:3], "554", "an A record of 127.0.0.11 lists without a filter")
inst.set(smtpd_client_restrictions="reject_rbl_client rbl.test=127.0.0.[2..10]")
is_(rcpt_reply("192.0.2.11")[:3], "250", "rbl.test=127.0.0.[2..10]: 127.0.0.11 is not a listing")
is_(rcpt_reply("192.0.2.10")[:3], "554", "... 127.0.0.2 is")
inst.set(smtpd_client_restrictions="reject_rbl_client rbl.test=127.0.0.[3;11]")
is_(rcpt_reply("192.0.2.11")[:3], "554", "rbl.test=127.0.0.[3;11]: 127.0.0.11 is a listing")
is_(rcpt_reply("192.0.2.10")[:3], "250", "... 127.0.0.2 is not")
write(os.path.join(inst.dir, "rbl_replies"), "rbl.test 450 4.7.1 Try later [$client_address]${rbl_reason?: $rbl_reason}\n")
inst.set(smtpd_client_restrictions="reject_rbl_client rbl.test",
         rbl_reply_maps="texthash:" + os.path.join(inst.dir, "rbl_replies"))
is_(rcpt_reply("192.0.2.10"), "450 4.7.1 Try later [192.0.2.10]: Listed for testing",
    "rbl_reply_maps: the zone's own reply, its $names expanded")
inst.set(rbl_reply_maps="", smtpd_client_restrictions="reject_rbl_client x.fail.test")
is_(rcpt_reply("192.0.2.10")[:3], "250", "a block list whose server fails lists nobody")
like(inst.log(), r"warning: 10\.2\.0\.192\.x\.fail\.test: RBL lookup error", "... and says so")
inst.set(smtpd_client_restrictions="", smtpd_sender_restrictions="reject_rhsbl_sender dbl.test")
is_(rcpt_reply("192.0.2.1", sender="a@bad.example"),
    "554 5.7.1 Service unavailable; Sender address [a@bad.example] blocked using dbl.test",
    "reject_rhsbl_sender: the sender's domain listed (no TXT record: no reason)")
is_(rcpt_reply("192.0.2.1", sender="a@good.example")[:3], "250", "... a domain not listed passes")
inst.set(smtpd_sender_restrictions="", smtpd_helo_restrictions="reject_rhsbl_helo dbl.test")
is_(rcpt_reply("192.0.2.1", helo="bad.example"),
    "554 5.7.1 Service unavailable; Helo command [bad.example] blocked using dbl.test", "reject_rhsbl_helo")
inst.set(smtpd_helo_restrictions="", smtpd_client_restrictions="reject_rhsbl_client dbl.test")
is_(rcpt_reply("192.0.2.1"),
    "554 5.7.1 Service unavailable; Client host [ok.test] blocked using dbl.test", "reject_rhsbl_client: the client's name")
inst.set(smtpd_client_restrictions="", smtpd_recipient_restrictions="reject_rhsbl_recipient dbl.test, permit_mynetworks, reject_unauth_destination")
is_(rcpt_reply("192.0.2.1"), "250 2.1.5 Ok", "reject_rhsbl_recipient: a recipient domain not listed passes")
inst.set(smtpd_recipient_restrictions="", syslog_name="postern")

# ---- reject_unknown_helo_hostname, reject_unknown_sender_domain,
# reject_unknown_recipient_domain (Postfix 3.7's replies; null MX) ----
inst.set(smtpd_helo_restrictions="reject_unknown_helo_hostname")
for helo in ("ok.test", "mx-only.test", "v6only.test", "nullmx.test", "[192.0.2.1]"):
    is_(rcpt_reply("192.0.2.1", helo=helo)[:3], "250", f"reject_unknown_helo_hostname: HELO {helo} passes")
is_(rcpt_reply("192.0.2.1", helo="nope.test"), "450 4.7.1 <nope.test>: Helo command rejected: Host not found",
    "a HELO name that does not exist: unknown_hostname_reject_code 450")
is_(rcpt_reply("192.0.2.1", helo="noaddr.test"), "450 4.7.1 <noaddr.test>: Helo command rejected: Host not found",
    "a HELO name without A, AAAA or MX: the same")
is_(rcpt_reply("192.0.2.1", helo="x.fail.test"), "450 4.7.1 <x.fail.test>: Helo command rejected: Host not found",
    "a HELO name whose DNS fails: 450 (defer_if_permit, nothing else refused)")
inst.set(smtpd_helo_restrictions="reject_unknown_helo_hostname, reject")
is_(rcpt_reply("192.0.2.1", helo="x.fail.test")[:9], "554 5.7.1",
    "... and the later refusal wins over the deferral, as defer_if_permit does")
inst.set(smtpd_helo_restrictions="", smtpd_sender_restrictions="reject_unknown_sender_domain")
is_(rcpt_reply("192.0.2.1", sender="a@mx-only.test")[:3], "250", "reject_unknown_sender_domain: a domain with an MX passes")
is_(rcpt_reply("192.0.2.1", sender="a@nope.test"),
    "450 4.1.8 <a@nope.test>: Sender address rejected: Domain not found",
    "a sender domain that does not exist: unknown_address_reject_code 450, 4.1.8")
is_(rcpt_reply("192.0.2.1", sender="a@nullmx.test"),
    "550 5.7.27 <a@nullmx.test>: Sender address rejected: Domain nullmx.test does not accept mail (nullMX)",
    "a sender domain with a null MX (RFC 7505): 550 5.7.27, as Postfix")
is_(rcpt_reply("192.0.2.1", sender="a@x.fail.test"),
    "450 4.1.8 <a@x.fail.test>: Sender address rejected: Domain not found", "a DNS failure: 450, never 5xx")
is_(rcpt_reply("192.0.2.1", sender="a@example.com")[:3], "250", "our own domain is not asked about")
is_(rcpt_reply("192.0.2.1", sender="")[:3], "250", "the null sender passes")
inst.set(unknown_address_reject_code="550")
is_(rcpt_reply("192.0.2.1", sender="a@nope.test"),
    "550 5.1.8 <a@nope.test>: Sender address rejected: Domain not found", "unknown_address_reject_code = 550: 5.1.8")
inst.set(unknown_address_reject_code="450", smtpd_sender_restrictions="",
         smtpd_relay_restrictions="reject_unknown_recipient_domain, permit_mynetworks, reject_unauth_destination")
is_(rcpt_reply("192.0.2.1", rcpt="u@nullmx.test"),
    "556 5.1.10 <u@nullmx.test>: Recipient address rejected: Domain nullmx.test does not accept mail (nullMX)",
    "reject_unknown_recipient_domain: a null MX is 556 5.1.10, as Postfix")
is_(rcpt_reply("192.0.2.1", rcpt="u@nope.test"),
    "450 4.1.2 <u@nope.test>: Recipient address rejected: Domain not found", "a recipient domain that does not exist: 4.1.2")
inst.set(smtpd_relay_restrictions="permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination")

is_(stop(svc), 0, "the lookup service stops")
banner, _ = session("192.0.2.1", mail=False)
like(banner, r"^220 ", "without the lookup service the client is served")
like(inst.log().split("lookup service: stopped")[-1], r"connect from unknown\[192\.0\.2\.1\]", "... as unknown")
inst.stop()
done()
