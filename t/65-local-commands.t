#!/usr/bin/env python3
# postern-local's commands, as Postfix's local(8) runs them: where
# (command_execution_directory with its $names and
# execution_directory_expansion_filter; a directory that cannot be entered
# defers the delivery, as the real Postfix 3.7 does: "temporary failure"
# and a warning "cannot change directory to ..." in the log), with what
# environment (export_environment, then local(8)'s SHELL HOME USER LOGNAME
# SENDER RECIPIENT LOCAL DOMAIN EXTENSION ORIGINAL_RECIPIENT and the
# CLIENT_ ones, nothing else) and under which shell (local_command_shell);
# owner_request_special (owner-NAME and NAME-request split at a '-'
# delimiter or not, and whether owner-NAME becomes the sender); and the
# envelope sender under reset_owner_alias.  What the real Postfix did is
# recorded in t/data/postfix-3.7-local.txt.
#
# As root: a temporary user (useradd) with a .forward, an alias table it
# owns, mailbox_command; each command is a recorder that writes its working
# directory, its argv and its environment as exec gave it
# (/proc/self/environ) into a file.  Deliveries from a shell
# (postern-local -c DIR), forwarded copies through the instance's queue.
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

# what the real Postfix did in these cases (t/data/postfix-3.7-local.txt)
RECORDED = {}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "postfix-3.7-local.txt")) as f:
    case = None
    for line in f:
        if line.startswith("== "):
            case = line[3:].strip()
        elif case and line.strip().split(":", 1)[0] in ("result", "return-path", "log"):
            key, value = line.strip().split(": ", 1)
            RECORDED.setdefault(case, {}).setdefault(key, []).append(value)

tap.require(["postern", "postern-local", "postern-qmgr", "postern-lookup", "sendmail"])
if os.geteuid() != 0:
    tap.skip_all("needs root: commands run as a temporary user (useradd)")
from users import create_users

tag = "%04d" % (os.getpid() % 10000)
PW, = create_users([f"lcu{tag}"])
U, HOME = PW.pw_name, PW.pw_dir
LOCAL = tap.prog("postern-local")

inst = new_instance()
D = inst.dir
OUT = os.path.join(D, "out")           # where the recorders write, anyone's
os.makedirs(OUT)
os.chmod(OUT, 0o1777)
BIN = os.path.join(D, "bin")
REC = tap.write(os.path.join(BIN, "rec"), f"""#!/usr/bin/python3
# rec NAME: where, how and with what environment this command ran
import json, os, sys
env = open("/proc/self/environ", "rb").read().decode().split("\\0")
json.dump({{"cwd": os.getcwd(), "argv": sys.argv, "uid": os.getuid(),
           "env": dict(e.split("=", 1) for e in env if e)}}, open("{OUT}/" + sys.argv[1], "w"))
sys.stdin.buffer.read()
""", 0o755)
# a shell for local_command_shell that records its argv, then is /bin/sh
RECSHELL = tap.write(os.path.join(BIN, "recshell"), f"""#!/usr/bin/python3
import json, os, sys
json.dump(sys.argv, open("{OUT}/shell-argv", "w"))
os.execv("/bin/sh", ["/bin/sh"] + sys.argv[1:])
""", 0o755)
os.chmod(BIN, 0o755)
os.chmod(D, 0o755)

aliases = tap.write(os.path.join(D, "aliases"), f"""cmdalias "|{REC} alias"
owner "|{REC} owner"
mlist "|{REC} mlist"
fwdlist {U}
owner-fwdlist {U}
list sub
owner-list boss
boss {OUT}/boss
sub {U}
""")
os.chown(aliases, PW.pw_uid, PW.pw_gid)      # its commands run as U
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
mydestination = local.test
myorigin = local.test
alias_maps = texthash:{aliases}
alias_database =
recipient_delimiter = +
home_mailbox = Maildir/
privileged_transports = local
""")
tap.is_(inst.start().returncode, 0, "the instance starts (the lookup service answers passwd)")


def local(rcpts, opts=(), env=None, sender="s@example.org"):
    argv = [LOCAL, "-c", D]
    for o in opts:
        argv += ["-o", o]
    r = tap.run(argv + ["-f", sender] + list(rcpts), input=b"Subject: cmd\n\nhello\n", env=env)
    return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def record(name):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return data


def cwd_of(name):
    data = record(name)
    return data and data["cwd"]


MBOX_CMD = f"mailbox_command={REC} mbox"

# ---- command_execution_directory -----------------------------------------
out, err = local([U], [MBOX_CMD])
tap.like(out, rf"{U}: dsn=2\.0\.0, status=sent \(delivered to command: ", "mailbox_command runs") or tap.diag(out + err)
tap.is_(cwd_of("mbox"), HOME, "without command_execution_directory: in the user's home")

dirs = os.path.join(OUT, "dirs")
for sub in (f"{U}/x-work", f"{U}/x-a_b_c", "cmdalias", f"home{HOME}"):
    os.makedirs(os.path.join(dirs, sub), exist_ok=True)
os.chmod(dirs, 0o755)
ced = "command_execution_directory=" + dirs + "/$user${extension?/x-$extension}"
out, err = local([f"{U}+work@local.test"], [MBOX_CMD, ced])
tap.like(out, r"dsn=2\.0\.0, status=sent \(delivered to command: ", "with command_execution_directory: delivered")
tap.is_(cwd_of("mbox"), f"{dirs}/{U}/x-work", "mailbox_command runs in it, $user and ${extension?...} expanded")
out, err = local([f"{U}+a;b|c@local.test"], [MBOX_CMD, ced])
tap.is_(cwd_of("mbox"), f"{dirs}/{U}/x-a_b_c",
        "characters of an expansion outside execution_directory_expansion_filter become '_'") or tap.diag(out + err)
out, err = local(["cmdalias@local.test"], [f"command_execution_directory={dirs}/$user${{home:}}"])
tap.like(out, r"cmdalias@local.test: dsn=2\.0\.0, status=sent \(delivered to command: ", "an alias's command runs")
tap.is_(cwd_of("alias"), f"{dirs}/cmdalias", "in the expanded directory ($user: the alias; $home: empty for an alias)")
tap.write(os.path.join(HOME, ".forward"), f'"|{REC} forward"\n')
os.chown(os.path.join(HOME, ".forward"), PW.pw_uid, PW.pw_gid)
out, err = local([U], [f"command_execution_directory={dirs}/home$home"])
tap.like(out, rf"{U}: dsn=2\.0\.0, status=sent \(delivered to command: ", "a .forward command runs")
tap.is_(cwd_of("forward"), f"{dirs}/home{HOME}", "in the expanded directory ($home: the user's)")
os.unlink(os.path.join(HOME, ".forward"))

missing = f"{dirs}/nosuch/{U}"
out, err = local([U], [MBOX_CMD, f"command_execution_directory={dirs}/nosuch/$user"])
pf = RECORDED["command_execution_directory that cannot be entered"]
tap.like(out, rf"{U}: {re.escape(pf['result'][0])}\n",
         "a directory that cannot be entered defers the delivery, in Postfix's words") or tap.diag(pf)
tap.like(err, rf"warning: cannot change directory to \"{re.escape(missing)}\" for uid={PW.pw_uid} "
         rf"gid={PW.pw_gid}: No such file or directory", "and the log says which directory, as whom, and why")
tap.is_(record("mbox"), None, "the command did not run")
# the expansions Postfix made for an alias's command (its log line names the
# directory): $home and $shell empty, $extension and $recipient_delimiter set
pf = RECORDED["command_execution_directory expansions for an alias's command"]["log"][0]
want = re.search(r'to "/tmp/ad/u(cmdtest)(-[^"]*)"', pf)
out, err = local(["cmdalias+x@local.test"], [f"command_execution_directory={dirs}/none/u$user-h${{home:none}}-s${{shell:none}}"
                                              "-e${extension:none}-d$recipient_delimiter"])
tap.like(err, r'cannot change directory to "' + re.escape(f"{dirs}/none/ucmdalias{want.group(2)}") + '"',
         f"an alias's command: $home, $shell, $extension, $recipient_delimiter expand as in Postfix ({want.group(2)})")
r = inst.postern("check")
tap.unlike(r.stdout + r.stderr, r"command_execution_directory", "postern check no longer calls it unimplemented")

# ---- export_environment --------------------------------------------------
env = {"TZ": "Europe/Paris", "LANG": "C.UTF-8", "MAIL_CONFIG": "/etc/x", "FOO": "bar", "SECRET": "no"}
LOCALS = {"PATH", "HOME", "SHELL", "USER", "LOGNAME", "SENDER", "RECIPIENT", "LOCAL", "DOMAIN",
          "EXTENSION", "ORIGINAL_RECIPIENT"}
out, err = local([f"{U}+ext@local.test"], [MBOX_CMD], env=env)
data = record("mbox") or {"env": {}}
tap.is_(sorted(data["env"]), sorted(LOCALS | {"TZ", "LANG", "MAIL_CONFIG"}),
        "the default export_environment: TZ MAIL_CONFIG LANG and local(8)'s variables, nothing else") \
    or tap.diag(out + err)
want = {"TZ": "Europe/Paris", "LANG": "C.UTF-8", "MAIL_CONFIG": "/etc/x", "PATH": "/usr/bin:/bin",
        "HOME": HOME, "SHELL": "/bin/sh", "USER": U, "LOGNAME": U, "SENDER": "s@example.org",
        "RECIPIENT": f"{U}+ext@local.test", "LOCAL": f"{U}+ext", "DOMAIN": "local.test",
        "EXTENSION": "ext", "ORIGINAL_RECIPIENT": f"{U}+ext@local.test"}
tap.is_(data["env"], want, "with local(8)'s values")
out, err = local([f"{U}@local.test"], [MBOX_CMD, "export_environment=FOO, FIXED=1 PATH=/nowhere"], env=env)
data = record("mbox") or {"env": {}}
tap.is_(sorted(data["env"]), sorted(LOCALS - {"EXTENSION"} | {"FOO", "FIXED"}),
        "export_environment = FOO FIXED=1: those two (no EXTENSION without one)") or tap.diag(out + err)
tap.is_((data["env"].get("FOO"), data["env"].get("FIXED"), data["env"].get("PATH")), ("bar", "1", "/usr/bin:/bin"),
        "a name keeps our value, name=value sets it, PATH stays local(8)'s")
out, err = local([f"{U}+x$(id)`y`@local.test"], [MBOX_CMD])
data = record("mbox") or {"env": {}}
tap.is_(data["env"].get("EXTENSION"), "x__id__y_",
        "values are censored with command_expansion_filter") or tap.diag(out + err)
out, err = local(["cmdalias@local.test"])
data = record("alias") or {"env": {}}
tap.is_((data["env"].get("USER"), data["env"].get("LOGNAME"), "HOME" in data["env"]), ("cmdalias", "cmdalias", False),
        "an alias's command: USER and LOGNAME are the recipient's name, no HOME (Postfix)") or tap.diag(out + err)

# ---- local_command_shell -------------------------------------------------
out, err = local([U], [MBOX_CMD])
data = record("mbox")
tap.is_(data and data["argv"], [REC, "mbox"], "without local_command_shell a plain command is run directly")
tap.ok(not os.path.exists(os.path.join(OUT, "shell-argv")), "(no shell ran)")
out, err = local([U], [MBOX_CMD, f"local_command_shell={RECSHELL} -c"])
tap.like(out, rf"{U}: dsn=2\.0\.0, status=sent \(delivered to command: ", "with local_command_shell: delivered")
shell_argv = None
if os.path.exists(os.path.join(OUT, "shell-argv")):
    with open(os.path.join(OUT, "shell-argv")) as f:
        shell_argv = json.load(f)
tap.is_(shell_argv, [RECSHELL, "-c", f"{REC} mbox"], "even a plain command is given to the shell: SHELL -c COMMAND")
data = record("mbox")
tap.ok(data and data["argv"] == [REC, "mbox"] and data["uid"] == PW.pw_uid,
       "and the shell ran it, as the user")
out, err = local([U], [f"mailbox_command={REC} mbox; exit 3", "local_command_shell=/bin/sh -c"])
tap.like(out, rf"{U}: dsn=5\.3\.0, status=bounced \(Command died with status 3: ",
         "local_command_shell = /bin/sh -c: shell syntax works, its exit status counts")

# ---- owner_request_special -----------------------------------------------
# recipient_delimiter = -: owner-x and list-request are whole local parts
# (no alias, no user: unknown) unless owner_request_special = no splits them
# (then the aliases "owner" and "mlist" get them, with the extension; an
# alias of the whole local part would win either way)
out, err = local(["owner-x@local.test", "mlist-request@local.test"], ["recipient_delimiter=-"])
tap.like(out, r"owner-x@local.test: dsn=5\.1\.1, status=bounced \(unknown user: \"owner-x\"\)",
         "owner_request_special = yes: owner-x is not split at the '-' delimiter")
tap.like(out, r"mlist-request@local.test: dsn=5\.1\.1, status=bounced \(unknown user: \"mlist-request\"\)",
         "nor NAME-request")
out, err = local(["owner-x@local.test", "mlist-request@local.test"],
                 ["recipient_delimiter=-", "owner_request_special=no"])
tap.like(out, r"owner-x@local.test: dsn=2\.0\.0, status=sent", "owner_request_special = no: owner-x is split")
data = record("owner")
tap.is_(data and (data["env"].get("USER"), data["env"].get("EXTENSION")), ("owner", "x"),
        "... to the alias owner with extension x")
tap.like(out, r"mlist-request@local.test: dsn=2\.0\.0, status=sent", "NAME-request too")
data = record("mlist")
tap.is_(data and data["env"].get("EXTENSION"), "request", "... to the alias mlist with extension request")

# owner-NAME as the sender of the forwarded copy: only with
# owner_request_special = yes (Postfix looks owner- aliases up only then)
NEW = os.path.join(HOME, "Maildir", "new")
seen = set(os.listdir(NEW)) if os.path.isdir(NEW) else set()


def forwarded_copy(rcpt, opts, label):
    """Deliver to an alias that forwards to U; the Return-Path: line of the
    copy U's Maildir gets through the queue ("" when none comes)."""
    out, err = local([rcpt], opts)
    tap.like(out, rf"{re.escape(rcpt)}: dsn=2\.0\.0, status=sent \(forwarded as ", f"{label}: forwarded") \
        or tap.diag(out + err)

    def arrived():
        return sorted(p for p in (os.listdir(NEW) if os.path.isdir(NEW) else []) if p not in seen)
    tap.ok(tap.wait_until(arrived), f"{label}: the copy reaches the user's Maildir")
    got = arrived()
    seen.update(got)
    text = open(os.path.join(NEW, got[0]), "rb").read().decode(errors="replace") if got else ""
    return text.split("\n", 1)[0] if text.startswith("Return-Path:") else ""


for special, sender in (("yes", "owner-fwdlist@local.test"), ("no", "s@example.org")):
    label = f"owner_request_special = {special}"
    tap.is_(forwarded_copy("fwdlist@local.test", [f"owner_request_special={special}"], label),
            f"Return-Path: <{sender}>", f"{label}: the copy's envelope sender is {sender}")

# ---- reset_owner_alias ---------------------------------------------------
# list has an owner- alias, its child alias sub has none.  Postfix keeps
# owner-list as the envelope sender of what sub's members get in both
# settings (reset_owner_alias = yes resets only its choice of a new queue
# file for them); postern always writes an alias's addresses to a new
# queue file, so the sender is the same either way as well.
for reset in ("no", "yes"):
    pf = RECORDED[f"reset_owner_alias = {reset}"]["return-path"][0]
    label = f"reset_owner_alias = {reset}"
    tap.is_(forwarded_copy("list@local.test", [f"reset_owner_alias={reset}"], label),
            f"Return-Path: {pf}", f"{label}: sub's member gets it from {pf}, as from Postfix")

tap.done()
