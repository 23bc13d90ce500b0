#!/usr/bin/env python3
"""gen_postfix_milter.py - record what the real Postfix 3.7 answers and logs
with the scripted milter of t/lib/milter_script.py in each case of
t/lib/milter_probes.py, into t/data/postfix-3.7-milter.txt (which
t/94-smtpd-milter-postfix.t replays against postern).

Run by hand, as root, against a Postfix started by
/work/shared/bench/postfix-anchor.sh (Postfix is never a test dependency):

    BENCH_ROOT=/var/tmp/anchor-NAME postfix-anchor.sh up PORT PORT2
    BENCH_ROOT=/var/tmp/anchor-NAME t/lib/gen_postfix_milter.py PORT > t/data/postfix-3.7-milter.txt

For each case it starts the milter on a free port, appends the case's
settings to a copy of the anchor's main.cf, reloads Postfix, plays the
dialogue and keeps the log lines about milters; the anchor's main.cf is
put back at the end.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import milter_probes as mp
import smtpdtest
import tap

port = int(sys.argv[1])
root = os.path.join(os.environ.get("BENCH_ROOT", "/var/tmp/mta-bench"), "postfix")
etc = os.path.join(root, "etc")
maillog = os.path.join(root, "log", "maillog")
main_cf = os.path.join(etc, "main.cf")
original = open(main_cf).read()
work = tempfile.mkdtemp(prefix="gen-milter-")
os.chmod(work, 0o755)
plan_file = os.path.join(work, "plan.json")
events = os.path.join(work, "events")
mp.write_tables(work)
print("# recorded from Postfix 3.7 by t/lib/gen_postfix_milter.py; replayed by t/94-smtpd-milter-postfix.t")
try:
    for case in mp.CASES:
        title, _, plan = case
        milter_port, dead_port = tap.free_port(), tap.free_port()
        milter, dead = f"127.0.0.1:{milter_port}", f"127.0.0.1:{dead_port}"
        with open(plan_file, "w") as f:
            json.dump(plan, f)
        m = subprocess.Popen([mp.PYTHON, mp.SCRIPT, f"inet:{milter_port}@127.0.0.1", plan_file,
                              events], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tap.wait_until(lambda: tap.listening(milter_port), 20)
        with open(main_cf, "w") as f:
            f.write(original + "".join(f"{k} = {v}\n" for k, v in
                                       mp.settings(case, milter, dead, work).items()))
        subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
        time.sleep(2)
        start = os.path.getsize(maillog)
        client = smtpdtest.Client(port, timeout=30)
        replies = mp.dialogue(client, "mta.bench.test")
        client.close()
        time.sleep(1.5)
        with open(maillog) as f:
            f.seek(start)
            logs = [mp.normalize_log(l, milter, dead) for l in f if mp.wanted(l)]
        m.terminate()
        m.wait()
        print(f"case: {title}")
        for r in replies:
            print(f"S: {r}")
        for l in logs:
            print(f"L: {l}")
        print()
        sys.stdout.flush()
finally:
    with open(main_cf, "w") as f:
        f.write(original)
    subprocess.run(["postfix", "-c", etc, "reload"], capture_output=True)
