#!/usr/bin/env python3
# MTA-STS as Postfix does it, with the real policy server: Debian's
# postfix-mta-sts-resolver (mta-sts-daemon) answers postern's
# `smtp_tls_policy_maps = socketmap:inet:HOST:PORT:postfix`.  The
# resolver finds each domain's _mta-sts TXT record in the test's unbound
# and fetches https://mta-sts.DOMAIN/.well-known/mta-sts.txt from a small
# HTTPS server of the test's own, whose certificate the test's CA signed
# (SSL_CERT_FILE for the resolver).  Both need port 53 and port 443, so the
# test runs in a network namespace of its own (unshare --net --mount),
# whose /etc/resolv.conf names that unbound.  What a user sees: an
# `enforce` domain whose MX shows a matching certificate gets the mail
# (Verified), one whose MX shows another name's certificate waits
# (4.7.5, nothing sent), a `testing` domain gets its mail in any case.
import http.server
import os
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap

import netns
netns.enter("POSTERN_MTA_STS_NETNS", ["postern", "postern-smtp"], ["mta-sts-daemon", "unbound"],
            needs_root="a network namespace whose instance runs as the machine's root: needs root")

from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink
from testca import TestCA

home = netns.private_resolver()

sts_ip = "127.0.0.20"
dns = DnsServer([
    "enforce.test. MX 10 mx.enforce.test.",
    "mx.enforce.test. A 127.0.0.5",
    '_mta-sts.enforce.test. TXT "v=STSv1; id=20261207"',
    f"mta-sts.enforce.test. A {sts_ip}",
    "badcert.test. MX 10 mx.badcert.test.",
    "mx.badcert.test. A 127.0.0.6",
    '_mta-sts.badcert.test. TXT "v=STSv1; id=20261207"',
    f"mta-sts.badcert.test. A {sts_ip}",
    "testing.test. MX 10 mx.badcert.test.",
    '_mta-sts.testing.test. TXT "v=STSv1; id=1"',
    f"mta-sts.testing.test. A {sts_ip}",
    "nosts.test. MX 10 mx.badcert.test.",
], port=53)
os.environ["POSTERN_DNS_SERVER"] = dns.address

ca = TestCA(tap.tempdir())
# the policy server's certificate, for every mta-sts.DOMAIN it serves
web_chain, web_key = ca.issue("mta-sts.enforce.test", "mta-sts.badcert.test", "mta-sts.testing.test")
policies = {
    "mta-sts.enforce.test": "version: STSv1\nmode: enforce\nmx: mx.enforce.test\nmax_age: 86400\n",
    # the MX is named, but its server shows a certificate of another name
    "mta-sts.badcert.test": "version: STSv1\nmode: enforce\nmx: mx.badcert.test\nmax_age: 86400\n",
    "mta-sts.testing.test": "version: STSv1\nmode: testing\nmx: mx.badcert.test\nmax_age: 86400\n",
}
fetched = []


class Policy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        body = policies.get(host)
        fetched.append((host, self.path))
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


web = http.server.ThreadingHTTPServer((sts_ip, 443), Policy)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(web_chain, web_key)
web.socket = context.wrap_socket(web.socket, server_side=True)
threading.Thread(target=web.serve_forever, daemon=True).start()

# the resolver, as Debian packages it, with the test's CA (reuse_port:
# true, as its examples have it; Debian's 1.1.2 does not start with false)
resolver_port = tap.free_port()
config = tap.write(os.path.join(home, "mta-sts-daemon.yml"),
                   f"host: 127.0.0.1\nport: {resolver_port}\nreuse_port: true\n"
                   "cache:\n  type: internal\n  options:\n    cache_size: 100\n"
                   "default_zone:\n  strict_testing: false\n  timeout: 4\n")
resolver_log = os.path.join(home, "mta-sts-daemon.log")
resolver = tap.start(["mta-sts-daemon", "-c", config, "-v", "debug"],
                     env={"SSL_CERT_FILE": ca.cert}, stdout=subprocess.DEVNULL,
                     stderr=open(resolver_log, "w"))


def listening():
    import socket
    try:
        socket.create_connection(("127.0.0.1", resolver_port), 1).close()
        return True
    except OSError:
        return False


tap.ok(tap.wait_until(listening, 20), "mta-sts-daemon listens") or tap.diag(open(resolver_log).read())

# the receiving MTAs: mx.enforce.test with its own certificate; the other
# one shows a certificate for a name no policy lists
port = tap.free_port("127.0.0.5")
good_chain, good_key = ca.issue("mx.enforce.test")
other_chain, other_key = ca.issue("other.example")
good = Sink("127.0.0.5", port, "mx.enforce.test", tls={"cert": good_chain, "key": good_key})
bad = Sink("127.0.0.6", port, "mx.badcert.test", tls={"cert": other_chain, "key": other_key})

inst = new_instance("--domain", "example.com")
sm = f"socketmap:inet:127.0.0.1:{resolver_port}:postfix"


def send(domain, rcpt):
    r = tap.run([tap.prog("postern-smtp"), "-c", inst.dir, "-o", f"smtp_tcp_port={port}",
                 "-o", "smtp_tls_security_level=may", "-o", f"smtp_tls_CAfile={ca.cert}",
                 "-o", f"smtp_tls_policy_maps={sm}", "-o", "smtp_tls_loglevel=1",
                 "-H", domain, "-f", "s@example.com", rcpt], input=b"Subject: sts\n\nhello\n")
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def received(sink, rcpt):
    return [m for m in sink.messages() if rcpt in m["recipients"]]


# the resolver's answer, read through postern's socketmap table
r = inst.postern("map", "-q", "enforce.test", sm)
tap.is_(r.returncode, 0, "postern map -q: the resolver has a policy for enforce.test") or \
    tap.diag(r.stdout + r.stderr + open(resolver_log).read()[-2000:])
tap.like(r.stdout, r"^secure match=mx\.enforce\.test servername=hostname\s*$",
         "the resolver's words: secure, the policy's MX names, SNI (as it answers Postfix)")
tap.ok(("mta-sts.enforce.test", "/.well-known/mta-sts.txt") in fetched,
       "it fetched the policy over HTTPS from the test's server")
r = inst.postern("map", "-q", "nosts.test", sm)
tap.is_(r.returncode, 1, "a domain without an _mta-sts record: not found")

# enforce, matching certificate: sent, Verified
out = send("enforce.test", "a@enforce.test")
tap.like(out, r"Verified TLS connection established to mx\.enforce\.test\[127\.0\.0\.5\]:%d" % port,
         "enforce: the MX's certificate matches the policy: Verified")
tap.like(out, r"a@enforce\.test: .*status=sent", "and the mail is sent") or tap.diag(out)
tap.is_(len(received(good, "a@enforce.test")), 1, "the server has it")
tap.is_(good.sni()[-1:], ["mx.enforce.test"], "with the MX's name as SNI (servername=hostname)")

# enforce, a certificate of another name: deferred, nothing sent
out = send("badcert.test", "b@badcert.test")
tap.like(out, r"Untrusted TLS connection established to mx\.badcert\.test\[127\.0\.0\.6\]",
         "enforce: a certificate that does not name the MX is not trusted")
tap.like(out, r"b@badcert\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "the mail waits (4.7.5), as Postfix with the resolver does")
tap.is_(received(bad, "b@badcert.test"), [], "nothing was sent to that server")

# testing: the resolver gives no policy (strict_testing: false), so the
# main.cf level (may) applies and the mail goes
out = send("testing.test", "c@testing.test")
tap.ok(("mta-sts.testing.test", "/.well-known/mta-sts.txt") in fetched, "testing: the policy was fetched")
tap.like(out, r"c@testing\.test: .*status=sent", "testing: sent despite the certificate (report only)")
tap.is_(len(received(bad, "c@testing.test")), 1, "over TLS to that server")
tap.is_(received(bad, "c@testing.test")[0]["tls"], True, "(in TLS all the same)")

# no MTA-STS at all: may, as before
out = send("nosts.test", "d@nosts.test")
tap.like(out, r"d@nosts\.test: .*status=sent", "no policy: the main.cf level, sent")

tap.stop(resolver)
web.shutdown()
tap.done()
