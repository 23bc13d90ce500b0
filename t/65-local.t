#!/usr/bin/env python3
# postern-local: local(8) delivery as the recipient, through the real chain
# (SMTP and sendmail into a started instance, qmgr, the runner service
# postern-spawn with privileged_transports = local) and from a shell.
#
# As root: temporary users (useradd here, userdel at exit) get mail in
# ~/Maildir/ and in mbox files they own; every alias kind (address, /file,
# |command, :include:, owner-), .forward with an extension, an alias loop
# and a forwarding loop caught by Delivered-To (5.4.6), mbox From_ quoting
# and locking under two concurrent deliveries, mailbox_command with the real
# procmail and maildrop (success, temporary and permanent exits), commands
# running with the recipient's (or the alias owner's) uid.  As the
# instance's own user (not root): its own delivery, and the reason it
# gives for another user.
import atexit, glob, os, pwd, re, smtplib, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import instance as inst_mod
from users import create_users

LOCAL = prog("postern-local")
require(programs=("postern-local", "postern-spawn", "postern-lookup", "postern-qmgr", "sendmail"),
        tools=("procmail", "maildrop"))
MSG = "From: s@example.org\nSubject: %s\n\nFrom the start of a body line\nbye\n"
wait = wait_until


def read(path):
    with open(path, "rb") as f:
        return f.read()


def setpriv_as(pw):
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--"]


def own_instance(me, other, wrap):
    """Not root: a self-contained instance of user `me` (run through `wrap`,
    a setpriv prefix when the test is root) delivers me's mail, into an
    mbox in its own spool directory (neither the home nor a .forward of a
    real user is touched), and defers other's with the reason."""
    parent = tempdir()
    own = os.path.join(parent, "own")
    if wrap:
        os.chown(parent, me.pw_uid, me.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": parent}

    def run_me(argv, input=None, extra_env=None):
        return run(wrap + argv, input=input, env=dict(env, **(extra_env or {})))

    r = run_me([prog("postern"), "init", own, "--port", str(free_port())])
    is_(r.returncode, 0, f"postern init as {me.pw_name}") or diag(r.stderr)
    spool = os.path.join(own, "spool")
    with open(os.path.join(own, "main.cf"), "a") as f:
        f.write(f"mydestination = local.test\nhome_mailbox =\nmail_spool_directory = {spool}\n"
                "forward_path =\n")
    os.makedirs(spool)
    if wrap:
        os.chown(spool, me.pw_uid, me.pw_gid)
    r = run_me([prog("postern"), "start", "-c", own])
    is_(r.returncode, 0, f"postern start as {me.pw_name}") or diag(r.stderr)
    atexit.register(lambda: inst_mod.kill_instance_daemon(own))
    box = os.path.join(spool, me.pw_name)

    def count():
        try:
            return len(re.findall(rb"^From s@example.org ", read(box), re.M))
        except OSError:
            return 0
    r = run_me([LOCAL, "-c", own, "-f", "s@example.org", me.pw_name, other.pw_name],
               input=(MSG % "own").encode())
    out = r.stdout.decode()
    like(out, rf"{me.pw_name}: dsn=2\.0\.0, status=sent \(delivered to mailbox\)",
         "not root: the user's own mail is delivered")
    is_(count(), 1, "into the user's mbox")
    like(out, rf"{other.pw_name}: dsn=4\.3\.0, status=deferred \(cannot deliver as user {other.pw_name}: "
         rf"this postern-local runs as uid {me.pw_uid}, not as root\)", "another user's mail is deferred with the reason")
    like(r.stderr.decode(), rf"warning: cannot deliver to {other.pw_name} \(uid {other.pw_uid}\): "
         "postern-local runs as uid", "and the log says why")
    r = run_me([prog("sendmail"), "-f", "s@example.org", f"{me.pw_name}@local.test", f"{other.pw_name}@local.test"],
               input=(MSG % "own-queue").encode(), extra_env={"POSTERN_CONFIG_DIR": own})
    is_(r.returncode, 0, "not root: sendmail into the user's own instance") or diag(r.stderr)
    ok(wait(lambda: count() == 2), "qmgr runs postern-local as the user: the mail is in its mbox")
    ok(wait(lambda: re.search(rf"to=<{other.pw_name}@local.test>, relay=local, .*status=deferred \(cannot deliver "
                              rf"as user {other.pw_name}: this postern-local runs as uid {me.pw_uid}, not as root\)",
                              open(os.path.join(own, "maillog"), errors="replace").read())),
       "and the other user's copy waits in the queue with the reason in the log")
    run_me([prog("postern"), "stop", "-c", own])


if os.geteuid() != 0:
    own_instance(pwd.getpwuid(os.getuid()), pwd.getpwuid(0), [])
    skip("the rest needs root (it creates temporary users to deliver to)")
    done()
    sys.exit(0)

for p in ("useradd", "userdel", "setpriv"):
    if subprocess.run(["sh", "-c", f"command -v {p}"], stdout=subprocess.DEVNULL).returncode:
        skip_all(f"{p} is missing")

tag = "%04d" % (os.getpid() % 10000)
NAMES = {"a": f"pla{tag}", "b": f"plb{tag}", "c": f"plc{tag}"}
PW = dict(zip(NAMES, create_users(list(NAMES.values()))))
A, B, C = NAMES["a"], NAMES["b"], NAMES["c"]


def maildir(user, sub="Maildir"):
    d = os.path.join(PW[user].pw_dir, sub, "new")
    if not os.path.isdir(d):
        return []
    return sorted((os.path.join(d, f) for f in os.listdir(d)), key=os.path.getmtime)


# ---- the instance: local.test is ours and goes to postern-local --------
inst = inst_mod.Instance()
is_(inst.init.returncode, 0, "postern init") or diag(inst.init.stderr)
D = inst.dir
files = os.path.join(D, "files")
os.makedirs(files)
os.chown(files, PW["b"].pw_uid, PW["b"].pw_gid)        # the alias owner's directory
aliases = os.path.join(D, "aliases")
include = os.path.join(files, "list.inc")
write(include, f"# a comment line\n{A}\n{files}/inc-out\n")
os.chown(include, PW["b"].pw_uid, PW["b"].pw_gid)
write(aliases, f"""fwd: {A}
tofile: {files}/file-out
tocmd: "|id -u > {files}/cmd-uid", "|/usr/bin/tee {files}/tee-out"
inc: :include:{include}
list: {A}, {C}
owner-list: {B}
loopa: loopb
loopb: loopa
barepipe: |
""")
os.chown(aliases, PW["b"].pw_uid, PW["b"].pw_gid)       # alias commands run as b
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
mydestination = local.test
myorigin = local.test
alias_maps = hash:{aliases}
alias_database = hash:{aliases}
home_mailbox = Maildir/
recipient_delimiter = +
privileged_transports = local
allow_mail_to_commands = alias, forward, include
allow_mail_to_files = alias, forward, include
""")
r = inst.postern("alias")
is_(r.returncode, 0, "newaliases builds the aliases table") or diag(r.stderr)
os.chown(aliases + ".cdb", PW["b"].pw_uid, PW["b"].pw_gid)
r = inst.start()
is_(r.returncode, 0, "postern start (lookup service, runner service for local)") or diag(r.stderr)
ok(os.path.exists(os.path.join(D, "queue", "private", "local")),
   "the runner service of local listens on private/local")

# b's .forward+ext: his own mailbox and a file of his; c has no .forward
write(os.path.join(PW["b"].pw_dir, f".forward+ext"), f"\\{B}\n{PW['b'].pw_dir}/ext-file\n")
os.chown(os.path.join(PW["b"].pw_dir, ".forward+ext"), PW["b"].pw_uid, PW["b"].pw_gid)
# c's .forward pipes to a command (with a shell) and keeps a copy
write(os.path.join(PW["c"].pw_dir, ".forward"),
      f"\\{C}, \"|id -u > {PW['c'].pw_dir}/fwd-uid; cat > {PW['c'].pw_dir}/fwd-msg\"\n")
os.chown(os.path.join(PW["c"].pw_dir, ".forward"), PW["c"].pw_uid, PW["c"].pw_gid)


# ---- SMTP: known and unknown local users -------------------------------
port = None
for line in open(os.path.join(D, "master.cf")):
    m = re.match(r"127\.0\.0\.1:(\d+)\s", line)
    if m:
        port = int(m.group(1))
ok(port, "the instance listens for SMTP")
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example")
s.mail("s@example.org")
code, text = s.rcpt(f"nosuch{tag}@local.test")
is_((code, text.decode()), (550, f"5.1.1 <nosuch{tag}@local.test>: Recipient address rejected: "
                            "User unknown in local recipient table"),
    "smtpd refuses an unknown local user at RCPT (local_recipient_maps through the lookup service)")
code, _ = s.rcpt(f"{A}@local.test")
is_(code, 250, "and accepts a user of the passwd database")
code, _ = s.rcpt("fwd@local.test")
is_(code, 250, "and an alias")
s.data((MSG % "smtp").encode())
s.quit()
ok(wait(lambda: len(maildir("a")) >= 2), f"{A} gets the message and the alias's copy in ~/Maildir/new")
got = [read(p) for p in maildir("a")]
ok(all(os.stat(p).st_uid == PW["a"].pw_uid for p in maildir("a")), "the files belong to the recipient")
is_(os.stat(os.path.join(PW["a"].pw_dir, "Maildir")).st_uid, PW["a"].pw_uid,
    "as does the Maildir it made")
ok(any(f"Delivered-To: {A}@local.test\n".encode() in m and b"Delivered-To: fwd@local.test\n" in m
       for m in got), "the alias's copy has the alias's Delivered-To below the user's")
ok(any(m.startswith(b"Return-Path: <s@example.org>\nX-Original-To: " + f"{A}@local.test".encode())
       for m in got), "Return-Path and X-Original-To come first, as Postfix writes them")
# the copy can land before qmgr logs the alias's result: wait for the line
fwd_line = r"to=<fwd@local.test>, relay=local, .*dsn=2\.0\.0, status=sent \(forwarded as [0-9A-F]+\)"
ok(wait(lambda: re.search(fwd_line, inst.log())), "the alias is logged as forwarded with the new queue id")


# ---- sendmail: each alias kind ------------------------------------------
def send(rcpts, subject, extra_headers="", sender="s@example.org"):
    r = inst.sendmail(["-f", sender] + rcpts, (extra_headers + MSG % subject).encode())
    is_(r.returncode, 0, f"sendmail {subject}") or diag(r.stderr)


def logged(pattern, timeout=20):
    return wait(lambda: re.search(pattern, inst.log()) is not None, timeout)


send(["tofile@local.test", "tocmd@local.test", "inc@local.test"], "kinds")
ok(logged(r"to=<tofile@local.test>, relay=local, .*status=sent \(delivered to file: " + re.escape(files)),
   "/file: delivered to file") or diag(inst.log()[-3000:])
out = os.path.join(files, "file-out")
ok(os.path.exists(out) and read(out).startswith(b"From s@example.org "), "the file is an mbox with a From_ line")
ok(os.path.exists(out) and b"\n>From the start of a body line\n" in read(out), "with body From_ lines quoted")
ok(os.path.exists(out) and b"Delivered-To: tofile@local.test\n" in read(out),
   "and Delivered-To (prepend_delivered_header = command, file, forward)")
is_(os.path.exists(out) and os.stat(out).st_uid, PW["b"].pw_uid, "written as the alias table's owner")
ok(logged(r"to=<tocmd@local.test>, relay=local, .*status=sent \(delivered to command: "),
   "|command: delivered to command")
ok(wait(lambda: os.path.exists(os.path.join(files, "cmd-uid"))), "the shell command ran")
is_(read(os.path.join(files, "cmd-uid")).strip().decode() if os.path.exists(os.path.join(files, "cmd-uid")) else None,
    str(PW["b"].pw_uid), "with the alias owner's uid")
tee = os.path.join(files, "tee-out")
ok(os.path.exists(tee) and read(tee).startswith(b"From s@example.org ") and b"Subject: kinds" in read(tee),
   "the command without shell syntax got the message with its From_ line on stdin")
ok(logged(r"to=<inc@local.test>, relay=local, .*status=sent"), ":include: delivered")
ok(os.path.exists(os.path.join(files, "inc-out")), ":include: its file entry was written")
ok(wait(lambda: any(b"Subject: kinds" in read(p) for p in maildir("a"))),
   ":include: its address entry was forwarded")

# owner- alias: the forwarded copy's sender is owner-list@myorigin
send(["list@local.test"], "owner")
ok(wait(lambda: any(b"Subject: owner" in read(p) for p in maildir("c"))
        and any(b"Subject: owner" in read(p) for p in maildir("a"))), "list reaches a and c")
got = [read(p) for p in maildir("a") if b"Subject: owner" in read(p)]
ok(got and got[0].startswith(b"Return-Path: <owner-list@local.test>"),
   "owner-list makes owner-list@local.test the sender of the list's copies")

# c's .forward with a command (and \c)
ok(logged(rf"to=<{C}@local.test>, relay=local, .*status=sent \(delivered to (command|maildir)"),
   ".forward's command ran for c (its delivery is logged once the command has ended)")
is_(read(os.path.join(PW["c"].pw_dir, "fwd-uid")).strip().decode()
    if os.path.exists(os.path.join(PW["c"].pw_dir, "fwd-uid")) else None,
    str(PW["c"].pw_uid), "as the recipient c (for good, in a child)")
is_(os.stat(os.path.join(PW["c"].pw_dir, "fwd-msg")).st_uid if os.path.exists(os.path.join(PW["c"].pw_dir, "fwd-msg")) else None,
    PW["c"].pw_uid, "its output file belongs to c")

# .forward with an extension
send([f"{B}+ext@local.test", f"{B}@local.test"], "extension")
ok(wait(lambda: os.path.exists(os.path.join(PW["b"].pw_dir, "ext-file"))),
   f".forward+ext is read for {B}+ext (forward_path with ${{extension}})")
ok(wait(lambda: len([p for p in maildir("b") if b"Subject: extension" in read(p)]) == 2),
   "\\user in it and the plain address both reach b's Maildir")
is_(os.stat(os.path.join(PW["b"].pw_dir, "ext-file")).st_uid if os.path.exists(os.path.join(PW["b"].pw_dir, "ext-file")) else None,
    PW["b"].pw_uid, "the .forward's file is written as b")

# loops: an alias loop and a Delivered-To loop
send(["loopa@local.test"], "aliasloop", sender="")
ok(logged(r"to=<loop[ab]@local.test>, relay=local, .*dsn=5\.4\.6, status=bounced \(mail forwarding loop for loop[ab]@local.test\)"),
   "an alias loop ends as 5.4.6 mail forwarding loop (Delivered-To)")
send([f"{A}@local.test"], "dtloop", extra_headers=f"Delivered-To: {A}@local.test\n", sender="")
ok(logged(rf"to=<{A}@local.test>, relay=local, .*dsn=5\.4\.6, status=bounced \(mail forwarding loop for {A}@local.test\)"),
   "a message that already has Delivered-To: the recipient bounces with 5.4.6")

# unknown user from the queue: 5.1.1 as Postfix's local says it
send([f"nosuch{tag}@local.test"], "unknown", sender="")
ok(logged(rf"to=<nosuch{tag}@local.test>, relay=local, .*dsn=5\.1\.1, status=bounced \(unknown user: \"nosuch{tag}\"\)"),
   "an unknown user bounces 5.1.1 unknown user")

# the runner is the service's child, not qmgr's
like(inst.log(), r"postern/spawn\[\d+\]: local: ready on .*/private/local", "the runner service of local is ready")
spawn_pid = open(os.path.join(D, "queue", "pid", "spawn.local.pid")).read().strip()
def proc_file(pid, name):
    """/proc/PID/NAME, "" when the process is gone (other sessions' come and go)."""
    try:
        return open(f"/proc/{pid}/{name}").read()
    except OSError:
        return ""


runners = [p for p in os.listdir("/proc") if p.isdigit()
           and proc_file(p, "comm").strip() == "postern-local"
           and proc_file(p, "stat").split(") ")[-1].split()[1:2] == [spawn_pid]]
ok(runners, "the postern-local runners qmgr used are the service's children (idle, waiting for the next request)")
if runners:
    uids = [l.split()[1:] for l in open(f"/proc/{runners[0]}/status") if l.startswith("Uid:")][0]
    is_(uids[1], "0", "and between deliveries the runner's effective uid is root's again")


# ---- from a shell: mbox, locking, mailbox_command -----------------------
def shell(opts, rcpts, msg, sender="s@example.org", env=None):
    argv = [LOCAL, "-c", D]
    for o in opts:
        argv += ["-o", o]
    return run(argv + ["-f", sender] + rcpts, input=msg, env=env)


spool = os.path.join(D, "spool")
os.makedirs(spool)
open_dir0 = os.path.join(D, "open0")   # mailbox_command's files, as the user
os.makedirs(open_dir0)
os.chmod(open_dir0, 0o1777)
r = shell([f"mail_spool_directory={spool}", "home_mailbox="], [A], (MSG % "spool").encode())
is_(r.returncode, 0, "mail_spool_directory: delivered") or diag(r.stderr)
box = os.path.join(spool, A)
is_(os.path.exists(box) and (os.stat(box).st_uid, os.stat(box).st_mode & 0o777), (PW["a"].pw_uid, 0o600),
    "the spool mbox is created for the user, mode 0600")
# the spool mbox is written as its owner, not as root: one the owner may
# not write in (mode 0400) stays as it was, and the mail waits
os.chmod(box, 0o400)
size = os.path.getsize(box)
r = shell([f"mail_spool_directory={spool}", "home_mailbox="], [A], (MSG % "spool-ro").encode())
like(r.stdout.decode(), rf"{A}: dsn=4\.2\.0, status=deferred \(delivery failed to mailbox .*: cannot open file: Permission denied\)",
     "the spool mbox is written with the user's ids: a file the user may not write defers")
is_(os.path.getsize(box), size, "and is left alone (root would have written it)")
ok(not os.path.exists(box + ".lock"), "the lock file (made as root) is gone")
os.chmod(box, 0o600)

# biff (yes by default, as Postfix): after an mbox delivery local(8) sends
# comsat "user@offset" and a NUL, offset where the new message starts, to
# 127.0.0.1 port 512 (biff/udp); biff = no sends nothing.  The test plays
# comsat; other tests' deliveries may reach it too, so only A's count.
comsat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    comsat.bind(("127.0.0.1", 512))
except OSError as e:
    ok(False, f"the test's comsat listens on 127.0.0.1:512 ({e}: another program holds the port)")
    comsat = None
if comsat:
    comsat.settimeout(15)
    r = shell([f"mail_spool_directory={spool}", "home_mailbox=", "biff=no"], [A], (MSG % "biff-no").encode())
    is_(r.returncode, 0, "biff = no: delivered") or diag(r.stderr)
    offset = os.path.getsize(box)
    r = shell([f"mail_spool_directory={spool}", "home_mailbox=", "biff=yes"], [A], (MSG % "biff").encode())
    is_(r.returncode, 0, "biff = yes: delivered") or diag(r.stderr)
    heard = b""
    try:
        while not heard.startswith(f"{A}@".encode()):
            heard = comsat.recvfrom(1024)[0]
    except socket.timeout:
        pass
    # the first notice for A is the second delivery's: none came for the first
    is_(heard, f"{A}@{offset}\0".encode(),
        "biff = yes: comsat hears user@offset of the new message, biff = no nothing")
    comsat.close()

# two concurrent deliveries of 15 messages each into one mbox
procs = []
for n in range(2):
    script = ("import subprocess,sys\n"
              "for i in range(15):\n"
              "    subprocess.run(sys.argv[1:], input=b'Subject: c%d\\n\\nFrom here\\nx\\n' % i, check=True,"
              " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")
    procs.append(subprocess.Popen([sys.executable, "-c", script, LOCAL, "-c", D, "-o", "home_mailbox=mbox",
                                   "-f", "s@example.org", A]))
codes = [p.wait(120) for p in procs]
is_(codes, [0, 0], "two concurrent delivery loops succeed")
mbox = read(os.path.join(PW["a"].pw_dir, "mbox"))
is_(len(re.findall(rb"^From s@example.org ", mbox, re.M)), 30, "30 From_ lines: no message lost or merged")
is_(len(re.findall(rb"^>From here$", mbox, re.M)), 30, "each body From_ line quoted once")
is_(len(re.findall(rb"^Return-Path: ", mbox, re.M)), 30, "each message whole")
is_(os.stat(os.path.join(PW["a"].pw_dir, "mbox")).st_uid, PW["a"].pw_uid, "the mbox belongs to the user")

# a mail client holding the mbox's lock: the delivery waits, then defers
import fcntl
mbox_path = os.path.join(PW["a"].pw_dir, "mbox")
size = os.path.getsize(mbox_path)
for style, how in (("fcntl", "fcntl"), ("flock", "flock"), ("dotlock", "dotlock")):
    holder = open(mbox_path, "r+b")
    if how == "fcntl":
        fcntl.lockf(holder, fcntl.LOCK_EX)
    elif how == "flock":
        fcntl.flock(holder, fcntl.LOCK_EX)
    else:
        write(mbox_path + ".lock", "")
    t0 = time.time()
    r = shell(["home_mailbox=mbox", f"mailbox_delivery_lock={style}", "deliver_lock_attempts=2",
               "deliver_lock_delay=1s"], [A], (MSG % "locked").encode())
    like(r.stdout.decode(), r"dsn=4\.2\.0, status=deferred \(.*(unable to lock for exclusive access|unable to create lock file)",
         f"{style}: a reader's lock defers the delivery (4.2.0)")
    ok(time.time() - t0 >= 1, f"{style}: after trying again deliver_lock_delay later")
    is_(os.path.getsize(mbox_path), size, f"{style}: the mbox is untouched")
    holder.close()
    if how == "dotlock":
        os.unlink(mbox_path + ".lock")
    r = shell(["home_mailbox=mbox", f"mailbox_delivery_lock={style}"], [A], (MSG % "unlocked").encode())
    is_(r.returncode, 0, f"{style}: once the reader lets go the delivery succeeds") or diag(r.stdout)
    size = os.path.getsize(mbox_path)

# mailbox_size_limit: the mbox is already larger than the limit
r = shell(["home_mailbox=mbox", "message_size_limit=1000", "mailbox_size_limit=2000"], [A], (MSG % "big").encode())
like(r.stdout.decode(), r"dsn=5\.2\.2, status=bounced", "mailbox_size_limit: a full mbox bounces 5.2.2")
is_(os.path.getsize(mbox_path), size, "and is left as it was")
r = shell(["message_size_limit=1000", "mailbox_size_limit=500"], [A], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=4\.3\.0, status=deferred \(mail system configuration error\)",
     "mailbox_size_limit below message_size_limit: every delivery defers, as Postfix refuses to run")

# mailbox_command with the real procmail and maildrop
for prog_name in ("procmail", "maildrop"):
    path = f"/usr/bin/{prog_name}"
    if not os.access(path, os.X_OK):
        ok(False, f"{prog_name} is installed (./deps)")
        continue
    if prog_name == "procmail":
        rc = os.path.join(PW["a"].pw_dir, ".procmailrc")
        write(rc, f"DEFAULT={PW['a'].pw_dir}/procmail-box/\nLOGFILE={PW['a'].pw_dir}/procmail.log\n")
        cmd = "/usr/bin/procmail -a \"$EXTENSION\""
        target = "procmail-box"
    else:
        rc = os.path.join(PW["a"].pw_dir, ".mailfilter")
        write(rc, f"DEFAULT=\"{PW['a'].pw_dir}/maildrop-box\"\n", mode=0o600)
        cmd = "/usr/bin/maildrop -d ${user}"
        target = "maildrop-box"
    os.chown(rc, PW["a"].pw_uid, PW["a"].pw_gid)
    if prog_name == "maildrop":
        os.makedirs(os.path.join(PW["a"].pw_dir, target, "new"))
        for sub in ("cur", "tmp"):
            os.makedirs(os.path.join(PW["a"].pw_dir, target, sub))
        subprocess.run(["chown", "-R", f"{A}:{A}", os.path.join(PW["a"].pw_dir, target)])
    r = shell([f"mailbox_command={cmd}"], [f"{A}+x"], (MSG % prog_name).encode())
    like(r.stdout.decode(), rf"dsn=2\.0\.0, status=sent \(delivered to command: ", f"{prog_name}: delivered")
    new = glob.glob(os.path.join(PW["a"].pw_dir, target, "new", "*"))
    ok(len(new) == 1 and b"Subject: " + prog_name.encode() in read(new[0]), f"{prog_name} wrote the message")
    ok(new and os.stat(new[0]).st_uid == PW["a"].pw_uid, f"{prog_name} ran as the recipient")

# mailbox_command_maps: a command per user name, before mailbox_command
cmd_map = os.path.join(D, "mailbox_commands")
open_map = os.path.join(D, "open-map")  # the mapped commands' files, as the user
os.makedirs(open_map)
os.chmod(open_map, 0o1777)
write(cmd_map, f"{A} /usr/bin/touch {open_map}/mapped-$user\n")
r = shell([f"mailbox_command_maps=texthash:{cmd_map}", f"mailbox_command=/usr/bin/touch {open_map}/global-$user"],
          [A], (MSG % "x").encode())
like(r.stdout.decode(), rf"dsn=2\.0\.0, status=sent \(delivered to command: /usr/bin/touch {re.escape(open_map)}/mapped-{A}\)",
     "mailbox_command_maps: the user's command from the table runs, not mailbox_command") or diag(r.stdout)
made = os.path.join(open_map, f"mapped-{A}")
ok(os.path.exists(made) and os.stat(made).st_uid == PW["a"].pw_uid
   and not os.path.exists(os.path.join(open_map, f"global-{A}")), "... as the user")
write(cmd_map, "someone-else /bin/false\n")
r = shell([f"mailbox_command_maps=texthash:{cmd_map}", f"mailbox_command=/usr/bin/touch {open_map}/global-$user"],
          [A], (MSG % "x").encode())
ok(os.path.exists(os.path.join(open_map, f"global-{A}")),
   "a user the table does not name: mailbox_command") or diag(r.stdout)
re_map = os.path.join(D, "mailbox_commands.pcre")
write(re_map, "/^(.*)$/ /usr/bin/touch /tmp/$1\n")
r = shell([f"mailbox_command_maps=pcre:{re_map}"], [A], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=4\.3\.0, status=deferred", "a pcre table that would put the address into the "
     "command is refused, as Postfix's: the mail waits") or diag(r.stdout)
like(r.stderr.decode(errors="replace"), r"mailbox_command_maps: .*\$1", "... and the log says why") \
    or diag(r.stderr)

# exit codes as sysexits say (a command of our own standing for a filter)
for code, dsn, word, text in ((75, "4.3.0", "deferred", "temporary failure"),
                              (67, "5.1.1", "bounced", "user unknown"),
                              (1, "5.3.0", "bounced", "Command died with status 1")):
    r = shell([f"mailbox_command=/bin/sh -c 'echo filter says no; exit {code}'"], [A], (MSG % "x").encode())
    like(r.stdout.decode(), rf"dsn={re.escape(dsn)}, status={word} \({re.escape(text)}.*filter says no",
         f"exit {code}: {dsn} {word}, with the command's output")
r = shell(["mailbox_command=/bin/sh -c 'echo 4.2.2 mailbox is full; exit 1'"], [A], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=4\.2\.2, status=deferred \(mailbox is full\)",
     "an X.Y.Z code at the start of the output decides, as in Postfix")
r = shell(["mailbox_command=/bin/sh -c 'head -c 5000000 /dev/zero | tr \\\\0 y; exit 1'"], [A], (MSG % "x").encode())
m = re.search(r"Command output: (y*)\)", r.stdout.decode())
ok(m and len(m.group(1)) == 500, "5 MB of output: read to its end, the first 500 bytes kept") or diag(r.stdout[:300])
r = shell(["mailbox_command=/bin/sleep 30", "command_time_limit=1s"], [A], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=5\.3\.0, status=bounced \(Command time limit exceeded: \"/bin/sleep 30\"\)\n", "command_time_limit kills a slow command (5.3.0, as Postfix)")

# command_expansion_filter: shell syntax an address puts into mailbox_command
# becomes '_' (the command then has none, and no shell runs it)
r = shell([f"mailbox_command=/usr/bin/touch {open_dir0}/ext-$extension"], [f"{A}+a;b$(c)`d`"],
          (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=2\.0\.0, status=sent \(delivered to command: ", "mailbox_command with a hostile extension runs")
ok(os.path.exists(os.path.join(open_dir0, "ext-a_b__c__d_")) and len(os.listdir(open_dir0)) == 1,
   "command_expansion_filter turned ; $ ( ) ` into '_': one file, ext-a_b__c__d_") or diag(os.listdir(open_dir0))

# an extension holding '/' is dropped (it could name a file elsewhere)
r = shell([], [f"{A}+x/../../y"], (MSG % "slash").encode())
like(r.stderr.decode(), rf"warning: {A}\+x/\.\./\.\./y@?[\w.]*: address with illegal extension: x/\.\./\.\./y",
     "an extension with '/' is logged as illegal")
like(r.stdout.decode(), r"dsn=2\.0\.0, status=sent \(delivered to maildir\)", "and the mail goes to the user's own mailbox")

# a bare | alias: nothing to run
r = shell([], ["barepipe"], (MSG % "x").encode())
like(r.stdout.decode(), r"barepipe: dsn=5\.3\.0, status=bounced \(empty command\)", "a bare | alias bounces 5.3.0")

# allow_mail_to_commands: a command from a .forward that is not allowed
r = shell(["allow_mail_to_commands=alias"], [C], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=5\.7\.1, status=bounced \(mail to command is restricted\)",
     "allow_mail_to_commands without forward refuses .forward commands (5.7.1)")

# an aliases table that root owns: its commands run as default_privs (nobody)
nobody = pwd.getpwnam("nobody")
open_dir = os.path.join(D, "open")
os.makedirs(open_dir)
os.chmod(open_dir, 0o1777)
root_aliases = os.path.join(D, "root-aliases")
write(root_aliases, f'rootcmd: "|id -u > {open_dir}/uid"\n')
r = run([prog("postern"), "alias", "-c", D, f"hash:{root_aliases}"])
is_(r.returncode, 0, "postern alias builds a root-owned table") or diag(r.stderr)
r = shell([f"alias_maps=hash:{root_aliases}"], ["rootcmd"], (MSG % "x").encode())
like(r.stdout.decode(), r"dsn=2\.0\.0, status=sent \(delivered to command: ", "a root-owned alias's command runs")
is_(read(os.path.join(open_dir, "uid")).strip().decode() if os.path.exists(os.path.join(open_dir, "uid")) else None,
    str(nobody.pw_uid), "as default_privs (nobody), never as root")

r = shell([f"mailbox_command=/bin/sh -c 'id -u > {open_dir}/root-uid'"], ["root"], (MSG % "x").encode())
like(r.stdout.decode(), r"root: dsn=2\.0\.0, status=sent \(delivered to command: ", "mailbox_command for root runs")
is_(read(os.path.join(open_dir, "root-uid")).strip().decode() if os.path.exists(os.path.join(open_dir, "root-uid")) else None,
    str(nobody.pw_uid), "as default_privs, as Postfix runs command delivery for root")

# expand_owner_alias = yes: the owner alias's address is the sender
r = shell(["expand_owner_alias=yes"], ["list@local.test"], (MSG % "expanded-owner").encode())
like(r.stdout.decode(), r"list@local.test: dsn=2\.0\.0, status=sent \(forwarded as ", "expand_owner_alias: forwarded")
ok(wait(lambda: any(b"Subject: expanded-owner" in read(p) for p in maildir("a"))), "the copy arrives")
got = [read(p) for p in maildir("a") if b"Subject: expanded-owner" in read(p)]
ok(got and got[0].startswith(f"Return-Path: <{B}@local.test>".encode()),
   "with owner-list's expansion as its sender")

# luser_relay
r = shell([f"luser_relay={A}+relay"], [f"nosuch{tag}"], (MSG % "relay").encode())
like(r.stdout.decode(), r"dsn=2\.0\.0, status=sent \(forwarded as ", "luser_relay forwards an unknown user")

own_instance(PW['a'], PW['b'], setpriv_as(PW['a']))

is_(inst.stop().returncode, 0, "postern stop")
done()
