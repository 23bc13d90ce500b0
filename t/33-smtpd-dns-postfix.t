#!/usr/bin/env python3
# The DNS-based restrictions with answers that exist, the client's name,
# and the session's log lines, side by side with Postfix 3.7: the
# dialogues of t/lib/dns_probes.py (reject_unknown_client_hostname and
# _reverse_ from real source addresses 127.0.0.N whose PTR and A records
# agree, disagree, are missing or fail; the RBL, RHSBL and DNSWL checks
# with result filters, TXT texts and rbl_reply_maps; HELO, sender and
# recipient domains with an A, MX only, AAAA only, null MX, an MX on a
# loopback or private address, none, or a failing server; reject_non_fqdn_*;
# check_*_{mx,ns,a}_access and check_reverse_client_hostname_{mx,ns,a}_access;
# permit_mx_backup as a backup, a primary, not listed, with failing MX and
# host lookups, and with permit_mx_backup_networks; a lost connection, too
# many errors, a timeout)
# played against postern-smtpd with the same DNS data (unbound on
# loopback, t/lib/dnsserver.py), every reply compared with what the real
# Postfix answered (t/data/postfix-3.7-dns.txt, recorded by
# `t/lib/gen_postfix_restrictions.py PORT dns_probes`: Postfix is not
# needed here), and so are the log lines: connect, disconnect (with its
# command counts), lost connection, too many errors, timeout, NOQUEUE
# reject and warn, and the warnings (the part after "smtpd[PID]: ", in
# order).
#
# Not compared: Postfix's "QUEUEID: client=NAME[ADDR]" line, which it logs
# when it names its queue file at MAIL; postern logs its line when it
# stores the message.  For the same reason Postfix's later reject lines of
# that transaction carry the queue id where postern's say NOQUEUE
# (compared as NOQUEUE).
#
# Known differences are listed in EXPLAINED (replies) and LOG_EXPLAINED
# (log lines), each with why; each must still be seen.
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import restriction_probes as rp
import dns_probes as dp
from dnsserver import DnsServer

require(["postern-smtpd", "postern-lookup"], ["unbound"])
golden = rp.parse_golden(os.path.join(SRC, "t", "data", "postfix-3.7-dns.txt"))
ok(len(golden) == len(dp.CASES), f"the golden file has every case ({len(golden)})")

# (case title part, command, Postfix's reply part) -> why
EXPLAINED = {
}
# (case title part, Postfix's log line part) -> why: Postfix's line is not
# compared
LOG_EXPLAINED = {
}
# the log lines compared
LOGGED = re.compile(r"^(connect from|disconnect from|lost connection after|too many errors after|timeout after"
                    r"|NOQUEUE: |warning: |[0-9A-F]{6,}: (warn|reject|info): )")

dns = DnsServer(dp.RECORDS, zones=dp.ZONES, servfail=dp.SERVFAIL)
inst = smtpdtest.Instance()
initial = dict(inst.settings)
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
hosts = write(os.path.join(inst.dir, "hosts"), dp.HOSTS)
svc = start([prog("postern-lookup"), "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_HOSTS_FILE": hosts})
ok(wait_until(lambda: os.path.exists(os.path.join(queue, "public", "lookup")), 10), "the lookup service listens")
maps_dir = os.path.join(inst.dir, "probes")
os.makedirs(maps_dir)


def compared_logs(title, lines):
    out = []
    for line in lines:
        line = rp.log_comparable(line)
        if not LOGGED.match(line) or line.startswith("NOQUEUE: client="):
            continue
        if any(t in title and w in line for (t, w) in LOG_EXPLAINED):
            continue
        out.append(line)
    return out


cmp = rp.Comparison(EXPLAINED)
log_same = log_total = 0
seen_log = set()
for case in golden:
    rp.apply_case(inst, initial, case, maps_dir)
    before = len(inst.log())
    listener = smtpdtest.Listener(inst.argv(), {"POSTERN_HOSTS_FILE": hosts})
    commands = [c for c, _ in case["steps"] if c is not None]
    connections = 1 + sum(1 for c in commands[1:] if c == rp.RECONNECT or c.startswith(rp.FROM))
    got = rp.dialogue(listener.port, commands)
    wait_until(lambda: inst.log()[before:].count("disconnect from") >= connections, 15)
    listener.stop()
    code_diffs, text_diffs = cmp.case(case, got)
    ok(not code_diffs, f"{case['title']}: reply and enhanced codes as Postfix's ({len(case['steps'])} probes)") \
        or diag("\n".join(code_diffs[:20]))
    ok(not text_diffs, "... and the texts") or diag("\n".join(text_diffs[:20]))
    for (t, w), why in LOG_EXPLAINED.items():
        if t in case["title"] and any(w in l for l in case["logs"]):
            seen_log.add(why)
    want = compared_logs(case["title"], case["logs"])
    have = compared_logs(case["title"], rp.log_lines(inst.log()[before:]))
    log_total += len(want)
    log_same += sum(1 for a, b in zip(want, have) if a == b)
    ok(want == have, f"... and the log lines ({len(want)})") \
        or diag("Postfix:\n" + "\n".join(want) + "\npostern:\n" + "\n".join(have))
diag(cmp.summary() + f"; log lines equal {log_same} of {log_total}")
for why in cmp.unseen() + sorted(set(LOG_EXPLAINED.values()) - seen_log):
    diag(f"explained difference not seen: {why}")
ok(not cmp.unseen() and seen_log == set(LOG_EXPLAINED.values()), "every explained difference is still seen")
done()
