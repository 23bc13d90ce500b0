#!/usr/bin/env python3
# End to end: `postern init` an instance, `postern start` it, submit with
# sendmail as programs do, and find the mail in Maildir (and mbox) with the
# headers a user expects; sendmail's exit codes; status and stop.
import email
import email.policy
import os
import time
import pwd
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from instance import NEEDED, Instance, kill_instance_daemon

require(NEEDED)

user = pwd.getpwuid(os.getuid()).pw_name
inst = Instance("--domain", "example.com")
is_(inst.init.returncode, 0, "postern init exits 0")
ok(os.path.isfile(os.path.join(inst.dir, "main.cf")), "and writes main.cf")
r = inst.start()
is_(r.returncode, 0, "postern start exits 0")
like(r.stdout, r"started postern-qmgr \(pid \d+\); log: .*maillog", "and says where the log is")
ok(inst.qmgr_pid() and os.path.exists(f"/proc/{inst.qmgr_pid()}"), "the pid file names a live qmgr")
r = inst.postern("status")
is_(r.returncode, 0, "postern status exits 0 while it runs")
like(r.stdout, r"running \(pid \d+\)", "and says running")


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# 1. a plain submission to localhost
r = inst.sendmail(["you@localhost"], b"Subject: first\n\nIt works.\n")
is_(r.returncode, 0, "sendmail you@localhost exits 0")
got = inst.wait_for("you")
if not ok(len(got) == 1, "the message is in mail/you/Maildir/new/"):
    diag(inst.log())
m = parse(got[0]) if got else parse(b"")
is_(m["Delivered-To"], "you@localhost", "Delivered-To: names the recipient")
is_(m["Return-Path"], f"<{user}@localhost>", "Return-Path: is the invoking user @$myorigin")
like(m["Message-Id"] or "", r"^<[^@>]+@localhost>$", "a Message-Id was added")
like(m["Date"] or "", r"^\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", "a Date was added")
like(m["From"] or "", rf"{re.escape(user)}@localhost", "a From: with the sender was added")
is_(m["Subject"], "first", "the Subject is kept")
is_(m.get_payload(), "It works.\n", "the body arrives unchanged")

# 2. -f, -F, and a second domain
r = inst.sendmail(["-f", "list-bounces@example.org", "-F", "Test Sender", "bob@example.com"],
                  b"Subject: second\n\nbody\n")
is_(r.returncode, 0, "sendmail -f -F exits 0")
got = inst.wait_for("bob")
m = parse(got[0]) if got else parse(b"")
is_(m["Return-Path"], "<list-bounces@example.org>", "-f sets the envelope sender (Return-Path)")
is_(m["From"], "Test Sender <list-bounces@example.org>", "-F gives the From: full name")
is_(m["Delivered-To"], "bob@example.com", "an --domain domain is delivered the same way")

# 3. -t: recipients from To/Cc/Bcc, plus the command line; Bcc removed
msg = (b"To: t1@localhost\nCc: \"Two\" <t2@localhost>,\n  t3@example.com\nBcc: hidden@localhost\n"
       b"Subject: extract\n\nto several\n")
r = inst.sendmail(["-t", "extra@localhost"], msg)
is_(r.returncode, 0, "sendmail -t exits 0")
for name in ("t1", "t2", "t3", "hidden", "extra"):
    got = inst.wait_for(name)
    ok(len(got) == 1, f"-t: {name} got its copy")
    if got:
        m = parse(got[0])
        head = got[0].split(b"\n\n")[0].decode(errors="replace")
        leaks = [h for h in re.split(r"\n(?![ \t])", head)
                 if "hidden@localhost" in h and not re.match(r"(Delivered-To|X-Original-To):", h)]
        if not ok(m["Bcc"] is None and not leaks, f"-t: no Bcc in {name}'s copy"):
            diag(head)

# 4. a lone dot ends the input, unless -i
r = inst.sendmail(["dot@localhost"], b"Subject: dot\n\nbefore\n.\nafter\n")
got = inst.wait_for("dot")
ok(got and got[0].endswith(b"before\n") and b"after" not in got[0], "a line with only '.' ends the message")
r = inst.sendmail(["-i", "doti@localhost"], b"Subject: dot\n\nbefore\n.\nafter\n")
got = inst.wait_for("doti")
ok(got and got[0].endswith(b"before\n.\nafter\n"), "-i: the lone dot is kept")
r = inst.sendmail(["-oi", "dotoi@localhost"], b"Subject: dot\n\nbefore\n.\nafter\n")
got = inst.wait_for("dotoi")
ok(got and got[0].endswith(b"before\n.\nafter\n"), "-oi: the same")

# 5. exit codes
r = inst.sendmail([], b"Subject: none\n\nx\n")
is_(r.returncode, 64, "no recipients: EX_USAGE (64)")
like(r.stderr, r"Recipient addresses must be specified on the command line or via the -t option",
     "with Postfix's message")
r = inst.sendmail(["-t"], b"Subject: none\n\nx\n")
is_(r.returncode, 64, "-t and no recipient header: EX_USAGE (64)")
like(r.stderr, r"No recipient addresses found in message header", "with Postfix's message")
r = inst.sendmail(["-bs"], b"EHLO me\r\nMAIL FROM:<me@localhost>\r\nRCPT TO:<smtpbs@localhost>\r\nDATA\r\n"
                          b"Subject: bs\r\n\r\nover SMTP on stdin\r\n.\r\nQUIT\r\n")
is_(r.returncode, 0, "-bs: postern-smtpd -S on stdin/stdout")
like(r.stdout, r"250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n221 2\.0\.0 Bye", "-bs: queued")
got = inst.wait_for("smtpbs")
ok(got and got[0].endswith(b"\n\nover SMTP on stdin\n"), "-bs: delivered into the Maildir")
r = inst.sendmail(["-B", "9BIT", "x@localhost"], b"x\n")
is_(r.returncode, 64, "-B with a bad type: EX_USAGE")

# 6. -q pokes qmgr; status counts
r = inst.sendmail(["-q"], b"")
is_(r.returncode, 0, "sendmail -q exits 0 while qmgr runs")
r = inst.postern("status")
like(r.stdout, r"queue: incoming \d+, active \d+, deferred \d+, hold \d+, corrupt 0", "status prints the queue counts")

# 7. stop
pid = inst.qmgr_pid()
r = inst.stop()
is_(r.returncode, 0, "postern stop exits 0")
ok(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z",
   "qmgr is gone")
r = inst.postern("status")
is_(r.returncode, 1, "postern status exits 1 when stopped")
like(r.stdout, r"not running", "and says not running")
r = inst.stop()
is_(r.returncode, 1, "postern stop when stopped exits 1")

# 8. an instance that delivers into mbox files
mb = Instance("-o", "virtual_mailbox_maps=static:you.mbox")
r = mb.start()
is_(r.returncode, 0, "an mbox instance starts")
r = mb.sendmail(["-f", "sender@example.org", "anyone@localhost"], b"Subject: mbox\n\nFrom here on\nline\n")
is_(r.returncode, 0, "sendmail into it exits 0")
path = os.path.join(mb.dir, "mail", "you.mbox")
end = time.time() + 15
while time.time() < end and not (os.path.exists(path) and os.path.getsize(path) > 0):
    time.sleep(0.05)
data = open(path, "rb").read() if os.path.exists(path) else b""
like(data.decode(errors="replace"), r"^From sender@example\.org ", "the mbox starts with a From_ line of the sender")
ok(b"\n>From here on\n" in data, "a body line starting with From is quoted")
ok(b"Delivered-To: anyone@localhost\n" in data, "and has Delivered-To")
mb.stop()


# 9. an ordinary user runs an instance of their own (when the test runs as root)
if os.getuid() == 0:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
    if nobody:
        import subprocess
        home = tempdir()
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        os.chmod(home, 0o755)
        udir = os.path.join(home, "inst")
        import atexit
        atexit.register(kill_instance_daemon, udir)

        def as_nobody(argv, data=b"", extra=None):
            env = dict(os.environ, **(extra or {}))
            def drop():
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            return subprocess.run(argv, input=data, capture_output=True, env=env,
                                  preexec_fn=drop, timeout=60, cwd=home)
        # t/run-tests runs copies of the programs where nobody reaches them
        # when the build tree is not (a clone in /root)
        try:
            r = as_nobody([prog("postern"), "init", udir, "--port", str(free_port())])
        except PermissionError as e:
            r = subprocess.CompletedProcess([], 126, b"", str(e).encode())
        if not is_(r.returncode, 0, "nobody: postern init"):
            diag(r.stderr.decode(errors="replace"))
            done()
        r = as_nobody([prog("postern"), "start", "-c", udir])
        is_(r.returncode, 0, "nobody: postern start")
        r = as_nobody([prog("sendmail"), "friend@localhost"], b"Subject: as nobody\n\nhi\n",
                      {"POSTERN_CONFIG_DIR": udir})
        is_(r.returncode, 0, "nobody: sendmail exits 0")
        path = os.path.join(udir, "mail", "friend", "Maildir", "new")
        end = time.time() + 15
        while time.time() < end and not (os.path.isdir(path) and os.listdir(path)):
            time.sleep(0.05)
        files = os.listdir(path) if os.path.isdir(path) else []
        ok(len(files) == 1 and os.stat(os.path.join(path, files[0])).st_uid == nobody.pw_uid,
           "nobody: the mail is delivered into a Maildir that nobody owns")
        data = open(os.path.join(path, files[0]), "rb").read() if files else b""
        like(data.decode(errors="replace"), r"Return-Path: <nobody@localhost>", "nobody: from nobody@localhost")
        r = as_nobody([prog("postern"), "stop", "-c", udir])
        is_(r.returncode, 0, "nobody: postern stop")
done()
