#!/usr/bin/env python3
# access(5) actions in smtpd's restrictions that act on the message:
# DISCARD, HOLD, REDIRECT, FILTER, BCC, PREPEND, INFO, WARN, with the
# replies and "NOQUEUE: hold: RCPT from ..." lines of Postfix 3.7
# (t/data/postfix-3.7-actions.txt).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Listener, transaction

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "access"), """\
u3@example.com DISCARD rcpt discard
u4@example.com HOLD rcpt hold
u5@example.com REDIRECT u1@example.com
u6@example.com FILTER error:5.7.0 filtered by access
u7@example.com PREPEND X-Access: yes
u8@example.com BCC u2@example.com
u9@example.com INFO access info
u10@example.com WARN access warn
u11@example.com DISCARD
u12@example.com HOLD
""")
tap.write(os.path.join(d, "saccess"), "held@example.org HOLD\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("smtpd_recipient_restrictions = check_recipient_access texthash:%s/access, "
            "permit_mynetworks, reject_unauth_destination\n" % d)
    f.write("smtpd_sender_restrictions = check_sender_access texthash:%s/saccess\n" % d)
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])


def send(rcpts, sender="x@example.org", subject="acc"):
    return transaction(smtpd.port, sender, rcpts, "Subject: %s\n\nbody\n" % subject)


def wait_log(pattern, what):
    ok = tap.wait_until(lambda: re.search(pattern, inst.log(), re.M), timeout=15)
    return tap.ok(ok, what) or tap.diag(inst.log()[-3000:])


def noqueue(action, rcpt, text, sender="x@example.org"):
    return (r"NOQUEUE: %s: RCPT from localhost\[127\.0\.0\.1\]: %s; from=<%s> to=<%s> proto=ESMTP "
            r"helo=<client\.example>$" % (action, text, re.escape(sender), re.escape(rcpt)))


answers, answer, qid = send(["u3@example.com", "rcpt@example.com"], subject="discarded")
tap.is_(answers, ["250 2.1.5 Ok", "250 2.1.5 Ok"], "DISCARD: RCPT is accepted")
tap.ok(qid, "and the message: 250 queued as ID") or tap.diag(answer)
wait_log(noqueue("discard", "u3@example.com", r"<u3@example\.com>: Recipient address rcpt discard"),
         "DISCARD logged as Postfix's smtpd logs it")
answers, answer, qid = send(["u11@example.com"], subject="discarded too")
wait_log(noqueue("discard", "u11@example.com", r"<u11@example\.com>: Recipient address triggers DISCARD action"),
         "DISCARD without text")

answers, answer, hold_id = send(["u4@example.com"])
wait_log(noqueue("hold", "u4@example.com", r"<u4@example\.com>: Recipient address rcpt hold"), "HOLD logged")
tap.ok(tap.wait_until(lambda: os.path.exists(os.path.join(d, "queue", "hold", hold_id or "-")), timeout=15),
       "HOLD: the message waits in hold/")
answers, answer, hold2 = send(["rcpt@example.com"], sender="held@example.org")
wait_log(noqueue("hold", "rcpt@example.com", r"<held@example\.org>: Sender address triggers HOLD action",
                 sender="held@example.org"), "a sender HOLD without text: 'Sender address triggers HOLD action'")
tap.ok(tap.wait_until(lambda: os.path.exists(os.path.join(d, "queue", "hold", hold2 or "-")), timeout=15),
       "and it is held")

answers, answer, rid = send(["u5@example.com"])
wait_log(noqueue("redirect", "u5@example.com", r"<u5@example\.com>: Recipient address triggers REDIRECT u1@example\.com"),
         "REDIRECT logged")
tap.is_(len(inst.wait_for("u1")), 1, "REDIRECT: u1 got it")
wait_log(r"%s: to=<u1@example\.com>, orig_to=<u5@example\.com>, relay=" % rid, "with orig_to in the delivery line")

answers, answer, fid = send(["u6@example.com"])
wait_log(noqueue("filter", "u6@example.com",
                 r"<u6@example\.com>: Recipient address triggers FILTER error:5\.7\.0 filtered by access"),
         "FILTER logged")
wait_log(r"%s: to=<u6@example\.com>, relay=none, .*status=bounced \(filtered by access\)" % fid,
         "FILTER routes the message")

answers, answer, pid = send(["u7@example.com"])
got = inst.wait_for("u7")
head = got[0].decode() if got else ""
tap.like(head, r"(?m)^X-Access: yes\nReceived: from client\.example", "PREPEND: the header before Received, as Postfix")

answers, answer, bid = send(["u8@example.com"])
wait_log(noqueue("bcc", "u8@example.com", r"<u8@example\.com>: Recipient address triggers BCC u2@example\.com"),
         "BCC logged")
tap.is_((len(inst.wait_for("u8")), len(inst.wait_for("u2"))), (1, 1), "BCC: both got it")

send(["u9@example.com"])
wait_log(noqueue("info", "u9@example.com", "access info"), "INFO: the text alone")
send(["u10@example.com"])
wait_log(noqueue("warn", "u10@example.com", "access warn"), "WARN: the text alone")

# what was discarded never arrived; the held ones wait
send(["rcpt@example.com"], subject="last")
got = inst.wait_for("rcpt")
tap.is_([re.search(r"(?m)^Subject: (.*)$", m.decode()).group(1) for m in got], ["last"],
        "rcpt got only the last message (DISCARD applies to every recipient)")
tap.is_(inst.delivered("u3") + inst.delivered("u11") + inst.delivered("u4"), [],
        "nothing discarded or held was delivered")
smtpd.stop()
inst.stop()
tap.done()
