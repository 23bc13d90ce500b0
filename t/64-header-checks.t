#!/usr/bin/env python3
# header_checks and body_checks (regexp tables of t/data/): REJECT reaches
# the SMTP client as 550 5.7.1 text (451 with a 4.x.x text) through the
# status channel, and sendmail as a failure; WARN, INFO, IGNORE, REPLACE,
# PREPEND, DUNNO on headers (folded ones matched and kept whole) and body
# lines; the message lands as Postfix 3.7 delivered it
# (t/data/postfix-3.7-header-checks.txt).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

inst = new_instance("--domain", "example.com")
# the tables are copied into the instance: as root the daemons run as mail,
# which cannot read a clone in /root (0700)
data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    for table in ("header_checks", "body_checks"):
        copy = tap.write(os.path.join(inst.dir, table + ".regexp"),
                         open(os.path.join(data, table + ".regexp")).read())
        f.write("%s = regexp:%s\n" % (table, copy))
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)

smtpd = Listener([tap.prog("postern-smtpd"), "-c", inst.dir])


def send(message, rcpt="rcpt@example.com"):
    c = Client(smtpd.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<x@example.org>")
    c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    c.send(message.replace("\n", "\r\n").encode() + b".\r\n")
    answer = c.reply()
    c.cmd("QUIT")
    return answer


tap.is_(send("Subject: reject me\n\nbody\n", "a@example.com"), "550 5.7.1 no thanks", "header REJECT with text")
tap.is_(send("Subject: defer me\n\nbody\n", "a@example.com"), "451 4.7.1 later please", "header REJECT with 4.7.1: deferred")
tap.is_(send("Subject: plain reject\n\nbody\n", "a@example.com"), "550 5.7.1 message content rejected",
        "REJECT without text")
tap.is_(send("Subject: ok\n\nbad body line here\n", "a@example.com"), "550 5.7.1 body says no", "body REJECT")
log = inst.log()
tap.like(log, r"reject: header Subject: plain reject from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<a@example\.com> "
              r"proto=ESMTP helo=<client\.example>: 5\.7\.1 message content rejected", "the reject is logged as Postfix's cleanup logs it")
tap.like(log, r"reject: body bad body line here from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<a@example\.com> proto=ESMTP helo=<client\.example>: 5\.7\.1 body says no",
         "and the body reject")
tap.like(send("Subject: folded\n\tcontinued\nX-Drop: a\nX-Warn: b\nX-Info: c\nX-Old: value\n\tmore\nX-Pre: d\nX-Dunno: e\n\n"
              "first\ndrop this line\nold body text\nmark\nlast\n"), r"^250 2\.0\.0 Ok: queued as ", "queued")
got = inst.wait_for("rcpt")
msg = got[0].decode("utf-8", "replace") if got else ""
head, _, body = msg.partition("\n\n")
head = re.sub(r"(?m)^(Return-Path|Received|Delivered-To|X-Original-To|Message-Id|Date):.*\n(\s.*\n)*", "", head + "\n")
tap.is_(head, "X-Folded-Seen: yes\nSubject: folded\n\tcontinued\nX-Warn: b\nX-Info: c\nX-New: value\n\tmore\n"
              "X-Added: yes\nX-Pre: d\nX-Dunno: e\nFrom: x@example.org\n",
        "headers as Postfix: PREPEND on a folded header, IGNORE, WARN, INFO, REPLACE keeps the fold, DUNNO")
tap.is_(body, "first\nnew body text\ninserted line\nmark\nlast\n", "body as Postfix: IGNORE, REPLACE, PREPEND")
log = inst.log()
tap.like(log, r"warning: header X-Warn: b from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<rcpt@example\.com> proto=ESMTP helo=<client\.example>: watch this", "WARN logged")
tap.like(log, r"info: header X-Info: c from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<rcpt@example\.com> proto=ESMTP helo=<client\.example>: noted", "INFO logged")
tap.like(log, r"prepend: header Subject: folded\?\?continued from ", "a folded header is matched whole")

# sendmail: postern-rewrite refuses the same way
r = inst.sendmail(["-f", "me", "b@example.com"], b"Subject: reject me\n\nbody\n")
tap.isnt(r.returncode, 0, "sendmail: a header REJECT fails the submission")
tap.like(r.stderr, r"no thanks", "and says why") or tap.diag(r.stderr)
tap.is_(inst.delivered("a") + inst.delivered("b"), [], "nothing rejected was delivered")
smtpd.stop()
inst.stop()
tap.done()
