#!/usr/bin/env python3
"""gen_postfix_nonsmtpd_milter.py - record what the real Postfix 3.7 does
with non_smtpd_milters for a sendmail(1) submission: what the scripted
milter of t/lib/milter_script.py is told (events, arguments, macros), what
sendmail prints and exits with, and the log lines about milters, into
t/data/postfix-3.7-nonsmtpd-milter.txt (read by t/94-nonsmtpd-milter.t).

Run by hand, as root, against a Postfix started by
/work/shared/bench/postfix-anchor.sh (Postfix is never a test dependency):

    BENCH_ROOT=/var/tmp/anchor-NAME postfix-anchor.sh up PORT PORT2
    BENCH_ROOT=/var/tmp/anchor-NAME t/lib/gen_postfix_nonsmtpd_milter.py \
        > t/data/postfix-3.7-nonsmtpd-milter.txt

The anchor's main.cf is put back at the end.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import milter_probes as mp
import tap

root = os.path.join(os.environ.get("BENCH_ROOT", "/var/tmp/mta-bench"), "postfix")
etc = os.path.join(root, "etc")
maillog = os.path.join(root, "log", "maillog")
main_cf = os.path.join(etc, "main.cf")
maildrop = os.path.join(root, "queue", "maildrop")
original = open(main_cf).read()
work = tempfile.mkdtemp(prefix="gen-nsm-")
os.chmod(work, 0o755)
plan_file = os.path.join(work, "plan.json")
events = os.path.join(work, "events")

SENDER = "alice@example.org"
MESSAGE = "Subject: probe\nFrom: alice@example.org\nTo: rcpt@bench.test\n\nhello\n"
CASES = [
    ("add a header", {"non_smtpd_milters": "inet:MILTER"}, {"eom": ["addheader:X-Signed:yes"]}),
    ("reject at end of message", {"non_smtpd_milters": "inet:MILTER"},
     {"eom": "reply:550 5.7.1 unsigned mail refused"}),
    ("tempfail at end of message", {"non_smtpd_milters": "inet:MILTER"}, {"eom": "tempfail"}),
    ("reject at MAIL", {"non_smtpd_milters": "inet:MILTER"}, {"mail": "reject"}),
    ("dead milter, default tempfail", {"non_smtpd_milters": "inet:DEAD"}, {}),
    ("dead milter, default accept",
     {"non_smtpd_milters": "inet:DEAD", "milter_default_action": "accept"}, {}),
]


def normalize(line, milter, dead):
    line = re.sub(r"^.*?postfix/([a-z]+)\[\d+\]: ", r"\1: ", line.rstrip("\n"))
    line = re.sub(r"\b[0-9A-F]{6,}\b", "ID", line)
    return line.replace(milter, "MILTER").replace(dead, "DEAD")


print("# recorded from Postfix 3.7 by t/lib/gen_postfix_nonsmtpd_milter.py; read by t/94-nonsmtpd-milter.t")
try:
    for title, settings, plan in CASES:
        milter_port, dead_port = tap.free_port(), tap.free_port()
        milter, dead = f"127.0.0.1:{milter_port}", f"127.0.0.1:{dead_port}"
        with open(plan_file, "w") as f:
            json.dump(plan, f)
        if os.path.exists(events):
            os.unlink(events)
        m = subprocess.Popen([mp.PYTHON, mp.SCRIPT, f"inet:{milter_port}@127.0.0.1", plan_file,
                              events], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tap.wait_until(lambda: tap.listening(milter_port), 20)
        with open(main_cf, "w") as f:
            f.write(original + "".join(f"{k} = {v.replace('MILTER', milter).replace('DEAD', dead)}\n"
                                       for k, v in settings.items()))
        subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
        time.sleep(2)
        start = os.path.getsize(maillog)
        r = subprocess.run(["sendmail", "-C", etc, "-f", SENDER, mp.RECIPIENT],
                           input=MESSAGE.encode(), capture_output=True, timeout=60)
        time.sleep(5)
        with open(maillog) as f:
            f.seek(start)
            logs = [normalize(l, milter, dead) for l in f
                    if "milter" in l.lower() or "status=" in l or "warning" in l]
        m.terminate()
        m.wait()
        print(f"case: {title}")
        print(f"X: {r.returncode}")
        for line in r.stderr.decode(errors="replace").splitlines():
            print(f"O: {line}")
        if os.path.exists(events):
            for line in open(events):
                e = json.loads(line)
                if e["event"] in ("body", "close", "abort"):
                    continue
                e["macros"].pop("v", None)
                print(f"E: {json.dumps(e, sort_keys=True)}")
        for l in logs:
            print(f"L: {l}")
        print()
        sys.stdout.flush()
        for name in os.listdir(maildrop):        # a deferred submission waits here
            os.unlink(os.path.join(maildrop, name))
finally:
    with open(main_cf, "w") as f:
        f.write(original)
    subprocess.run(["postfix", "-c", etc, "reload"], capture_output=True)
