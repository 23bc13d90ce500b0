#!/usr/bin/env python3
# STARTTLS and SMTPS in postern-smtpd (OpenSSL), driven by real clients:
# openssl s_client -starttls smtp (seed 001's session), swaks --tls and
# --tls-on-connect, Python's smtplib starttls().  A self-contained instance
# (postern start: smtpd forked from its zygote, which loaded the key) takes
# mail over TLS; smtpd started per connection covers encrypt, wrapper mode
# and the failures.  Postfix 3.7's replies and log lines were read from a
# real Postfix with the same settings.  The certificates are made here.
import os
import re
import smtplib
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Listener, wait_for
from instance import NEEDED, Instance

tap.require(NEEDED, tools=["openssl", "swaks"])



def greeted(port, helo):
    """A raw client past the greeting and EHLO."""
    c = Client(port)
    c.reply()
    c.cmd("EHLO " + helo)
    return c


tmp = tap.tempdir()
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
r = tap.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
tap.is_(r.returncode, 0, "openssl req makes the test certificate") or tap.diag(r.stderr)
os.chmod(key, 0o600)
TLS = ["-o", "smtpd_tls_cert_file=" + cert, "-o", "smtpd_tls_key_file=" + key]

# ---- postern init makes a self-signed certificate (with the library) ----
plain = Instance()
tap.is_(plain.init.returncode, 0, "postern init") or tap.diag(plain.init.stderr)
pkey, pcert = os.path.join(plain.dir, "tls", "key.pem"), os.path.join(plain.dir, "tls", "cert.pem")
tap.is_(oct(os.stat(pkey).st_mode & 0o777) if os.path.exists(pkey) else None, "0o600",
        "init: DIR/tls/key.pem, readable by its owner only")
tap.like(open(os.path.join(plain.dir, "main.cf")).read(),
         r"(?m)^smtpd_tls_security_level = may$", "init: main.cf enables STARTTLS (may)")
r = tap.run(["openssl", "x509", "-in", pcert, "-noout", "-subject", "-ext", "subjectAltName"])
tap.like(r.stdout, r"CN ?= ?localhost(.|\n)*DNS:localhost, IP Address:127\.0\.0\.1", "for localhost and 127.0.0.1")
tap.is_(plain.start().returncode, 0, "postern start")
pport = int(re.search(r"127\.0\.0\.1:(\d+)", open(os.path.join(plain.dir, "master.cf")).read()).group(1))
s = smtplib.SMTP("127.0.0.1", pport, timeout=30)
s.ehlo("init.example")
code, _ = s.starttls(context=ssl.create_default_context(cafile=pcert))
tap.is_(code, 220, "STARTTLS works out of the box, the certificate verifies against itself")
s.quit()
# the children of one zygote share its ticket key: a session resumes in
# another child (the EHLO reply comes after the tickets, so once it is
# read the client holds one)
resume_context = ssl.create_default_context(cafile=pcert)


def tls_session(port, session=None):
    c = greeted(port, "resume.example")
    c.cmd("STARTTLS")
    c.sock = resume_context.wrap_socket(c.sock, server_hostname="localhost", session=session)
    c.cmd("EHLO resume.example")
    result = (c.sock.session, c.sock.session_reused)
    c.cmd("QUIT")
    c.close()
    return result


first, reused = tls_session(pport)
tap.ok(first is not None and not reused, "a full handshake; the client keeps the session ticket")
_, reused = tls_session(pport, first)
tap.ok(reused, "the next connection, another process, resumes it")
plain.stop()

# ---- a whole instance with smtpd_tls_security_level = may ----
inst = Instance("--domain", "example.com", "-o", "smtpd_tls_security_level=may",
                "-o", "smtpd_tls_loglevel=1", "-o", "smtpd_tls_received_header=yes", *TLS)
tap.is_(inst.init.returncode, 0, "postern init with the TLS settings") or tap.diag(inst.init.stderr)
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
port = int(re.search(r"127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read()).group(1))
log_path = os.path.join(inst.dir, "maillog")


def log():
    return open(log_path).read() if os.path.exists(log_path) else ""


def delivered(name):
    new = os.path.join(inst.dir, "mail", name, "Maildir", "new")
    if not os.path.isdir(new):
        return []
    return [open(os.path.join(new, f), "rb").read().decode("utf-8", "replace") for f in sorted(os.listdir(new))]


c = Client(port)
c.reply()
tap.like(c.cmd("EHLO client.example"), r"(?m)^250-ETRN\n250-STARTTLS\n250-ENHANCEDSTATUSCODES$",
         "EHLO offers STARTTLS where Postfix does (after ETRN)")
tap.is_(c.cmd("STARTTLS now"), "501 5.5.4 Syntax: STARTTLS", "STARTTLS with an argument: 501")
c.close()

# seed 001: openssl s_client -starttls smtp -CAfile the server's certificate
session = ("EHLO example.com\nMAIL FROM:<seed@example.org>\nRCPT TO:<alice@example.com>\nDATA\n"
           "Subject: seed 001\n\nover s_client\n.\nQUIT\n")
r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-CAfile", cert, "-verify_return_error",
             "-crlf", "-nocommands", "-ign_eof", "-connect", f"127.0.0.1:{port}"], input=session, timeout=30)
tap.like(r.stdout, r"Verify return code: 0 \(ok\)", "s_client verifies the certificate against -CAfile")
tap.like(r.stdout, r"250 2\.0\.0 Ok: queued as [0-9A-F]+", "s_client: the message is queued over TLS")
tap.ok(wait_for(lambda: delivered("alice"), 20), "and delivered")
msg = (delivered("alice") or [""])[0]
tap.like(msg, r"(?m)^Received: from example\.com \(localhost \[127\.0\.0\.1\]\)\n"
              r"\t\(using TLSv1\.3 with cipher TLS_AES_\w+ \(\d+/\d+ bits\)\n"
              r"\t key-exchange \S+ server-signature RSA-PSS \(2048 bits\) server-digest SHA256\)\n"
              r"\t\(No client certificate requested\)\n"
              r"\tby \S+ \(postern\) with ESMTPS\n",
         "smtpd_tls_received_header: Postfix's TLS clause, and ESMTPS (RFC 3848)")
tap.like(log(), r"postern/smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: "
                r"TLSv1\.3 with cipher TLS_AES_\w+ \(\d+/\d+ bits\) key-exchange \S+ "
                r"server-signature RSA-PSS \(2048 bits\) server-digest SHA256\n",
         "smtpd_tls_loglevel = 1: Postfix's log line")

# swaks --tls
r = tap.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--tls", "--from", "swaks@example.org",
             "--to", "bob@example.com", "--helo", "swaks.example", "--header", "Subject: swaks tls"], timeout=30)
tap.is_(r.returncode, 0, "swaks --tls") or tap.diag(r.stdout[-600:])
tap.like(r.stdout, r"<~  250 2\.0\.0 Ok: queued as", "swaks: queued inside the TLS session")
tap.ok(wait_for(lambda: delivered("bob"), 20), "swaks's message delivered")

# Python's smtplib starttls()
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("smtplib.example")
context = ssl.create_default_context(cafile=cert)
code, _ = s.starttls(context=context)
tap.is_(code, 220, "smtplib starttls() with certificate verification")
tap.is_(s.sock.version(), "TLSv1.3", "TLS 1.3 negotiated")
s.ehlo("smtplib.example")
tap.ok("starttls" not in s.esmtp_features, "EHLO inside TLS no longer offers STARTTLS")
code, text = s.docmd("STARTTLS")
tap.is_(f"{code} {text.decode()}", "554 5.5.1 Error: TLS already active", "a second STARTTLS: 554, as Postfix")
refused = s.sendmail("py@example.org", ["carol@example.com"], b"Subject: smtplib\r\n\r\nhello\r\n")
tap.is_(refused, {}, "smtplib: accepted over TLS")
s.quit()
tap.ok(wait_for(lambda: delivered("carol"), 20), "smtplib's message delivered")

# CVE-2011-0411: what follows STARTTLS in the same packet is thrown away,
# and nothing of the session in the clear carries over into TLS
c = greeted(port, "inject.example")
tap.like(c.cmd("MAIL FROM:<clear@example.org>"), r"^250 ", "a transaction begun in the clear")
c.send("STARTTLS\r\nRSET\r\n")
tap.is_(c.reply(), "220 2.0.0 Ready to start TLS", "STARTTLS\\r\\nRSET\\r\\n in one packet: 220")
tap.is_(c.buf, b"", "nothing else answered before the handshake")
c.sock = ssl.create_default_context(cafile=cert).wrap_socket(c.sock, server_hostname="localhost")
tap.is_(c.cmd("NOOP"), "250 2.0.0 Ok", "the first reply inside TLS is the NOOP's: the injected RSET was discarded")
tap.like(c.cmd("RCPT TO:<alice@example.com>"), r"^503 ", "the MAIL of the clear session is forgotten (RCPT: 503)")
tap.like(c.cmd("MAIL FROM:<tls@example.org>"), r"^250 ", "a new MAIL is accepted (no nested MAIL)")
c.cmd("QUIT")
c.close()
tap.ok(wait_for(lambda: re.search(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 starttls=1 mail=2 rcpt=0/1 "
                                  r"noop=1 quit=1 commands=6/7\n", log()), 5),
       "the log counts no RSET: it was never a command")
tap.unlike(log(), r"improper command pipelining after STARTTLS",
           "and, as Postfix 3.7, no improper-pipelining line for the bytes thrown away")
inst.stop()

# ---- smtpd per connection: encrypt, mandatory protocols, wrapper mode ----
cfg = os.path.join(tmp, "cfg")
os.mkdir(cfg)
tap.write(os.path.join(cfg, "main.cf"),
          f"queue_directory = {tmp}/queue\nmaillog_file = {tmp}/smtpd.log\nmyhostname = tls.example\n"
          f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\nsmtpd_tls_loglevel = 1\n")
smtpd = [tap.prog("postern-smtpd"), "-c", cfg]


def smtpd_log():
    p = os.path.join(tmp, "smtpd.log")
    return open(p).read() if os.path.exists(p) else ""


enc = Listener(smtpd + ["-o", "smtpd_tls_security_level=encrypt", "-o", "smtpd_tls_mandatory_protocols=>=TLSv1.2"])
c = greeted(enc.port, "enc.example")
tap.is_(c.cmd("MAIL FROM:<a@example.org>"), "530 5.7.0 Must issue a STARTTLS command first",
        "encrypt: MAIL before STARTTLS refused as Postfix does")
tap.is_(c.cmd("RSET"), "530 5.7.0 Must issue a STARTTLS command first", "encrypt: so is RSET (Postfix: only "
        "HELO, EHLO, STARTTLS, NOOP, QUIT before TLS)")
tap.is_(c.cmd("NOOP"), "250 2.0.0 Ok", "encrypt: NOOP is allowed")
tap.is_(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "encrypt: STARTTLS")
c.sock = ssl.create_default_context(cafile=cert).wrap_socket(c.sock, server_hostname="localhost")
c.cmd("EHLO enc.example")
tap.like(c.cmd("MAIL FROM:<a@example.org>"), r"^250 2\.1\.0", "encrypt: MAIL accepted under TLS")
c.cmd("QUIT")
c.close()

# the smtpd_enforce_tls spelling means the same
legacy = Listener(smtpd + ["-o", "smtpd_enforce_tls=yes"])
c = Client(legacy.port)
c.reply()
tap.like(c.cmd("EHLO legacy.example"), r"(?m)^250-STARTTLS$", "smtpd_enforce_tls = yes offers STARTTLS")
tap.is_(c.cmd("MAIL FROM:<a@example.org>"), "530 5.7.0 Must issue a STARTTLS command first",
        "smtpd_enforce_tls = yes refuses MAIL before it")
c.close()

# a TLS 1.0-only client, under encrypt with smtpd_tls_mandatory_protocols = >=TLSv1.2
r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0",
             "-connect", f"127.0.0.1:{enc.port}"], input="QUIT\n", timeout=30)
tap.isnt(r.returncode, 0, "a TLS 1.0-only client cannot complete the handshake")
tap.like(r.stdout, r"New, \(NONE\), Cipher is \(NONE\)", "no TLS 1.0 session was made")
tap.ok(wait_for(lambda: "unsupported protocol" in smtpd_log(), 5), "smtpd logs why")
tap.like(smtpd_log(), r"postern/smtpd\[\d+\]: SSL_accept error from unknown\[127\.0\.0\.1\]: -1\n.*"
                      r"warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:", 
         "as Postfix: SSL_accept error, then the TLS library problem")
tap.like(smtpd_log(), r"lost connection after STARTTLS from unknown\[127\.0\.0\.1\]\n.*"
                      r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 starttls=0/1 commands=1/2",
         "lost connection after STARTTLS; the STARTTLS counted as failed")
# the same client is welcome where only smtpd_tls_protocols (may) applies and allows TLS 1.0
may = Listener(smtpd + ["-o", "smtpd_tls_security_level=may", "-o", "smtpd_tls_ciphers=low",
                        "-o", "tls_low_cipherlist=DEFAULT@SECLEVEL=0"])
r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0",
             "-connect", f"127.0.0.1:{may.port}"], input="QUIT\n", timeout=30)
tap.like(r.stdout, r"New, TLSv1\.0, Cipher is [A-Z]", "may with smtpd_tls_protocols = >=TLSv1: TLS 1.0 is negotiated")

# wrapper mode (465): the handshake before the greeting
wrap = Listener(smtpd + ["-o", "smtpd_tls_wrappermode=yes"])
r = tap.run(["swaks", "--server", "127.0.0.1", "--port", str(wrap.port), "--tls-on-connect",
             "--quit-after", "MAIL", "--from", "w@example.org"], timeout=30)
tap.is_(r.returncode, 0, "swaks --tls-on-connect") or tap.diag(r.stdout[-600:])
tap.like(r.stdout, r"<~  220 tls\.example ESMTP", "the greeting comes inside TLS")
tap.unlike(r.stdout, r"STARTTLS", "no STARTTLS offered in wrapper mode")
tap.like(r.stdout, r"<~  250 2\.1\.0 Ok", "MAIL accepted")
s = socket.create_connection(("127.0.0.1", wrap.port), timeout=10)
s.sendall(b"EHLO plain.example\r\n")
s.settimeout(10)
try:
    data = s.recv(100)
except OSError:
    data = b""
tap.unlike(data.decode("latin-1"), r"^220 ", "wrapper mode: a client in the clear gets no greeting")
s.close()

# smtpd_tls_chain_files: an RSA and an ECDSA key, each file a key and its chain
eckey, eccert = os.path.join(tmp, "eckey.pem"), os.path.join(tmp, "eccert.pem")
r = tap.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", eckey, "-out", eccert, "-days", "2", "-subj", "/CN=localhost"])
tap.is_(r.returncode, 0, "openssl req makes an ECDSA certificate") or tap.diag(r.stderr)
rsa_chain, ec_chain = os.path.join(tmp, "rsa-chain.pem"), os.path.join(tmp, "ec-chain.pem")
tap.write(rsa_chain, open(key).read() + open(cert).read(), 0o600)
tap.write(ec_chain, open(eckey).read() + open(eccert).read(), 0o600)
chains = Listener([tap.prog("postern-smtpd"), "-c", cfg, "-o", "smtpd_tls_security_level=may",
                   "-o", "smtpd_tls_cert_file=", "-o", f"smtpd_tls_chain_files={rsa_chain}, {ec_chain}"])
for sigalg, want in (("ecdsa_secp256r1_sha256", "ECDSA"), ("rsa_pss_rsae_sha256", "RSA-PSS")):
    r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-sigalgs", sigalg,
                 "-connect", f"127.0.0.1:{chains.port}"], input="QUIT\n", timeout=30)
    tap.like(r.stdout, rf"Peer signature type: {want}\n", f"chain files: a client asking for {sigalg} gets the {want} key")
tap.ok(wait_for(lambda: "server-signature ECDSA (P-256) server-digest SHA256" in smtpd_log(), 5),
       "logged as Postfix names it: server-signature ECDSA (P-256)")
chains.stop()

# key exchange: tls_eecdh_auto_curves, smtpd_tls_dh1024_param_file
dh = os.path.join(tmp, "dh.pem")
r = tap.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_param:ffdhe3072", "-out", dh])
tap.is_(r.returncode, 0, "openssl genpkey makes DH parameters (ffdhe3072)")
kex = Listener(smtpd + ["-o", "smtpd_tls_security_level=may", "-o", "tls_eecdh_auto_curves=nonesuch secp384r1",
                        "-o", "smtpd_tls_dh1024_param_file=" + dh])
r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{kex.port}"], input="QUIT\n", timeout=30)
tap.like(r.stdout, r"Server Temp Key: ECDH, secp384r1, 384 bits", "tls_eecdh_auto_curves: only secp384r1 (an unknown name skipped)")
tap.ok(wait_for(lambda: "key-exchange ECDHE (P-384)" in smtpd_log(), 5), "logged as ECDHE (P-384)")
r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-tls1_2", "-cipher", "DHE-RSA-AES256-GCM-SHA384",
             "-connect", f"127.0.0.1:{kex.port}"], input="QUIT\n", timeout=30)
tap.like(r.stdout, r"Server Temp Key: DH, 3072 bits", "smtpd_tls_dh1024_param_file: DHE with the file's 3072-bit group")
tap.ok(wait_for(lambda: "TLSv1.2 with cipher DHE-RSA-AES256-GCM-SHA384 (256/256 bits) key-exchange DHE (3072 bits)"
                in smtpd_log(), 5), "logged as key-exchange DHE (3072 bits)")
kex.stop()

# client certificates from a test CA (seed 003: relay_clientcerts)
def make_client(name, signed=True):
    k, c = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".pem")
    if signed:
        csr = os.path.join(tmp, name + ".csr")
        tap.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", k, "-out", csr, "-subj", "/CN=" + name])
        r = tap.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                     "-out", c, "-days", "2"])
    else:
        r = tap.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k, "-out", c,
                     "-days", "2", "-subj", "/CN=" + name])
    return (c, k) if r.returncode == 0 else None


ca, ca_key = os.path.join(tmp, "ca.pem"), os.path.join(tmp, "ca.key")
r = tap.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
             "-days", "2", "-subj", "/CN=Test CA"])
listed, unlisted, stranger = make_client("listed"), make_client("unlisted"), make_client("stranger", signed=False)
tap.ok(r.returncode == 0 and listed and unlisted and stranger, "a test CA, two clients it signed, one self-signed")
fp = tap.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", listed[0]]).stdout.split("=", 1)[-1].strip()
tap.write(os.path.join(tmp, "relay_clientcerts"), f"{fp} listed.example\n")
CCERT = ["-o", "smtpd_tls_security_level=may", "-o", "smtpd_tls_ask_ccert=yes", "-o", "smtpd_tls_CAfile=" + ca,
         "-o", "smtpd_tls_received_header=yes", "-o", f"relay_clientcerts=texthash:{tmp}/relay_clientcerts"]


def relay_attempt(port, client_cert):
    """STARTTLS with a client certificate (or none), then RCPT to another domain."""
    c = greeted(port, "certs.example")
    c.cmd("STARTTLS")
    context = ssl.create_default_context(cafile=cert)
    if client_cert:
        context.load_cert_chain(*client_cert)
    c.sock = context.wrap_socket(c.sock, server_hostname="localhost")
    c.cmd("EHLO certs.example")
    c.cmd("MAIL FROM:<a@certs.example>")
    answer = c.cmd("RCPT TO:<x@remote.example>")
    c.cmd("QUIT")
    c.close()
    return answer


pinned = Listener(smtpd + CCERT + ["-o", "smtpd_relay_restrictions=permit_tls_clientcerts, reject_unauth_destination"])
tap.like(relay_attempt(pinned.port, listed), r"^250 2\.1\.5 ", "permit_tls_clientcerts: the fingerprint in relay_clientcerts may relay")
tap.like(relay_attempt(pinned.port, unlisted), r"^554 5\.7\.1 <x@remote\.example>: Relay access denied",
         "another certificate of the same CA may not")
tap.like(relay_attempt(pinned.port, None), r"^554 5\.7\.1 ", "nor a client without a certificate")
tap.like(smtpd_log(), r"Trusted TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3",
         "a verified client certificate: Trusted in the log line")
everyone = Listener(smtpd + CCERT + ["-o", "smtpd_relay_restrictions=permit_tls_all_clientcerts, reject_unauth_destination"])
tap.like(relay_attempt(everyone.port, unlisted), r"^250 2\.1\.5 ", "permit_tls_all_clientcerts: any certificate the CA signed")
tap.like(relay_attempt(everyone.port, stranger), r"^554 5\.7\.1 ", "but not a self-signed one")
tap.like(smtpd_log(), r"Untrusted TLS connection established from", "which is logged as Untrusted")
required = Listener(smtpd + CCERT + ["-o", "smtpd_tls_security_level=encrypt", "-o", "smtpd_tls_req_ccert=yes"])
c = greeted(required.port, "nocert.example")
c.cmd("STARTTLS")
c.sock = ssl.create_default_context(cafile=cert).wrap_socket(c.sock, server_hostname="localhost")
tap.is_(c.reply(), "421 4.7.1 tls.example Error: No client certificate presented",
        "smtpd_tls_req_ccert under encrypt: no certificate, 421")
c.close()
tap.like(smtpd_log(), r"NOQUEUE: abort: TLS from unknown\[127\.0\.0\.1\]: No client certificate presented",
         "and the log says why")
tap.like(relay_attempt(required.port, listed), r"^(250|554) ", "a verified certificate gets on with the session")
for l in (pinned, everyone, required):
    l.stop()

# no TLS: none answers 502; a key that cannot be read: 454
none = Listener(smtpd)
c = Client(none.port)
c.reply()
tap.unlike(c.cmd("EHLO none.example"), r"STARTTLS", "level none: no STARTTLS in EHLO")
tap.is_(c.cmd("STARTTLS"), "502 5.5.1 Error: command not implemented", "level none: 502 as Postfix")
c.close()
broken = Listener([tap.prog("postern-smtpd"), "-c", cfg, "-o", "smtpd_tls_security_level=may",
                   "-o", "smtpd_tls_key_file=" + os.path.join(tmp, "missing.pem")])
c = Client(broken.port)
c.reply()
tap.like(c.cmd("EHLO broken.example"), r"(?m)^250-STARTTLS$", "a broken key: STARTTLS still offered (Postfix too)")
tap.is_(c.cmd("STARTTLS"), "454 4.7.0 TLS not available due to local problem", "and answered 454")
c.close()
tap.like(smtpd_log(), r"warning: cannot get private key from file", "the cause is logged")

# the static program reads no openssl.cnf: a config that would load an engine changes nothing
bad_conf = os.path.join(tmp, "openssl.cnf")
tap.write(bad_conf, "openssl_conf = init\n[init]\nengines = e\n[e]\nx = y\n[y]\ndynamic_path = /nonexistent.so\n")
conf_env = Listener(smtpd + ["-o", "smtpd_tls_security_level=may"], env={"OPENSSL_CONF": bad_conf})
s = smtplib.SMTP("127.0.0.1", conf_env.port, timeout=30)
s.ehlo("conf.example")
code, _ = s.starttls(context=ssl.create_default_context(cafile=cert))
tap.is_(code, 220, "OPENSSL_CONF pointing at an engine: ignored, STARTTLS works")
s.quit()

for l in (enc, legacy, may, wrap, none, broken, conf_env):
    l.stop()

# ---- the zygote reads a root-only key, then serves as nobody ----
if os.geteuid() != 0:
    print("# SKIP the zygote's root-only key: not running as root")
else:
    zd = tap.tempdir()
    os.chmod(zd, 0o755)
    zkey, zcert = os.path.join(zd, "key.pem"), os.path.join(zd, "cert.pem")
    tap.write(zkey, open(key).read(), 0o600)    # root's alone
    tap.write(zcert, open(cert).read(), 0o644)
    tap.write(os.path.join(zd, "maillog"), "", 0o666)
    tap.write(os.path.join(zd, "main.cf"),
              f"maillog_file = {zd}/maillog\nmyhostname = z.example\nqueue_directory = {zd}/queue\n"
              f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {zcert}\nsmtpd_tls_key_file = {zkey}\n")

    def zlog():
        return open(os.path.join(zd, "maillog")).read()

    def accept(options):
        zport = tap.free_port()
        p = tap.start([tap.prog("postern-accept"), "-c", zd, "-u", "nobody"] + options
                      + [f"127.0.0.1:{zport}", "--", tap.prog("postern-smtpd")])
        wait_for(lambda: "listening on 127.0.0.1:%d" % zport in zlog() or p.poll() is not None, 10)
        return p, zport

    def uid_of(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("Uid:"):
                return int(line.split()[1])
        return -1

    p, zport = accept(["-z"])
    c = greeted(zport, "z.example")
    tap.is_(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS", "-z -u nobody: the zygote read the root-only key")
    c.sock = ssl.create_default_context(cafile=cert).wrap_socket(c.sock, server_hostname="localhost")
    tap.like(c.cmd("EHLO z.example"), r"^250-z\.example", "TLS session served by a fork of the zygote")
    child = re.findall(r"postern/smtpd\[(\d+)\]: connect from", zlog())
    zygote = re.findall(r"zygote \S+ started as pid (\d+)", zlog())
    nobody = int(tap.run(["id", "-u", "nobody"]).stdout.strip() or -1)
    tap.is_(uid_of(int(child[-1])) if child else None, nobody, "the session runs as nobody")
    tap.is_(uid_of(int(zygote[-1])) if zygote else None, nobody, "and so does the zygote, once it has read the key")
    c.cmd("QUIT")
    c.close()
    tap.stop(p)
    # without the zygote, smtpd is exec'd as nobody and cannot read the key
    p, zport = accept([])
    c = greeted(zport, "z.example")
    tap.is_(c.cmd("STARTTLS"), "454 4.7.0 TLS not available due to local problem",
            "exec'd per connection as nobody: the key stays unreadable (454)")
    c.close()
    tap.stop(p)
tap.done()
