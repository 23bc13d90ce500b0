#!/usr/bin/env python3
# check_policy_service (Postfix's SMTPD_POLICY_README) with the real policy
# servers the seeds use, started here on loopback:
#  - postgrey (inet:127.0.0.1:PORT): the first attempt is greylisted with
#    Postfix's 450 4.2.0 reply and log line, a retry after the delay is
#    accepted, with postgrey's X-Greylist header above the Received header;
#  - policyd-spf (python3-spf-engine, a stdin/stdout program, run per
#    connection on a unix socket the way Postfix's spawn(8) runs it) against
#    SPF records served by unbound: a fail is refused 550 5.7.23, a pass
#    accepted with one Received-SPF header for two recipients;
#  - the policy connection is kept for the session, and closed after
#    smtpd_policy_service_request_limit requests;
#  - a server that does not answer (postgrey stopped by SIGSTOP) or that
#    is not there: smtpd_policy_service_timeout, _try_limit, Postfix's
#    warning, and smtpd_policy_service_default_action's reply.
import os, pwd, grp, signal, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
from dnsserver import DnsServer

POSTGREY = "/usr/sbin/postgrey"
SYSTEM_PYTHON = "/usr/bin/python3"     # where Debian's python3-spf-engine lives
require(["postern-smtpd"], ["unbound"])
for path in (POSTGREY, SYSTEM_PYTHON):
    if not os.access(path, os.X_OK):
        ok(False, f"{path} is installed (./deps --test installs postgrey and python3-spf-engine)")
        done()
if subprocess.run([SYSTEM_PYTHON, "-c", "import spf_engine.policyd_spf, spf, dns.resolver"],
                  capture_output=True).returncode != 0:
    ok(False, "python3-spf-engine and python3-dnspython are installed (./deps --test)")
    done()

dns = DnsServer([
    'pass.test. TXT "v=spf1 ip4:192.0.2.1 -all"',
    'fail.test. TXT "v=spf1 ip4:198.51.100.7 -all"',
    "pass.test. A 192.0.2.1",
    "fail.test. A 198.51.100.7",
])

work = tempdir("postern-policy-")

# ---- postgrey ----
me = pwd.getpwuid(os.getuid()).pw_name
group = grp.getgrgid(os.getgid()).gr_name
write(os.path.join(work, "whitelist_clients"), "")
write(os.path.join(work, "whitelist_recipients"), "")
os.makedirs(os.path.join(work, "postgrey"))
grey_port = free_port()
postgrey = start([POSTGREY, f"--inet=127.0.0.1:{grey_port}", f"--dbdir={work}/postgrey",
                  f"--user={me}", f"--group={group}", "--delay=2", "--hostname=mx.example.com",
                  f"--whitelist-clients={work}/whitelist_clients",
                  f"--whitelist-recipients={work}/whitelist_recipients"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


ok(wait_until(lambda: listening(grey_port), 20), "postgrey listens")

# ---- policyd-spf, spawned per connection as Postfix's spawn(8) does ----
spf_conf = write(os.path.join(work, "policyd-spf.conf"),
                 "debugLevel = 1\nTestOnly = 1\nHELO_reject = Null\nMail_From_reject = Fail\n"
                 "skip_addresses = 127.0.0.0/8\nLookup_Time = 5\n")
write(os.path.join(work, "pylib", "sitecustomize.py"),
      "import dns.resolver\n"
      "r = dns.resolver.Resolver(configure=False)\n"
      f"r.nameservers = ['127.0.0.1']\nr.port = {dns.port}\n"
      "dns.resolver.default_resolver = r\n")
spf_socket = os.path.join(work, "policyd-spf.sock")
spawned = []


def spawn_server():
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(spf_socket)
    srv.listen(16)
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        env = dict(os.environ, PYTHONPATH=os.path.join(work, "pylib"))
        p = subprocess.Popen([SYSTEM_PYTHON, "-c", "from spf_engine.policyd_spf import main; main()",
                              spf_conf], stdin=conn, stdout=conn, env=env)
        spawned.append(p)
        conn.close()


threading.Thread(target=spawn_server, daemon=True).start()
ok(wait_until(lambda: os.path.exists(spf_socket), 10), "the policyd-spf spawner listens")

inst = smtpdtest.Instance({"smtpd_peername_lookup": "no"})
inst.set(smtpd_recipient_restrictions=f"permit_mynetworks, reject_unauth_destination, "
                                      f"check_policy_service inet:127.0.0.1:{grey_port}",
         mynetworks="127.0.0.0/8")


def session(addr, sender, rcpts, data=True, helo="client.example"):
    """One session from addr; the RCPT replies and the message handed on."""
    listener = smtpdtest.Listener(inst.argv(), {"TCPREMOTEIP": addr})
    before = len(inst.captured())
    c = smtpdtest.Client(listener.port, timeout=30)
    c.reply()
    c.cmd("EHLO " + helo)
    c.cmd(f"MAIL FROM:<{sender}>")
    replies = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
    msg = None
    if data and any(r.startswith("250") for r in replies):
        c.cmd("DATA")
        c.send("Subject: policy\r\n\r\nbody\r\n.\r\n")
        c.reply()
        wait_until(lambda: len(inst.captured()) > before, 10)
        got = inst.captured()
        msg = got[-1][0].decode() if len(got) > before else None
    c.cmd("QUIT")
    c.close()
    n = session.count = session.count + 1
    wait_until(lambda: inst.log().count("disconnect from") >= n, 10)
    listener.stop()
    return replies, msg


session.count = 0

# ---- greylisting ----
replies, _ = session("192.0.2.1", "a@example.org", ["b@example.com"])
is_(replies[0], "450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted, "
    "see http://postgrey.schweikert.ch/help/example.com.html",
    "postgrey greylists the first attempt: Postfix's reply (DEFER_IF_PERMIT, postgrey's 4.2.0)")
like(inst.log(), r"NOQUEUE: reject: RCPT from unknown\[192\.0\.2\.1\]: 450 4\.2\.0 <b@example\.com>: "
     r"Recipient address rejected: Greylisted, see http://postgrey\.schweikert\.ch/help/example\.com\.html; "
     r"from=<a@example\.org> to=<b@example\.com> proto=ESMTP helo=<client\.example>",
     "... logged as Postfix logs it")
replies, _ = session("192.0.2.1", "a@example.org", ["b@example.com"])
is_(replies[0][:9], "450 4.2.0", "a retry before the delay is greylisted again")
accepted = {}


def retry():
    r, m = session("192.0.2.1", "a@example.org", ["b@example.com"])
    accepted["reply"], accepted["msg"] = r[0], m
    return r[0].startswith("250")


ok(wait_until(retry, 15), "a retry after postgrey's delay is accepted") or diag(accepted)
msg = accepted.get("msg") or ""
like(msg, r"^X-Greylist: delayed \d+ seconds by postgrey-[\d.]+ at mx\.example\.com; .*\nReceived: from ",
     "postgrey's PREPEND header is the message's first line, above the Received header")
replies, _ = session("192.0.2.1", "a@example.org", ["b@example.com"], data=False)
is_(replies[0], "250 2.1.5 Ok", "the triplet, once passed, passes at once")
replies, _ = session("127.0.0.1", "x@example.org", ["b@example.com"], data=False)
is_(replies[0], "250 2.1.5 Ok", "permit_mynetworks before the policy service: not asked")

# ---- a server that does not answer, or is not there ----
os.kill(postgrey.pid, signal.SIGSTOP)
inst.set(smtpd_policy_service_timeout="1s", smtpd_policy_service_try_limit="2",
         smtpd_policy_service_retry_delay="1s")
t0 = time.monotonic()
replies, _ = session("192.0.2.5", "a@example.org", ["b@example.com"], data=False)
took = time.monotonic() - t0
is_(replies[0], "451 4.3.5 <b@example.com>: Recipient address rejected: Server configuration problem",
    "postgrey stopped: smtpd_policy_service_default_action after the timeout, Postfix's reply")
ok(2.5 <= took < 8, f"... after two tries of 1 s and a retry delay of 1 s ({took:.1f}s)")
is_(len([l for l in inst.log().splitlines()
         if f"warning: problem talking to server inet:127.0.0.1:{grey_port}: Connection timed out" in l]), 2,
    "... each try warned as Postfix warns")
os.kill(postgrey.pid, signal.SIGCONT)
dead = free_port()
inst.set(smtpd_recipient_restrictions=f"check_policy_service inet:127.0.0.1:{dead}, permit_mynetworks, "
                                      "reject_unauth_destination",
         smtpd_policy_service_default_action="DUNNO", smtpd_policy_service_retry_delay="0")
replies, _ = session("192.0.2.5", "a@example.org", ["b@example.com"], data=False)
is_(replies[0], "250 2.1.5 Ok", "no server at all, smtpd_policy_service_default_action = DUNNO: accepted")
like(inst.log(), rf"warning: problem talking to server inet:127\.0\.0\.1:{dead}: Connection refused",
     "... with the warning")
inst.set(smtpd_policy_service_default_action="451 4.3.5 Server configuration problem",
         smtpd_recipient_restrictions=f"check_policy_service {{ inet:127.0.0.1:{dead}, try_limit=1, "
                                      "default_action = { 450 4.7.1 policy server down } }, permit")
replies, _ = session("192.0.2.5", "a@example.org", ["b@example.com"], data=False)
is_(replies[0], "450 4.7.1 <b@example.com>: Recipient address rejected: policy server down",
    "the { server, option = value } form: its own default_action (a value in { })")
inst.set(smtpd_recipient_restrictions=f"check_policy_service {{ inet:127.0.0.1:{dead}, no_such_option=1 }}, permit")
replies, _ = session("192.0.2.5", "a@example.org", ["b@example.com"], data=False)
is_(replies[0], "451 4.3.5 Server configuration error", "an unknown option: 451 4.3.5, never a pass")
like(inst.log(), r'warning: check_policy_service inet:127\.0\.0\.1:\d+: unknown or bad option "no_such_option=1"',
     "... with a warning")

# ---- policyd-spf ----
inst.set(smtpd_recipient_restrictions=f"permit_mynetworks, reject_unauth_destination, "
                                      f"check_policy_service unix:{spf_socket}",
         smtpd_policy_service_default_action="451 4.3.5 Server configuration problem",
         smtpd_policy_service_timeout="20s")
replies, _ = session("192.0.2.1", "someone@fail.test", ["b@example.com"], data=False)
like(replies[0], r"^550 5\.7\.23 <b@example\.com>: Recipient address rejected: Message rejected due to: "
     r"SPF fail - not authorized\. Please see http",
     "policyd-spf: the sender's SPF record fails the client: 550 5.7.23, Postfix's form")
replies, msg = session("192.0.2.1", "someone@pass.test", ["b@example.com", "c@example.com"])
is_(replies, ["250 2.1.5 Ok", "250 2.1.5 Ok"], "an SPF pass: both recipients accepted")
is_(len(spawned), 2, "one policyd-spf process per smtpd session: the connection is kept for the session")
like(msg or "", r"^Received-SPF: Pass \(mailfrom\) identity=mailfrom; client-ip=192\.0\.2\.1; "
     r"helo=client\.example; envelope-from=someone@pass\.test; receiver=",
     "its Received-SPF header comes first")
is_((msg or "").count("Received-SPF:"), 1, "... once for two recipients (the same `instance` attribute)")
inst.set(smtpd_policy_service_request_limit="1")
session("192.0.2.1", "someone@pass.test", ["b@example.com", "c@example.com", "d@example.com"], data=False)
is_(len(spawned), 5, "smtpd_policy_service_request_limit = 1: a new connection for each request")

done()
