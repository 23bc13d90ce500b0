#!/usr/bin/env python3
# Address resolution as Postfix's trivial-rewrite does it: address classes,
# the class transports and their nexthops, relayhost, transport_maps,
# defer_transports, domain lists (names, .names, /files, tables, !negation,
# parent_domain_matches_subdomains), and table failures as deferrals.
# Checked with `postern-qmgr -r ADDRESS...` (how the daemon routes) and
# through the daemon itself.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean

d = tempdir()


def resolve(main_cf, *addresses, opts=()):
    write(os.path.join(d, "main.cf"), "inet_interfaces = loopback-only\n"
          "myhostname = mx.example.test\nmaillog_file = " + os.path.join(d, "log") + "\n" + main_cf)
    args = ["postern-qmgr", "-c", d]
    for o in opts:
        args += ["-o", o]
    r = run(args + ["-r"] + list(addresses))
    return r, dict(line.split(": ", 1) for line in r.stdout.splitlines())


BASE = """mydestination = $myhostname, localhost, example.com
virtual_alias_domains = alias.test
virtual_mailbox_domains = virt.test
relay_domains = example.net
"""
r, got = resolve(BASE, "bob@localhost", "Bob@EXAMPLE.COM.", "bob", "x@[127.0.0.1]",
                 "x@[192.0.2.1]", "a@alias.test", "m@virt.test", "r@example.net",
                 "r@sub.example.net", "s@sub.example.com", "d@far.test")
is_(r.returncode, 0, "postern-qmgr -r exits 0")
is_(got.get("bob@localhost"), "class=local, transport=local, nexthop=mx.example.test",
    "mydestination: local class, local_transport's default local:$myhostname")
is_(got.get("Bob@EXAMPLE.COM."), "class=local, transport=local, nexthop=mx.example.test",
    "domains match without case and without the trailing dot")
is_(got.get("bob"), "class=local, transport=local, nexthop=mx.example.test",
    "an address without a domain is local")
is_(got.get("x@[127.0.0.1]"), "class=local, transport=local, nexthop=mx.example.test",
    "an [ip] literal of inet_interfaces is local")
is_(got.get("x@[192.0.2.1]"), "class=default, transport=smtp, nexthop=[192.0.2.1]",
    "another [ip] literal is not")
is_(got.get("a@alias.test"), "class=virtual alias, transport=error, nexthop=5.1.1 User unknown in virtual alias table",
    "virtual alias class without an alias bounces 5.1.1 as Postfix")
is_(got.get("m@virt.test"), "class=virtual mailbox, transport=virtual, nexthop=virt.test",
    "virtual mailbox class: virtual_transport, nexthop the domain")
is_(got.get("r@example.net"), "class=relay, transport=relay, nexthop=example.net",
    "relay class: relay_transport")
is_(got.get("r@sub.example.net"), "class=relay, transport=relay, nexthop=sub.example.net",
    "relay_domains matches subdomains (listed in parent_domain_matches_subdomains)")
is_(got.get("s@sub.example.com"), "class=default, transport=smtp, nexthop=sub.example.com",
    "mydestination does not (not listed there)")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=far.test",
    "default class: default_transport, nexthop the domain")

r, got = resolve(BASE + "relayhost = [smart.example]:587\n", "r@example.net", "d@far.test",
                 "m@virt.test")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=[smart.example]:587",
    "relayhost is the default class's nexthop")
is_(got.get("r@example.net"), "class=relay, transport=relay, nexthop=[smart.example]:587",
    "and the relay class's")
is_(got.get("m@virt.test"), "class=virtual mailbox, transport=virtual, nexthop=virt.test",
    "but not the virtual class's")
r, got = resolve(BASE + "relayhost = [smart.example]:587\ndefault_transport = smtp:[other]:25\n"
                 "relay_transport = relay:[inner]\nlocal_transport = local\n",
                 "r@example.net", "d@far.test", "bob@localhost")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=[other]:25",
    "default_transport's own nexthop wins over relayhost")
is_(got.get("r@example.net"), "class=relay, transport=relay, nexthop=[inner]",
    "relay_transport's own nexthop too")
is_(got.get("bob@localhost"), "class=local, transport=local, nexthop=mx.example.test",
    "local_transport without a nexthop: $myhostname")

# domain lists: /file/name, .domain, !negation, parent_domain_matches_subdomains
write(os.path.join(d, "relays"), "# relayed domains\nexample.org .example.info\n!no.example.edu, example.edu\n")
r, got = resolve(f"relay_domains = {d}/relays\nparent_domain_matches_subdomains =\n",
                 "a@example.org", "a@sub.example.org", "a@example.info", "a@x.example.info",
                 "a@example.edu", "a@no.example.edu")
is_(got.get("a@example.org", "").split(",")[0], "class=relay", "a name read from a /file")
is_(got.get("a@sub.example.org", "").split(",")[0], "class=default",
    "without parent_domain_matches_subdomains a name does not match subdomains")
is_(got.get("a@example.info", "").split(",")[0], "class=default", ".domain does not match the domain itself")
is_(got.get("a@x.example.info", "").split(",")[0], "class=relay", ".domain matches its subdomains")
is_(got.get("a@example.edu", "").split(",")[0], "class=relay", "a later name matches")
is_(got.get("a@no.example.edu", "").split(",")[0], "class=default", "!name excludes")
r, got = resolve(f"relay_domains = {d}/missing\n", "a@example.org")
isnt(r.returncode, 0, "a domain list naming a missing file is an error")
like(r.stderr + open(os.path.join(d, "log")).read(), r"relay_domains: open .*/missing", "naming the parameter and the file")

# mydestination, virtual_alias_domains and virtual_mailbox_domains are
# Postfix's string lists: the domain itself only.  Postfix 3.7 answered
# (smtpd, reject_unlisted_recipient, these lists as below): u@bench3.test
# "User unknown in virtual alias table"; u@sub.bench2.test,
# u@sub.bench3.test, u@sub.bench4.test, u@sub.bench5.test and
# u@sub.bench6.test relayed, none of them in a class of these lists.
write(os.path.join(d, "vad"), ".bench2.test x\nbench3.test x\n")
write(os.path.join(d, "mydest"), ".bench5.test x\n")
r, got = resolve(f"mydestination = texthash:{d}/mydest, .bench6.test, localhost\n"
                 f"virtual_alias_domains = texthash:{d}/vad, .bench4.test\n"
                 f"virtual_mailbox_domains = texthash:{d}/vad\nrelay_domains =\n",
                 "u@sub.bench2.test", "u@bench3.test", "u@sub.bench3.test", "u@sub.bench4.test",
                 "u@sub.bench5.test", "u@sub.bench6.test", "u@localhost",
                 opts=("parent_domain_matches_subdomains=mydestination,virtual_alias_domains,"
                       "virtual_mailbox_domains",))
is_(got.get("u@bench3.test", "").split(",")[0], "class=virtual alias", "a table key equal to the domain matches")
for a in ("u@sub.bench2.test", "u@sub.bench3.test", "u@sub.bench4.test", "u@sub.bench5.test",
          "u@sub.bench6.test"):
    is_(got.get(a, "").split(",")[0], "class=default",
        f"{a}: no subdomain of a name, a .name or a table key, as Postfix's string lists "
        "(even when parent_domain_matches_subdomains names them)")
is_(got.get("u@localhost", "").split(",")[0], "class=local", "a name after them still matches")

r, got = resolve(BASE + "defer_transports = smtp\n", "d@far.test")
is_(got.get("d@far.test"), "class=default, transport=smtp, nexthop=far.test, deferred",
    "defer_transports flags the transport")

# transport_maps (needs the texthash type from maps/)
write(os.path.join(d, "transport"), """
user@example.com     tdirect:[10.0.0.1]:2525
example.com          :
far.test             tfar:
.far.test            :[mx.far.test]
bounce.test          error:5.7.1 go away
quiet.test           discard:
*                    twild:wildhost
""")
r, got = resolve(BASE + f"transport_maps = texthash:{d}/transport\nrecipient_delimiter = +\n",
                 "user@example.com", "user+tag@example.com", "other@example.com", "x@far.test",
                 "x@a.far.test", "x@bounce.test", "x@quiet.test", "x@elsewhere.test")
is_(got.get("user@example.com"), "class=local, transport=tdirect, nexthop=[10.0.0.1]:2525",
    "transport_maps: user@domain first")
is_(got.get("user+tag@example.com"), "class=local, transport=tdirect, nexthop=[10.0.0.1]:2525",
    "user+ext@domain is looked up as user@domain too (recipient_delimiter)")
is_(got.get("other@example.com"), "class=local, transport=local, nexthop=mx.example.test",
    "':' changes nothing")
is_(got.get("x@far.test"), "class=default, transport=tfar, nexthop=far.test",
    "'transport:' resets the nexthop to the domain")
is_(got.get("x@a.far.test"), "class=default, transport=smtp, nexthop=[mx.far.test]",
    "'.domain' matches subdomains; ':nexthop' keeps the transport")
is_(got.get("x@bounce.test"), "class=default, transport=error, nexthop=5.7.1 go away",
    "error:text")
is_(got.get("x@quiet.test"), "class=default, transport=discard, nexthop=quiet.test",
    "discard:")
is_(got.get("x@elsewhere.test"), "class=default, transport=twild, nexthop=wildhost",
    "'*' matches everything else")
r, got = resolve(BASE + f"transport_maps = texthash:{d}/transport\n", "user+tag@example.com")
is_(got.get("user+tag@example.com"), "class=local, transport=local, nexthop=mx.example.test",
    "without recipient_delimiter there are no extensions")
r, got = resolve(BASE + f"transport_maps = texthash:{d}/transport\n"
                 "parent_domain_matches_subdomains = transport_maps\n", "x@b.bounce.test")
is_(got.get("x@b.bounce.test"), "class=default, transport=error, nexthop=5.7.1 go away",
    "with transport_maps in parent_domain_matches_subdomains, 'domain' matches subdomains")

write(os.path.join(d, "transport.pcre"), "/^vip@/   tvip:[10.9.9.9]\n/@pcre\\.test$/ tpcre:\n")
r, got = resolve(BASE + f"transport_maps = pcre:{d}/transport.pcre\n",
                 "vip@far.test", "a@pcre.test", "a@sub.far.test")
is_(got.get("vip@far.test"), "class=default, transport=tvip, nexthop=[10.9.9.9]",
    "a pcre transport table sees the whole address")
is_(got.get("a@pcre.test"), "class=default, transport=tpcre, nexthop=pcre.test",
    "and matches on the domain part")
is_(got.get("a@sub.far.test"), "class=default, transport=smtp, nexthop=sub.far.test",
    "no match: no change")

write(os.path.join(d, "relay_domains"), "example.org OK\n")
r, got = resolve(f"relay_domains = texthash:{d}/relay_domains\n", "a@example.org",
                 "a@sub.example.org", "a@example.net")
is_(got.get("a@example.org", "").split(",")[0], "class=relay", "a domain found in a table matches")
is_(got.get("a@sub.example.org", "").split(",")[0], "class=relay",
    "and its subdomains (relay_domains is in parent_domain_matches_subdomains)")
is_(got.get("a@example.net", "").split(",")[0], "class=default", "a domain not found does not")

# a table that cannot answer: deferral, never a bounce
r, got = resolve("relay_domains = fail:down\n", "x@far.test")
is_(r.returncode, 75, "a table that cannot answer: -r exits 75")
like(got.get("x@far.test", ""), r"^temporary failure: 4\.3\.0 relay_domains lookup failure",
     "the resolution is a temporary failure (4.3.0)")

# routing through our own domains, as trivial-rewrite (and smtpd, t/77)
ROUTES = [
    ("u%far.test@example.com", "class=default, transport=relay, nexthop=[gw.test], address=u@far.test",
     "allow_percent_hack: user%other@ours goes to other, through transport_maps for other"),
    ("far.test!u@localhost", "class=default, transport=relay, nexthop=[gw.test], address=u@far.test",
     "swap_bangpath: other!user@ours goes to other"),
    ("@mx.example.test:u@far.test", "class=default, transport=relay, nexthop=[gw.test], address=u@far.test",
     "a source route is dropped"),
    ("u%m%virt.test@example.com",
     "class=virtual mailbox, transport=virtual, nexthop=virt.test, address=u%m@virt.test",
     "the last % routes first; a domain that is not local stops the routing"),
    ("u%example.net@example.com", "class=relay, transport=relay, nexthop=example.net, address=u@example.net",
     "routing into a relay domain"),
]
r, got = resolve(BASE + "transport_maps = inline:{ far.test=relay:[gw.test] }\n", *[a for a, _, _ in ROUTES])
for address, want, why in ROUTES:
    is_(got.get(address), want, why)
r, got = resolve(BASE, "u%far.test@example.com", "far.test!u@localhost",
                 opts=["allow_percent_hack=no", "swap_bangpath=no"])
for address, option in (("u%far.test@example.com", "allow_percent_hack"), ("far.test!u@localhost", "swap_bangpath")):
    is_(got.get(address), "class=local, transport=local, nexthop=mx.example.test",
        f"{option}=no: the address stays ours")

# through the daemon: a table that cannot answer defers (4.3.0), never bounces
inst = Instance("transport_maps = fail:down\n")
inst.start()
qid = inst.inject("alice@example.org", ["x@far.test"])
inst.poke()
ok(inst.wait(lambda: qid in inst.files("deferred")), "a failing transport_maps table: the message waits")
like(inst.logtext(), rf"{qid}: to=<x@far.test>, relay=none, .*dsn=4\.3\.0, status=deferred \(transport_maps lookup failure for x@far.test\)$",
     "deferred with 4.3.0")
inst.stop()

# through the daemon: classes decide the runner
inst = Instance("virtual_mailbox_domains = virt.test\nvirtual_alias_domains = alias.test\n"
                "relay_domains = relay.test\n")
inst.start()
qid = inst.inject("alice@example.org", ["u@[127.0.0.1]", "v@virt.test", "w@relay.test",
                                       "x@far.test", "y@alias.test"])
inst.poke()
ok(inst.wait_log(rf"{qid}: removed$"), "a message to every class is done")
progs = sorted((r["program"], r["nexthop"], r["rcpt"][0]) for r in inst.runs())
is_(progs, [("postern-tdefault", "far.test", "x@far.test"),
            ("postern-tlocal", "mx.example.test", "u@[127.0.0.1]"),
            ("postern-trelay", "relay.test", "w@relay.test"),
            ("postern-tvirt", "virt.test", "v@virt.test")],
    "each class reaches its transport's runner with its nexthop")
like(inst.logtext(), rf"{qid}: to=<y@alias.test>, relay=none, .*dsn=5\.1\.1, status=bounced \(User unknown in virtual alias table\)$",
     "an unaliased virtual alias address bounces")
inst.stop()
ok(all_clean(), "qmgr stopped cleanly")
done()
