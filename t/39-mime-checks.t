#!/usr/bin/env python3
# MIME-aware checks, as Postfix 3.7 does them (t/data/postfix-3.7-mime.txt):
# the headers of multipart parts and MIME headers go to mime_header_checks,
# the headers of an attached message (message/rfc822) to
# nested_header_checks (both default to $header_checks); body_checks never
# see them; disable_mime_input_processing = yes makes them body lines again.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Listener, transaction

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "header_checks"), """\
/^Content-Type: image\\/bad/ REJECT bad part
/^X-Part-Header: (.*)/ REPLACE X-Part-Seen: $1
/^Subject: nested info/ INFO nested seen
/^Subject: top/ INFO top seen
""")
tap.write(os.path.join(d, "body_checks"), """\
/^X-Part-Header/ REJECT body saw part header
/^Subject: nested/ REJECT body saw nested header
/^plain body line/ INFO body line seen
""")
maincf = os.path.join(d, "main.cf")
base = open(maincf).read()
tap.write(maincf, base + "header_checks = regexp:%s/header_checks\nbody_checks = regexp:%s/body_checks\n" % (d, d))
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])

MIME = """\
Subject: top
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BOUND"

preamble
--BOUND
Content-Type: text/plain
X-Part-Header: hello

plain body line
--BOUND
Content-Type: message/rfc822

Subject: nested info
X-Part-Header: inner

nested body
--BOUND--
epilogue
"""
_, answer, qid = transaction(smtpd.port, "x@example.org", ["rcpt@example.com"], MIME)
tap.ok(qid, "a multipart message is accepted") or tap.diag(answer)
got = inst.wait_for("rcpt")
msg = got[0].decode() if got else ""
msg = re.sub(r"(?m)^(Message-Id|Date|From): .*\n", "", msg)      # added for a local client
tap.is_(msg[msg.find("Subject: top"):] if "Subject: top" in msg else msg, MIME.replace("X-Part-Header", "X-Part-Seen"),
        "part and attached-message headers are checked (REPLACE), as Postfix delivers it")
TAIL = r" from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<rcpt@example\.com> proto=ESMTP helo=<client\.example>"
log = inst.log()
for line, what in [
    (r"%s: replace: header X-Part-Header: hello%s: X-Part-Seen: hello" % (qid, TAIL), "a part's header: mime_header_checks"),
    (r"%s: info: header Subject: nested info%s: nested seen" % (qid, TAIL), "an attached message's: nested_header_checks"),
    (r"%s: replace: header X-Part-Header: inner%s: X-Part-Seen: inner" % (qid, TAIL), "all of its headers"),
    (r"%s: info: body plain body line%s: body line seen" % (qid, TAIL), "body lines of parts: body_checks"),
]:
    tap.ok(tap.wait_until(lambda: re.search(line, inst.log()), timeout=10), what) or tap.diag(inst.log()[-2000:])
tap.unlike(inst.log(), r"body saw", "body_checks never see the headers of parts")

_, answer, _ = transaction(smtpd.port, "x@example.org", ["rcpt@example.com"],
                           "Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n"
                           "--b1\nContent-Type: image/bad\n\nxx\n--b1--\n")
tap.is_(answer, "550 5.7.1 bad part", "a part's Content-Type can be refused, as Postfix")

# mime_header_checks of its own: the part headers go there, not to header_checks
tap.write(os.path.join(d, "mime_checks"), "/^X-Part-Header: hello/ REJECT mime table says no\n")
tap.write(maincf, base + "header_checks = regexp:%s/header_checks\nbody_checks = regexp:%s/body_checks\n"
          "mime_header_checks = regexp:%s/mime_checks\n" % (d, d, d))
smtpd.stop()
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
_, answer, _ = transaction(smtpd.port, "x@example.org", ["rcpt@example.com"], MIME)
tap.is_(answer, "550 5.7.1 mime table says no", "mime_header_checks set: its table decides for part headers")

# without MIME processing the part headers are body lines
tap.write(maincf, base + "header_checks = regexp:%s/header_checks\nbody_checks = regexp:%s/body_checks\n"
          "disable_mime_input_processing = yes\n" % (d, d))
smtpd.stop()
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
_, answer, _ = transaction(smtpd.port, "x@example.org", ["rcpt@example.com"], MIME)
tap.is_(answer, "550 5.7.1 body saw part header", "disable_mime_input_processing = yes: they are body lines")

# a broken MIME structure passes unchanged: a boundary never closed, no parts
for broken in ["Subject: b\nContent-Type: multipart/mixed; boundary=zz\n\nno parts at all\n--zz\n",
               "Subject: c\nContent-Type: multipart/mixed\n\n--\nx\n"]:
    _, answer, qid = transaction(smtpd.port, "x@example.org", ["broken@example.com"], broken)
    tap.ok(qid, "broken MIME is accepted") or tap.diag(answer)
smtpd.stop()
tap.write(maincf, base + "header_checks = regexp:%s/header_checks\n" % d)
smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
broken = "Subject: d\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nX-Not-Closed: yes\n"
_, answer, qid = transaction(smtpd.port, "x@example.org", ["broken@example.com"], broken)
got = inst.wait_for("broken", 3, 60)     # three deliveries; a loaded machine takes its time
tap.ok(any(m.decode().endswith("--zz\nX-Not-Closed: yes\n") for m in got),
       "a message that ends inside a part's header keeps it")
smtpd.stop()
inst.stop()
tap.done()
