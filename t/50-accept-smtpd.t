#!/usr/bin/env python3
# postern-accept in front of the real postern-smtpd: smtplib sessions over
# IPv4 and a unix socket, the client's address reaching smtpd through
# TCPREMOTEIP, the limits answering before smtpd is started, and the
# concurrency of the issue: 200 idle sessions and 50 active ones at once do
# not disturb each other.  Skipped until postern-smtpd is built.
import os
import re
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import smtpdtest  # noqa: E402
import tap  # noqa: E402
from instance import root_adopt, root_init_options  # noqa: E402

ACCEPT = tap.prog("postern-accept")
SMTPD = tap.prog("postern-smtpd")
tap.require(["postern-accept", "postern-smtpd"], tools=["swaks"])
USER = ["-u", "nobody"] if os.geteuid() == 0 else []
IDLE, ACTIVE = 200, 50


instance = smtpdtest.accept_dir
log = smtpdtest.maillog


def wait_for(cond, timeout=10.0):
    return tap.wait_until(cond, timeout)


def start(d, addresses, options=()):
    p = tap.start([ACCEPT, "-c", d] + USER + list(options) + list(addresses) + ["--", SMTPD],
                  stderr=open(os.path.join(d, "stderr"), "w"))
    wait_for(lambda: "listening on" in log(d) or p.poll() is not None)
    return p


# ---- smtplib through postern-accept ----
d = instance()
port = tap.free_port()
sock_path = os.path.join(d, "smtpd.sock")
p = start(d, [f"127.0.0.1:{port}", sock_path])
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        code, text = smtp.ehlo("client.example")
        tap.is_(code, 250, "smtplib through postern-accept: EHLO 250")
        tap.ok(smtp.has_extn("pipelining"), "the EHLO reply lists PIPELINING")
        tap.is_(smtp.noop()[0], 250, "NOOP 250")
except (OSError, smtplib.SMTPException) as e:
    tap.ok(False, f"smtplib session: {e}")
tap.ok(wait_for(lambda: "connect from" in log(d) and "[127.0.0.1]" in log(d)),
       "smtpd logs the client address postern-accept passed (TCPREMOTEIP)")


class UnixSMTP(smtplib.SMTP):
    """smtplib over a unix socket."""
    def _get_socket(self, host, port, timeout):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(host)
        return s


try:
    with UnixSMTP(sock_path, 0, timeout=10) as smtp:
        tap.is_(smtp.ehlo("client.example")[0], 250, "smtplib over postern-accept's unix socket: EHLO 250")
except (OSError, smtplib.SMTPException) as e:
    tap.ok(False, f"unix socket session: {e}")
tap.stop(p)

# ---- the count limit answers before smtpd runs ----
d = instance("smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start(d, [f"127.0.0.1:{port}"])
held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for i in range(2)]
try:
    smtplib.SMTP("127.0.0.1", port, timeout=10)
    tap.ok(False, "the third session is refused")
except smtplib.SMTPConnectError as e:
    tap.is_((e.smtp_code, e.smtp_error.decode()),
            (421, "4.7.0 mx.example Error: too many connections from 127.0.0.1"),
            "the third session from one client gets 421 4.7.0 too many connections")
for s in held:
    tap.is_(s.noop()[0], 250, "the sessions already open are not disturbed")
    s.quit()
tap.stop(p)

# ---- -z: smtpd started once and forked per connection ----
d = instance("smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start(d, [f"127.0.0.1:{port}"], ["-z"])
tap.ok(wait_for(lambda: "zygote" in log(d)), "-z: smtpd is started once, as the zygote")
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        tap.is_(smtp.ehlo("client.example")[0], 250, "-z: a session with a forked smtpd: EHLO 250")
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
            tap.ok(False, "-z: the count limit still applies")
        except smtplib.SMTPConnectError as e:
            tap.is_(e.smtp_code, 421, "-z: the count limit still applies (421)")
except (OSError, smtplib.SMTPException) as e:
    tap.ok(False, f"-z session: {e}")


def session_ok():
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


tap.ok(wait_for(session_ok, 5), "-z: the place is free again once the session has ended")
tap.stop(p)

# ---- 200 idle sessions and 50 active ones ----
d = instance("smtpd_client_connection_count_limit = 0\n")
port = tap.free_port()
p = start(d, [f"127.0.0.1:{port}"], ["-l", str(IDLE + ACTIVE + 10)])
idle = []
for i in range(IDLE):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    idle.append(s)
banners = 0
for s in idle:
    try:
        if s.recv(512).startswith(b"220 "):
            banners += 1
    except OSError:
        pass
tap.is_(banners, IDLE, f"{IDLE} idle sessions each got the 220 banner")

results = []


def active_session(n):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            codes = [smtp.ehlo(f"active{n}.example")[0]]
            for _ in range(5):
                codes.append(smtp.noop()[0])
                codes.append(smtp.rset()[0])
            results.append(all(c == 250 for c in codes))
    except (OSError, smtplib.SMTPException):
        results.append(False)


started = time.time()
threads = [threading.Thread(target=active_session, args=(n,)) for n in range(ACTIVE)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
tap.is_(sum(results), ACTIVE, f"{ACTIVE} active sessions alongside them all complete "
        f"({time.time() - started:.1f}s)")
alive = 0
for s in idle:
    try:
        s.sendall(b"NOOP\r\n")
        if s.recv(512).startswith(b"250"):
            alive += 1
        s.sendall(b"QUIT\r\n")
    except OSError:
        pass
    s.close()
tap.is_(alive, IDLE, "and every idle session still answers NOOP afterwards")
tap.stop(p)

# ---- postern start: the instance listens on its port; swaks delivers ----
top = tap.tempdir()
os.chmod(top, 0o755)     # run by root, the daemons run as other users
inst = os.path.join(top, "inst")
port = tap.free_port()
r = tap.run(["postern", "init", inst, "--port", str(port)] + root_init_options())
tap.is_(r.returncode, 0, "postern init --port N")
root_adopt(inst)
# the programs under test (daemon_directory of the instance is where postern is)
o = ["-o", f"daemon_directory={os.path.dirname(SMTPD)}"]
r = tap.run(["postern", "start", "-c", inst] + o)
tap.like(r.stdout, rf"SMTP on 127\.0\.0\.1:{port} \(postern-accept pid \d+\)",
         "postern start starts postern-accept on the port of master.cf")
r = tap.run(["postern", "status", "-c", inst] + o)
tap.like(r.stdout, rf"^smtp: listening on 127\.0\.0\.1:{port} \(postern-accept pid \d+\)$",
         "postern status shows the listener")
accept_pid = re.search(r"postern-accept pid (\d+)", r.stdout)
zygote = re.search(r"zygote \S+ started as pid (\d+)", log(inst))
tap.ok(accept_pid and zygote and os.path.exists(f"/proc/{zygote.group(1)}")
       and open(f"/proc/{zygote.group(1)}/stat").read().split()[3] == accept_pid.group(1),
       "postern start runs postern-smtpd as a zygote of postern-accept (-z)")
user = "alice"
r = tap.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "bob@localhost",
             "--to", f"{user}@localhost", "--body", "first message over SMTP"], timeout=30)
tap.like(r.stdout, r"<-  250 2\.0\.0 Ok: queued as \w+", "swaks: 250 queued")
new = os.path.join(inst, "mail", user, "Maildir", "new")
if not tap.ok(wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1, 20),
              "the message reaches the Maildir"):
    tap.diag(r.stdout[-1500:])
    tap.diag(log(inst)[-3000:])
r = tap.run(["postern", "stop", "-c", inst] + o)
tap.ok(r.returncode == 0 and f"stopped SMTP on 127.0.0.1:{port}" in r.stdout, "postern stop stops it")
refused = False
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
except ConnectionRefusedError:
    refused = True
tap.ok(refused, "and nothing listens on the port afterwards")
tap.done()
