#!/usr/bin/env python3
# 8-bit to 7-bit conversion in postern-smtp, against what the real Postfix
# 3.7 sent: t/lib/eightbitcases.py's messages go out through postern-smtp
# to aiosmtpd servers with and without 8BITMIME, and what arrives (the
# MAIL FROM parameters and every byte of the message after the MTA's own
# Received: headers) must be what Postfix's smtp(8) delivered to
# smtp-sink for the same case (t/data/postfix-3.7-8bit.txt, written by
# bench/postfix-8bit-probe; Postfix itself is not needed here).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from eightbitcases import BASE, CASES
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "postern-smtp", "postern-qmgr"], tools=["/usr/bin/python3"])

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "postfix-3.7-8bit.txt")


def golden():
    """name -> {"result", "mail", "lines"} from Postfix's run."""
    cases, cur = {}, None
    for line in open(GOLDEN, "rb").read().split(b"\n"):
        if line.startswith(b"== "):
            cur = cases.setdefault(line[3:].decode(), {"result": None, "mail": None, "lines": []})
        elif cur is None:
            continue
        elif line.startswith(b"   result: "):
            cur["result"] = line[11:].decode()
        elif line.startswith(b"   mail:"):
            cur["mail"] = line[8:].strip().decode()
        elif line.startswith(b"   | ") or line == b"   |":
            cur["lines"].append(line[5:])
    return cases


def after_received(content):
    """The message lines after the leading Received: headers."""
    lines = content.replace(b"\r\n", b"\n").split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"Received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    rest = lines[i:]
    if rest and rest[-1] == b"":
        rest.pop()
    return rest


def mail_params(options):
    """MAIL FROM parameters as the golden file writes them, without SIZE
    (smtp-sink does not announce SIZE, so Postfix's never shows it)."""
    return " ".join(o for o in options if not o.upper().startswith("SIZE="))


expected = golden()
tap.ok(len(expected) >= len(CASES), "the golden file has every case") \
    or tap.diag(sorted(set(c[0] for c in CASES) - set(expected)))

p7, p8, pl = tap.free_port(), tap.free_port(), tap.free_port()
sink7 = Sink("127.0.0.1", p7, eightbitmime=False)
sink8 = Sink("127.0.0.1", p8)
lmtp7 = Sink("127.0.0.1", pl, lmtp=True, eightbitmime=False)

inst = new_instance("--domain", "example.com", "-o", "minimal_backoff_time=1s",
                    "-o", "maximal_backoff_time=2s", "-o", "queue_run_delay=1s")
transport = os.path.join(inst.dir, "transport")
tap.write(transport, f"seven.test smtp:[127.0.0.1]:{p7}\nrelay.test smtp:[127.0.0.1]:{p8}\n"
                     f"lmtp.test lmtp:inet:127.0.0.1:{pl}\n")
r = inst.postern("conf", "-e", f"transport_maps=texthash:{transport}", *BASE)
tap.is_(r.returncode, 0, "transport_maps set") or tap.diag(r.stderr)

settings_now = None
for name, settings, message, opts, eight in CASES:
    if settings != settings_now:
        # the runners read main.cf when they start: restart for new settings
        inst.stop()
        r = inst.postern("conf", "-e", *(BASE + settings))
        tap.is_(r.returncode, 0, "settings: %s" % (" ".join(settings) or "defaults"))
        tap.is_(inst.start().returncode, 0, "the instance starts")
        settings_now = settings
    want = expected.get(name)
    if not want:
        tap.ok(False, name + ": in the golden file")
        continue
    sink = sink8 if eight else sink7
    rcpt = "rcpt@relay.test" if eight else "rcpt@seven.test"
    before = len(sink.messages())
    log_at = len(inst.log())
    args = ["-f", "a@example.org"]
    for o in opts:
        args += ["-B", o.split("=", 1)[1]]
    r = inst.sendmail(args + [rcpt], message.replace(b"\r\n", b"\n"))
    tap.is_(r.returncode, 0, name + ": sendmail") or tap.diag(r.stderr)
    status = re.compile(r"to=<%s>.*status=(\w+) \((.*)\)" % re.escape(rcpt))
    tap.wait_until(lambda: status.search(inst.log()[log_at:]), 30)
    m = status.search(inst.log()[log_at:])
    if not m:
        tap.ok(False, name + ": delivered or bounced") or tap.diag(inst.log()[log_at:][-2000:])
        continue
    if want["result"] != "sent":
        # Postfix: "bounced (MIME nesting exceeds safety limit)"
        tap.is_("%s (%s)" % (m.group(1), m.group(2)), want["result"], name + ": " + want["result"])
        tap.is_(len(sink.messages()), before, name + ": nothing arrived")
        continue
    tap.is_(m.group(1), "sent", name + ": sent") or tap.diag(m.group(0))
    tap.wait_until(lambda: len(sink.messages()) > before, 10)
    got = sink.messages()[before:]
    if not tap.is_(len(got), 1, name + ": one message arrived"):
        continue
    tap.is_(mail_params(got[0]["mail_options"]), want["mail"], name + ": MAIL FROM parameters as Postfix's")
    # Postfix's smtp_proto.c: no SIZE when the message is converted (this
    # server announces SIZE; smtp-sink did not)
    converted = not eight and "disable_mime_output_conversion=yes" not in settings
    tap.is_(any(o.upper().startswith("SIZE=") for o in got[0]["mail_options"]), not converted,
            name + (": no SIZE (converted)" if converted else ": SIZE given"))
    lines = after_received(got[0]["raw"].encode("latin-1"))
    if not tap.is_(lines, want["lines"], name + ": the message as Postfix sent it"):
        for a, b in zip(lines, want["lines"]):
            if a != b:
                tap.diag("postern: %r\n# postfix: %r" % (a, b))
                break

# the lmtp runner is the same program: an LMTP server without 8BITMIME
# gets the same conversion
want = expected.get("text 8bit")
inst.stop()
inst.postern("conf", "-e", *BASE)
tap.is_(inst.start().returncode, 0, "the instance starts")
r = inst.sendmail(["-f", "a@example.org", "rcpt@lmtp.test"], CASES[0][2].replace(b"\r\n", b"\n"))
tap.is_(r.returncode, 0, "LMTP: sendmail")
tap.wait_until(lambda: len(lmtp7.messages()) > 0, 30)
got = lmtp7.messages()
if tap.is_(len(got), 1, "LMTP: one message arrived") or tap.diag(inst.log()[-2000:]):
    tap.is_(after_received(got[0]["raw"].encode("latin-1")), want["lines"] if want else None,
            "LMTP: converted as Postfix's smtp(8) converts")

inst.stop()
tap.done()
