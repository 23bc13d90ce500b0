#!/usr/bin/env python3
# The real postern-virtual in reuse mode (-S): one process delivers message
# after message for qmgr, every message arrives once, and nothing of one
# delivery stays behind for the next: the same open descriptors after the
# sixth request as after the first, and (run as root) effective ids back to
# root between deliveries.  Also its protocol by hand: two requests on one
# socket, each with its queue file as SCM_RIGHTS, and EOF = exit 0.
import glob, os, signal, socket, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import all_clean, virtual_instance

require(["postern-virtual"])

ROOT = os.geteuid() == 0
inst, base = virtual_instance(("pcre:", "/^bob@example\\.com$/ example.com/bob/\n"
                                        "/^alice@example\\.com$/ example.com/alice\n"))


def runners():
    """pids of postern-virtual processes whose parent is our qmgr."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            stat = open(f"/proc/{e}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm == "postern-virtual" and int(fields[1]) == inst.proc.pid and fields[0] != "Z":
            out.append(int(e))
    return out


def state(pid):
    """The runner's open descriptors (what they point to) and its ids."""
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    ids = [l for l in open(f"/proc/{pid}/status").read().splitlines()
           if l.startswith(("Uid:", "Gid:", "Groups:"))]
    return fds, ids


def deliver(i, rcpts):
    qid = inst.inject("carol@example.org", rcpts,
                      body=f"From: carol@example.org\nSubject: reuse {i}\n\nbody {i}\n")
    inst.poke()
    return qid, inst.wait_log(rf"{qid}: removed$", 10)


qid, done_ = deliver(0, ["bob@example.com", "alice@example.com"])
ok(done_, "the first message is delivered")
procs = runners()
is_(len(procs), 1, "one postern-virtual waits for the next request")
pid = procs[0] if procs else 0
first = state(pid) if pid else ({}, [])
ok(not any("/active/" in p for p in first[0].values()), "without the queue file of the request it served")
results = [done_]
for i in range(1, 6):
    qid, done_ = deliver(i, ["bob@example.com", "alice@example.com"] if i % 2 else ["bob@example.com"])
    results.append(done_)
bad, done_ = deliver(6, ["nobody@example.com", "bob@example.com"])
results.append(done_)
ok(all(results), "six more messages are done")
is_(runners(), [pid], "the same process delivered them all")
after = state(pid) if pid else ({}, [])
is_(after[0], first[0], "with the same open descriptors after seven requests as after one")
is_(after[1], first[1], "and the same ids")
if ROOT:
    ok(all(l.split()[1:] == ["0"] * 4 for l in after[1] if l.startswith(("Uid:", "Gid:"))),
       "back to root between deliveries (it switches to the owner per delivery)")
else:
    ok(True, "not root: no id switching to check")
like(inst.logtext(), rf"{bad}: to=<nobody@example.com>, relay=virtual, .*dsn=5\.1\.1, status=bounced",
     "an unknown user still bounces 5.1.1 in a reused process")
mails = sorted(glob.glob(os.path.join(base, "example.com", "bob", "new", "*")))
subjects = sorted(open(m, errors="replace").read().split("Subject: ")[1].split("\n")[0] for m in mails)
is_(subjects, [f"reuse {i}" for i in range(7)], "every message is in bob's Maildir once")
with open(os.path.join(base, "example.com", "alice"), errors="replace") as f:
    is_(len([l for l in f.read().splitlines() if l.startswith("From carol@example.org ")]), 4,
        "and in alice's mbox as often as she was a recipient")
inst.stop()
ok(inst.wait(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 5),
   "the runner exits when qmgr stops")
ok(all_clean(), "qmgr stopped cleanly")

# ---- the protocol by hand: two requests on one socket, then EOF
qfile = os.path.join(inst.dir, "message")
content = b"Subject: by hand\n\nhello\n"
write(qfile, b"junk before" + content + b"junk after")
def start_by_hand():
    """postern-virtual -S with one end of a socket pair on fd 3; (process, our end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.set_inheritable(True)
    p = subprocess.Popen([prog("postern-virtual"), "-S", "-c", inst.dir], close_fds=False,
                         preexec_fn=lambda: os.dup2(theirs.fileno(), 3), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    theirs.close()
    return p, ours


p, ours = start_by_hand()
req = (b"QHAND1\0Fdave@example.org\0M%d,%d\0Tbob@example.com\0Tnobody@example.com\0\0"
       % (len(b"junk before"), len(content)))


def request(data):
    fd = os.open(qfile, os.O_RDONLY)
    socket.send_fds(ours, [data], [fd])
    os.close(fd)
    got = b""
    while not got.endswith(b"\0\0"):
        try:
            chunk = ours.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return got


r1 = request(req)
is_(r1.split(b"\0")[:2], [b"K2.0.0 delivered to maildir", b"D5.1.1 unknown user: \"nobody@example.com\""],
    "-S: results of the first request, then the empty record")
is_(request(req.replace(b"HAND1", b"HAND2")).count(b"\0"), 3, "a second request on the same socket")
ours.shutdown(socket.SHUT_WR)
is_(p.wait(10), 0, "EOF on the channel: exit 0")
err = p.stderr.read().decode(errors="replace")
unlike(err, r"Sanitizer|runtime error", "no sanitizer report")
ours.close()

# SIGTERM (a runner service that stops) ends an idle runner at once, exit 0
p, ours = start_by_hand()
is_(request(req.replace(b"HAND1", b"HAND3")).count(b"\0"), 3, "-S: a request served")
p.send_signal(signal.SIGTERM)
try:
    code = p.wait(10)
except subprocess.TimeoutExpired:
    p.kill()
    code = p.wait()
is_(code, 0, "SIGTERM while it waits for the next request: exit 0")
ours.settimeout(10)
is_(ours.recv(10), b"", "and its channel ends without a stray byte")
ours.close()
done()
