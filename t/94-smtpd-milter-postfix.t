#!/usr/bin/env python3
# smtpd_milters against the real Postfix 3.7: each case of
# t/lib/milter_probes.py (a refusal, discard, quarantine or timeout at
# each stage, a milter that is down under each milter_default_action) is
# played with the scripted libmilter milter (t/lib/milter_script.py) and
# postern's replies and milter log lines must be those Postfix gave,
# recorded in t/data/postfix-3.7-milter.txt by t/lib/gen_postfix_milter.py.
# Normalized alike: the queue id (or NOQUEUE) as ID, the client's name,
# the milter ports, myhostname as HOST.  milter_header_checks' cases
# (regexp:TABLES/...): the stand-in queue here does not log, so the lines
# the real queue logs with the queue id from the envelope's log_line
# attributes (doc/injection.md) are read from the envelope it stored.
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import milter_probes as mp

require(["postern-smtpd"])
mp.require_milter()

# the recording: {title: (replies, log lines)}
recorded, title = {}, None
for line in open(os.path.join(os.path.dirname(__file__), "data", "postfix-3.7-milter.txt")):
    line = line.rstrip("\n")
    if line.startswith("case: "):
        title = line[6:]
        recorded[title] = ([], [])
    elif line.startswith("S: "):
        recorded[title][0].append(line[3:])
    elif line.startswith("L: "):
        recorded[title][1].append(line[3:])
is_(sorted(recorded), sorted(c[0] for c in mp.CASES), "every case was recorded from Postfix")

work = tempdir("postern-milter-pf-")
plan_file = os.path.join(work, "plan.json")
write(plan_file, "{}")
mp.write_tables(work)
# one milter for every case: it reads the plan at each connection
milter_port, dead_port = free_port(), free_port()
milter, dead = f"127.0.0.1:{milter_port}", f"127.0.0.1:{dead_port}"
m = mp.start_milter(milter_port, plan_file, os.path.join(work, "events"))
base = {"smtpd_peername_lookup": "no", "mydestination": "bench.test, localhost",
        "myhostname": "mta.bench.test", "smtpd_banner": "$myhostname ESMTP Postfix"}
inst = smtpdtest.Instance(base)
inst.listen()
for case in mp.CASES:
    title, _, plan = case
    write(plan_file, json.dumps(plan))
    inst.settings = dict(inst.settings)
    for k in ("smtpd_milters", "milter_default_action", "milter_content_timeout", "milter_header_checks"):
        inst.settings.pop(k, None)
    inst.set(**mp.settings(case, milter, dead, work))
    stored = len(inst.captured())
    start_at = len(inst.log())
    sessions = inst.log().count("disconnect from")
    client = smtpdtest.Client(inst.port, timeout=30)
    replies = mp.dialogue(client, "mta.bench.test")
    client.close()
    wait_until(lambda: inst.log().count("disconnect from") > sessions, 15)
    logs = [mp.normalize_log(l, milter, dead) for l in inst.log()[start_at:].splitlines(True)
            if mp.wanted(l)]
    for _, env in inst.captured()[stored:]:
        logs += [mp.normalize_log("ID: " + r[10:], milter, dead) for r in env
                 if r.startswith("Alog_line=") and mp.wanted(r)]
    want_replies, want_logs = recorded[title]
    is_(replies, want_replies, f"{title}: the replies are Postfix's")
    is_(logs, want_logs, f"{title}: the log lines are Postfix's")
inst.stop()
stop(m)
done()
