#!/usr/bin/env python3
# postern-smtpd and SMTP smuggling: a message ends only on <CR><LF>.<CR><LF>.
# <LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>, <CR>.<CR> and the like are text of
# the same message, so a second message slipped into the first never becomes
# a message of its own.  Bare LF: normalized (default), or refused with
# smtpd_forbid_bare_newline = reject (except for
# smtpd_forbid_bare_newline_exclusions).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance, wait_for

inst = Instance({"smtpd_hard_error_limit": "100"})
port = inst.listen()

SMUGGLED = (b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
            b"From: admin@example.com\r\nSubject: smuggled\r\n\r\nevil\r\n")

variants = {
    "<LF>.<LF>": b"\n.\n",
    "<LF>.<CR><LF>": b"\n.\r\n",
    "<CR><LF>.<LF>": b"\r\n.\n",
    "<CR>.<CR>": b"\r.\r",
    "<CR>.<CR><LF>": b"\r.\r\n",
    "<CR><LF>.<CR>": b"\r\n.\r",
    "<CR><LF>.<CR><CR><LF>": b"\r\n.\r\r\n",
    "<CR><LF><SP>.<CR><LF>": b"\r\n .\r\n",
}

for name, ending in variants.items():
    before = len(inst.captured())
    c = Client(port)
    c.reply()
    c.cmd("EHLO attacker.example")
    c.cmd("MAIL FROM:<user@example.org>")
    c.cmd("RCPT TO:<joe@example.com>")
    tap.is_(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>", "%s: DATA" % name)
    c.send(b"Subject: first\r\n\r\nhello" + ending + SMUGGLED + b".\r\n")
    r = c.reply()
    tap.like(r, r"^250 2\.0\.0 Ok: queued as", "%s: one message accepted at the real end" % name)
    tap.is_(c.cmd("NOOP"), "250 2.0.0 Ok", "%s: no further replies: the smuggled commands were text" % name)
    c.close()
    got = inst.captured()[before:]
    tap.is_(len(got), 1, "%s: exactly one message stored" % name)
    if got:
        msg, env = got[0]
        tap.ok(b"Subject: smuggled" in msg and b"MAIL FROM:<admin@example.com>" in msg,
               "%s: the smuggled part stays inside the first message" % name)
        tap.is_([e for e in env if e[0] == "T"], ["Tjoe@example.com"], "%s: only the real recipient" % name)

# the intended end of data in a pipelined second transaction works
c = Client(port)
c.reply()
c.cmd("EHLO x")
before = len(inst.captured())
c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nSubject: 1\r\n\r\none\r\n.\r\n" + SMUGGLED + b".\r\n")
replies = [c.reply() for _ in range(8)]
tap.is_(sum(1 for r in replies if r and r.startswith("250 2.0.0 Ok: queued")), 2,
        "two honest messages pipelined in one write: two queued")
tap.is_(len(inst.captured()) - before, 2, "two messages stored")
c.close()

# bare LF normalized (the default): lines end there; CR alone is text
c = Client(port)
c.reply()
c.cmd("EHLO x")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<joe@example.com>")
c.cmd("DATA")
c.send(b"Subject: lf\nX-Test: 1\r\n\r\na\nb\rc\r\n.\r\n")
tap.like(c.reply(), r"^250 2\.0\.0 Ok", "bare LF lines accepted (normalize)")
msg = inst.captured()[-1][0]
tap.ok(msg.endswith(b"Subject: lf\nX-Test: 1\n\na\nb\rc\n"), "bare LF ends a line, bare CR kept as text")

# long lines and CR LF split across the reader's chunks
long_line = b"x" * 8191
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<joe@example.com>")
c.cmd("DATA")
c.send(b"Subject: long\r\n\r\n" + long_line + b"\r\n" + long_line + b"\ry\r\n" + b"z" * 20000 + b"\r\n.\r\n")
tap.like(c.reply(), r"^250 2\.0\.0 Ok", "long lines accepted")
msg = inst.captured()[-1][0]
tap.ok(msg.endswith(b"Subject: long\n\n" + long_line + b"\n" + long_line + b"\ry\n" + b"z" * 20000 + b"\n"),
       "CR LF split at a chunk boundary is one line end; a CR there without LF is text")
c.close()

# smtpd_forbid_bare_newline = reject
inst.set(smtpd_forbid_bare_newline="reject", smtpd_forbid_bare_newline_exclusions="")
before = len(inst.captured())
c = Client(port)
c.reply()
c.cmd("EHLO x")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<joe@example.com>")
c.cmd("DATA")
c.send(b"Subject: lf\r\n\r\nhello\n.\r\n")
tap.is_(c.reply(), "550 5.5.2 mx.example.com Error: bare <LF> received", "reject: bare LF in DATA refused")
tap.ok(c.closed(), "reject: and the session ends")
c.close()
tap.is_(len(inst.captured()), before, "reject: nothing stored")
c = Client(port)
c.reply()
c.send(b"EHLO x\n")
tap.is_(c.reply(), "550 5.5.2 mx.example.com Error: bare <LF> received", "reject: a command ending in bare LF")
c.close()
inst.set(smtpd_forbid_bare_newline_exclusions="127.0.0.0/8", smtpd_forbid_bare_newline_reject_code="521")
c = Client(port)
c.reply()
c.send(b"EHLO x\n")
tap.like(c.reply(), r"^250-mx\.example\.com", "reject: clients in smtpd_forbid_bare_newline_exclusions are normalized")
inst.set(smtpd_forbid_bare_newline_exclusions="10.0.0.0/8")
c = Client(port)
c.reply()
c.send(b"EHLO x\n")
tap.is_(c.reply(), "521 5.5.2 mx.example.com Error: bare <LF> received",
        "smtpd_forbid_bare_newline_reject_code")
c.close()
wait_for(lambda: "bare <LF> received from" in inst.log())
tap.like(inst.log(), r"disconnect: bare <LF> received from unknown\[127\.0\.0\.1\]", "log: bare LF refusal")

# garbage: random bytes mixed with command words never crash smtpd (run
# under ASan/UBSan by `make check SANITIZE=1`)
import random
random.seed(4242)
words = [b"EHLO x", b"HELO", b"MAIL FROM:<", b"RCPT TO:<a@example.com>", b"DATA", b"BDAT 5",
         b"BDAT 3 LAST", b"\r\n.\r\n", b"\n.\n", b"RSET", b"VRFY", b"ETRN a", b"XCLIENT ADDR=1.2.3.4",
         b"NOTIFY=", b"ORCPT=rfc822;+", b"SIZE=99999999999999999999", b"\x00", b"\r", b"\n", b"<>", b"\"", b"%!@:"]
inst.set(smtpd_forbid_bare_newline="normalize", smtpd_hard_error_limit="1000", smtpd_timeout="5s")
crashes = []
for i in range(150):
    parts = []
    for _ in range(random.randint(1, 40)):
        if random.random() < 0.6:
            parts.append(random.choice(words))
        else:
            parts.append(bytes(random.getrandbits(8) for _ in range(random.randint(0, 30))))
        parts.append(random.choice([b"\r\n", b"\n", b" ", b""]))
    r = tap.run(inst.argv(), input=b"".join(parts), env={"TCPREMOTEIP": "192.0.2.%d" % (i % 250)}, timeout=30)
    if r.returncode != 0 or r.stderr:
        crashes.append((i, r.returncode, r.stderr[-300:]))
tap.is_(crashes, [], "150 sessions of garbage: no crash, no sanitizer report")

inst.stop()
tap.done()
