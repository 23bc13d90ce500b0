#!/usr/bin/env python3
# postern-lmtp (postern-smtp started as lmtp) against a real Dovecot LMTP
# server that the test starts in its own directory: one reply per
# recipient after DATA, kept as Dovecot gave it.  A user over quota
# bounces 5.2.2 alone, an unknown user 5.1.1 at RCPT, the others are
# delivered; lmtp:unix:/path and lmtp:inet:host:port both work.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from dovecotlmtp import DovecotLMTP, installed as dovecot_installed

tap.require(["postern", "postern-smtp", "postern-lmtp", "postern-qmgr", "postern-bounce"])
if not tap.ok(dovecot_installed(),
              "dovecot and its LMTP server are installed (./deps: dovecot-core, dovecot-lmtpd)"):
    tap.done()

# bob's quota is smaller than any message
dc = DovecotLMTP((("alice", ""), ("carol", ""), ("bob", "userdb_quota_rule=*:storage=10B")), quota=True)
if not tap.ok(dc.start(), "Dovecot's LMTP socket is there"):
    tap.done()
dove, mail, lmtp_port, proc = dc.dir, dc.mail, dc.port, dc.proc

inst = new_instance("--domain", "example.com")
tap.write(os.path.join(inst.dir, "transport"),
          f"lmtp.test lmtp:unix:{dove}/lmtp\n"
          f"inet.test lmtp:inet:127.0.0.1:{lmtp_port}\n")
inst.postern("conf", "-e", f"transport_maps=texthash:{inst.dir}/transport")
tap.is_(inst.start().returncode, 0, "the instance starts")


def log_has(pattern, name, timeout=30):
    tap.wait_until(lambda: re.search(pattern, inst.log()), timeout)
    return tap.like(inst.log(), pattern, name)


r = inst.sendmail(["-f", "sender@example.com", "alice@lmtp.test", "bob@lmtp.test",
                   "nobody@lmtp.test", "carol@lmtp.test"],
                  b"Subject: through LMTP\n\nhello Dovecot\n")
tap.is_(r.returncode, 0, "sendmail") or tap.diag(r.stderr)
relay = re.escape(f"localhost[{dove}/lmtp]")
log_has(rf"to=<alice@lmtp\.test>, relay={relay}, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <alice@lmtp\.test> \S+ Saved\)",
        "alice: sent, with Dovecot's own reply")
log_has(rf"to=<carol@lmtp\.test>, relay={relay}, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <carol@lmtp\.test> \S+ Saved\)",
        "carol too: one reply per recipient after the message (BDAT LAST: Dovecot offers CHUNKING)")
log_has(rf"to=<bob@lmtp\.test>, relay={relay}, .*dsn=5\.2\.2, status=bounced \(host {relay} said: 552 5\.2\.2 "
        rf"<bob@lmtp\.test> Quota exceeded \(mailbox for user is full\) \(in reply to BDAT command\)\)",
        "bob over quota: bounced 5.2.2 alone, the reply kept")
log_has(rf"to=<nobody@lmtp\.test>, relay={relay}, .*dsn=5\.1\.1, status=bounced \(host {relay} said: 550 5\.1\.1 "
        rf"<nobody@lmtp\.test> User doesn't exist: nobody@lmtp\.test \(in reply to RCPT TO command\)\)",
        "an unknown user: 550 5.1.1 at RCPT")


def maildir_new(user):
    new = os.path.join(mail, user, "new")
    return [open(os.path.join(new, f), "rb").read() for f in os.listdir(new)] if os.path.isdir(new) else []


tap.ok(tap.wait_until(lambda: maildir_new("alice") and maildir_new("carol"), 20),
       "alice and carol have the message in their Maildirs")
tap.like((maildir_new("alice") or [b""])[0].decode(), r"hello Dovecot", "with its body")
tap.is_(maildir_new("bob"), [], "bob has nothing")
bounce = inst.wait_for("sender", 1, 30)
text = re.sub(r"\n[ \t]+", " ", bounce[0].decode("utf-8", "replace")) if bounce else ""
tap.like(text, r"Diagnostic-Code: smtp; 552 5\.2\.2 <bob@lmtp\.test> Quota exceeded", "the bounce names the quota reply")
tap.like(text, r"Diagnostic-Code: smtp; 550 5\.1\.1 <nobody@lmtp\.test> User doesn't exist",
         "and the unknown user's")

# lmtp:inet:host:port
r = inst.sendmail(["-f", "sender@example.com", "alice@inet.test"], b"Subject: inet\n\nover TCP\n")
tap.is_(r.returncode, 0, "sendmail to an inet LMTP next hop")
log_has(rf"to=<alice@inet\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{lmtp_port}, .*status=sent \(250 2\.0\.0 <alice@inet\.test>",
        "lmtp:inet:127.0.0.1:PORT delivers")
tap.ok(tap.wait_until(lambda: len(maildir_new("alice")) >= 2, 20), "alice has the second message")

inst.stop()
tap.stop(proc)
tap.done()
