#!/usr/bin/env python3
# The differential test over the seeds' full restriction settings, side by
# side with Postfix 3.7: the dialogues of t/lib/seed_probes.py (seeds
# 000-003 as they write their smtpd_*_restrictions and related parameters,
# each under both smtpd_delay_reject values; every access(5) action at the
# client, HELO, sender and recipient classes; defer_if_permit kept from
# earlier stages) played against postern-smtpd, every reply compared with
# what the real Postfix answered (t/data/postfix-3.7-seeds.txt, recorded
# by t/lib/gen_postfix_restrictions.py; Postfix is not needed here).
#
# On every probe the reply code and the enhanced status code must be
# Postfix's; the whole text on at least 95 % of the probes (the figure is
# printed).  Each remaining difference is listed in EXPLAINED below, with
# why, and must still be the difference seen (an explained probe that
# starts to agree, or to differ otherwise, fails).
#
# DNS: the DNS-dependent probes use names every resolver answers with
# NXDOMAIN (.invalid, and the RBL zones, which the recording machine's
# resolver answers so too: the test's unbound holds them empty), and
# unknown client names from XCLIENT NAME=[UNAVAILABLE]/[TEMPUNAVAIL].  Not
# compared here: DNS answers that exist (t/32 has them, against unbound).
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import restriction_probes as rp
import seed_probes
from dnsserver import DnsServer

require(["postern-smtpd", "postern-lookup"], ["unbound"])
golden = rp.parse_golden(os.path.join(SRC, "t", "data", "postfix-3.7-seeds.txt"))
ok(len(golden) == len(seed_probes.CASES), f"the golden file has every case ({len(golden)})")

# Differences explained: (case title part, command, Postfix's reply part)
# -> why.  Text only unless said.
EXPLAINED = {
}

dns = DnsServer([], zones=["invalid.", "example.", "bogus.", "10.", "spamhaus.org.", "surriel.com.", "spamcop.net."])
inst = smtpdtest.Instance({"smtpd_peername_lookup": "no"})
initial = dict(inst.settings)
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
svc = start([prog("postern-lookup"), "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_DNS_TIMEOUT_MS": "3000"})
ok(wait_until(lambda: os.path.exists(os.path.join(queue, "public", "lookup")), 10), "the lookup service listens")
maps_dir = os.path.join(inst.dir, "probes")
os.makedirs(maps_dir)


cmp = rp.Comparison(EXPLAINED)
for case in golden:
    rp.apply_case(inst, initial, case, maps_dir)
    listener = smtpdtest.Listener(inst.argv(), {"TCPREMOTEHOST": "localhost"})
    commands = [c for c, _ in case["steps"] if c is not None]
    got = rp.dialogue(listener.port, commands)
    listener.stop()
    code_diffs, text_diffs = cmp.case(case, got)
    ok(not code_diffs, f"{case['title']}: reply and enhanced codes as Postfix's ({len(case['steps'])} probes)") \
        or diag("\n".join(code_diffs[:20]))
    ok(not text_diffs, f"... and the texts, but for the differences explained") or diag("\n".join(text_diffs[:20]))
diag(cmp.summary())
text_pct = 100.0 * cmp.text_same / cmp.probes
ok(text_pct >= 95.0, f"the texts equal on at least 95 % of the probes ({text_pct:.1f} %)")
for why in cmp.unseen():
    diag(f"explained difference not seen: {why}")
ok(not cmp.unseen(), "every explained difference is still seen")
done()
