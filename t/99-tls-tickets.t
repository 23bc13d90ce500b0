#!/usr/bin/env python3
# TLS session resumption across smtpd's per-connection processes, and a
# renewed certificate without a restart.  The sessions of a service are
# forks of one zygote, which holds the session ticket keys (tlsmgr's job in
# Postfix): openssl s_client saves a session (-sess_out) from one process
# and resumes it in another (-sess_in: "Reused"), and -reconnect resumes
# five times in a row.  SIGHUP to postern-accept (passed on to its zygote)
# or to the zygote itself reads the certificate and key again: the next
# connection is served the renewed certificate, and tickets issued before
# still resume (the keys are kept).  smtpd_tls_session_cache_timeout = 0
# turns tickets off, as in Postfix.
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import ROOT_USERS, new_instance

tap.require(["postern", "postern-smtpd", "postern-accept"], tools=["openssl"])

tmp = tap.tempdir()
os.chmod(tmp, 0o755)
key = os.path.join(tmp, "key.pem")
cert = os.path.join(tmp, "cert.pem")


def make_cert(subject, path):
    r = tap.run(["openssl", "req", "-x509", "-key", key, "-out", path, "-days", "2", "-subj", subject])
    tap.is_(r.returncode, 0, f"openssl req makes the certificate {subject}") or tap.diag(r.stderr)


r = tap.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key])
tap.is_(r.returncode, 0, "openssl genpkey makes the key") or tap.diag(r.stderr)
os.chmod(key, 0o600)
# as root, the key stays root's: the zygote's file keeper opens it again
# for the reload (t/99-tls-reload.t)
make_cert("/CN=first.example", cert)

inst = new_instance("--domain", "example.com")
port = int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read(), re.M).group(1))
port_noticket = tap.free_port()
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\nsmtpd_tls_security_level = may\n"
            "smtpd_tls_session_cache_timeout = 3600s\n")
with open(os.path.join(inst.dir, "master.cf"), "a") as f:
    f.write(f"127.0.0.1:{port_noticket} inet n - n - - smtpd\n  -o smtpd_tls_session_cache_timeout=0\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stdout + r.stderr)


def s_client(p, *args):
    r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{p}",
                 "-servername", "localhost", "-ign_eof"] + list(args), input="QUIT\n", timeout=60)
    return r.stdout + r.stderr


sess = os.path.join(tmp, "session.pem")
out = s_client(port, "-sess_out", sess)
tap.like(out, r"(?m)^New, TLSv1\.3", "a full handshake the first time")
tap.like(out, r"subject=CN ?= ?first\.example", "with the first certificate")
tap.ok(os.path.exists(sess) and os.path.getsize(sess) > 0, "s_client saved the session (its ticket)")
out = s_client(port, "-sess_in", sess)
tap.like(out, r"(?m)^Reused, TLSv1\.3", "another smtpd process resumes it (-sess_in: Reused)") or tap.diag(out[-1500:])
out = s_client(port, "-reconnect", "-tls1_2")
tap.is_(len(re.findall(r"(?m)^Reused, TLSv1\.2", out)), 5,
        "-reconnect with TLS 1.2: five resumed handshakes, each in a process of its own") or tap.diag(out[-2000:])
lifetime = re.search(r"TLS session ticket lifetime hint: (\d+)", s_client(port, "-tls1_2"))
tap.is_(lifetime and int(lifetime.group(1)), 3600, "the ticket lifetime is smtpd_tls_session_cache_timeout")

# ---- smtpd_tls_session_cache_timeout = 0: no tickets ----
sess0 = os.path.join(tmp, "session0.pem")
out = s_client(port_noticket, "-sess_out", sess0, "-tls1_2")
tap.unlike(out, r"TLS session ticket:\n", "timeout 0: no session ticket is issued")
out = s_client(port_noticket, "-reconnect", "-tls1_2")
tap.is_(len(re.findall(r"(?m)^Reused,", out)), 0, "timeout 0: nothing resumes")

# ---- a renewed certificate, read on SIGHUP ----
renewed = os.path.join(tmp, "renewed.pem")
make_cert("/CN=renewed.example", renewed)
os.rename(renewed, cert)                        # as certbot and friends replace it
accept_pid = int(open(os.path.join(inst.dir, "queue", "pid",
                                   f"accept.127.0.0.1:{port}.pid")).read())
children = open(f"/proc/{accept_pid}/task/{accept_pid}/children").read().split()
tap.is_(len(children), 1, "postern-accept has one child, the zygote")
zygote = int(children[0]) if children else 0
log_before = len(inst.log())
os.kill(accept_pid, signal.SIGHUP)
tap.ok(tap.wait_until(lambda: "TLS certificates and keys read again" in inst.log()[log_before:]),
       "SIGHUP to postern-accept: its zygote reads the certificate again") or tap.diag(inst.log()[-2000:])
tap.ok(os.path.exists(f"/proc/{zygote}") and open(f"/proc/{accept_pid}/task/{accept_pid}/children").read().split()
       == [str(zygote)], "the same zygote: nothing was restarted")
out = s_client(port)
tap.like(out, r"subject=CN ?= ?renewed\.example", "the next connection gets the renewed certificate") \
    or tap.diag(out[:1500])
out = s_client(port, "-sess_in", sess)
tap.like(out, r"(?m)^Reused, TLSv1\.3", "a session from before the reload still resumes (the ticket keys stay)")

# the zygote itself takes SIGHUP too; a certificate it cannot read leaves the old one
tap.write(cert, "not a certificate\n")
log_before = len(inst.log())
os.kill(zygote, signal.SIGHUP)
tap.ok(tap.wait_until(lambda: "TLS reload failed: still serving the certificates read before" in inst.log()[log_before:]),
       "a broken certificate file: the zygote says so and keeps the one it has")
out = s_client(port)
tap.like(out, r"subject=CN ?= ?renewed\.example", "and goes on serving it")
tap.ok(os.path.exists(f"/proc/{zygote}"), "the zygote is still there")

r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.done()
