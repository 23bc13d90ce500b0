#!/usr/bin/env python3
# postern-smtpd under load: 200 idle connections and 50 concurrent sessions
# (Python's smtplib in 50 threads, one message per session as Postfix's
# smtp-source sends them) do not disturb each other; every message the
# clients saw accepted reached the chain, once.
import os
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance, wait_for

SESSIONS, MESSAGES = 50, 200


def load(port):
    """MESSAGES messages, each in a session of its own, SESSIONS at once;
    returns (accepted, errors)."""
    lock = threading.Lock()
    left = [MESSAGES]
    accepted, errors = [], []

    def worker(n):
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
                seq = left[0]
            try:
                # local_hostname: no getfqdn(), which asks DNS for each session
                with smtplib.SMTP("127.0.0.1", port, local_hostname="load.example.org", timeout=60) as s:
                    s.ehlo("load.example.org")
                    refused = s.sendmail("load@example.org", ["joe@example.com"],
                                         f"Subject: load {seq}\r\nFrom: load@example.org\r\n\r\n"
                                         f"message {seq} of session worker {n}\r\n")
                with lock:
                    (errors if refused else accepted).append(seq)
            except (OSError, smtplib.SMTPException) as e:
                with lock:
                    errors.append(f"{seq}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted, errors


# the idle sessions must outlive the load phase however slow the machine is
# (at load 30 it took over 60 s, and smtpd_timeout closed idle sessions)
inst = Instance({"smtpd_timeout": "600s"})
port = inst.listen()

idle = []
for i in range(200):
    c = Client(port, timeout=30)
    idle.append(c)
greetings = [c.reply() for c in idle]
tap.is_(sum(1 for g in greetings if g == "220 mx.example.com ESMTP postern"), 200, "200 idle connections greeted")

t0 = time.time()
accepted, errors = load(port)
elapsed = time.time() - t0
if not tap.is_(len(accepted), MESSAGES, "200 messages over 50 sessions at once, each accepted"):
    tap.diag("\n".join(str(e) for e in errors[:20]))
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
