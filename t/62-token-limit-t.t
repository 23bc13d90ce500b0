#!/usr/bin/env python3
# header_address_token_limit under `sendmail -t`, against the real Postfix
# 3.7 (t/data/postfix-3.7-token-limit.txt, from
# bench/postfix-token-probe): the envelope recipients taken from the To:
# header are never cut by the limit (Postfix 3.7 extracts them from the
# whole header), while the To: header itself is written from its first N
# tokens when an address among them changes, as after SMTP
# (t/62-token-limit.t).  Every limit from 1 to 24 and 10240; where the cut
# falls inside an address, Postfix makes addresses of the pieces
# ("Old@host, \"Friend <old\"@example"), and postern does the same.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from tokencases import LIMITS, TO

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "postfix-3.7-token-limit.txt")
rcpts, headers, smtp_headers, cur, postfix_origin = {}, {}, {}, None, None
for line in open(GOLDEN).read().split("\n"):
    if line.startswith("myorigin: "):
        postfix_origin = line[10:]
    elif line.startswith("== limit "):
        cur = int(line[9:])
        rcpts[cur], headers[cur], smtp_headers[cur] = [], [], []
    elif line.startswith("   rcpt ") and cur is not None:
        rcpts[cur].append(line[8:])
    elif line.startswith("   t| ") and cur is not None:
        headers[cur].append(line[6:])
    elif line.startswith("   s| ") and cur is not None:
        smtp_headers[cur].append(line[6:])
limits = sorted(rcpts)
tap.is_(limits, sorted(LIMITS), "the golden file has every limit")
tap.ok(all(headers[n] == smtp_headers[n] for n in limits),
       "in Postfix, the header after sendmail -t is the header after SMTP")

inst = new_instance("--domain", "bench.test")
d = inst.dir
# the anchor's myorigin, so that addresses are qualified alike
inst.postern("conf", "-e", "myorigin=" + postfix_origin)
tap.write(os.path.join(d, "canonical"), "old@example.com new@example.com\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("canonical_maps = texthash:%s/canonical\n" % d)
incoming = os.path.join(d, "queue", "incoming")


def queued():
    return set(f for f in os.listdir(incoming) if not f.startswith(".")) if os.path.isdir(incoming) else set()


# qmgr is not started: each message stays in incoming/ to be read back
for limit in limits:
    inst.postern("conf", "-e", "header_address_token_limit=%d" % limit)
    before = queued()
    msg = ("From: a@example.org\nTo: %s\nSubject: tokens\nMessage-ID: <t%d@example.org>\n"
           "Date: Mon, 7 Dec 2026 05:00:00 +0000\n\nbody\n" % (TO, limit))
    r = inst.sendmail(["-t", "-i", "-f", "a@example.org"], msg.encode())
    tap.is_(r.returncode, 0, "limit %d: sendmail -t" % limit) or tap.diag(r.stderr)
    new = sorted(queued() - before)
    text = inst.postern("queue", "cat", new[0]).stdout if new else ""
    got = re.findall(r"(?m)^recipient: (.*)$", text)
    tap.is_(got, rcpts[limit], "limit %d: the recipients Postfix took" % limit)
    m = re.search(r"(?m)^To: .*(?:\n[ \t].*)*", text)
    tap.is_(m.group(0) if m else None, "\n".join(headers[limit]),
            "limit %d: the To: header as Postfix wrote it" % limit)
tap.done()
