#!/usr/bin/env python3
# Recycled queue files (doc/queue-format.md, "Recycled files"): when a
# message is done, qmgr empties its file and moves it to recycle/; the next
# injection takes that file instead of creating one.  What an administrator
# sees: the queue id's inode part repeats, recycle/ holds only empty files
# of the injector's own user, and nothing is lost when recycle/ is missing
# or holds a file the injector may not use.
import os
import re
import stat
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from instance import NEEDED, Instance

require(NEEDED)

inst = Instance("--domain", "example.com")
is_(inst.init.returncode, 0, "postern init exits 0")
recycle = os.path.join(inst.dir, "queue", "recycle")
ok(os.path.isdir(recycle), "postern init creates queue/recycle")
is_(oct(os.stat(recycle).st_mode & 0o7777), "0o2770",
    "mode 02770: the owner and the injector's group only, slots get the group")
r = inst.start()
is_(r.returncode, 0, "postern start exits 0")


def send(n, rcpt="alice@example.com"):
    r = inst.sendmail(["-f", "sender@example.com", rcpt],
                      f"Subject: recycled {n}\n\nmessage {n}\n".encode())
    return r.returncode


def queue_ids():
    """The queue ids of the messages queued so far, in order."""
    return list(dict.fromkeys(re.findall(r"postern/queue\[\d+\]: ([0-9A-F]+): ", inst.log())))


def slots():
    """name -> (inode, size, links) of recycle/."""
    out = {}
    for n in os.listdir(recycle):
        st = os.lstat(os.path.join(recycle, n))
        out[n] = (st.st_ino, st.st_size, st.st_nlink)
    return out


def wait_slots_idle(timeout=15):
    """Until every slot is empty with one link (no message holds one)."""
    end = time.time() + timeout
    while time.time() < end:
        s = slots()
        if all(size == 0 and links == 1 for _, size, links in s.values()):
            return s
        time.sleep(0.05)
    return slots()


before = wait_slots_idle()
is_(sorted(before), sorted(str(i) for i in range(64)), "qmgr makes the 64 slots, named 0 to 63")
ok(all(size == 0 for _, size, _ in before.values()), "all empty")
is_(send(1), 0, "first message queued")
is_(len(inst.wait_for("alice", 1)), 1, "and delivered")
ids = queue_ids()
inodes = {ino: name for name, (ino, _, _) in before.items()}
ok(ids and any(ids[0].endswith(f"{ino:X}") for ino in inodes),
   "its queue file was one of the slots (a slot's inode in its queue id)")
after = wait_slots_idle()
is_(after, before, "afterwards the slot is empty again: no file created or removed")
is_(send(2), 0, "second message queued")
got = inst.wait_for("alice", 2)
ok(len(got) == 2 and b"message 2" in got[1], "and delivered")
ids = queue_ids()
ok(len(ids) == 2 and any(ids[1].endswith(f"{ino:X}") for ino in inodes),
   "the second message was written into a slot too")
is_(wait_slots_idle(), before, "which is empty again")

# a slot that is no plain file, or that holds content, is never written
os.unlink(os.path.join(recycle, "0"))
os.symlink("/etc/hostname", os.path.join(recycle, "0"))
os.unlink(os.path.join(recycle, "1"))
os.mkfifo(os.path.join(recycle, "1"), 0o660)
hostname = open("/etc/hostname", "rb").read()
for n in range(4):
    is_(send(10 + n), 0, f"message {10 + n} queued with odd files among the slots")
ok(len(inst.wait_for("alice", 6)) == 6, "and delivered")
ok(os.path.islink(os.path.join(recycle, "0")) and open("/etc/hostname", "rb").read() == hostname,
   "a symbolic link in recycle/ is not followed")
ok(stat.S_ISFIFO(os.lstat(os.path.join(recycle, "1")).st_mode), "a FIFO is left alone")
os.unlink(os.path.join(recycle, "0"))
os.unlink(os.path.join(recycle, "1"))
inst.stop()

# the crash cases of doc/queue-format.md, "Commit": a message committed in
# its slot whose link under its id did not reach the disk, and a slot a
# writer left half-written (or torn), as qmgr finds them when it starts
env = dict(os.environ, POSTERN_CONFIG_DIR=inst.dir)
incoming = os.path.join(inst.dir, "queue", "incoming")
r = run([prog("sendmail"), "-f", "sender@example.com", "alice@example.com"],
        input=b"Subject: committed\n\nonly in its slot\n", env=env)
is_(r.returncode, 0, "a message is queued while qmgr is stopped")
named = [n for n in os.listdir(incoming) if not n.startswith(".")]
is_(len(named), 1, "it is linked under its id in incoming/")
qid = named[0] if named else "none"
os.unlink(os.path.join(incoming, qid))          # the link that did not reach the disk
r = run([prog("sendmail"), "-f", "sender@example.com", "alice@example.com"],
        input=b"Subject: torn\n\nthis one is torn\n", env=env)
torn = [n for n in os.listdir(incoming) if not n.startswith(".")]
torn_slot = [n for n, (_, size, links) in slots().items() if links == 2]
ok(len(torn) == 1 and len(torn_slot) == 1, "a second message is queued")
if torn and torn_slot:
    os.unlink(os.path.join(incoming, torn[0]))
    path = os.path.join(recycle, torn_slot[0])
    data = bytearray(open(path, "rb").read())
    i = data.index(b"this one is torn")
    data[i] = ord("T")                          # one byte that did not reach the disk
    open(path, "wb").write(data)
# a slot qmgr made whose rename to its number was lost (doc/queue-format.md,
# "Commit"): the staged name holds a committed message; an empty one is left over
r = run([prog("sendmail"), "-f", "sender@example.com", "alice@example.com"],
        input=b"Subject: staged\n\nin a staged slot\n", env=env)
staged_id = [n for n in os.listdir(incoming) if not n.startswith(".") and n != (torn[0] if torn else "")
             and n != qid]
staged_slot = [n for n, (_, size, links) in slots().items() if links == 2]
ok(r.returncode == 0 and len(staged_id) == 1 and len(staged_slot) == 1, "a third message is queued")
if staged_id and staged_slot:
    os.unlink(os.path.join(incoming, staged_id[0]))
    os.rename(os.path.join(recycle, staged_slot[0]), os.path.join(recycle, ".new." + staged_slot[0]))
write(os.path.join(recycle, ".new.99"), "")
r = inst.postern("queue", "list")
like(r.stdout, r"(?m)^%s\s" % qid, "mailq lists the committed message its slot holds, under its id")
unlike(r.stdout, r"(?m)^%s\s" % (torn[0] if torn else "x"), "and not the torn one")
r = inst.start()
is_(r.returncode, 0, "the instance starts again")
got = inst.wait_for("alice", 8)
ok(len(got) == 8 and any(b"only in its slot" in m for m in got),
   "the committed message is delivered though no queue name linked it")
like(inst.log(), r"%s: named from recycle/\d+ \(committed before a crash\)" % qid,
     "qmgr names it from its slot at start, under the id of its commit record")
like(inst.log(), r"emptied recycle/%s: no valid commit record" % (torn_slot[0] if torn_slot else "x"),
     "a slot whose checksum does not match is emptied")
ok(len(got) == 8 and any(b"in a staged slot" in m for m in got),
   "a message in a staged slot (its rename to a number lost) is delivered")
like(inst.log(), r"named from recycle/\.new\.\d+ \(committed before a crash\)", "... named from there")
ok(not os.path.exists(os.path.join(recycle, ".new.99")), "an empty staged name left over is removed")
gone = staged_slot[0] if staged_slot else "x"     # made again at qmgr's next scan
idle = wait_slots_idle()
is_(idle.get(".new." + gone, (0, 0, 1))[1:], (0, 1),
    "the staged name that held a message is emptied when it is delivered (removed at the next scan)")
is_({k: v for k, v in idle.items() if not k.startswith(".new.")},
    {k: v for k, v in before.items() if k not in ("0", "1", gone)} | {
    k: v for k, v in slots().items() if k in ("0", "1")}, "every slot is empty and free again")
ok(not any(b"this one is torn" in m or b"This one is torn" in m for m in inst.delivered("alice")),
   "the torn message is never delivered")
inst.stop()
send_count = 8

# an older queue without recycle/: files are created and removed as before
inst.start()
for name in os.listdir(recycle):
    os.unlink(os.path.join(recycle, name))
os.rmdir(recycle)
is_(send(4), 0, "without recycle/, a message is queued")
ok(len(inst.wait_for("alice", send_count + 1)) == send_count + 1, "and delivered")
end = time.time() + 10
while sum(inst.queue_counts().values()) and time.time() < end:
    time.sleep(0.05)
is_(sum(inst.queue_counts().values()), 0, "and its queue file removed")
ok(not os.path.exists(recycle), "recycle/ is not made behind the administrator's back")
# recycle/ there but not a directory it can open: not an older queue, so
# the message is refused for now rather than committed the older way
write(recycle, "")
r = inst.sendmail(["-f", "sender@example.com", "alice@example.com"], b"Subject: refused\n\nnot now\n")
is_(r.returncode, 75, "recycle/ that cannot be opened: sendmail exits EX_TEMPFAIL") \
    or diag(r.stderr)
like(inst.log(), r"take a slot in recycle/?: Not a directory", "... and the log says where the trouble is")
os.unlink(recycle)
r = inst.postern("queue", "init")
ok(os.path.isdir(recycle), "postern queue init adds recycle/ to an existing queue")
inst.stop()

# qmgr empties a finished file before it renames it into recycle/; stopped
# in between it leaves an empty active/ID, which is finished, not corrupt
emptied = os.path.join(inst.dir, "queue", "active", "1A2B3C4D5E")
write(emptied, "")
r = inst.start()
is_(r.returncode, 0, "the instance starts again")
end = time.time() + 10
while os.path.exists(emptied) and time.time() < end:
    time.sleep(0.05)
ok(not os.path.exists(emptied), "an empty file left in active/ is removed at start")
like(inst.log(), r"1A2B3C4D5E: removed \(finished before a restart\)", "with a log line saying why")
is_(inst.queue_counts()["corrupt"], 0, "and not moved to corrupt/")
inst.stop()

# qmgr empties files only in active/: an empty file in deferred/ is corrupt
# (the queue never names an incomplete file), kept in corrupt/ for a look
empty_deferred = os.path.join(inst.dir, "queue", "deferred", "5E4D3C2B1A")
write(empty_deferred, "")
os.utime(empty_deferred, (time.time() - 3600, time.time() - 3600))     # due now
r = inst.start()
is_(r.returncode, 0, "the instance starts with an empty file in deferred/")
corrupt = os.path.join(inst.dir, "queue", "corrupt", "5E4D3C2B1A")
end = time.time() + 10
while not os.path.exists(corrupt) and time.time() < end:
    time.sleep(0.05)
ok(os.path.exists(corrupt) and not os.path.exists(empty_deferred), "an empty file in deferred/ goes to corrupt/")
like(inst.log(), r"5E4D3C2B1A: corrupt queue file: empty file in deferred/", "with a log line saying why")
unlike(inst.log(), r"5E4D3C2B1A: removed", "and it is not removed as finished")
inst.stop()
done()
