#!/usr/bin/env python3
# Logs that Postfix's tools read: the day of traffic of t/data/logs/traffic.py
# (received over SMTP and through sendmail, delivered, deferred, bounced,
# rejected at RCPT by access maps, as an unknown user and as relaying, a
# lost connection and improper pipelining) through a postern instance with
# syslog_name = postfix, then Debian's pflogsumm and fail2ban-regex with the
# stock postfix filters on its log, compared with what they report for a
# real Postfix on the same traffic (golden data made by
# t/data/logs/make-postfix-log; see its header).
import os
import re
import shutil
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data", "logs"))
from tap import *
from instance import Instance, missing_programs
import logtools
import traffic

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "logs")

missing = missing_programs() + [p for p in (logtools.PFLOGSUMM, logtools.FAIL2BAN_REGEX)
                                if not os.access(p, os.X_OK)]
if missing:
    ok(False, "missing programs (./deps installs pflogsumm and fail2ban): " + ", ".join(missing))
    done()


def start_instance(extra):
    """A postern instance set up as traffic.py says, with extra main.cf lines."""
    inst = Instance("--domain", traffic.DOMAIN)
    maps = os.path.join(inst.dir, "maps")
    for name, text in traffic.access_maps().items():
        write(os.path.join(maps, name), text)
    write(os.path.join(maps, "vmailbox"),
          "".join(f"{box}@{traffic.DOMAIN} {box}/\n" for box in traffic.MAILBOXES))
    # as the golden Postfix log was made (make-postfix-log): no client names
    for line in traffic.config_lines(f"texthash:{maps}/vmailbox", maps) + extra \
            + ["smtpd_peername_lookup = no"]:
        r = inst.postern("conf", "-e", line)
        if r.returncode:
            diag(f"postern conf -e {line}: {r.stderr}")
    os.makedirs(os.path.join(inst.dir, "mail"), exist_ok=True)
    write(os.path.join(inst.dir, "mail", "blocked"), "not a Maildir\n")
    r = inst.start()
    is_(r.returncode, 0, "postern start exits 0")
    if r.returncode:
        diag(r.stderr)
    return inst


def smtp_port(inst):
    for line in open(os.path.join(inst.dir, "master.cf")):
        if not line.startswith("#") and " inet " in line:
            return int(line.split()[0].rsplit(":", 1)[1])
    return None


def day_of_traffic(extra):
    """Send the traffic through a fresh instance; returns its log file."""
    inst = start_instance(extra)
    traffic.run(smtp_port(inst), [prog("sendmail")], env=dict(os.environ, **inst.env), log=diag)
    logfile = os.path.join(inst.dir, "maillog")
    text = traffic.wait_log(logfile)
    delivered, deferred, bounced = traffic.expected()
    is_((text.count("status=sent"), text.count("status=deferred"), text.count("status=bounced")),
        (delivered, deferred, bounced), "every outcome is in the log")
    inst.stop()
    keep = os.environ.get("POSTERN_T_KEEP_LOG")    # for a person comparing by eye
    if keep:
        shutil.copy(logfile, f"{keep}.{len(extra)}")
    return logfile


# Sessions Postfix counts as received that postern does not: Postfix gives a
# transaction its queue id (and logs "ID: client=") at the first accepted
# RCPT, postern at DATA, so a client lost after RCPT is "received" only there.
LOST_AFTER_RCPT = sum(1 for ev in traffic.plan_traffic() if ev[0] == "lost")
# Bytes: each MTA adds headers of its own (Received: with Postfix's queue id
# and name, pickup's Received: for local mail, and Postfix adds Date: for
# local clients where postern's rewrite does not yet), so sizes agree within
# a few per cent, not to the byte.
BYTES_SLACK = 0.05


def close(got, want, slack=BYTES_SLACK):
    return isinstance(got, int) and isinstance(want, int) and abs(got - want) <= slack * want


golden = logtools.pflogsumm_figures(open(os.path.join(GOLDEN, "postfix.pflogsumm")).read())
golden_f2b = {}
for line in open(os.path.join(GOLDEN, "postfix.fail2ban")):
    jail, lines, matched = line.split()
    golden_f2b[jail] = (int(lines), int(matched))

# The golden figures are what the installed tools say about Postfix's log.
again = logtools.pflogsumm_figures(logtools.pflogsumm(os.path.join(GOLDEN, "postfix.log")))
is_(again, golden, "pflogsumm on the golden Postfix log gives the golden figures")
received = golden["totals"]["received"]
ok(received >= 20 and golden["totals"]["rejected"] >= 5 and golden["totals"]["bounced"] >= 2
   and golden["totals"]["deferred"] >= 2, f"the golden day has traffic of every kind ({golden['totals']})")

# 1. syslog_name = postfix: the tools as Debian ships them
logfile = day_of_traffic(["syslog_name = postfix", "myhostname = mta.bench.test"])
text = open(logfile).read()
like(text, r" postfix/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.2\]\n", "client= as postfix/smtpd")
like(text, r" postfix/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=<dave@partner\.test>\n", "uid= as postfix/pickup")
like(text, r" postfix/cleanup\[\d+\]: [0-9A-F]+: message-id=<traffic\.1@bench\.test>\n", "message-id= as postfix/cleanup")
qmgr_pids = set(re.findall(r" postfix/qmgr\[(\d+)\]: ", text))
agent_pids = set(re.findall(r" postfix/virtual\[(\d+)\]: [0-9A-F]+: to=<", text))
ok(agent_pids and not agent_pids & qmgr_pids, "to= lines as postfix/virtual with the runner's pid, not qmgr's")
first = {}
for kind, qid in re.findall(r" postfix/(smtpd|pickup|qmgr)\[\d+\]: ([0-9A-F]+): (?:client|uid|from)=", text):
    first.setdefault(qid, kind)
notices = set(re.findall(r" postfix/bounce\[\d+\]: [0-9A-F]+: sender \S+ notification: ([0-9A-F]+)", text))
ok(notices, "a bounce notice was queued")
is_(sorted(q for q, kind in first.items() if kind == "qmgr" and q not in notices), [],
    "no message but a notice has qmgr's from= before its client= or uid= line")
report = logtools.pflogsumm(logfile)
mine = logtools.pflogsumm_figures(report)
for name, want in golden["totals"].items():
    got = mine["totals"].get(name)
    if name == "received":
        is_(got, want - LOST_AFTER_RCPT, f"pflogsumm: {name} as Postfix's, less the session lost after RCPT")
    elif name.startswith("bytes"):
        ok(close(got, want), f"pflogsumm: {name} {got} ~ Postfix's {want}")
    else:
        is_(got, want, f"pflogsumm: {name}")
for table in logtools.TABLES:
    want_rows, got_rows = golden.get(table, {}), mine.get(table, {})
    ok(want_rows, f"the golden report has \"{table}\"")
    is_(sorted(got_rows), sorted(want_rows), f"pflogsumm: the rows of \"{table}\"")
    size_at = 0 if "size" in table else 1 if table.startswith("Host/Domain") else None
    for key, want in want_rows.items():
        got = got_rows.get(key, [])
        same = len(got) == len(want) and all(
            close(g, w) if i == size_at else g == w for i, (g, w) in enumerate(zip(got, want)))
        ok(same, f"pflogsumm: \"{table}\" {key}: {got} ~ Postfix's {want}")
if not ok(mine.get("totals", {}).get("received"), "pflogsumm reads postern's log at all"):
    diag(report)

for jail, arg in logtools.FAIL2BAN_FILTERS.items():
    report = logtools.fail2ban(logfile, arg)
    got = logtools.fail2ban_counts(report)
    want_matched = golden_f2b[jail][1]
    is_(got and got[1], want_matched, f"fail2ban-regex {jail}: {want_matched} lines matched, as for Postfix")
    # the same lines, hosts and reasons as in Postfix's log
    want_lines = logtools.fail2ban_matched(logtools.fail2ban(os.path.join(GOLDEN, "postfix.log"), arg))
    is_(logtools.fail2ban_matched(report), want_lines, f"fail2ban-regex {jail}: the lines Postfix's log has")

# 2. postern's names by default: nothing pretends to be Postfix
logfile = day_of_traffic([])
text = open(logfile).read()
unlike(text, r" postfix/", "by default no line names postfix")
like(text, r" postern/smtpd\[\d+\]: \w+: client=unknown\[127\.0\.0\.1\]", "the SMTP client is logged for smtpd")
like(text, r" postern/queue\[\d+\]: \w+: uid=\d+ from=<", "and the uid of local submissions")
is_(logtools.pflogsumm_figures(logtools.pflogsumm(logfile))["totals"].get("received"), 0,
    "pflogsumm without --syslog-name counts nothing (the one setting is needed)")

# 3. syslog (a system install has no maillog_file): the lent names and pids
# reach /dev/log too.  /dev/log is a socket of the test's own, in a mount
# namespace of its own (root and unshare(1) needed).
SYSLOG_LISTENER = r"""
import os, socket, subprocess, sys
queue, config = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "none", "/dev"], check=True)
open("/dev/null", "w").close()
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(10)
envelope = b"Ff@example.com\0Tt@example.com\0Aorigin=smtp\0" \
           b"Alog_client=unknown[192.0.2.1]\0Alog_pid=4242\0\0"
env_r, env_w = os.pipe()
os.write(env_w, envelope)
os.close(env_w)
p = subprocess.run([queue, "-c", config], input=b"Subject: x\n\nbody\n", stdout=env_r)
got = []
while len(got) < 2:
    got.append(log.recv(4096).decode(errors="replace"))
print("\n".join(got))
sys.exit(p.returncode)
"""
unshare = os.geteuid() == 0 and shutil.which("unshare") and unshare_mount()
if unshare:
    d = tempdir()
    write(os.path.join(d, "main.cf"), f"queue_directory = {d}/queue\ndata_directory = {d}/data\nsyslog_name = postfix\n"
          "mail_owner = root\nsetgid_group = root\n")
    run(["postern", "queue", "-c", d, "init"])
    r = run(unshare + [sys.executable, "-c", SYSLOG_LISTENER, prog("postern-queue"), d], timeout=30)
    is_(r.returncode, 0, "syslog: the queue stores a message with /dev/log a socket of ours")
    like(r.stdout, r"^<22>\w+ +\d+ [\d:]+ postfix/smtpd\[4242\]: \w+: client=unknown\[192\.0\.2\.1\]$",
         "syslog: client= as postfix/smtpd with smtpd's pid, facility mail, level info")
    like(r.stdout, r"^<22>\w+ +\d+ [\d:]+ postfix/cleanup\[\d+\]: \w+: message-id=<>$",
         "syslog: then message-id= as postfix/cleanup with its own pid")
    if r.returncode:
        diag(r.stderr)
elif os.geteuid() != 0:
    skip("syslog through /dev/log needs root", 3)
done()
