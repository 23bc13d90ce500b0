#!/usr/bin/env python3
# postern-pipe: Postfix's pipe(8) transports of master.cf, through the real
# chain (sendmail into a started instance, transport_maps, qmgr, the runner
# service postern-spawn for privileged_transports) with the real maildrop
# and procmail of Debian and small commands of the test's own.
#
# Seed 004's maildrop line (flags=DRhu user=... argv=/usr/bin/maildrop -d
# ${user}) delivers into a temporary user's Maildir as that user; procmail
# gets ${extension}; a recording command shows that argv is built without
# a shell (quotes, $(...), ';' in an address reach it literally) and that
# it runs as user= with a minimal environment; sysexits from a command
# (75 defers, 67 bounces 5.1.1, 1 bounces with the command's output in the
# notice); a time limit kills the command and its children; size=; the
# flags F R O D . > and eol=; D's loop check; a pipe transport whose
# user= qmgr cannot become without the runner service waits with the
# reason.
import atexit, glob, os, pwd, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import instance as inst_mod
from users import create_users

require(programs=("postern-pipe", "postern-spawn", "postern-lookup", "postern-qmgr", "sendmail",
                  "postern-bounce", "postern-virtual"),
        tools=("procmail", "maildrop", "useradd", "userdel"))
if os.geteuid() != 0:
    skip_all("needs root: the commands run as a temporary user (user=)")
wait = wait_until

tag = "%04d" % (os.getpid() % 10000)
USER = f"ppu{tag}"
PW, = create_users([USER])
HOME = PW.pw_dir

inst = inst_mod.Instance()
is_(inst.init.returncode, 0, "postern init") or diag(inst.init.stderr)
D = inst.dir
bin_dir = os.path.join(D, "cmd")
out_dir = os.path.join(D, "out")
os.makedirs(bin_dir)
os.makedirs(out_dir)
os.chmod(os.path.dirname(D), 0o755)
os.chmod(D, 0o755)
os.chown(out_dir, PW.pw_uid, PW.pw_gid)

# record: each argument on a line of out/args.QUEUEID, and who ran it
write(os.path.join(bin_dir, "record"), f"""#!/bin/sh
id=$1; shift
for a in "$@"; do printf '%s\\n' "$a"; done > {out_dir}/args.$id
id -u > {out_dir}/uid.$id
env > {out_dir}/env.$id
pwd > {out_dir}/pwd.$id
cat > {out_dir}/msg.$id
""", 0o755)
# exitwith: exit with the code it is given, saying something first
write(os.path.join(bin_dir, "exitwith"), """#!/bin/sh
cat > /dev/null
echo "the command says no ($1)"
exit "$1"
""", 0o755)
# sleeper: leaves a child behind and sleeps past any time limit
write(os.path.join(bin_dir, "sleeper"), f"""#!/bin/sh
sleep 300 &
echo $! > {out_dir}/sleeper-child
echo $$ > {out_dir}/sleeper-pid
exec sleep 300
""", 0o755)
# hang: a shell that waits for a child of its own, for the runner-killed
# check (sh -c 'sleep 300 & wait')
write(os.path.join(bin_dir, "hang"), f"""#!/bin/sh
sleep 300 &
echo $! > {out_dir}/hang-child
echo $$ > {out_dir}/hang-pid
wait
""", 0o755)
# serial: notes when another run of it is under way (maxproc 1 forbids it)
write(os.path.join(bin_dir, "serial"), f"""#!/bin/sh
cat > /dev/null
mkdir {out_dir}/serial-running 2>/dev/null || echo overlap >> {out_dir}/serial-log
sleep 1
echo "$1" >> {out_dir}/serial-log
rmdir {out_dir}/serial-running
""", 0o755)
# maildrop's filter for the user, and procmail's rc file
write(os.path.join(HOME, ".mailfilter"), 'to "$HOME/Maildir/"\n', 0o600)
os.chown(os.path.join(HOME, ".mailfilter"), PW.pw_uid, PW.pw_gid)
subprocess.run(["install", "-d", "-o", USER, "-g", USER, "-m", "700",
                os.path.join(HOME, "Maildir"), *(os.path.join(HOME, "Maildir", s) for s in ("new", "cur", "tmp"))])
procmailrc = os.path.join(D, "procmailrc")
write(procmailrc, f"""EXT=$1
:0
{out_dir}/procmail-$EXT
""")

with open(os.path.join(D, "master.cf"), "a") as f:
    f.write(f"""
maildrop  unix  -       n       n       -       -       pipe
  flags=DRhu user={USER} argv=/usr/bin/maildrop -d ${{user}}
procmail  unix  -       n       n       -       -       pipe
  flags=Fhu user={USER} argv=/usr/bin/procmail -t -m {procmailrc} ${{extension}}
record    unix  -       n       n       -       -       pipe
  flags=q user={USER}:{USER} directory={out_dir} argv={bin_dir}/record ${{queue_id}}
  ${{sender}} ${{recipient}} ${{original_recipient}} ${{user}} ${{extension}} ${{mailbox}}
  ${{domain}} ${{nexthop}} ${{size}} lit$$eral pre-${{user}}-post
exitwith  unix  -       n       n       -       -       pipe
  user={USER} argv={bin_dir}/exitwith ${{extension}}
slow      unix  -       n       n       -       -       pipe
  user={USER} argv={bin_dir}/sleeper
small     unix  -       n       n       -       -       pipe
  user={USER} size=200 argv={bin_dir}/record ${{queue_id}}
flags     unix  -       n       n       -       -       pipe
  flags=DFORX.> eol=\\r\\n user={USER} argv=/usr/bin/tee {out_dir}/flags-out
single    unix  -       n       n       -       1       pipe
  user={USER} argv={bin_dir}/serial ${{recipient}}
nopriv    unix  -       n       n       -       -       pipe
  user={USER} argv={bin_dir}/record ${{queue_id}}
hang      unix  -       n       n       -       -       pipe
  user={USER} argv={bin_dir}/hang
owner     unix  -       n       n       -       -       pipe
  user={inst_mod.ROOT_USERS["mail_owner"]} argv={bin_dir}/record ${{queue_id}}
""")
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
transport_maps = inline:{{ {{maildrop.test = maildrop}}, {{procmail.test = procmail}},
  {{record.test = record}}, {{exit.test = exitwith}}, {{slow.test = slow}},
  {{small.test = small}}, {{flags.test = flags}}, {{nopriv.test = nopriv}},
  {{single.test = single}}, {{owner.test = owner}}, {{hang.test = hang}} }}
privileged_transports = maildrop, procmail, record, exitwith, slow, small, flags, single, owner, hang
recipient_delimiter = +
proxy_read_maps = $local_recipient_maps proxy:unix:group.byname
slow_time_limit = 2s
flags_destination_recipient_limit = 1
maildrop_destination_recipient_limit = 1
""")
r = inst.start()
is_(r.returncode, 0, "postern start (runner services for the pipe transports)") or diag(r.stderr)
ok(os.path.exists(os.path.join(D, "queue", "private", "maildrop")),
   "the runner service of maildrop listens on private/maildrop")

MSG = "From: s@example.org\nSubject: %s\n\nFrom the start of a body line\n.a dot line\nbye\n"


def send(rcpts, subject, sender="s@localhost", body=None):
    r = inst.sendmail(["-f", sender] + rcpts, (body or (MSG % subject)).encode())
    is_(r.returncode, 0, f"sendmail {subject}") or diag(r.stderr)


def logged(pattern, timeout=30):
    return wait(lambda: re.search(pattern, inst.log()) is not None, timeout)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def notices(name="s"):
    return [m.decode(errors="replace") for m in inst.delivered(name)]


# ---- maildrop (seed 004's line) and procmail ----------------------------
send([f"{USER.upper()}@MAILDROP.test"], "maildrop")
ok(logged(rf"to=<{USER.upper()}@MAILDROP.test>, relay=maildrop, .*dsn=2\.0\.0, status=sent "
          r"\(delivered via maildrop service\)"), "maildrop: delivered via maildrop service") \
    or diag(inst.log()[-3000:])
got = glob.glob(os.path.join(HOME, "Maildir", "new", "*"))
is_(len(got), 1, "maildrop -d ${user} (u flag: folded) wrote into the user's Maildir")
if got:
    m = read(got[0])
    is_(os.stat(got[0]).st_uid, PW.pw_uid, "as the user= of the transport")
    ok(m.startswith(f"Delivered-To: {USER.lower()}@maildrop.test\n".encode())
       or m.startswith(b"Return-Path: <s@localhost>\n"), "with the D and R lines first")
    ok(b"Return-Path: <s@localhost>\n" in m and f"Delivered-To: {USER.lower()}@maildrop.test\n".encode() in m,
       "Return-Path (R) and Delivered-To (D, folded by h and u) are in the message")

send([f"{USER}+box1@procmail.test"], "procmail")
ok(logged(rf"to=<{USER}\+box1@procmail.test>, relay=procmail, .*status=sent \(delivered via procmail service\)"),
   "procmail: delivered")
box = os.path.join(out_dir, "procmail-box1")
ok(wait(lambda: os.path.exists(box)), "procmail got ${extension} as its argument and wrote that mbox")
if os.path.exists(box):
    ok(read(box).startswith(b"From s@localhost "), "the F flag's From_ line comes first")

# ---- argv without a shell, hostile addresses, user=, environment --------
hostile = "x'y\"z$(touch PWNED);w`id`"
send([f"{hostile}@record.test", "Plain+Ext@Record.TEST"], "record", sender="o'neil@localhost")
ok(logged(r"relay=record, .*status=sent \(delivered via record service\)"), "record: delivered") \
    or diag(inst.log()[-3000:])
args_files = glob.glob(os.path.join(out_dir, "args.*"))
is_(len(args_files), 1, "one run of the command for both recipients (one request)")
if args_files:
    qid = args_files[0].rsplit(".", 1)[1]
    args = read(args_files[0]).decode().split("\n")[:-1]
    want = ["o'neil@localhost",
            f'"x\'y\\"z$(touch PWNED);w`id`"@record.test', "Plain+Ext@Record.TEST",
            f'"x\'y\\"z$(touch PWNED);w`id`"@record.test', "Plain+Ext@Record.TEST",
            "x'y\"z$(touch PWNED);w`id`", "Plain",
            "", "Ext",
            hostile, "Plain+Ext",
            "record.test", "Record.TEST",
            "record.test"]
    is_(args[:len(want)], want, "each recipient macro gives one argument per recipient; q quotes the "
        "local part of ${recipient} and ${original_recipient}, not of ${user}; quotes and $() arrive as written")
    size = os.path.getsize(os.path.join(out_dir, "msg." + qid))
    ok(len(args) >= len(want) + 3 and args[len(want)].isdigit(), "${size} is a number")
    is_(args[len(want) + 1:], ["lit$eral", f"pre-{hostile}-post", "pre-Plain-post"],
        "$$ is a '$'; text around a recipient macro is kept for each recipient")
    ok(not glob.glob(os.path.join("/", "**", "PWNED"), recursive=False)
       and not os.path.exists(os.path.join(out_dir, "PWNED")), "no shell ran $(touch PWNED)")
    is_(read(os.path.join(out_dir, "uid." + qid)).decode().strip(), str(PW.pw_uid), "the command runs as user=")
    is_(read(os.path.join(out_dir, "pwd." + qid)).decode().strip(), out_dir, "in directory=")
    env = read(os.path.join(out_dir, "env." + qid)).decode()
    unlike(env, r"POSTERN|LISTEN_|NOTIFY_SOCKET|MAIL_CONFIG_DIR", "with a minimal environment")
    like(env, r"(?m)^PATH=/usr/bin:/bin$", "PATH is set")

# ---- an address beginning with '-' would be an option of the command ----
send(["minus@record.test"], "minus", sender="-oevil@localhost")
ok(logged(r"to=<minus@record.test>, relay=record, .*dsn=5\.1\.3, status=bounced \(bad address syntax: "
          r"an address may not begin with '-'"), "a sender beginning with '-' never reaches argv (allow_min_user)")

# ---- sysexits: 75 defers, 67 bounces 5.1.1, 1 bounces with the output ----
send(["c+75@exit.test"], "tempfail")
ok(logged(r"to=<c\+75@exit.test>, relay=exitwith, .*dsn=4\.3\.0, status=deferred \(temporary failure\. "
          r"Command output: the command says no \(75\)\)"), "EX_TEMPFAIL (75) defers 4.3.0 with the output") \
    or diag(inst.log()[-2000:])
send(["c+67@exit.test"], "nouser")
ok(logged(r"to=<c\+67@exit.test>, relay=exitwith, .*dsn=5\.1\.1, status=bounced \(user unknown\. "
          r"Command output: the command says no \(67\)\)"), "EX_NOUSER (67) bounces 5.1.1")
send(["c+1@exit.test"], "status1")
ok(logged(r"to=<c\+1@exit.test>, relay=exitwith, .*dsn=5\.3\.0, status=bounced \(Command died with status 1: "
          rf"\"{re.escape(bin_dir)}/exitwith\"\. Command output: the command says no \(1\)\)"),
   "another status bounces 5.3.0 naming the command")
ok(wait(lambda: any("<c+1@exit.test>: Command died with status 1:" in " ".join(n.split())
                   and "Command output: the command says no (1)" in " ".join(n.split()) for n in notices())),
   "the bounce notice to the sender carries the command's output") or diag(repr(notices())[:3000])

# ---- a time limit that kills, size= --------------------------------------
start_time = time.time()
send(["z@slow.test"], "slow")
ok(logged(r"to=<z@slow.test>, relay=slow, .*dsn=5\.3\.0, status=bounced \(Command time limit exceeded: "
          rf"\"{re.escape(bin_dir)}/sleeper\"\)", 40), "slow_time_limit = 2s: the command is killed and the mail bounces")
ok(time.time() - start_time < 25, "well before qmgr's own limit")
for f in ("sleeper-pid", "sleeper-child"):
    p = os.path.join(out_dir, f)
    pid = int(read(p)) if os.path.exists(p) else 0
    ok(pid and wait(lambda: not os.path.exists(f"/proc/{pid}"), 10),
       f"{f}: killed with the command's process group")

# a runner killed outright (SIGKILL, as qmgr's backstop does) takes its
# command with it, and the command's own children too
send(["h@hang.test"], "hang")
hang_file = os.path.join(out_dir, "hang-pid")
ok(wait(lambda: os.path.exists(hang_file) and read(hang_file).strip() != b"", 30), "the hanging command runs")
hang_pid = int(read(hang_file)) if os.path.exists(hang_file) else 0
child_file = os.path.join(out_dir, "hang-child")
hang_child = int(read(child_file)) if os.path.exists(child_file) else 0


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def kill_left(pid):
    """At exit: the child the command started, if it outlived the runner
    (we started it), by its pid while it is still that sleep."""
    try:
        if open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x00300\x00":
            os.kill(pid, 9)
    except OSError:
        pass


runner_pid = 0
if hang_pid and hang_child:
    atexit.register(kill_left, hang_child)
    # the runner: the topmost postern-pipe above the command (the keeper
    # between them is a postern-pipe too)
    pid = parent_of(hang_pid)
    while comm(pid) == "postern-pipe":
        runner_pid, pid = pid, parent_of(pid)
    is_(comm(runner_pid) if runner_pid else "", "postern-pipe", "the command runs under the postern-pipe runner")
    ok(os.path.exists(f"/proc/{hang_child}") and comm(hang_child) == "sleep", "and its own child runs")
    os.kill(runner_pid, 9)
ok(hang_pid and wait(lambda: not os.path.exists(f"/proc/{hang_pid}"), 10),
   "SIGKILL of postern-pipe: the command dies too")
ok(hang_child and wait(lambda: not os.path.exists(f"/proc/{hang_child}")
                       or open(f"/proc/{hang_child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 10),
   "... and so does the child the command started (sleep 300 &): its whole process group goes")

send(["big@small.test"], "small", body=MSG % "small" + "x" * 300 + "\n")
ok(logged(r"to=<big@small.test>, relay=small, .*dsn=5\.2\.3, status=bounced \(message too large\)"),
   "size=200: a larger message bounces 5.2.3")

# ---- flags D F O R . > and eol=; D's loop check ---------------------------
send(["F@flags.test"], "flags")
ok(logged(r"to=<F@flags.test>, relay=flags, .*status=sent"), "flags: delivered")
fo = os.path.join(out_dir, "flags-out")
if os.path.exists(fo):
    m = read(fo)
    ok(re.match(rb"From s@localhost  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n"
                rb"Return-Path: <s@localhost>\r\nX-Original-To: F@flags.test\r\nDelivered-To: f@flags.test\r\n", m),
       "F, R, O and D lines first, in Postfix's order, ended by eol=\\r\\n") or diag(m[:300])
    ok(b"\r\n>From the start of a body line\r\n" in m, "> quotes a From_ line")
    ok(b"\r\n..a dot line\r\n" in m, ". doubles a leading dot")
    ok(b"\n\n" not in m.replace(b"\r\n", b""), "every line ends with eol=")
else:
    ok(False, "flags-out was written")
send(["g@flags.test"], "loop", body="Delivered-To: g@flags.test\n" + MSG % "loop")
ok(logged(r"to=<g@flags.test>, relay=flags, .*dsn=5\.4\.6, status=bounced \(mail forwarding loop for g@flags.test\)"),
   "D: a message that has the recipient's Delivered-To bounces 5.4.6")

# ---- maxproc 1: one command at a time --------------------------------------
for n in range(3):
    send([f"m{n}@single.test"], f"single{n}")
ok(logged(r"to=<m2@single.test>, relay=single, .*status=sent") and logged(r"to=<m0@single.test>, relay=single, .*status=sent")
   and logged(r"to=<m1@single.test>, relay=single, .*status=sent"), "three messages to a maxproc 1 transport are delivered")
serial = read(os.path.join(out_dir, "serial-log")).decode().split() if os.path.exists(os.path.join(out_dir, "serial-log")) else []
is_(sorted(serial), ["m0@single.test", "m1@single.test", "m2@single.test"], "one run each, never two at once (maxproc)")

# ---- a pipe transport qmgr reaches without the runner service -----------
send(["n@nopriv.test"], "nopriv")
ok(logged(r"to=<n@nopriv.test>, relay=nopriv, .*dsn=4\.3\.5, status=deferred \(mail system configuration error\)"),
   "not in privileged_transports: deferred (qmgr, mail_owner, cannot become user=)")
like(inst.log(), rf"cannot run the command as user {USER}: this postern-pipe runs as uid \d+, not as root",
     "and the log says why")

# ---- success notices: "relayed" without the X flag, "delivered" with it ----
before = len(notices("notify"))
inst.sendmail(["-f", "notify@localhost", "-N", "success", "ok@record.test"], (MSG % "notify-relayed").encode())
inst.sendmail(["-f", "notify@localhost", "-N", "success", "ok@flags.test"], (MSG % "notify-final").encode())
ok(wait(lambda: len(notices("notify")) >= before + 2, 30), "two success notices (NOTIFY=SUCCESS)")
reports = {}
for n in notices("notify")[before:]:
    m = re.search(r"Final-Recipient: rfc822; (\S+)\s+Action: (\w+)", n)
    if m:
        reports[m.group(1)] = m.group(2)
is_(reports.get("ok@record.test"), "relayed", "a pipe transport without X: Action: relayed (pipe(8))")
is_(reports.get("ok@flags.test"), "delivered", "with X (final delivery): Action: delivered")

# ---- user= may not be the mail system owner (Postfix's pipe(8) refuses) --
send(["o@owner.test"], "owner")
ok(logged(r"to=<o@owner.test>, relay=owner, .*dsn=4\.3\.5, status=deferred \(mail system configuration error\)"),
   "a pipe transport whose user= is mail_owner defers")
like(inst.log(), rf"service owner: user= attribute specifies mail system owner {inst_mod.ROOT_USERS['mail_owner']}",
     "and the log says why")

inst.stop()
done()
