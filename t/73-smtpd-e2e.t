#!/usr/bin/env python3
# postern-smtpd end to end: a self-contained instance (postern init and
# start), SMTP through the real chain (postern-rewrite, postern-queue,
# postern-qmgr, postern-virtual) into Maildirs; the relay tricks refused
# against the real address classes of lib/mail/resolve.c.  Skipped until the
# mail path is built.
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import root_adopt, root_init_options
from smtpdtest import Client, Listener, wait_for

NEEDED = ["postern", "postern-smtpd", "postern-rewrite", "postern-queue", "postern-qmgr", "postern-virtual"]
tap.require(NEEDED)

parent = tap.tempdir()
os.chmod(parent, 0o755)
inst = os.path.join(parent, "inst")
r = tap.run(["postern", "init", inst, "--domain", "example.com", "--port", str(tap.free_port())]
            + root_init_options())
root_adopt(inst)
if not tap.is_(r.returncode, 0, "postern init"):
    tap.diag(r.stderr)
    tap.done()
r = tap.run(["postern", "start", "-c", inst])
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)


def stop_instance():
    tap.run(["postern", "stop", "-c", inst])


import atexit
atexit.register(stop_instance)


def delivered(name):
    new = os.path.join(inst, "mail", name, "Maildir", "new")
    if not os.path.isdir(new):
        return []
    files = sorted(os.listdir(new), key=lambda f: os.stat(os.path.join(new, f)).st_mtime_ns)
    return [open(os.path.join(new, f), "rb").read() for f in files]


smtpd = Listener([tap.prog("postern-smtpd"), "-c", inst])
s = smtplib.SMTP("127.0.0.1", smtpd.port, timeout=30)
s.ehlo("client.example")
refused = s.sendmail("sender@example.org", ["alice@example.com", "bob@example.com"],
                     b"Subject: end to end\r\n\r\nfirst line\r\n.dotted line\r\nlast\r\n")
tap.is_(refused, {}, "smtplib: accepted for two recipients")
code, text = s.docmd("NOOP")
s.quit()
tap.ok(wait_for(lambda: delivered("alice") and delivered("bob"), 20), "delivered into both Maildirs")
msg = (delivered("alice") or [b""])[0].decode("utf-8", "replace")
tap.like(msg, r"(?m)^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\n\tby \S+ \(postern\) with ESMTP;\n\t\w{3}, ",
         "Received header as smtpd wrote it")
tap.like(msg, r"\n\nfirst line\n\.dotted line\nlast\n$", "body with the dot unstuffed")
tap.like(msg, r"(?m)^Return-Path: <sender@example\.org>$", "Return-Path from the envelope")
maillog = os.path.join(inst, "maillog")
# the runner's Maildir file comes before qmgr's status=sent line: wait for the line
wait_for(lambda: __import__("re").search(r": to=<alice@example\.com>, .*status=sent", open(maillog).read()), 20)
log = open(maillog).read()
tap.like(log, r"postern/smtpd\[\d+\]: ([0-9A-F]+): client=localhost\[127\.0\.0\.1\]", "smtpd logs QUEUEID: client=")
qid = __import__("re").search(r"postern/smtpd\[\d+\]: ([0-9A-F]+): client=", log)
if qid:
    tap.like(log, qid.group(1) + r": to=<alice@example\.com>, relay=virtual, .*status=sent",
             "the queue id smtpd answered is the one delivered")
else:
    tap.ok(False, "the queue id smtpd answered is the one delivered")

# routing through our own domain: smtpd accepts what qmgr then delivers
# (one resolver, lib/mail/resolve.c): [127.0.0.1] is ours, so
# carol%example.com@[127.0.0.1] goes to carol@example.com's Maildir
s = smtplib.SMTP("127.0.0.1", smtpd.port, timeout=30)
s.ehlo("client.example")
refused = s.sendmail("sender@example.org", ["carol%example.com@[127.0.0.1]"], b"Subject: routed\r\n\r\nx\r\n")
s.quit()
tap.is_(refused, {}, "smtpd accepts carol%example.com@[127.0.0.1] (the percent hack through our [ip])")
tap.ok(wait_for(lambda: delivered("carol"), 20), "qmgr delivers it to carol@example.com's Maildir")
# the Maildir file comes before qmgr's status=sent line: wait for the line
wait_for(lambda: ": to=<carol@example.com>, orig_to=" in open(maillog).read(), 20)
tap.like(open(os.path.join(inst, "maillog")).read(),
         r": to=<carol@example\.com>, orig_to=<carol%example\.com@\[127\.0\.0\.1\]>, relay=virtual, .*status=sent",
         "logged as Postfix does: to= the routed address, orig_to= the one received")

# BDAT through the real chain
c = Client(smtpd.port)
c.reply()
c.cmd("EHLO chunky.example")
c.cmd("MAIL FROM:<sender@example.org>")
c.cmd("RCPT TO:<carol@example.com>")
body = b"Subject: chunks\r\n\r\none\r\ntwo\r\n"
c.send(b"BDAT %d LAST\r\n" % len(body) + body)
tap.like(c.reply(), r"^250 2\.0\.0 Ok: queued as [0-9A-F]+$", "BDAT LAST queued by postern-queue")
c.cmd("QUIT")
c.close()
tap.ok(wait_for(lambda: delivered("carol"), 20), "BDAT message delivered")

# relay control against lib/mail/resolve.c, from outside mynetworks
outside = Listener([tap.prog("postern-smtpd"), "-c", inst, "-o", "mynetworks=192.0.2.0/24"])
c = Client(outside.port)
c.reply()
c.cmd("EHLO outside.example")
c.cmd("MAIL FROM:<stranger@elsewhere.org>")
for rcpt in ["user@other.org", "user%other.org@example.com", "other.org!user@example.com",
             "@example.com:user@other.org", '"user@other.org"@example.com', "user@[192.0.2.1]",
             "user@other.org."]:
    # example.com is a virtual mailbox domain here: routing in its local
    # part is no route (as in Postfix), just an unknown mailbox
    tap.like(c.cmd("RCPT TO:<%s>" % rcpt),
             r"^(454 4\.7\.1 .*Relay access denied|550 5\.1\.1 .*User unknown in virtual mailbox table)$",
             "not an open relay: %s" % rcpt)
tap.is_(c.cmd("RCPT TO:<dave@example.com>"), "250 2.1.5 Ok", "our virtual domain accepted from outside")
tap.is_(c.cmd("RCPT TO:<dave@EXAMPLE.COM.>"), "250 2.1.5 Ok", "upper case and a trailing dot: still ours")
c.cmd("QUIT")
c.close()

smtpd.stop()
outside.stop()
tap.done()
