#!/usr/bin/env python3
# postern-qmgr killed with SIGKILL at random moments and restarted: every
# message is delivered at least once, nothing stays in the queue, and the
# duplicates (a recipient whose D mark had not reached the disk) are counted.
import os, random, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance

N = 80
inst = Instance("virtual_mailbox_domains = virt.test\nminimal_backoff_time = 1s\n"
                "queue_run_delay = 1s\n")
ids = [inst.inject("alice@example.org", [f"u{i}@virt.test", f"v{i}@virt.test"]) for i in range(N)]
random.seed(4242)
kills = 0
for round_ in range(4):
    inst.start()
    time.sleep(random.uniform(0.05, 0.4))
    if inst.proc.poll() is None:
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait()
        kills += 1
    inst.proc = None
inst.start()
want = {f"{p}{i}@virt.test" for i in range(N) for p in "uv"}


def delivered_recipients():
    return {rcpt for r in inst.runs() for rcpt in r["rcpt"]}


# done = the queue is empty and every recipient was delivered (a kill
# between the move to recycle/ and the "removed" log line leaves no line)
ok(inst.wait(lambda: not inst.files("active") and not inst.files("incoming")
             and not inst.files("deferred") and want <= delivered_recipients(), 60),
   f"after {kills} SIGKILLs and restarts every message is done and removed") or diag(
    f"active {inst.files('active')}, incoming {inst.files('incoming')}, "
    f"deferred {inst.files('deferred')}, corrupt {inst.files('corrupt')}, "
    f"undelivered {sorted(want - delivered_recipients())[:10]}\n" + inst.logtext()[-3000:])
seen = {}
for r in inst.runs():
    for rcpt in r["rcpt"]:
        seen[rcpt] = seen.get(rcpt, 0) + 1
is_(sorted(want - set(seen)), [], "every recipient was delivered at least once")
dups = sum(c - 1 for c in seen.values())
diag(f"{dups} duplicate deliveries out of {2 * N} recipients after {kills} kills")
# at most the deliveries in flight at each kill: 20 runners (the default
# destination concurrency) of 2 recipients
ok(dups <= 40 * max(kills, 1), "duplicates are limited to deliveries in flight at a kill")
is_(inst.stop(), 0, "the last qmgr stops cleanly")

# a kill between emptying a finished message's file and moving it to
# recycle/ leaves an empty file in active/: a finished message, not a corrupt one
inst = Instance("virtual_mailbox_domains = virt.test\n")
write(os.path.join(inst.queue, "active", "ABCDE12345"), "")
inst.start()
ok(inst.wait_log(r"ABCDE12345: removed", 10), "an empty file in active/ is removed at start")
is_((inst.files("active"), inst.files("corrupt")), ([], []), "and not moved to corrupt/")
unlike(inst.logtext(), r"corrupt", "without a corrupt-file warning")
is_(inst.stop(), 0, "qmgr stops cleanly")

# a SIGTERM during start-up: qmgr blocks it first thing in main(), before
# main.cf, the queue tree, the pid file and the trigger, so it finishes
# starting and stops cleanly.  Its maillog_file here is a FIFO, whose
# opening (in reading main.cf) waits for a reader: qmgr is held in the
# middle of its start-up while the signal arrives.
inst = Instance("virtual_mailbox_domains = virt.test\n")
fifo = os.path.join(inst.dir, "maillog.fifo")
os.mkfifo(fifo)
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"maillog_file = {fifo}\n")


def term_blocked(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            blocked = next(line for line in f if line.startswith("SigBlk:"))
    except (OSError, StopIteration):
        return False
    return bool(int(blocked.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


p = start([prog("postern-qmgr"), "-c", inst.dir], stderr=open(os.path.join(inst.dir, "stderr"), "ab"))
ok(inst.wait(lambda: term_blocked(p.pid) or p.poll() is not None, 10),
   "qmgr blocks SIGTERM before it reads main.cf")
p.send_signal(signal.SIGTERM)
reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)     # qmgr goes on
logged = b""
end = time.time() + 10
while time.time() < end:
    try:
        chunk = os.read(reader, 65536)
    except BlockingIOError:
        chunk = b""
    logged += chunk
    if not chunk:
        if p.poll() is not None:
            break
        time.sleep(0.01)
os.close(reader)
try:
    code = p.wait(1)
except subprocess.TimeoutExpired:
    code = None
is_(code, 0, "a SIGTERM during start-up ends qmgr cleanly (exit 0)")
like(logged.decode(errors="replace"), r"terminating on signal 15", "after it started, saying why")
done()
