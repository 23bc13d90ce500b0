#!/usr/bin/env python3
# CHUNKING as a client (RFC 3030): where the server offers it, postern-smtp
# sends the message as BDAT chunks instead of DATA (Postfix's smtp(8)
# always sends DATA; `smtp_discard_ehlo_keywords = chunking` makes postern
# do the same).  The server is a second postern instance, whose log counts
# the commands of each session ("disconnect from ... bdat=N data=N").
# What a user notices: the message arrives byte for byte (no dot-stuffing
# is left in it, a line of one dot survives, a bare CR goes as a space as
# with DATA), a large message goes in several chunks, a chunk the server
# refuses bounces the message with the server's reply and the session ends
# with QUIT, and the discarded keyword is logged as Postfix logs it.
# (sendmail -i: a line of one dot is content, not the end of input.)
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-qmgr"])

receiver = new_instance("--domain", "direct.test", "-o", "myhostname=receiver.test",
                        "-o", "message_size_limit=150000")
tap.is_(receiver.start().returncode, 0, "the receiving instance starts")
rport = int(re.search(r"127\.0\.0\.1:(\d+)\s", open(os.path.join(receiver.dir, "master.cf")).read()).group(1))

sender = new_instance("--domain", "example.com")
with open(os.path.join(sender.dir, "main.cf"), "a") as f:
    f.write(f"""
transport_maps = inline:{{ {{direct.test = smtp:[127.0.0.1]:{rport}}} }}
smtp_tls_security_level = none
""")
tap.is_(sender.start().returncode, 0, "the sending instance starts")


def disconnects():
    return re.findall(r"postern/smtpd\[\d+\]: disconnect from \S+\[127\.0\.0\.1\](.*)", receiver.log())


def send(body, subject):
    r = sender.sendmail(["-i", "-f", "me@example.com", "alice@direct.test"],
                        f"Subject: {subject}\n\n".encode() + body)
    tap.is_(r.returncode, 0, f"sendmail: {subject}") or tap.diag(r.stderr)


def discard(keywords):
    """Restart the sender with smtp_discard_ehlo_keywords = keywords."""
    sender.postern("conf", "-e", f"smtp_discard_ehlo_keywords = {keywords}")
    sender.stop()
    tap.is_(sender.start().returncode, 0, f"restarted with smtp_discard_ehlo_keywords = {keywords}")
    return len(sender.log())


def body_of(msg):
    return msg.split(b"\n\n", 1)[1] if b"\n\n" in msg else b""


# 1. a small message: one BDAT LAST, dots and a bare CR as DATA gives them
body = b"first line\n.\n..two dots\n.leading dot\nbare\rCR\nlast line\n"
send(body, "small")
got = receiver.wait_for("alice", 1, 30)
tap.is_(len(got), 1, "the message arrived")
tap.is_(body_of(got[0]) if got else b"", body.replace(b"\r", b" "),
        "byte for byte: a lone dot, leading dots, no stuffing left; a bare CR as a space")
tap.ok(tap.wait_until(lambda: len(disconnects()) >= 1, 20), "the session ended")
first = disconnects()[0] if disconnects() else ""
tap.like(first, r" bdat=1 ", "the server saw one BDAT") or tap.diag(first)
tap.unlike(first, r" data=", "and no DATA")
tap.like(first, r" quit=1 ", "the session ended with QUIT")
tap.like(sender.log(), r"to=<alice@direct\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 ",
         "the sender logged status=sent with the server's reply")

# 2. a large message: several chunks, intact
big = b"".join(b"%06d " % i + b"x" * 70 + b"\n" for i in range(1500))     # ~117 kB
send(big, "large")
got = receiver.wait_for("alice", 2, 30)
tap.ok(len(got) == 2 and body_of(got[-1]) == big, "a 117 kB message arrives intact")
tap.ok(tap.wait_until(lambda: len(disconnects()) >= 2, 20), "its session ended")
m = re.search(r" bdat=(\d+) ", disconnects()[1] if len(disconnects()) > 1 else "")
tap.ok(m and int(m.group(1)) >= 2, f"in more than one chunk (bdat={m.group(1) if m else '?'})")

# 3. a chunk the server refuses (over its message_size_limit; SIZE not
#    offered to the client, so MAIL FROM cannot refuse it first)
mark = discard("size")
huge = big * 2                                                          # ~234 kB
send(huge, "too large")
tap.ok(tap.wait_until(lambda: re.search(r"to=<alice@direct\.test>, .*status=bounced", sender.log()[mark:]), 30),
       "a message over the server's limit is bounced") or tap.diag(sender.log()[mark:][-2000:])
tap.like(sender.log()[mark:], r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 552 5\.3\.4 "
                              r"[^)]*\(in reply to BDAT command\)\)",
         "with the server's 552 5.3.4, in reply to BDAT")
tap.like(sender.log()[mark:], r"discarding EHLO keywords: SIZE", "the discarded SIZE is logged as Postfix logs it")
tap.ok(tap.wait_until(lambda: len(disconnects()) >= 3, 20), "that session ended")
tap.like(disconnects()[2] if len(disconnects()) > 2 else "", r" quit=1 ",
         "with QUIT: a refused chunk ends the transaction, not the session")

# 4. smtp_discard_ehlo_keywords = chunking: DATA, as Postfix's smtp(8)
mark = discard("chunking")
send(body, "by DATA")
got = receiver.wait_for("alice", 3, 30)
tap.ok(len(got) == 3 and body_of(got[-1]) == body.replace(b"\r", b" "), "the message arrives, the same bytes")
tap.ok(tap.wait_until(lambda: len(disconnects()) >= 4, 20), "its session ended")
last = disconnects()[3] if len(disconnects()) > 3 else ""
tap.like(last, r" data=1 ", "sent with DATA") or tap.diag(last)
tap.unlike(last, r" bdat=", "and no BDAT")
tap.like(sender.log()[mark:], r"postern/smtp\[\d+\]: [0-9A-F]+: discarding EHLO keywords: CHUNKING",
         "the sender logs the discarded keyword")

# 5. silent-discard: the same, not logged
mark = discard("chunking, silent-discard")
send(body, "silently")
got = receiver.wait_for("alice", 4, 30)
tap.is_(len(got), 4, "the message arrives")
tap.ok(tap.wait_until(lambda: re.search(r"status=sent", sender.log()[mark:]), 20), "logged as sent")
tap.unlike(sender.log()[mark:], r"discarding EHLO keywords", "silent-discard: nothing logged about it")

# 6. smtp_discard_ehlo_keyword_address_maps: by the server's address, in
#    place of smtp_discard_ehlo_keywords for that server
table = os.path.join(sender.dir, "discard_by_address")
tap.write(table, "127.0.0.1 pipelining, chunking\n")
sender.postern("conf", "-e", f"smtp_discard_ehlo_keyword_address_maps = texthash:{table}")
mark = discard("size")
send(body, "by address")
got = receiver.wait_for("alice", 5, 30)
tap.is_(len(got), 5, "the message arrives")
tap.ok(tap.wait_until(lambda: len(disconnects()) >= 6, 20), "its session ended")
last = disconnects()[5] if len(disconnects()) > 5 else ""
tap.like(last, r" data=1 ", "the table's list for 127.0.0.1 applies: DATA, not BDAT") or tap.diag(last)
tap.like(sender.log()[mark:], r"discarding EHLO keywords: PIPELINING CHUNKING",
         "... in place of smtp_discard_ehlo_keywords (SIZE kept)")
sender.stop()
receiver.stop()
tap.done()
