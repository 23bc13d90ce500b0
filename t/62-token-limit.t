#!/usr/bin/env python3
# header_address_token_limit, as Postfix's cleanup applies it: an address
# header is parsed from its first N tokens only; when an address among
# them is rewritten (here by canonical_maps), the header is written from
# those tokens and the rest is gone; when none is, the header stays whole.
# The same To: header goes through postern-smtpd (in-process rewrite) with
# each limit, and must come out as the real Postfix 3.7 delivered it
# (t/data/postfix-3.7-token-limit.txt, from bench/postfix-token-probe:
# its "s|" lines), with cuts inside addresses too,
# folded as Postfix folds a rewritten header (elements share a line while
# it stays under 70 characters).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener
from tokencases import LIMITS, TO

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "postfix-3.7-token-limit.txt")
expected, cur, postfix_origin = {}, None, None
for line in open(GOLDEN).read().split("\n"):
    if line.startswith("myorigin: "):
        postfix_origin = line[10:]
    elif line.startswith("== limit "):
        cur = expected.setdefault(int(line[9:]), [])
    elif line.startswith("   s| ") and cur is not None:
        cur.append(line[6:])
tap.is_(sorted(expected), sorted(LIMITS), "the golden file has every limit")

inst = new_instance("--domain", "bench.test")
d = inst.dir
maincf = os.path.join(d, "main.cf")
# the anchor's myorigin, so that lines fold at the same places
if postfix_origin:
    inst.postern("conf", "-e", "myorigin=" + postfix_origin)
origin = inst.postern("conf", "-x", "-h", "myorigin").stdout.strip() or None
tap.write(os.path.join(d, "canonical"), "old@example.com new@example.com\n")
with open(maincf, "a") as f:
    f.write("canonical_maps = texthash:%s/canonical\n" % d)
tap.is_(inst.start().returncode, 0, "postern start")
r = inst.postern("check")
tap.unlike(r.stdout + r.stderr, r"header_address_token_limit", "postern check no longer reports it")

count = 0
for limit in LIMITS:
    smtpd = Listener([tap.prog("postern-smtpd"), "-c", d, "-o", "header_address_token_limit=%d" % limit])
    c = Client(smtpd.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<rcpt@bench.test>")
    c.cmd("DATA")
    c.send(("From: a@example.org\r\nTo: %s\r\nSubject: tokens\r\nMessage-ID: <t%d@example.org>\r\n"
            "Date: Mon, 7 Dec 2026 05:00:00 +0000\r\n\r\nbody\r\n.\r\n" % (TO, limit)).encode())
    tap.like(c.reply(), r"^250 ", "limit %d: queued" % limit)
    c.cmd("QUIT")
    count += 1
    got = inst.wait_for("rcpt", count)
    msg = got[count - 1].decode(errors="replace") if len(got) >= count else ""
    m = re.search(r"(?m)^To: .*(?:\n[ \t].*)*", msg)
    want = "\n".join(expected.get(limit, []))
    if postfix_origin and origin:
        want = want.replace("@" + postfix_origin, "@" + origin)
    tap.is_(m.group(0) if m else None, want, "limit %d: the To: header as Postfix wrote it" % limit)

inst.stop()
tap.done()
