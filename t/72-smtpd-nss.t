#!/usr/bin/env python3
# Regression test for the crash of issue 9: postern-smtpd is static and
# looked local recipients up with getpwnam (local_recipient_maps =
# proxy:unix:passwd.byname $alias_maps, Postfix's default); with Debian's
# nsswitch.conf (passwd: files systemd) glibc loaded libnss_systemd into
# it and every RCPT to a local address dropped the connection.  Real SMTP
# sessions for the RCPTs a new user tries: with the lookup service up each
# gets its answer (250 for a real local user, 550 5.1.1 for an unknown
# one), with it down 451 4.3.0 (never 5xx, never a dropped connection), a
# session keeps working across a restart of the service, a system-style
# install (service and smtpd as two users, as root) needs the unit's socket
# mode, and smtpd forked from the zygote of a `postern start` instance
# answers the same.
import os
import pwd
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import smtpdtest  # noqa: E402
from instance import Instance  # noqa: E402

try:
    nss = [l.split() for l in open("/etc/nsswitch.conf") if l.startswith(("passwd:", "hosts:"))]
    tap.diag("nsswitch.conf: " + "; ".join(" ".join(l) for l in nss))
except OSError:
    tap.diag("no /etc/nsswitch.conf: glibc's defaults")

inst = smtpdtest.Instance({"local_recipient_maps": "proxy:unix:passwd.byname $alias_maps"})
aliases = os.path.join(inst.dir, "aliases")
tap.write(aliases, "postmaster root\n")
inst.set(alias_maps="texthash:" + aliases)
os.makedirs(os.path.join(inst.dir, "queue", "pid"))
sock_path = os.path.join(inst.dir, "queue", "public", "lookup")
port = inst.listen()

ACCEPT = ["root", "nobody@localhost", "root@example.com", "root@[127.0.0.1]"]
# RCPT TO:<postmaster> (unqualified) is taken before any lookup, as Postfix
# 3.7 takes it (RFC 5321 4.5.1; t/33-smtpd-seeds-postfix.t): with the
# service down too
REJECT = ["a", "a@", "a@[127.0.0.1]", "no-such-user@example.com"]


def start_service():
    p = tap.start([tap.prog("postern-lookup"), "-c", inst.dir])
    for _ in range(200):
        if os.path.exists(sock_path) and os.path.exists(os.path.join(inst.dir, "queue", "pid", "lookup.pid")):
            break
        time.sleep(0.02)
    return p


def rcpt_session(rcpt, c=None):
    """RCPT in a session of its own; the reply, and whether QUIT still works."""
    own = c is None
    if own:
        c = smtpdtest.Client(port)
        c.reply()
        c.cmd("HELO client.example.org")
        c.cmd("MAIL FROM:<sender@example.org>")
    reply = c.cmd(f"RCPT TO:<{rcpt}>")
    quit_ok = True
    if own:
        quit_ok = (c.cmd("QUIT") or "").startswith("221")
        c.close()
    return reply or "(connection dropped)", quit_ok


def check_all(expect_accept, expect_reject, label):
    for rcpt in ACCEPT:
        reply, quit_ok = rcpt_session(rcpt)
        tap.ok(reply.startswith(expect_accept) and quit_ok, f"{label}: RCPT TO:<{rcpt}> -> {reply[:60]}")
    for rcpt in REJECT:
        reply, quit_ok = rcpt_session(rcpt)
        tap.ok(reply.startswith(expect_reject) and quit_ok, f"{label}: RCPT TO:<{rcpt}> -> {reply[:60]}")


# the service down: try again, never a crash, never 5xx
check_all("451 4.3.0", "451 4.3.0", "service down")
reply, quit_ok = rcpt_session("postmaster")
tap.ok(reply.startswith("250 2.1.5") and quit_ok, f"service down: RCPT TO:<postmaster> -> {reply[:60]}")
tap.like(inst.log(), r"warning: table proxy:unix:passwd.byname: lookup of \"root\": lookup service \S+: No such file",
         "smtpd logs why it cannot look up")

svc = start_service()
check_all("250 2.1.5", "550 5.1.1", "service up")
tap.unlike(inst.log(), r"signal|segfault", "no smtpd died")

# unix: without proxy: in a static program goes through the service too
# (and counts as listed in proxy_read_maps)
inst.set(local_recipient_maps="unix:passwd.byname")
tap.like(rcpt_session("nobody@example.com")[0], r"^250 ", "local_recipient_maps = unix:passwd.byname: 250 for a user")
tap.like(rcpt_session("no-such-user@example.com")[0], r"^550 5\.1\.1 ", "550 for an unknown one")
inst.set(local_recipient_maps="proxy:unix:passwd.byname $alias_maps")

# one session across a restart of the service: smtpd connects again
c = smtpdtest.Client(port)
c.reply()
c.cmd("HELO client.example.org")
c.cmd("MAIL FROM:<sender@example.org>")
tap.like(rcpt_session("root", c)[0], r"^250 ", "in one session: 250 while the service runs")
svc.send_signal(signal.SIGTERM)
svc.wait(10)
tap.like(rcpt_session("nobody@localhost", c)[0], r"^451 4\.3\.0 ", "451 4.3.0 while it is stopped")
svc = start_service()
tap.like(rcpt_session("root@example.com", c)[0], r"^250 ", "250 again once it is back (the client reconnects)")
tap.like(c.cmd("QUIT") or "", r"^221", "and the session ends normally")
c.close()

# a name in inet_interfaces: smtpd learns its addresses through the service
inst.set(inet_interfaces="localhost")
tap.like(rcpt_session("root@[127.0.0.1]")[0], r"^250 ",
         "inet_interfaces = localhost: [127.0.0.1] is ours (unix:hosts.byname through the service)")
tap.unlike(inst.log(), r"cannot find the addresses of \"localhost\"", "and no warning about it")
svc.send_signal(signal.SIGTERM)
svc.wait(10)
inst.stop()

# a system-style install, as root: the service as one user (the unit's
# User=postern; here "daemon"), smtpd as another (nobody), the socket in
# public/ (0711) with the unit's mode 0666; with 0600 smtpd is refused and
# answers 451, never 5xx
try:
    daemon_user, nobody = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
except KeyError:
    daemon_user = nobody = None
if os.geteuid() == 0 and daemon_user and nobody and shutil.which("setpriv"):
    sysinst = smtpdtest.Instance({"local_recipient_maps": "proxy:unix:passwd.byname"})
    os.chmod(sysinst.dir, 0o755)
    q = os.path.join(sysinst.dir, "queue")
    os.makedirs(os.path.join(q, "pid"))
    os.chmod(os.path.join(q, "public"), 0o711)
    for sub in ("pid", "public"):
        os.chown(os.path.join(q, sub), daemon_user.pw_uid, daemon_user.pw_gid)
    tap.write(os.path.join(sysinst.dir, "maillog"), "")
    os.chmod(os.path.join(sysinst.dir, "maillog"), 0o666)
    as_user = lambda pw: ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    listener = smtpdtest.Listener(as_user(nobody) + [tap.prog("postern-smtpd"), "-c", sysinst.dir])
    port = listener.port
    sys_sock = os.path.join(q, "public", "lookup")
    for mode, want in (("0666", "250 2.1.5"), ("0600", "451 4.3.0")):
        svc = tap.start(as_user(daemon_user) + [tap.prog("postern-lookup"), "-m", mode, "-c", sysinst.dir])
        for _ in range(200):
            if os.path.exists(sys_sock) and os.path.exists(os.path.join(q, "pid", "lookup.pid")):
                break
            time.sleep(0.02)
        st = os.stat(sys_sock)
        tap.ok(st.st_uid == daemon_user.pw_uid and st.st_mode & 0o777 == int(mode, 8),
               f"the service, as daemon, binds public/lookup with mode {mode}")
        reply, quit_ok = rcpt_session("root@example.com")
        tap.ok(reply.startswith(want) and quit_ok, f"smtpd as nobody, socket {mode}: {reply[:60]}")
        svc.send_signal(signal.SIGTERM)
        svc.wait(10)
    tap.like(sysinst.log(), r"lookup service \S+/public/lookup: Permission denied", "the refusal is logged")
    listener.stop()
else:
    tap.skip("a system-style install needs root, the users daemon and nobody, and setpriv", 5)

# smtpd forked from the zygote of a `postern start` instance
si = Instance()
r = si.start()
tap.like(r.stdout, r"started the lookup service", "a postern start instance runs the lookup service")
m = re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(si.dir, "master.cf")).read(), re.M)
port = int(m.group(1))
for rcpt, want in [("root", "250 2.1.5"), ("nobody", "250 2.1.5"), ("postmaster", "250 2.1.5"),
                   ("a@[127.0.0.1]", "550 5.1.1"), ("nobody@[127.0.0.1]", "250 2.1.5")]:
    reply, quit_ok = rcpt_session(rcpt)
    tap.ok(reply.startswith(want) and quit_ok, f"zygote smtpd: RCPT TO:<{rcpt}> -> {reply[:60]}")
tap.unlike(si.log(), r"signal 11|killed by signal", "no smtpd was killed")
si.stop()
tap.done()
