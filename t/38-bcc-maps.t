#!/usr/bin/env python3
# sender_bcc_maps, recipient_bcc_maps and always_bcc: a copy for each
# address they name, over SMTP and from sendmail; the copies get no
# delivery status notifications (NOTIFY=NEVER, as Postfix's cleanup).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "sender_bcc"), "boss@example.org sbcc@example.com\n")
tap.write(os.path.join(d, "recipient_bcc"), "@example.com rbcc@example.com\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("sender_bcc_maps = texthash:%s/sender_bcc\n" % d)
    f.write("recipient_bcc_maps = texthash:%s/recipient_bcc\n" % d)
    f.write("always_bcc = abcc@example.com\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
r = inst.postern("check")
tap.unlike(r.stderr, r"bcc", "postern check no longer names the bcc parameters") or tap.diag(r.stderr)
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])

c = Client(smtpd.port)
c.reply()
c.cmd("EHLO client.example")
c.cmd("MAIL FROM:<boss@example.org>")
c.cmd("RCPT TO:<alice@example.com>")
c.cmd("DATA")
c.send(b"Subject: one\r\n\r\nbody\r\n.\r\n")
tap.like(c.reply(), r"^250 2\.0\.0 Ok: queued as ", "queued")
c.cmd("QUIT")
for who in ("alice", "sbcc", "rbcc", "abcc"):
    tap.is_(len(inst.wait_for(who)), 1, "%s got the message" % who)
tap.ok(tap.wait_until(lambda: re.search(r"[0-9A-F]+: to=<abcc@example\.com>, relay=", inst.log()),
                      timeout=15), "the always_bcc copy is logged as a recipient of the same message")

r = inst.sendmail(["-f", "me@example.com", "bob@example.com"], b"Subject: two\n\nbody\n")
tap.is_(r.returncode, 0, "sendmail") or tap.diag(r.stderr)
tap.is_(len(inst.wait_for("bob")), 1, "bob got it")
tap.is_(len(inst.wait_for("abcc", 2)), 2, "sendmail: always_bcc too")
tap.is_(len(inst.wait_for("rbcc", 2)), 2, "and recipient_bcc_maps")
tap.is_(len(inst.delivered("sbcc")), 1, "sender_bcc_maps only for its sender")

# the copies get NOTIFY=NEVER: postern-rewrite from a shell shows the envelope
_, records, err = inst.rewrite(b"Fboss@example.org\0Tdan@example.com\0\0", b"Subject: four\n\nbody\n")
tap.is_([r for r in records if r[:1] in ("T", "P")],
        ["Tdan@example.com", "Tsbcc@example.com", "PNOTIFY=NEVER", "Trbcc@example.com", "PNOTIFY=NEVER",
         "Tabcc@example.com", "PNOTIFY=NEVER"],
        "the copies are added with NOTIFY=NEVER") or tap.diag(err)

# postern's own mail (internal=: bounces, notices, alias and .forward
# copies) gets no copies, as Postfix's cleanup adds none to its internal mail
_, records, err = inst.rewrite(b"F\0Ainternal=bounce\0Tboss@example.com\0\0", b"Subject: notice\n\nbody\n")
tap.is_([r for r in records if r[:1] in ("T", "P")], ["Tboss@example.com"],
        "a bounce gets no always_bcc or recipient_bcc_maps copy") or tap.diag(err)
smtpd.stop()
inst.stop()
tap.done()
