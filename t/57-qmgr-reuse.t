#!/usr/bin/env python3
# postern-qmgr reuses its runners (doc/delivery.md, "Reuse mode"): one
# runner process serves request after request, max_use and max_idle retire
# it, a reload retires it, qmgr's stop ends it, and a runner killed with
# SIGKILL in the middle of a request (or while idle) loses nothing.  Driven
# with the fake runner of t/lib/qmgrtest.py, which logs its pid and the
# request's number in that process.
import os, signal, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean


def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def deliver(inst, rcpt):
    qid = inst.inject("alice@example.org", [rcpt])
    inst.poke()
    ok_ = inst.wait_log(rf"{qid}: removed$", 10)
    if not ok_:
        diag(inst.logtext()[-2000:])
    return qid, ok_


def run_of(inst, qid):
    return [r for r in inst.runs() if r.get("queue_id") == qid]


# ---- one process, several requests; a new one after max_use
inst = Instance("virtual_mailbox_domains = virt.test\nmax_use = 3\n"
                "tvirt_destination_concurrency_limit = 1\n")
inst.start()
qids = []
for i in range(7):
    qid, done_ = deliver(inst, f"user{i}@virt.test")
    qids.append(qid)
ok(all(len(run_of(inst, q)) == 1 for q in qids), "seven messages, each delivered once")
runs = [run_of(inst, q)[0] for q in qids]
pids = [r["pid"] for r in runs]
is_([r["serial"] for r in runs], [1, 2, 3, 1, 2, 3, 1],
    "each runner serves max_use=3 requests, then a new one takes over")
ok(pids[0] == pids[1] == pids[2] and pids[3] == pids[4] == pids[5]
   and len({pids[0], pids[3], pids[6]}) == 3, "three processes for seven deliveries")
is_(runs[0]["args"][:3], ["-S", "-c", inst.dir], "runners are started as -S -c DIR")
ok(inst.wait(lambda: not alive(pids[0]) and not alive(pids[3]), 5),
   "a runner that served max_use requests has exited")
ok(alive(pids[6]), "the runner with requests left waits for the next one")
like(runs[1]["content"], r"hello", "a reused runner reads each request's queue file")

# ---- killed while idle: the next message goes to a new runner, no deferral
os.kill(pids[6], signal.SIGKILL)
ok(inst.wait(lambda: not alive(pids[6]), 5), "an idle runner is killed")
qid, done_ = deliver(inst, "after-idle-kill@virt.test")
ok(done_, "after an idle runner is killed the next message is delivered")
unlike(inst.logtext(), rf"{qid}: .*status=deferred", "without a deferral")
isnt([r["pid"] for r in run_of(inst, qid)], [pids[6]], "by a new runner")

# ---- SIGKILL in the middle of a request: deferred, delivered later
fresh = run_of(inst, qid)[0]["pid"]
open(os.path.join(inst.dir, "block"), "w").close()
blocked = inst.inject("alice@example.org", ["block-me@virt.test"])
inst.poke()
ok(inst.wait(lambda: os.path.exists(os.path.join(inst.dir, "blocked")), 10),
   "the runner is in the middle of the request")
with open(os.path.join(inst.dir, "blocked")) as f:
    victim = int(f.read().split()[0])
is_(victim, fresh, "the request went to the reused runner")
os.kill(victim, signal.SIGKILL)
ok(inst.wait_log(rf"{blocked}: to=<block-me@virt.test>, relay=tvirt, .*status=deferred "
                 rf"\(delivery agent crashed \(postern-tvirt: signal 9\)\)$", 10),
   "the killed runner's recipient is deferred as 'delivery agent crashed'")
os.unlink(os.path.join(inst.dir, "block"))
inst.poke(b"F")
ok(inst.wait_log(rf"{blocked}: to=<block-me@virt.test>, .*status=sent", 15),
   "and delivered at the next attempt")
later = [r["pid"] for r in run_of(inst, blocked)]
ok(len(later) == 2 and later[1] != victim, "by another runner")
ok(inst.proc.poll() is None, "qmgr keeps running")

# ---- a reload retires the runners started before it
qid, _ = deliver(inst, "before-reload@virt.test")
before = run_of(inst, qid)[0]["pid"]
inst.proc.send_signal(signal.SIGHUP)
ok(inst.wait_log(r"reload -- configuration", 5), "qmgr reloads")
ok(inst.wait(lambda: not alive(before), 5), "the runner started before the reload exits")
qid, _ = deliver(inst, "after-reload@virt.test")
isnt(run_of(inst, qid)[0]["pid"], before, "a new runner serves the next request")

# ---- qmgr's stop ends its runners (EOF on their channel)
last = run_of(inst, qid)[0]["pid"]
ok(alive(last), "an idle runner is waiting")
inst.stop()
ok(inst.wait(lambda: not alive(last), 5), "it exits when qmgr stops")

# ---- a request larger than the socket buffer is sent as the runner reads it
inst = Instance("virtual_mailbox_domains = virt.test\ntvirt_destination_recipient_limit = 5000\n")
inst.start()
many = [f"user{i:05d}-" + "x" * 100 + "@virt.test" for i in range(4000)]
qid = inst.inject("alice@example.org", many)
inst.poke()
ok(inst.wait_log(rf"{qid}: removed$", 60), "a message with 4000 long recipients (a 450 kB request) is done")
got = run_of(inst, qid)
is_((len(got), sorted(got[0]["rcpt"]) if got else None), (1, many),
    "in one request that carried every recipient")
qid, done_ = deliver(inst, "next@virt.test")
is_(run_of(inst, qid)[0]["pid"] if done_ else None, got[0]["pid"] if got else 0,
    "and the same runner serves the next request")
inst.stop()

# ---- max_idle
inst = Instance("virtual_mailbox_domains = virt.test\nmax_idle = 1s\n")
inst.start()
qid, _ = deliver(inst, "idle@virt.test")
pid = run_of(inst, qid)[0]["pid"]
ok(alive(pid), "the runner stays after its request")
ok(inst.wait(lambda: not alive(pid), 5), "and exits after max_idle=1s without work")
qid, _ = deliver(inst, "idle2@virt.test")
isnt(run_of(inst, qid)[0]["pid"], pid, "the next message starts a new runner")
inst.stop()
ok(all_clean(), "qmgr stopped cleanly")
done()
