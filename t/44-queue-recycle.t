#!/usr/bin/env python3
# Recycled queue files (doc/queue-format.md, "Recycled files"): when a
# message is done, qmgr empties its file and moves it to recycle/; the next
# injection takes that file instead of creating one.  What an administrator
# sees: the queue id's inode part repeats, recycle/ holds only empty files
# of the injector's own user, and nothing is lost when recycle/ is missing
# or holds a file the injector may not use.
import os
import re
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
is_(oct(os.stat(recycle).st_mode & 0o7777), "0o770", "mode 0770: the owner and the injector's group only")
r = inst.start()
is_(r.returncode, 0, "postern start exits 0")


def send(n):
    r = inst.sendmail(["-f", "sender@example.com", "alice@example.com"],
                      f"Subject: recycled {n}\n\nmessage {n}\n".encode())
    return r.returncode


def queue_ids():
    """The queue ids of the messages queued so far, in order."""
    return list(dict.fromkeys(re.findall(r"postern/queue\[\d+\]: ([0-9A-F]+): ", inst.log())))


def wait_recycled(count, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        names = os.listdir(recycle)
        if len(names) >= count:
            return names
        time.sleep(0.05)
    return os.listdir(recycle)


is_(send(1), 0, "first message queued")
is_(len(inst.wait_for("alice", 1)), 1, "and delivered")
names = wait_recycled(1)
is_(len(names), 1, "its queue file is in recycle/ afterwards")
ok(names and names[0].isdigit() and int(names[0]) < 64, "in one of its 64 slots")
ok(names and os.path.getsize(os.path.join(recycle, names[0])) == 0, "emptied: the message is no longer on disk")
inode = os.stat(os.path.join(recycle, names[0])).st_ino if names else -1

is_(send(2), 0, "second message queued")
got = inst.wait_for("alice", 2)
ok(len(got) == 2 and b"message 2" in got[1], "and delivered")
ids = queue_ids()
ok(len(ids) == 2 and ids[1].endswith(f"{inode:X}"),
   "the second message reused the first one's file (same inode in its queue id)")
names = wait_recycled(1)
ok(len(names) == 1 and os.stat(os.path.join(recycle, names[0])).st_ino == inode,
   "and that file is back in recycle/ (no file created or removed)")

# a file of another user is left alone: in the sticky incoming/ the
# injector could not rename it to its queue id
if os.getuid() == 0:
    stranger = os.path.join(recycle, "STRANGER")
    write(stranger, "")
    os.chown(stranger, 65534, 65534)
    for name in names:                      # only the stranger's file is there
        os.unlink(os.path.join(recycle, name))
    is_(send(3), 0, "a message with only another user's file in recycle/ is queued")
    ok(len(inst.wait_for("alice", 3)) == 3, "and delivered")
    ok(os.path.exists(stranger) and os.stat(stranger).st_uid == 65534,
       "the other user's file was not taken")
    os.unlink(stranger)
else:
    skip("needs root to make a file of another user", 3)
    send(3)
    inst.wait_for("alice", 3)

# an older queue without recycle/: files are created and removed as before
for name in os.listdir(recycle):
    os.unlink(os.path.join(recycle, name))
os.rmdir(recycle)
is_(send(4), 0, "without recycle/, a message is queued")
ok(len(inst.wait_for("alice", 4)) == 4, "and delivered")
end = time.time() + 10
while sum(inst.queue_counts().values()) and time.time() < end:
    time.sleep(0.05)
is_(sum(inst.queue_counts().values()), 0, "and its queue file removed")
ok(not os.path.exists(recycle), "recycle/ is not made behind the administrator's back")
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
