#!/usr/bin/env python3
# Durability a test can see, without root: the system calls of the queue
# stage recorded with strace, in the order they ran, for a message injected
# directly (postern-queue with fd 3, as sendmail's chain runs it) and for
# one through the queue service (postern-queue -S, as smtpd and sendmail
# use it).  The commit of doc/queue-format.md ("Commit"): the message is
# written into a slot of recycle/ whose name is already on disk, its last
# write comes before its one fdatasync, the fdatasync before the link that
# names it by its id, and that before the `K` record reaches the
# submitter; between the first write and `K` there is no other fsync, no
# fsync of a directory and no rename (DESIGN.md, Queue: acknowledged only
# after it is on disk where a restart finds it).  When every slot is busy
# the injector makes one, and then recycle/ is fsynced before `K` too.
import os, re, shutil, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import *
from inject import envelope, inject
import inject as injectlib


def instance():
    return injectlib.instance(f"daemon_directory = {os.path.abspath(BIN)}\n")

if not shutil.which("strace"):
    ok(False, "strace is installed (./deps installs it for the tests)")
    done()
r = run(["strace", "-f", "-o", "/dev/null", "true"])
if r.returncode != 0:
    skip_all("strace cannot trace here: " + r.stderr.strip()[:200])

# LeakSanitizer cannot run under ptrace: in a sanitizer build (make check
# SANITIZE=1) the programs traced here are checked for everything but leaks,
# which the other tests check in the same programs untraced
os.environ["ASAN_OPTIONS"] = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0") if o)

CALLS = "write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,link,linkat,openat,sendmsg,sendto"
STRACE = [shutil.which("strace"), "-f", "-y", "-qq", "-s", "80", "-e", "trace=" + CALLS]
call_re = re.compile(r'^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)')
fd_re = re.compile(r'^\d+<([^>]*)>')


def events(path):
    """[(call, args, result)] of the trace, in order; unfinished calls are
    joined with their resumption (strace -f splits them)."""
    out, pending = [], {}
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r'^(\d+)\s+(\w+)\((.*)<unfinished \.\.\.>$', line)
        if m:
            pending[m.group(1)] = (m.group(2), m.group(3))
            continue
        m = re.match(r'^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+)', line)
        if m and m.group(1) in pending:
            call, args = pending.pop(m.group(1))
            out.append((call, args + m.group(3), int(m.group(4))))
            continue
        m = call_re.match(line)
        if m:
            out.append((m.group(2), m.group(3), int(m.group(4))))
    return out


def fd_path(args):
    m = fd_re.match(args)
    return m.group(1) if m else ""


def check_order(trace, queue, label, new_slot=False):
    """The assertions, on one injection's trace."""
    ev = events(trace)
    incoming = os.path.realpath(os.path.join(queue, "incoming"))
    recycle = os.path.realpath(os.path.join(queue, "recycle"))
    # the K record and the queue id it names
    k = [i for i, (c, a, r) in enumerate(ev) if c in ("write", "sendmsg", "sendto")
         and re.search(r', "K[0-9A-F]+\\0', a)]
    if not ok(len(k) == 1, f"{label}: one K record is written") :
        diag("\n".join(f"{c}({a}) = {r}" for c, a, r in ev[-30:]))
        return
    k = k[0]
    qid = re.search(r'"K([0-9A-F]+)\\0', ev[k][1]).group(1)
    # the link that names the slot by its id
    named = [i for i, (c, a, r) in enumerate(ev) if c in ("link", "linkat") and r == 0
             and re.search(r'"%s"' % qid, a)]
    if not ok(len(named) == 1, f"{label}: the slot is linked under its id {qid} once"):
        diag("\n".join(f"{c}({a}) = {r}" for c, a, r in ev[-40:]))
        return
    ln = named[0]
    m = re.match(r'\d+<([^>]*)>, "([^"]+)"', ev[ln][1])
    slot_dir, slot = (m.group(1), m.group(2)) if m else ("", "")
    is_(slot_dir, recycle, f"{label}: the file linked is a slot of recycle/ ({slot})")
    slot_path = os.path.join(recycle, slot)
    writes = [i for i, (c, a, r) in enumerate(ev) if c in ("write", "pwrite64", "writev")
              and fd_path(a) == slot_path]
    syncs = [i for i, (c, a, r) in enumerate(ev) if c in ("fsync", "fdatasync") and r == 0
             and fd_path(a) == slot_path]
    ok(writes, f"{label}: the slot's writes are seen ({slot_path})") or \
        diag("\n".join(f"{c}({a}) = {r}" for c, a, r in ev))
    first_write = min(writes) if writes else len(ev)
    last_write = max(writes) if writes else -1
    ok(any(last_write < s < ln for s in syncs),
       f"{label}: the slot is fdatasynced after its last write and before the link")
    ok(ln < k, f"{label}: the link comes before K")
    ok(last_write < k and all(i < k for i in writes),
       f"{label}: K is written after every write of the queue file")
    created = [i for i, (c, a, r) in enumerate(ev) if c == "openat" and r >= 0
               and re.search(r'"%s"' % re.escape(slot), a) and "O_CREAT" in a]
    on_path = [(c, fd_path(a)) for i, (c, a, r) in enumerate(ev)
               if first_write <= i < k and c in ("fsync", "fdatasync") and r == 0]
    renames = [c for i, (c, a, r) in enumerate(ev) if first_write <= i < k and c.startswith("rename")]
    is_(renames, [], f"{label}: nothing is renamed between the first write and K")
    if not new_slot:
        is_(created, [], f"{label}: the slot existed before (its name on disk)")
        is_(on_path, [("fdatasync", slot_path)],
            f"{label}: one fdatasync, of the slot, between the first write and K; no directory's")
    else:
        ok(created, f"{label}: with every slot gone, the injector makes one")
        dir_syncs = [i for i, (c, a, r) in enumerate(ev) if c in ("fsync", "fdatasync") and r == 0
                     and fd_path(a) == recycle]
        ok(any(last_write < s < ln for s in dir_syncs),
           f"{label}: and fsyncs recycle/ (the new slot's name) before the link and K")
        unlike(" ".join(p for _, p in on_path), re.escape(incoming) + r"(\s|$)",
               f"{label}: incoming/ is never fsynced")


# ---- a direct injection: postern-queue with the status channel on fd 3 ----
cfg, queue = instance()
trace = os.path.join(cfg, "direct.trace")
code, status, err = inject(cfg, b"Subject: durable\n\nbody\n" * 50,
                           envelope("a@example.org", ["b@example.com"]),
                           argv=STRACE + ["-o", trace, prog("postern-queue"), "-c", cfg])
is_(code, 0, "postern-queue under strace accepts the message") or diag(err)
check_order(trace, queue, "postern-queue")

# ---- every slot gone: the injector makes one, and fsyncs recycle/ ----
cfg, queue = instance()
for name in os.listdir(os.path.join(queue, "recycle")):
    os.unlink(os.path.join(queue, "recycle", name))
trace = os.path.join(cfg, "newslot.trace")
code, status, err = inject(cfg, b"Subject: new slot\n\nbody\n",
                           envelope("a@example.org", ["b@example.com"]),
                           argv=STRACE + ["-o", trace, prog("postern-queue"), "-c", cfg])
is_(code, 0, "postern-queue accepts the message with no slot made") or diag(err)
check_order(trace, queue, "new slot", new_slot=True)

# ---- slots made for the injectors: their names on disk before they are
# slots.  qmgr and `postern queue init` make a missing slot under a name no
# injector takes, fsync recycle/, and only then rename it to its number: an
# injector that took a slot whose name was not yet on disk could commit a
# message with one fdatasync and lose it in a power cut ----
cfg, queue = instance()
recycle = os.path.realpath(os.path.join(queue, "recycle"))
for name in ("3", "17", "40"):
    os.unlink(os.path.join(recycle, name))
trace = os.path.join(cfg, "stock.trace")
r = run(STRACE + ["-o", trace, prog("postern"), "queue", "-c", cfg, "init"])
is_(r.returncode, 0, "postern queue init under strace makes the missing slots") or diag(r.stderr)
ev = events(trace)
made = {}
for i, (c, a, res) in enumerate(ev):
    m = re.search(r'"([^"/]+)", O_WRONLY\|O_CREAT', a) if c == "openat" and res >= 0 else None
    if m and fd_path(a) == recycle:
        made[m.group(1)] = i
is_(sorted(made), [".new.17", ".new.3", ".new.40"],
    "each missing slot is created under a staging name, never under its number")
syncs = [i for i, (c, a, res) in enumerate(ev) if c == "fsync" and res == 0 and fd_path(a) == recycle]
renames = {re.search(r'"\.new\.(\d+)"', a).group(1): i for i, (c, a, res) in enumerate(ev)
           if c.startswith("rename") and res == 0 and '".new.' in a}
is_(sorted(renames), ["17", "3", "40"], "... and renamed to its number")
ok(syncs and renames and all(max(made.values()) < min(syncs) < i for i in renames.values()),
   "recycle/ is fsynced after the last is created and before the first rename") \
    or diag(f"made {made} syncs {syncs} renames {renames}")
ok(all(os.path.isfile(os.path.join(recycle, n)) for n in ("3", "17", "40"))
   and not [n for n in os.listdir(recycle) if n.startswith(".")],
   "afterwards the slots are there and no staging name is left")

# ---- through the queue service, as smtpd and sendmail use it ----
cfg, queue = instance()
trace = os.path.join(cfg, "service.trace")
sock = os.path.join(queue, "public", "queue")
service = start(STRACE + ["-o", trace, prog("postern-queue"), "-S", "-c", cfg])
deadline = time.time() + 20
while time.time() < deadline and not os.path.exists(sock):
    time.sleep(0.05)
ok(os.path.exists(sock), "the queue service listens")
r = run([prog("sendmail"), "-C", cfg, "-f", "a@example.org", "b@example.com"],
        input=b"Subject: through the service\n\nbody\n")
is_(r.returncode, 0, "sendmail through the queue service exits 0") or diag(r.stderr)
# strace leaves its tracee running when it is stopped: stop the service by
# its pid file, then strace ends by itself
pid_file = os.path.join(queue, "pid", "queue.pid")
service_pid = int(open(pid_file).read()) if os.path.exists(pid_file) else None
ok(service_pid, "the service wrote its pid file")
if service_pid:
    os.kill(service_pid, signal.SIGTERM)
try:
    service.wait(timeout=20)
except subprocess.TimeoutExpired:
    stop(service)
check_order(trace, queue, "queue service")
done()
