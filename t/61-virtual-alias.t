#!/usr/bin/env python3
# virtual_alias_maps expand the recipients at injection (Postfix's
# cleanup): through smtpd (rewrite in-process) and sendmail
# (postern-rewrite), a message for an alias lands in the Maildirs of the
# addresses it expands to, never in one named after the alias; one into
# many, recursion, an address that maps to itself, @domain catch-alls, the
# seed 004 pcre table, extensions (propagate_unmatched_extensions), the
# DSN records of the expanded recipients (ORCPT = the address as given),
# orig_to= in the delivery log, and the limits: a loop or a limit defers
# the message with 451 4.6.0 Alias expansion error, as Postfix answers.
# What Postfix 3.7 did with the same maps: t/data/postfix-3.7-virtual-alias.txt.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

inst = new_instance("--domain", "example.com")

virtual = os.path.join(inst.dir, "virtual")
tap.write(virtual, """\
info@alias.example      alice@example.com, bob@example.com
sales@example.com       carol@example.com
chain@alias.example     hop@alias.example
hop@alias.example       dave@example.com
self@example.com        self@example.com, erin@example.com
loop1@alias.example     loop2@alias.example
loop2@alias.example     loop1@alias.example
plus@alias.example      gina
long@alias.example      a-very-long-local-part-indeed@example.com
@catch.example          frank@example.com
""")
# seed 004's table (virtual_alias_maps = pcre:/usr/local/etc/postfix/virtual)
pcre = os.path.join(inst.dir, "virtual.pcre")
tap.write(pcre, "/^root(\\..+)?@(t)?(cs|np)?bsd\\d*\\.cs\\.nctu\\.edu\\.tw$/  bsdta@example.com\n")
maincf = os.path.join(inst.dir, "main.cf")
tap.write(maincf, re.sub(r"(?m)^myorigin = .*$", "myorigin = example.com", open(maincf).read()))
with open(maincf, "a") as f:
    f.write("virtual_alias_maps = texthash:%s, pcre:%s\n" % (virtual, pcre))
    f.write("virtual_alias_domains = alias.example, catch.example, bsd1.cs.nctu.edu.tw\n")
    f.write("recipient_delimiter = +\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
r = inst.postern("check")
tap.unlike(r.stdout + r.stderr, r"virtual_alias_maps", "postern check no longer reports virtual_alias_maps")

smtpd = Listener([tap.prog("postern-smtpd"), "-c", inst.dir])


def send(rcpts, subject, extra_args=None, port=None):
    """One message over SMTP; the replies to each RCPT and to the DATA end."""
    c = Client(port or smtpd.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@example.org>")
    answers = [c.cmd("RCPT TO:<%s>%s" % (rcpt, extra_args or "")) for rcpt in rcpts]
    if not any(a.startswith("250") for a in answers):
        c.cmd("QUIT")
        return answers, None
    c.cmd("DATA")
    c.send(b"Subject: " + subject.encode() + b"\r\nTo: whoever\r\n\r\nbody\r\n.\r\n")
    end = c.reply()
    c.cmd("QUIT")
    return answers, end


def subjects(name, count=1, timeout=15):
    got = inst.wait_for(name, count, timeout)
    return [re.search(rb"(?m)^Subject: (.*)$", m).group(1).decode() for m in got]


def log_has(pattern, timeout=15):
    """The log, once it matches pattern (delivery logs after the Maildir)."""
    end = time.time() + timeout
    while time.time() < end and not re.search(pattern, inst.log()):
        time.sleep(0.05)
    return inst.log()


queued = r"^250 2\.0\.0 Ok: queued as [0-9A-F]+$"
_, end = send(["info@alias.example"], "one into many")
tap.like(end or "", queued, "SMTP to an alias of a virtual alias domain: queued")
tap.is_(subjects("alice"), ["one into many"], "alice got it")
tap.is_(subjects("bob"), ["one into many"], "bob got it")
tap.ok(not os.path.isdir(inst.maildir("info")), "no mailbox named after the alias")
log = log_has(r"(?s)to=<alice@.*to=<bob@|to=<bob@.*to=<alice@")
tap.like(log, r"to=<alice@example\.com>, orig_to=<info@alias\.example>, relay=virtual.*status=sent",
         "delivery log: to= the expansion, orig_to= the alias")

send(["sales@example.com"], "alias in a mailbox domain")
tap.is_(subjects("carol"), ["alias in a mailbox domain"], "an alias of a virtual mailbox domain is expanded")
tap.ok(not os.path.isdir(inst.maildir("sales")), "and sales got nothing")

send(["chain@alias.example"], "two rounds")
tap.is_(subjects("dave"), ["two rounds"], "recursion: chain -> hop -> dave")

send(["self@example.com"], "self")
tap.is_(subjects("self"), ["self"], "an address that maps to itself keeps its mail")
tap.is_(subjects("erin"), ["self"], "and the other address gets it too")
log = log_has(r"(?s)to=<erin@.*to=<self@|to=<self@.*to=<erin@")
tap.like(log, r"to=<erin@example\.com>, orig_to=<self@example\.com>, ", "erin: orig_to= the alias")
tap.like(log, r"to=<self@example\.com>, relay=", "self: no orig_to (it is the same address), as Postfix logs")

send(["anyone@catch.example"], "catch-all")
tap.is_(subjects("frank"), ["catch-all"], "@domain catch-all")

send(["root@bsd1.cs.nctu.edu.tw"], "seed 004")
tap.is_(subjects("bsdta"), ["seed 004"], "seed 004's pcre table: root@bsd1.cs.nctu.edu.tw -> bsdta")

send(["plus+tag@alias.example"], "extension")
tap.is_(subjects("gina"), ["extension"], "user+ext@domain found as user@domain; unqualified result gets @myorigin")
tap.like(log_has(r"to=<gina"), r"to=<gina\+tag@example\.com>, orig_to=<plus\+tag@alias\.example>",
         "the unmatched extension is propagated (propagate_unmatched_extensions)")

answers, _ = send(["nobody@alias.example"], "unknown")
tap.like(answers[0], r"^550 5\.1\.1 <nobody@alias\.example>: Recipient address rejected: User unknown in virtual alias table",
         "an address of a virtual alias domain without an alias: refused at RCPT")

_, end = send(["loop1@alias.example"], "loop")
tap.is_(end, "451 4.6.0 Alias expansion error", "an alias loop: deferred as Postfix does")
tap.like(inst.log(), r"warning: unreasonable virtual_alias_maps map nesting for loop[12]@alias\.example -- "
                     r"message not accepted, try again later", "and logged as Postfix logs it")

# the limits, each on an smtpd of its own (-o)
def with_setting(setting, rcpt):
    listener = Listener([tap.prog("postern-smtpd"), "-c", inst.dir, "-o", setting])
    _, answer = send([rcpt], "limit", port=listener.port)
    listener.stop()
    return answer


tap.is_(with_setting("virtual_alias_expansion_limit=1", "info@alias.example"), "451 4.6.0 Alias expansion error",
        "virtual_alias_expansion_limit = 1: two addresses are too many")
tap.like(inst.log(), r"unreasonable virtual_alias_maps map expansion size for info@alias\.example",
         "and logged")
tap.like(with_setting("virtual_alias_expansion_limit=2", "info@alias.example"), queued,
         "virtual_alias_expansion_limit = 2: two are fine")
tap.is_(with_setting("virtual_alias_recursion_limit=2", "chain@alias.example"), "451 4.6.0 Alias expansion error",
        "virtual_alias_recursion_limit = 2: chain -> hop -> dave is one round too many")
tap.like(with_setting("virtual_alias_recursion_limit=2", "sales@example.com"), queued,
         "virtual_alias_recursion_limit = 2: one alias is fine")
tap.is_(with_setting("virtual_alias_address_length_limit=20", "long@alias.example"),
        "451 4.6.0 Alias expansion error", "virtual_alias_address_length_limit: a longer result defers")
tap.like(inst.log(), r"unreasonable virtual_alias_maps result a-very-long", "and logged")
tap.is_(len(subjects("alice", 2)), 2, "the message within the limits was delivered")

# sendmail: postern-rewrite expands the same way
r = inst.sendmail(["-f", "me", "info@alias.example"], b"Subject: by sendmail\n\nbody\n")
tap.is_(r.returncode, 0, "sendmail to the alias") or tap.diag(r.stderr)
tap.is_(subjects("alice", 3)[-1], "by sendmail", "sendmail: alice got it")
tap.is_(subjects("bob", 3)[-1], "by sendmail", "sendmail: bob got it")
r = inst.sendmail(["-f", "me", "loop1@alias.example"], b"Subject: loop by sendmail\n\nbody\n")
tap.isnt(r.returncode, 0, "sendmail to an alias loop fails")
tap.like(r.stderr, r"Alias expansion error", "and says why") or tap.diag(r.stderr)

# DSN: the expanded recipients keep NOTIFY, and ORCPT is the address as
# given; the queue file holds the expansion (qmgr stopped: it stays)
r = inst.stop()
tap.is_(r.returncode, 0, "postern stop")
_, end = send(["info@alias.example"], "dsn", extra_args=" NOTIFY=SUCCESS,FAILURE")
tap.like(end or "", queued, "queued with NOTIFY (qmgr stopped)")
queue_id = end.split()[-1] if end else "none"
r = inst.postern("queue", "cat", queue_id)
tap.like(r.stdout, r"recipient: alice@example\.com\noriginal_recipient: rfc822;info@alias\.example\n"
                   r"notify_flags: SUCCESS,FAILURE\nrecipient: bob@example\.com\n"
                   r"original_recipient: rfc822;info@alias\.example\nnotify_flags: SUCCESS,FAILURE\n",
         "the queue file: both expansions, each with NOTIFY and ORCPT") or tap.diag(r.stdout + r.stderr)
_, end = send(["info@alias.example"], "dsn2", extra_args=" ORCPT=rfc822;given@example.net")
queue_id = end.split()[-1] if end else "none"
r = inst.postern("queue", "cat", queue_id)
tap.like(r.stdout, r"recipient: alice@example\.com\noriginal_recipient: rfc822;given@example\.net\n"
                   r"recipient: bob@example\.com\noriginal_recipient: rfc822;given@example\.net\n", "an ORCPT the client gave is kept") or tap.diag(r.stdout)
smtpd.stop()
tap.done()
