#!/usr/bin/env python3
# The smtp runner logs in to a server that wants AUTH (smtp_sasl_*), as a
# smarthost user's relayhost needs: the server is a second postern
# instance whose smtpd authenticates through its auth service (Cyrus
# libsasl2, a sasldb made by saslpasswd2) and relays for authenticated
# clients only.  Between the two, a recording TCP relay keeps every byte
# the client sent, so the test can say whether a password crossed the wire
# in the clear.  What a user sees: the mail delivered, or deferred/bounced
# with the server's 535 in the log and the bounce; the mechanism the
# security options allow; no password without TLS under noplaintext.
import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import ROOT_USERS, new_instance

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-auth", "postern-qmgr", "postern-bounce"],
            tools=["saslpasswd2"])

# ---- the server: a postern instance that relays only for AUTH users ----
receiver = new_instance("--domain", "direct.test", "-o", "myhostname=receiver.test")
sasl = os.path.join(os.path.dirname(receiver.dir), "sasl")
os.mkdir(sasl)
sasldb = os.path.join(sasl, "sasldb2")
for user, password in (("alice", "alice-secret"), ("bob", "bob-secret")):
    p = subprocess.run(["saslpasswd2", "-p", "-c", "-f", sasldb, "-u", "receiver.test", user],
                       input=password.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tap.is_(p.returncode, 0, f"saslpasswd2 makes {user}") or tap.diag(p.stderr.decode())
mech_file = os.path.join(sasl, "smtpd.conf")


def mech_list(mechs):
    with open(mech_file, "w") as f:
        f.write(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {sasldb}\n"
                f"mech_list: {mechs}\n")
    if os.geteuid() == 0:
        import pwd
        mail = pwd.getpwnam(ROOT_USERS["mail_owner"])
        for path in (sasl, sasldb, mech_file):
            os.chown(path, mail.pw_uid, mail.pw_gid)


def restart_with(mechs):
    """libsasl2 reads mech_list once: the server restarts with the new one."""
    mech_list(mechs)
    receiver.stop()
    r = receiver.start()
    tap.is_(r.returncode, 0, f"the server restarts offering {mechs}") or tap.diag(r.stderr)


mech_list("PLAIN LOGIN CRAM-MD5")
with open(os.path.join(receiver.dir, "main.cf"), "a") as f:
    f.write(f"""
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_security_options = noanonymous
smtpd_sasl_local_domain = receiver.test
cyrus_sasl_config_path = {sasl}
smtpd_relay_restrictions =
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
""")
r = receiver.start()
tap.is_(r.returncode, 0, "the receiving instance starts with its auth service") or tap.diag(r.stderr)


def receiver_port():
    """The port `postern init --port` gave the receiver's smtp service."""
    text = open(os.path.join(receiver.dir, "master.cf")).read()
    m = re.search(r"(?m)^(?:127\.0\.0\.1:)?(\d+)\s+inet\s", text)
    return int(m.group(1))


rport = receiver_port()


# ---- the recording relay between client and server ----
class Recorder:
    def __init__(self, target_port):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.target = target_port
        self.sent = b""             # every byte any client sent
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, False), daemon=True).start()

    def pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_WR if s is dst else socket.SHUT_RD)
            except OSError:
                pass

    def take(self):
        with self.lock:
            out, self.sent = self.sent, b""
        return out


rec = Recorder(rport)
nexthop = f"[127.0.0.1]:{rec.port}"

# ---- the client's configuration: an instance directory (not started) ----
sender = new_instance("--domain", "example.com")
passwords = os.path.join(sender.dir, "sasl_passwd")
tap.write(passwords, f"{nexthop} alice:alice-secret\n"
                     f"bob@example.com bob:bob-secret\n")
secret_b64 = [base64.b64encode(s).decode() for s in (b"\0alice\0alice-secret", b"alice-secret")]


def smtp(*options, rcpt="alice@direct.test", sender_addr="me@example.com", hop=None):
    """postern-smtp from a shell with these -o settings; its output."""
    args = [tap.prog("postern-smtp"), "-c", sender.dir,
            "-o", "smtp_sasl_auth_enable=yes", "-o", f"smtp_sasl_password_maps=texthash:{passwords}",
            "-o", "smtp_tls_loglevel=1"]
    for o in options:
        args += ["-o", o]
    args += ["-H", hop or nexthop, "-f", sender_addr, rcpt]
    r = tap.run(args, input="Subject: sasl\n\nrelayed with AUTH\n")
    return r.stdout + r.stderr


def receiver_log_has(pattern):
    return tap.wait_until(lambda: re.search(pattern, receiver.log()), 20)


# 1. a smarthost with STARTTLS and AUTH: PLAIN under TLS with the common
#    setting smtp_sasl_security_options = noanonymous (mechanism filter: plain)
out = smtp("smtp_tls_security_level=encrypt", "smtp_sasl_security_options=noanonymous",
           "smtp_sasl_mechanism_filter=plain")
tap.like(out, r"alice@direct\.test: dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as", "sent after AUTH PLAIN")
tap.ok(receiver_log_has(r"client=\S+\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice"),
       "the server logged sasl_method=PLAIN, sasl_username=alice")
wire = rec.take()
tap.like(wire.decode("latin-1"), r"STARTTLS\r\n", "the client asked for STARTTLS")
tap.ok(not any(s.encode() in wire for s in secret_b64) and b"AUTH" not in wire,
       "no AUTH and no password in the clear on the wire (they went under TLS)")

# 2. the default options (noplaintext, noanonymous): CRAM-MD5 is chosen,
#    even without TLS, as it sends no password
out = smtp("smtp_tls_security_level=none")
tap.like(out, r"status=sent", "default security options, no TLS: sent")
tap.ok(receiver_log_has(r"sasl_method=CRAM-MD5, sasl_username=alice"), "with CRAM-MD5")
wire = rec.take().decode("latin-1")
tap.like(wire, r"AUTH CRAM-MD5\r\n", "AUTH CRAM-MD5 in the clear (a challenge-response)")
tap.ok(not any(s in wire for s in secret_b64) and "alice-secret" not in wire, "and no password on the wire")

# 3. the server offers PLAIN and LOGIN only: noplaintext keeps the password
#    home without TLS, and the mail waits
restart_with("PLAIN LOGIN")
out = smtp("smtp_tls_security_level=none")
tap.like(out, r"alice@direct\.test: dsn=4\.7\.0, status=deferred \(SASL authentication failed; cannot "
              r"authenticate to server 127\.0\.0\.1\[127\.0\.0\.1\]: no mechanism available\)",
         "plaintext only, without TLS, noplaintext: deferred 4.7.0 as Postfix words it")
tap.like(out, r"warning: SASL authentication failure: No worthy mechs found", "logged as Cyrus logs it for Postfix")
wire = rec.take().decode("latin-1")
tap.ok("AUTH" not in wire and not any(s in wire for s in secret_b64), "no AUTH was sent at all")

# 4. smtp_sasl_tls_security_options allows plaintext under TLS only
tls_only = ("smtp_sasl_security_options=noplaintext, noanonymous", "smtp_sasl_tls_security_options=noanonymous")
out = smtp("smtp_tls_security_level=may", *tls_only)
tap.like(out, r"status=sent", "noplaintext in clear, noanonymous under TLS, STARTTLS offered: sent")
tap.ok(receiver_log_has(r"sasl_method=PLAIN, sasl_username=alice(?!.*sasl_method=PLAIN, sasl_username=alice.*sasl_method)"),
       "with PLAIN under TLS")
tap.ok(b"AUTH" not in rec.take(), "nothing of AUTH in the clear")
out = smtp("smtp_tls_security_level=none", *tls_only)
tap.like(out, r"dsn=4\.7\.0, status=deferred \(SASL authentication failed; cannot authenticate to server "
              r"\S+: no mechanism available\)", "the same without TLS: no password is sent")
tap.ok(b"AUTH" not in rec.take(), "no AUTH on the wire")

# 5. smtp_sasl_mechanism_filter: LOGIN only
out = smtp("smtp_tls_security_level=encrypt", "smtp_sasl_security_options=noanonymous",
           "smtp_sasl_mechanism_filter=login")
tap.like(out, r"status=sent", "mechanism filter login: sent")
tap.ok(receiver_log_has(r"sasl_method=LOGIN, sasl_username=alice"), "with LOGIN")
out = smtp("smtp_tls_security_level=encrypt", "smtp_sasl_security_options=noanonymous",
           "smtp_sasl_mechanism_filter=cram-md5")
tap.like(out, r"dsn=4\.7\.0, status=deferred \(SASL authentication failed: server 127\.0\.0\.1\[127\.0\.0\.1\] "
              r"offered no compatible authentication mechanisms for this type of connection security\)",
         "a filter that leaves nothing: 4.7.0, Postfix's words")
tap.like(out, r"warning: 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ offered no supported AUTH mechanisms: 'PLAIN LOGIN'",
         "and the warning naming what the server offered")
rec.take()

# 6. a wrong password: deferred with the server's 535 (smtp_sasl_auth_soft_bounce)
restart_with("PLAIN LOGIN CRAM-MD5")
plain_tls = ("smtp_tls_security_level=encrypt", "smtp_sasl_security_options=noanonymous")
tap.write(passwords, f"{nexthop} alice:not-her-password\nbob@example.com bob:bob-secret\n")
out = smtp(*plain_tls)
tap.like(out, r"alice@direct\.test: dsn=4\.7\.8, status=deferred \(SASL authentication failed; server "
              r"127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: authentication failed: authentication failure\)",
         "wrong password: deferred 4.7.8 with the server's 535 (smtp_sasl_auth_soft_bounce = yes)")
out = smtp(*plain_tls, "smtp_sasl_auth_soft_bounce=no")
tap.like(out, r"alice@direct\.test: dsn=5\.7\.8, status=bounced \(SASL authentication failed; server "
              r"127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: authentication failed",
         "smtp_sasl_auth_soft_bounce = no: bounced 5.7.8")

# 7. smtp_sender_dependent_authentication: the sender's own entry wins
out = smtp(*plain_tls, "smtp_sender_dependent_authentication=yes", sender_addr="bob@example.com")
tap.like(out, r"status=sent", "sender-dependent: bob's entry")
tap.ok(receiver_log_has(r"sasl_username=bob"), "the server saw bob log in")
out = smtp(*plain_tls, sender_addr="bob@example.com")
tap.like(out, r"dsn=4\.7\.8, status=deferred", "without it, the next hop's (wrong) entry is used")

# 8. no entry for this server: no AUTH, and the server refuses to relay
tap.write(passwords, "other.test alice:alice-secret\n")
rec.take()
out = smtp(*plain_tls)
tap.like(out, r"alice@direct\.test: dsn=5\.7\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 554 5\.7\.1",
         "no password entry: talked as strangers, and the server's refusal bounces")
tap.write(passwords, f"{nexthop} alice:alice-secret\n")

# 9. a setting postern cannot read stops delivery (deferred, never sent without AUTH)
out = smtp(*plain_tls, "smtp_sasl_security_options=noplaintext, nosuchthing")
tap.like(out, r"smtp_sasl_security_options: unknown SASL security option \"nosuchthing\"", "an unknown option is named")
tap.like(out, r"dsn=4\.3\.5, status=deferred \(mail system configuration error\)", "and mail waits")
out = smtp(*plain_tls, "smtp_sasl_password_maps=")
tap.like(out, r"specify a password table via the `smtp_sasl_password_maps' configuration parameter",
         "auth enabled without a table: Postfix's complaint")

# 10. end to end: an instance whose relayhost is the smarthost, with a bounce
#     (the runner reads the table once: the wrong entry is there from the start)
tap.write(passwords, f"{nexthop} alice:alice-secret\nwrong@example.com alice:not-her-password\n")
r = sender.postern("conf", "-e", f"relayhost={nexthop}", "smtp_sasl_auth_enable=yes",
                   "smtp_sender_dependent_authentication=yes",
                   f"smtp_sasl_password_maps=texthash:{passwords}", "smtp_tls_security_level=encrypt",
                   "smtp_sasl_security_options=noanonymous", "smtp_sasl_auth_soft_bounce=no")
tap.is_(r.returncode, 0, "relayhost with AUTH set in main.cf") or tap.diag(r.stderr)
tap.is_(sender.start().returncode, 0, "the sending instance starts")
before = len(receiver.delivered("alice"))
r = sender.sendmail(["-f", "me@example.com", "alice@direct.test"], b"Subject: via smarthost\n\nthrough AUTH\n")
tap.is_(r.returncode, 0, "sendmail")
tap.ok(tap.wait_until(lambda: re.search(r"to=<alice@direct\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent",
                                        sender.log()), 30), "the sender logged status=sent")
got = receiver.wait_for("alice", before + 1, 30)
tap.ok(any(b"through AUTH" in m for m in got[before:]), "the smarthost delivered it to alice")
r = sender.sendmail(["-f", "wrong@example.com", "alice@direct.test"], b"Subject: refused\n\nwrong password\n")
bounces = sender.wait_for("wrong", 1, 30)
text = re.sub(r"\n[ \t]+", " ", bounces[0].decode(errors="replace")) if bounces else ""
tap.like(text, r"<alice@direct\.test>: SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: "
               r"535 5\.7\.8 Error: authentication failed", "the bounce carries the server's 535")
tap.like(text, r"Status: 5\.7\.8", "with Status: 5.7.8")

sender.stop()
receiver.stop()
tap.done()
