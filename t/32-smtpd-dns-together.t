#!/usr/bin/env python3
# A command's DNS lookups go out together (issue 12's RCPT cost): when
# smtpd's restriction lists reach their first DNS check, the lookups of it
# and of every later check go to the lookup service in one write, and the
# service resolves them at once; the checks then run in order as before.
# A DNS server that answers after 0.4 s (t/lib/slowdns.py) counts the
# queries it holds at once.  Checks before the first DNS check still
# decide without any lookup.  (t/33-smtpd-dns-postfix.t shows the replies
# and log lines stay Postfix's.)
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
from slowdns import SlowDns

require(["postern-smtpd", "postern-lookup"])

DELAY = 0.25
dns = SlowDns(DELAY)
inst = smtpdtest.Instance({
    "smtpd_peername_lookup": "no",
    "smtpd_relay_restrictions": "",
    "smtpd_recipient_restrictions": "reject_unauth_destination, reject_rbl_client one.test, "
                                    "reject_rbl_client two.test=127.0.0.2, reject_rbl_client three.test, permit",
})
queue = inst.settings["queue_directory"]
os.makedirs(os.path.join(queue, "pid"), exist_ok=True)
svc = start([prog("postern-lookup"), "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": dns.address, "POSTERN_DNS_TIMEOUT_MS": "5000"})
ok(wait_until(lambda: os.path.exists(os.path.join(queue, "public", "lookup")), 10), "the lookup service listens")

t0 = time.monotonic()
is_(smtpdtest.rcpt_reply(inst, "192.0.2.1", rcpt="someone@example.com")[:3], "250",
    "three block lists that do not list the client refuse nothing")
took = time.monotonic() - t0
is_(sorted(set(dns.names)), sorted(["1.2.0.192.one.test", "1.2.0.192.two.test", "1.2.0.192.three.test"]),
    "each list was asked")
ok(dns.most >= 3, f"all three at once (the server held {dns.most})")
diag(f"RCPT took {took:.2f}s; the server answers after {DELAY}s")

dns.reset()
r = smtpdtest.rcpt_reply(inst, "192.0.2.1", rcpt="someone@elsewhere.example")
is_(r[:9], "554 5.7.1", "a relay attempt is refused by the check before the block lists")
is_(dns.names, [], "... and no block list is asked")

inst.set(smtpd_recipient_restrictions="reject_rbl_client four.test, reject_unauth_destination, permit")
dns.reset()
is_(smtpdtest.rcpt_reply(inst, "192.0.2.1", rcpt="someone@example.com")[:3], "250",
    "one DNS check alone: asked as before")
is_(sorted(set(dns.names)), ["1.2.0.192.four.test"], "... alone")

stop(svc)
dns.stop()
done()
