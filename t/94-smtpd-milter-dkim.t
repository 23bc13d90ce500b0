#!/usr/bin/env python3
# DKIM signing through smtpd_milters with the real opendkim (Debian's
# package, started here on loopback with a key made by opendkim-genkey):
# the message the queue gets carries a DKIM-Signature that python3-dkim
# verifies against the key's published record (opendkim's default
# simple/simple canonicalization, so every byte of the signed headers
# and the body counts); a message whose body is changed afterwards does
# not verify (the check can fail).
import os, re, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest

OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"
PYTHON = "/usr/bin/python3"
require(["postern-smtpd"])
for path in (OPENDKIM, GENKEY):
    if not os.access(path, os.X_OK):
        ok(False, f"{path} is installed (./deps --test installs opendkim and opendkim-tools)")
        done()
if subprocess.run([PYTHON, "-c", "import dkim"], capture_output=True).returncode != 0:
    ok(False, "python3-dkim is installed (./deps --test)")
    done()

work = tempdir("postern-dkim-")
keys = os.path.join(work, "keys")
os.makedirs(keys)
r = run([GENKEY, "-D", keys, "-d", "example.org", "-s", "test", "-b", "1024"])
ok(r.returncode == 0 and os.path.exists(os.path.join(keys, "test.private")), "opendkim-genkey made a key")
record = open(os.path.join(keys, "test.txt")).read()
# the TXT record's strings, joined: "v=DKIM1; h=sha256; k=rsa; p=..."
txt = "".join(re.findall(r'"([^"]*)"', record))


def start_opendkim(mode, port, extra=""):
    conf = write(os.path.join(work, f"opendkim-{mode}.conf"),
                 f"Domain example.org\nSelector test\nKeyFile {keys}/test.private\n"
                 f"Socket inet:{port}@127.0.0.1\nMode {mode}\nBackground no\nSyslog no\n"
                 f"RequireSafeKeys false\nPidFile {work}/opendkim-{mode}.pid\n"
                 f"InternalHosts 127.0.0.1\n{extra}")
    return start([OPENDKIM, "-f", "-x", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


sign_port = free_port()
signer = start_opendkim("s", sign_port)
ok(wait_until(lambda: listening(sign_port), 20), "opendkim (signing) listens")

inst = smtpdtest.Instance({"smtpd_peername_lookup": "no",
                           "smtpd_milters": f"inet:127.0.0.1:{sign_port}"})
port = inst.listen()
message = ("From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: signed\n"
           "Date: Mon, 07 Dec 2026 15:00:00 +0000\nMessage-ID: <1@example.org>\n"
           "X-Folded: one\n two\n\nHello Bob,\n\nthis is signed.\n")
answers, eom, qid = smtpdtest.transaction(port, "alice@example.org", ["bob@example.com"], message)
like(eom or "", r"^250 2\.0\.0 Ok: queued as ", "the message is queued through opendkim")
captured = inst.captured()
msg = captured[-1][0] if captured else b""
like(msg.decode(errors="replace"), r"(?m)^DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=example\.org;",
     "opendkim added its DKIM-Signature")
ok(msg.startswith(b"DKIM-Signature:"), "the signature is the first header, above smtpd's Received header")

VERIFY = r'''
import sys, dkim
txt = sys.argv[1].encode()
msg = sys.stdin.buffer.read().replace(b"\n", b"\r\n")
ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt if name == b"test._domainkey.example.org." else None)
print("pass" if ok else "fail")
'''


def verify(data):
    return subprocess.run([PYTHON, "-c", VERIFY, txt], input=data, capture_output=True).stdout.decode().strip()


is_(verify(msg), "pass", "python3-dkim verifies the signature of the queued message")
is_(verify(msg.replace(b"this is signed", b"this is forged")), "fail",
    "a changed body does not verify (the check can fail)")

inst.stop()
stop(signer)
done()
