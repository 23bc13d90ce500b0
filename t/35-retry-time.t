#!/usr/bin/env python3
# The next attempt time of deferred mail in an instance started by root,
# where qmgr runs as mail_owner and the queue files have other owners: mail
# root queues through sendmail (the queue service's user owns the file; or,
# with no service, root's own postern-queue, which gives its file to
# mail_owner) and that a transport defers must wait minimal_backoff_time
# (an hour here), not come back at every deferred/ scan (queue_run_delay 1s)
# — the retry storm qmgr caused when it could not set the time
# ("set next attempt time: Operation not permitted").  Scans are proved by
# held messages that, once released, only a deferred/ scan delivers.
import os
import pwd
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from instance import NEEDED, ROOT_USERS, Instance  # noqa: E402

if os.geteuid() != 0:
    tap.skip_all("qmgr runs as another user than the submitter only when root starts the instance")
tap.require(programs=tuple(NEEDED))
mail = pwd.getpwnam(ROOT_USERS["mail_owner"])

inst = Instance()
tap.is_(inst.init.returncode, 0, "postern init")
D = inst.dir
tap.write(os.path.join(D, "header_checks"), "/^Subject: probe/ HOLD\n")
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
minimal_backoff_time = 3600s
maximal_backoff_time = 4000s
queue_run_delay = 1s
transport_maps = inline:{{ {{defer.test = retry:4.4.1 try again later}} }}
header_checks = regexp:{D}/header_checks
""")
r = inst.start()
tap.is_(r.returncode, 0, "postern start as root") or tap.diag(r.stdout + r.stderr)


def deferrals(rcpt):
    return re.findall(r"(\w+): to=<%s>, .*status=deferred" % re.escape(rcpt), inst.log())


def send(rcpt, subject):
    r = inst.sendmail(["-f", "root@localhost", rcpt], f"Subject: {subject}\n\nx\n".encode())
    tap.is_(r.returncode, 0, f"root's sendmail queues '{subject}'") or tap.diag(r.stderr)


def deferred_once(rcpt):
    ok = tap.wait_until(lambda: deferrals(rcpt), timeout=20)
    tap.ok(ok, f"{rcpt} deferred") or tap.diag(inst.log()[-3000:])
    return deferrals(rcpt)[0] if ok else "none"


probes = 0


def deferred_scans(count):
    """Let count deferred/ scans pass: each one releases a held message and
    waits until a scan has delivered it."""
    global probes
    for _ in range(count):
        probes += 1
        send("alice@localhost", f"probe {probes}")
        hold = os.path.join(D, "queue", "hold")
        tap.wait_until(lambda: os.listdir(hold), timeout=15)
        inst.postern("queue", "release", "ALL")
        got = inst.wait_for("alice", probes, timeout=15)
        tap.is_(len(got), probes, f"probe {probes} released and delivered by a deferred/ scan")


# 1. through the queue service: written by the service's user into a slot
# of recycle/, which qmgr made, so the file is mail_owner's
# (doc/queue-format.md, "Commit")
send("service@defer.test", "via the queue service")
id1 = deferred_once("service@defer.test")
tap.is_(os.stat(os.path.join(D, "queue", "deferred", id1)).st_uid, mail.pw_uid,
        "that file is mail_owner's: a slot qmgr made, written by the queue service's user")

# 2. root's own postern-queue (no queue service answers): the file goes to mail_owner
inst.stop_supervisor()
qpid = inst.queue_service_pid()
if qpid:
    os.kill(qpid, signal.SIGTERM)
    tap.wait_until(lambda: not os.path.exists(f"/proc/{qpid}")
                   or " Z " in open(f"/proc/{qpid}/stat").read(), timeout=15)
send("direct@defer.test", "via root's postern-queue")
id2 = deferred_once("direct@defer.test")
st = os.stat(os.path.join(D, "queue", "deferred", id2))
tap.is_(st.st_uid, mail.pw_uid, "root's queue file belongs to mail_owner")
tap.ok(st.st_mtime > time.time() + 3000,
       "its mtime, the next attempt time, is minimal_backoff_time away") or tap.diag(st.st_mtime - time.time())

deferred_scans(2)
tap.is_(len(deferrals("service@defer.test")), 1, "the service's file is not retried before its time")
tap.is_(len(deferrals("direct@defer.test")), 1, "root's file is not retried before its time")
tap.ok(not re.search(r"set next attempt time", inst.log()), "no 'set next attempt time' warning") \
    or tap.diag(re.findall(r".*set next attempt time.*", inst.log())[:3])

# a release (hold, then release) still makes the service's file due at once
inst.postern("queue", "hold", id1)
inst.postern("queue", "release", id1)
tap.ok(tap.wait_until(lambda: len(deferrals("service@defer.test")) == 2, timeout=15),
       "released, the service's file is tried again at the next scan")
deferred_scans(1)
tap.is_(len(deferrals("service@defer.test")), 2, "and then waits again")

inst.stop()
inst.kill_daemon()
tap.done()
