#!/usr/bin/env python3
# postern-smtpd relay control: safe by default.  From a client outside
# mynetworks the classic open-relay tricks are all refused while mail for
# our own domains is accepted; unknown recipients are refused at RCPT
# (reject_unlisted_recipient, seed 001's "User unknown in local recipient
# table"); access tables; a failing table gives 451 4.3.0, never a 5xx.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance, wait_for

inst = Instance({
    "mynetworks": "10.0.0.0/8",
    "mydestination": "example.com, localhost",
    "relay_domains": "relay.example",
    "virtual_mailbox_domains": "virtual.example",
    "virtual_mailbox_maps": "inline:{ known@virtual.example=known/ }",
    "local_recipient_maps": "inline:{ joe=1, user=1 }",
    "smtpd_hard_error_limit": "1000",
    # the replies name the client unknown[127.0.0.1] whatever the
    # machine's /etc/hosts says of 127.0.0.1
    "smtpd_peername_lookup": "no",
})
port = inst.listen()


def rcpt_replies(recipients, sender="stranger@elsewhere.org"):
    c = Client(port)
    c.reply()
    c.cmd("EHLO outside.example")
    tap.is_(c.cmd("MAIL FROM:<%s>" % sender), "250 2.1.0 Ok", "MAIL FROM:<%s>" % sender)
    out = {r: c.cmd("RCPT TO:<%s>" % r) for r in recipients}
    c.cmd("QUIT")
    c.close()
    return out


def internal(address):
    """The address as smtpd keeps it: quotes and source route gone."""
    address = address.replace('"', "")
    return address.split(":", 1)[1] if address.startswith("@") else address


tricks = [
    "user@other.org", "USER@OTHER.ORG", "user%other.org@example.com", "other.org!user@example.com",
    "@example.com:user@other.org", "@example.com,@localhost:user@other.org", '"user@other.org"@example.com',
    "user@other.org@example.com", "user@[192.0.2.1]", "user@[other.org]", "user@other.org.",
    "user%other.org@relay.example", "other.org!user@relay.example", "user@sub.example.com",
    "user%other.org%example.com@localhost", "user@other.org.example",
]
ours = ["joe@example.com", "JOE@EXAMPLE.COM", "joe@example.com.", "joe@localhost", "known@virtual.example",
        "anyone@relay.example", "Known@Virtual.Example"]

replies = rcpt_replies(tricks + ours)
for t in tricks:
    tap.is_(replies[t], "454 4.7.1 <%s>: Relay access denied" % internal(t),
            "default relay restrictions defer relaying: %s" % t)
for t in ours:
    tap.is_(replies[t], "250 2.1.5 Ok", "mail for our domains accepted: %s" % t)

replies = rcpt_replies(tricks[:3], sender="")
for t in tricks[:3]:
    tap.like(replies[t], r"^454 4\.7\.1 .*Relay access denied", "null sender cannot relay either: %s" % t)

wait_for(lambda: "to=<user@other.org>" in inst.log())
tap.like(inst.log(), r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 454 4\.7\.1 <user@other\.org>: "
         r"Relay access denied; from=<stranger@elsewhere\.org> to=<user@other\.org> proto=ESMTP "
         r"helo=<outside\.example>", "log: NOQUEUE: reject: RCPT from ... (fail2ban's line)")



def qmgr_classes(addresses, *overrides):
    """How postern-qmgr -r routes each address with this instance's main.cf."""
    args = [tap.prog("postern-qmgr"), "-c", inst.dir]
    for o in overrides:
        args += ["-o", o]
    r = tap.run(args + ["-r"] + list(addresses))
    tap.is_(r.returncode, 0, "postern-qmgr -r on smtpd's main.cf exits 0")
    return dict(line.split(": ", 1) for line in r.stdout.splitlines())


# smtpd and qmgr route with one resolver (lib/mail/resolve.c): what smtpd
# refuses as relaying, qmgr would send elsewhere (class default), and what
# smtpd takes as ours, qmgr delivers here
routing = ["user%other.org@example.com", "other.org!user@example.com", '"user@other.org"@example.com',
           "@example.com,@localhost:user@other.org", "user%other.org%example.com@localhost",
           "joe%example.com@localhost", "example.com!joe@localhost", "joe%virtual.example@example.com",
           "known%virtual.example@example.com", "user%relay.example@example.com"]
for settings in ([], ["allow_percent_hack=no", "swap_bangpath=no", "resolve_dequoted_address=no"]):
    inst.set(**dict(o.split("=", 1) for o in settings))
    replies = rcpt_replies(routing)
    classes = qmgr_classes([internal(a) for a in routing])
    for a in routing:
        where = classes.get(internal(a), "")
        relayed = "class=default" in where
        tap.is_("Relay access denied" in replies[a], relayed,
                "smtpd and qmgr agree on %s (%s): %s / %s" % (a, " ".join(settings) or "defaults",
                                                             replies[a], where))
    if not settings:
        tap.like(classes.get("user%other.org@example.com", ""),
                 r"class=default, transport=smtp, nexthop=other\.org, address=user@other\.org$",
                 "the percent hack: qmgr sends user%other.org@example.com to other.org")
        tap.like(classes.get("joe%virtual.example@example.com", ""),
                 r"class=virtual mailbox, .*address=joe@virtual\.example$",
                 "routing through our domain into a virtual one")
        tap.is_(replies["known%virtual.example@example.com"], "250 2.1.5 Ok",
                "smtpd looks the routed address up in its class's table (known@virtual.example)")
        tap.like(replies["joe%virtual.example@example.com"], r"^550 5\.1\.1 ",
                 "and refuses an unknown one there")
    else:
        tap.like(classes.get("user%other.org@example.com", ""), r"^class=local, transport=local, nexthop=[^,]*$",
                 "allow_percent_hack=no: qmgr keeps user%other.org@example.com here")
inst.set(allow_percent_hack="yes", swap_bangpath="yes", resolve_dequoted_address="yes")

# the classic Postfix setup: reject_unauth_destination answers 554
inst.set(smtpd_relay_restrictions="permit_mynetworks, reject_unauth_destination")
replies = rcpt_replies(tricks + ours)
for t in tricks:
    tap.is_(replies[t], "554 5.7.1 <%s>: Relay access denied" % internal(t), "reject_unauth_destination: %s" % t)
for t in ours:
    tap.is_(replies[t], "250 2.1.5 Ok", "reject_unauth_destination lets ours through: %s" % t)

# recipient restrictions alone (relay restrictions empty, the Postfix < 2.10 way)
inst.set(smtpd_relay_restrictions="", smtpd_recipient_restrictions="permit_mynetworks, reject_unauth_destination")
replies = rcpt_replies(["user@other.org", "joe@example.com"])
tap.is_(replies["user@other.org"], "554 5.7.1 <user@other.org>: Relay access denied", "smtpd_recipient_restrictions alone")
tap.is_(replies["joe@example.com"], "250 2.1.5 Ok", "smtpd_recipient_restrictions alone: ours")
inst.set(smtpd_recipient_restrictions="")
replies = rcpt_replies(["joe@example.com"])
tap.is_(replies["joe@example.com"], "451 4.3.5 Server configuration error", "both lists empty: a configuration error, not an open relay")
inst.set(smtpd_relay_restrictions="permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination")

# unknown recipients at RCPT
replies = rcpt_replies(["nobody@example.com", "nobody@virtual.example", "joe+ext@example.com"])
tap.is_(replies["nobody@example.com"],
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table",
        "unknown local recipient (seed 001)")
tap.is_(replies["nobody@virtual.example"],
        "550 5.1.1 <nobody@virtual.example>: Recipient address rejected: User unknown in virtual mailbox table",
        "unknown virtual mailbox recipient")
inst.set(relay_recipient_maps="inline:{ ok@relay.example=1 }", virtual_alias_maps="inline:{ alias@example.com=joe }",
         show_user_unknown_table_name="no")
replies = rcpt_replies(["no@relay.example", "ok@relay.example", "alias@example.com"])
tap.is_(replies["no@relay.example"], "550 5.1.1 <no@relay.example>: Recipient address rejected: User unknown",
        "unknown relay recipient (show_user_unknown_table_name = no)")
tap.is_(replies["ok@relay.example"], "250 2.1.5 Ok", "listed relay recipient")
tap.is_(replies["alias@example.com"], "250 2.1.5 Ok", "a virtual alias is a known recipient")
inst.set(relay_recipient_maps="", virtual_alias_maps="", show_user_unknown_table_name="yes")

# unknown senders in our domains (smtpd_reject_unlisted_sender, reject_unlisted_sender)
inst.set(smtpd_reject_unlisted_sender="yes")
replies = rcpt_replies(["joe@example.com"], sender="ghost@example.com")
tap.is_(replies["joe@example.com"],
        "550 5.1.1 <ghost@example.com>: Sender address rejected: User unknown in local recipient table",
        "smtpd_reject_unlisted_sender: unknown sender in our domain")
replies = rcpt_replies(["joe@example.com"], sender="user@example.com")
tap.is_(replies["joe@example.com"], "250 2.1.5 Ok", "smtpd_reject_unlisted_sender: a known sender passes")
inst.set(smtpd_reject_unlisted_sender="no", smtpd_sender_restrictions="reject_unlisted_sender")
replies = rcpt_replies(["joe@example.com"], sender="ghost@virtual.example")
tap.is_(replies["joe@example.com"],
        "550 5.1.1 <ghost@virtual.example>: Sender address rejected: User unknown in virtual mailbox table",
        "reject_unlisted_sender in smtpd_sender_restrictions")
replies = rcpt_replies(["joe@example.com"], sender="anyone@elsewhere.org")
tap.is_(replies["joe@example.com"], "250 2.1.5 Ok", "reject_unlisted_sender: foreign senders are not checked")
inst.set(smtpd_sender_restrictions="")

# a table that cannot answer: 451 4.3.0, never 5xx
inst.set(local_recipient_maps="fail:down")
replies = rcpt_replies(["joe@example.com"])
tap.is_(replies["joe@example.com"], "451 4.3.0 <joe@example.com>: Recipient address rejected: Temporary lookup failure",
        "MAP_RETRY from local_recipient_maps: 451 4.3.0")
inst.set(local_recipient_maps="inline:{ joe=1, user=1 }", mynetworks="fail:down")
replies = rcpt_replies(["user@other.org"])
tap.like(replies["user@other.org"], r"^451 4\.3\.0 ", "mynetworks table failing: 451, not a relay")

inst.set(mynetworks="10.0.0.0/8", relay_domains="hash:/nonexistent/relay_domains")
replies = rcpt_replies(["user@other.org", "joe@example.com"])
tap.like(replies["user@other.org"], r"^451 4\.3\.0 ", "relay_domains table missing: 451, not a relay")
tap.like(replies["joe@example.com"], r"^451 4\.3\.0 ", "relay_domains table missing: 451 for everyone, no crash")
inst.set(relay_domains="relay.example")

# mynetworks forms: CIDR, [IPv6], cidr: table, /file, negation
nets = tap.write(os.path.join(inst.dir, "nets.cidr"), "127.0.0.0/8 ok\n")
netfile = tap.write(os.path.join(inst.dir, "nets.list"), "# trusted\n10.1.0.0/16\n127.0.0.1\n")
for value, relays in [("127.0.0.0/8", True), ("[::1]/128, 10.0.0.0/8", False), ("cidr:" + nets, True),
                      (netfile, True), ("!127.0.0.1 127.0.0.0/8", False), ("127.0.0.1/8", None)]:
    inst.set(mynetworks=value)
    r = rcpt_replies(["user@other.org"])["user@other.org"]
    if relays is None:
        tap.like(r, r"^451 ", "malformed mynetworks %s: temporary failure, not a relay" % value)
    elif relays:
        tap.is_(r, "250 2.1.5 Ok", "client in mynetworks = %s may relay" % value)
    else:
        tap.like(r, r"^454 4\.7\.1 ", "client outside mynetworks = %s may not relay" % value)
inst.set(mynetworks="10.0.0.0/8")

# access tables and plain permit/reject
inst.set(smtpd_recipient_restrictions="check_recipient_access inline:{ {blocked@example.com=REJECT go away}, "
         "temp@example.com=DEFER, {coded@example.com=550 5.7.9 coded}, ok@other.org=OK }")
replies = rcpt_replies(["blocked@example.com", "temp@example.com", "coded@example.com", "ok@other.org"])
tap.is_(replies["blocked@example.com"], "554 5.7.1 <blocked@example.com>: Recipient address rejected: go away",
        "check_recipient_access REJECT text")
tap.is_(replies["temp@example.com"], "450 4.7.1 <temp@example.com>: Recipient address rejected: Access denied",
        "check_recipient_access DEFER")
tap.is_(replies["coded@example.com"], "550 5.7.9 <coded@example.com>: Recipient address rejected: coded",
        "check_recipient_access with a code")
tap.like(replies["ok@other.org"], r"^454 4\.7\.1 <ok@other\.org>: Relay access denied",
         "OK in recipient restrictions does not undo the relay restrictions")
inst.set(smtpd_recipient_restrictions="", smtpd_client_restrictions="check_client_access inline:{ 127.0.0.1=REJECT }")
replies = rcpt_replies(["joe@example.com"])
tap.is_(replies["joe@example.com"], "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied",
        "check_client_access, delayed to RCPT (smtpd_delay_reject)")
inst.set(smtpd_client_restrictions="", smtpd_sender_restrictions="check_sender_access inline:{ {<>=REJECT no bounces} }")
replies = rcpt_replies(["joe@example.com"], sender="")
tap.is_(replies["joe@example.com"], "554 5.7.1 <>: Sender address rejected: no bounces",
        "check_sender_access with smtpd_null_access_lookup_key")
inst.set(smtpd_sender_restrictions="warn_if_reject check_sender_access inline:{ {<>=REJECT no bounces} }")
replies = rcpt_replies(["joe@example.com"], sender="")
tap.is_(replies["joe@example.com"], "250 2.1.5 Ok", "warn_if_reject: accepted")
wait_for(lambda: "reject_warning" in inst.log())
tap.like(inst.log(), r"NOQUEUE: reject_warning: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 <>: Sender address "
         r"rejected: no bounces; from=<> to=<joe@example\.com> proto=ESMTP helo=<outside\.example>",
         "warn_if_reject: logged as reject_warning")
inst.set(smtpd_sender_restrictions="reject_bogus_thing")
replies = rcpt_replies(["joe@example.com"])
tap.is_(replies["joe@example.com"], "451 4.3.5 Server configuration error", "unknown restriction: 451 4.3.5")
wait_for(lambda: 'unknown smtpd restriction: "reject_bogus_thing"' in inst.log())
tap.like(inst.log(), r'warning: unknown smtpd restriction: "reject_bogus_thing"', "unknown restriction logged")
# HELO checks and pipelining (seeds 000, 002, 003)
def helo_session(helo, command="EHLO", pipelined=False):
    c = Client(port)
    c.reply()
    c.cmd("%s %s" % (command, helo))
    if pipelined:
        c.send("MAIL FROM:<a@elsewhere.org>\r\nRCPT TO:<joe@example.com>\r\n")
        c.reply()
        r = c.reply()
    else:
        c.cmd("MAIL FROM:<a@elsewhere.org>")
        r = c.cmd("RCPT TO:<joe@example.com>")
    c.close()
    return r


inst.set(smtpd_sender_restrictions="", smtpd_helo_restrictions="reject_invalid_helo_hostname")
tap.is_(helo_session("bad!host"), "501 5.5.2 <bad!host>: Helo command rejected: Invalid name", "reject_invalid_helo_hostname")
tap.is_(helo_session("good-host.example"), "250 2.1.5 Ok", "a valid HELO name passes")
tap.is_(helo_session("[192.0.2.1]"), "250 2.1.5 Ok", "an address literal is a valid HELO name")
inst.set(smtpd_helo_restrictions="permit_naked_ip_address, reject_non_fqdn_helo_hostname")
tap.is_(helo_session("192.0.2.1"), "250 2.1.5 Ok", "permit_naked_ip_address")
tap.is_(helo_session("localhost"), "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        "reject_non_fqdn_helo_hostname")
inst.set(smtpd_helo_restrictions="", smtpd_client_restrictions="reject_unauth_pipelining")
tap.is_(helo_session("old.example", command="HELO", pipelined=True),
        "503 5.5.0 <unknown[127.0.0.1]>: Client host rejected: Improper use of SMTP command pipelining",
        "reject_unauth_pipelining: a HELO client that pipelines")
tap.is_(helo_session("new.example", pipelined=True), "250 2.1.5 Ok", "reject_unauth_pipelining: EHLO clients may pipeline MAIL and RCPT")
inst.set(smtpd_client_restrictions="permit_tls_clientcerts, permit_sasl_authenticated, reject")
tap.like(helo_session("x.example"), r"^554 5\.7\.1 ", "permit_tls_clientcerts and permit_sasl_authenticated do not permit a client without TLS or AUTH")
inst.set(smtpd_client_restrictions="check_address_map")
tap.is_(helo_session("x.example"), "451 4.3.5 Server configuration error",
        "a restriction name Postfix's smtpd does not know either: 451 4.3.5, as Postfix")
wait_for(lambda: "unknown smtpd restriction" in inst.log())
tap.like(inst.log(), r'warning: unknown smtpd restriction: "check_address_map"', "and the log says so, in Postfix's words")

inst.set(smtpd_sender_restrictions="", smtpd_helo_restrictions="", smtpd_delay_reject="no", smtpd_client_restrictions="reject")
c = Client(port)
tap.is_(c.reply(), "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied",
        "smtpd_delay_reject = no: the client is refused at connect, in place of the greeting (as Postfix 3.7)")
tap.is_(c.cmd("MAIL FROM:<a@b.example>"), "503 5.7.0 Error: access denied for unknown[127.0.0.1]",
        "... and every later command is answered 503 (t/33 compares more with Postfix)")
c.close()

inst.stop()
tap.done()
