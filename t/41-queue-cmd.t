#!/usr/bin/env python3
# `postern queue`: list (mailq's format), hold, release, requeue, delete,
# cat and flush on injected messages, with no qmgr running (so messages stay
# where the commands put them).
import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from inject import instance, envelope, inject

cfg, queue = instance()


def pq(*args):
    return run(["postern", "queue", "-c", cfg] + list(args))


def where(qid):
    return [q for q in ("incoming", "active", "deferred", "hold", "corrupt")
            if os.path.exists(os.path.join(queue, q, qid))]


r = pq("list")
is_((r.returncode, r.stdout), (0, "Mail queue is empty\n"), "an empty queue says so")

qids = []
for i, (sender, rcpts) in enumerate([("alice@example.com", ["bob@example.org", "carol@example.net"]),
                                     ("", ["postmaster@example.com"]),
                                     ("dave@example.com", ["erin@example.org"])]):
    body = b"Subject: %d\n\n" % i + b"x" * (700 * (i + 1)) + b"\n"
    code, status, err = inject(cfg, body, envelope(sender, rcpts))
    qids.append(status[0][1:])
    time.sleep(0.002)
sizes = [len(b"Subject: %d\n\n" % i) + 700 * (i + 1) + 1 for i in range(3)]

r = pq("list")
lines = r.stdout.split("\n")
is_(lines[0], "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------", "the heading is mailq's")
entry = re.compile(r"^([0-9A-F]+)([*!]?)\s+(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)  (\S+)$")
first = entry.match(lines[1])
ok(first is not None, "a message line has id, size, arrival time and sender")
if first:
    is_(first.group(3), str(sizes[qids.index(first.group(1))]), "the size is the message size")
    ok(len(lines[1].split()[0]) <= 11 and lines[1][11] == " ", "columns are mailq's")
is_(lines[2], " " * 41 + ("bob@example.org" if first and first.group(1) == qids[0] else lines[2].strip()),
    "recipients are indented 41 columns")
like(r.stdout, r"MAILER-DAEMON", "the null sender shows as MAILER-DAEMON")
like(r.stdout, r"\n-- %d Kbytes in 3 Requests\.\n$" % (sum(sizes) // 1024), "the summary line counts Kbytes and requests")

# hold and release
r = pq("hold", qids[0])
is_(r.returncode, 0, "hold exits 0")
is_(where(qids[0]), ["hold"], "hold moves the message to hold/")
like(pq("list").stdout, r"^%s!\s" % qids[0], "a held message is listed with !")
like(open(os.path.join(cfg, "maillog")).read(), r"postern/postsuper\[\d+\]: %s: placed on hold" % qids[0],
     "hold is logged as postsuper does")
r = pq("release", qids[0])
is_((r.returncode, where(qids[0])), (0, ["deferred"]), "release moves it to deferred/")
ok(abs(os.path.getmtime(os.path.join(queue, "deferred", qids[0])) - time.time()) < 5,
   "and makes it due now (mtime)")
r = pq("release", qids[1])
isnt(r.returncode, 0, "releasing a message that is not on hold fails")
like(r.stderr, r"%s: no such message" % qids[1], "and says why")

# requeue
r = pq("requeue", qids[0])
is_((r.returncode, where(qids[0])), (0, ["incoming"]), "requeue moves a deferred message back to incoming/")

# ALL
r = pq("hold", "ALL")
is_(sorted(q for q in qids if where(q) == ["hold"]), sorted(qids), "hold ALL holds every message")
like(r.stderr, r"Placed on hold: 3 messages", "and reports the count")
r = pq("requeue", "ALL", "hold")
is_(sorted(q for q in qids if where(q) == ["incoming"]), sorted(qids), "requeue ALL hold brings them back")

# flush DOMAIN: deferred messages for that domain become due now
os.rename(os.path.join(queue, "incoming", qids[2]), os.path.join(queue, "deferred", qids[2]))
os.rename(os.path.join(queue, "incoming", qids[1]), os.path.join(queue, "deferred", qids[1]))
later = time.time() + 3600
for q in qids[1:]:
    os.utime(os.path.join(queue, "deferred", q), (later, later))
r = pq("flush", "example.org")
is_(r.returncode, 0, "flush DOMAIN exits 0")
ok(os.path.getmtime(os.path.join(queue, "deferred", qids[2])) < later - 60,
   "a deferred message for that domain is due now")
ok(abs(os.path.getmtime(os.path.join(queue, "deferred", qids[1])) - later) < 1,
   "one for another domain keeps its retry time")
r = pq("flush")
is_(r.returncode, 0, "flush without a qmgr listening is not an error")
fifo = os.path.join(queue, "public", "qmgr")
rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
pq("flush")
is_(os.read(rfd, 16), b"F", "flush writes F into the qmgr FIFO")
pq("flush", "Example.ORG")
is_(os.read(rfd, 64), b"SExample.ORG\n", "flush DOMAIN asks qmgr for that domain (S DOMAIN)")
r = pq("flush", "bad/../name")
ok(r.returncode != 0, "flush of a name that is no domain fails")
code, status, err = inject(cfg, b"Subject: poke\n\nx\n", envelope("a@b", ["c@d"]))
is_(os.read(rfd, 16), b"A", "injection writes A into the qmgr FIFO")
os.close(rfd)
pq("delete", status[0][1:])

# cat
r = pq("cat", qids[0])
like(r.stdout, r"\*\*\* ENVELOPE RECORDS incoming/%s \*\*\*" % qids[0], "cat shows the envelope section")
like(r.stdout, r"^sender: alice@example\.com$", "with the sender")
like(r.stdout, r"\*\*\* MESSAGE CONTENTS incoming/%s \*\*\*\nSubject: 0\n\nx{700}\n" % qids[0], "and the content")
r = pq("cat", "ABCDEF123")
ok(r.returncode != 0 and "no such message" in r.stderr, "cat of an unknown id fails clearly")

# a corrupt file: cat names the problem, list skips it
bad = os.path.join(queue, "deferred", qids[1])
with open(bad, "r+b") as f:
    data = f.read()
    f.seek(0)
    f.write(data.replace(b"\nM0", b"\nM9", 1))
r = pq("cat", qids[1])
ok(r.returncode != 0 and "corrupt queue file" in r.stderr, "cat reports a corrupt queue file")
like(r.stderr, r"content length past the end", "with the reason")
unlike(pq("list").stdout, qids[1], "list leaves a corrupt file out")

# records appended by qmgr: the last status per recipient is the deferral
# reason in the list; a record cut short by a crash is ignored; a status for
# an offset where no recipient starts makes the file corrupt
def handmade(rcpts, appended):
    head = b"V1\nt1763787013.123456\nFalice@example.com\n"
    offsets = []
    for status, addr in rcpts:
        offsets.append(len(head))
        head += status + addr.encode() + b"\n"
    content = b"Subject: handmade\n\nbody\n"
    data = head + b"M%012d\n" % len(content) + content + b"\nE\n"
    return data + appended(offsets)

hid = "ABCDE12345"
path = os.path.join(queue, "deferred", hid)
write(path, handmade([(b"R", "x@example.org"), (b"D", "y@example.org"), (b"R", "z@example.org")],
                     lambda o: b"S%d 4.4.1 connect to mx.example.org[192.0.2.1]:25: Connection refused\n" % o[0]
                     + b"S%d 4.4.1 old reason\nS%d 4.7.0 greylisted, try later\nW1763790000\nS%d 4.4.2 cut sh" % (o[2], o[2], o[0])))
r = pq("list")
like(r.stdout, r"^ABCDE12345 +24 \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  alice@example\.com\n"
     r" +\(connect to mx\.example\.org\[192\.0\.2\.1\]:25: Connection refused\)\n {41}x@example\.org\n"
     r" +\(greylisted, try later\)\n {41}z@example\.org\n",
     "deferral reasons precede their recipients; done recipients are not listed")
reason_line = [l for l in r.stdout.split("\n") if "greylisted" in l][0]
is_(len(reason_line), 78, "a reason is right-aligned as mailq does (76 columns before the parenthesis end)")
r = pq("cat", hid)
like(r.stdout, r"^done_recipient: y@example\.org$", "cat marks a done recipient")
like(r.stdout, r"^status: z@example\.org: 4\.7\.0 greylisted, try later$", "cat shows the last status of each recipient")
like(r.stdout, r"^warning_message_time: ", "and the delay warning record")
write(path, handmade([(b"R", "x@example.org")], lambda o: b"S%d 4.4.1 off by one\n" % (o[0] + 1)))
r = pq("cat", hid)
like(r.stderr, r"corrupt queue file: bad appended record", "a status for no recipient makes the file corrupt")
os.unlink(path)

# delete
r = pq("delete", qids[0])
is_((r.returncode, where(qids[0])), (0, []), "delete removes a message")
like(open(os.path.join(cfg, "maillog")).read(), r"postern/postsuper\[\d+\]: %s: removed" % qids[0],
     "and logs QUEUEID: removed")
code, status, err = inject(cfg, b"Subject: from stdin\n\nx\n", envelope("a@b", ["c@d"]))
sid = status[0][1:]
r = run(["postern", "queue", "-c", cfg, "delete", "-"], input=f"{sid}!  123 Sun ...\n\n")
is_((r.returncode, where(sid)), (0, []), "delete - takes ids from stdin (mailq's decorations ignored)")
r = pq("delete", "ALL")
is_(r.returncode, 0, "delete ALL exits 0")
is_(pq("list").stdout, "Mail queue is empty\n", "delete ALL empties the queue")
# a user who cannot read the queue gets an error, never "Mail queue is empty"
if os.geteuid() == 0:
    os.chmod(cfg, 0o755)    # its parent is /tmp: left alone
    os.chmod(os.path.join(cfg, "main.cf"), 0o644)
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             prog("postern"), "queue", "-c", cfg, "list"])
    ok(r.returncode != 0 and "Mail queue is empty" not in r.stdout,
       "list without read access to the queue fails instead of saying it is empty")
    like(r.stderr, r"queue report unavailable", "and says the report is unavailable")
else:
    skip("needs root to run as another user", 2)
r = pq("frobnicate")
is_(r.returncode, 2, "an unknown action prints the usage")
done()
