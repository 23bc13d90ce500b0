#!/usr/bin/env python3
# Routing and flush (issue 14): transport_maps in transport(5)'s order with
# seed 004's examples, across two tables (every table is asked for a key
# before the next key is tried) and with a pattern table (it sees the
# whole address, never the domain alone); sender_dependent_relayhost_maps,
# sender_dependent_default_transport_maps and the null sender's lookup
# keys, checked with `postern-qmgr -r -f SENDER` and through a started
# instance; defer_transports held until `postern queue flush DOMAIN`
# (that domain only), ETRN (fast_flush_domains) and `postern queue flush`.
import os, pwd, re, smtplib, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import instance as inst_mod

require(programs=("postern-qmgr", "postern-pipe", "postern-smtpd", "sendmail", "postern-bounce"))
d = tempdir()


def resolve(main_cf, *addresses, sender=None):
    write(os.path.join(d, "main.cf"), "inet_interfaces = loopback-only\nmyhostname = mx.example.test\n"
          "maillog_file = " + os.path.join(d, "log") + "\n" + main_cf)
    args = [prog("postern-qmgr"), "-c", d, "-r"] + (["-f", sender] if sender is not None else [])
    r = run(args + list(addresses))
    return r, dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)


# ---- transport_maps: seed 004's table, Postfix's search order ----------
write(os.path.join(d, "transport"), """
example.com       smtp:[192.168.23.56]:20025
orillynet.com     smtp
ora.com           maildrop
kdent@ora.com     error:no mail accepted for kdent
.sub.test         relay:[sub-gw.test]
*                 smtp:[fallback.test]
""")
# a second table, asked after the first for each key: a whole address in
# it beats a domain in the first; its domain-only patterns never match
write(os.path.join(d, "transport.pcre"), """
/^boss@orillynet\\.com$/   relay:[boss-gw.test]
/^plain\\.test$/           discard:
/^plain\\./                discard:
""")
MAPS = (f"transport_maps = texthash:{d}/transport, pcre:{d}/transport.pcre\n"
        "recipient_delimiter = +\n")
r, got = resolve(MAPS, "kdent@ora.com", "kdent+x@ora.com", "jane@ora.com", "x@example.com",
                 "boss@orillynet.com", "x@orillynet.com", "a@deep.sub.test", "a@sub.test",
                 "a@plain.test", "a@other.test")
is_(r.returncode, 0, "postern-qmgr -r") or diag(r.stderr)
want = {
    "kdent@ora.com": ("class=default, transport=error, nexthop=no mail accepted for kdent",
                      "an address entry beats its domain's entry"),
    "kdent+x@ora.com": ("class=default, transport=error, nexthop=no mail accepted for kdent",
                        "user+ext@domain finds user@domain before the domain"),
    "jane@ora.com": ("class=default, transport=maildrop, nexthop=ora.com",
                     "'ora.com maildrop': the domain's transport, the domain as nexthop"),
    "x@example.com": ("class=default, transport=smtp, nexthop=[192.168.23.56]:20025",
                      "smtp:[192.168.23.56]:20025 as written"),
    "boss@orillynet.com": ("class=default, transport=relay, nexthop=[boss-gw.test]",
                           "the whole address in the second table beats the domain in the first"),
    "x@orillynet.com": ("class=default, transport=smtp, nexthop=orillynet.com",
                        "'orillynet.com smtp': the domain is the nexthop"),
    "a@deep.sub.test": ("class=default, transport=relay, nexthop=[sub-gw.test]",
                        "'.sub.test' matches a subdomain"),
    "a@sub.test": ("class=default, transport=smtp, nexthop=[fallback.test]",
                   "but not sub.test itself (transport_maps is not in parent_domain_matches_subdomains)"),
    "a@plain.test": ("class=default, transport=smtp, nexthop=[fallback.test]",
                     "a pattern table never sees the domain alone: '*' decides"),
    "a@other.test": ("class=default, transport=smtp, nexthop=[fallback.test]", "'*' is asked last"),
}
for address, (expected, name) in want.items():
    is_(got.get(address), expected, f"{address}: {name}")

# ---- sender-dependent relayhost and default transport ------------------
write(os.path.join(d, "sender_relay"), """
alice@corp.test   [relay-a.test]
@corp.test        [relay-corp.test]
dunno@corp.test   DUNNO
<>                [bounce-relay.test]
<bounce>          [other-bounce.test]
""")
write(os.path.join(d, "sender_transport"), """
@special.test     tspecial:[special-gw.test]
@plain.special    tplain
""")
write(os.path.join(d, "transport2"), "kdent@ora.com     error:no mail accepted for kdent\n")
SENDER = (f"transport_maps = texthash:{d}/transport2\nrecipient_delimiter = +\n" + "relay_domains = example.net\nrelayhost = [main-relay.test]\n"
          f"sender_dependent_relayhost_maps = texthash:{d}/sender_relay\n"
          f"sender_dependent_default_transport_maps = texthash:{d}/sender_transport\n")
cases = [
    ("alice+tag@corp.test", "d@far.test", "class=default, transport=smtp, nexthop=[relay-a.test]",
     "the sender's entry (user@domain of user+ext@domain) names the relayhost"),
    ("bob@corp.test", "d@far.test", "class=default, transport=smtp, nexthop=[relay-corp.test]",
     "@domain of the sender"),
    ("dunno@corp.test", "d@far.test", "class=default, transport=smtp, nexthop=[main-relay.test]",
     "DUNNO ends the search: relayhost"),
    ("x@elsewhere.test", "d@far.test", "class=default, transport=smtp, nexthop=[main-relay.test]",
     "a sender without an entry: relayhost"),
    ("", "d@far.test", "class=default, transport=smtp, nexthop=[bounce-relay.test]",
     "the null sender is looked up as <> (empty_address_relayhost_maps_lookup_key)"),
    ("bob@corp.test", "r@example.net", "class=relay, transport=relay, nexthop=[relay-corp.test]",
     "the relay class takes the sender's relayhost too"),
    ("bob@corp.test", "kdent@ora.com", "class=default, transport=error, nexthop=no mail accepted for kdent",
     "transport_maps still decides last"),
    ("s@special.test", "d@far.test", "class=default, transport=tspecial, nexthop=[special-gw.test]",
     "sender_dependent_default_transport_maps replaces default_transport, nexthop and all"),
    ("s@plain.special", "d@far.test", "class=default, transport=tplain, nexthop=[main-relay.test]",
     "a transport without a nexthop still takes relayhost"),
    ("s@special.test", "r@example.net", "class=relay, transport=relay, nexthop=[main-relay.test]",
     "but not relay_transport"),
]
for sender, rcpt, expected, name in cases:
    r, got = resolve(SENDER, rcpt, sender=sender)
    is_(got.get(rcpt), expected, f"from <{sender}> to {rcpt}: {name}") or diag(r.stdout + r.stderr)
r, got = resolve(SENDER + "empty_address_relayhost_maps_lookup_key = <bounce>\n", "d@far.test", sender="")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=[other-bounce.test]",
    "empty_address_relayhost_maps_lookup_key names another key")
r, got = resolve(SENDER, "d@far.test")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=[main-relay.test]",
    "without -f no sender table is asked")

# ---- through a started instance: defer_transports, flush, ETRN ---------
inst = inst_mod.new_instance()
D = inst.dir
owner = inst_mod.ROOT_USERS["mail_owner"] if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
out = os.path.join(D, "out")
os.makedirs(out)
os.chmod(out, 0o777)
os.chmod(D, 0o755)
os.chmod(os.path.dirname(D), 0o755)
write(os.path.join(D, "record"), f"#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> {out}/got; done\ncat > /dev/null\n", 0o755)
with open(os.path.join(D, "master.cf"), "a") as f:
    f.write(f"hold unix - n n - - pipe\n  user={owner} argv={D}/record ${{recipient}}\n")
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write("""
transport_maps = inline:{ {a.test = hold}, {b.test = hold}, {c.test = hold} }
defer_transports = hold
fast_flush_domains = a.test, b.test, c.test
sender_dependent_default_transport_maps = inline:{ {@blocked.test = error:5.7.1 sender blocked here} }
header_checks = pcre:""" + D + """/header_checks
""")
write(os.path.join(D, "header_checks"), "/^Subject: filterme/ FILTER hold:somewhere\n")
r = inst.start()
is_(r.returncode, 0, "postern start") or diag(r.stderr)


def logged(pattern, timeout=30):
    return wait_until(lambda: re.search(pattern, inst.log()) is not None, timeout)


def got():
    try:
        return open(os.path.join(out, "got")).read().split()
    except OSError:
        return []


for rcpt in ("x@a.test", "y@b.test", "z@c.test"):
    r = inst.sendmail(["-f", "s@localhost", rcpt], b"Subject: held\n\nhi\n")
    is_(r.returncode, 0, f"sendmail to {rcpt}") or diag(r.stderr)
ok(logged(r"to=<z@c.test>, .*status=deferred \(deferred transport\)")
   and logged(r"to=<x@a.test>, .*status=deferred \(deferred transport\)"),
   "defer_transports = hold: the mail waits (deferred transport)") or diag(inst.log()[-2000:])
is_(got(), [], "and the command did not run")

r = inst.postern("queue", "flush", "a.test")
is_(r.returncode, 0, "postern queue flush a.test") or diag(r.stderr)
ok(logged(r"flush a\.test: 1 message taken from the deferred queue"), "qmgr takes a.test's message")
ok(logged(r"to=<x@a.test>, relay=hold, .*status=sent \(delivered via hold service\)"),
   "and delivers it through the deferred transport")
is_(got(), ["x@a.test"], "only a.test's mail was delivered")

port = int(re.search(r"127\.0\.0\.1:(\d+)\s", open(os.path.join(D, "master.cf")).read()).group(1))
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.test")
is_(s.docmd("ETRN", "other.test"), (459, b"<other.test>: service unavailable"),
    "ETRN for a domain not in fast_flush_domains: 459")
is_(s.docmd("ETRN", "b.test"), (250, b"Queuing started"), "ETRN b.test: 250 Queuing started")
s.quit()
ok(logged(r"to=<y@b.test>, relay=hold, .*status=sent \(delivered via hold service\)"),
   "ETRN delivered b.test's held mail") or diag(inst.log()[-1500:])
is_(sorted(got()), ["x@a.test", "y@b.test"], "and c.test's still waits")

# a FILTER to a transport of defer_transports waits as well
r = inst.sendmail(["-f", "s@localhost", "w@far.test"], b"Subject: filterme\n\nhi\n")
is_(r.returncode, 0, "sendmail a message header_checks FILTERs to hold:") or diag(r.stderr)
ok(logged(r"to=<w@far.test>, relay=none, .*status=deferred \(deferred transport\)"),
   "a FILTER whose transport is in defer_transports waits") or diag(inst.log()[-1500:])
is_(sorted(got()), ["x@a.test", "y@b.test"], "and its command did not run")

r = inst.postern("queue", "flush")
is_(r.returncode, 0, "postern queue flush")
ok(logged(r"to=<w@far.test>, relay=hold, .*status=sent \(delivered via hold service\)"),
   "the flush delivers the filtered message through hold")
ok(logged(r"to=<z@c.test>, relay=hold, .*status=sent \(delivered via hold service\)"),
   "a whole-queue flush delivers the rest")

r = inst.sendmail(["-f", "s@blocked.test", "d@far.test"], b"Subject: blocked\n\nhi\n")
ok(logged(r"to=<d@far.test>, relay=none, .*dsn=5\.7\.1, status=bounced \(sender blocked here\)"),
   "qmgr routes with the message's sender (sender_dependent_default_transport_maps)") \
    or diag(inst.log()[-1500:])
inst.stop()
done()
