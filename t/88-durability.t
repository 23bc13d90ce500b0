#!/usr/bin/env python3
# Durability a test can see, without root: the system calls of the queue
# stage recorded with strace, in the order they ran, for a message injected
# directly (postern-queue with fd 3, as sendmail's chain runs it) and for
# one through the queue service (postern-queue -S, as smtpd and sendmail
# use it).  The queue file's last write comes before its fsync, the fsync
# before the rename that names it, the rename before the fsync of
# incoming/, and that before the `K` record reaches the submitter
# (DESIGN.md, Queue: acknowledged only after the file and the directory
# entry that names it are on disk).
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

CALLS = "write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,sendmsg,sendto"
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


def check_order(trace, queue, label):
    """The assertions, on one injection's trace."""
    ev = events(trace)
    incoming = os.path.realpath(os.path.join(queue, "incoming"))
    # the K record and the queue id it names
    k = [i for i, (c, a, r) in enumerate(ev) if c in ("write", "sendmsg", "sendto")
         and re.search(r', "K[0-9A-F]+\\0', a)]
    if not ok(len(k) == 1, f"{label}: one K record is written") :
        diag("\n".join(f"{c}({a}) = {r}" for c, a, r in ev[-30:]))
        return
    k = k[0]
    qid = re.search(r'"K([0-9A-F]+)\\0', ev[k][1]).group(1)
    # the rename that names the file by its id
    named = [i for i, (c, a, r) in enumerate(ev) if c.startswith("rename") and r == 0
             and re.search(r'"%s"' % qid, a)]
    if not ok(len(named) == 1, f"{label}: the file is renamed to its id {qid} once"):
        return
    rn = named[0]
    tmp = re.search(r'"(\.[^"]+)"', ev[rn][1])
    tmp_path = os.path.join(incoming, tmp.group(1)) if tmp else None
    writes = [i for i, (c, a, r) in enumerate(ev) if c in ("write", "pwrite64", "writev")
              and fd_path(a) == tmp_path]
    syncs = [i for i, (c, a, r) in enumerate(ev) if c in ("fsync", "fdatasync") and r == 0
             and fd_path(a) == tmp_path]
    dir_syncs = [i for i, (c, a, r) in enumerate(ev) if c in ("fsync", "fdatasync") and r == 0
                 and fd_path(a) == incoming]
    ok(writes, f"{label}: the queue file's writes are seen ({tmp_path})") or \
        diag("\n".join(f"{c}({a}) = {r}" for c, a, r in ev))
    last_write = max(writes) if writes else -1
    ok(any(last_write < s < rn for s in syncs),
       f"{label}: the queue file is fsynced after its last write and before the rename")
    first_sync = min([s for s in syncs if s > last_write] or [len(ev)])
    moves = [i for i, (c, a, r) in enumerate(ev) if c.startswith("rename")
             and tmp and re.match(r'[^"]*"%s"' % re.escape(tmp.group(1)), a)]
    ok(moves and all(i > first_sync for i in moves),
       f"{label}: the file is not renamed before its fsync")
    ok(any(rn < s < k for s in dir_syncs),
       f"{label}: incoming/ is fsynced after the rename and before K is written")
    ok(last_write < k and all(i < k for i in writes),
       f"{label}: K is written after every write of the queue file")


# ---- a direct injection: postern-queue with the status channel on fd 3 ----
cfg, queue = instance()
trace = os.path.join(cfg, "direct.trace")
code, status, err = inject(cfg, b"Subject: durable\n\nbody\n" * 50,
                           envelope("a@example.org", ["b@example.com"]),
                           argv=STRACE + ["-o", trace, prog("postern-queue"), "-c", cfg])
is_(code, 0, "postern-queue under strace accepts the message") or diag(err)
check_order(trace, queue, "postern-queue")

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
