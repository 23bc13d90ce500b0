#!/usr/bin/env python3
# `postern init/start/stop/status` on their own: the files init writes, and
# the daemon handling, with a stand-in postern-qmgr (a script that opens
# the trigger FIFO as qmgr does and waits for SIGTERM).
import os
import re
import signal
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from instance import kill_instance_daemon, root_init_options

base = tempdir()
inst = os.path.join(base, "inst")
r = run(["postern", "init", inst, "--port", "2999", "--domain", "example.com",
         "--domain", "example.net", "-o", "myhostname=mx.example.com", "-o", "delay_warning_time=1h"])
is_(r.returncode, 0, "postern init exits 0")
like(r.stdout, r"instance created in " + re.escape(os.path.realpath(inst)), "and says where")
cf = open(os.path.join(inst, "main.cf")).read()


def param(name):
    m = re.search(rf"^{name} = (.*)$", cf, re.M)
    return m.group(1) if m else None


real = os.path.realpath(inst)
import atexit
atexit.register(kill_instance_daemon, real)
is_(param("queue_directory"), f"{real}/queue", "queue_directory is inside the instance")
is_(param("maillog_file"), f"{real}/maillog", "maillog_file is inside the instance")
is_(param("daemon_directory"), os.path.realpath(BIN), "daemon_directory is where postern itself is")
is_(param("virtual_mailbox_domains"), "localhost, example.com, example.net", "localhost and each --domain are virtual mailbox domains")
is_(param("virtual_mailbox_base"), f"{real}/mail", "virtual_mailbox_base is DIR/mail")
owner = os.getuid() if os.getuid() else __import__("pwd").getpwnam("nobody").pw_uid
is_(param("virtual_uid_maps"), f"static:{owner}", "mail is owned by the invoking user (nobody for root)")
is_(os.stat(os.path.join(inst, "mail")).st_uid, owner, "and so is DIR/mail")
if os.getuid() == 0:
    is_(param("mail_owner"), None, "root: mail_owner keeps its default (postern start runs qmgr as that user)")
else:
    is_(param("mail_owner"), __import__("pwd").getpwuid(os.getuid()).pw_name, "mail_owner is the invoking user")
is_(param("myhostname"), "mx.example.com", "-o replaces a parameter init would write")
is_(param("delay_warning_time"), "1h", "-o adds a parameter init does not write")
like(open(os.path.join(inst, "master.cf")).read(), r"^127\.0\.0\.1:2999\s+inet\s.*\ssmtpd$",
     "--port goes into master.cf as the smtpd service")
pcre = open(os.path.join(inst, "vmailbox.pcre")).read()
like(pcre, r"\$1/Maildir/", "the mailbox map sends NAME to NAME/Maildir/")
for q in ("incoming", "active", "deferred", "hold", "corrupt", "pid"):
    ok(os.path.isdir(os.path.join(inst, "queue", q)), f"queue/{q} exists")
ok(os.path.exists(os.path.join(inst, "queue", "public", "qmgr")), "the trigger FIFO exists")
r = run(["postern", "init", inst])
isnt(r.returncode, 0, "init refuses a directory that is an instance already")
like(r.stderr, r"already", "saying so")
r = run(["postern", "init"])
is_(r.returncode, 2, "init without a directory: usage, exit 2")

# a stand-in qmgr in a daemon_directory of its own
fake = os.path.join(base, "fakebin")
os.mkdir(fake)
write(os.path.join(fake, "postern-qmgr"), f"""#!/usr/bin/env python3
import os, signal, sys, time
fifo = os.path.join({real!r}, "queue", "public", "qmgr")
with open(os.path.join({real!r}, "fake-pids"), "a") as f:   # the test stops every one by PID
    f.write(str(os.getpid()) + chr(10))
if os.environ.get("FAKE_QMGR_FAIL"):
    sys.exit(3)
time.sleep(float(os.environ.get("FAKE_QMGR_DELAY", "0")))
fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
pidfile = os.path.join({real!r}, "queue", "pid", "qmgr.pid")
open(pidfile, "w").write(str(os.getpid()) + chr(10))    # as postern-qmgr does
def term(*a):
    os.unlink(pidfile)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
for _ in range(600):        # never outlive a test run by much
    time.sleep(1)
""", 0o755)


def stop_fakes():
    """Stop by PID every stand-in qmgr the test started (at exit)."""
    try:
        pids = open(os.path.join(real, "fake-pids")).read().split()
    except OSError:
        return
    for p in pids:
        try:
            os.kill(int(p), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


atexit.register(stop_fakes)
o = ["-o", f"daemon_directory={fake}"]
if os.getuid() == 0:
    # root runs each daemon as its own user, or nothing at all
    r = run(["postern", "start", "-c", inst] + o + ["-o", "mail_owner=no-such-user-here"])
    is_(r.returncode, 1, "root: start refuses when mail_owner does not exist")
    like(r.stderr, r"qmgr runs as mail_owner = no-such-user-here, and there is no such user",
         "saying which user is missing")
    like(r.stderr, r"(?s)refusing to run the daemons as root.*useradd --system", "and how to create the users")
    ok(not os.path.exists(os.path.join(inst, "queue", "pid", "qmgr.pid")), "and starts nothing")
    r = run(["postern", "start", "-c", inst] + o + ["-o", "mail_owner=root"])
    like(r.stderr, r"mail_owner = root is root; qmgr must run as an unprivileged user",
         "root: mail_owner = root is refused too")
    os.chmod(base, 0o755)       # the stand-in runs as mail_owner
    o += [a for a in root_init_options() if "virtual" not in a][:8]
    write(os.path.join(real, "fake-pids"), "", 0o666)
r = run(["postern", "start", "-c", inst] + o)
if not is_(r.returncode, 0, "postern start exits 0"):
    diag(r.stderr)
like(r.stdout, rf"started postern-qmgr \(pid (\d+)\); log: {re.escape(real)}/maillog", "and prints the pid and the log")
pid = int(open(os.path.join(inst, "queue", "pid", "qmgr.pid")).read())
ok(os.path.exists(f"/proc/{pid}"), "the pid file names the running daemon")
is_(os.getsid(pid), pid, "the daemon runs in a session of its own")
r = run(["postern", "start", "-c", inst] + o)
like(r.stdout, rf"already running \(pid {pid}\)", "a second start says it is already running")
r = run(["postern", "status", "-c", inst] + o)
is_(r.returncode, 0, "status exits 0 while running")
like(r.stdout, rf"running \(pid {pid}\)", "status gives the pid")
open(os.path.join(inst, "queue", "deferred", "ABC123"), "w").close()
open(os.path.join(inst, "queue", "incoming", ".tmp.1.1"), "w").close()
r = run(["postern", "status", "-c", inst] + o)
like(r.stdout, r"queue: incoming 0, active 0, deferred 1, hold 0, corrupt 0", "status counts queue files, not temporary dot-files")
r = run(["postern", "stop", "-c", inst] + o)
is_(r.returncode, 0, "stop exits 0")
like(r.stdout, rf"stopped \(pid {pid}\)", "and says it stopped")
# stop returned once the daemon had exited
ok(not os.path.exists(f"/proc/{pid}") or " Z " in open(f"/proc/{pid}/stat").read(), "the daemon is gone")
ok(not os.path.exists(os.path.join(inst, "queue", "pid", "qmgr.pid")), "the pid file is gone")
r = run(["postern", "status", "-c", inst] + o)
is_(r.returncode, 1, "status exits 1 when stopped")

# a stale pid file (a dead process, or someone else's pid) does not stop a start
write(os.path.join(inst, "queue", "pid", "qmgr.pid"), f"{os.getpid()}\n")
r = run(["postern", "status", "-c", inst] + o)
like(r.stdout, r"not running", "a pid file naming another program is not 'running'")
r = run(["postern", "start", "-c", inst] + o, env={"FAKE_QMGR_DELAY": "0.3"})
is_(r.returncode, 0, "start over a stale pid file works, waiting for the daemon to open its FIFO")
run(["postern", "stop", "-c", inst] + o)

# a daemon that dies at start is reported
r = run(["postern", "start", "-c", inst] + o, env={"FAKE_QMGR_FAIL": "1"})
is_(r.returncode, 1, "start exits 1 when the daemon exits at once")
like(r.stderr, r"postern-qmgr exited at start \(status 3\)", "and says how it exited")
write(os.path.join(inst, "queue", "pid", "qmgr.pid"), "1\n")
r = run(["postern", "start", "-c", inst] + o, env={"FAKE_QMGR_DELAY": "45"})
is_(r.returncode, 1, "start exits 1 when the daemon is not ready in time")
like(r.stderr, r"not ready after \d+ seconds", "and says so")
m = re.search(r"\(pid (\d+)\)", r.stderr)
if m:
    os.kill(int(m.group(1)), signal.SIGTERM)     # the slow stand-in it left running
stale = int(open(os.path.join(inst, "queue", "pid", "qmgr.pid")).read())
is_(stale, 1, "(the pid file is qmgr's own: start does not write it)")
r = run(["postern", "start", "-c", inst, "-o", f"daemon_directory={base}/nonexistent"] + o[2:])
isnt(r.returncode, 0, "start without a postern-qmgr fails")
like(r.stderr, r"cannot run .*postern-qmgr", "naming the program")
done()
