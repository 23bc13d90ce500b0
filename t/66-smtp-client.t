#!/usr/bin/env python3
# What the smtp runner does where the first server fails in the middle or
# not at all, and what it puts on the wire, from a shell
# (postern-smtp -H NEXTHOP): a server that never answers the end of DATA
# (the recipients are deferred, not sent again to the next MX in the same
# run: "message may be sent more than once"), smtp_fallback_relay after
# every MX failed or when the domain is not found (not for null MX, not
# when we are a backup MX), and a bare CR in a body (sent as a space, as
# RFC 5321 4.1.1.4 wants).  DNS is a real unbound with test zones, the
# good server aiosmtpd.
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "postern-smtp"], tools=["/usr/bin/python3"])

port = tap.free_port()
dns = DnsServer([
    # the best MX takes the message and never answers the final dot
    "two.test. MX 10 hang.two.test.",
    "two.test. MX 20 good.two.test.",
    "hang.two.test. A 127.0.0.5",
    "good.two.test. A 127.0.0.6",
    # nothing listens on the only MX
    "down.test. MX 10 mx.down.test.",
    "mx.down.test. A 127.0.0.7",
    # we are the second MX (inet_interfaces = loopback-only: 127.0.0.1)
    "backup.test. MX 10 mx.down.test.",
    "backup.test. MX 20 self.backup.test.",
    "self.backup.test. A 127.0.0.1",
    "nullmx.test. MX 0 .",
    "relay.test. A 127.0.0.6",
])
os.environ["POSTERN_DNS_SERVER"] = dns.address
sink = Sink("127.0.0.6", port)

# the server that goes silent after the message
hang_seen = []


def hang_server():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.5", port))
    ls.listen(8)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=hang_session, args=(c,), daemon=True).start()


def hang_session(c):
    f = c.makefile("rb")
    c.sendall(b"220 hang.two.test ESMTP\r\n")
    data = False
    for line in f:
        if data:
            if line == b".\r\n":
                hang_seen.append(1)
                threading.Event().wait(60)      # never answer
                return
            continue
        cmd = line[:4].upper()
        if cmd == b"EHLO":
            c.sendall(b"250-hang.two.test\r\n250 8BITMIME\r\n")
        elif cmd == b"DATA":
            c.sendall(b"354 go ahead\r\n")
            data = True
        else:
            c.sendall(b"250 2.0.0 Ok\r\n")


threading.Thread(target=hang_server, daemon=True).start()

conf = new_instance("--domain", "example.com", "-o", "inet_interfaces=loopback-only",
                    "-o", f"smtp_tcp_port={port}", "-o", "smtp_connect_timeout=5s")


def smtp(hop, rcpt, *options, body="Subject: test\n\nhello\n"):
    args = [tap.prog("postern-smtp"), "-c", conf.dir]
    for o in options:
        args += ["-o", o]
    r = tap.run(args + ["-H", hop, "-f", "s@example.com", rcpt], input=body)
    return r.stdout + r.stderr


def sink_has(rcpt):
    return [m for m in sink.messages() if rcpt in m["recipients"]]


# 1. a timeout after the final dot: deferred, and the second MX gets nothing
out = smtp("two.test", "once@two.test", "smtp_data_done_timeout=2s")
tap.like(out, r"once@two\.test: dsn=4\.4\.2, status=deferred \(conversation with hang\.two\.test\[127\.0\.0\.5\] "
              r"timed out while sending end of data -- message may be sent more than once\)",
         "a timeout after the final dot defers, in Postfix's words")
tap.is_(len(hang_seen), 1, "the first MX had the whole message")
tap.is_(sink_has("once@two.test"), [], "the second MX was not given it as well (no duplicate in this run)")

# 2. smtp_fallback_relay
fallback = f"smtp_fallback_relay=[relay.test]:{port}"
out = smtp("down.test", "a@down.test", fallback)
tap.like(out, r"a@down\.test: dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as SINK\d+\)",
         "every MX down: the fallback relay takes it")
tap.like(out, r"relay=relay\.test\[127\.0\.0\.6\]:%d" % port, "relay= names the fallback host")
out = smtp("down.test", "b@down.test")
tap.like(out, r"b@down\.test: dsn=4\.4\.1, status=deferred \(connect to mx\.down\.test\[127\.0\.0\.7\]:%d: "
              r"Connection refused\)" % port, "without a fallback relay: deferred")
out = smtp("nowhere.test", "c@nowhere.test", fallback)
tap.like(out, r"c@nowhere\.test: dsn=2\.0\.0, status=sent", "a domain that is not found: the fallback relay too")
out = smtp("nullmx.test", "d@nullmx.test", fallback)
tap.like(out, r"d@nullmx\.test: dsn=5\.1\.10, status=bounced", "a null MX still bounces")
out = smtp("backup.test", "e@backup.test", fallback)
tap.like(out, r"e@backup\.test: dsn=4\.4\.1, status=deferred \(connect to mx\.down\.test",
         "we are a backup MX: no fallback relay (mail would go round)")
tap.is_(sink_has("e@backup.test"), [], "and the relay got nothing")

# 3. a bare CR goes as a space; CR LF split across 64 KiB reads stays one line end
body = "Subject: cr\n\na bare\rCR and a CR at the end\r\n"
while len(body) < 65535 - 80:
    body += "y" * 77 + "\n"
body += "y" * (65535 - len(body) - 1) + "z"
body += "\r\nlast\n"
tap.is_(body.index("\r\nlast"), 65535, "the test message has CR at byte 65535, LF after it (two reads)")
out = smtp("[127.0.0.6]", "cr@two.test", body=body)
tap.like(out, r"cr@two\.test: dsn=2\.0\.0, status=sent", "sent")
got = sink_has("cr@two.test")
content = got[0]["content"] if got else ""
tap.like(content, r"a bare CR and a CR at the end\r\n", "the bare CR went as a space, the CR LF as a line end")
tap.like(content, r"z\r\nlast\r\n$", "a CR LF across the 64 KiB read boundary is one line end")
tap.unlike(content, r"\r(?!\n)", "no CR on the wire outside CR LF")

conf.stop()
tap.done()
