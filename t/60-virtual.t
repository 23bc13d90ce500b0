#!/usr/bin/env python3
# postern-virtual: delivery into virtual Maildirs and mbox files as Postfix's
# virtual(8) does, from a shell and through the request protocol of
# doc/delivery.md (request records on fd 3, the queue file on fd 0).
import glob, os, random, re, signal, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

VIRTUAL = prog("postern-virtual")
ROOT = os.geteuid() == 0
# as root the runner switches to the mailbox owner: use an ordinary uid
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()

MSG = (b"From: Carol <carol@example.org>\n"
       b"Subject: test\n"
       b"\n"
       b"From the top of the body\n"
       b">From an already quoted line\n"
       b"last line\n")


def instance(extra=""):
    """A configuration directory with a mailbox base and the tables."""
    d = tempdir()
    base = os.path.join(d, "mail")
    # mbox files are not given parent directories (as Postfix's): make one
    os.makedirs(os.path.join(base, "example.com"))
    if ROOT:
        os.chmod(d, 0o755)          # mkdtemp's 0700 would keep the owner out
        os.chown(base, OWNER, GROUP)
        os.chown(os.path.join(base, "example.com"), OWNER, GROUP)
    write(os.path.join(d, "vmailbox"),
          "bob@example.com   example.com/bob/\n"
          "alice@example.com example.com/alice\n"
          "@example.net      catchall/\n")
    write(os.path.join(d, "main.cf"),
          f"virtual_mailbox_base = {base}\n"
          f"virtual_mailbox_maps = texthash:{d}/vmailbox\n"
          f"virtual_uid_maps = static:{OWNER}\n"
          f"virtual_gid_maps = static:{GROUP}\n"
          f"maillog_file = {d}/maillog\n" + extra)
    return d


def deliver(d, rcpts, msg=MSG, sender="sender@example.org", opts=()):
    argv = [VIRTUAL, "-c", d]
    for o in opts:
        argv += ["-o", o]
    argv += ["-f", sender] + list(rcpts)
    # a piped message is copied to an unlinked file in $TMPDIR
    return run(argv, input=msg, env={"TMPDIR": d})


def files(d, pattern):
    return sorted(glob.glob(os.path.join(d, "mail", pattern)))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""



def prefix(rcpt, sender="sender@example.org", orig=None):
    return (f"Return-Path: <{sender}>\nX-Original-To: {orig or rcpt}\n"
            f"Delivered-To: {rcpt.lower()}\n").encode()


# ---- Maildir, from a shell ----
d = instance()
r = deliver(d, ["bob@example.com"])
is_(r.returncode, 0, "maildir: exit 0")
is_(r.stdout, b"bob@example.com: dsn=2.0.0, status=sent (delivered to maildir)\n",
    "maildir: the result line names the outcome as Postfix logs it")
new = files(d, "example.com/bob/new/*")
is_(len(new), 1, "maildir: one file in new/")
is_(read(new[0]) if new else None, prefix("bob@example.com") + MSG,
    "maildir: Return-Path, X-Original-To, Delivered-To, then the message unchanged")
is_(files(d, "example.com/bob/tmp/*"), [], "maildir: tmp/ is empty afterwards")
ok(os.path.isdir(os.path.join(d, "mail/example.com/bob/cur")), "maildir: cur/ was created too")
if new:
    st = os.stat(new[0])
    is_((st.st_uid, stat.S_IMODE(st.st_mode)), (OWNER, 0o600),
        "maildir: the file belongs to the mailbox owner, mode 0600")
    like(os.path.basename(new[0]), r"^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\.[^/:]+$",
         "maildir: the name has Postfix's unique form time.VdevIinodeMusec.host")
like(read(os.path.join(d, "maillog")).decode(),
     r"postern/virtual\[\d+\]: NOQUEUE: to=<bob@example.com>, relay=virtual, delay=[\d.]+, dsn=2.0.0, status=sent \(delivered to maildir\)",
     "maildir: the delivery is logged in Postfix's form")

# a second message gets its own file; case is folded for the lookup
r = deliver(d, ["Bob@Example.COM"])
new = files(d, "example.com/bob/new/*")
is_(len(new), 2, "a second delivery adds a second file")
ok(any(read(f).startswith(prefix("Bob@Example.COM")) for f in new),
   "the lookup folds case; Delivered-To is lower case, X-Original-To as given")

# stdin that is a file positioned in the middle: only the rest is delivered
d = instance()
path = write(os.path.join(d, "input"), b"GARBAGE BEFORE\n" + MSG)
with open(path, "rb") as f:
    f.seek(len(b"GARBAGE BEFORE\n"))
    p = subprocess.run([VIRTUAL, "-c", d, "-f", "sender@example.org", "bob@example.com"],
                       stdin=f, capture_output=True)
new = files(d, "example.com/bob/new/*")
is_(read(new[0]) if new else None, prefix("bob@example.com") + MSG,
    "stdin is read from its current position to the end")

# the catch-all @domain and the null sender
r = deliver(d, ["anyone@example.net"], sender="")
new = files(d, "catchall/new/*")
ok(new and read(new[0]) == prefix("anyone@example.net", sender="") + MSG,
   "@domain answers for any user; the null sender is Return-Path: <>")

# ---- mbox ----
d = instance()
r1 = deliver(d, ["alice@example.com"])
r2 = deliver(d, ["alice@example.com"], msg=b"Subject: second\n\nno final newline")
is_((r1.returncode, r2.returncode), (0, 0), "mbox: two deliveries exit 0")
is_(r1.stdout, b"alice@example.com: dsn=2.0.0, status=sent (delivered to mailbox)\n",
    "mbox: the result says delivered to mailbox")
box = read(os.path.join(d, "mail/example.com/alice"))
parts = re.split(rb"^From sender@example\.org  [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n",
                 box, flags=re.M)
is_(len(parts), 3, "mbox: each message starts with a 'From sender  date' line")
if len(parts) == 3:
    is_(parts[1], prefix("alice@example.com")
        + MSG.replace(b"\nFrom the", b"\n>From the") + b"\n",
        "mbox: body lines starting 'From ' are quoted, a blank line ends the message")
    is_(parts[2], prefix("alice@example.com") + b"Subject: second\n\nno final newline\n\n",
        "mbox: a message without a final newline gets one before the blank line")
ok(not os.path.exists(os.path.join(d, "mail/example.com/alice.lock")),
   "mbox: the dot lock is gone afterwards")
r = deliver(d, ["alice@example.com"], sender="")
ok(read(os.path.join(d, "mail/example.com/alice")).count(b"\nFrom MAILER-DAEMON  ") == 1,
   "mbox: the null sender is MAILER-DAEMON on the From line")

# quoting does not depend on where the program's read blocks end: every
# line here starts with "From ", at every offset modulo any block size
d2 = instance()
many = b"Subject: q\n\n" + b"From x\n" * 30000
r = deliver(d2, ["alice@example.com"], msg=many)
box = read(os.path.join(d2, "mail/example.com/alice"))
is_((box.count(b">From x\n"), box.count(b"\nFrom x\n")), (30000, 0),
    "mbox: 'From ' lines are quoted across read-block boundaries")

# a held dot lock defers with Postfix's 4.2.0
write(os.path.join(d, "mail/example.com/alice.lock"), "")
r = deliver(d, ["alice@example.com"], opts=["deliver_lock_attempts=1"])
is_(r.returncode, 75, "mbox: a lock held by another defers (exit 75)")
like(r.stdout.decode(), r"^alice@example.com: dsn=4\.2\.0, status=deferred \(delivery failed to mailbox .*/alice: unable to create lock file .*alice\.lock: File exists\)",
     "mbox: ... with 4.2.0 and the lock file named")
os.unlink(os.path.join(d, "mail/example.com/alice.lock"))

if ROOT:
    # strict_mailbox_ownership: a mailbox of another owner is not written
    other = instance()
    write(os.path.join(other, "mail/example.com/alice"), b"", mode=0o666)
    r = deliver(other, ["alice@example.com"])
    like(r.stdout.decode(), r"dsn=4\.2\.0, status=deferred \(delivery failed to mailbox .*: destination .* is not owned by recipient\)",
         "mbox: a file not owned by the recipient defers (strict_mailbox_ownership)")

# ---- failures ----
d = instance()
r = deliver(d, ["nobody@example.com"])
is_(r.returncode, 67, "unknown user: exit 67 (EX_NOUSER)")
is_(r.stdout, b'nobody@example.com: dsn=5.1.1, status=bounced (unknown user: "nobody@example.com")\n',
    "unknown user: bounced 5.1.1 with Postfix's text")
r = deliver(d, ["bob+ext@example.com"])
is_(r.returncode, 67, "without recipient_delimiter, user+ext is another user")
r = deliver(d, ["bob+ext@example.com"], opts=["recipient_delimiter=+"])
ok(r.returncode == 0, "with recipient_delimiter=+, user+ext@domain finds user@domain")

r = deliver(d, ["bob@example.com"], opts=["virtual_mailbox_maps=fail:down"])
is_(r.returncode, 75, "a table that cannot answer: exit 75")
is_(r.stdout, b"bob@example.com: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a table that cannot answer defers with Postfix's 4.3.5, never a bounce")
like(read(os.path.join(d, "maillog")).decode(), r"warning: table fail:down: lookup bob@example.com",
     "... and the table is named in the log")

r = deliver(d, ["bob@example.com"], opts=[f"virtual_minimum_uid={OWNER + 1}"])
is_(r.stdout, b"bob@example.com: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a uid below virtual_minimum_uid defers (4.3.5)")
like(read(os.path.join(d, "maillog")).decode(),
     rf"warning: recipient bob@example.com: bad uid {OWNER} in virtual_uid_maps",
     "... and the log says which uid")
write(os.path.join(d, "vmailbox2"), "eve@example.com example.com/../../../tmp/eve\n")
r = deliver(d, ["eve@example.com"], opts=[f"virtual_mailbox_maps=texthash:{d}/vmailbox2"])
is_(r.stdout, b"eve@example.com: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a mailbox path with a '..' component is refused (deferred)")
like(read(os.path.join(d, "maillog")).decode(), r"mailbox example.com/../../../tmp/eve in virtual_mailbox_maps leaves virtual_mailbox_base",
     "... and the log says why")
# a pattern virtual_mailbox_maps may substitute ($1/): postern checks every
# mailbox path instead (Postfix refuses the rule), so "any local part gets
# its own Maildir" is one ordinary rule; a local part that would climb out
# of virtual_mailbox_base is still refused
subst = write(os.path.join(d, "vmailbox.pcre"), "# a mailbox per user\n/^(.*)@example\\.org$/ example.org/$1/\n")
r = deliver(d, ["../../../tmp/x@example.org"], opts=[f"virtual_mailbox_maps=pcre:{subst}"])
is_(r.stdout, b"../../../tmp/x@example.org: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a pcre virtual_mailbox_maps with $1 cannot lead out of the base (4.3.5)")
is_(r.returncode, 75, "  exit 75")
like(read(os.path.join(d, "maillog")).decode(), r"mailbox example.org/\.\./\.\./\.\./tmp/x/ in virtual_mailbox_maps leaves virtual_mailbox_base",
     "... and the log says why")
r = deliver(d, ["../../../tmp/\x1b[2Jz@example.org"], opts=[f"virtual_mailbox_maps=pcre:{subst}"])
log = read(os.path.join(d, "maillog")).decode()
ok("\x1b" not in log and "recipient ../../../tmp/?[2jz@example.org: mailbox example.org/../../../tmp/?[2jz/ in" in log,
   "a control character of the recipient reaches the log only as '?'")
r = deliver(d, ["carol@example.org"], opts=[f"virtual_mailbox_maps=pcre:{subst}"])
ok(r.returncode == 0 and len(files(d, "example.org/carol/new/*")) == 1,
   "the same table delivers carol@example.org into example.org/carol/")
literal = write(os.path.join(d, "vmailbox3.pcre"), "/^carol@example\\.org$/ example.org/carol/\n")
r = deliver(d, ["carol@example.org"], opts=[f"virtual_mailbox_maps=pcre:{literal}"])
ok(r.returncode == 0 and len(files(d, "example.org/carol/new/*")) == 2,
   "a pcre table without $1 delivers too")
uid_subst = write(os.path.join(d, "uid.regexp"), f"/^u([0-9]+)@/ $1\n/./ {OWNER}\n")
r = deliver(d, ["bob@example.com"], opts=[f"virtual_uid_maps=regexp:{uid_subst}"])
is_(r.stdout, b"bob@example.com: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a regexp virtual_uid_maps with $1 defers (4.3.5)")
like(read(os.path.join(d, "maillog")).decode(),
     "warning: virtual_uid_maps: " + re.escape(uid_subst) + r", line 1: regular expression substitution is not allowed",
     "... with file:line")
gid_subst = write(os.path.join(d, "gid.pcre"), f"if /@example\\.com$/\n/^(\\d+)@/ ${{1}}\n/./ {GROUP}\nendif\n")
r = deliver(d, ["bob@example.com"], opts=[f"virtual_gid_maps=pcre:{gid_subst}"])
is_(r.stdout, b"bob@example.com: dsn=4.3.5, status=deferred (mail system configuration error)\n",
    "a pcre virtual_gid_maps with ${1} inside if/endif defers (4.3.5)")
like(read(os.path.join(d, "maillog")).decode(),
     "warning: virtual_gid_maps: " + re.escape(gid_subst) + r", line 2: regular expression substitution is not allowed",
     "... with file:line")
r = deliver(d, ["bob@example.com"], opts=["virtual_uid_maps="])
like(r.stdout.decode(), r"dsn=4\.3\.5, status=deferred", "no uid for the recipient defers")
r = deliver(d, ["bob@example.com"], opts=["virtual_mailbox_base=relative/path"])
like(r.stdout.decode(), r"dsn=4\.3\.5, status=deferred", "a relative virtual_mailbox_base defers")

# virtual_mailbox_limit: the size of one Maildir file or the whole mbox
d = instance("message_size_limit = 1000\nvirtual_mailbox_limit = 1000\n")
big = b"Subject: big\n\n" + b"x" * 99 + b"\n"
big = big * 12
r = deliver(d, ["bob@example.com"], msg=big)
is_(r.returncode, 67, "over virtual_mailbox_limit: exit 67")
is_(r.stdout, b"bob@example.com: dsn=5.2.2, status=bounced (maildir delivery failed: error writing message: File too large)\n",
    "over virtual_mailbox_limit: a Maildir file bounces 5.2.2 as Postfix's")
is_((files(d, "example.com/bob/new/*"), files(d, "example.com/bob/tmp/*")), ([], []),
    "... and leaves nothing in new/ or tmp/")
small = b"Subject: small\n\n" + b"y" * 400 + b"\n"
r1 = deliver(d, ["alice@example.com"], msg=small)
size1 = os.path.getsize(os.path.join(d, "mail/example.com/alice"))
r2 = deliver(d, ["alice@example.com"], msg=small)
is_((r1.returncode, r2.returncode), (0, 67), "mbox: the message that would pass the limit bounces")
like(r2.stdout.decode(), r"dsn=5\.2\.2, status=bounced \(delivery failed to mailbox .*/alice: error writing message: File too large\)",
     "mbox over the limit: 5.2.2, File too large")
is_(os.path.getsize(os.path.join(d, "mail/example.com/alice")), size1,
    "mbox over the limit: the file keeps its old size")
r = deliver(d, ["bob@example.com"], opts=["message_size_limit=2000"])
like(r.stdout.decode(), r"dsn=4\.3\.5", "virtual_mailbox_limit below message_size_limit is a configuration error")
r = deliver(d, ["bob@example.com"], opts=["message_size_limit=0"])
like(r.stdout.decode(), r"dsn=4\.3\.5", "so is a limited mailbox with message_size_limit = 0 (no limit), as Postfix's virtual says")
r = deliver(d, ["bob@example.com"], opts=["message_size_limit=0", "virtual_mailbox_limit=0"])
like(r.stdout.decode(), r"dsn=2\.0\.0, status=sent", "with both 0 (no limits) it delivers")

# orphans in Maildir/tmp (a runner killed before its rename) go after 36
# hours, as Maildir readers expect, when a delivery comes; tmp/ is read at
# most once an hour (its access time remembers the last look)
d = instance()
is_(deliver(d, ["bob@example.com"]).returncode, 0, "a first delivery makes the Maildir")
tmp = os.path.join(d, "mail", "example.com", "bob", "tmp")
now = time.time()


def orphan(name, age_hours):
    path = os.path.join(tmp, name)
    write(path, "partial")
    os.utime(path, (now - age_hours * 3600, now - age_hours * 3600))
    if ROOT:
        os.chown(path, OWNER, GROUP)
    return path


old_one = orphan("1000.M1P1Q1.host", 37)
young = orphan("1001.M1P1Q1.host", 35)
os.utime(tmp, (now - 7200, os.stat(tmp).st_mtime))        # last look: 2 hours ago
is_(deliver(d, ["bob@example.com"]).returncode, 0, "a delivery to a Maildir with orphans in tmp/")
ok(not os.path.exists(old_one), "a tmp/ file untouched for 37 hours is removed")
ok(os.path.exists(young), "one untouched for 35 hours stays")
like(open(os.path.join(d, "maillog")).read(), r"removed .*/bob/tmp/1000\.M1P1Q1\.host: left in tmp/ for more than 36 hours",
     "and the removal is logged")
is_(len(files(d, "example.com/bob/new/*")), 2, "both deliveries are in new/")
second = orphan("1002.M1P1Q1.host", 40)
deliver(d, ["bob@example.com"])
ok(os.path.exists(second), "within the hour tmp/ is not read again")
os.utime(tmp, (now - 7200, os.stat(tmp).st_mtime))
deliver(d, ["bob@example.com"])
ok(not os.path.exists(second) and os.path.exists(young), "an hour later it is, and the old orphan goes")

# usage
r = run([VIRTUAL, "-c", d, "bob@example.com"], input=b"")
is_(r.returncode, 64, "shell mode without -f: usage, exit 64")
like(r.stderr.decode(), r"usage: postern-virtual", "... with the usage line")

# ---- request mode (interface 4) ----
def queue_file(path, sender, rcpts, msg):
    """A queue file as doc/queue-format.md describes; returns the content offset."""
    head = f"V1\nt{time.time():.6f}\nF{sender}\n".encode()
    for rc in rcpts:
        head += f"R{rc}\n".encode()
    head += f"M{len(msg)}\n".encode()
    with open(path, "wb") as f:
        f.write(head + msg + b"\nE\n")
    return len(head)


def request(d, records, qfile, extra_fds=True):
    """Run postern-virtual -R with the records on fd 3 and qfile on fd 0."""
    rfd, wfd = os.pipe()
    data = b"".join(r.encode() + b"\0" for r in records) + b"\0"
    with open(qfile, "rb") as q:
        p = subprocess.Popen([VIRTUAL, "-R", "-c", d], stdin=q, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, pass_fds=(rfd, 3),
                             preexec_fn=lambda: (os.dup2(rfd, 3), os.close(rfd)) if rfd != 3 else None)
    os.close(rfd)
    os.write(wfd, data)
    os.close(wfd)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


d = instance()
qf = os.path.join(d, "4B1C3A2F1")
rcpts = ["bob@example.com", "nobody@example.com", "alice@example.com", "x@example.net"]
off = queue_file(qf, "sender@example.org", rcpts, MSG)
recs = ["Q4B1C3A2F1", "Fsender@example.org", "Hexample.com", f"M{off},{len(MSG)}",
        "Aarrival=1763787013"]
for rc in rcpts:
    recs.append("T" + rc)
recs.append("PORIG=Original@Example.net")        # for x@example.net, the last T
code, out, err = request(d, recs, qf)
is_(code, 0, "request mode: exit 0")
results = out.split(b"\0")
is_(results[:3], [b"K2.0.0 delivered to maildir",
                  b'D5.1.1 unknown user: "nobody@example.com"',
                  b"K2.0.0 delivered to mailbox"],
    "request mode: one NUL-terminated K/Z/D record per recipient, in request order")
is_(len(results), 5, "request mode: one result per recipient, each ended by NUL")
ok(results[3:] == [b"K2.0.0 delivered to maildir", b""],
   "request mode: the @domain catch-all in a request")
new = files(d, "example.com/bob/new/*")
is_(read(new[0]) if new else None, prefix("bob@example.com") + MSG,
    "request mode: the message is taken from the queue file at the M offset, exactly")
new = files(d, "catchall/new/*")
ok(new and read(new[0]).startswith(prefix("x@example.net", orig="Original@Example.net")),
   "request mode: a PORIG attribute becomes X-Original-To")
is_(read(os.path.join(d, "maillog")).decode().count("status=sent"), 0,
    "request mode: the runner leaves the delivery log lines to qmgr")

code, out, err = request(d, ["Fsender@example.org", "Tbob@example.com"], qf)
is_((code, out), (75, b""), "a request without M: exit 75 and no result (qmgr defers)")
code, out, err = request(d, ["Fs", f"M{off},{len(MSG) + 100}", "Tbob@example.com"], qf)
is_((code, out), (75, b""), "a message range past the end of the queue file: no result")
code, out, err = request(d, ["Fs", f"M{off},{len(MSG)}", "T" + "a" * 5000], qf)
is_((code, out), (75, b""), "a record over the size bound: no result")

# ---- crash safety: SIGKILL at random points never leaves a partial file in new/ ----
d = instance()
bigmsg = b"Subject: large\n\n" + (b"0123456789abcdef" * 4 + b"\n") * 130000    # ~8 MB
expect = prefix("bob@example.com") + bigmsg
msgpath = write(os.path.join(d, "big"), bigmsg)
random.seed(42)
killed = 0
for i in range(12):
    with open(msgpath, "rb") as f:
        p = subprocess.Popen([VIRTUAL, "-c", d, "-f", "sender@example.org", "bob@example.com"],
                             stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0, 0.06))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
new = files(d, "example.com/bob/new/*")
bad = [f for f in new if read(f) != expect]
diag(f"{killed} of 12 runs killed, {len(new)} complete deliveries in new/")
ok(killed > 0, "crash test: some runs were killed while delivering")
is_(bad, [], "crash test: every file in new/ is a complete message")

done()
