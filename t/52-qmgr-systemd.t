#!/usr/bin/env python3
# postern-qmgr under systemd, as systemd would run it: the trigger FIFO
# handed over by socket activation (LISTEN_FDS, fd 3), and the notify socket
# (READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1).
import os, signal, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean

inst = Instance("virtual_mailbox_domains = virt.test\nqueue_run_delay = 1h\n"
                "defer_transports = tvirt\n")
fifo = os.path.join(inst.dir, "activation-fifo")
os.mkfifo(fifo, 0o600)
notify_path = os.path.join(inst.dir, "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify_path)
sock.settimeout(0.2)

# start qmgr the way systemd does: the FIFO on fd 3, LISTEN_PID = its pid
fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
pid = os.fork()
if pid == 0:
    os.dup2(fifo_fd, 3)
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
               NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000",
               WATCHDOG_PID=str(os.getpid()))
    err = os.open(os.path.join(inst.dir, "stderr"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(err, 2)
    os.execve(prog("postern-qmgr"), ["postern-qmgr", "-c", inst.dir], env)
os.close(fifo_fd)

messages = []


def collect(seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            pass


def wait_for(pred, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return True
        collect(0.1)
    return False


ok(wait_for(lambda: "READY=1" in messages), "READY=1 on the notify socket")
collect(1.2)
dogs = sum(m.count("WATCHDOG=1") for m in messages)
ok(2 <= dogs <= 12, f"WATCHDOG=1 about every WATCHDOG_USEC/2 ({dogs} in ~1.2 s)")
ok(any(m.startswith("STATUS=active 0, deferred 0") for m in messages), "STATUS= reports the queue counts")

qid = inst.inject("alice@example.org", ["p@virt.test"])
ok(wait_for(lambda: qid in inst.files("deferred")), "a deferred-transport message waits in deferred/")
ok(wait_for(lambda: any("deferred 1" in m for m in messages)), "STATUS= counts it as deferred")
fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
os.write(fd, b"F")
os.close(fd)
ok(inst.wait_log(rf"{qid}: removed$", 5), "a flush through the activation FIFO delivers it")

os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
is_(os.waitstatus_to_exitcode(status), 0, "SIGTERM: exit 0")
collect(0.3)
ok(any("STOPPING=1" in m for m in messages), "STOPPING=1 before exit")
with open(os.path.join(inst.dir, "stderr"), errors="replace") as f:
    unlike(f.read(), r"Sanitizer|runtime error", "nothing from the sanitizers")
done()
