#!/usr/bin/env python3
# The one resolver (lib/net/dns.c) against a real DNS server (unbound) the
# test starts on loopback: each record type, "does not exist" (NXDOMAIN,
# NODATA) kept apart from "could not be looked up" (SERVFAIL, a dead
# server, a timeout), the forward-confirmed client name, through
# `postern dns`, whose exit code is 0 found, 1 not found, 75 try again.
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from dnsserver import DnsServer, UNBOUND

if not os.access(UNBOUND, os.X_OK):
    skip_all("unbound is not installed (./deps installs it)")

dns = DnsServer([
    "ok.test. A 192.0.2.1",
    "ok.test. AAAA 2001:db8::1",
    "ok.test. MX 10 mx.ok.test.",
    "ok.test. MX 5 mx0.ok.test.",
    'ok.test. TXT "v=spf1 -all"',
    'multi.test. TXT "one " "two"',
    "nullmx.test. MX 0 .",
    "1.2.0.192.in-addr.arpa. PTR ok.test.",
    "2.2.0.192.in-addr.arpa. PTR liar.test.",
    "liar.test. A 192.0.2.99",
    "4.2.0.192.in-addr.arpa. PTR gone.test.",
    "5.2.0.192.in-addr.arpa. PTR ok.fail.test.",
    "7.2.0.192.in-addr.arpa. PTR 192.0.2.7.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR ok.test.",
], zones=["test.", "2.0.192.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."],
   broken=["fail.test.", "9.2.0.192.in-addr.arpa."])
env = {"POSTERN_DNS_SERVER": dns.address}


def dnscmd(*args, server=None):
    e = dict(env)
    if server:
        e["POSTERN_DNS_SERVER"] = server
    t0 = time.monotonic()
    r = run(["postern", "dns"] + list(args), env=e, timeout=30)
    return r, time.monotonic() - t0


# found, each type
for qtype, name, want in [
        ("A", "ok.test", "192.0.2.1\n"),
        ("AAAA", "ok.test", "2001:db8::1\n"),
        ("MX", "ok.test", "5 mx0.ok.test\n10 mx.ok.test\n"),
        ("TXT", "ok.test", "v=spf1 -all\n"),
        ("TXT", "multi.test", "one two\n"),
        ("MX", "nullmx.test", "0 .\n"),
        ("PTR", "1.2.0.192.in-addr.arpa", "ok.test\n"),
        ("A", "ok.test.", "192.0.2.1\n")]:
    r, _ = dnscmd(qtype, name)
    is_((r.returncode, r.stdout), (0, want), f"{qtype} {name}: found")

# does not exist: NXDOMAIN and NODATA, both exit 1, told apart on stderr
r, _ = dnscmd("A", "nope.test")
is_(r.returncode, 1, "a name that does not exist: not found")
like(r.stderr, r"NXDOMAIN", "... as NXDOMAIN")
r, _ = dnscmd("MX", "liar.test")
is_(r.returncode, 1, "a name without records of the type: not found")
like(r.stderr, r"NODATA", "... as NODATA")

# could not be looked up: a zone whose server does not answer, a timeout,
# no server at all -- never "not found"
r, took = dnscmd("-t", "1500", "A", "x.fail.test")
is_(r.returncode, 75, "a zone whose server is down: temporary failure")
ok(took < 10, f"... within the deadline and a little ({took:.1f}s)")
r, took = dnscmd("-t", "1000", "A", "ok.test", server=f"127.0.0.1@{dns.dead_port}")
is_(r.returncode, 75, "no DNS server at all: temporary failure, not 'not found'")
ok(took < 5, f"... within the deadline ({took:.1f}s)")
like(r.stderr, r"temporary failure", "... and says so")

# the client name, forward-confirmed as Postfix's smtpd does
r, _ = dnscmd("-x", "192.0.2.1")
is_((r.returncode, r.stdout), (0, "reverse: ok.test (found)\nforward: found\nname: ok.test\n"),
    "PTR ok.test, whose A record is the address: the name is ok.test")
r, _ = dnscmd("-x", "2001:db8::1")
is_((r.returncode, r.stdout.splitlines()[-1]), (0, "name: ok.test"), "the same over IPv6 (ip6.arpa, AAAA)")
r, _ = dnscmd("-x", "192.0.2.2")
is_((r.returncode, r.stdout), (1, "reverse: liar.test (found)\nforward: not found\nname: unknown\n"),
    "PTR liar.test, whose A record is another address: unknown, the PTR name kept")
r, _ = dnscmd("-x", "192.0.2.3")
is_((r.returncode, r.stdout), (1, "reverse: unknown (not found)\nforward: not found\nname: unknown\n"),
    "no PTR record: unknown, permanently")
r, _ = dnscmd("-x", "192.0.2.4")
is_((r.returncode, r.stdout.splitlines()[1]), (1, "forward: not found"),
    "a PTR name that does not exist: unknown, permanently")
r, _ = dnscmd("-x", "192.0.2.7")
is_((r.returncode, r.stdout.splitlines()[0]), (1, "reverse: unknown (not found)"),
    "a PTR record naming an address (Postfix's \"numeric hostname\"): unknown")
r, _ = dnscmd("-t", "1500", "-x", "192.0.2.9")
is_((r.returncode, r.stdout.splitlines()[0]), (75, "reverse: unknown (temporary failure)"),
    "the reverse zone's server is down: a temporary failure")
r, _ = dnscmd("-t", "1500", "-x", "192.0.2.5")
is_((r.returncode, r.stdout.splitlines()[1]), (75, "forward: temporary failure"),
    "the PTR name's zone is down: a temporary failure of the confirmation")

r, _ = dnscmd("BOGUS", "ok.test")
is_(r.returncode, 2, "an unknown record type is a usage error")

# ---- the same through the lookup service (tables dns:TYPE, dns:client),
# as the static programs will ask: answered in order per client, and a
# slow lookup holds up no other client ----
import lookupclient
from lookupclient import answers, req
d = tempdir()
queue = os.path.join(d, "queue")
for sub in ("pid", "public"):
    os.makedirs(os.path.join(queue, sub))
sock_path = os.path.join(queue, "public", "lookup")
write(os.path.join(d, "main.cf"), f"queue_directory = {queue}\nmaillog_file = {d}/maillog\n"
      "alias_maps =\n")
svc = start([prog("postern-lookup"), "-c", d],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_DNS_TIMEOUT_MS": "2000"})
for _ in range(250):
    if os.path.exists(sock_path):
        break
    time.sleep(0.02)


def connect():
    return lookupclient.connect(sock_path)


s = connect()
s.sendall(req("dns:A", "ok.test") + req("dns:MX", "ok.test") + req("dns:A", "nope.test")
          + req("dns:TXT", "ok.test") + req("dns:client", "192.0.2.1")
          + req("dns:client", "192.0.2.2") + req("proxy:dns:PTR", "3.2.0.192.in-addr.arpa")
          + req("dns:BOGUS", "x") + req("dns:MX", "nullmx.test"))
is_(answers(s, 9), ["F192.0.2.1", "F5 mx0.ok.test\n10 mx.ok.test", "Nnxdomain", "Fv=spf1 -all",
                    "Ffound found ok.test ok.test", "Ffound notfound liar.test unknown", "Nnxdomain",
                    "Runknown DNS table", "F0 ."],
    "the service answers dns: requests, pipelined, in order, without proxy_read_maps "
    "(N says nxdomain or nodata)")
s.sendall(req("dns:MX", "nullmx.test") + req("dns:A", "nullmx.test"))
is_(answers(s, 2)[1], "Nnodata", "a name without records of the type: N nodata")

slow, fast = connect(), connect()
t0 = time.monotonic()
slow.sendall(req("dns:A", "x.fail.test") + req("dns:A", "ok.test"))
time.sleep(0.1)
fast.sendall(req("dns:A", "ok.test"))
is_(answers(fast, 1), ["F192.0.2.1"], "a lookup waiting on a dead server holds up no other client")
ok(time.monotonic() - t0 < 1.5, f"... answered at once ({time.monotonic() - t0:.2f}s)")
got = answers(slow, 2)
is_([g[:1] for g in got], ["R", "F"],
    "the slow client gets 'try again' at the deadline, then its next answer, in order")
ok(1.5 <= time.monotonic() - t0 < 6, f"... after the deadline ({time.monotonic() - t0:.1f}s)")
# smtpd sends a command's lookups together: one client's DNS requests are
# resolved at once, and answered in the order asked, a table's answer after
t0 = time.monotonic()
s.sendall(req("dns:A", "a.fail.test") + req("dns:A", "b.fail.test") + req("dns:A", "c.fail.test")
          + req("dns:A", "ok.test") + req("texthash:/nonexistent", "x"))
got = answers(s, 5)
is_([g[:1] for g in got], ["R", "R", "R", "F", "D"],
    "a client's pipelined DNS requests: answered in order, the table's after them")
ok(time.monotonic() - t0 < 4, f"... resolved at once: three deadlines of 2 s in {time.monotonic() - t0:.1f}s")
s.sendall(req("dns:A", "ok.test"))
is_(answers(s, 1), ["F192.0.2.1"], "and the client goes on")
slow.sendall(req("dns:A", "y.fail.test"))
slow.close()                            # gone while its lookup is out
s.sendall(req("dns:client", "2001:db8::1"))
is_(answers(s, 1), ["Ffound found ok.test ok.test"], "a client that left with a lookup out does not upset the service")
is_(stop(svc), 0, "the service stops cleanly")
done()
