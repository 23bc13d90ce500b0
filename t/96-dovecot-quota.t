#!/usr/bin/env python3
# Maildir++ quotas between postern-virtual and a real Dovecot (quota =
# maildir), as seed 000's Dovecot/Roundcube readers share the Maildirs:
# Dovecot reads back the usage postern wrote (doveadm quota get), and
# postern's next delivery honours what Dovecot did (an expunge, which
# appends a negative line; doveadm quota recalc, which remakes the file).
import glob, math, os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from dovecotlmtp import unprivileged

require(programs=("postern-virtual",), tools=("dovecot", "doveadm"))
VIRTUAL = prog("postern-virtual")
ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()
QUOTA = 20000

d = tempdir()
os.chmod(d, 0o755)
base = os.path.join(d, "mail")
os.makedirs(os.path.join(base, "example.com"))
if ROOT:
    for p in (base, os.path.join(base, "example.com")):
        os.chown(p, OWNER, GROUP)
write(os.path.join(d, "vmailbox"), "bob@example.com example.com/bob/\n")
write(os.path.join(d, "quota"), f"bob@example.com {QUOTA}\n")
write(os.path.join(d, "main.cf"),
      f"virtual_mailbox_base = {base}\n"
      f"virtual_mailbox_maps = texthash:{d}/vmailbox\n"
      f"virtual_uid_maps = static:{OWNER}\n"
      f"virtual_gid_maps = static:{GROUP}\n"
      "virtual_minimum_uid = 1\n"
      f"maillog_file = {d}/maillog\n"
      f"virtual_mailbox_limit_maps = texthash:{d}/quota\n"
      "virtual_mailbox_limit_override = yes\n"
      "virtual_maildir_extended = yes\n"
      "virtual_overquota_bounce = no\n"
      "virtual_maildir_limit_message = Sorry, the recipients mailbox is currently full.\n")
maildir = os.path.join(base, "example.com", "bob") + "/"

dove = os.path.join(d, "dovecot")
os.mkdir(dove)
os.chmod(dove, 0o755)
conf = os.path.join(dove, "dovecot.conf")
write(os.path.join(dove, "users"), "bob@example.com:{PLAIN}secret\n")
# no quota_rule: Dovecot takes the limit from the maildirsize header, the
# one postern wrote from virtual_mailbox_limit_maps
write(conf, f"""protocols =
base_dir = {dove}/run
state_dir = {dove}/state
log_path = {dove}/dovecot.log
ssl = no
mail_location = maildir:~/
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dove}/users
}}
userdb {{
  driver = static
  args = uid={OWNER} gid={GROUP} home={base}/%d/%n
}}
plugin {{
  quota = maildir:User quota
}}
{unprivileged()}""")
dproc = start(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
ok(wait_until(lambda: os.path.exists(os.path.join(dove, "run", "auth-userdb")), 20),
   "Dovecot started (its own configuration, in the test's directory)") or \
    diag(open(os.path.join(dove, "dovecot.log")).read() if os.path.exists(os.path.join(dove, "dovecot.log")) else "")


def deliver(size):
    head = len("Return-Path: <s@example.org>\nX-Original-To: bob@example.com\n"
                       "Delivered-To: bob@example.com\n")
    msg = b"Subject: q\n\n" + b"x" * (size - head - 13) + b"\n"
    return run([VIRTUAL, "-c", d, "-f", "s@example.org", "bob@example.com"], input=msg,
               env={"TMPDIR": d})


def doveadm(*args):
    return run(["doveadm", "-c", conf] + list(args))


def dovecot_quota():
    """doveadm quota get: {type: (value, limit)}; STORAGE in KiB."""
    r = doveadm("-f", "tab", "quota", "get", "-u", "bob@example.com")
    out = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 4:
            out[f[1]] = (f[2], f[3])
    return out


def file_sums():
    with open(maildir + "maildirsize") as f:
        lines = f.read().split("\n")
    b = c = 0
    for line in lines[1:]:
        if line:
            x, y = line.split()
            b, c = b + int(x), c + int(y)
    return lines[0], b, c


def real_usage():
    files = glob.glob(maildir + "new/*") + glob.glob(maildir + "cur/*")
    return sum(os.stat(p).st_size for p in files), len(files)


# ---- Dovecot reads what postern wrote ----
for i in range(5):
    deliver(1000 + 100 * i)
header, used, count = file_sums()
is_((header, used, count), (f"{QUOTA}S", 6000, 5), "postern: maildirsize holds 6000 bytes in 5 messages")
q = dovecot_quota()
is_(q.get("STORAGE"), (str(math.ceil(used / 1024)), str(math.ceil(QUOTA / 1024))),
    "doveadm quota get: Dovecot reads the same usage and the limit from postern's file") or diag(q)
is_(q.get("MESSAGE", ("?",))[0], "5", "doveadm quota get: 5 messages")

# ---- fill it; Dovecot's expunge frees room for postern ----
while deliver(1000).returncode == 0:
    pass
r = deliver(1000)
like(r.stdout.decode(), r"dsn=4\.2\.2, status=deferred \(maildir delivery failed: Sorry",
     "full: postern defers with the limit message")
is_(dovecot_quota().get("STORAGE", ("?", "?"))[1], str(math.ceil(QUOTA / 1024)), "Dovecot sees the same limit")
r = doveadm("expunge", "-u", "bob@example.com", "mailbox", "INBOX", "uid", "1:3")
is_(r.returncode, 0, "doveadm expunge of 3 messages") or diag(r.stderr)
with open(maildir + "maildirsize") as f:
    like(f.read(), r"\n-\d+ -3\n", "Dovecot appended its negative line to the file postern keeps")
r = deliver(1000)
is_(r.returncode, 0, "postern's next delivery honours Dovecot's expunge: it fits again")
is_(file_sums()[1:], real_usage(), "the file still adds up to the Maildir")

# ---- Dovecot's recalculation is honoured ----
with open(maildir + "maildirsize", "w") as f:
    f.write(f"{QUOTA}S\n{QUOTA} 1\n")     # a wrong, fresh file: postern would defer
like(deliver(1000).stdout.decode(), r"dsn=4\.2\.2", "a file that claims a full box: postern defers")
r = doveadm("quota", "recalc", "-u", "bob@example.com")
is_(r.returncode, 0, "doveadm quota recalc") or diag(r.stderr)
is_(file_sums()[1:], real_usage(), "Dovecot remade the file from the Maildir")
r = deliver(1000)
is_(r.returncode, 0, "postern's next delivery honours Dovecot's recalculation")
is_(file_sums()[1:], real_usage(), "and appends to Dovecot's file: still exact")
q = dovecot_quota()
is_(q.get("STORAGE", ("?",))[0], str(math.ceil(real_usage()[0] / 1024)),
    "Dovecot reads postern's latest line too")

stop(dproc)
ok(dproc.returncode is not None, "Dovecot stopped by its pid")
done()
