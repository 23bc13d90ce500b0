#!/usr/bin/env python3
# The mail path from the injector on: postern-queue stores a message and
# pokes qmgr through the FIFO ('A'), qmgr starts postern-virtual, the
# message lands in a Maildir.  The poke makes delivery prompt (the timer
# scan of incoming/ runs only once a second).
import glob, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean
import subprocess

require(["postern-queue", "postern-virtual"])

ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()

inst = Instance("virtual_transport = virtual\nvirtual_mailbox_domains = example.com\n", runners=())
base = os.path.join(inst.dir, "mail")
os.makedirs(base)
if ROOT:
    os.chmod(inst.dir, 0o755)
    os.chown(base, OWNER, GROUP)
write(os.path.join(inst.dir, "vmailbox"), "bob@example.com example.com/bob/\n")
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"virtual_mailbox_base = {base}\nvirtual_mailbox_maps = texthash:{inst.dir}/vmailbox\n"
            f"virtual_uid_maps = static:{OWNER}\nvirtual_gid_maps = static:{GROUP}\n")
os.symlink(os.path.abspath(prog("postern-virtual")), os.path.join(inst.libexec, "postern-virtual"))
inst.start()


def inject(sender, rcpts, message):
    """Run postern-queue as doc/injection.md says; returns (exit, status)."""
    env_r, env_w = os.pipe()
    st_r, st_w = os.pipe()

    def fds():
        os.dup2(st_w, 3)
    p = subprocess.Popen([prog("postern-queue"), "-c", inst.dir], stdin=subprocess.PIPE,
                         stdout=env_r, stderr=subprocess.PIPE, preexec_fn=fds, close_fds=False)
    os.close(env_r)
    os.close(st_w)
    envelope = b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in rcpts) + b"\0"
    os.write(env_w, envelope)
    os.close(env_w)
    p.communicate(message.encode())
    status = b""
    while True:
        chunk = os.read(st_r, 4096)
        if not chunk:
            break
        status += chunk
    os.close(st_r)
    return p.returncode, status.decode()


latencies = []
for i in range(5):
    time.sleep(0.13 * i)        # land at different points of the 1 s scan timer
    t0 = time.time()
    code, status = inject("alice@example.org", ["bob@example.com"],
                          f"From: alice@example.org\nSubject: m{i}\n\nbody {i}\n")
    if i == 0:
        is_(code, 0, "postern-queue stores the message")
        like(status, r"^K[0-9A-F]+\0$", "and reports K + the queue id")
    qid = status[1:].rstrip("\0")
    ok(qid and inst.wait_log(rf"{qid}: removed$", 10), f"message {i} is delivered and removed")
    latencies.append(time.time() - t0)
mails = glob.glob(os.path.join(base, "example.com", "bob", "new", "*"))
is_(len(mails), 5, "five messages in the Maildir")
med = statistics.median(latencies)
diag("injection to removal: " + ", ".join(f"{x:.3f}" for x in latencies) + " s")
ok(med < 0.45, f"the FIFO poke makes delivery prompt (median {med:.3f} s; the timer alone averages 0.5 s)")
inst.stop()
ok(all_clean(), "qmgr stopped cleanly")
done()
