#!/usr/bin/env python3
# postern-smtpd: XCLIENT and XFORWARD for authorized hosts only, and -S
# (sendmail -bs): SMTP on a pipe, the client is localhost[127.0.0.1], the
# message marked origin=local with the submitter's uid.
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance, wait_for

inst = Instance({"mynetworks": "10.0.0.0/8"})
port = inst.listen()

c = Client(port)
c.reply()
c.cmd("EHLO proxy.example")
tap.is_(c.cmd("XCLIENT ADDR=10.1.2.3"), "550 5.7.0 Error: insufficient authorization", "XCLIENT refused when not authorized")
tap.is_(c.cmd("XFORWARD ADDR=10.1.2.3"), "550 5.7.0 Error: insufficient authorization", "XFORWARD refused when not authorized")
c.close()

inst.set(smtpd_authorized_xclient_hosts="127.0.0.1", smtpd_authorized_xforward_hosts="127.0.0.0/8")
c = Client(port)
c.reply()
ehlo = c.cmd("EHLO proxy.example")
tap.like(ehlo, r"250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT\n", "EHLO offers XCLIENT")
tap.like(ehlo, r"250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\n", "EHLO offers XFORWARD")
tap.is_(c.cmd("XFORWARD FOO=1"), "501 5.5.4 Bad XFORWARD attribute name: FOO", "XFORWARD bad attribute")
tap.is_(c.cmd("XFORWARD NAME=mail.origin.example ADDR=192.0.2.55 PORT=2525 HELO=origin.example PROTO=ESMTP"),
        "250 2.0.0 Ok", "XFORWARD")
tap.is_(c.cmd("MAIL FROM:<a@origin.example>"), "250 2.1.0 Ok", "MAIL after XFORWARD")
tap.is_(c.cmd("XFORWARD ADDR=192.0.2.56"), "503 5.5.1 Error: MAIL transaction in progress", "XFORWARD inside a transaction")
tap.is_(c.cmd("RCPT TO:<joe@example.com>"), "250 2.1.5 Ok", "RCPT after XFORWARD")
c.cmd("DATA")
c.send("Subject: fwd\r\n\r\nx\r\n.\r\n")
tap.like(c.reply(), r"^250 2\.0\.0 Ok: queued", "forwarded message queued")
msg, env = inst.captured()[-1]
tap.ok("Aclient_address=192.0.2.55" in env and "Aclient_name=mail.origin.example" in env
       and "Ahelo_name=origin.example" in env and "Alog_client=mail.origin.example[192.0.2.55]" in env,
       "XFORWARD attributes in the envelope")
tap.like(msg.decode(), r"^Received: from origin\.example \(mail\.origin\.example \[192\.0\.2\.55\]\)", "and in Received")
tap.is_(c.cmd("XCLIENT ADDR=10.9.9.9 NAME=[UNAVAILABLE] HELO=inner.example"), "220 mx.example.com ESMTP postern",
        "XCLIENT starts the session over")
c.cmd("EHLO inner.example")
c.cmd("MAIL FROM:<a@inner.example>")
tap.is_(c.cmd("RCPT TO:<x@other.org>"), "250 2.1.5 Ok", "the XCLIENT address is in mynetworks: may relay")
tap.is_(c.cmd("XCLIENT ADDR=10.1.1.1"), "550 5.7.0 Error: insufficient authorization",
        "the new client is not authorized for XCLIENT")
c.close()
tap.like(inst.log(), r"client unknown\[127\.0\.0\.1\] is now unknown\[10\.9\.9\.9\] \(XCLIENT\)", "XCLIENT logged")

# -S: sendmail -bs; like Postfix's stand-alone smtpd, no restrictions (the
# local user could run sendmail anyway)
r = tap.run(inst.argv("-S"), input="HELO local\r\nMAIL FROM:<me@example.com>\r\nRCPT TO:<x@other.org>\r\nDATA\r\n"
            "Subject: local\r\n\r\nx\r\n.\r\nQUIT\r\n", env={"TCPREMOTEIP": "192.0.2.1"})
tap.like(r.stdout, r"^220 mx\.example\.com ESMTP postern\n250 mx\.example\.com\n250 2\.1\.0 Ok\n", "-S speaks SMTP on a pipe")
tap.like(r.stdout, r"250 2\.0\.0 Ok: queued as \w+\n221 2\.0\.0 Bye\n$", "-S queues")
msg, env = inst.captured()[-1]
tap.ok("Aorigin=local" in env and "Auid=%d" % os.getuid() in env and "Aclient_address=127.0.0.1" in env
       and "Alog_client=localhost[127.0.0.1]" in env, "-S: origin=local, uid, localhost[127.0.0.1]")
tap.like(msg.decode(), r"^Received: by mx\.example\.com \(postern, from userid %d\);\n\t[^\n]+\nSubject: local\n"
         % os.getuid(), "-S: no Received line of smtpd's own, the local one of rewrite instead")
tap.like(msg.decode(), r"\nFrom: me@example\.com\n\nx\n$", "-S: rewrite adds the missing headers of a local submission")
tap.like(inst.log(), r"connect from localhost\[127\.0\.0\.1\]", "-S ignores the UCSPI variables")

# the submission service of seed 000 demands TLS: before STARTTLS it must
# refuse mail rather than take it in the clear
r = tap.run(inst.argv("-o", "smtpd_tls_security_level=encrypt", "-o", "smtpd_sasl_auth_enable=yes",
                      "-o", "smtpd_client_restrictions=permit_sasl_authenticated,reject"),
            input="EHLO x\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n")
tap.like(r.stdout, r"\n530 5\.7\.0 Must issue a STARTTLS command first\n", "smtpd_tls_security_level = encrypt refuses MAIL")
tap.unlike(inst.log(), r"not implemented by postern: smtpd_tls_security_level",
           "smtpd_tls_security_level is implemented (t/93): no warning about it")
tap.unlike(r.stdout, r"AUTH", "AUTH is not offered before STARTTLS under encrypt (as Postfix)")
tap.unlike(inst.log(), r"auth service: connect to",
           "so the auth service is not even asked before TLS")

# systemd socket activation with Accept=yes: the connection arrives as fd 3
# (LISTEN_FDS=1) when the unit does not set StandardInput=socket, which is
# what systemd-socket-activate --accept does
import shutil, smtplib, time
ssa = shutil.which("systemd-socket-activate")
if ssa:
    sport = tap.free_port()
    p = tap.start([ssa, "-l", "127.0.0.1:%d" % sport, "--accept"] + inst.argv(),
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = None
    for _ in range(50):
        try:
            s = smtplib.SMTP("127.0.0.1", sport, timeout=10)
            break
        except OSError:
            time.sleep(0.1)
    before = len(inst.captured())
    s.ehlo("activated.example")
    s.sendmail("a@example.org", ["joe@example.com"], b"Subject: activated\r\n\r\nx\r\n")
    s.quit()
    tap.is_(len(inst.captured()), before + 1, "systemd-socket-activate --accept: the connection on fd 3 is served")
    wait_for(lambda: "ehlo=1 mail=1 rcpt=1 data=1 quit=1" in inst.log())
    tap.like(inst.log(), r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1",
             "and its address comes from getpeername")
    tap.stop(p)
else:
    tap.ok(False, "systemd-socket-activate is installed (make check installs it: ./deps --test)")

inst.stop()
tap.done()
