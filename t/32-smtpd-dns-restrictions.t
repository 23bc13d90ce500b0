#!/usr/bin/env python3
# The DNS-based restrictions that issue 12 left, against a real DNS server
# (unbound on loopback, t/lib/dnsserver.py) through the lookup service:
#  - permit_dnswl_client and permit_rhswl_client (with a result filter),
#    which never override reject_unauth_destination, and whose DNS failure
#    turns a later refusal into a deferral;
#  - check_{client,helo,sender,recipient}_{mx,ns,a}_access: the MX hosts
#    (the domain itself without MX), NS hosts or addresses of a name looked
#    up in an access table, by name and by address; OK is not allowed;
#  - unknown_address_tempfail_action, unknown_helo_hostname_tempfail_action
#    and reject_tempfail_action: "defer" answers a DNS failure at once,
#    "defer_if_permit" (the default) only when nothing refuses;
#  - the restriction names are no longer "not implemented".
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
from dnsserver import DnsServer

require(["postern-smtpd", "postern-lookup", "postern"], ["unbound"])

dns = DnsServer([
    "10.2.0.192.wl.test. A 127.0.0.2",
    "11.2.0.192.wl.test. A 127.0.0.9",
    "1.2.0.192.in-addr.arpa. PTR good.test.",
    "good.test. A 192.0.2.1",
    "good.test.hwl.test. A 127.0.0.2",
    "spam.test. MX 10 mx.spamhost.test.",
    "mx.spamhost.test. A 203.0.113.5",
    "other.test. MX 10 mx.other.test.",
    "mx.other.test. A 198.51.100.20",
    "nomx.test. A 203.0.113.6",
    "spam.test. NS ns1.badns.test.",
    "other.test. NS ns1.fine.test.",
    "ns1.badns.test. A 198.51.100.53",
    "ns1.fine.test. A 198.51.100.54",
    "exempt.test. MX 10 mx.exempt.spamhost.test.",
    "mx.exempt.spamhost.test. A 203.0.113.7",
], zones=["test.", "2.0.192.in-addr.arpa."], broken=["fail.test.", "wlfail.test."])

RCPT_DEFAULT = "permit_mynetworks, reject_unauth_destination"
inst = smtpdtest.Instance({"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": RCPT_DEFAULT})
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
svc = start([prog("postern-lookup"), "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_DNS_TIMEOUT_MS": "1500"})
ok(wait_until(lambda: os.path.exists(os.path.join(queue, "public", "lookup")), 10), "the lookup service listens")


def rcpt(addr, rcpt_to="postmaster@example.com", **kw):
    return smtpdtest.rcpt_reply(inst, addr, rcpt=rcpt_to, **kw)


# ---- permit_dnswl_client, permit_rhswl_client ----
inst.set(smtpd_client_restrictions="permit_dnswl_client wl.test, reject")
is_(rcpt("192.0.2.10")[:3], "250", "permit_dnswl_client: a listed client is permitted before reject")
is_(rcpt("192.0.2.12")[:9], "554 5.7.1", "... one not listed meets the reject")
inst.set(smtpd_client_restrictions="permit_dnswl_client wl.test=127.0.0.2, reject")
is_(rcpt("192.0.2.11")[:3], "554", "wl.test=127.0.0.2: a listing of 127.0.0.9 does not permit")
inst.set(smtpd_client_restrictions="permit_dnswl_client wlfail.test, reject")
is_(rcpt("192.0.2.10"), "450 4.7.1 <192.0.2.10>: Client host rejected: Service unavailable",
    "the allow list's DNS fails: the later reject becomes a deferral, never a 5xx (Postfix 3.7's text, t/33-smtpd-dns-postfix)")
inst.set(smtpd_client_restrictions="",
         smtpd_recipient_restrictions="permit_dnswl_client wl.test, reject_unauth_destination")
is_(rcpt("192.0.2.10", rcpt_to="x@elsewhere.example"), "554 5.7.1 <x@elsewhere.example>: Relay access denied",
    "permit_dnswl_client never overrides reject_unauth_destination")
is_(rcpt("192.0.2.10", rcpt_to="x@example.com")[:3], "250", "... for our own domains it permits")
inst.set(smtpd_recipient_restrictions=RCPT_DEFAULT, smtpd_client_restrictions="permit_rhswl_client hwl.test, reject")
is_(rcpt("192.0.2.1")[:3], "250", "permit_rhswl_client: the client's name good.test is listed")
is_(rcpt("192.0.2.12")[:3], "554", "... an unknown client is not")

# ---- check_*_mx_access, _ns_access, _a_access ----
write(os.path.join(inst.dir, "servers"),
      "spamhost.test REJECT mail servers of spammers\n"
      "exempt.spamhost.test DUNNO\n"
      "198.51.100.53 554 5.7.9 bad name server\n"
      "203.0.113.6 REJECT bad address\n"
      "mx.other.test OK\n")
tbl = "texthash:" + os.path.join(inst.dir, "servers")
inst.set(smtpd_client_restrictions="", smtpd_sender_restrictions=f"check_sender_mx_access {tbl}")
is_(rcpt("192.0.2.1", sender="a@spam.test"),
    "554 5.7.1 <a@spam.test>: Sender address rejected: mail servers of spammers",
    "check_sender_mx_access: the sender domain's MX host, by its parent domain")
is_(rcpt("192.0.2.1", sender="a@nomx.test"), "554 5.7.1 <a@nomx.test>: Sender address rejected: bad address",
    "... a domain without MX is its own mail host, found by its address")
is_(rcpt("192.0.2.1", sender="a@exempt.test")[:3], "250", "... DUNNO exempts a host below a listed domain")
is_(rcpt("192.0.2.1", sender="a@other.test"), "451 4.3.5 Server configuration error",
    "... OK is not allowed there: a configuration error, as Postfix 3.7 answers (t/33-smtpd-dns-postfix)")
like(inst.log(), r"warning: restriction check_sender_mx_access returns OK for a@other\.test\n.*"
     r"warning: this is not allowed for security reasons\n.*warning: use DUNNO instead of OK",
     "... with Postfix's warnings")
inst.set(smtpd_sender_restrictions=f"check_sender_ns_access {tbl}")
is_(rcpt("192.0.2.1", sender="a@spam.test"),
    "554 5.7.9 <a@spam.test>: Sender address rejected: bad name server",
    "check_sender_ns_access: the domain's name server, by its address")
is_(rcpt("192.0.2.1", sender="a@other.test")[:3], "250", "... another's passes")
inst.set(smtpd_sender_restrictions="", smtpd_helo_restrictions=f"check_helo_a_access {tbl}")
is_(rcpt("192.0.2.1", helo="nomx.test"), "554 5.7.1 <nomx.test>: Helo command rejected: bad address",
    "check_helo_a_access: the HELO name's address")
inst.set(smtpd_helo_restrictions="", smtpd_recipient_restrictions=f"check_recipient_mx_access {tbl}, permit_mynetworks, reject_unauth_destination")
is_(rcpt("192.0.2.1", rcpt_to="x@spam.test"),
    "554 5.7.1 <x@spam.test>: Recipient address rejected: mail servers of spammers", "check_recipient_mx_access")
inst.set(smtpd_recipient_restrictions=RCPT_DEFAULT, smtpd_client_restrictions=f"check_client_a_access {tbl}")
is_(rcpt("192.0.2.1")[:3], "250", "check_client_a_access: good.test's address is not listed")

# ---- the *_tempfail_action parameters ----
inst.set(smtpd_client_restrictions="", smtpd_sender_restrictions="reject_unknown_sender_domain, permit")
is_(rcpt("192.0.2.1", sender="a@x.fail.test"),
    "450 4.1.8 <a@x.fail.test>: Sender address rejected: Domain not found",
    "unknown_address_tempfail_action = defer_if_permit (default): the deferral when nothing refuses")
inst.set(smtpd_sender_restrictions="reject_unknown_sender_domain, reject")
is_(rcpt("192.0.2.1", sender="a@x.fail.test")[:9], "554 5.7.1", "... and the later refusal wins")
inst.set(unknown_address_tempfail_action="defer")
is_(rcpt("192.0.2.1", sender="a@x.fail.test"),
    "450 4.1.8 <a@x.fail.test>: Sender address rejected: Domain not found",
    "unknown_address_tempfail_action = defer: deferred at once, before the later reject")
inst.set(unknown_address_tempfail_action="$reject_tempfail_action", reject_tempfail_action="defer",
         smtpd_sender_restrictions="", smtpd_helo_restrictions="reject_unknown_helo_hostname, reject")
is_(rcpt("192.0.2.1", helo="x.fail.test"), "450 4.7.1 <x.fail.test>: Helo command rejected: Host not found",
    "reject_tempfail_action = defer reaches unknown_helo_hostname_tempfail_action")

# ---- postern check no longer calls them unimplemented ----
inst.set(smtpd_helo_restrictions="", reject_tempfail_action="defer_if_permit",
         smtpd_recipient_restrictions="permit_dnswl_client wl.test, check_sender_mx_access " + tbl
         + ", check_policy_service inet:127.0.0.1:9, defer_if_permit, permit_mynetworks, reject_unauth_destination")
r = run([prog("postern"), "check", "-c", inst.dir])
unlike(r.stdout + r.stderr, r"permit_dnswl_client|check_sender_mx_access|check_policy_service|defer_if_permit",
       "postern check names none of them as not implemented")
done()
