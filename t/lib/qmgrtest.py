"""qmgrtest.py - helpers for the postern-qmgr tests: a self-contained
instance (main.cf, queue, daemon_directory with fake runners), queue files
written from the outside exactly as doc/queue-format.md describes, and
waiting for log lines.

The fake runner (installed as postern-NAME for every transport a test uses)
speaks doc/delivery.md: it reads the request on fd 3 and the message from
fd 0, appends what it saw as one JSON line to INSTANCE/runs.jsonl, and
answers per recipient by the local part: defer* -> Z, bounce* -> D, crash*
-> exits without any result, hang* -> sleeps 30 s, slow* -> sleeps 0.5 s,
block* -> appends its pid to INSTANCE/blocked and waits while INSTANCE/block
exists, else K.  It serves one request (-R) or, in reuse mode (-S),
request after request; each runs.jsonl line has its "pid" and "serial" (the
request's number in that process).  The fake
postern-bounce appends its request to INSTANCE/notices.jsonl and answers K
(Z when the file INSTANCE/bounce-fails exists).
"""
import json
import os
import re
import stat
import time

import tap

FAKE_RUNNER = r'''#!/usr/bin/env python3
import json, os, socket, sys, time
def records(data):
    out = []
    for rec in data.split(b"\0"):
        out.append(rec.decode("utf-8", "replace"))
    return out
inst = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
args = sys.argv[1:]

def serve(req, msg_fd, serial):
    recs = [r for r in records(req)]
    info = {"program": os.path.basename(sys.argv[0]), "args": args, "rcpt": [],
            "attrs": [], "status": [], "t0": time.time(), "pid": os.getpid(),
            "serial": serial}
    for r in recs:
        if not r:
            continue
        t, v = r[0], r[1:]
        if t == "T": info["rcpt"].append(v)
        elif t == "H": info["nexthop"] = v
        elif t == "Q": info["queue_id"] = v
        elif t == "F": info["sender"] = v
        elif t == "A": info["attrs"].append(v)
        elif t == "X": info["kind"] = v
        elif t == "S": info["status"].append(v)
        elif t == "P": info.setdefault("params", []).append(v)
        elif t == "M":
            off, length = (int(x) for x in v.split(","))
            info["content"] = os.pread(msg_fd, length, off).decode("utf-8", "replace")
    if any(r.split("@")[0].startswith("slow") for r in info["rcpt"]) and "kind" not in info:
        time.sleep(0.5)
    info["t1"] = time.time()
    with open(os.path.join(inst, "runs.jsonl" if "kind" not in info else "notices.jsonl"), "a") as f:
        f.write(json.dumps(info) + "\n")
    out = b""
    if "kind" in info:
        if os.path.exists(os.path.join(inst, "bounce-fails")):
            out = b"Z4.3.0 notices disabled by the test\0"
        else:
            out = b"KNOTICE1\0"
    else:
        for rcpt in info["rcpt"]:
            local = rcpt.split("@")[0]
            if local.startswith("crash"):
                os._exit(3)
            if local.startswith("hang"):
                time.sleep(30)
            if local.startswith("block"):
                # wait while INSTANCE/block exists (a test kills us meanwhile)
                with open(os.path.join(inst, "blocked"), "a") as f:
                    f.write("%d\n" % os.getpid())
                end = time.time() + 30
                while os.path.exists(os.path.join(inst, "block")) and time.time() < end:
                    time.sleep(0.05)
            if local.startswith("remote"):
                out += b"Rmx.example.net[192.0.2.25]:25\0"
            if local.startswith("defer"):
                out += b"Z4.2.0 try again later\0"
            elif local.startswith("bounce"):
                out += ("D5.1.1 unknown user: \"%s\"\0" % rcpt).encode()
            else:
                out += b"K2.0.0 delivered by fake\0"
    return out

if "-S" in args:
    # reuse mode: requests on the socket fd 3, each with its queue file
    sock = socket.socket(fileno=3)
    buf, fds, serial = b"", [], 0
    while True:
        while b"\0\0" not in buf:
            data, got, _, _ = socket.recv_fds(sock, 65536, 4)
            fds += got
            if not data:
                sys.exit(0)
            buf += data
        end = buf.index(b"\0\0") + 2
        req, buf = buf[:end], buf[end:]
        msg_fd = fds.pop(0)
        serial += 1
        out = serve(req, msg_fd, serial)
        os.close(msg_fd)
        sock.sendall(out + b"\0")
else:
    req = b""
    while True:
        chunk = os.read(3, 65536)
        if not chunk:
            break
        req += chunk
        if req.endswith(b"\0\0") or req == b"\0":
            break
    os.write(1, serve(req, 0, 1))
'''


UNCLEAN = []     # instances whose qmgr did not stop cleanly


def all_clean():
    """True when every qmgr stopped so far exited 0 without sanitizer reports."""
    return not UNCLEAN


class Instance:
    """A temporary postern instance for qmgr: DIR/main.cf, DIR/queue,
    DIR/libexec (fake runners), DIR/maillog."""

    def __init__(self, main_cf="", runners=("tlocal", "tvirt", "trelay", "tdefault"),
                 bounce=True):
        self.dir = tap.tempdir("postern-qmgr-")
        self.queue = os.path.join(self.dir, "queue")
        self.libexec = os.path.join(self.dir, "libexec")
        self.log = os.path.join(self.dir, "maillog")
        for d in ("incoming", "active", "deferred", "hold", "corrupt"):
            os.makedirs(os.path.join(self.queue, d))
        os.makedirs(self.libexec)
        fake = os.path.join(self.libexec, "fake-runner")
        tap.write(fake, FAKE_RUNNER, 0o755)
        for name in runners:
            os.symlink("fake-runner", os.path.join(self.libexec, "postern-" + name))
        if bounce:
            os.symlink("fake-runner", os.path.join(self.libexec, "postern-bounce"))
        base = f"""queue_directory = {self.queue}
data_directory = {self.dir}/data
daemon_directory = {self.libexec}
maillog_file = {self.log}
myhostname = mx.example.test
mydomain = example.test
mydestination = $myhostname, localhost
inet_interfaces = loopback-only
local_transport = tlocal:$myhostname
virtual_transport = tvirt
relay_transport = trelay
default_transport = tdefault
"""
        # a parameter the test sets replaces the base line of the same name
        own = {line.split("=")[0].strip() for line in main_cf.splitlines() if "=" in line}
        base = "".join(line + "\n" for line in base.splitlines()
                       if line.split("=")[0].strip() not in own)
        tap.write(os.path.join(self.dir, "main.cf"), base + main_cf)
        self.proc = None

    def start(self, *args):
        self.proc = tap.start([tap.prog("postern-qmgr"), "-c", self.dir] + list(args),
                              stderr=open(os.path.join(self.dir, "stderr"), "ab"))
        # ready: this qmgr (its pid, not an earlier one's FIFO or pid file)
        # logged that it started, after it blocked its signals and opened
        # the trigger
        ready = re.compile(rf"\[{self.proc.pid}\]: daemon started", re.M)
        self.wait(lambda: ready.search(self.logtext()) or self.proc.poll() is not None, 10)
        return self.proc

    def stop(self):
        """SIGTERM qmgr; remember whether it exited 0 with a clean stderr."""
        if self.proc is not None:
            code = tap.stop(self.proc)
            self.proc = None
            with open(os.path.join(self.dir, "stderr"), errors="replace") as f:
                err = f.read()
            if code != 0 or "Sanitizer" in err or "runtime error" in err:
                tap.diag(f"qmgr in {self.dir} exited {code}: {err[-2000:]}")
                UNCLEAN.append(self.dir)
            return code
        return None

    def logtext(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        """Wait until the log has `count` lines matching the regex."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, self.logtext(), re.M)) >= count:
                return True
            time.sleep(0.05)
        return False

    def wait(self, cond, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return False

    def runs(self, name="runs.jsonl"):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def files(self, queue):
        return sorted(n for n in os.listdir(os.path.join(self.queue, queue))
                      if not n.startswith("."))

    def poke(self, byte=b"A"):
        """Write a trigger byte into the FIFO as postern-queue does."""
        for _ in range(100):
            try:
                fd = os.open(os.path.join(self.queue, "public", "qmgr"),
                             os.O_WRONLY | os.O_NONBLOCK)
            except OSError:         # no reader yet (ENXIO) or no FIFO yet
                time.sleep(0.05)
                continue
            os.write(fd, byte)
            os.close(fd)
            return True
        return False

    def inject(self, sender, rcpts, body="Subject: test\n\nhello\n", queue="incoming",
               attrs=(), rcpt_attrs=None, arrival=None):
        return write_queue_file(self.queue, sender, rcpts, body, queue, attrs,
                                rcpt_attrs or {}, arrival)


def write_queue_file(queue_dir, sender, rcpts, body, queue="incoming", attrs=(),
                     rcpt_attrs=None, arrival=None):
    """Write a queue file as postern-queue does (doc/queue-format.md):
    temporary dot-file, fsync, rename to the id.  Returns the id."""
    rcpt_attrs = rcpt_attrs or {}
    now = time.time() if arrival is None else arrival
    d = os.path.join(queue_dir, queue)
    tmp = os.path.join(d, f".tmp.{os.getpid()}.{time.monotonic_ns()}")
    content = body.encode() if isinstance(body, str) else body
    out = bytearray()
    out += b"V1\n"
    out += b"t%d.%06d\n" % (int(now), int((now % 1) * 1e6))
    out += b"F" + sender.encode() + b"\n"
    for a in attrs:
        out += b"A" + a.encode() + b"\n"
    for r in rcpts:
        out += b"R" + r.encode() + b"\n"
        for p in rcpt_attrs.get(r, ()):
            out += b"P" + p.encode() + b"\n"
    out += b"M%d\n" % len(content) + content + b"\nE\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660)
    os.write(fd, bytes(out))
    os.fsync(fd)
    ino = os.fstat(fd).st_ino
    os.close(fd)
    qid = "%05X%X" % (int((now % 1) * 1e6) & 0xFFFFF, ino)
    os.rename(tmp, os.path.join(d, qid))
    if arrival is not None:
        os.utime(os.path.join(d, qid), (now, now))
    return qid


def status_bytes(path):
    """The status byte of every recipient record of a queue file."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        rec = data[pos:nl]
        if rec[:1] == b"M":
            pos = nl + 1 + int(rec[1:]) + 1
            continue
        if rec[:1] in (b"R", b"B", b"D"):
            out.append(rec[:1].decode())
        pos = nl + 1
    return "".join(out)


def virtual_instance(table):
    """An Instance whose virtual transport is the real postern-virtual,
    delivering for example.com under DIR/mail (owned by nobody when run as
    root), with virtual_mailbox_maps = `table`, a "TYPE:" prefix and the
    table's text, written to DIR/vmailbox.  Started; returns (inst, base)."""
    kind, text = table
    root = os.geteuid() == 0
    owner = 65534 if root else os.getuid()
    group = 65534 if root else os.getgid()
    inst = Instance("virtual_transport = virtual\nvirtual_mailbox_domains = example.com\n",
                    runners=())
    base = os.path.join(inst.dir, "mail")
    os.makedirs(os.path.join(base, "example.com"))
    if root:
        os.chmod(inst.dir, 0o755)
        os.chown(base, owner, group)
        os.chown(os.path.join(base, "example.com"), owner, group)
    tap.write(os.path.join(inst.dir, "vmailbox"), text)
    with open(os.path.join(inst.dir, "main.cf"), "a") as f:
        f.write(f"virtual_mailbox_base = {base}\n"
                f"virtual_mailbox_maps = {kind}{inst.dir}/vmailbox\n"
                f"virtual_uid_maps = static:{owner}\nvirtual_gid_maps = static:{group}\n")
    os.symlink(os.path.abspath(tap.prog("postern-virtual")),
               os.path.join(inst.libexec, "postern-virtual"))
    inst.start()
    return inst, base
