#!/usr/bin/env python3
# After-queue content filters, as Postfix's FILTER_README sets them up,
# through the whole chain of two started instances with a real filter
# program: SpamAssassin (spamd started here as nobody, spamc as the check).
#
# The advanced filter: content_filter = scan:[127.0.0.1]:PORT in main.cf,
# scan a master.cf smtp service with -o settings, and
# receive_override_options = no_address_mappings; a filter daemon
# (t/lib/filterproxy.py: aiosmtpd + spamc) re-injects into a second smtpd
# listener of master.cf with "-o content_filter=" and the README's
# overrides.  Asserted: one delivery, with the filter's mark, aliases and
# always_bcc applied once, after the filter (the filter sees the original
# recipient); header_checks once, before it, and its FILTER wins over
# content_filter (default_filter_nexthop); the re-injection port filters
# nothing (no loop); local submission (sendmail) filtered too; spam
# rejected by the filter bounces, and the notice is not filtered; a filter
# that is down leaves the mail deferred, delivered once it is back;
# no_unknown_recipient_checks on the second listener.
#
# The simple filter: "-o content_filter=filter:dummy" on the smtpd service
# only; "filter" a pipe(8) service running a script of our own as a user
# of its own, which asks spamc and re-injects with sendmail -G -i; pickup's
# "-o receive_override_options=no_header_body_checks" keeps header_checks
# from running twice; sendmail -G leaves the header's addresses alone.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from tap import diag, is_, like, ok, unlike, wait_until, write
import instance as inst_mod
from filterproxy import FilterProxy
from smtpdtest import Client, transaction
from users import create_users

tap.require(programs=("postern", "sendmail", "postern-smtpd", "postern-accept", "postern-smtp",
                      "postern-pipe", "postern-spawn", "postern-qmgr", "postern-virtual",
                      "postern-bounce", "postern-rewrite", "postern-queue"),
            tools=("spamd", "spamc", "useradd", "userdel"))
if os.geteuid() != 0:
    tap.skip_all("needs root: the simple filter runs as a user of its own (pipe user=), spamd as nobody")

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def start_spamd():
    """spamd on a free loopback port, as nobody, local tests only."""
    d = tap.tempdir("postern-spamd-")
    os.chmod(d, 0o777)
    port = tap.free_port()
    log = os.path.join(d, "log")
    tap.start(["spamd", "-L", "-x", "--nouser-config", "--syslog=stderr", "-i", "127.0.0.1",
               "-p", str(port), "-A", "127.0.0.1", "-u", "nobody", "-H", d,
               "--min-children=1", "--max-children=2"],
              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    if not wait_until(lambda: "server successfully spawned" in open(log).read(), 90):
        ok(False, "spamd starts") or diag(open(log).read()[-2000:])
        tap.done()
    return port


def smtpd_port(directory):
    return int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(directory, "master.cf")).read(),
                         re.M).group(1))


def header_count(message, name):
    head = message.split(b"\n\n", 1)[0].decode(errors="replace")
    return len(re.findall(r"(?mi)^%s:" % re.escape(name), head))


def logged(inst, pattern, timeout=30):
    found = wait_until(lambda: re.search(pattern, inst.log(), re.M) is not None, timeout)
    return found


def mailboxes(directory, names):
    write(os.path.join(directory, "vmailbox"), "".join(f"{n}@example.com {n}/Maildir/\n" for n in names))


SPAMD = start_spamd()

# ---------------------------------------------------------------- advanced
A = inst_mod.new_instance("--domain", "example.com")
DA = A.dir
P1, P2, FPORT = smtpd_port(DA), tap.free_port(), tap.free_port()
mailboxes(DA, ["u1", "s", "audit"])
write(os.path.join(DA, "header_checks"), "/^Subject: .*checked/ PREPEND X-Checked: yes\n"
      "/^Subject: elsewhere/ FILTER error:\n")
with open(os.path.join(DA, "main.cf"), "a") as f:
    f.write(f"""
default_filter_nexthop = 5.7.9 sent to the default filter next hop
virtual_mailbox_maps = texthash:{DA}/vmailbox
virtual_alias_maps = inline:{{ {{team@example.com = u1@example.com}} }}
always_bcc = audit@example.com
header_checks = pcre:{DA}/header_checks
content_filter = scan:[127.0.0.1]:{FPORT}
receive_override_options = no_address_mappings
# the filter that was down is tried again within seconds (qmgr keeps a
# dead destination suspended for minimal_backoff_time; flush does not
# revive it)
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s
""")
with open(os.path.join(DA, "master.cf"), "a") as f:
    f.write(f"""
scan      unix  -       -       n       -       10      smtp
    -o smtp_helo_name=scan.example
    -o smtp_send_xforward_command=yes
    -o disable_mime_output_conversion=yes
127.0.0.1:{P2} inet n - n - 10 smtpd
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_helo_restrictions=
    -o smtpd_client_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_relay_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o mynetworks=127.0.0.0/8
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
""")
proxy = FilterProxy(FPORT, P2, SPAMD)
r = A.start()
is_(r.returncode, 0, "advanced: postern start (two smtpd listeners)") or diag(r.stderr)
check = A.postern("check")
unlike(check.stderr, r"content_filter|receive_override_options",
       "postern check no longer reports content_filter or receive_override_options") or diag(check.stderr)

answers, answer, qid = transaction(P1, "s@example.com", ["team@example.com"],
                                   "From: s@example.com\nTo: team@example.com\nSubject: checked one\n\nhello\n")
ok(qid, "a message on port 25's listener is queued") or diag(answer)
u1 = A.wait_for("u1", 1, 30)
is_(len(u1), 1, "it reaches the alias's mailbox") or diag(A.log()[-3000:])
audit = A.wait_for("audit", 1, 30)
is_(len(audit), 1, "and always_bcc's")
first = proxy.transactions()
is_(len(first), 1, "the filter saw it once")
is_(first[0]["helo"] if first else None, "scan.example",
    "through the master.cf service scan: postern-smtp with its -o settings")
is_(first[0]["recipients"] if first else None, ["team@example.com"],
    "the filter saw the original recipient: no alias expansion and no BCC before it (no_address_mappings)")
m = u1[0] if u1 else b""
is_(header_count(m, "X-Spam-Checker-Version"), 1, "the delivered message carries the filter's mark once")
is_(header_count(m, "X-Checked"), 1, "header_checks ran once: before the filter, not on re-injection")
xf = " ".join(first[0]["xforward"]) if first else ""
ok(all(part in xf for part in ("NAME=localhost", "ADDR=127.0.0.1", "PROTO=ESMTP", "HELO=client.example",
                               "SOURCE=REMOTE", "IDENT=%s" % qid)),
   "scan sent XFORWARD with the original client (smtp_send_xforward_command)") or diag(xf)
like(m.decode(errors="replace"), r"(?m)^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\n\tby localhost",
     "the filter passed it on: the re-injection listener names the original client's HELO")
ok(logged(A, r"to=<u1@example\.com>, orig_to=<team@example\.com>, relay=.*status=sent"),
   "the alias was expanded after the filter: orig_to names it")
ok(logged(A, r"%s: to=<team@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent \(250 2\.0\.0 Ok: filtered"
          % (qid, FPORT)), "qmgr sent the message to the filter") or diag(A.log()[-3000:])
is_(len(A.wait_for("u1", 2, 2)), 1, "delivered once (the re-injected copy went nowhere else)")

# mail on the re-injection listener is not filtered again
answers, answer, qid2 = transaction(P2, "s@example.com", ["u1@example.com"],
                                    "From: s@example.com\nSubject: direct\n\nhello\n")
ok(qid2, "the re-injection listener queues mail") or diag(answer)
u1 = A.wait_for("u1", 2, 30)
is_(len(u1), 2, "and it is delivered")
ok(len(u1) == 2 and header_count(u1[1], "X-Spam-Checker-Version") == 0,
   "without passing the filter (content_filter= on that listener: no loop)")
is_(len(proxy.transactions()), 1, "the filter saw nothing more")

# local submission: main.cf's content_filter applies (Postfix's pickup)
r = A.sendmail(["-f", "s@example.com", "team@example.com"], b"Subject: local\n\nfrom sendmail\n")
is_(r.returncode, 0, "sendmail") or diag(r.stderr)
u1 = A.wait_for("u1", 3, 30)
is_(len(u1), 3, "a local submission is delivered")
ok(len(u1) == 3 and header_count(u1[2], "X-Spam-Checker-Version") == 1, "after passing the filter")
last = proxy.transactions()[-1:]
is_(last[0]["recipients"] if last else None, ["team@example.com"],
    "with the original recipient (no_address_mappings on the local path too)")

# spam: the filter rejects it, the message bounces, the notice is not filtered
answers, answer, spam_id = transaction(P1, "s@example.com", ["u1@example.com"],
                                       "From: s@example.com\nSubject: spam\n\n%s\n" % GTUBE)
ok(spam_id, "a spam message is queued")
ok(logged(A, r"%s: to=<u1@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=bounced "
             r"\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.7\.1 Message content rejected" % (spam_id, FPORT)),
   "the filter's 550 bounces it") or diag(A.log()[-3000:])
notices = A.wait_for("s", 1, 30)
is_(len(notices), 1, "the sender gets the notice")
ok(notices and b"Message content rejected" in notices[0] and header_count(notices[0], "X-Spam-Status") == 0,
   "naming the filter's reason, not filtered itself (postern's own mail)")
ok(all(t["sender"] for t in proxy.transactions()), "the filter never saw the null sender")
is_(len(A.delivered("u1")), 3, "the spam reached no mailbox")

# a header_checks FILTER replaces content_filter; without a next hop it
# takes default_filter_nexthop (here the error transport's text)
answers, answer, else_id = transaction(P1, "s@example.com", ["u1@example.com"],
                                       "From: s@example.com\nSubject: elsewhere\n\nhello\n")
ok(logged(A, r"%s: to=<u1@example\.com>, relay=none, .*dsn=5\.7\.9, status=bounced "
             r"\(sent to the default filter next hop\)" % else_id),
   "header_checks' FILTER wins over content_filter; default_filter_nexthop is its next hop") \
    or diag(A.log()[-2000:])
is_(len(proxy.transactions()), 3, "the content filter did not see it (it saw three messages before)")
is_(len(A.wait_for("s", 2, 30)), 2, "the sender is told")

# the filter is down: deferred, not bounced, delivered when it is back
proxy.stop()
answers, answer, down_id = transaction(P1, "s@example.com", ["u1@example.com"],
                                       "From: s@example.com\nSubject: while down\n\nhello\n")
ok(down_id, "a message is queued while the filter is down")
ok(logged(A, r"%s: to=<u1@example\.com>, relay=none, .*status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
             r"Connection refused\)" % (down_id, FPORT)),
   "it is deferred: connection refused") or diag(A.log()[-3000:])
ok(wait_until(lambda: os.path.exists(os.path.join(DA, "queue", "deferred", down_id or "-")), 15),
   "and waits in deferred/")
is_(len(A.delivered("s")), 2, "nothing bounced")
proxy = FilterProxy(FPORT, P2, SPAMD)
r = A.postern("queue", "flush")
is_(r.returncode, 0, "postern queue flush") or diag(r.stderr)
u1 = A.wait_for("u1", 4, 60)
is_(len(u1), 4, "once the filter is back, the message is delivered") or diag(A.log()[-3000:])
ok(len(u1) == 4 and header_count(u1[3], "X-Spam-Checker-Version") == 1
   and b"Subject: while down" in u1[3], "filtered")

# no_unknown_recipient_checks: the first listener refuses an unknown user, the second does not
def rcpt(port, address):
    c = Client(port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<s@example.com>")
    reply = c.cmd(f"RCPT TO:<{address}>")
    c.cmd("QUIT")
    return reply


like(rcpt(P1, "nosuch@example.com"), r"^550 5\.1\.1 <nosuch@example\.com>: Recipient address rejected: User unknown",
     "port 25's listener rejects an unknown recipient")
like(rcpt(P2, "nosuch@example.com"), r"^250 ", "the re-injection listener does not look (no_unknown_recipient_checks)")
proxy.stop()
A.stop()

# ------------------------------------------------------------------ simple
tag = "%04d" % (os.getpid() % 10000)
FUSER, = create_users([f"flt{tag}"])
B = inst_mod.new_instance("--domain", "example.com")
DB = B.dir
os.chmod(DB, 0o755)
BP = smtpd_port(DB)
mailboxes(DB, ["u1", "s"])
inspect = os.path.join(DB, "inspect")
os.makedirs(inspect)
os.chown(inspect, FUSER.pw_uid, FUSER.pw_gid)
os.chmod(inspect, 0o700)
script = os.path.join(DB, "filter.sh")
write(script, f"""#!/bin/sh
# a simple after-queue filter: keep the message, ask SpamAssassin, send it
# back with sendmail -G -i (75: try again later; 69: refused, it bounces)
cd {inspect} || exit 75
trap 'rm -f in.$$ out.$$' 0 1 2 3 15
cat > in.$$ || exit 75
spamc -x -E -d 127.0.0.1 -p {SPAMD} < in.$$ > out.$$
case $? in
    0) ;;
    1) echo "Message content rejected"; exit 69 ;;
    *) echo "content check unavailable"; exit 75 ;;
esac
{tap.prog("sendmail")} -C {DB} -G -i "$@" < out.$$
""", 0o755)
write(os.path.join(DB, "header_checks"), "/^Subject: .*checked/ PREPEND X-Checked: yes\n")
with open(os.path.join(DB, "main.cf"), "a") as f:
    f.write(f"""
virtual_mailbox_maps = texthash:{DB}/vmailbox
header_checks = pcre:{DB}/header_checks
privileged_transports = filter
""")
master = open(os.path.join(DB, "master.cf")).read()
master = re.sub(r"(?m)^(127\.0\.0\.1:%d .*smtpd)$" % BP, r"\1\n    -o content_filter=filter:dummy", master)
master += f"""
filter    unix  -       n       n       -       10      pipe
    flags=Rq user={FUSER.pw_name} null_sender=
    argv={script} -f ${{sender}} -- ${{recipient}}
pickup    unix  n       -       n       60      1       pickup
    -o receive_override_options=no_header_body_checks
"""
write(os.path.join(DB, "master.cf"), master)
r = B.start()
is_(r.returncode, 0, "simple: postern start") or diag(r.stderr)

answers, answer, sid = transaction(BP, "s@example.com", ["u1@example.com"],
                                   "From: s@example.com\nSubject: checked simple\n\nhello\n")
ok(sid, "simple: a message on the smtpd with -o content_filter=filter:dummy is queued") or diag(answer)
got = B.wait_for("u1", 1, 60)
is_(len(got), 1, "it is delivered once") or diag(B.log()[-3000:])
m = got[0] if got else b""
is_(header_count(m, "X-Spam-Checker-Version"), 1, "with SpamAssassin's mark, once")
is_(header_count(m, "X-Checked"), 1,
    "header_checks ran once (pickup's -o receive_override_options=no_header_body_checks on re-injection)")
like(m.decode(errors="replace"), r"(?m)^Received: by localhost \(postern, from userid %d\)" % FUSER.pw_uid,
     "re-injected by the filter's user through sendmail")
ok(logged(B, r"%s: to=<u1@example\.com>, relay=filter, .*status=sent" % sid),
   "qmgr sent it through the pipe transport filter") or diag(B.log()[-3000:])

answers, answer, bad = transaction(BP, "s@example.com", ["u1@example.com"],
                                   "From: s@example.com\nSubject: spam\n\n%s\n" % GTUBE)
ok(logged(B, r"%s: to=<u1@example\.com>, relay=filter, .*status=bounced \(.*Message content rejected" % bad),
   "the script's 69 bounces the spam") or diag(B.log()[-3000:])
is_(len(B.wait_for("s", 1, 30)), 1, "and the sender is told")

# sendmail: not filtered (content_filter only on smtpd); -G leaves the header alone
r = B.sendmail(["-G", "-f", "s@example.com", "u1@example.com"], b"To: bare\nSubject: gateway\n\nrelayed\n")
is_(r.returncode, 0, "sendmail -G")
r = B.sendmail(["-f", "s@example.com", "u1@example.com"], b"To: bare\nSubject: user\n\nsubmitted\n")
got = B.wait_for("u1", 3, 30)
is_(len(got), 3, "both delivered")
gateway = [x for x in got if b"Subject: gateway" in x]
user = [x for x in got if b"Subject: user" in x]
ok(gateway and re.search(rb"(?m)^To: bare$", gateway[0]) and header_count(gateway[0], "Message-ID") == 0,
   "-G: header addresses are not qualified and no Message-ID is added (remote context)") \
    or diag(gateway[0].decode(errors="replace") if gateway else "")
ok(user and re.search(rb"(?m)^To: bare@localhost$", user[0]) and header_count(user[0], "Message-ID") == 1,
   "without -G: qualified, Message-ID added (local context)")
ok(all(header_count(x, "X-Spam-Checker-Version") == 0 for x in gateway + user),
   "local submissions are not filtered here (content_filter only on the smtpd service)")
B.stop()
tap.done()
