#!/usr/bin/env python3
# Submission the way seeds 000 and 001 set it up, with real clients: a
# self-contained instance whose master.cf has three smtpd services, as
# Postfix's master.cf writes them (the ports as host:port service names):
#   25-style   STARTTLS may, no AUTH (main.cf)
#   587-style  -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes
#              -o smtpd_client_restrictions=permit_sasl_authenticated,reject
#   465-style  -o smtpd_tls_wrappermode=yes and the same AUTH overrides
# `postern start` serves each on its own port with its -o overrides.  The
# passwords are checked by a real saslauthd (-a sasldb), started here, with
# postern-auth's libsasl2 told `pwcheck_method: saslauthd` and
# `saslauthd_path:` its mux socket, as seed 001 configures Cyrus SASL.
# saslauthd's sasldb path is compiled in (/etc/sasldb2, no option changes
# it): it runs in a private mount namespace where the test's own database
# is bind-mounted on that name, so the system's /etc is never touched.
# The mail user agent is msmtp: STARTTLS + AUTH PLAIN on the 587-style
# port, TLS on connect on the 465-style one, and without TLS refused with
# Postfix 3.7's replies (checked against the real Postfix).
import base64
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import ROOT_USERS, new_instance
from smtpdtest import Client

tap.require(["postern", "postern-smtpd", "postern-accept", "postern-auth"],
            tools=["msmtp", "saslauthd", "saslpasswd2", "openssl", "unshare", "testsaslauthd"])

tmp = tap.tempdir()
os.chmod(tmp, 0o755)
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
r = tap.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
tap.is_(r.returncode, 0, "openssl req makes the server certificate") or tap.diag(r.stderr)
os.chmod(key, 0o600)        # root's: the zygote reads it before it drops privileges

# ---- saslauthd -a sasldb, in its own mount namespace ----
sasldb = os.path.join(tmp, "sasldb2")
for user, password in (("alice", "alice-secret"), ("bob", "bob-secret")):
    p = subprocess.run(["saslpasswd2", "-p", "-c", "-f", sasldb, user], input=password.encode(),
                       capture_output=True)
    tap.is_(p.returncode, 0, f"saslpasswd2 makes {user}") or tap.diag(p.stderr.decode())
run_dir = os.path.join(tmp, "saslauthd")
os.mkdir(run_dir)
os.chmod(run_dir, 0o755)
mux = os.path.join(run_dir, "mux")
# not root: a user namespace maps us to root inside, for the bind mount
unshare = tap.unshare_mount() or tap.done()
saslauthd = tap.start(unshare + ["sh", "-c", 'mount --bind "$1" /etc/sasldb2 && exec saslauthd -d -a sasldb -n 2 -m "$2"',
                                 "sh", sasldb, run_dir],
                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "saslauthd.log"), "w"),
                      start_new_session=True)     # at SIGTERM, saslauthd signals its process group
tap.ok(tap.wait_until(lambda: os.path.exists(mux)), "saslauthd listens on its mux socket in the test's directory") \
    or tap.diag(open(os.path.join(tmp, "saslauthd.log")).read())
r = tap.run(["testsaslauthd", "-u", "alice", "-p", "alice-secret", "-s", "smtp", "-f", mux])
tap.like(r.stdout, r'OK "Success\."', "testsaslauthd: saslauthd reads the test's sasldb") or tap.diag(r.stdout + r.stderr)

sasl_conf = os.path.join(tmp, "sasl")
tap.write(os.path.join(sasl_conf, "smtpd.conf"),
          f"pwcheck_method: saslauthd\nsaslauthd_path: {mux}\nmech_list: PLAIN LOGIN\n")

# ---- the instance and its master.cf ----
inst = new_instance("--domain", "example.com")
m = re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read(), re.M)
port25 = int(m.group(1))
port587, port465, port_limited = tap.free_port(), tap.free_port(), tap.free_port()
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"""
syslog_name = postfix
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_sasl_type = cyrus
cyrus_sasl_config_path = {sasl_conf}
smtpd_sasl_security_options = noanonymous
smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination
""")
with open(os.path.join(inst.dir, "master.cf"), "a") as f:
    f.write(f"""
127.0.0.1:{port587} inet n       -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
127.0.0.1:{port465} inet n       -       n       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
127.0.0.1:{port_limited} inet n       -       n       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_mechanism_filter=login
  -o smtpd_client_auth_rate_limit=3
  -o smtpd_client_event_limit_exceptions=
""")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stdout + r.stderr)
for port in (port25, port587, port465, port_limited):
    tap.like(r.stdout, rf"SMTP on 127\.0\.0\.1:{port} ", f"postern start listens on 127.0.0.1:{port}")
r = inst.postern("status")
tap.is_(len(re.findall(r"smtp: listening on", r.stdout)), 4, "postern status: four smtpd listeners") \
    or tap.diag(r.stdout)


def msmtp(port, *args, sender="alice@example.com", rcpt="alice@example.com", subject="hello"):
    message = f"From: {sender}\nTo: {rcpt}\nSubject: {subject}\n\nsent by msmtp\n"
    p = subprocess.run(["msmtp", "--file=/dev/null", "--host=127.0.0.1", f"--port={port}",
                        "--domain=client.example.com", f"--from={sender}",
                        f"--tls-trust-file={cert}", "--timeout=20"] + list(args) + [rcpt],
                       input=message.encode(), capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def mail_with(subject):
    return [m for m in inst.delivered("alice") if f"Subject: {subject}".encode() in m]


# ---- 587: STARTTLS, then AUTH PLAIN, as a mail user agent submits ----
code, out = msmtp(port587, "--tls=on", "--tls-starttls=on", "--auth=plain", "--user=alice",
                  "--passwordeval=echo alice-secret", subject="over 587")
tap.is_(code, 0, "msmtp: STARTTLS and AUTH PLAIN on the submission port") or tap.diag(out)
got = tap.wait_until(lambda: mail_with("over 587")) and mail_with("over 587")
tap.ok(got, "the message submitted on 587 is delivered") or tap.diag(inst.log()[-3000:])
text = got[0].decode(errors="replace") if got else ""
tap.like(text, r"\(using TLSv1\.[23] with cipher ", "its Received header says TLS was used")
tap.like(text, r"with ESMTPSA\n", "and that the sender authenticated (ESMTPSA)")
tap.like(inst.log(), r"postfix/smtpd\[\d+\]: \w+: client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice",
         "logged with sasl_method=PLAIN, sasl_username=alice")
code, out = msmtp(port587, "--tls=on", "--tls-starttls=on", "--auth=login", "--user=alice",
                  "--passwordeval=echo alice-secret", subject="login 587")
tap.is_(code, 0, "msmtp: AUTH LOGIN through saslauthd too") or tap.diag(out)
code, out = msmtp(port587, "--tls=on", "--tls-starttls=on", "--auth=plain", "--user=alice",
                  "--passwordeval=echo wrong", subject="wrong")
tap.ok(code != 0 and "535 5.7.8 Error: authentication failed: authentication failure" in out,
       "saslauthd says no to a wrong password: 535 5.7.8") or tap.diag(out)
tap.like(inst.log(), r"warning: localhost\[127\.0\.0\.1\]: SASL PLAIN authentication failed: authentication failure",
         "and the failure is logged as Postfix logs it")
code, out = msmtp(port587, "--tls=on", "--tls-starttls=on", "--auth=off", subject="anonymous")
tap.ok(code != 0 and "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied" in out,
       "under TLS but not logged in: smtpd_client_restrictions = permit_sasl_authenticated, reject") or tap.diag(out)

# ---- 587 without TLS: refused, as Postfix refuses it ----
code, out = msmtp(port587, "--tls=off", "--auth=off", subject="plain")
tap.ok(code != 0 and "530 5.7.0 Must issue a STARTTLS command first" in out,
       "msmtp without TLS: 530 5.7.0 Must issue a STARTTLS command first") or tap.diag(out)
code, out = msmtp(port587, "--tls=off", "--auth=plain", "--user=alice", "--passwordeval=echo alice-secret",
                  subject="plain auth")
tap.ok(code != 0 and re.search(r"does not support authentication", out),
       "msmtp without TLS finds no AUTH to send a password to") or tap.diag(out)
PLAIN = "AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode()


def clear_session(port, what):
    """EHLO in the clear: STARTTLS offered, AUTH not; then AUTH PLAIN's reply."""
    c = Client(port)
    c.reply()
    ehlo = c.cmd("EHLO client.example.com")
    tap.like(ehlo, r"(?m)^250-STARTTLS$", f"{what}: EHLO offers STARTTLS")
    tap.unlike(ehlo, r"AUTH", f"{what}: no AUTH offered")
    return c, c.cmd(PLAIN)


c, answer = clear_session(port587, "587 before TLS (encrypt)")
tap.is_(answer, "530 5.7.0 Must issue a STARTTLS command first", "AUTH before STARTTLS: Postfix's 530")
tap.is_(c.cmd("MAIL FROM:<alice@example.com>"), "530 5.7.0 Must issue a STARTTLS command first",
        "MAIL before STARTTLS: 530")
c.cmd("QUIT")
c.close()

# ---- 465: TLS from the first byte ----
code, out = msmtp(port465, "--tls=on", "--tls-starttls=off", "--auth=plain", "--user=bob",
                  "--passwordeval=echo bob-secret", sender="bob@example.com", subject="over 465")
tap.is_(code, 0, "msmtp: TLS on connect and AUTH PLAIN on the wrapper-mode port") or tap.diag(out)
got = tap.wait_until(lambda: mail_with("over 465")) and mail_with("over 465")
tap.ok(got and b"with ESMTPSA\n" in got[0], "the message submitted on 465 is delivered, ESMTPSA") \
    or tap.diag(inst.log()[-3000:])
code, out = msmtp(port465, "--tls=off", "--auth=off", "--timeout=5", subject="plain 465")
tap.ok(code != 0, "msmtp without TLS on the wrapper-mode port gets no SMTP greeting") or tap.diag(out)

# ---- 25: STARTTLS may, and no AUTH (main.cf leaves it off) ----
c, answer = clear_session(port25, "25 (smtpd_sasl_auth_enable = no)")
tap.is_(answer, "503 5.5.1 Error: authentication not enabled", "25: AUTH is not enabled")
tap.is_(c.cmd("MAIL FROM:<someone@elsewhere.example>"), "250 2.1.0 Ok", "25: mail from anyone")
tap.like(c.cmd("RCPT TO:<alice@example.com>"), r"^250 ", "25: to a local mailbox")
c.cmd("QUIT")
c.close()

# ---- smtpd_sasl_mechanism_filter and smtpd_client_auth_rate_limit ----
import ssl
context = ssl.create_default_context(cafile=cert)


def tls_client(p):
    c = Client(p)
    c.sock = context.wrap_socket(c.sock, server_hostname="localhost")
    c.reply()
    return c


c = tls_client(port_limited)
tap.like(c.cmd("EHLO client.example.com"), r"(?m)^250-AUTH LOGIN$",
         "smtpd_sasl_mechanism_filter = login: EHLO names LOGIN only")
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode()),
        "535 5.7.8 Error: authentication failed: authentication failure",
        "the filter only changes what is announced: PLAIN still reaches the server (as Postfix)")
tap.is_(c.cmd(PLAIN), "235 2.7.0 Authentication successful", "AUTH 2 of 3")
c.cmd("QUIT")
c.close()
c = tls_client(port_limited)        # another process of the service
c.cmd("EHLO client.example.com")
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode()),
        "535 5.7.8 Error: authentication failed: authentication failure", "AUTH 3 of 3, in another session")
tap.is_(c.cmd(PLAIN), "450 4.7.1 Error: too many AUTH commands from 127.0.0.1",
        "smtpd_client_auth_rate_limit = 3: the fourth AUTH gets Postfix's 450, counted across sessions")
c.cmd("QUIT")
c.close()
tap.like(inst.log(), r"warning: AUTH command rate limit exceeded: 4 from localhost\[127\.0\.0\.1\] for service ",
         "logged as Postfix logs it")
c = tls_client(port465)
c.cmd("EHLO client.example.com")
tap.is_(c.cmd(PLAIN), "235 2.7.0 Authentication successful", "another service counts for itself (no limit there)")
c.cmd("QUIT")
c.close()

r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.is_(len(re.findall(r"stopped SMTP on", r.stdout)), 4, "postern stop stops the four listeners") \
    or tap.diag(r.stdout)
tap.stop(saslauthd)
tap.done()
