#!/usr/bin/env python3
# A renewed certificate and a key only root may read, taken on a reload by a
# zygote that has given root up (postern-smtpd(8), TLS; doc/privileges.md,
# "The TLS key").  The instance starts as root: postern-accept -z -u runs
# the zygote as root, which forks its file keeper (lib/util/filekeeper.h)
# and drops to smtpd_user.  The test swaps both files (a new key, a new
# certificate) as certbot does, sends SIGHUP, and sees: the next s_client is
# served the new certificate; a session opened before goes on with the old
# one; the key stayed 0600 root, unreadable by the zygote's user; a broken
# new key (garbage, or one that does not match) leaves the old pair in use,
# with Postfix's warning in the log.  When the zygote crashes, the one
# postern-accept starts (as smtpd_user: it gave root up) reads the key
# through the first zygote's keeper (issue 11).
import os
import re
import signal
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import ROOT_USERS, new_instance

tap.require(["postern", "postern-smtpd", "postern-accept"], tools=["openssl"])
if os.geteuid() != 0:
    # make check passes for a normal user too: the root-only parts say so
    tap.skip_all("the instance starts as root here (a root-only key): needs root")

tmp = tap.tempdir()
os.chmod(tmp, 0o755)
key = os.path.join(tmp, "key.pem")
cert = os.path.join(tmp, "cert.pem")


def make_pair(subject, key_path, cert_path):
    r = tap.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj", subject])
    tap.is_(r.returncode, 0, f"openssl req makes a key and the certificate {subject}") or tap.diag(r.stderr)
    os.chmod(key_path, 0o600)
    os.chown(key_path, 0, 0)


make_pair("/CN=first.example", key, cert)

inst = new_instance("--domain", "example.com")
port = int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read(), re.M).group(1))
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\nsmtpd_tls_security_level = may\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start (as root)") or tap.diag(r.stdout + r.stderr)


def s_client(*args):
    r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
                 "-servername", "localhost", "-ign_eof"] + list(args), input="QUIT\n", timeout=60)
    return r.stdout + r.stderr



out = s_client()
tap.like(out, r"subject=CN ?= ?first\.example", "the first certificate is served") or tap.diag(inst.log()[-3000:])

accept_pid = int(open(os.path.join(inst.dir, "queue", "pid", f"accept.127.0.0.1:{port}.pid")).read())
zygote = int(open(f"/proc/{accept_pid}/task/{accept_pid}/children").read().split()[0])
smtpd_uid = __import__("pwd").getpwnam(ROOT_USERS["smtpd_user"]).pw_uid


def uid_of(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


def children(pid):
    return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]


# it drops to smtpd_user once it has read main.cf and the key
tap.ok(tap.wait_until(lambda: uid_of(zygote) == smtpd_uid), "the zygote runs as smtpd_user")
keepers = [p for p in children(zygote) if open(f"/proc/{p}/comm").read().strip() == "filekeeper"]
tap.is_(len(keepers), 1, "the zygote has one child before any session: its file keeper")
tap.ok(keepers and uid_of(keepers[0]) == 0, "the file keeper kept root")
fds = os.listdir(f"/proc/{keepers[0]}/fd") if keepers else []
extra = [f for f in fds if int(f) > 2]
tap.ok(len(extra) == 1 and os.readlink(f"/proc/{keepers[0]}/fd/{extra[0]}").startswith("socket:"),
       "the file keeper holds nothing but its socket") or tap.diag(str(fds))

# ---- a session opened before the reload ----
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
rf = raw.makefile("rb")
tap.like(rf.readline().decode(), r"^220 ", "an old session: the greeting")
raw.sendall(b"EHLO old.example\r\n")
while True:
    line = rf.readline().decode()
    if line[3:4] == " ":
        break
raw.sendall(b"STARTTLS\r\n")
tap.like(rf.readline().decode(), r"^220 2\.0\.0", "an old session: STARTTLS")
old = ctx.wrap_socket(raw, server_hostname="localhost")
old_cert = old.getpeercert(binary_form=True)
# the child serving this connection: the one holding the server side of
# it (the zygote's other children wait, pre-forked, for later ones)
client_port = old.getsockname()[1]
ss = tap.run(["ss", "-tnpH", "state", "established", f"( dport = :{client_port} )"], timeout=10).stdout
serving = [int(p) for p in re.findall(r"pid=(\d+)", ss)]
session_pids = [p for p in children(zygote) if p not in keepers and p in serving]
tap.is_(len(session_pids), 1, "the old session is a child of the zygote")
if session_pids:
    # the session never holds the keeper's socket: its descriptors are the
    # connection and what it opened itself, none a SEQPACKET pair's end
    links = [os.readlink(f"/proc/{session_pids[0]}/fd/{f}") for f in os.listdir(f"/proc/{session_pids[0]}/fd")]
    keeper_inodes = {os.readlink(f"/proc/{keepers[0]}/fd/{f}") for f in extra} if keepers else set()
    tap.ok(not (set(links) & keeper_inodes), "the session does not hold the file keeper's socket")

# ---- the renewal: a new key and a new certificate, both swapped in ----
new_key, new_cert = os.path.join(tmp, "new-key.pem"), os.path.join(tmp, "new-cert.pem")
make_pair("/CN=renewed.example", new_key, new_cert)
os.rename(new_key, key)
os.rename(new_cert, cert)
st = os.stat(key)
tap.ok(st.st_uid == 0 and (st.st_mode & 0o077) == 0, "the new key is 0600 root")
log_before = len(inst.log())
r = inst.postern("reload")
tap.is_(r.returncode, 0, "postern reload") or tap.diag(r.stdout + r.stderr)
tap.like(r.stdout, r"reloading SMTP on 127\.0\.0\.1:%d \(postern-accept pid %d\)" % (port, accept_pid),
         "it signals the listener's postern-accept")
tap.ok(tap.wait_until(lambda: "TLS certificates and keys read again" in inst.log()[log_before:]),
       "the zygote (smtpd_user) read the root-only key again") or tap.diag(inst.log()[-2000:])
tap.unlike(inst.log()[log_before:], r"TLS reload failed|cannot get private key", "no failure logged")
out = s_client()
tap.like(out, r"subject=CN ?= ?renewed\.example", "a new s_client sees the renewed certificate") \
    or tap.diag(out[:1500])
tap.ok(os.path.exists(f"/proc/{zygote}") and children(accept_pid) == [zygote],
       "nothing was restarted: the same zygote")

# the old session is unaffected: same certificate, still talking
tap.is_(old.getpeercert(binary_form=True), old_cert, "the old session keeps the certificate it had")
old.sendall(b"EHLO old.example\r\n")
of = old.makefile("rb")
reply = b""
while True:
    line = of.readline()
    reply += line
    if not line or line[3:4] == b" ":
        break
tap.like(reply.decode(), r"^250-", "the old session goes on after the reload (EHLO over TLS)")
old.sendall(b"QUIT\r\n")
tap.like(of.readline().decode(), r"^221 ", "and ends normally")
old.close()

# ---- a broken key: the pair read before stays in use ----
tap.write(key, "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n", mode=0o600)
log_before = len(inst.log())
os.kill(accept_pid, signal.SIGHUP)
tap.ok(tap.wait_until(lambda: "TLS reload failed: still serving the certificates read before"
                      in inst.log()[log_before:]), "a broken key: the reload fails and says so")
tap.like(inst.log()[log_before:], r"cannot get private key from file \"" + re.escape(key) + '"',
         "with Postfix's warning naming the key file")
out = s_client()
tap.like(out, r"subject=CN ?= ?renewed\.example", "the renewed pair is still served")

# a valid key that does not belong to the certificate
other_key, other_cert = os.path.join(tmp, "other-key.pem"), os.path.join(tmp, "other-cert.pem")
make_pair("/CN=other.example", other_key, other_cert)
os.rename(other_key, key)
log_before = len(inst.log())
os.kill(accept_pid, signal.SIGHUP)
tap.ok(tap.wait_until(lambda: "TLS reload failed" in inst.log()[log_before:]), "a key of another certificate: refused")
tap.like(inst.log()[log_before:], r"cannot get private key from file .*\n.*key values mismatch",
         "and logged as such (OpenSSL's reason after Postfix's warning)")
out = s_client()
tap.like(out, r"subject=CN ?= ?renewed\.example", "the renewed pair is still served")
tap.like(out, r"Verify return code|Verification", "and the handshake completes") or tap.diag(out[-800:])

# ---- the zygote crashes: the one postern-accept starts uses the same keeper ----
third_key, third_cert = os.path.join(tmp, "third-key.pem"), os.path.join(tmp, "third-cert.pem")
make_pair("/CN=third.example", third_key, third_cert)
os.rename(third_key, key)
os.rename(third_cert, cert)
log_before = len(inst.log())
os.kill(zygote, signal.SIGKILL)


out = s_client()
tap.like(out, r"subject=CN ?= ?third\.example",
         "the next STARTTLS client right after the crash gets a handshake with the root-only key "
         "(a session started on its own while the new zygote waits out its backoff reads it "
         "through the keeper too)") or tap.diag(out[-1500:] + inst.log()[log_before:][-2000:])


def new_zygote():
    started = re.findall(r"zygote \S+ started as pid (\d+)", inst.log()[log_before:])
    return int(started[-1]) if started else 0


tap.ok(tap.wait_until(lambda: new_zygote() and uid_of(new_zygote()) == smtpd_uid, 30),
       "SIGKILL of the zygote: postern-accept (no longer root) starts a new one, as smtpd_user") \
    or tap.diag(inst.log()[log_before:][-2000:])
tap.ok(keepers and os.path.exists(f"/proc/{keepers[0]}"), "the first zygote's file keeper lives on")
tap.ok(tap.wait_until(lambda: len([p for p in children(new_zygote())
                                   if open(f"/proc/{p}/comm").read().strip() == "postern-smtpd"]) == 2, 15),
       "the new zygote has its children waiting")
out = s_client()
tap.like(out, r"subject=CN ?= ?third\.example",
         "a STARTTLS client served by the new zygote's child gets a handshake with the root-only "
         "key, read by the new zygote through the keeper") or tap.diag(out[-1500:] + inst.log()[log_before:][-2000:])
tap.unlike(inst.log()[log_before:], r"cannot get private key|454 |TLS not available",
           "no key error after the restart")
st = os.stat(key)
tap.ok(st.st_uid == 0 and (st.st_mode & 0o077) == 0, "the key is still 0600 root")

r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.ok(tap.wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in keepers)),
       "the file keeper ended with postern-accept and its zygote")

# the keeper's safe-open rule holds from the start (doc/privileges.md, "How
# the keeper opens a file"): a certificate in a directory smtpd's user may
# write is refused at start, and TLS is off, logged
unsafe = os.path.join(tmp, "unsafe")
os.mkdir(unsafe)
os.chown(unsafe, smtpd_uid, 0)
make_pair("/CN=unsafe.example", os.path.join(unsafe, "key.pem"), os.path.join(unsafe, "cert.pem"))
inst2 = new_instance("--domain", "example.com")
port = int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst2.dir, "master.cf")).read(), re.M).group(1))
with open(os.path.join(inst2.dir, "main.cf"), "a") as f:
    f.write(f"smtpd_tls_cert_file = {unsafe}/cert.pem\nsmtpd_tls_key_file = {unsafe}/key.pem\n"
            "smtpd_tls_security_level = may\n")
r = inst2.start()
tap.is_(r.returncode, 0, "an instance whose certificate is in a directory smtpd_user owns starts") \
    or tap.diag(r.stdout + r.stderr)
tap.ok(tap.wait_until(lambda: "TLS disabled" in inst2.log(), 30), "(its zygote has tried)")
tap.like(inst2.log(), r'warning: cannot get certificate from file "%s/cert\.pem": Operation not permitted\n'
         r'(?:.*\n)*.*warning: TLS disabled: STARTTLS is answered with 454 4\.7\.0' % re.escape(unsafe),
         "the keeper refuses it, and TLS is off from the start, logged") or tap.diag(inst2.log()[-2000:])
out = s_client()
tap.unlike(out, r"subject=CN ?= ?unsafe\.example", "no client gets a handshake with it") or tap.diag(out[-1000:])
r = inst2.stop()
tap.is_(r.returncode, 0, "postern stop")
tap.done()
