#!/usr/bin/env python3
# postern-bounce: RFC 3464 notices checked field by field with Python's email
# package, Postfix's rules for who gets a notice (null sender, double-bounce,
# notify_classes), RET and bounce_size_limit, odd originals, and request mode
# (doc/delivery.md "Notices") injecting through the real postern-queue.
import email
import email.policy
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

HOST = "mail.example.org"
BOUNCE = prog("postern-bounce")
tmp = tempdir()
confdir = os.path.join(tmp, "etc")
os.makedirs(confdir)
BASE_O = ["-c", confdir, "-o", f"myhostname={HOST}", "-o", f"myorigin={HOST}"]

MSG = (b"From: Alice <alice@example.org>\n"
       b"To: bob@example.com\n"
       b"Subject: hello\n"
       b"Message-ID: <1@example.org>\n"
       b"\n"
       b"Hi Bob,\nthis is a test.\n")
REASON = ("host mx.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: "
          "Recipient address rejected: User unknown in virtual mailbox table "
          "(in reply to RCPT TO command)")


def shell(args, message=MSG, opts=()):
    """Shell mode with -p: returns (rc, [(env_from, env_to, raw bytes)], stderr)."""
    argv = [BOUNCE] + BASE_O + list(opts) + ["-p"] + list(args)
    r = subprocess.run(argv, input=message, capture_output=True, timeout=30)
    notices = []
    for m in re.finditer(rb"^=== notice from=<(.*?)> to=<(.*?)>\n", r.stdout, re.M):
        notices.append([m.group(1).decode(), m.group(2).decode(), m.end()])
    for i, n in enumerate(notices):
        end = notices[i + 1][2] - len(b"=== notice") if i + 1 < len(notices) else len(r.stdout)
        raw = r.stdout[n[2]:end]
        if i + 1 < len(notices):
            raw = raw[:raw.rfind(b"=== notice")]
        n[2] = raw
    return r.returncode, [tuple(n) for n in notices], r.stderr.decode(errors="replace")


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


class Fields(dict):
    """DSN fields by name, any case (field names are case-insensitive)."""
    def __init__(self, items):
        super().__init__((k.lower(), v) for k, v in items)

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


def dsn_fields(msg):
    """The delivery-status part: (per-message fields, [per-recipient fields])."""
    part = msg.get_payload()[1]
    blocks = part.get_payload()
    return Fields(blocks[0].items()), [Fields(b.items()) for b in blocks[1:]]


def unfold(v):
    return re.sub(r"\s*\n\s+", " ", v) if v is not None else v


def lines_ok(raw):
    return max((len(l) for l in raw.split(b"\n")), default=0) < 998


# ---- a non-delivery notice, field by field ----
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-q", "4B1C3A2F1",
                          "-e", "env-123", "-a", "1763787013", "-s", "5.1.1 " + REASON,
                          "-m", "mx.example.com", "bob@example.com"])
is_(rc, 0, "failure notice: exit 0")
is_(len(notices), 1, "one notice with the default notify_classes")
env_from, env_to, raw = notices[0]
is_(env_from, "", "the notice has the null sender")
is_(env_to, "alice@example.org", "and goes to the original sender")
m = parse(raw)
is_(m.get_content_type(), "multipart/report", "Content-Type multipart/report")
is_(m.get_param("report-type"), "delivery-status", "report-type=delivery-status")
is_(m["Subject"], "Undelivered Mail Returned to Sender", "Subject as Postfix")
is_(m["From"], f"Mail Delivery System <MAILER-DAEMON@{HOST}>", "From: MAILER-DAEMON@myhostname")
is_(m["To"], "<alice@example.org>", "To: the original sender")
is_(m["Auto-Submitted"], "auto-replied", "Auto-Submitted: auto-replied")
ok(m["Date"] and m["Message-Id"] and m["MIME-Version"] == "1.0", "Date, Message-Id, MIME-Version")
like(m["Message-Id"] or "", rf"^<[^<>@\s]+@{re.escape(HOST)}>$", "Message-Id is well-formed")
parts = m.get_payload()
is_([p.get_content_type() for p in parts],
    ["text/plain", "message/delivery-status", "message/rfc822"], "three parts in order")
text = parts[0].get_payload()
like(text, rf"This is the mail system at host {re.escape(HOST)}\.", "text part names the host")
like(unfold(text), r"<bob@example\.com>: host mx\.example\.com\[192\.0\.2\.1\] said: 550 5\.1\.1",
     "text part gives the reason per recipient")
ok(all(len(l) <= 79 for l in text.splitlines()), "text part wrapped at 79 columns")
per_msg, per_rcpt = dsn_fields(m)
is_(per_msg.get("Reporting-MTA"), f"dns; {HOST}", "Reporting-MTA: dns; myhostname")
is_(per_msg.get("X-Postern-Queue-ID"), "4B1C3A2F1", "X-Postern-Queue-ID")
is_(per_msg.get("Original-Envelope-Id"), "env-123", "Original-Envelope-Id from ENVID")
is_(per_msg.get("X-Postern-Sender"), "rfc822; alice@example.org", "X-Postern-Sender")
like(per_msg.get("Arrival-Date", ""), r"^\w{3}, [ \d]\d \w{3} 2025 \d\d:\d\d:\d\d [+-]\d{4}",
     "Arrival-Date from the arrival time")
is_(len(per_rcpt), 1, "one recipient block")
rb = per_rcpt[0]
is_(rb.get("Final-Recipient"), "rfc822; bob@example.com", "Final-Recipient")
ok("Original-Recipient" not in rb, "no Original-Recipient without ORCPT")
is_(rb.get("Action"), "failed", "Action: failed")
is_(rb.get("Status"), "5.1.1", "Status: 5.1.1")
is_(rb.get("Remote-MTA"), "dns; mx.example.com", "Remote-MTA: dns; mx")
is_(unfold(rb.get("Diagnostic-Code")),
    "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in "
    "virtual mailbox table", "Diagnostic-Code: smtp; the remote reply")
orig = parts[2].get_payload()[0]
is_(orig["Subject"], "hello", "the original message is returned whole (RET default FULL)")
like(orig.get_payload(), r"this is a test", "with its body")
is_(orig["Return-Path"], "<alice@example.org>", "and a Return-Path: line as Postfix adds")
ok(lines_ok(raw) and raw.rstrip().endswith(b"--"), "lines < 998, closing boundary present")

# a local reason becomes X-Postern; and the mail_name changes the field names
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s",
                          "5.1.1 unknown user: \"bob@example.com\"", "bob@example.com"],
                         opts=["-o", "mail_name=Postfix"])
per_msg, per_rcpt = dsn_fields(parse(notices[0][2]))
is_(per_rcpt[0].get("Diagnostic-Code"), 'X-Postfix; unknown user: "bob@example.com"',
    "a local reason: Diagnostic-Code: X-$mail_name; text")
ok("X-Postfix-Queue-ID" in per_msg, "X-$mail_name-Queue-ID follows mail_name")

# a missing or malformed status becomes the kind's default (Status: 5.0.0)
for status in ("", "x", "5.", "7.1.1 text"):
    rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s", status,
                              "bob@example.com"])
    is_(dsn_fields(parse(notices[0][2]))[1][0].get("Status") if notices else None, "5.0.0",
        f"status {status!r}: Status: 5.0.0")

# ---- RET=HDRS and bounce_size_limit ----
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-r", "HDRS",
                          "-s", "5.1.1 nope", "bob@example.com"])
p3 = parse(notices[0][2]).get_payload()[2]
is_(p3.get_content_type(), "text/rfc822-headers", "RET=HDRS: text/rfc822-headers")
is_(p3["Content-Description"], "Undelivered Message Headers", "described as headers")
body = p3.get_payload()
ok("Subject: hello" in body and "this is a test" not in body, "the header only, no body")

big = MSG + b"x" * 70 + b"\n"
big = big + (b"y" * 99 + b"\n") * 600          # > 50000 bytes
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s", "5.1.1 nope",
                          "bob@example.com"], message=big)
p3 = parse(notices[0][2]).get_payload()[2]
is_(p3.get_content_type(), "text/rfc822-headers",
    "above bounce_size_limit (50000): only the header is returned")
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s", "5.1.1 nope",
                          "bob@example.com"], message=big, opts=["-o", "bounce_size_limit=100000"])
p3 = parse(notices[0][2]).get_payload()[2]
is_(p3.get_content_type(), "message/rfc822", "a larger bounce_size_limit returns it whole")

# ---- delay and success ----
rc, notices, err = shell(["-k", "delay", "-f", "alice@example.org", "-a", "1763787013",
                          "-s", "4.4.1 connect to mx.example.com[192.0.2.1]:25: Connection refused",
                          "bob@example.com"],
                         opts=["-o", "delay_warning_time=4h", "-o", "maximal_queue_lifetime=5d"])
m = parse(notices[0][2])
is_(m["Subject"], "Delayed Mail (still being retried)", "delay: Subject as Postfix")
per_msg, per_rcpt = dsn_fields(m)
is_(per_rcpt[0].get("Action"), "delayed", "delay: Action: delayed")
is_(per_rcpt[0].get("Status"), "4.4.1", "delay: Status: 4.4.1")
like(per_rcpt[0].get("Will-Retry-Until", ""), r"2025", "delay: Will-Retry-Until")
is_(m.get_payload()[2].get_content_type(), "text/rfc822-headers", "delay: headers only")
like(m.get_payload()[0].get_payload(), r"more than 4 hour\(s\)\.\nIt will be tried again until it is 5 day\(s\) old",
     "delay text gives delay_warning_time and maximal_queue_lifetime")

rc, notices, err = shell(["-k", "success", "-f", "alice@example.org",
                          "-s", "2.0.0 delivered to maildir", "bob@example.com"])
m = parse(notices[0][2])
is_(m["Subject"], "Successful Mail Delivery Report", "success: Subject as Postfix")
per_msg, per_rcpt = dsn_fields(m)
is_(per_rcpt[0].get("Action"), "delivered", "success: Action: delivered")
is_(per_rcpt[0].get("Status"), "2.0.0", "success: Status: 2.0.0")
is_(m.get_payload()[2]["Content-Description"], "Message Headers", "success: message headers")
rc, notices, err = shell(["-k", "success", "-f", "alice@example.org", "-m", "mx.example.com",
                          "-s", "2.0.0 250 ok", "bob@example.com"])
is_(dsn_fields(parse(notices[0][2]))[1][0].get("Action"), "relayed",
    "success through a remote MTA: Action: relayed")

# ---- who gets a notice: null sender, double-bounce, notify_classes ----
rc, notices, err = shell(["-k", "failure", "-f", "", "-q", "AAA1", "-s", "5.1.1 nope",
                          "bob@example.com"])
is_(len(notices), 0, "a failed bounce with default notify_classes: no notice (Postfix)")
like(err, r"AAA1: not sending non-delivery notification .*null sender", "and a log line says so")

rc, notices, err = shell(["-k", "failure", "-f", "", "-q", "AAA2", "-s", "5.1.1 nope",
                          "bob@example.com"], opts=["-o", "notify_classes=2bounce"])
is_(len(notices), 1, "notify_classes=2bounce: one double-bounce notice")
is_(notices[0][:2], (f"double-bounce@{HOST}", f"postmaster@{HOST}"),
    "from double_bounce_sender to 2bounce_notice_recipient")
m = parse(notices[0][2])
is_(m["Subject"], "Postmaster Copy: Undelivered Mail", "postmaster subject")
is_(m["Auto-Submitted"], "auto-generated", "Auto-Submitted: auto-generated")
is_(m.get_payload()[2].get_content_type(), "message/rfc822", "the failed bounce is returned whole")
unlike(m.get_payload()[0].get_payload(), r"This is the mail system", "no boilerplate for postmaster")

rc, notices, err = shell(["-k", "failure", "-f", "", "-s", "5.1.1 nope", "bob@example.com"],
                         opts=["-o", "notify_classes=bounce", "-o",
                               "2bounce_notice_recipient=hostmaster@example.net"])
is_(notices[0][1] if notices else None, "hostmaster@example.net",
    "notify_classes=bounce also sends double bounces, to 2bounce_notice_recipient")

rc, notices, err = shell(["-k", "failure", "-f", f"double-bounce@{HOST}", "-q", "AAA3",
                          "-s", "5.1.1 nope", "postmaster@example.com"],
                         opts=["-o", "notify_classes=bounce,2bounce,delay"])
is_(len(notices), 0, "a failed postmaster notice (double-bounce sender): never a third notice")
like(err, r"AAA3: undeliverable postmaster notification discarded", "logged as Postfix")

rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s", "5.1.1 nope",
                          "bob@example.com"], opts=["-o", "notify_classes=bounce",
                                                    "-o", "bounce_notice_recipient=pm"])
is_([n[:2] for n in notices], [("", "alice@example.org"), (f"double-bounce@{HOST}", f"pm@{HOST}")],
    "notify_classes=bounce: the sender's notice and a copy to bounce_notice_recipient")
m = parse(notices[1][2])
is_(m["Subject"], "Postmaster Copy: Undelivered Mail", "the copy's subject")
is_(m.get_payload()[2].get_content_type(), "text/rfc822-headers", "the copy has headers only")

rc, notices, err = shell(["-k", "delay", "-f", "alice@example.org", "-s", "4.4.1 later",
                          "bob@example.com"], opts=["-o", "notify_classes=delay"])
is_([n[1] for n in notices], ["alice@example.org", f"postmaster@{HOST}"],
    "notify_classes=delay: a copy to delay_notice_recipient")
is_(parse(notices[1][2])["Subject"], "Postmaster Warning: Delayed Mail", "its subject")

rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-s", "5.1.1 nope",
                          "bob@example.com"], opts=["-o", "notify_classes=bounce, bogus"])
ok(len(notices) == 2 and 'unknown notify_classes value "bogus"' in err,
   "an unknown notify_classes name is reported, the known ones still apply")

rc, notices, err = shell(["-k", "success", "-f", "", "-s", "2.0.0 ok", "bob@example.com"])
is_(len(notices), 0, "no success notice for a message with the null sender")

# ---- odd originals never make an invalid report ----
odd = {
    "huge header line": b"Subject: " + b"a" * 5000 + b"\nX-Long: " + b"b c " * 2000 + b"\n\nbody\n",
    "no blank line": b"From: a@b\nSubject: x\nthis is not a header\nmore\n",
    "binary": b"Subject: bin\n\n" + bytes(range(256)) * 40 + b"\x00\x00\n",
    "empty": b"",
    "no newline at end": b"Subject: x\n\nno newline",
    "only a body": b"just text, no header at all\n",
}
for name, content in odd.items():
    for ret in ("FULL", "HDRS"):
        rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-r", ret,
                                  "-s", "5.1.1 " + "x" * 3000, "-m", "m" * 1200,
                                  "b" * 1100 + "@example.com"], message=content)
        good = rc == 0 and len(notices) == 1
        if good:
            raw = notices[0][2]
            m = parse(raw)
            good = (lines_ok(raw) and m.is_multipart() and len(m.get_payload()) == 3
                    and not m.defects and raw.rstrip().endswith(b"--"))
        ok(good, f"odd original ({name}, RET={ret}): valid report, lines < 998")
        if not good:
            diag(err)

# 8-bit content: Content-Transfer-Encoding 8bit where it is carried
msg8 = "Subject: caf\u00e9\n\nd\u00e9j\u00e0 vu\n".encode()
rc, notices, err = shell(["-k", "failure", "-f", "alice@example.org", "-8", "-s", "5.1.1 nope",
                          "bob@example.com"], message=msg8)
m = parse(notices[0][2])
is_(m["Content-Transfer-Encoding"], "8bit", "8BITMIME original: top-level CTE 8bit")
is_(m.get_payload()[2]["Content-Transfer-Encoding"], "8bit", "and on the returned message")
ok("déjà".encode() in notices[0][2], "the 8-bit text is returned unchanged")


# ---- request mode (doc/delivery.md) ----
def queue_file(path, sender, content, rcpts, attrs=()):
    """A queue file per doc/queue-format.md; returns (offset, length) of the content."""
    head = b"V1\nt1763787013.123456\nF" + sender.encode() + b"\n"
    for a in attrs:
        head += b"A" + a.encode() + b"\n"
    for r in rcpts:
        head += b"B" + r.encode() + b"\n"
    head += b"M%d\n" % len(content)
    with open(path, "wb") as f:
        f.write(head + content + b"\nE\n")
    return len(head), len(content)


def request(records, qf_path, opts=()):
    """Run request mode; returns (result record bytes, stderr)."""
    data = b"".join(r.encode() + b"\0" for r in records) + b"\0"
    rfd, wfd = os.pipe()
    os.write(wfd, data)
    os.close(wfd)
    with open(qf_path, "rb") as qf:
        p = subprocess.Popen([BOUNCE, "-R"] + BASE_O + list(opts), stdin=qf,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False,
                             preexec_fn=lambda: os.dup2(rfd, 3) if rfd != 3
                             else os.set_inheritable(3, True))
        out, errout = p.communicate(timeout=30)
    os.close(rfd)
    return out, errout.decode(errors="replace")


qf = os.path.join(tmp, "ABCDE123")
off, length = queue_file(qf, "alice@example.org", MSG, ["bob@example.com"])
base = ["QABCDE123", "Falice@example.org", f"M{off},{length}", "Aarrival=1763787013"]
out, err = request(base + ["Tbob@example.com", "S5.1.1 nope"], qf)
is_(out, b"D5.3.0 malformed notice request: the request has no X record\0",
    "request without X: one D result record")
out, err = request(base + ["Xfailure", "PNOTIFY=NEVER", "Tbob@example.com", "S5.1.1 nope"], qf)
is_(out, b"D5.3.0 malformed notice request: P record before any T record\0",
    "the runners' request reader judges the request: P before T is one D result")
out, err = request(["QABCDE123", "Xfailure", f"Fdouble-bounce@{HOST}", f"M{off},{length}",
                    "Tpostmaster@example.com", "S5.1.1 nope"], qf,
                   opts=["-o", f"maillog_file={tmp}/maillog"])
is_(out, b"K\0", "double-bounce sender: K with no id (nothing to send)")
out, err = request(["QABCDE123", "Xfailure"] + base[1:] + ["Tbob@example.com", "S5.1.1 nope"], qf,
                   opts=["-o", f"daemon_directory={tmp}/nonexistent"])
like(out.decode(), r"^Z4\.3\.0 cannot execute .*/nonexistent/postern-queue: No such file or directory\0$",
     "injector missing: Z 4.3.0 saying why, qmgr tries again later")

if not os.access(prog("postern-queue"), os.X_OK):
    diag("postern-queue is not built yet: injection tests skipped")
    done()

# injection through the real postern-queue
qdir = os.path.join(tmp, "queue")
write(os.path.join(confdir, "main.cf"),
      f"queue_directory = {qdir}\nmyhostname = {HOST}\nmyorigin = {HOST}\n"
      f"daemon_directory = {BIN}\nmaillog_file = {tmp}/maillog\n")
for d in ("incoming", "active", "deferred", "hold", "corrupt", "public"):
    os.makedirs(os.path.join(qdir, d), exist_ok=True)
INJ = ["-o", f"daemon_directory={BIN}", "-o", f"maillog_file={tmp}/maillog",
       "-o", f"queue_directory={qdir}"]


def read_queue_file(qid):
    with open(os.path.join(qdir, "incoming", qid), "rb") as f:
        data = f.read()
    env = {"F": None, "R": []}
    pos = 0
    while True:
        nl = data.index(b"\n", pos)
        line = data[pos:nl].decode(errors="replace")
        pos = nl + 1
        if line.startswith("F"):
            env["F"] = line[1:]
        elif line[:1] in ("R", "B", "D"):
            env["R"].append(line[1:])
        elif line.startswith("M"):
            n = int(line[1:])
            return env, data[pos:pos + n]


out, err = request(["Xfailure"] + base + [
    "Tbob@example.com", "PORCPT=rfc822;Bob@Example.COM", "S5.1.1 " + REASON, "Ymx.example.com",
    "Tcarol@example.com", "PNOTIFY=NEVER", "S5.1.1 nope",
    "Tdave@example.com", "PNOTIFY=SUCCESS,FAILURE", "S5.2.2 mailbox full"], qf, opts=INJ)
res = out.decode()
ok(re.fullmatch(r"K[0-9A-F]+\0", res), "request mode: K + the notice's queue id")
newid = res[1:-1]
with open(f"{tmp}/maillog") as f:
    log = f.read()
like(log, rf"ABCDE123: sender non-delivery notification: {newid}", "Postfix's log line")
env, content = read_queue_file(newid)
is_(env["F"], "", "the queued notice has the null sender")
is_(env["R"], ["alice@example.org"], "and the original sender as its recipient")
m = parse(content)
per_msg, per_rcpt = dsn_fields(m)
is_([r.get("Final-Recipient") for r in per_rcpt],
    ["rfc822; bob@example.com", "rfc822; dave@example.com"],
    "NOTIFY=NEVER recipients are left out, NOTIFY=FAILURE ones kept")
is_(per_rcpt[0].get("Original-Recipient"), "rfc822;Bob@Example.COM", "Original-Recipient from ORCPT")
is_(per_rcpt[1].get("Status"), "5.2.2", "each recipient's own status")
is_(m.get_payload()[2].get_payload()[0]["Subject"], "hello", "the original, read from the queue file")

# a delay notice: only recipients whose NOTIFY names DELAY (or none); C and Y records
out, err = request(["Xdelay"] + base + [
    "Tbob@example.com", "PNOTIFY=FAILURE", "S4.4.1 refused",
    "Tdave@example.com", "S4.3.0 " + "command said no", "Yx-local; pipe", "Cx-unix; no space left"],
    qf, opts=INJ)
res = out.decode()
ok(re.fullmatch(r"K[0-9A-F]+\0", res), "delay request: K + id")
with open(f"{tmp}/maillog") as f:
    like(f.read(), rf"ABCDE123: sender delay notification: {res[1:-1]}", "delay log line")
m = parse(read_queue_file(res[1:-1])[1])
per_msg, per_rcpt = dsn_fields(m)
is_([r.get("Final-Recipient") for r in per_rcpt], ["rfc822; dave@example.com"],
    "NOTIFY=FAILURE recipients get no delay notice")
is_(per_rcpt[0].get("Remote-MTA"), "x-local; pipe", "Y with a type is reported as given")
is_(per_rcpt[0].get("Diagnostic-Code"), "x-unix; no space left", "C gives the Diagnostic-Code")

# every recipient NOTIFY=NEVER: no notice, K without an id
out, err = request(["Xfailure"] + base + ["Tbob@example.com", "PNOTIFY=NEVER", "S5.1.1 no"],
                   qf, opts=INJ)
is_(out, b"K\0", "all recipients NOTIFY=NEVER: K with no id, nothing queued")

# SMTPUTF8: the global types and utf-8 addresses
out, err = request(["Xfailure"] + base + ["ASMTPUTF8=yes", "Tj\u00f6rg@example.com",
                                          "S5.1.1 unknown user"], qf, opts=INJ)
content = read_queue_file(out.decode()[1:-1])[1]
m = parse(content)
is_([p.get_content_type() for p in m.get_payload()],
    ["text/plain", "message/global-delivery-status", "message/global"],
    "SMTPUTF8: message/global-delivery-status and message/global")
ok("\nFinal-Recipient: utf-8; j\u00f6rg@example.com\n".encode() in content,
   "Final-Recipient: utf-8; with the UTF-8 address")
done()
