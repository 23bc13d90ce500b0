#!/usr/bin/env python3
# A destination that is down (Postfix's dead destination): after one
# delivery finds no server of a next hop willing to talk
# (smtp_destination_concurrency_failed_cohort_limit, 1), qmgr stops trying
# it for minimal_backoff_time and defers its other mail at once with
# "delivery temporarily suspended: REASON", while mail for another
# destination goes on.  The dead server is a listener that counts the
# connections it gets and closes each one; the live one a second postern.
# A restart of qmgr forgets the suspension as Postfix's does; the deferred
# files' next attempt times (their mtimes) hold the mail back instead.
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-qmgr"])

# the dead host: accepts, says nothing, closes (every try is one accept)
dead = socket.socket()
dead.bind(("127.0.0.1", 0))
dead.listen(64)
dead_port = dead.getsockname()[1]
accepted = []


def serve_dead():
    while True:
        try:
            c, _ = dead.accept()
        except OSError:
            return
        accepted.append(1)
        c.sendall(b"421 4.3.2 dead.test service not available\r\n")
        c.close()


threading.Thread(target=serve_dead, daemon=True).start()

receiver = new_instance("--domain", "live.test", "-o", "myhostname=receiver.test")
tap.is_(receiver.start().returncode, 0, "the live server starts")
rport = int(re.search(r"127\.0\.0\.1:(\d+)\s", open(os.path.join(receiver.dir, "master.cf")).read()).group(1))

sender = new_instance("--domain", "example.com")
with open(os.path.join(sender.dir, "main.cf"), "a") as f:
    f.write(f"""
transport_maps = inline:{{ {{dead.test = smtp:[127.0.0.1]:{dead_port}}}, {{live.test = smtp:[127.0.0.1]:{rport}}} }}
defer_transports = smtp
smtp_destination_concurrency_limit = 1
minimal_backoff_time = 300s
maximal_backoff_time = 600s
""")
tap.is_(sender.start().returncode, 0, "the sending instance starts")


def count(pattern):
    return len(re.findall(pattern, sender.log()))


# six messages for the dead host, one for the live one, held and flushed at once
for i in range(6):
    sender.sendmail(["-f", "me@example.com", f"user{i}@dead.test"], f"Subject: dead {i}\n\nx\n".encode())
sender.sendmail(["-f", "me@example.com", "alice@live.test"], b"Subject: live\n\nfor the live host\n")
tap.ok(tap.wait_until(lambda: count(r"status=deferred \(deferred transport\)") >= 7, 30), "seven messages held")
r = sender.postern("queue", "flush")
tap.is_(r.returncode, 0, "postern queue flush") or tap.diag(r.stderr)

reason = r"host 127\.0\.0\.1\[127\.0\.0\.1\] refused to talk to me: 421 4\.3\.2 dead\.test service not available"
tap.ok(tap.wait_until(lambda: count(r"to=<user\d@dead\.test>, relay=(?!none, .*deferred transport).*status=deferred") >= 6, 60),
       "all six dead.test messages deferred") or tap.diag(sender.log()[-3000:])
tap.is_(count(r"postern/qmgr\[\d+\]: \w+: to=<user\d@dead\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=4\.3\.2, "
              r"status=deferred \(" + reason + r"\)"), 1,
        "one delivery tried the dead host and was refused")
tap.is_(count(r"postern/qmgr\[\d+\]: \w+: to=<user\d@dead\.test>, relay=none, .*dsn=4\.3\.2, status=deferred "
              r"\(delivery temporarily suspended: " + reason + r"\)"), 5,
        "the other five: delivery temporarily suspended, with the reason (Postfix's words)")
tap.is_(len(accepted), 1, "the dead host saw one connection, not six")
tap.ok(len(receiver.wait_for("alice", 1, 30)) == 1, "the live destination got its mail meanwhile")

# A restart of qmgr forgets the suspension, as Postfix's qmgr does (its
# dead-destination state lives in memory only).  What holds the mail back
# across a restart in both is each deferred file's next attempt time, on
# disk as its mtime: the six messages are not tried again at the start.
deferred_dir = os.path.join(sender.dir, "queue", "deferred")
names = [n for n in os.listdir(deferred_dir) if not n.startswith(".")]
tap.ok(len(names) >= 6, f"the deferred messages are in deferred/ ({len(names)})")
now = time.time()
tap.ok(all(os.stat(os.path.join(deferred_dir, n)).st_mtime > now + 200 for n in names),
       "each file's mtime, its next attempt time, is minimal_backoff_time (300 s) ahead")
sender.postern("conf", "-e", "defer_transports=")
sender.stop()
tap.is_(sender.start().returncode, 0, "restart without defer_transports")
before = len(accepted)
before_lines = count(r"to=<user\d@dead\.test>")
sender.sendmail(["-f", "me@example.com", "late0@dead.test"], b"Subject: late\n\nx\n")
sender.sendmail(["-f", "me@example.com", "late1@dead.test"], b"Subject: late\n\nx\n")
tap.ok(tap.wait_until(lambda: count(r"to=<late\d@dead\.test>, .*status=deferred") >= 2, 30), "both late messages deferred")
tap.ok(tap.wait_until(lambda: count(r"to=<late\d@dead\.test>, relay=none, .*status=deferred \(delivery temporarily "
                                    r"suspended") >= 1, 5), "the second waits without a try (suspended)")
tap.ok(len(accepted) - before <= 1, f"at most one more connection ({len(accepted) - before})")
tap.is_(count(r"to=<user\d@dead\.test>"), before_lines,
        "the six deferred before the restart were not tried after it (they wait for their time)")
tap.ok(all(os.path.exists(os.path.join(deferred_dir, n)) for n in names), "and are still in deferred/")

# A flush of the whole queue ends the suspension, as postqueue -f makes
# Postfix's qmgr forget its dead destinations: the destination is tried
# again at once (one connection, which suspends it again), instead of all
# eight messages being deferred without a try.
before = len(accepted)
refused_before = count(r"to=<\w+@dead\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=deferred")
r = sender.postern("queue", "flush")
tap.is_(r.returncode, 0, "postern queue flush, with the destination suspended") or tap.diag(r.stderr)
tap.ok(tap.wait_until(lambda: len(accepted) > before, 30),
       f"the suspended destination is tried again after the flush ({len(accepted) - before} connection)")
tap.ok(tap.wait_until(lambda: count(r"to=<\w+@dead\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, "
                                    r".*status=deferred") > refused_before, 30),
       "and a delivery logs the host's refusal again, not the suspension") or tap.diag(sender.log()[-2000:])
tap.ok(tap.wait_until(lambda: count(r"to=<\w+@dead\.test>, .*status=deferred") >= before_lines + 2 + 8, 30),
       "all eight messages are deferred again after the try")
tap.ok(len(accepted) - before <= 2, f"the first failure suspends it again ({len(accepted) - before} connections)")

sender.stop()
receiver.stop()
dead.close()
tap.done()
