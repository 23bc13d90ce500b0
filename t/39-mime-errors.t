#!/usr/bin/env python3
# The MIME errors of Postfix's cleanup (strict_7bit_headers,
# strict_8bitmime, strict_8bitmime_body, strict_mime_encoding_domain,
# mime_nesting_limit with its report, mime_boundary_length_limit,
# header_size_limit), replayed against postern: each case of
# t/lib/mimecases.py gets the reply the real Postfix 3.7 gave and logs its
# "reject: mime-error ..." lines (t/data/postfix-3.7-mime-errors.txt,
# recorded by bench/postfix-mime-probe; Postfix is not needed here).
# Nothing is decoded: body_checks see what was sent (t/39-mime-checks.t).
# Differences that stay: postern's lines say NOQUEUE (the message was never
# queued) and show bytes outside ASCII as '?'.
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from mimecases import BASE, CASES
from smtpdtest import Listener

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "postfix-3.7-mime-errors.txt")
expected, name = {}, None
for line in open(GOLDEN, encoding="utf-8"):
    if line.startswith("== "):
        name = line[3:].strip()
        expected[name] = {"reply": None, "log": [], "big": None}
    elif name and line.startswith("   reply: "):
        expected[name]["reply"] = line[10:].strip()
    elif name and line.startswith("   log: "):
        expected[name]["log"].append(line[8:].strip())
    elif name and line.startswith("   delivered X-Big line: "):
        expected[name]["big"] = int(line.split(":")[1].split()[0])

inst = new_instance("--domain", "example.com")
d = inst.dir
maincf = os.path.join(d, "main.cf")
base = open(maincf).read()
hc = os.path.join(d, "hc.regexp")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)


def send(port, message, opts):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("probe")
    s.mail("x@example.org", list(opts))
    s.rcpt("rcpt@example.com")
    code, text = s.data(message)
    s.quit()
    return "%d %s" % (code, text.decode(errors="replace"))


for case in CASES:
    name, settings, message, opts = case[:4]
    want = expected.get(name)
    if not tap.ok(want and want["reply"], f"{name}: Postfix's answer is recorded"):
        continue
    tap.write(hc, case[4] if len(case) > 4 else "")
    lines = [s.replace("{hc}", hc) for s in BASE + settings]
    # main.cf replaced in one step: the instance's daemons start runners
    # meanwhile, and a runner that read a half-written main.cf deferred
    # its message as "mail system configuration error"
    tap.write(maincf + ".new", base + "".join(l.replace("=", " = ", 1) + "\n" for l in lines))
    os.rename(maincf + ".new", maincf)
    smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
    log_before = len(inst.log())
    answer = send(smtpd.port, message, opts)
    smtpd.stop()
    if want["reply"].startswith("250 "):
        tap.like(answer, r"^250 2\.0\.0 Ok: queued as [0-9A-F]+$", f"{name}: accepted, as Postfix") \
            or tap.diag(answer)
    else:
        tap.is_(answer, want["reply"], f"{name}: {want['reply']}")
    for line in want["log"]:
        # postern's log shows each byte outside ASCII as '?' (Postfix 3.7 logs UTF-8)
        shown = "".join(c if ord(c) < 128 else "?" * len(c.encode()) for c in line)
        head = re.escape(shown.split(" from localhost[")[0])
        found = tap.wait_until(lambda: re.search(r"[0-9A-F]+: " + head, inst.log()[log_before:]), 30)
        tap.ok(found, f"{name}: logs \"{line.split(' from localhost[')[0][:70]}\"") \
            or tap.diag(inst.log()[log_before:][-1500:])
    if want["big"] is not None:
        qid = (re.search(r"queued as ([0-9A-F]+)", answer) or re.search("", "")).group(1) \
            if "queued as" in answer else None
        done = qid and tap.wait_until(lambda: re.search(qid + r": removed", inst.log()), 120)
        mid = re.search(re.escape(qid or "-") + r": message-id=(<[^>]*>)", inst.log())
        mine = []
        if mid:         # the Message-Id postern added names the message
            tap.wait_until(lambda: [m for m in inst.delivered("rcpt") if mid.group(1).encode() in m], 30)
            mine = [m for m in inst.delivered("rcpt") if mid.group(1).encode() in m]
        big = [l for m in mine for l in m.split(b"\n") if l.startswith(b"X-Big:")]
        tap.is_(len(big[0]) if big else -1, want["big"], f"{name}: the header is cut to the same length") \
            or tap.diag("delivered: %s\n%s" % (bool(done), "".join(
                l + "\n" for l in inst.log().splitlines() if qid and qid in l)))
    if not want["log"] and want["reply"].startswith("250 "):
        tap.unlike(inst.log()[log_before:], r"mime-error", f"{name}: no mime-error logged")

inst.stop()
tap.done()
