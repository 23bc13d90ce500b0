#!/usr/bin/env python3
# A full queue file system: on a small tmpfs, injection refuses with exit 53
# and Z452 4.3.1 below queue_minfree (and on ENOSPC while writing), keeps
# every message it accepted before intact, and works again once space is
# freed.  Needs root to mount the tmpfs; skipped otherwise.
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from inject import OWNERS, envelope, inject

if os.geteuid() != 0:
    skip_all("needs root to mount a tmpfs")
top = tempdir()
queue = os.path.join(top, "queue")
os.mkdir(queue)
m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "postern-test", queue],
                   capture_output=True, text=True)
if m.returncode != 0:
    skip_all("cannot mount a tmpfs: " + m.stderr.strip())
try:
    write(os.path.join(top, "main.cf"),
          f"queue_directory = {queue}\ndata_directory = {top}/data\nmaillog_file = {top}/maillog\n"
          + OWNERS +
          "queue_minfree = 600000\nmessage_size_limit = 200000\n")
    r = run(["postern", "queue", "-c", top, "init"])
    is_(r.returncode, 0, "the queue is created on a 2 MB tmpfs")
    incoming = os.path.join(queue, "incoming")

    def ids():
        return sorted(n for n in os.listdir(incoming) if not n.startswith("."))

    # accepted messages, and what they hold
    kept = {}
    for i in range(3):
        body = b"Subject: keep %d\n\n" % i + b"k" * 100000 + b"\n"
        code, status, err = inject(top, body, envelope("a@example.com", ["b@example.org"]))
        is_(code, 0, f"message {i} is accepted while there is space")
        kept[status[0][1:]] = open(os.path.join(incoming, status[0][1:]), "rb").read()

    # a message of unknown size (no message_size_limit) that would eat into
    # queue_minfree is refused while it is being written
    code, status, err = inject(top, b"Subject: grows\n\n" + b"g" * 1500000 + b"\n",
                               envelope("a@example.com", ["b@example.org"]),
                               argv=[prog("postern-queue"), "-c", top, "-o", "queue_minfree=1000000",
                                     "-o", "message_size_limit=0"])
    is_((code, status), (53, ["Z452 4.3.1 Insufficient system storage"]),
        "a growing message that reaches queue_minfree is refused with 452 4.3.1")
    code, status, err = inject(top, b"Subject: grows\n\n" + b"g" * 1500000 + b"\n",
                               envelope("a@example.com", ["b@example.org"]), envelope_first=True,
                               argv=[prog("postern-queue"), "-c", top, "-o", "queue_minfree=1000000",
                                     "-o", "message_size_limit=0"])
    is_((code, status), (53, ["Z452 4.3.1 Insufficient system storage"]),
        "the same when the envelope came first and the content is being written")
    like(open(os.path.join(top, "maillog")).read(), r"below queue_minfree=1000000 while writing",
         "and the log says it happened while writing")
    is_(sorted(os.listdir(incoming)), sorted(kept), "its temporary file is gone")

    # fill the file system up to just above queue_minfree, then below it
    st = os.statvfs(queue)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(queue, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 550000))
    code, status, err = inject(top, b"Subject: no\n\nx\n", envelope("a@example.com", ["b@example.org"]))
    is_(code, 53, "below queue_minfree injection exits 53")
    is_(status, ["Z452 4.3.1 Insufficient system storage"], "with Z452 4.3.1 Insufficient system storage")
    like(open(os.path.join(top, "maillog")).read(), r"not enough free space", "and logs why")

    # a write that runs into ENOSPC: a small minfree, a message larger than what is left
    os.truncate(filler, 0)
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 150000))
    code, status, err = inject(top, b"Subject: big\n\n" + b"b" * 190000 + b"\n",
                               envelope("a@example.com", ["b@example.org"]),
                               argv=[prog("postern-queue"), "-c", top, "-o", "queue_minfree=0",
                                     "-o", "message_size_limit=0"])
    is_(code, 53, "running out of space while writing exits 53")
    is_(status, ["Z452 4.3.1 Insufficient system storage"], "with Z452 4.3.1 as well")
    is_(sorted(os.listdir(incoming)), sorted(kept), "no temporary file and no new message is left")
    ok(all(open(os.path.join(incoming, q), "rb").read() == data for q, data in kept.items()),
       "messages accepted before are intact")
    r = run(["postern", "queue", "-c", top, "list"])
    like(r.stdout, r"in 3 Requests", "and listed")

    os.unlink(filler)
    code, status, err = inject(top, b"Subject: again\n\nx\n", envelope("a@example.com", ["b@example.org"]))
    is_(code, 0, "after space is freed injection works again")
    ok(status and status[0].startswith("K"), "and reports the queue id")
finally:
    u = subprocess.run(["umount", queue], capture_output=True, text=True)
    ok(u.returncode == 0, "the tmpfs is unmounted")
done()
