#!/usr/bin/env python3
# Small smtpd bugs the last review left, one check each:
#  - XCLIENT NAME=[TEMPUNAVAIL] (and REVERSE_NAME=[TEMPUNAVAIL]) is a name
#    that could not be looked up, a temporary failure: the unknown-client
#    checks answer 450, never unknown_client_reject_code's 5xx, which
#    [UNAVAILABLE] (no name) gets;
#  - MAIL FROM's AUTH= is kept in the envelope as Postfix's sasl_sender
#    (AUTH=<> is not), and malformed xtext is refused;
#  - postern-auth refuses an S line with seven fields.
import os, socket, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest

require(["postern-smtpd", "postern-auth"])

inst = smtpdtest.Instance({"smtpd_peername_lookup": "no", "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
                           "unknown_client_reject_code": "550"})
inst.listen()


def xclient_rcpt(attrs):
    c = smtpdtest.Client(inst.port)
    c.reply()
    r = c.cmd("XCLIENT " + attrs)
    like(r, r"^220 ", f"XCLIENT {attrs} is accepted")
    c.cmd("HELO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    r = c.cmd("RCPT TO:<b@example.com>")
    c.cmd("QUIT")
    c.close()
    return r


inst.set(smtpd_client_restrictions="reject_unknown_client_hostname")
is_(xclient_rcpt("NAME=[TEMPUNAVAIL] ADDR=192.0.2.7"),
    "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]",
    "NAME=[TEMPUNAVAIL]: a temporary failure, 450 whatever unknown_client_reject_code says")
is_(xclient_rcpt("NAME=[UNAVAILABLE] ADDR=192.0.2.7"),
    "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]",
    "NAME=[UNAVAILABLE]: no name, unknown_client_reject_code (550)")
inst.set(smtpd_client_restrictions="reject_unknown_reverse_client_hostname")
is_(xclient_rcpt("NAME=host.example REVERSE_NAME=[TEMPUNAVAIL] ADDR=192.0.2.7"),
    "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.7]",
    "REVERSE_NAME=[TEMPUNAVAIL]: 450 for the reverse name, though NAME is known")
is_(xclient_rcpt("NAME=host.example ADDR=192.0.2.7")[:3], "550",
    "NAME leaves the reverse name alone, as Postfix 3.7 does (t/33-smtpd-seeds-postfix.t): "
    "the connection's, unknown here")
inst.set(smtpd_client_restrictions="")

# ---- AUTH= on MAIL ----
def send(mail_args):
    before = len(inst.captured())
    c = smtpdtest.Client(inst.port)
    c.reply()
    c.cmd("EHLO client.example")
    r = c.cmd("MAIL FROM:<a@example.org> " + mail_args)
    if r.startswith("250"):
        c.cmd("RCPT TO:<b@example.com>")
        c.cmd("DATA")
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.reply()
    c.cmd("QUIT")
    c.close()
    wait_until(lambda: len(inst.captured()) > before, 5)
    got = inst.captured()
    return r, (got[-1][1] if len(got) > before else [])


r, env = send("AUTH=alice+2Bx@example.org")
is_(r, "250 2.1.0 Ok", "MAIL FROM with AUTH=addr is accepted")
ok("Asasl_sender=alice+x@example.org" in env, "... and AUTH's address (xtext decoded) is in the envelope "
   "as sasl_sender, for the queue file") or diag(env)
r, env = send("AUTH=<>")
ok(r.startswith("250") and not any(e.startswith("Asasl_sender=") for e in env), "AUTH=<> vouches for nobody: not kept")
r, _ = send("AUTH=bad+zz")
is_(r, "501 5.5.4 Bad AUTH parameter syntax", "malformed xtext in AUTH= is refused")

# ---- postern-auth: the S line has six fields, not seven ----
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
auth = start([prog("postern-auth"), "-c", inst.dir])
sock_path = os.path.join(queue, "public", "auth")
ok(wait_until(lambda: os.path.exists(sock_path), 10), "postern-auth listens")


def s_line(line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall((line + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode().strip()


like(s_line("S smtpd smtp - 127.0.0.1;25 192.0.2.7;4000 noanonymous"), r"^M\b",
     "six fields: the mechanisms")
is_(s_line("S smtpd smtp - 127.0.0.1;25 192.0.2.7;4000 noanonymous extra"), "E S needs six fields",
    "seven fields: a protocol error, not a seventh field ignored")
done()
