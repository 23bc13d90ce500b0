#!/usr/bin/env python3
# SCRAM-SHA-256 and SCRAM-SHA-1 through smtpd_sasl_type = cyrus: the real
# Cyrus SCRAM plugin (libsasl2-modules) behind postern-auth, users in an
# auxprop sasldb made by saslpasswd2 in a temporary directory.  SCRAM's
# server sends data with its success (server-final-message, the server's
# signature); as Postfix 3.7 does with libsasl2 (no SASL_SUCCESS_DATA),
# that data goes out as one more 334 challenge, the client answers an
# empty line, and then 235 follows.  Two clients: an RFC 5802 exchange
# written here (it checks the server's signature), and postern's own smtp
# runner with mutual_auth, which refuses a server that does not prove it
# knows the password.
import base64
import hashlib
import hmac
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from cyrussasl import cyrus_settings, sasl_directory
from instance import new_instance
from smtpdtest import Client

tap.require(["postern", "postern-smtpd", "postern-auth", "postern-smtp"], tools=["saslpasswd2"])
if not os.path.exists("/usr/lib/x86_64-linux-gnu/sasl2/libscram.so") and \
        not any(os.path.exists(os.path.join(d, "libscram.so"))
                for d in ("/usr/lib/sasl2", "/usr/lib64/sasl2", "/usr/lib/aarch64-linux-gnu/sasl2")):
    tap.ok(False, "libsasl2-modules' SCRAM plugin (libscram.so) is installed")
    tap.done()

inst = new_instance("--domain", "example.com")
port = int(re.search(r"(?m)^(?:127\.0\.0\.1:)?(\d+)\s+inet\s", open(os.path.join(inst.dir, "master.cf")).read()).group(1))
sasl = sasl_directory(os.path.dirname(inst.dir), [("alice", None, "alice-secret")],
                     "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN")
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(cyrus_settings(sasl) + f"""smtpd_relay_restrictions =
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
""")
r = inst.start()
tap.is_(r.returncode, 0, "postern start, with the auth service") or tap.diag(r.stderr)
log_path = os.path.join(inst.dir, "maillog")


def scram_exchange(mech, user, password):
    """An RFC 5802 client over SMTP AUTH: the replies it saw, and whether
    the server's signature was right."""
    algo = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-1": hashlib.sha1}[mech]
    c = Client(port)
    c.reply()
    c.cmd("EHLO client.example.com")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    replies = []
    answer = c.cmd(f"AUTH {mech} " + base64.b64encode(b"n,," + first_bare.encode()).decode())
    replies.append(answer)
    if not answer.startswith("334 "):
        return c, replies, False
    server_first = base64.b64decode(answer[4:]).decode()
    fields = dict(f.split("=", 1) for f in server_first.split(","))
    salt = base64.b64decode(fields["s"])
    salted = hashlib.pbkdf2_hmac(algo().name, password.encode(), salt, int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", algo).digest()
    stored_key = algo(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, algo).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}"
    answer = c.cmd(base64.b64encode(final.encode()).decode())
    replies.append(answer)
    verified = False
    if answer.startswith("334 "):
        server_final = base64.b64decode(answer[4:]).decode()
        server_key = hmac.new(salted, b"Server Key", algo).digest()
        want = "v=" + base64.b64encode(hmac.new(server_key, auth_message, algo).digest()).decode()
        verified = server_final == want
        replies.append(c.cmd(""))
    return c, replies, verified


for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
    c, replies, verified = scram_exchange(mech, "alice", "alice-secret")
    tap.is_(len(replies), 3, f"{mech}: after the client's proof the server sends its final data in a 334") \
        or tap.diag(replies)
    tap.ok(verified, f"{mech}: that data is the server's signature (v=...), which the client checks")
    tap.is_(replies[-1], "235 2.7.0 Authentication successful", f"{mech}: the client answers an empty line, then 235")
    tap.is_(c.cmd("MAIL FROM:<alice@example.com>"), "250 2.1.0 Ok", f"{mech}: MAIL")
    tap.like(c.cmd("RCPT TO:<friend@elsewhere.example>"), r"^250 ", f"{mech}: authenticated, the user may relay")
    c.cmd("QUIT")

# a wrong password: 535 at the proof, no 334 with data
c, replies, verified = scram_exchange("SCRAM-SHA-256", "alice", "wrong")
tap.like(replies[-1], r"^535 5\.7\.8 Error: authentication failed", "a wrong password: 535 after the proof")
c.cmd("QUIT")
# postern's own smtp runner, SCRAM only, mutual_auth
passwords = os.path.join(inst.dir, "sasl_passwd")
tap.write(passwords, f"[127.0.0.1]:{port} alice:alice-secret\n")
for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
    r = tap.run([tap.prog("postern-smtp"), "-c", inst.dir, "-o", "myhostname=sender.test",
                 "-o", "smtp_sasl_auth_enable=yes",
                 "-o", f"smtp_sasl_password_maps=texthash:{passwords}", "-o", "smtp_tls_security_level=none",
                 "-o", "smtp_sasl_security_options=noplaintext, noanonymous, mutual_auth",
                 "-o", f"smtp_sasl_mechanism_filter={mech}",
                 "-H", f"[127.0.0.1]:{port}", "-f", "alice@example.com", "friend@elsewhere.example"],
                input="Subject: scram\n\nthrough Cyrus SCRAM\n")
    out = r.stdout + r.stderr
    out = out.decode(errors="replace") if isinstance(out, bytes) else out
    tap.like(out, r"friend@elsewhere\.example: dsn=2\.0\.0, status=sent",
             f"postern-smtp with {mech} (mutual_auth) through the Cyrus plugin: sent") or tap.diag(out)

log = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
tap.like(log, r"sasl_method=SCRAM-SHA-256, sasl_username=alice", "the log line names the method and user")
inst.stop()
tap.done()
