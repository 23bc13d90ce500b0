#!/usr/bin/env python3
# postern-smtpd runs rewrite in-process (DESIGN.md, Privileges): a message
# through smtpd is rewritten as postern-rewrite did it - `sendmail -bs`
# gets its addresses qualified and its missing headers, Bcc is dropped, a
# recipient given twice gets one copy, a mail loop is refused with 5.4.6
# counting smtpd's own Received header - and smtpd never starts
# postern-rewrite: daemon_directory holds one that refuses everything.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import NEEDED, Instance
from smtpdtest import Client, Listener

tap.require(NEEDED)

inst = Instance("--domain", "example.com")
if not tap.is_(inst.init.returncode, 0, "postern init"):
    tap.diag(inst.init.stderr)
    tap.done()

# daemon_directory: every program, but a postern-rewrite that refuses all
# mail (and leaves a mark), so that a message queued proves smtpd did not
# start it
libexec = os.path.join(os.path.dirname(inst.dir), "libexec")
os.makedirs(libexec)
bindir = os.path.dirname(tap.prog("postern-smtpd"))
for name in os.listdir(bindir):
    if name != "postern-rewrite":
        os.symlink(os.path.join(bindir, name), os.path.join(libexec, name))
mark = os.path.join(os.path.dirname(inst.dir), "rewrite-was-run")
tap.write(os.path.join(libexec, "postern-rewrite"),
          "#!/bin/sh\n: > '%s'\nprintf 'Z4.3.0 postern-rewrite must not run\\0' >&3\nexit 71\n" % mark, 0o755)
maincf = os.path.join(inst.dir, "main.cf")
conf = open(maincf).read()
for name, value in (("daemon_directory", libexec), ("myorigin", "example.com"), ("mydomain", "example.com")):
    conf = re.sub(r"(?m)^%s = .*$" % name, "%s = %s" % (name, value), conf)
tap.write(maincf, conf)
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)

# ---- sendmail -bs (smtpd -S): a local submission, rewritten ----
r = inst.sendmail(["-bs"], b"HELO local\r\nMAIL FROM:<me>\r\nRCPT TO:<alice>\r\nRCPT TO:<alice@example.com>\r\n"
                           b"DATA\r\nSubject: local\r\nTo: alice\r\nBcc: hidden@example.com\r\n\r\nbody\r\n.\r\nQUIT\r\n")
tap.like(r.stdout, r"\n250 2\.0\.0 Ok: queued as [0-9A-F]+\r?\n221 ", "sendmail -bs: queued") or tap.diag(r.stdout + r.stderr)
got = inst.wait_for("alice")
msg = got[0].decode("utf-8", "replace") if got else ""
tap.like(msg, r"(?m)^Return-Path: <me@example\.com>$", "the unqualified sender is qualified (myorigin)")
tap.like(msg, r"(?m)^Received: by localhost \(postern, from userid %d\);$" % os.getuid(),
         "the local Received line")
tap.unlike(msg, r"(?m)^Received: from ", "and no Received line of smtpd's own")
tap.like(msg, r"(?m)^To: alice@example\.com$", "the To: address is qualified")
tap.like(msg, r"(?m)^Message-Id: <[^>]+@localhost>$", "a missing Message-Id is added")
tap.like(msg, r"(?m)^Date: \w{3}, ", "a missing Date is added")
tap.like(msg, r"(?m)^From: me@example\.com$", "a missing From is added")
tap.unlike(msg, r"(?m)^Bcc:", "Bcc is removed")
tap.like(msg, r"\n\nbody\n$", "the body follows")
tap.is_(len(inst.wait_for("alice", 2, timeout=1)), 1, "alice and alice@example.com: one copy (duplicate recipient dropped)")

# ---- SMTP from the network: no missing headers added, hop count ----
smtpd = Listener([tap.prog("postern-smtpd"), "-c", inst.dir])


def send(message, rcpt="bob@example.com"):
    c = Client(smtpd.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@example.org>")
    c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    c.send(message.replace(b"\n", b"\r\n") + b".\r\n")
    answer = c.reply()
    c.cmd("QUIT")
    return answer


tap.like(send(b"Subject: remote\nBcc: x@example.org\n\nhello\n"), r"^250 2\.0\.0 Ok: queued as [0-9A-F]+$",
         "SMTP: queued")
got = inst.wait_for("bob")
msg = got[0].decode("utf-8", "replace") if got else ""
tap.like(msg, r"(?m)^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\n\tby localhost \(postern\) with ESMTP\n"
              r"\tfor <bob@example\.com>; ", "SMTP: smtpd's Received header")
# local_header_rewrite_clients = permit_inet_interfaces (Postfix's default):
# a client on this machine gets the missing headers, as Postfix 3.7 adds them
tap.like(msg, r"(?m)^Message-Id: <[^>]+@localhost>$", "SMTP from 127.0.0.1: a missing Message-Id is added")
tap.like(msg, r"(?m)^Date: \w{3}, ", "SMTP from 127.0.0.1: a missing Date is added")
tap.like(msg, r"(?m)^From: sender@example\.org$", "SMTP from 127.0.0.1: a missing From is added")
tap.unlike(msg, r"(?m)^Bcc:", "SMTP: Bcc is removed")

hops = lambda n: b"".join(b"Received: from hop%d by x; Mon, 1 Jan 2024 00:00:00 +0000\n" % i for i in range(n))
tap.is_(send(hops(50) + b"Subject: loop\n\nbody\n", "carol@example.com"), "554 5.4.6 Too many hops",
        "50 Received headers and smtpd's own: more than hopcount_limit 50, refused")
tap.like(inst.log(), r"NOQUEUE: reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 554 5\.4\.6 Too many hops; "
                     r"from=<sender@example\.org> proto=ESMTP helo=<client\.example>", "and logged as a reject")
tap.like(send(hops(49) + b"Subject: not a loop\n\nbody\n", "dave@example.com"), r"^250 2\.0\.0 Ok: queued as ",
         "49 and smtpd's own: queued")
got = inst.wait_for("dave")
tap.is_(len(got), 1, "and delivered")
tap.is_(inst.delivered("carol"), [], "the looping message was not queued")
tap.ok(not os.path.exists(mark), "smtpd never started postern-rewrite")

smtpd.stop()
inst.stop()
tap.done()
