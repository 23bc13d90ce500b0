#!/usr/bin/env python3
# The crash test: POSTERN_CRASH_COUNT (default 2,000; 300 with a sanitizer
# build) messages submitted
# through sendmail and, a quarter of them, through smtpd in sessions of
# several messages each (one connection to the queue service per session;
# 250 on K), several at a time, while qmgr, the queue service, rewrite, the
# queue service's workers (idle ones, and ones holding a message) and the
# delivery runners are killed with SIGKILL at random moments (qmgr
# by the PID in its pid file, then restarted; the others found as children
# in /proc).  Afterwards every acknowledged message (sendmail exit 0, or
# smtpd's 250: the queue returned K after fsync) must have been delivered
# at least once, and every refusal must be temporary; the number of
# duplicates is reported as a diag line.
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from instance import NEEDED, Instance

require(NEEDED)

# sanitizer builds start each process several times slower: 300 there
SANITIZED = b"__asan_init" in open(prog("sendmail"), "rb").read()
COUNT = int(os.environ.get("POSTERN_CRASH_COUNT", "300" if SANITIZED else "2000"))
PARALLEL = int(os.environ.get("POSTERN_CRASH_PARALLEL", "8"))
DRAIN_TIMEOUT = float(os.environ.get("POSTERN_CRASH_DRAIN", "120"))
random.seed(os.environ.get("POSTERN_CRASH_SEED", str(os.getpid())))
started = time.time()

inst = Instance("-o", "minimal_backoff_time=1s", "-o", "maximal_backoff_time=2s",
                "-o", "queue_run_delay=1s")
r = inst.start()
is_(r.returncode, 0, "the instance starts")

# ---- processes to kill ----
VICTIM_NAMES = ("postern-rewrite", "postern-queue", "postern-virtual")


def process_table():
    """pid -> (ppid, comm) for every process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        table[int(entry)] = (int(fields[1]), comm)
    return table


def descendants(table, roots):
    """Every pid below the roots."""
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


kills = {"qmgr": 0, "queue service": 0, "postern-rewrite": 0, "postern-queue": 0,
         "busy worker": 0, "postern-virtual": 0}
stop_killing = threading.Event()
restart_failures = []


def find_victims(name):
    """Our descendants, qmgr's and the queue service's (its injection
    children) named `name` (comm), right now."""
    table = process_table()
    roots = [os.getpid()] + [p for p in (inst.qmgr_pid(), inst.queue_service_pid()) if p]
    # a child with its parent's name is not one of ours but a helper clone
    # (LeakSanitizer's tracer in sanitizer builds): killing it hangs its parent
    service = inst.queue_service_pid()
    return [p for p in descendants(table, roots) if table.get(p, (0, ""))[1] == name
            and (table[p][0] == service or table.get(table[p][0], (0, ""))[1] != name)]


def killer():
    """Every 10-100 ms pick a kind of process at random and kill one of
    them with SIGKILL, watching /proc for up to 0.3 s until one turns up
    (runners and injectors live only milliseconds)."""
    while not stop_killing.is_set():
        time.sleep(random.uniform(0.01, 0.1))
        if stop_killing.is_set():
            break
        dice = random.random()
        if dice < 0.12:
            # a daemon: qmgr, or the queue service (its clients then fall
            # back to exec'ing postern-queue until it is started again)
            which = "qmgr" if dice < 0.08 else "queue service"
            pid = inst.qmgr_pid() if which == "qmgr" else inst.queue_service_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills[which] += 1
                except ProcessLookupError:
                    pass
                time.sleep(random.uniform(0, 0.3))
                r = inst.start()
                if r.returncode != 0:
                    restart_failures.append(r.stderr)
            continue
        name = random.choice(VICTIM_NAMES + ("busy worker",))
        end = time.time() + 0.3
        while time.time() < end and not stop_killing.is_set():
            victims = inst.queue_workers(busy=True) if name == "busy worker" else find_victims(name)
            if victims:
                try:
                    os.kill(random.choice(victims), signal.SIGKILL)
                    kills[name] += 1
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.002)


# ---- submitters ----
acked, refused = set(), {}
lock = threading.Lock()
next_index = [0]


def submitter():
    env = dict(os.environ, POSTERN_CONFIG_DIR=inst.dir)
    while True:
        with lock:
            i = next_index[0]
            if i >= COUNT:
                return
            next_index[0] += 1
        body = f"Subject: crash-test {i}\nX-Crash-Id: {i}\n\nmessage {i}\n".encode()
        p = subprocess.run([prog("sendmail"), f"crash{i % 4}@localhost"], input=body,
                           capture_output=True, env=env, timeout=120)
        with lock:
            if p.returncode == 0:
                acked.add(i)
            else:
                refused[i] = p.returncode


SMTP_PORT = int(open(os.path.join(inst.dir, "master.cf")).read().split("127.0.0.1:")[1].split()[0])
SESSION = 4                 # messages per SMTP session
smtp_refused = {}


def smtp_submitter():
    """Sessions of SESSION messages through smtpd: 250 acknowledges; any
    other answer must be temporary, and the session goes on where the
    protocol allows."""
    while True:
        with lock:
            first = next_index[0]
            if first >= COUNT:
                return
            batch = list(range(first, min(first + SESSION, COUNT)))
            next_index[0] = batch[-1] + 1
        try:
            smtp = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=120)
            smtp.ehlo("crash.example")
        except (OSError, smtplib.SMTPException) as e:
            with lock:
                for i in batch:
                    smtp_refused[i] = str(e)
            continue
        for i in batch:
            body = f"Subject: crash-test {i}\r\nX-Crash-Id: {i}\r\n\r\nmessage {i}\r\n".encode()
            try:
                smtp.sendmail("crash@localhost", [f"crash{i % 4}@localhost"], body)
                with lock:
                    acked.add(i)
            except smtplib.SMTPResponseException as e:
                with lock:
                    smtp_refused[i] = e.smtp_code
                try:
                    smtp.rset()
                except (OSError, smtplib.SMTPException):
                    break
            except (OSError, smtplib.SMTPException) as e:
                with lock:
                    smtp_refused[i] = str(e)
                break
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass


kthread = threading.Thread(target=killer)
kthread.start()
workers = [threading.Thread(target=smtp_submitter if n % 4 == 3 else submitter)
           for n in range(PARALLEL)]
for w in workers:
    w.start()
for w in workers:
    w.join()
stop_killing.set()
kthread.join()
submit_done = time.time()
diag(f"submitted {COUNT} in {submit_done - started:.1f}s: {len(acked)} acknowledged, "
     f"{len(refused)} not (exit codes {sorted(set(refused.values()))})")
diag("killed: " + ", ".join(f"{k} {v}" for k, v in kills.items()))
is_(restart_failures, [], "qmgr restarted after every kill")
ok(sum(kills.values()) > 0, "processes were killed during the run")
ok(all(c in (75, 69) for c in refused.values()), "every unacknowledged submission exited EX_TEMPFAIL (or EX_UNAVAILABLE)")
diag(f"smtpd: {len(smtp_refused)} not acknowledged ({sorted(set(map(str, smtp_refused.values())))})")
ok(all(not isinstance(c, int) or 400 <= c < 500 for c in smtp_refused.values()),
   "every message smtpd did not acknowledge got a temporary failure (4xx)")

# ---- drain ----
if not inst.qmgr_pid() or not os.path.exists(f"/proc/{inst.qmgr_pid()}"):
    inst.start()
inst.sendmail(["-q"], b"")
ID = re.compile(rb"^X-Crash-Id: (\d+)$", re.M)


def deliveries():
    seen = []
    for n in range(4):
        new = os.path.join(inst.maildir(f"crash{n}"), "new")
        if not os.path.isdir(new):
            continue
        for f in os.listdir(new):
            try:
                data = open(os.path.join(new, f), "rb").read()
            except OSError:
                continue
            m = ID.search(data)
            if m:
                seen.append(int(m.group(1)))
    return seen


end = time.time() + DRAIN_TIMEOUT
while time.time() < end:
    counts = inst.queue_counts()
    if counts["incoming"] + counts["active"] + counts["deferred"] == 0:
        break
    time.sleep(0.25)
counts = inst.queue_counts()
is_(counts["incoming"] + counts["active"] + counts["deferred"], 0, "the queue drains after the restarts")
if not is_(counts["corrupt"], 0, "no queue file was found corrupt"):
    bad_ids = set(re.findall(r"(\w+): corrupt queue file", inst.log()))
    diag("\n".join(l for l in inst.log().splitlines()
                    if "corrupt" in l or any(i in l for i in bad_ids) or "daemon started" in l)[-3000:])

seen = deliveries()
unique = set(seen)
lost = sorted(acked - unique)
is_(lost, [], "every acknowledged message was delivered at least once")
duplicates = len(seen) - len(unique)
diag(f"delivered {len(unique)} distinct messages ({len(unique - acked)} of them unacknowledged), "
     f"{duplicates} duplicates")
diag(f"crash test: {COUNT} messages, {time.time() - started:.1f}s in all")
inst.stop()


def instance_runners():
    """Runner processes of this instance (reused ones live as long as qmgr
    hands them work; -c names the instance's directory)."""
    out = []
    for pid, (_, comm) in process_table().items():
        if comm.startswith("postern-") and comm != "postern-qmgr":
            try:
                args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if inst.dir.encode() in args:
                out.append(pid)
    return out


deadline = time.time() + 10
while instance_runners() and time.time() < deadline:
    time.sleep(0.1)
is_(instance_runners(), [], "no runner outlives its qmgr (killed or stopped)")
done()
