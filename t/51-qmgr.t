#!/usr/bin/env python3
# postern-qmgr: the active queue, runners, log lines, error:/discard:, missing
# runners, deferral and backoff, expiry, notices, corrupt files, hold/, the
# trigger FIFO, SIGHUP and SIGTERM.  Queue files are written from the outside
# (t/lib/qmgrtest.py) and delivered by a fake runner that speaks
# doc/delivery.md.
import os, re, signal, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, status_bytes, all_clean

LINE = r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postern/qmgr\[\d+\]: "
DELAYS = r"delay=[\d.]+, delays=[\d.]+/[\d.]+/0/[\d.]+"


def delivered(inst, qid, timeout=10):
    return inst.wait_log(rf"{qid}: removed$", timeout)


# ---- a plain delivery, grouped by transport and nexthop
inst = Instance("virtual_mailbox_domains = virt.test\nrelay_domains = relay.test\n"
                "tvirt_destination_recipient_limit = 2\n")
inst.start()
ok(inst.wait(lambda: os.path.exists(os.path.join(inst.queue, "pid", "qmgr.pid"))),
   "qmgr writes queue/pid/qmgr.pid")
with open(os.path.join(inst.queue, "pid", "qmgr.pid")) as f:
    is_(f.read().strip(), str(inst.proc.pid), "the pid file holds its pid")
qid = inst.inject("alice@example.org", ["a1@virt.test", "a2@virt.test", "a3@virt.test",
                                       "bob@localhost", "carol@relay.test"])
inst.poke()
ok(delivered(inst, qid), "the message is delivered and removed")
log = inst.logtext()
like(log, LINE + rf"{qid}: from=<alice@example.org>, size=21, nrcpt=5 \(queue active\)$",
     "Postfix's 'queue active' line")
like(log, LINE + rf"{qid}: to=<a1@virt.test>, relay=tvirt, {DELAYS}, dsn=2.0.0, status=sent \(delivered by fake\)$",
     "the delivery line has Postfix's format")
like(log, LINE + rf"{qid}: removed$", "and 'removed' at the end")
runs = inst.runs()
virt = sorted(len(r["rcpt"]) for r in runs if r["program"] == "postern-tvirt")
is_(virt, [1, 2], "3 virtual recipients in batches of tvirt_destination_recipient_limit=2")
local = [r for r in runs if r["program"] == "postern-tlocal"]
is_(len(local), 1, "the local recipient goes to local_transport's runner")
is_(local[0]["nexthop"], "mx.example.test", "with local_transport's nexthop")
is_(runs[0]["args"][:3], ["-S", "-c", inst.dir], "runners get -S -c DIR (reuse mode)")
is_(runs[0]["content"], "Subject: test\n\nhello\n", "runners read the message from fd 0 at M")
is_(runs[0]["sender"], "alice@example.org", "and the sender from the request")
ok(any(a.startswith("arrival=") for a in runs[0]["attrs"]),
   "and the arrival time as an attribute")
is_(inst.files("incoming") + inst.files("active") + inst.files("deferred"), [],
    "nothing is left in the queue")

# ---- results: bounce, deferral, crash
qid = inst.inject("alice@example.org", ["bounce1@virt.test", "defer1@virt.test", "ok1@virt.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "a message with a deferred recipient goes to deferred/")
log = inst.logtext()
like(log, rf'{qid}: to=<bounce1@virt.test>, relay=tvirt, {DELAYS}, dsn=5.1.1, status=bounced \(unknown user: "bounce1@virt.test"\)$',
     "a D result is logged as bounced")
like(log, rf"{qid}: to=<defer1@virt.test>, relay=tvirt, {DELAYS}, dsn=4.2.0, status=deferred \(try again later\)$",
     "a Z result is logged as deferred")
path = os.path.join(inst.queue, "deferred", qid)
is_(status_bytes(path), "DRD", "status bytes: bounced recipient noticed (D), deferred R, sent D")
ok(os.stat(path).st_mtime > time.time() + 250, "the next attempt time (mtime) is minimal_backoff_time ahead")
with open(path, "rb") as f:
    data = f.read()
like(data.decode(), r"^S\d+ 4\.2\.0 try again later$", "an S record keeps the deferral reason")
notices = inst.runs("notices.jsonl")
is_([(n["kind"], n["rcpt"], n["status"]) for n in notices],
    [("failure", ["bounce1@virt.test"], ['5.1.1 unknown user: "bounce1@virt.test"'])],
    "postern-bounce is asked for a non-delivery notice with the last status")

qid = inst.inject("alice@example.org", ["remote1@virt.test", "ok3@virt.test"])
inst.poke()
ok(delivered(inst, qid), "a runner may name the relay it talked to")
like(inst.logtext(), rf"{qid}: to=<remote1@virt.test>, relay=mx\.example\.net\[192\.0\.2\.25\]:25, {DELAYS}, dsn=2\.0\.0, status=sent",
     "an R record sets relay= of the results after it")
like(inst.logtext(), rf"{qid}: to=<ok3@virt.test>, relay=mx\.example\.net\[192\.0\.2\.25\]:25, ",
     "until the next R record")

qid = inst.inject("alice@example.org", ["crash1@virt.test"])
inst.poke()
ok(inst.wait_log(rf"{qid}: to=<crash1@virt.test>, relay=tvirt, .*dsn=4\.3\.0, status=deferred \(delivery agent postern-tvirt exited with status 3 without a result\)$"),
   "a runner that exits without a result defers its recipients")

# ---- a runner past TRANSPORT_time_limit is killed
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write("tvirt_time_limit = 1s\n")
inst.proc.send_signal(signal.SIGHUP)
ok(inst.wait_log(r"reload -- configuration "), "reload with tvirt_time_limit = 1s")
qid = inst.inject("alice@example.org", ["hang1@virt.test"])
inst.poke()
ok(inst.wait_log(rf"{qid}: to=<hang1@virt.test>, relay=tvirt, .*dsn=4\.3\.0, status=deferred \(delivery agent postern-tvirt exceeded its time limit \(1s\)\)$", 5),
   "a runner past its time limit is killed and its recipients deferred")
like(inst.logtext(), rf"{qid}: killing .*postern-tvirt \(pid \d+\): time limit exceeded", "with a warning")
# the tests below need deliveries that may take over a second on a loaded
# machine: lift the limit again
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write("tvirt_time_limit = 600s\n")
inst.proc.send_signal(signal.SIGHUP)
ok(inst.wait_log(r"reload -- configuration ", count=2), "reload with tvirt_time_limit = 600s")

# ---- corrupt files and hold/
with open(os.path.join(inst.queue, "incoming", "ABCDEF123"), "w") as f:
    f.write("V1\nthis is not a queue file\n")
held = inst.inject("alice@example.org", ["held@virt.test"], queue="hold")
inst.poke()
ok(inst.wait(lambda: "ABCDEF123" in inst.files("corrupt")), "an unparseable file goes to corrupt/")
like(inst.logtext(), r"ABCDEF123: corrupt queue file: ", "with a log line")
ok(inst.proc.poll() is None, "and qmgr keeps running")
# a deferred message not due for an hour: only the flush delivers it, and
# once it is delivered the flush has been through the queue
later = time.time() + 3600
flushed = inst.inject("alice@example.org", ["flushed@virt.test"], queue="deferred")
os.utime(os.path.join(inst.queue, "deferred", flushed), (later, later))
inst.poke(b"F")
ok(inst.wait_log(rf"{flushed}: to=<flushed@virt.test>.*status=sent"), "a flush delivers deferred mail")
is_(inst.files("hold"), [held], "hold/ is never touched (not even by a flush)")
unlike(inst.logtext(), held, "and never logged")

# ---- SIGHUP reload
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write("virtual_transport = tvirt2\n")
os.symlink("fake-runner", os.path.join(inst.libexec, "postern-tvirt2"))
inst.proc.send_signal(signal.SIGHUP)
ok(inst.wait_log(r"reload -- configuration ", count=2), "SIGHUP reloads main.cf")
qid = inst.inject("alice@example.org", ["ok2@virt.test"])
inst.poke()
ok(delivered(inst, qid), "mail after the reload is delivered")
is_(inst.runs()[-1]["program"], "postern-tvirt2", "through the new virtual_transport")

# ---- a second qmgr on the same queue refuses
r = run(["postern-qmgr", "-c", inst.dir], timeout=10)
isnt(r.returncode, 0, "a second qmgr on the same queue exits non-zero")
like(inst.logtext(), r"another postern-qmgr is running on .* \(pid \d+\)", "naming the running one")

# ---- SIGTERM waits for running deliveries
qid = inst.inject("alice@example.org", ["slow1@virt.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("active")), "a slow delivery starts")
time.sleep(0.2)
code = inst.stop()
is_(code, 0, "SIGTERM: qmgr exits 0")
like(inst.logtext(), rf"{qid}: to=<slow1@virt.test>, .*status=sent", "after the running delivery finished")
ok(not os.path.exists(os.path.join(inst.queue, "pid", "qmgr.pid")), "and removes its pid file")

# ---- error: and discard: next hops; a missing runner
inst = Instance("relay_domains = relay.test\nrelay_transport = discard:\n"
                "default_transport = error:5.7.1 no outbound mail here\n"
                "virtual_mailbox_domains = virt.test\nvirtual_transport = smtp\n")
inst.start()
qid = inst.inject("alice@example.org", ["x@far.test"])
inst.poke()
ok(delivered(inst, qid), "error: bounces and the message is removed once the notice is sent")
like(inst.logtext(), rf"{qid}: to=<x@far.test>, relay=none, {DELAYS}, dsn=5\.7\.1, status=bounced \(no outbound mail here\)$",
     "error:text bounces with the text and its DSN code")
is_([n["kind"] for n in inst.runs("notices.jsonl")], ["failure"], "and postern-bounce is asked")
qid = inst.inject("alice@example.org", ["never@far.test"], rcpt_attrs={"never@far.test": ["NOTIFY=NEVER"]})
inst.poke()
ok(delivered(inst, qid), "a failed NOTIFY=NEVER recipient is done once postern-bounce answers")
last = inst.runs("notices.jsonl")[-1]
is_((last["kind"], last["rcpt"], last.get("params")), ("failure", ["never@far.test"], ["NOTIFY=NEVER"]),
    "postern-bounce gets it with its NOTIFY (it decides who hears of it)")
qid = inst.inject("alice@example.org", ["y@relay.test"])
inst.poke()
ok(delivered(inst, qid), "discard: completes the recipient")
like(inst.logtext(), rf"{qid}: to=<y@relay.test>, relay=none, {DELAYS}, dsn=2\.0\.0, status=sent \(relay\.test\)$",
     "logged as discard(8) does: sent, the next hop as the reason")
qid = inst.inject("alice@example.org", ["z@virt.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "a transport without a runner program defers")
like(inst.logtext(), rf"{qid}: to=<z@virt.test>, relay=none, .*dsn=4\.3\.0, status=deferred \(mail transport unavailable: {re.escape(inst.libexec)}/postern-smtp: No such file or directory\)$",
     "with 4.3.0 'mail transport unavailable' naming the program")
inst.stop()

# ---- soft_bounce: what would bounce is deferred with a 4.x.x code
inst = Instance("default_transport = error:5.7.1 no way\nsoft_bounce = yes\n")
inst.start()
qid = inst.inject("alice@example.org", ["x@far.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "soft_bounce = yes: the message waits")
like(inst.logtext(), rf"{qid}: to=<x@far.test>, relay=none, .*dsn=4\.7\.1, status=deferred \(no way\)$",
     "logged as deferred with the code turned into 4.7.1")
is_(inst.runs("notices.jsonl"), [], "and no notice is asked for")
inst.stop()

# ---- no postern-bounce: the failed recipient stays B and waits
inst = Instance("default_transport = error:no way\n", bounce=False)
inst.start()
qid = inst.inject("alice@example.org", ["x@far.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "without postern-bounce the bounced message waits in deferred/")
is_(status_bytes(os.path.join(inst.queue, "deferred", qid)), "B", "its recipient stays B (notice not sent)")
like(inst.logtext(), rf"{qid}: to=<x@far.test>, relay=none, .*dsn=5\.0\.0, status=bounced \(no way\)$",
     "error: without a code bounces with 5.0.0")
like(inst.logtext(), rf"{qid}: cannot send failure notice: .*postern-bounce", "the missing notice program is logged")
inst.stop()

# ---- backoff, flush, expiry, delay warnings, success notices
inst = Instance("virtual_mailbox_domains = virt.test\nminimal_backoff_time = 1s\n"
                "maximal_backoff_time = 2s\nqueue_run_delay = 1s\ndelay_warning_time = 2s\n")
inst.start()
qid = inst.inject("alice@example.org", ["defer2@virt.test"])
inst.poke()
ok(inst.wait_log(rf"{qid}: to=<defer2@virt.test>.*status=deferred", count=3, timeout=15),
   "a deferred message is retried from deferred/ (3 attempts)")
times = [r["t0"] for r in inst.runs() if r["rcpt"] == ["defer2@virt.test"]]
gaps = [b - a for a, b in zip(times, times[1:])]
# next attempt times are whole seconds (file mtimes), as Postfix's: an
# attempt that ends at x.6 s is due at x+1 s, so a gap can be under 1 s
ok(len(gaps) >= 2 and all(0 < g <= 4.5 for g in gaps), f"retries between minimal and maximal backoff ({gaps})")
ok(inst.wait(lambda: any(n["kind"] == "delay" for n in inst.runs("notices.jsonl")), 10),
   "a delay warning after delay_warning_time")
# the attempts after the warning would each bring another one
tries = len(re.findall(rf"{qid}: to=<defer2@virt.test>.*status=deferred", inst.logtext()))
ok(inst.wait_log(rf"{qid}: to=<defer2@virt.test>.*status=deferred", count=tries + 2, timeout=15),
   "two more attempts after the warning")
is_(len([n for n in inst.runs("notices.jsonl") if n["kind"] == "delay"]), 1, "only once")
ok(inst.wait(lambda: qid in inst.files("deferred")), "the message is back in deferred/")
with open(os.path.join(inst.queue, "deferred", qid), "rb") as f:
    like(f.read().decode(), r"^W\d+$", "the warning is recorded with a W record")
inst.stop()

inst = Instance("virtual_mailbox_domains = virt.test\nqueue_run_delay = 1h\n"
                "defer_transports = tvirt\n")
inst.start()
qid = inst.inject("alice@example.org", ["p@virt.test"], rcpt_attrs={"p@virt.test": ["NOTIFY=SUCCESS"]})
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "defer_transports: mail waits")
like(inst.logtext(), rf"{qid}: to=<p@virt.test>, relay=none, .*dsn=4\.3\.2, status=deferred \(deferred transport\)$",
     "logged as 'deferred transport'")
inst.poke(b"F")
ok(delivered(inst, qid, 5), "the trigger FIFO's F (flush) delivers it at once, defer_transports included")
is_([n["kind"] for n in inst.runs("notices.jsonl")], ["success"], "NOTIFY=SUCCESS asks for a success notice")
inst.stop()

inst = Instance("virtual_mailbox_domains = virt.test\nmaximal_queue_lifetime = 0\n")
inst.start()
qid = inst.inject("alice@example.org", ["defer3@virt.test"])
inst.poke()
ok(delivered(inst, qid), "maximal_queue_lifetime = 0: one attempt, then the message is returned")
like(inst.logtext(), rf"{qid}: from=<alice@example.org>, status=expired, returned to sender$",
     "Postfix's expiry line")
is_([(n["kind"], n["status"]) for n in inst.runs("notices.jsonl")],
    [("failure", ["4.2.0 try again later"])], "the notice carries the last deferral reason")
inst.stop()

inst = Instance("virtual_mailbox_domains = virt.test\nbounce_queue_lifetime = 0\n")
inst.start()
qid = inst.inject("", ["defer4@virt.test"])
inst.poke()
ok(delivered(inst, qid), "bounce_queue_lifetime applies to null-sender mail")
qid2 = inst.inject("alice@example.org", ["defer5@virt.test"])
inst.poke()
ok(inst.wait(lambda: qid2 in inst.files("deferred")), "but not to mail with a sender")
inst.stop()

inst = Instance("virtual_mailbox_domains = virt.test\nmaximal_queue_lifetime = 0\nbounce_queue_lifetime = 5d\n")
inst.start()
qid = inst.inject("", ["defer6@virt.test"])
inst.poke()
ok(delivered(inst, qid), "bounce_queue_lifetime is never longer than maximal_queue_lifetime")
like(inst.logtext(), r"warning: bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime",
     "with Postfix's warning")
inst.stop()

# ---- restart: files left in active/ are taken again
inst = Instance("virtual_mailbox_domains = virt.test\n")
qid = inst.inject("alice@example.org", ["r@virt.test"], queue="active")
inst.start()
ok(delivered(inst, qid), "a file left in active/ by a crash is delivered at start")

# ---- concurrency limit per destination
inst.stop()
inst = Instance("virtual_mailbox_domains = virt.test\ntvirt_destination_concurrency_limit = 1\n")
ids = [inst.inject("alice@example.org", [f"slow{i}@virt.test"]) for i in range(3)]
inst.start()
ok(all(delivered(inst, i, 15) for i in ids), "three slow messages are delivered")
spans = sorted((r["t0"], r["t1"]) for r in inst.runs())
ok(all(b[0] >= a[1] - 0.05 for a, b in zip(spans, spans[1:])),
   "one at a time with tvirt_destination_concurrency_limit = 1")
inst.stop()
inst = Instance("virtual_mailbox_domains = virt.test\n")
ids = [inst.inject("alice@example.org", [f"slow{i}@virt.test"]) for i in range(3)]
inst.start()
ok(all(delivered(inst, i, 15) for i in ids), "and without the limit")
spans = sorted((r["t0"], r["t1"]) for r in inst.runs())
ok(any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "in parallel (default limit 20)")
inst.stop()

# ---- qmgr_message_active_limit: more mail than fits waits its turn
inst = Instance("virtual_mailbox_domains = virt.test\nqmgr_message_active_limit = 2\n")
ids = [inst.inject("alice@example.org", [f"slow{i}@virt.test"]) for i in range(6)]
inst.start()
peak = 0
def finished():
    global peak
    peak = max(peak, len(inst.files("active")))
    return inst.logtext().count(": removed") >= 6
ok(inst.wait(finished, 20), "six messages with qmgr_message_active_limit = 2 are all delivered")
ok(1 <= peak <= 2, f"never more than 2 in active/ (saw {peak})")
inst.stop()
ok(all_clean(), "every qmgr stopped with exit 0 and nothing on stderr from the sanitizers")
done()
