#!/usr/bin/env python3
# sendmail by itself: the envelope and message it hands to the chain (the
# real postern-rewrite, then a stand-in queue that records what it got), its
# options, and its exit codes for every answer the chain can give.
import os
import re
import stat
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from stage import capture_queue, records, split_message

d = tempdir()
fake = os.path.join(d, "bin")
cap = os.path.join(d, "cap")
os.mkdir(fake)
os.mkdir(cap)
queue_prog = capture_queue(d)
os.symlink(prog("postern-rewrite"), os.path.join(fake, "postern-rewrite"))
os.symlink(queue_prog, os.path.join(fake, "postern-queue"))
os.symlink(prog("postern-smtpd"), os.path.join(fake, "postern-smtpd"))
qdir = os.path.join(d, "queue")
os.makedirs(os.path.join(qdir, "public"))
os.mkfifo(os.path.join(qdir, "public", "qmgr"))
write(os.path.join(d, "main.cf"), f"""
myhostname = host.example.org
mydomain = example.org
myorigin = $mydomain
daemon_directory = {fake}
command_directory = {fake}
queue_directory = {qdir}
maillog_file = {d}/maillog
""")
import pwd
user = pwd.getpwuid(os.getuid()).pw_name


def sendmail(args, message, extra_env=None, argv0=None):
    for f in ("message", "envelope"):
        if os.path.exists(os.path.join(cap, f)):
            os.unlink(os.path.join(cap, f))
    env = {"POSTERN_CONFIG_DIR": d, "CAPTURE_DIR": cap, "NAME": ""}
    if extra_env:
        env.update(extra_env)
    exe = prog("sendmail")
    if argv0:
        exe = os.path.join(d, argv0)
        if not os.path.exists(exe):
            os.symlink(prog("sendmail"), exe)
    r = run([exe] + args, input=message, env=env)
    r.stdout = r.stdout.decode(errors="replace")
    r.stderr = r.stderr.decode(errors="replace")
    msg = open(os.path.join(cap, "message"), "rb").read() if os.path.exists(os.path.join(cap, "message")) else None
    envl = records(open(os.path.join(cap, "envelope"), "rb").read()) if os.path.exists(os.path.join(cap, "envelope")) else None
    return r, msg, envl


r, msg, env = sendmail(["bob", "Carol <carol@example.com>, dave@example.net"], b"Subject: hi\n\nbody\n")
is_(r.returncode, 0, "sendmail exits 0 when the queue answers K and 0")
is_(env[0], f"F{user}@example.org", "the default sender is the login name, qualified by rewrite")
is_([x for x in env if x[0] == "T"], ["Tbob@example.org", "Tcarol@example.com", "Tdave@example.net"],
    "command-line recipients: lists and display names are understood")
ok("Aorigin=local" in env and f"Auid={os.getuid()}" in env, "the envelope says origin=local and the uid")
gecos = pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0].replace("&", user.capitalize())
is_([x for x in env if x.startswith("Afull_name=")], [f"Afull_name={gecos}"] if gecos else [],
    "without -F and $NAME, the GECOS field gives the full name")

r, msg, env = sendmail(["-f", "<list@example.com>", "-F", "Jane Doe", "-N", "success, failure", "-R", "hdrs",
                        "-V", "envid-1", "-B", "8BITMIME", "bob@example.com"], b"Subject: opts\n\nx\n")
is_(env[0], "Flist@example.com", "-f <addr>: the sender without its brackets")
ok("Afull_name=Jane Doe" in env, "-F becomes the full_name attribute")
is_(env[1:3], ["Tbob@example.com", "PNOTIFY=SUCCESS,FAILURE"], "-N becomes a NOTIFY record per recipient")
ok("ARET=HDRS" in env and "AENVID=envid-1" in env and "ABODY=8BITMIME" in env, "-R, -V and -B become attributes")
headers, body = split_message(msg)
ok("From: Jane Doe <list@example.com>" in headers, "the added From: carries the -F name")
r, msg, env = sendmail(["-f", "<>", "bob@example.com"], b"x\n")
is_(env[0], "F", "-f '<>' is the null sender")
r, msg, env = sendmail(["-r", "other@example.com", "-N", "never", "bob@example.com"], b"x\n")
is_(env[:3], ["Fother@example.com", "Tbob@example.com", "PNOTIFY=NEVER"], "-r is -f; -N never")
r, msg, env = sendmail(["bob@example.com"], b"x\n", extra_env={"NAME": "From Env"})
ok("Afull_name=From Env" in env, "$NAME gives the full name when -F is absent")

# -t
m = (b"From: me\nTo: a@example.com, b@example.com\nCc: c@example.com\nBcc: d@example.com\n"
     b"Subject: t\n\nTo: notme@example.com\n")
r, msg, env = sendmail(["-t", "e@example.com"], m)
is_(sorted(x for x in env if x[0] == "T"),
    ["Ta@example.com", "Tb@example.com", "Tc@example.com", "Td@example.com", "Te@example.com"],
    "-t: To, Cc and Bcc recipients, plus the command line, not the body")
headers, body = split_message(msg)
ok(not any(h.lower().startswith("bcc:") for h in headers), "-t: the Bcc header is removed")
is_(body, b"To: notme@example.com\n", "-t: the body is untouched")
m = b"To: old@example.com\nResent-To: new@example.com\nResent-Bcc: newbcc@example.com\n\nx\n"
r, msg, env = sendmail(["-t"], m)
is_(sorted(x for x in env if x[0] == "T"), ["Tnew@example.com", "Tnewbcc@example.com"],
    "-t with Resent- headers: only the Resent- recipients")

# input handling
r, msg, env = sendmail(["bob@example.com"], b"From someone Mon Jan 1\nSubject: x\r\n\r\nline\r\n.\nafter\n")
headers, body = split_message(msg)
ok(not any(h.startswith("From someone") for h in headers), "a leading 'From ' line is dropped")
is_(body, b"line\n", "CRLF becomes LF; a lone dot ends the message")
r, msg, env = sendmail(["-i", "bob@example.com"], b"Subject: x\n\n.\n..\nend")
is_(split_message(msg)[1], b".\n..\nend", "-i: dots are data; a last line without LF stays so")
r, msg, env = sendmail(["-oi", "-om", "-odb", "-oem", "bob@example.com"], b"Subject: x\n\n.\nend\n")
is_(split_message(msg)[1], b".\nend\n", "-oi like -i; -om -odb -oem are ignored")

# exit codes for the chain's answers
for exit_code, status, want, text in [
        (71, "Z451 4.3.0 try later", 75, r"try later"),
        (31, "D554 5.7.1 go away", 69, r"go away"),
        (53, "Z452 4.3.1 Insufficient system storage", 75, r"Insufficient system storage"),
        (31, "D552 5.3.4 Message size exceeds fixed maximum message size", 69, r"Message size exceeds"),
        (91, "", 69, r"envelope format error"),
        (81, "", 75, r"status 81")]:
    r, msg, env = sendmail(["bob@example.com"], b"x\n",
                           extra_env={"CAPTURE_EXIT": str(exit_code), "CAPTURE_STATUS": status})
    is_(r.returncode, want, f"queue exit {exit_code} {status or '(no record)'}: sendmail exits {want}")
    like(r.stderr, rf"sendmail: fatal: {re.escape(user)}\(\d+\): .*{text}", "with the reason on stderr")

# a chain that cannot start says why
r = run([prog("sendmail"), "-o", f"daemon_directory={d}/nowhere", "bob@example.com"], input=b"x\n",
        env={"POSTERN_CONFIG_DIR": d})
is_(r.returncode, 75, "no postern-rewrite in daemon_directory: EX_TEMPFAIL")
like(r.stderr.decode(), r"cannot execute .*/nowhere/postern-rewrite: No such file", "naming the program")

# -C names the configuration directory, or its main.cf
for f in ("message", "envelope"):
    if os.path.exists(os.path.join(cap, f)):
        os.unlink(os.path.join(cap, f))
r = run([prog("sendmail"), "-C", os.path.join(d, "main.cf"), "bob"], input=b"x\n",
        env={"POSTERN_CONFIG_DIR": "/nonexistent", "CAPTURE_DIR": cap})
is_(r.returncode, 0, "-C DIR/main.cf works like -C DIR")
ok(os.path.exists(os.path.join(cap, "envelope")) and b"Tbob@example.org" in open(os.path.join(cap, "envelope"), "rb").read(),
   "and the programs it starts read the same main.cf")

# usage errors
r, msg, env = sendmail([], b"x\n")
is_(r.returncode, 64, "no recipient at all: 64")
r, msg, env = sendmail(["-t"], b"Subject: x\n\nx\n")
is_((r.returncode, msg), (64, None), "-t without recipient headers: 64, and nothing is queued")
r, msg, env = sendmail(["-n", "bob"], b"x\n")
is_(r.returncode, 64, "-n: not supported (64)")
r, msg, env = sendmail(["-bs"], b"HELO me\r\nMAIL FROM:<me@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                                b"DATA\r\nSubject: bs\r\n\r\nhi\r\n.\r\nQUIT\r\n")
is_(r.returncode, 0, "-bs: SMTP on stdin through postern-smtpd -S")
like(r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout,
     r"(?s)^220 host\.example\.org ESMTP postern\r\n.*250 2\.0\.0 Ok: queued as \S+\r\n221 2\.0\.0 Bye\r\n$",
     "-bs: the SMTP dialogue on stdout")
ok(env is not None and "Aorigin=local" in env and "Tbob@example.org" in env, "-bs: a local submission reached the chain")

# -q pokes the FIFO with F
rfd = os.open(os.path.join(qdir, "public", "qmgr"), os.O_RDONLY | os.O_NONBLOCK)
r, msg, env = sendmail(["-q"], b"")
is_(r.returncode, 0, "sendmail -q exits 0")
is_(os.read(rfd, 10), b"F", "and writes F into qmgr's FIFO")
os.close(rfd)

# mailq runs `postern queue list` from command_directory
write(os.path.join(fake, "postern"), "#!/bin/sh\necho \"postern $*\"\n", 0o755)
r, msg, env = sendmail([], b"", argv0="mailq")
is_(r.stdout.strip(), f"postern queue -c {d} list", "mailq runs postern queue list")
r, msg, env = sendmail(["-bp"], b"")
is_(r.stdout.strip(), f"postern queue -c {d} list", "sendmail -bp does the same")

# newaliases builds alias_database itself
write(os.path.join(d, "aliases"), "postmaster: root\nabuse: postmaster\n")
r, msg, env = sendmail(["-o", f"alias_database=cdb:{d}/aliases"], b"", argv0="newaliases")
is_(r.returncode, 0, "newaliases exits 0")
ok(os.path.exists(os.path.join(d, "aliases.cdb")), "and builds the alias_database table")
r = run(["postern", "alias", "-c", d, "-q", "abuse", f"cdb:{d}/aliases"])
is_(r.stdout.strip(), "postmaster", "which postern alias can query")
write(os.path.join(d, "bad-aliases"), "no colon here\n")
r, msg, env = sendmail(["-bi", "-o", f"alias_database=cdb:{d}/bad-aliases"], b"")
isnt(r.returncode, 0, "sendmail -bi with a bad aliases file fails")
like(r.stderr, r"bad-aliases, line 1", "naming the file and line")
done()
