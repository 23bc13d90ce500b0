#!/usr/bin/env python3
# sendmail -bv, Postfix's verify mode: each recipient goes through
# rewriting and routing as mail would, the smtp runner stops after RCPT TO
# (no DATA), local delivery only resolves the address, nothing is
# delivered, and the sender gets a "Mail Delivery Status Report" saying
# what would happen to each (Action: deliverable / undeliverable).  The
# remote side is aiosmtpd behind relayhost, answering bad... with 550.
import email
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "sendmail", "postern-smtp", "postern-qmgr", "postern-bounce"],
            tools=["/usr/bin/python3"])
sink_port = tap.free_port()
sink = Sink("127.0.0.1", sink_port)
inst = new_instance("--domain", "example.com", "-o", f"relayhost=[127.0.0.1]:{sink_port}",
                    "-o", "smtp_tls_security_level=none")
tap.is_(inst.start().returncode, 0, "the instance starts")

r = inst.sendmail(["-bv", "-f", "sender@example.com", "ok@remote.test", "bad@remote.test",
                   "sender@example.com"], b"")
tap.is_(r.returncode, 0, "sendmail -bv: accepted") or tap.diag(r.stderr)
got = inst.wait_for("sender", 1, 60)
tap.is_(len(got), 1, "the sender gets one report") or tap.diag(inst.log()[-3000:])
log = inst.log()
tap.like(log, r"to=<ok@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=deliverable" % sink_port,
         "the log: ok@remote.test deliverable")
tap.like(log, r"to=<bad@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*dsn=5\.1\.1, status=undeliverable"
         % sink_port, "bad@remote.test undeliverable (550 5.1.1)")
tap.like(log, r"to=<sender@example\.com>, relay=virtual, .*status=deliverable \(delivers to maildir\)",
         "the instance's own address: delivers to maildir, as Postfix's virtual says")
tap.is_(sorted(sink.rcpts()), [("bad@remote.test", "550"), ("ok@remote.test", "250")],
        "the server saw RCPT TO for both remote addresses")
tap.is_(sink.messages(), [], "but no DATA: nothing was sent")

report = email.message_from_bytes(got[0]) if got else email.message.Message()
tap.is_(report["Subject"], "Mail Delivery Status Report", "Subject: Mail Delivery Status Report")
tap.is_(report.get_content_type(), "multipart/report", "a multipart/report")
parts = list(report.walk())
text = next((p.get_payload(decode=True).decode() for p in parts if p.get_content_type() == "text/plain"), "")
tap.like(text, r"Enclosed is the mail delivery report that you requested\.", "Postfix's words")
status = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
blocks = [b for b in status.get_payload()[1:]] if status else []
actions = {b["Final-Recipient"].split(";")[1].strip(): (b["Action"], b["Status"]) for b in blocks}
tap.is_(actions, {"ok@remote.test": ("deliverable", "2.1.5"), "bad@remote.test": ("undeliverable", "5.1.1"),
                  "sender@example.com": ("deliverable", "2.0.0")},
        "Action: deliverable / undeliverable for each, with its status")
tap.ok(tap.wait_until(lambda: sum(inst.queue_counts().values()) == 0, 20), "the queue is empty afterwards") \
    or tap.diag(inst.queue_counts())
tap.is_(len(inst.delivered("sender")), 1, "nothing but the report reached the local mailbox")
inst.stop()
tap.done()
