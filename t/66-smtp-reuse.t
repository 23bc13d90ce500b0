#!/usr/bin/env python3
# Connection reuse (Postfix's connection cache, smtp_connection_cache_*):
# when more mail waits for one next hop, the smtp runner sends it over one
# SMTP session (RSET between messages) instead of connecting for each.
# The server is a second postern instance, whose log counts the sessions
# ("connect from", and Postfix's "disconnect from ... rset=N quit=1 ...").
# The backlog comes from defer_transports and `postern queue flush`, which
# takes all held mail into the active queue at once.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-qmgr"])

receiver = new_instance("--domain", "direct.test", "-o", "myhostname=receiver.test")
tap.is_(receiver.start().returncode, 0, "the receiving instance starts")
rport = int(re.search(r"127\.0\.0\.1:(\d+)\s", open(os.path.join(receiver.dir, "master.cf")).read()).group(1))

sender = new_instance("--domain", "example.com")
with open(os.path.join(sender.dir, "main.cf"), "a") as f:
    f.write(f"""
transport_maps = inline:{{ {{direct.test = smtp:[127.0.0.1]:{rport}}} }}
defer_transports = smtp
smtp_destination_concurrency_limit = 1
smtp_tls_security_level = may
""")
tap.is_(sender.start().returncode, 0, "the sending instance starts")


def sessions():
    return len(re.findall(r"postern/smtpd\[\d+\]: connect from \S+\[127\.0\.0\.1\]", receiver.log()))


def disconnects():
    return re.findall(r"postern/smtpd\[\d+\]: disconnect from \S+\[127\.0\.0\.1\](.*)", receiver.log())


def hold_and_flush(count, tag):
    """count messages to alice held by defer_transports, then one flush."""
    for i in range(count):
        r = sender.sendmail(["-f", "me@example.com", "alice@direct.test"], f"Subject: {tag} {i}\n\n{tag}\n".encode())
        tap.is_(r.returncode, 0, f"sendmail {tag} {i}") if i == 0 else None
    tap.ok(tap.wait_until(lambda: len(re.findall(r"to=<alice@direct\.test>, .*status=deferred \(deferred transport\)",
                                                 sender.log())) >= count + hold_and_flush.held, 30),
           f"{count} messages held") or tap.diag(sender.log()[-2000:])
    hold_and_flush.held += count
    r = sender.postern("queue", "flush", "direct.test")
    tap.is_(r.returncode, 0, "postern queue flush direct.test") or tap.diag(r.stderr)


hold_and_flush.held = 0

# 1. twenty messages waiting for one next hop: one session carries them
before = len(receiver.delivered("alice"))
hold_and_flush(20, "reuse")
got = receiver.wait_for("alice", before + 20, 60)
tap.is_(len(got) - before, 20, "all twenty arrived")
tap.ok(tap.wait_until(lambda: len(re.findall(r"to=<alice@direct\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent",
                                             sender.log())) >= 20, 30), "the sender logged twenty status=sent")
tap.ok(sessions() <= 2, f"over at most two SMTP sessions (not twenty): {sessions()}")
# the kept session is closed after smtp_connection_cache_time_limit (2s) idle
tap.ok(tap.wait_until(lambda: len(disconnects()) == sessions(), 20), "every session ended once the mail was out")
rsets = sum(int(m.group(1)) for d in disconnects() for m in [re.search(r" rset=(\d+)", d)] if m)
tap.ok(rsets >= 18, f"RSET between the messages on a kept session ({rsets})")
tap.ok(all(re.search(r" quit=1 ", d) for d in disconnects()), "each session ended with QUIT")
tap.ok(all(re.search(r" starttls=1 ", d) for d in disconnects()), "in TLS (STARTTLS once per session)")

# 2. smtp_connection_cache_on_demand = no: a session per message
r = sender.postern("conf", "-e", "smtp_connection_cache_on_demand=no")
sender.stop()
r = sender.start()
tap.is_(r.returncode, 0, "restarted with smtp_connection_cache_on_demand = no") or tap.diag(r.stderr)
first = sessions()
before = len(receiver.delivered("alice"))
hold_and_flush(4, "nocache")
got = receiver.wait_for("alice", before + 4, 60)
tap.is_(len(got) - before, 4, "four more arrived")
tap.ok(tap.wait_until(lambda: sessions() - first == 4, 20), f"over four sessions ({sessions() - first})")

# 3. smtp_connection_cache_destinations: kept even without a backlog, and
#    reused by a message that comes later
r = sender.postern("conf", "-e", "smtp_connection_cache_destinations=127.0.0.1",
                   "smtp_connection_cache_time_limit=30s", "defer_transports=")
sender.stop()
r = sender.start()
tap.is_(r.returncode, 0, "restarted with smtp_connection_cache_destinations") or tap.diag(r.stderr)
first = sessions()
before = len(receiver.delivered("alice"))
for i in range(3):
    sender.sendmail(["-f", "me@example.com", "alice@direct.test"], f"Subject: listed {i}\n\nlisted\n".encode())
    tap.is_(len(receiver.wait_for("alice", before + i + 1, 30)) - before, i + 1, f"message {i} arrived")
tap.is_(sessions() - first, 1, "three messages sent one after another: one session")

sender.stop()
tap.ok(tap.wait_until(lambda: len(disconnects()) == sessions(), 20), "stopping the sender ends its kept session")
tap.ok(re.search(r" quit=1 ", disconnects()[-1]) if disconnects() else False, "with QUIT")
receiver.stop()
tap.done()
