#!/usr/bin/env python3
# relocated_maps (relocated(5)) with seed 004's table: smtpd refuses a
# relocated recipient at RCPT with 550 5.1.6 "User has moved to ...",
# whatever its address class, as Postfix 3.7 answers
# (t/data/postfix-3.7-relocated.txt); mail that reaches the queue another
# way (sendmail) bounces with 5.1.6 and the same text.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "relocated"), """\
andy@nasa.cs.nctu.edu.tw  andyliu@abc.com
liuyh EC319, NCTU, ROC
@nabsd.cs.nctu.edu.tw zfs.cs.nctu.edu.tw
gone@example.com new@elsewhere.example
""")
maincf = os.path.join(d, "main.cf")
tap.write(maincf, re.sub(r"(?m)^myorigin = .*$", "myorigin = example.com", open(maincf).read()))
with open(maincf, "a") as f:
    f.write("relocated_maps = texthash:%s/relocated\nrecipient_delimiter = +\n" % d)
    f.write("mynetworks = 127.0.0.0/8\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
tap.unlike(inst.postern("check").stderr, r"relocated_maps", "postern check no longer reports relocated_maps")

smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
c = Client(smtpd.port)
c.reply()
c.cmd("EHLO client.example")
c.cmd("MAIL FROM:<x@example.org>")
for rcpt, want in [
    ("gone@example.com", "550 5.1.6 <gone@example.com>: Recipient address rejected: User has moved to new@elsewhere.example"),
    ("gone+ext@example.com", "550 5.1.6 <gone+ext@example.com>: Recipient address rejected: User has moved to new@elsewhere.example"),
    ("andy@nasa.cs.nctu.edu.tw", "550 5.1.6 <andy@nasa.cs.nctu.edu.tw>: Recipient address rejected: User has moved to andyliu@abc.com"),
    ("someone@nabsd.cs.nctu.edu.tw", "550 5.1.6 <someone@nabsd.cs.nctu.edu.tw>: Recipient address rejected: User has moved to zfs.cs.nctu.edu.tw"),
    ("liuyh@example.com", "550 5.1.6 <liuyh@example.com>: Recipient address rejected: User has moved to EC319, NCTU, ROC"),
    ("alice@example.com", "250 2.1.5 Ok"),
]:
    tap.is_(c.cmd("RCPT TO:<%s>" % rcpt), want, "RCPT %s" % rcpt)
c.cmd("QUIT")
smtpd.stop()

# sendmail: queued, then bounced by the error transport
r = inst.sendmail(["-f", "me", "gone@example.com"], b"Subject: to the relocated\n\nbody\n")
tap.is_(r.returncode, 0, "sendmail accepts it") or tap.diag(r.stderr)
got = inst.wait_for("me")
report = got[0].decode("utf-8", "replace") if got else ""
tap.like(report, r"(?m)^Status: 5\.1\.6$", "the sender gets a bounce with 5.1.6")
tap.like(report, r"User has moved to new@elsewhere\.example", "saying where the user went")
end = time.time() + 10
while time.time() < end and "dsn=5.1.6" not in inst.log():
    time.sleep(0.05)
tap.like(inst.log(), r"to=<gone@example\.com>, relay=none, .*dsn=5\.1\.6, status=bounced \(User has moved to new@elsewhere\.example\)",
         "logged as Postfix logs the error transport")
inst.stop()
tap.done()
