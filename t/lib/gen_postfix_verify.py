#!/usr/bin/env python3
"""gen_postfix_verify.py - record what the real Postfix 3.7 answers to the
address verification dialogues of verify_probes.py, into
t/data/postfix-3.7-verify.txt (which t/66-verify.t compares postern with).

Run by hand, as root, against a Postfix started by
/work/shared/bench/postfix-anchor.sh (Postfix is never a test dependency):

    BENCH_ROOT=/var/tmp/mta-bench-NAME postfix-anchor.sh up PORT PORT2
    BENCH_ROOT=/var/tmp/mta-bench-NAME t/lib/gen_postfix_verify.py PORT > t/data/postfix-3.7-verify.txt

It starts the receiving MTA (smtpsink.py) on a free port, appends
SETTINGS to a copy of the anchor's main.cf with a fresh verify cache,
reloads Postfix, plays the phases and collects the probes' log lines and
smtpd's NOQUEUE lines; the anchor's own main.cf is put back at the end.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import tap
import verify_probes as vp
from smtpsink import Sink

port = int(sys.argv[1])
root = os.path.join(os.environ.get("BENCH_ROOT", "/var/tmp/mta-bench"), "postfix")
etc = os.path.join(root, "etc")
maillog = os.path.join(root, "log", "maillog")
main_cf = os.path.join(etc, "main.cf")
original = open(main_cf).read()
master_cf = os.path.join(etc, "master.cf")
original_master = open(master_cf).read()
DOWN_WAIT = 35
sink_port = tap.free_port()
sink = Sink("127.0.0.1", sink_port)
settings = {k: v.format(sink=sink_port) for k, v in vp.SETTINGS.items()}
settings["address_verify_map"] = "btree:$data_directory/verify_cache_%d" % int(time.time())

out = sys.stdout
out.reconfigure(line_buffering=True)
out.write("# What Postfix 3.7 (Debian, /work/shared/bench/postfix-anchor.sh) answered to the\n"
          "# address verification dialogues of t/lib/verify_probes.py, recorded by\n"
          "# t/lib/gen_postfix_verify.py on %s.  Per phase: each command (>>) and\n"
          "# reply (<<); the probes' log lines (probe) and smtpd's (log); {sink} is the\n"
          "# receiving MTA's port.\n" % time.strftime("%Y-%m-%d"))
try:
    kept = "".join(l for l in original.splitlines(True)
                   if l.split("=", 1)[0].strip() not in settings)
    with open(main_cf, "w") as f:
        f.write(kept + "\n# verify probes\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
    time.sleep(2)
    start = os.path.getsize(maillog)

    def log_text():
        with open(maillog) as f:
            f.seek(start)
            return f.read()

    for title, steps in vp.PHASES:
        out.write(f"\n== {title}\n")
        if steps and isinstance(steps[0], tuple):
            for line in vp.wait_probes(log_text, steps[0][1]):
                out.write(f"probe {vp.normalize(line or 'NONE', sink_port)}\n")
            continue
        mark = len(log_text())
        for cmd, reply in vp.dialogue(port, steps):
            if cmd is not None:
                out.write(f">> {cmd}\n")
            for line in reply.split("\n"):
                out.write(f"<< {vp.normalize(line, sink_port)}\n")
        time.sleep(1)
        for l in log_text()[mark:].splitlines():
            # Postfix names the queue file it opened at the first accepted
            # recipient ("B769D13C0FB: reject:"); postern has no id before
            # the end of DATA and says NOQUEUE there (doc/logging.md)
            if "postfix/smtpd[" in l and (": reject: " in l or "warning" in l):
                line = re.sub(r"^[0-9A-F]+: reject: ", "NOQUEUE: reject: ", l.split("]: ", 1)[1])
                out.write("log %s\n" % vp.normalize(line, sink_port))
    # the verify service down: master.cf without it, so that smtpd finds
    # nobody behind private/verify; Postfix's smtpd tries again every 10
    # seconds and never answers the RCPT (the client gives up first)
    with open(master_cf, "w") as f:
        f.write("".join(l for l in original_master.splitlines(True) if not l.startswith("verify ")))
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
    time.sleep(2)
    out.write("\n== the verify service down (the client gives up after %d seconds)\n" % DOWN_WAIT)
    mark = len(log_text())
    try:
        for cmd, reply in vp.dialogue(port, ["EHLO client.example", "MAIL FROM:<>",
                                             "RCPT TO:<other@backup.example>"], timeout=DOWN_WAIT):
            if cmd is not None:
                out.write(f">> {cmd}\n")
            for line in reply.split("\n"):
                out.write(f"<< {line}\n")
    except OSError as e:
        # what was sent: the last command got no reply
        out.write(">> EHLO client.example\n>> MAIL FROM:<>\n>> RCPT TO:<other@backup.example>\n"
                  "<< (no reply: %s)\n" % e)
    for l in log_text()[mark:].splitlines():
        if "postfix/smtpd[" in l and ("reject:" in l or "warning" in l):
            out.write("log %s\n" % l.split("]: ", 1)[1])
finally:
    with open(master_cf, "w") as f:
        f.write(original_master)
    with open(main_cf, "w") as f:
        f.write(original)
    subprocess.run(["postfix", "-c", etc, "reload"], capture_output=True)
