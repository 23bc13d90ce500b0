#!/usr/bin/env python3
# SMTP AUTH end to end: a self-contained instance whose `postern start`
# runs the auth service (postern-auth, Cyrus libsasl2) beside the SMTP
# listener; an auxprop sasldb made by saslpasswd2 in a temporary
# directory; swaks (PLAIN, LOGIN, CRAM-MD5) and Python's smtplib as the
# clients.  Seed 001's setup: smtpd_sender_login_maps as its pcre map,
# reject_sender_login_mismatch, permit_sasl_authenticated before
# reject_unauth_destination.  ANONYMOUS and plaintext mechanisms where
# forbidden are refused; failures are logged as Postfix logs them and
# fail2ban's stock postfix-sasl filter finds them.  Then smtpd_sasl_type =
# dovecot against a Dovecot auth server the test starts in its own
# directory (passwd-file), never the system's.
import atexit
import base64
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "logs"))
import logtools
import tap
from cyrussasl import sasl_directory
from dovecotauth import DovecotAuth
from instance import ROOT_USERS, kill_instance_daemon, root_adopt, root_init_options
from smtpdtest import Client, Listener, wait_for

NEEDED = ["postern", "postern-smtpd", "postern-auth", "postern-rewrite", "postern-queue",
          "postern-qmgr", "postern-virtual"]
missing = [p for p in NEEDED if not os.access(tap.prog(p), os.X_OK)]
tools = [t for t in ("saslpasswd2", "swaks", "fail2ban-regex") if not shutil.which(t)]
if missing or tools:
    # ./deps installs sasl2-bin, swaks and fail2ban: a missing one is a failure
    tap.ok(False, "missing: " + " ".join(missing + tools))
    tap.done()

parent = tap.tempdir()
os.chmod(parent, 0o755)
inst = os.path.join(parent, "inst")
smtp_port = tap.free_port()
r = tap.run(["postern", "init", inst, "--domain", "example.com", "--port", str(smtp_port)]
            + root_init_options())
atexit.register(kill_instance_daemon, inst)     # a failing run leaves no daemon behind
if not tap.is_(r.returncode, 0, "postern init"):
    tap.diag(r.stderr)
    tap.done()

# the password database and libsasl2's smtpd.conf (cyrus_sasl_config_path):
# alice and bob in the default realm (the host name, as for Postfix without
# smtpd_sasl_local_domain); carol in realm example.com.  ANONYMOUS is in
# mech_list on purpose: smtpd_sasl_security_options must keep it out
sasl = sasl_directory(parent, [("alice", None, "alice-secret"), ("bob", None, "bob-secret"),
                               ("carol", "example.com", "carol-secret")],
                      "PLAIN LOGIN CRAM-MD5 ANONYMOUS")
root_adopt(inst)
with open(os.path.join(parent, "login_maps.pcre"), "w") as f:
    f.write("/^(.*)@example.com$/ ${1}\n")

with open(os.path.join(inst, "main.cf"), "a") as f:
    f.write(f"""
syslog_name = postfix
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_security_options = noanonymous
cyrus_sasl_config_path = {sasl}
broken_sasl_auth_clients = yes
smtpd_sasl_authenticated_header = yes
smtpd_sender_login_maps = pcre:{parent}/login_maps.pcre
smtpd_sender_restrictions = reject_non_fqdn_sender, reject_sender_login_mismatch, permit
smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination, permit
""")
r = tap.run(["postern", "start", "-c", inst])
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
tap.like(r.stdout, r"auth service", "postern start starts the auth service")
log_path = os.path.join(inst, "maillog")
auth_socket = os.path.join(inst, "queue", "public", "auth")
if os.geteuid() == 0:
    import grp
    import pwd
    import stat
    st = os.stat(auth_socket)
    smtpd_gid = pwd.getpwnam(ROOT_USERS["smtpd_user"]).pw_gid
    tap.is_((stat.S_IMODE(st.st_mode), st.st_gid), (0o660, smtpd_gid),
            "as root: the auth socket is 0660 in smtpd_user's group") or tap.diag(grp.getgrgid(st.st_gid).gr_name)
    pid = int(open(os.path.join(inst, "queue", "pid", "auth.pid")).read())
    uid = [int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("Uid:")][0]
    tap.is_(uid, pwd.getpwnam(ROOT_USERS["mail_owner"]).pw_uid, "as root: the auth service runs as mail_owner")
else:
    tap.is_(os.stat(auth_socket).st_mode & 0o777, 0o600, "the auth socket is the user's own (0600)")


def log():
    try:
        return open(log_path, errors="replace").read()
    except OSError:
        return ""


def swaks(*args):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(smtp_port),
                        "--helo", "client.example.com", "--timeout", "20"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def ehlo(port=smtp_port):
    c = Client(port)
    c.reply()
    return c, c.cmd("EHLO client.example.com")


# ---- EHLO and mechanisms ----
c, text = ehlo()
tap.like(text, r"(?m)^250-AUTH PLAIN LOGIN CRAM-MD5$", "EHLO offers AUTH with the mechanisms of mech_list")
tap.like(text, r"(?m)^250-AUTH=PLAIN LOGIN CRAM-MD5$", "broken_sasl_auth_clients: the AUTH= line too")
tap.unlike(text, r"ANONYMOUS", "noanonymous: ANONYMOUS is not offered though mech_list names it")
tap.is_(c.cmd("AUTH ANONYMOUS " + base64.b64encode(b"x").decode()), "535 5.7.8 Error: authentication failed: no mechanism available",
        "AUTH ANONYMOUS is refused (Postfix's words: the library has no such mechanism for us)")
tap.is_(c.cmd("AUTH"), "501 5.5.4 Syntax: AUTH mechanism", "AUTH without a mechanism")
tap.is_(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6", "AUTH LOGIN asks for the user name")
tap.is_(c.cmd("*"), "501 5.7.0 Authentication aborted", "a client may abort the exchange with *")
# seed 001: the map names an owner for me@example.com, and we are not logged in
tap.is_(c.cmd("MAIL FROM:<me@example.com>"), "250 2.1.0 Ok", "MAIL (smtpd_delay_reject)")
tap.is_(c.cmd("RCPT TO:<alice@example.com>"), "553 5.7.1 <me@example.com>: Sender address rejected: not logged in",
        "seed 001: reject_sender_login_mismatch without AUTH")
c.cmd("RSET")
tap.is_(c.cmd("MAIL FROM:<someone@other.example>"), "250 2.1.0 Ok", "an address the map does not list")
tap.is_(c.cmd("RCPT TO:<friend@elsewhere.example>"), "554 5.7.1 <friend@elsewhere.example>: Relay access denied",
        "unauthenticated: no relaying")
tap.like(c.cmd("RCPT TO:<alice@example.com>"), r"^250 ", "unauthenticated: local mail is accepted")
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode()),
        "503 5.5.1 Error: MAIL transaction in progress", "no AUTH inside a transaction")
c.cmd("RSET")
# PLAIN with the initial response, as seed 001 does with openssl s_client
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode()),
        "235 2.7.0 Authentication successful", "AUTH PLAIN with the right password")
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode()),
        "503 5.5.1 Error: already authenticated", "a second AUTH")
tap.is_(c.cmd("MAIL FROM:<bob@example.com>"), "250 2.1.0 Ok", "MAIL as another user's address")
tap.is_(c.cmd("RCPT TO:<alice@example.com>"), "553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user alice",
        "reject_sender_login_mismatch: not alice's address")
c.cmd("RSET")
tap.is_(c.cmd("MAIL FROM:<alice@example.com> AUTH=<>"), "250 2.1.0 Ok", "MAIL with AUTH=<>")
tap.like(c.cmd("RCPT TO:<friend@elsewhere.example>"), r"^250 ", "permit_sasl_authenticated: the user may relay")
tap.like(c.cmd("RCPT TO:<alice@example.com>"), r"^250 ", "and send to a local mailbox")
c.cmd("DATA")
tap.like(c.cmd("Subject: relayed\r\n\r\nhello\r\n."), r"^250 2\.0\.0 Ok: queued as ", "queued")
c.cmd("QUIT")
c.close()


def delivered(name):
    new = os.path.join(inst, "mail", name, "Maildir", "new")
    try:
        return [open(os.path.join(new, f), "rb").read() for f in sorted(os.listdir(new))]
    except OSError:
        return []


wait_for(lambda: delivered("alice"), 20)
msgs = delivered("alice")
tap.ok(msgs, "the message reached alice's mailbox") or tap.diag(log())
msg = msgs[0].decode(errors="replace") if msgs else ""
tap.like(msg, r"\(Authenticated sender: alice\)\n\tby localhost \(postern\) with ESMTPA",
         "smtpd_sasl_authenticated_header, and the protocol is ESMTPA")
tap.ok(wait_for(lambda: re.search(r"postfix/smtpd\[\d+\]: \w+: client=\S+\[127\.0\.0\.1\], sasl_method=PLAIN, "
                                  r"sasl_username=alice$", log(), re.M)),
       "logged: client=..., sasl_method=PLAIN, sasl_username=alice")

# ---- real clients ----
code, out = swaks("--to", "alice@example.com", "--from", "alice@example.com",
                  "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "alice-secret")
tap.ok(code == 0 and "235 2.7.0 Authentication successful" in out, "swaks --auth LOGIN") or tap.diag(out)
code, out = swaks("--to", "alice@example.com", "--from", "bob@example.com",
                  "--auth", "CRAM-MD5", "--auth-user", "bob", "--auth-password", "bob-secret")
tap.ok(code == 0 and "235 2.7.0 Authentication successful" in out, "swaks --auth CRAM-MD5 (auxprop)") or tap.diag(out)
code, out = swaks("--to", "alice@example.com", "--from", "alice@example.com",
                  "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wrong")
tap.like(out, r"535 5\.7\.8 Error: authentication failed: authentication failure", "swaks --auth PLAIN, wrong password")
code, out = swaks("--to", "alice@example.com", "--from", "nobody@example.com",
                  "--auth", "LOGIN", "--auth-user", "nobody", "--auth-password", "guess")
tap.like(out, r"535 5\.7\.8 Error: authentication failed: authentication failure",
         "an unknown user gets the same answer as a wrong password")

s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=20)
s.ehlo("client.example.com")
s.login("bob", "bob-secret")
refused = s.sendmail("bob@example.com", ["friend@elsewhere.example"], b"Subject: smtplib\r\n\r\nhi\r\n")
tap.is_(refused, {}, "smtplib login() and a relayed message")
s.quit()
s = smtplib.SMTP("127.0.0.1", smtp_port, timeout=20)
s.ehlo("client.example.com")
try:
    s.login("bob", "not-bob")
    tap.ok(False, "smtplib login() with a wrong password fails")
except smtplib.SMTPAuthenticationError as e:
    tap.is_((e.smtp_code, e.smtp_error.decode()), (535, "5.7.8 Error: authentication failed: authentication failure"),
            "smtplib login() with a wrong password: 535")
s.close()

# ---- the log, as fail2ban reads it ----
tap.ok(wait_for(lambda: re.search(r"postfix/smtpd\[\d+\]: warning: \S+\[127\.0\.0\.1\]: SASL PLAIN authentication "
                                  r"failed: authentication failure, sasl_username=alice$", log(), re.M)),
       "the failure is logged as Postfix 3.7 logs it, with the name tried")
tap.ok(re.search(r"warning: \S+\[127\.0\.0\.1\]: SASL LOGIN authentication failed: authentication failure, "
                 r"sasl_username=nobody$", log(), re.M), "an unknown user's name too, as Postfix")
tap.ok(re.search(r"warning: \S+\[127\.0\.0\.1\]: SASL ANONYMOUS authentication failed: no mechanism available, "
                 r"sasl_username=\(unavailable\)$", log(), re.M), "a mechanism not offered, as Postfix")
report = logtools.fail2ban(log_path, logtools.FAIL2BAN_FILTERS["postfix-sasl"])
counts = logtools.fail2ban_counts(report)
failures = len(re.findall(r"SASL (?:LOGIN|PLAIN|CRAM-MD5|DIGEST-MD5) authentication failed", log()))
tap.ok(failures >= 3, f"{failures} failures in the log")
tap.is_(counts and counts[1], failures, "fail2ban's postfix-sasl filter matches every one") or tap.diag(report)
tap.unlike(log(), r"sasl_username=\S*(secret|guess)", "no password in the log")

# ---- security options: a listener of our own with -o, as master.cf would ----
def listener(*overrides):
    argv = [tap.prog("postern-smtpd"), "-c", inst]
    for o in overrides:
        argv += ["-o", o]
    return Listener(argv)


ALICE_PLAIN = "AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode()
# (overrides, what EHLO must show (None: no AUTH), the answer to AUTH PLAIN, what it proves)
for overrides, offered, answer, what in [
    (["smtpd_sasl_security_options=noanonymous, noplaintext"], "CRAM-MD5",
     "535 5.7.8 Error: authentication failed: no mechanism available",
     "noplaintext: only CRAM-MD5 without TLS, AUTH PLAIN refused"),
    (["smtpd_tls_auth_only=yes"], None, "503 5.5.1 Error: authentication not enabled",
     "smtpd_tls_auth_only: no AUTH before STARTTLS"),
    (["smtpd_sasl_exceptions_networks=127.0.0.0/8"], None, "235 2.7.0 Authentication successful",
     "smtpd_sasl_exceptions_networks: AUTH not offered to the client, but accepted, as Postfix does"),
    (["smtpd_sasl_auth_enable=no"], None, "503 5.5.1 Error: authentication not enabled",
     "smtpd_sasl_auth_enable = no: no AUTH, and AUTH answers 503"),
]:
    lst = listener(*overrides)
    c, text = ehlo(lst.port)
    if offered:
        tap.like(text, r"(?m)^250-AUTH %s$" % offered, what + ": EHLO")
    else:
        tap.unlike(text, r"AUTH", what + ": EHLO")
    tap.is_(c.cmd(ALICE_PLAIN), answer, what + ": AUTH")
    c.close()
    lst.stop()
# ---- under TLS (the instance's self-signed certificate, level may) ----
import ssl
tls_context = ssl.create_default_context()
tls_context.check_hostname = False
tls_context.verify_mode = ssl.CERT_NONE
lst = listener("smtpd_tls_auth_only=yes")
p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(lst.port), "--helo", "client.example.com",
                    "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-secret",
                    "--quit-after", "AUTH"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
out = p.stdout.decode(errors="replace")
tap.ok(re.search(r"(?m)^<~  250-AUTH PLAIN LOGIN CRAM-MD5", out) and "235 2.7.0 Authentication successful" in out,
       "smtpd_tls_auth_only: after STARTTLS AUTH is offered, swaks --tls --auth PLAIN") or tap.diag(out)
lst.stop()
lst = listener("smtpd_sasl_security_options=noanonymous, noplaintext",
               "smtpd_sasl_tls_security_options=noanonymous")
c, text = ehlo(lst.port)
tap.like(text, r"(?m)^250-AUTH CRAM-MD5$", "noplaintext before TLS: CRAM-MD5 only")
c.close()
smtp = smtplib.SMTP("127.0.0.1", lst.port, timeout=20)
smtp.starttls(context=tls_context)
smtp.ehlo("client.example.com")
# (smtplib joins the AUTH and AUTH= lines of broken_sasl_auth_clients)
tap.is_(sorted(set(smtp.esmtp_features.get("auth", "").split())), ["CRAM-MD5", "LOGIN", "PLAIN"],
        "smtpd_sasl_tls_security_options under TLS: the plaintext mechanisms too")
code, answer = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0alice-secret").decode())
tap.is_((code, answer.decode()), (235, "2.7.0 Authentication successful"), "AUTH PLAIN under TLS (smtplib starttls)")
smtp.quit()
lst.stop()
before = len(delivered("alice"))
smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=20)
smtp.starttls(context=tls_context)
smtp.login("alice", "alice-secret")
smtp.sendmail("alice@example.com", ["alice@example.com"], b"Subject: tls and auth\r\n\r\nhi\r\n")
smtp.quit()
wait_for(lambda: len(delivered("alice")) > before, 20)
last = [m.decode(errors="replace") for m in delivered("alice") if b"tls and auth" in m]
tap.like(last[0] if last else "", r"\(Authenticated sender: alice\)\n\tby localhost \(postern\) with ESMTPSA",
         "smtplib starttls() and login(): the Received header says ESMTPSA")

lst = listener("smtpd_sasl_local_domain=example.com")
c, text = ehlo(lst.port)
tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0carol\0carol-secret").decode()),
        "235 2.7.0 Authentication successful", "smtpd_sasl_local_domain: the realm of a bare user name")
tap.is_(c.cmd("MAIL FROM:<carol@example.com>"), "250 2.1.0 Ok", "MAIL")
tap.is_(c.cmd("RCPT TO:<alice@example.com>"),
        "553 5.7.1 <carol@example.com>: Sender address rejected: not owned by user carol@example.com",
        "the login name carries the realm, as with Postfix (the seed's map gives \"carol\")")
c.close()
lst.stop()

# ---- smtpd_sasl_type = dovecot: a Dovecot auth server of the test's own ----
dove = DovecotAuth([("dana", "dana-secret")], "plain login cram-md5 anonymous")
dove_socket = dove.socket
if not dove.installed():
    tap.ok(False, "dovecot is not installed (./deps installs dovecot-core)")
else:
    tap.ok(dove.start(), "Dovecot's auth socket is there")
    dproc = dove.proc
    dovecot_overrides = ("smtpd_sasl_type=dovecot", "smtpd_sasl_path=" + dove_socket)
    lst = listener(*dovecot_overrides)
    c, text = ehlo(lst.port)
    tap.like(text, r"(?m)^250-AUTH PLAIN LOGIN CRAM-MD5$", "dovecot: EHLO offers Dovecot's mechanisms")
    tap.unlike(text, r"ANONYMOUS", "dovecot: noanonymous drops ANONYMOUS")
    tap.is_(c.cmd("AUTH ANONYMOUS"), "535 5.7.8 Error: authentication failed: no mechanism available", "dovecot: AUTH ANONYMOUS refused")
    tap.is_(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0dana\0wrong").decode()),
            "535 5.7.8 Error: authentication failed: authentication failure", "dovecot: a wrong password")
    tap.is_(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6", "dovecot: AUTH LOGIN asks for the user name")
    tap.is_(c.cmd(base64.b64encode(b"dana").decode()), "334 UGFzc3dvcmQ6", "and for the password")
    tap.is_(c.cmd(base64.b64encode(b"dana-secret").decode()), "235 2.7.0 Authentication successful",
            "dovecot: AUTH LOGIN")
    tap.is_(c.cmd("MAIL FROM:<dana@example.com>"), "250 2.1.0 Ok", "MAIL")
    tap.like(c.cmd("RCPT TO:<friend@elsewhere.example>"), r"^250 ", "dovecot: the user may relay")
    c.close()
    lst.stop()
    lst = listener(*dovecot_overrides)
    for mech in ("PLAIN", "CRAM-MD5"):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(lst.port), "--helo", "client.example.com",
                            "--to", "alice@example.com", "--from", "dana@example.com", "--auth", mech,
                            "--auth-user", "dana", "--auth-password", "dana-secret", "--quit-after", "AUTH"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        tap.ok("235 2.7.0 Authentication successful" in out, f"dovecot: swaks --auth {mech}") or tap.diag(out)
    lst.stop()
    lst = listener(*dovecot_overrides, "smtpd_sasl_security_options=noanonymous, noplaintext")
    c, text = ehlo(lst.port)
    tap.like(text, r"(?m)^250-AUTH CRAM-MD5$", "dovecot: noplaintext leaves CRAM-MD5")
    c.close()
    lst.stop()
    tap.ok(wait_for(lambda: re.search(r"warning: \S+\[127\.0\.0\.1\]: SASL PLAIN authentication failed: "
                                      r"authentication failure, sasl_username=dana$", log(), re.M)), "dovecot: the failure is logged")
    dproc.terminate()
    dproc.wait(20)
    tap.is_(dproc.returncode is not None, True, "Dovecot stopped by its pid")

# ---- SIGHUP: the service reads smtpd.conf again (it loaded it before forking) ----
conf_path = os.path.join(sasl, "smtpd.conf")
conf_text = open(conf_path).read().replace("mech_list: PLAIN LOGIN CRAM-MD5 ANONYMOUS", "mech_list: PLAIN LOGIN")
with open(conf_path, "w") as f:
    f.write(conf_text)
auth_pid = int(open(os.path.join(inst, "queue", "pid", "auth.pid")).read())
os.kill(auth_pid, signal.SIGHUP)
tap.ok(wait_for(lambda: "SASL configuration read again" in log(), 10), "SIGHUP: the auth service reads its configuration again")
c, text = ehlo()
tap.like(text, r"(?m)^250-AUTH PLAIN LOGIN$", "the new mech_list is offered")
tap.is_(c.cmd(ALICE_PLAIN), "235 2.7.0 Authentication successful", "and AUTH still works")
c.close()

# ---- the auth service gone: AUTH says try again, nothing else breaks ----
r = tap.run(["postern", "stop", "-c", inst])
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stderr)
lst = listener()
c, text = ehlo(lst.port)
tap.unlike(text, r"AUTH", "without the auth service AUTH is not offered")
tap.like(c.cmd("AUTH PLAIN AGEAYg=="), r"^454 4\.7\.0 Temporary authentication failure", "and AUTH answers 454")
tap.like(c.cmd("MAIL FROM:<x@other.example>"), r"^250 ", "mail without AUTH still works")
c.close()
lst.stop()
tap.done()
