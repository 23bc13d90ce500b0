"""milter_probes.py - the milter cases recorded from the real Postfix 3.7 by
t/lib/gen_postfix_milter.py into t/data/postfix-3.7-milter.txt, and
replayed against postern by t/94-smtpd-milter-postfix.t: each case is a
title, main.cf settings (MILTER stands for the scripted milter's
address, DEAD for a port nobody listens on) and the plan of
t/lib/milter_script.py.  Every case plays the same dialogue (dialogue()).
TABLES stands for a directory holding MILTER_HEADER_CHECKS as the regexp
table milter_header_checks (write_tables()).
"""
import os
import re
import subprocess

import tap

PYTHON = "/usr/bin/python3"     # where Debian's python3-milter lives
SCRIPT = os.path.join(os.path.dirname(__file__), "milter_script.py")


def require_milter():
    """End the test (failed) when python3-milter is missing."""
    if subprocess.run([PYTHON, "-c", "import Milter"], capture_output=True).returncode != 0:
        tap.ok(False, "python3-milter is installed (./deps --test)")
        tap.done()


def start_milter(port, plan_file, events_file):
    """Start t/lib/milter_script.py on 127.0.0.1:port; the process, once it
    listens."""
    m = tap.start([PYTHON, SCRIPT, f"inet:{port}@127.0.0.1", plan_file, events_file],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tap.ok(tap.wait_until(lambda: tap.listening(port), 20), "the milter listens")
    return m

RECIPIENT = "rcpt@bench.test"
MHC = "regexp:TABLES/milter_header_checks"   # milter_header_checks of the cases below
MESSAGE = "Subject: probe\nFrom: a@example.org\nTo: rcpt@bench.test\n\nhello\n"

CASES = [
    ("continue everywhere", {"smtpd_milters": "inet:MILTER"}, {}),
    ("reject at connect", {"smtpd_milters": "inet:MILTER"}, {"connect": "reject"}),
    ("tempfail at connect", {"smtpd_milters": "inet:MILTER"}, {"connect": "tempfail"}),
    ("reply at connect", {"smtpd_milters": "inet:MILTER"}, {"connect": "reply:554 5.7.1 Not you"}),
    ("421 at connect", {"smtpd_milters": "inet:MILTER"}, {"connect": "reply:421 4.7.0 Closing"}),
    ("reject at helo", {"smtpd_milters": "inet:MILTER"}, {"helo": "reject"}),
    ("reject at mail", {"smtpd_milters": "inet:MILTER"}, {"mail": "reject"}),
    ("tempfail at mail", {"smtpd_milters": "inet:MILTER"}, {"mail": "tempfail"}),
    ("reply at mail", {"smtpd_milters": "inet:MILTER"}, {"mail": "reply:553 5.1.8 Bad sender"}),
    ("reject at rcpt", {"smtpd_milters": "inet:MILTER"}, {"rcpt": "reject"}),
    ("reply at rcpt", {"smtpd_milters": "inet:MILTER"}, {"rcpt": "reply:450 4.2.0 Greylisted"}),
    ("discard at rcpt", {"smtpd_milters": "inet:MILTER"}, {"rcpt": "discard"}),
    ("reject at data", {"smtpd_milters": "inet:MILTER"}, {"data": "reject"}),
    ("reject at header", {"smtpd_milters": "inet:MILTER"}, {"header": "reject"}),
    ("reply at body", {"smtpd_milters": "inet:MILTER"}, {"body": "reply:550 5.7.1 Spam"}),
    ("reject at eom", {"smtpd_milters": "inet:MILTER"}, {"eom": "reject"}),
    ("tempfail at eom", {"smtpd_milters": "inet:MILTER"}, {"eom": "tempfail"}),
    ("reply at eom", {"smtpd_milters": "inet:MILTER"}, {"eom": "reply:550 5.7.1 Blocked by policy"}),
    ("discard at eom", {"smtpd_milters": "inet:MILTER"}, {"eom": "discard"}),
    ("quarantine at eom", {"smtpd_milters": "inet:MILTER"}, {"eom": ["quarantine:odd"]}),
    ("milter down, tempfail", {"smtpd_milters": "inet:DEAD"}, {}),
    ("milter down, reject", {"smtpd_milters": "inet:DEAD", "milter_default_action": "reject"}, {}),
    ("milter down, accept", {"smtpd_milters": "inet:DEAD", "milter_default_action": "accept"}, {}),
    ("milter down, per-milter reject",
     {"smtpd_milters": "{ inet:DEAD, default_action=reject }"}, {}),
    ("slow at eom", {"smtpd_milters": "inet:MILTER", "milter_content_timeout": "2s"}, {"eom": "sleep:4"}),
    ("milter_header_checks reject", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["addheader:X-MHC-Reject:yes"]}),
    ("milter_header_checks reject without text", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["insheader:1:X-MHC-Bare-Reject:yes"]}),
    ("milter_header_checks 4.x.x reject of a changed header",
     {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["chgheader:1:Subject:MHC changed"]}),
    ("milter_header_checks discard", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["addheader:X-MHC-Discard:yes"]}),
    ("milter_header_checks hold", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["addheader:X-MHC-Hold:yes"]}),
    ("milter_header_checks warn", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["addheader:X-MHC-Warn:yes"]}),
    ("milter_header_checks redirect", {"smtpd_milters": "inet:MILTER", "milter_header_checks": MHC},
     {"eom": ["addheader:X-MHC-Redirect:yes"]}),
    ("milter_header_checks without a match",
     {"smtpd_milters": "inet:MILTER", "milter_header_checks": "regexp:TABLES/milter_header_checks"},
     {"eom": ["addheader:X-Other:yes"]}),
]


# milter_header_checks for the cases that name regexp:TABLES/...: one rule
# per action, each for a header field the scripted milter adds or changes
MILTER_HEADER_CHECKS = """/^X-MHC-Reject:/ REJECT milter header says no
/^X-MHC-Bare-Reject:/ REJECT
/^X-MHC-Discard:/ DISCARD dropped by table
/^X-MHC-Hold:/ HOLD held for review
/^X-MHC-Warn:/ WARN looked at it
/^X-MHC-Redirect:/ REDIRECT other@bench.test
/^Subject: MHC/ REJECT 4.7.0 changed subject refused
"""


def write_tables(directory):
    """Write the tables of the milter_header_checks cases into directory."""
    with open(os.path.join(directory, "milter_header_checks"), "w") as f:
        f.write(MILTER_HEADER_CHECKS)
    os.chmod(os.path.join(directory, "milter_header_checks"), 0o644)


def settings(case, milter, dead, tables="/nonexistent"):
    return {k: v.replace("MILTER", milter).replace("DEAD", dead).replace("TABLES", tables)
            for k, v in case[1].items()}


def dialogue(client, myhostname):
    """Play the dialogue on a smtpdtest.Client-like object (reply(),
    cmd(), send()); the replies, one line each: the greeting, EHLO's
    keywords, then each reply whole (myhostname as HOST)."""
    def cmd(line):
        try:
            return client.cmd(line)
        except OSError:
            return None
    out = []
    first = client.reply() or "(closed)"
    out.append("greeting: " + first.split("\n")[-1].replace(myhostname, "HOST"))
    ehlo = cmd("EHLO client.example")
    if ehlo and ehlo.startswith("250"):
        out.append("EHLO: 250 " + " ".join(l[4:].split(" ")[0] for l in ehlo.split("\n")[1:]))
    else:
        out.append("EHLO: " + (ehlo.replace(myhostname, "HOST") if ehlo else "(closed)"))
    for line in ("MAIL FROM:<a@example.org> SIZE=100", f"RCPT TO:<{RECIPIENT}>", "DATA"):
        r = cmd(line)
        out.append(f"{line.split(':')[0]}: {r.replace(myhostname, 'HOST') if r else '(closed)'}")
        if not r:
            return out
    if r.startswith("354"):
        try:
            client.send(MESSAGE.replace("\n", "\r\n").encode() + b".\r\n")
            r = client.reply()
        except OSError:
            r = None
        out.append("END-OF-MESSAGE: " + re.sub(r"queued as \S+", "queued as ID", r or "(closed)"))
    r = cmd("QUIT")
    out.append("QUIT: " + (r or "(closed)"))
    return out


def normalize_log(line, milter, dead):
    """A smtpd or cleanup log line, comparable between Postfix and postern:
    no time stamp, program or process id; the queue id (or NOQUEUE) as ID,
    the client as client[127.0.0.1], the milter ports as MILTER and DEAD."""
    line = re.sub(r"^.*?(postfix|postern)/[a-z]+\[\d+\]: ", "", line.rstrip("\n"))
    line = re.sub(r"^(NOQUEUE|[0-9A-F]{6,}): ", "ID: ", line)
    line = re.sub(r"\S+\[127\.0\.0\.1\]", "client[127.0.0.1]", line)
    return line.replace(milter, "MILTER").replace(dead, "DEAD")


def wanted(line):
    """The log lines a case is compared by."""
    return ("milter" in line or "Milter" in line or "MHC" in line) and "not implemented" not in line
