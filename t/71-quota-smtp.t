#!/usr/bin/env python3
# Quotas as the sender and the administrator see them, the whole way
# (smtpd, queue, qmgr, postern-virtual) with seed 000's quota settings:
# mail for a user over quota is accepted, then deferred (4.2.2) with the
# seed's message while virtual_overquota_bounce = no, or bounced (5.2.2) to
# the sender with it when yes; mail to others is unaffected; the log lines
# are Postfix-VDA's.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

SEED_MESSAGE = "Sorry, the recipients mailbox is currently full. Please try again later."

inst = new_instance("--domain", "example.com")
maincf = os.path.join(inst.dir, "main.cf")
tap.write(os.path.join(inst.dir, "quota"), "bob@example.com 6000\n")


def settings(bounce):
    text = re.sub(r"(?ms)^# quota settings.*", "", open(maincf).read())
    tap.write(maincf, text + f"""# quota settings (seed 000's, its pgsql table as texthash)
virtual_mailbox_limit_maps = texthash:{inst.dir}/quota
virtual_mailbox_limit_inbox = no
virtual_mailbox_limit_override = yes
virtual_maildir_extended = yes
virtual_overquota_bounce = {bounce}
virtual_maildir_limit_message = {SEED_MESSAGE}
virtual_trash_count = no
virtual_trash_name = .Trash
virtual_maildir_filter = no
mailbox_size_limit = 0
message_size_limit = 20971520
""")


settings("no")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
r = inst.postern("check")
tap.unlike(r.stdout + r.stderr, r"virtual_(mailbox_limit|maildir|overquota|trash)",
           "postern check reports none of seed 000's quota settings") or tap.diag(r.stdout + r.stderr)

smtpd = Listener([tap.prog("postern-smtpd"), "-c", inst.dir])


def send(rcpts, subject, size=1500):
    c = Client(smtpd.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@example.com>")
    answers = [c.cmd("RCPT TO:<%s>" % rcpt) for rcpt in rcpts]
    c.cmd("DATA")
    c.send(b"Subject: " + subject.encode() + b"\r\n\r\n" + b"x" * size + b"\r\n.\r\n")
    end = c.reply()
    c.cmd("QUIT")
    return answers, end


def log_has(pattern, timeout=20):
    tap.wait_until(lambda: re.search(pattern, inst.log()), timeout)
    return re.search(pattern, inst.log())


for i in range(3):
    answers, end = send(["bob@example.com"], f"fill {i}")
    tap.like(end, r"^250 ", f"message {i + 1} accepted")
tap.is_(len(inst.wait_for("bob", 3)), 3, "three messages of some 1800 bytes fit in bob's 6000")
answers, end = send(["bob@example.com", "alice@example.com"], "too much")
tap.is_(answers, ["250 2.1.5 Ok", "250 2.1.5 Ok"], "over quota is not an SMTP refusal: RCPT accepted")
tap.like(end, r"^250 2\.0\.0 Ok: queued as ", "the message is queued")
m = log_has(r"to=<bob@example\.com>, relay=virtual, delay=[\d.]+, delays=[\d./]+, dsn=4\.2\.2, "
            r"status=deferred \(maildir delivery failed: " + re.escape(SEED_MESSAGE) + r"\)")
tap.ok(m, "bob: deferred, 4.2.2, with the seed's message, in Postfix-VDA's log line") or \
    tap.diag(inst.log()[-2000:])
tap.is_(len(inst.wait_for("alice", 1)), 1, "alice, in the same message, got it")
tap.is_(len(inst.delivered("bob")), 3, "bob's Maildir still holds three")
tap.ok(tap.wait_until(lambda: inst.queue_counts()["deferred"] == 1), "the message waits in deferred/")
r = inst.sendmail(["-bp"], b"")
tap.like(r.stdout, re.escape(SEED_MESSAGE), "mailq shows why") or tap.diag(r.stdout)

# ---- virtual_overquota_bounce = yes ----
inst.stop()
settings("yes")
r = inst.start()
tap.is_(r.returncode, 0, "restarted with virtual_overquota_bounce = yes")
answers, end = send(["bob@example.com"], "bounce me")
tap.like(end, r"^250 ", "accepted")
m = log_has(r"to=<bob@example\.com>, relay=virtual, delay=[\d.]+, delays=[\d./]+, dsn=5\.2\.2, "
            r"status=bounced \(maildir delivery failed: " + re.escape(SEED_MESSAGE) + r"\)")
tap.ok(m, "bob: bounced, 5.2.2, with the seed's message") or tap.diag(inst.log()[-2000:])
# (the deferred message, tried again after the restart, bounces as well)
tap.wait_until(lambda: any(b"Subject: bounce me" in m for m in inst.delivered("sender")))
got = [m for m in inst.delivered("sender") if b"Subject: bounce me" in m]
tap.is_(len(got), 1, "the sender got a non-delivery notice")
report = got[0].decode(errors="replace") if got else ""
tap.like(report, r"(?m)^Status: 5\.2\.2", "the notice says 5.2.2")
tap.like(report, r"(?m)^Final-Recipient: rfc822; bob@example\.com", "... for bob")
tap.like(report, r"Diagnostic-Code: X-postern; maildir delivery failed: " +
         re.escape(SEED_MESSAGE).replace(r"\ ", r"\s+"), "... with the seed's message")
answers, end = send(["alice@example.com"], "still fine")
tap.is_(len(inst.wait_for("alice", 2)), 2, "mail to others is unaffected")

smtpd.stop()
inst.stop()
tap.done()
