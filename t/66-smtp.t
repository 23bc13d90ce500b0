#!/usr/bin/env python3
# The smtp runner end to end: a postern instance sends mail for other
# domains through postern-smtp, with a real DNS server (unbound, test
# zones), a receiving MTA in aiosmtpd that answers per recipient, and a
# second postern instance.  What a user sees: who got the mail, the log
# lines (Postfix's relay=host[addr]:port, status=sent/bounced/deferred with
# the remote reply kept), and the bounce with the remote reply in it.
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-qmgr", "postern-bounce"],
            tools=["/usr/bin/python3"])

port = tap.free_port()          # every MX listens on this port (smtp_tcp_port)
dns = DnsServer([
    "dest.test. MX 10 mx1.dest.test.",
    "mx1.dest.test. A 127.0.0.3",
    # the best MX is dead: the second one gets the mail
    "multi.test. MX 5 dead.multi.test.",
    "multi.test. MX 10 mx1.dest.test.",
    "dead.multi.test. A 127.0.0.4",
    # RFC 7505
    "nullmx.test. MX 0 .",
    # the best MX is this machine (inet_interfaces = loopback-only)
    "loop.test. MX 10 self.loop.test.",
    "self.loop.test. A 127.0.0.1",
    # no MX: the A record
    "plain.test. A 127.0.0.3",
    # [host]:port must not look at the MX
    "hostonly.test. A 127.0.0.3",
    "hostonly.test. MX 10 dead.multi.test.",
])
os.environ["POSTERN_DNS_SERVER"] = dns.address
sink = Sink("127.0.0.3", port)

# the second postern: a receiving MTA that offers PIPELINING, DSN, 8BITMIME
rport = tap.free_port()
receiver = new_instance("--domain", "direct.test", "--port", str(rport), "-o", "myhostname=receiver.test")
tap.is_(receiver.start().returncode, 0, "the receiving instance starts")

sender = new_instance("--domain", "example.com",
                      "-o", f"smtp_tcp_port={port}",
                      "-o", "minimal_backoff_time=1s", "-o", "maximal_backoff_time=2s",
                      "-o", "queue_run_delay=1s",
                      "-o", "smtp_tls_security_level=may", "-o", "smtp_tls_loglevel=1",
                      "-o", "smtp_destination_recipient_limit=2",
                      "-o", "transport_maps=texthash:" + "/dev/null")
transport = os.path.join(sender.dir, "transport")
tap.write(transport, f"direct.test smtp:[127.0.0.1]:{rport}\n"
                     f"hostport.test smtp:[hostonly.test]:{port}\n")
r = sender.postern("conf", "-e", f"transport_maps=texthash:{transport}")
tap.is_(r.returncode, 0, "transport_maps set") or tap.diag(r.stderr)
tap.is_(sender.start().returncode, 0, "the sending instance starts")


def log_has(pattern, timeout=30):
    found = tap.wait_until(lambda: re.search(pattern, sender.log()), timeout)
    return tap.like(sender.log(), pattern) if found else tap.like(sender.log(), pattern)


def send(rcpts, body="Subject: test\n\nhello\n", sender_addr="sender@example.com", args=()):
    r = sender.sendmail(["-f", sender_addr] + list(args) + list(rcpts), body.encode())
    tap.is_(r.returncode, 0, "sendmail to " + " ".join(rcpts)) or tap.diag(r.stderr)


# 1. sent, bounced and deferred per recipient, through the MX
send(["good@dest.test", "bad@dest.test", "soft@dest.test"],
     "Subject: per recipient\n\n.a line with a dot\nlast line\n")
log_has(r"postern/qmgr\[\d+\]: [0-9A-F]+: to=<good@dest\.test>, relay=mx1\.dest\.test\[127\.0\.0\.3\]:%d, "
        r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as SINK\d+\)" % port)
log_has(r"to=<bad@dest\.test>, relay=mx1\.dest\.test\[127\.0\.0\.3\]:%d, .*dsn=5\.1\.1, status=bounced "
        r"\(host mx1\.dest\.test\[127\.0\.0\.3\] said: 550 5\.1\.1 <bad@dest\.test>: Recipient address "
        r"rejected: User unknown \(in reply to RCPT TO command\)\)" % port)
log_has(r"to=<soft@dest\.test>, relay=mx1\.dest\.test\[127\.0\.0\.3\]:%d, .*dsn=4\.3\.0, status=deferred "
        r"\(host mx1\.dest\.test\[127\.0\.0\.3\] said: 451 4\.3\.0 <soft@dest\.test>: Recipient address "
        r"rejected: try again later \(in reply to RCPT TO command\)\)" % port)
got = [m for m in sink.messages() if "good@dest.test" in m["recipients"]]
tap.ok(got and got[0]["recipients"] == ["good@dest.test"] and got[0]["sender"] == "sender@example.com",
       "the sink got the message for the accepted recipient only")
tap.like(got[0]["content"] if got else "", r"\n\.a line with a dot\r?\nlast line\r?\n$",
         "the body arrives with its dot line intact (dot-stuffed on the wire)")
tap.is_(got[0]["helo"] if got else None, "localhost", "EHLO with smtp_helo_name ($myhostname)")

# the bounce to the sender names the remote reply exactly
bounces = sender.wait_for("sender", 1, 30)
text = bounces[0].decode("utf-8", "replace") if bounces else ""
unfolded = re.sub(r"\n[ \t]+", " ", text)
tap.like(unfolded, r"<bad@dest\.test>: host mx1\.dest\.test\[127\.0\.0\.3\] said: 550 5\.1\.1 <bad@dest\.test>: "
                   r"Recipient address rejected: User unknown \(in reply to RCPT TO command\)",
         "the bounce quotes the remote server's reply")
tap.like(unfolded, r"Diagnostic-Code: smtp; 550 5\.1\.1 <bad@dest\.test>: Recipient address rejected: User unknown\s",
         "Diagnostic-Code: smtp; the reply")
tap.like(unfolded, r"Final-Recipient: rfc822; bad@dest\.test\nAction: failed\nStatus: 5\.1\.1\n"
                   r"Remote-MTA: dns; mx1\.dest\.test\n", "Remote-MTA: dns; the server that refused")
tap.unlike(text, r"<good@dest\.test>", "the delivered recipient is not in the bounce")

# 2. deferred and retried: a 451 once, then accepted
send(["once@dest.test"])
log_has(r"to=<once@dest\.test>, .*status=deferred \(host mx1\.dest\.test\[127\.0\.0\.3\] said: 451 4\.3\.0")
log_has(r"to=<once@dest\.test>, relay=mx1\.dest\.test\[127\.0\.0\.3\]:%d, .*status=sent \(250 2\.0\.0 Ok" % port,
        60)

# 3. a dead best MX: the next MX takes the mail
send(["good2@multi.test"])
log_has(r"to=<good2@multi\.test>, relay=mx1\.dest\.test\[127\.0\.0\.3\]:%d, .*status=sent" % port)

# 4. null MX and a loop to ourselves bounce at once
send(["user@nullmx.test"])
log_has(r"to=<user@nullmx\.test>, relay=none, .*dsn=5\.1\.10, status=bounced \(Domain nullmx\.test "
        r"does not accept mail \(nullMX\)\)")
send(["user@loop.test"])
log_has(r"to=<user@loop\.test>, relay=none, .*dsn=5\.4\.6, status=bounced \(mail for loop\.test loops "
        r"back to myself\)")

# 5. a domain without MX: its A record; a domain that does not exist bounces
send(["user@plain.test", "user@nowhere.test"])
log_has(r"to=<user@plain\.test>, relay=plain\.test\[127\.0\.0\.3\]:%d, .*status=sent" % port)
log_has(r"to=<user@nowhere\.test>, relay=none, .*dsn=5\.4\.4, status=bounced \(Host or domain name not "
        r"found\. Name service error for name=nowhere\.test type=A: Host not found\)")

# 6. [host]:port from transport_maps: no MX lookup (hostonly.test's MX is dead)
send(["user@hostport.test"])
log_has(r"to=<user@hostport\.test>, relay=hostonly\.test\[127\.0\.0\.3\]:%d, .*status=sent" % port)

# 7. to the second postern, [127.0.0.1]:port: PIPELINING and DSN pass-through
send(["alice@direct.test"], "Subject: dsn\n\nthrough two postern instances\n",
     args=["-N", "success,failure", "-V", "envid-42"])
log_has(r"to=<alice@direct\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*dsn=2\.0\.0, status=sent "
        r"\(250 2\.0\.0 Ok: queued as [0-9A-F]+\)" % rport)
got = receiver.wait_for("alice", 1, 30)
tap.like(got[0].decode() if got else "", r"through two postern instances", "the second instance delivered it")
tap.like(receiver.log(), r"postern/smtpd\[\d+\]: .*(client=localhost\[127\.0\.0\.1\])",
         "the receiver saw our client")
tap.like(receiver.log(), r"to=<alice@direct\.test>, .*status=sent", "delivered by the receiver")


def queued_text():
    out = b""
    for root, dirs, files in os.walk(os.path.join(receiver.dir, "queue")):
        for f in files:
            path = os.path.join(root, f)
            if not os.path.isfile(path):
                continue            # the trigger FIFO, sockets
            try:
                out += open(path, "rb").read()
            except OSError:
                pass
    return out.decode("utf-8", "replace")


# NOTIFY=SUCCESS and ENVID went through: the receiver makes the success
# notice (it waits in its queue: example.com is nowhere in this DNS)
tap.ok(tap.wait_until(lambda: "Original-Envelope-Id: envid-42" in queued_text(), 30),
       "DSN pass-through: the receiver's success notice carries our ENVID")

# success notices, as Postfix's smtp(8): none from us for a server that
# offered DSN (it got NOTIFY=SUCCESS and notifies itself), "relayed" for one
# that did not (the aiosmtpd sink)
send(["notify@dest.test"], "Subject: relayed\n\nto a server without DSN\n", args=["-N", "success"])
notices = []
tap.ok(tap.wait_until(lambda: notices.extend(m.decode("utf-8", "replace") for m in sender.delivered("sender")
                                             if b"Successful Mail Delivery Report" in m
                                             and m.decode("utf-8", "replace") not in notices) or
                      any("notify@dest.test" in n for n in notices), 30),
       "a success notice for the server without DSN")
unfolded = [re.sub(r"\n[ \t]+", " ", n) for n in notices]
tap.ok(any(re.search(r"Final-Recipient: rfc822; notify@dest\.test\nAction: relayed\n", n) for n in unfolded),
       "Action: relayed (the next hop sends no notices)") or tap.diag(unfolded)
tap.ok(not any("alice@direct.test" in n for n in unfolded),
       "no notice of ours for alice@direct.test: the DSN-aware receiver got NOTIFY and sent it")

# STARTTLS with smtp_tls_security_level = may: the receiver offers it
log_has(r"postern/smtp\[\d+\]: Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
        r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)" % rport)
tap.like(receiver.log(), r"postern/smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]|"
                         r"TLS connection established from", "the receiver saw a TLS session")

# smtp_destination_recipient_limit = 2: qmgr hands over at most two at a time
send(["r1@plain.test", "r2@plain.test", "r3@plain.test"])
tap.ok(tap.wait_until(lambda: sum(len(m["recipients"]) for m in sink.messages()
                                  if m["recipients"][0].startswith("r")) >= 3, 30), "three recipients arrive")
sizes = sorted(len(m["recipients"]) for m in sink.messages() if m["recipients"][0].startswith("r"))
tap.is_(sizes, [1, 2], "in two transactions of at most two recipients")


# the same program from a shell, with other TLS levels
def shell(*args):
    r = tap.run([tap.prog("postern-smtp"), "-c", sender.dir] + list(args), input="Subject: shell\n\nx\n")
    return r.stdout + r.stderr


out = shell("-o", "smtp_tls_security_level=encrypt", "-H", f"[127.0.0.3]:{port}", "-f", "s@example.com", "x@y.test")
tap.like(out, r"x@y\.test: dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by host "
              r"127\.0\.0\.3\[127\.0\.0\.3\]\)", "encrypt: a server without STARTTLS is not used")
cert = os.path.join(receiver.dir, "tls", "cert.pem")
out = shell("-o", "smtp_tls_security_level=verify", "-o", f"smtp_tls_CAfile={cert}",
            "-H", f"[127.0.0.1]:{rport}", "-f", "s@example.com", "alice@direct.test")
tap.like(out, r"Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+",
         "verify: a certificate of another name is Untrusted, as Postfix 3.7 logs it")
tap.like(out, r"alice@direct\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "but it names localhost, not 127.0.0.1: not verified, deferred")

# 8. the sending runner is dynamically linked and still calls no name service
r = tap.run(["nm", "-D", "--undefined-only", tap.prog("postern-smtp")])
bad = [l.split()[-1] for l in r.stdout.splitlines()
       if re.match(r"(getpw|getgr|getaddrinfo|gethostby|getnameinfo|getservby)", l.split()[-1])]
tap.is_(bad, [], "postern-smtp imports no name-service call")

receiver.stop()
sender.stop()
tap.done()
