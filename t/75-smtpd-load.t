#!/usr/bin/env python3
# postern-smtpd under load: 200 idle connections and 50 concurrent sessions
# from smtp-source (Postfix's load client) do not disturb each other; every
# message the client saw accepted reached the chain, once.
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance, wait_for

source = shutil.which("smtp-source") or ("/usr/sbin/smtp-source" if os.path.exists("/usr/sbin/smtp-source") else None)
if not source:
    tap.skip_all("smtp-source (Debian's postfix package) is not installed")

inst = Instance({"smtpd_timeout": "60s"})
port = inst.listen()

idle = []
for i in range(200):
    c = Client(port, timeout=30)
    idle.append(c)
greetings = [c.reply() for c in idle]
tap.is_(sum(1 for g in greetings if g == "220 mx.example.com ESMTP postern"), 200, "200 idle connections greeted")

t0 = time.time()
r = subprocess.run([source, "-c", "-s", "50", "-m", "200", "-f", "load@example.org", "-t", "joe@example.com",
                    "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=300)
elapsed = time.time() - t0
tap.is_(r.returncode, 0, "smtp-source: 200 messages over 50 sessions at once") or tap.diag(r.stderr[-2000:])
tap.ok(wait_for(lambda: len(inst.captured()) >= 200, 30), "all 200 messages reached the chain")
tap.is_(len(inst.captured()), 200, "and none twice")
tap.diag("200 messages, 50 concurrent sessions, 200 idle: %.1f s (stand-in chain in sh)" % elapsed)

answers = [c.cmd("NOOP") for c in idle]
tap.is_(sum(1 for a in answers if a == "250 2.0.0 Ok"), 200, "the 200 idle sessions still answer")
for c in idle:
    c.send("QUIT\r\n")
    c.close()
inst.stop()
tap.done()
