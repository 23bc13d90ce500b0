#!/usr/bin/env python3
# Keep running (issue 10): `postern start` leaves a supervisor that restarts
# qmgr, the queue service and postern-accept when they die (SIGKILL here),
# with backoff when one dies again soon; `postern status` says what
# restarted and when; a dead smtpd zygote is replaced by postern-accept
# itself while connections keep being answered; `postern stop` leaves no
# process of the instance behind.  (Under systemd the units' Restart= does
# the supervisor's job: t/47 and t/48.)
import os
import re
import signal
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from instance import NEEDED, Instance  # noqa: E402
from smtpdtest import wait_for  # noqa: E402

tap.require(NEEDED + ["postern-accept", "postern-smtpd"])

inst = Instance()
tap.is_(inst.init.returncode, 0, "postern init")
port = int(open(os.path.join(inst.dir, "master.cf")).read().split("127.0.0.1:")[1].split()[0])
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stdout + r.stderr)
tap.like(r.stdout, r"supervising the daemons \(pid \d+\)", "and says it supervises the daemons")
sup = inst.supervisor_pid()
tap.ok(sup and open(f"/proc/{sup}/comm").read().strip() == "postern-supervi",
       "the supervisor runs, named postern-supervise")
tap.is_(os.getsid(sup), sup, "in a session of its own")
r = inst.postern("status")
tap.like(r.stdout, rf"supervisor: running \(pid {sup}\)", "postern status names it")


def pidfile(name):
    try:
        return int(open(os.path.join(inst.dir, "queue", "pid", name)).read())
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        return " Z " not in open(f"/proc/{pid}/stat").read()
    except OSError:
        return False


def accept_pidfile():
    names = [n for n in os.listdir(os.path.join(inst.dir, "queue", "pid"))
             if n.startswith("accept.")]
    return names[0] if names else None


def deliver(rcpt, subject):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("s@example.org", [rcpt], f"Subject: {subject}\r\n\r\nx\r\n".encode())


def replaced(name, old):
    """Wait until the pid file `name` names a live process other than old."""
    return wait_for(lambda: pidfile(name) not in (None, old) and alive(pidfile(name)), 15)


# ---- each daemon killed is restarted ----
for name, label in (("qmgr.pid", "qmgr"), ("queue.pid", "the queue service"),
                    (accept_pidfile(), "postern-accept")):
    old = pidfile(name)
    t0 = time.time()
    os.kill(old, signal.SIGKILL)
    tap.ok(replaced(name, old), f"{label} killed with SIGKILL is restarted "
           f"({time.time() - t0:.2f}s; pid {old} -> {pidfile(name)})")
ok = True
try:
    deliver("alice@localhost", "after the restarts")
except (OSError, smtplib.SMTPException) as e:
    ok = False
    tap.diag(repr(e))
tap.ok(ok and inst.wait_for("alice", 1), "mail goes through the restarted daemons")
r = inst.postern("status")
tap.is_(r.returncode, 0, "postern status: everything runs again")
for label in ("qmgr", "queue service", "smtp"):
    tap.like(r.stdout, rf"restarted: {label}, 1 time, last at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d",
             f"postern status says {label} restarted once, and when")
tap.like(inst.log(), r"warning: qmgr is not running: restarting it in 1 s \(it ran less than 60 s\)",
         "the log says so too, with the backoff of a daemon that died within a minute")

# ---- backoff: dying again within a minute doubles it ----
old = pidfile("qmgr.pid")
os.kill(old, signal.SIGKILL)
t0 = time.time()
replaced("qmgr.pid", old)
took = time.time() - t0
tap.ok(1.8 < took < 6, f"a second death within a minute: restarted after a 2 s backoff ({took:.2f}s)")
tap.like(inst.log(), r"qmgr is not running: restarting it in 2 s", "and the log says so")
old = pidfile("qmgr.pid")
os.kill(old, signal.SIGKILL)
time.sleep(0.3)
t0 = time.time()
r = inst.start()
took = time.time() - t0
tap.ok(r.returncode == 0 and alive(pidfile("qmgr.pid")) and took < 1.5,
       f"postern start asks the supervisor to restart at once, backoff or not ({took:.2f}s)")
tap.like(r.stdout, r"supervisor already running", "(and does not start a second supervisor)")

# ---- the zygote: replaced by postern-accept, the port never closes ----
accept = pidfile(accept_pidfile())
children = [int(p) for p in open(f"/proc/{accept}/task/{accept}/children").read().split()]
zygote = [p for p in children if open(f"/proc/{p}/comm").read().strip() == "postern-smtpd"]
tap.is_(len(zygote), 1, "postern-accept has its smtpd zygote")
results = []
stop = threading.Event()


def knock():
    """Connections, one after the other, while the zygote dies."""
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.settimeout(5)
            results.append(s.recv(512)[:3])
            s.close()
        except OSError as e:
            results.append(repr(e))


t = threading.Thread(target=knock)
t.start()
time.sleep(0.3)
os.kill(zygote[0], signal.SIGKILL)
time.sleep(1.5)
stop.set()
t.join(10)
tap.ok(len(results) > 10 and all(x == b"220" for x in results),
       f"connections while the zygote dies all get a banner ({len(results)}, "
       f"{len([x for x in results if x != b'220'])} without)")
tap.ok(wait_for(lambda: len(re.findall(r"zygote \S+ started as pid", inst.log())) >= 3, 15),
       "postern-accept started a new zygote")
tap.is_(pidfile(accept_pidfile()), accept, "without being restarted itself")
ok = True
try:
    deliver("bob@localhost", "after the zygote")
except (OSError, smtplib.SMTPException) as e:
    ok = False
    tap.diag(repr(e))
tap.ok(ok and inst.wait_for("bob", 1), "and mail goes through the new zygote")

# ---- postern stop leaves nothing ----
pids = [pidfile(n) for n in ("supervise.pid", "qmgr.pid", "queue.pid", accept_pidfile())]
r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.like(r.stdout, r"stopped the supervisor", "stops the supervisor first")


def ours():
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if inst.dir.encode() in open(f"/proc/{d}/cmdline", "rb").read() and alive(int(d)):
                    found.append(int(d))
            except OSError:
                pass
    return found


tap.ok(wait_for(lambda: not ours(), 10), f"no process of the instance is left ({ours()})")
tap.ok(not any(p and alive(p) for p in pids), "supervisor, qmgr, queue service, accept: all gone")
r = inst.postern("status")
tap.like(r.stdout, r"supervisor: not running", "postern status: the supervisor is not running")
tap.done()
