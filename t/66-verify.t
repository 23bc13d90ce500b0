#!/usr/bin/env python3
# Address verification end to end (postern-verify(8)): an instance is a
# backup MX for backup.example and relays it to a receiving MTA (aiosmtpd,
# smtpsink.py) that accepts good@, refuses bad@ with 550 and defers busy@
# with 450.  smtpd checks recipients with reject_unverified_recipient and
# senders with reject_unverified_sender; what a client sees is compared
# with what the real Postfix 3.7 answered to the same dialogues
# (t/data/postfix-3.7-verify.txt, t/lib/gen_postfix_verify.py): the first
# RCPT waits (450 4.1.1 "unverified address: Address verification in
# progress"), the probe goes through the queue and stops after RCPT TO,
# then the address is deliverable (250), undeliverable (550) or still
# unverified (450).  The cache survives a restart of the service; a verify
# service that is down gives a 450, never a 5xx and never an accept.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
import verify_probes as vp
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "postern-smtp", "postern-smtpd", "postern-qmgr", "postern-verify"],
            tools=["/usr/bin/python3"])

# ---- the golden file: per phase, the replies, probe lines and log lines ----
golden = {}
title = None
for line in open(os.path.join(tap.SRC, "t", "data", "postfix-3.7-verify.txt")):
    line = line.rstrip("\n")
    if line.startswith("== "):
        title = line[3:]
        golden.setdefault(title, []).append({"replies": [], "probes": [], "logs": []})
    elif title and line[:3] in (">> ", "<< "):
        golden[title][-1]["replies"].append(line)
    elif title and line.startswith("probe "):
        golden[title][-1]["probes"].append(line[6:])
    elif title and line.startswith("log "):
        golden[title][-1]["logs"].append(line[4:])

sink_port = tap.free_port()
sink = Sink("127.0.0.1", sink_port)
smtp_port = tap.free_port()
options = []
for k, v in vp.SETTINGS.items():
    options += ["-o", f"{k}={v.format(sink=sink_port)}"]
inst = new_instance("--port", str(smtp_port), *options,
                    "-o", "minimal_backoff_time=1s", "-o", "queue_run_delay=1s")
tap.is_(inst.start().returncode, 0, "the instance starts, with its verify service")
tap.ok(tap.wait_until(lambda: os.path.exists(os.path.join(inst.dir, "queue", "public", "verify"))),
       "the verify service listens on queue_directory/public/verify")
log_start = len(inst.log())


def log_text():
    return inst.log()[log_start:]


# ---- the phases, each compared with Postfix's ----
seen = {}
for title, steps in vp.PHASES:
    n = seen.get(title, 0)
    seen[title] = n + 1
    want = golden.get(title, [None] * (n + 1))[n] if title in golden and len(golden[title]) > n else None
    if not tap.ok(want is not None, f"Postfix's answers are recorded for '{title}'"):
        continue
    if steps and isinstance(steps[0], tuple):
        got = [vp.normalize(l or "NONE", sink_port) for l in vp.wait_probes(log_text, steps[0][1])]
        for g, w in zip(got, want["probes"]):
            tap.is_(g, w, f"{title}: the probe's log line as Postfix's")
        continue
    mark = len(log_text())
    replies = []
    for cmd, reply in vp.dialogue(smtp_port, steps):
        if cmd is not None:
            replies.append(f">> {cmd}")
        replies += [f"<< {vp.normalize(l, sink_port)}" for l in reply.split("\n")]
    # the greeting, EHLO and QUIT name the host and its extensions: there
    # only the codes must agree; the rest word for word
    own = lambda l: re.match(r"<< (220|250-|250 [A-Z0-9]+$|221)", l)
    got = [l for l in replies if not own(l)]
    wanted = [l for l in want["replies"] if not own(l)]
    for g, w in zip(got, wanted):
        tap.is_(g, w, f"{title}: {w[3:90]}")
    tap.is_(len(got), len(wanted), f"{title}: as many replies as Postfix gave")
    # smtpd's NOQUEUE lines, as Postfix's (the host name aside)
    tap.wait_until(lambda: len(re.findall(r"NOQUEUE", log_text()[mark:])) >= len(want["logs"]), 10)
    logs = [re.sub(r"^.*?\]: ", "", l) for l in log_text()[mark:].splitlines()
            if "postern/smtpd[" in l and "NOQUEUE" in l]
    for g, w in zip(logs, want["logs"]):
        tap.is_(vp.normalize(g, sink_port), w, f"{title}: log {w[:60]}")
    tap.is_(len(logs), len(want["logs"]), f"{title}: as many NOQUEUE lines as Postfix")

# ---- what the probes did, beyond the replies ----
tap.is_(sink.messages(), [], "the probes sent no message: each stopped after RCPT TO")
rcpts = sink.rcpts()
tap.is_(sorted(a for a, _ in rcpts), sorted(vp.RCPTS + ["badsender@backup.example", "bad@backup.example"]),
        "one probe per address reached the receiving MTA (alias@ as the bad@ it expands to)")
tap.like(log_text(), r"postern/qmgr\[\d+\]: [0-9A-F]+: from=<double-bounce@localhost>, size=\d+, nrcpt=1",
         "probes come from address_verify_sender (double-bounce@$myorigin)")
tap.ok(tap.wait_until(lambda: sum(inst.queue_counts().values()) == 0, 20),
       "no probe stays in the queue (deferred or bounced): the verify service has the outcome")
tap.unlike(log_text(), r"status=(bounced|deferred)",
           "a probe is never logged as bounced or deferred")
tap.ok(not inst.delivered("double-bounce") and not inst.delivered("postmaster"),
       "no notice about a probe")

# ---- the cache survives a restart of the service ----
cache = os.path.join(inst.dir, "data", "verify_cache")
tap.ok(os.path.exists(cache), "address_verify_map keeps its entries in data_directory/verify_cache")
# (and, for what follows, poll three times a second apart, and give up on
# a verify service that is down after 15 seconds)
r = inst.postern("conf", "-e", "address_verify_poll_count=3", "address_verify_poll_delay=1s",
                 "smtpd_timeout=15s")
tap.is_(r.returncode, 0, "address_verify_poll_count=3, smtpd_timeout=15s") or tap.diag(r.stderr)
tap.is_(inst.stop().returncode, 0, "the instance stops")
tap.is_(inst.start().returncode, 0, "and starts again")
steps = vp.dialogue(smtp_port, ["EHLO client.example", "MAIL FROM:<>",
                                "RCPT TO:<bad@backup.example>", "RCPT TO:<good@backup.example>", "QUIT"])
tap.like(steps[3][1], r"^550 5\.1\.1 <bad@backup\.example>: Recipient address rejected: undeliverable "
                      r"address: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1",
         "after the restart, bad@ is refused from the cache at once")
tap.like(steps[4][1], r"^250 ", "and good@ accepted")
tap.is_(len(sink.rcpts()), len(rcpts), "no new probe: the answers came from the cache")

# ---- a new address, probed while the client waits (address_verify_poll_count) ----
t0 = time.time()
steps = vp.dialogue(smtp_port, ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<new@backup.example>",
                                "QUIT"])
tap.like(steps[3][1], r"^250 ", "a new deliverable address is accepted while the client waits "
                                "for its probe (%.1f s)" % (time.time() - t0))

# ---- an address of our own: resolved, not delivered ----
steps = vp.dialogue(smtp_port, ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<alice@localhost>", "QUIT"])
tap.like(steps[3][1], r"^250 ", "a virtual mailbox of ours is deliverable")
tap.like(log_text(), r"postern/qmgr\[\d+\]: [0-9A-F]+: to=<alice@localhost>, relay=virtual, .*dsn=2\.0\.0, "
                     r"status=deliverable \(delivers to maildir\)",
         "the virtual transport only resolves a probe")
tap.is_(inst.delivered("alice"), [], "nothing lands in the mailbox")

# ---- refresh and expiry ----
count = lambda a: len([x for x, _ in sink.rcpts() if x == a])
bad_before, good_before = count("bad@backup.example"), count("good@backup.example")
r = inst.postern("conf", "-e", "address_verify_negative_refresh_time=1s",
                 "address_verify_positive_expire_time=1s", "address_verify_sender_ttl=1h",
                 "unverified_recipient_reject_reason=Address lookup failed")
tap.is_(r.returncode, 0, "negative refresh and positive expiry after 1 second, a probe sender that "
                         "changes every hour, a reject reason of our own") or tap.diag(r.stderr)
mark = len(log_text())
tap.is_(inst.stop().returncode, 0, "the instance stops")
tap.is_(inst.start().returncode, 0, "and starts again")
tap.like(log_text()[mark:], r"postern/verify\[\d+\]: cache btree:\S+/data/verify_cache full cleanup: "
                            r"retained=\d+ dropped=[1-9]\d* entries",
         "at start the service drops the expired entries, with Postfix's log line")
steps = vp.dialogue(smtp_port, ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<bad@backup.example>",
                                "RCPT TO:<good@backup.example>", "QUIT"])
tap.is_(steps[3][1], "550 5.1.1 <bad@backup.example>: Recipient address rejected: undeliverable address: "
                    "Address lookup failed",
        "an undeliverable entry past its refresh time still answers, with unverified_recipient_reject_reason")
tap.ok(tap.wait_until(lambda: count("bad@backup.example") > bad_before, 20),
       "while a new probe refreshes it (address_verify_negative_refresh_time)")
tap.like(steps[4][1], r"^250 ", "an expired deliverable entry is probed again while the client waits")
tap.ok(count("good@backup.example") > good_before, "(address_verify_positive_expire_time)")
tap.like(log_text()[mark:], r"postern/qmgr\[\d+\]: [0-9A-F]+: from=<double-bounce[0-9a-u]+@localhost>",
         "address_verify_sender_ttl: the probe sender's local part carries the time stamp")

# ---- the verify service hung: qmgr does not wait for it probe after probe ----
# qmgr reports each probe's outcome and waits for the answer; after one
# update the service did not answer, it drops the next minute's outcomes
# (as lost reports: the service probes again) instead of stalling every
# delivery for the timeout each time
from inject import envelope, inject  # noqa: E402
import signal  # noqa: E402
vpid = int(open(os.path.join(inst.dir, "queue", "pid", "verify.pid")).read())
os.kill(vpid, signal.SIGSTOP)
try:
    mark = len(log_text())
    for n in (1, 2, 3):
        code, status, err = inject(inst.dir, f"Subject: probe {n}\n\n".encode(),
                                   envelope("double-bounce@localhost", [f"good{n}@backup.example"],
                                            attrs=["verify=yes"]))
        tap.is_(code, 0, f"probe {n} queued while the verify service is stopped") or tap.diag(err)
    tap.ok(tap.wait_until(lambda: len(re.findall(r"address verification update for good\d@backup\.example",
                                                 log_text()[mark:])) >= 3, 40),
           "qmgr handles the three probes' outcomes") or tap.diag(log_text()[mark:][-3000:])
    hung = log_text()[mark:]
    tap.is_(len(re.findall(r"postern/qmgr\[\d+\]: warning: [0-9A-F]+: address verification update for "
                           r"good\d@backup\.example: read from \S+: .*; none for 60 s", hung)), 1,
            "the first waits for the timeout and says that none follow for 60 s")
    tap.is_(len(re.findall(r"postern/qmgr\[\d+\]: [0-9A-F]+: address verification update for "
                           r"good\d@backup\.example dropped: the verify service did not answer \d+ s ago",
                           hung)), 2,
            "the next two are dropped at once, each logged")
finally:
    os.kill(vpid, signal.SIGCONT)

# ---- the verify service down ----
# Postfix's smtpd asks again every 10 seconds and never answers the RCPT
# (t/data/postfix-3.7-verify.txt: the client gives up); postern's asks as
# often, with Postfix's warning, until smtpd_timeout, then answers 450
want_down = [l for l in golden.get("the verify service down (the client gives up after 35 seconds)",
                                   [{"logs": []}])[0]["logs"]]
tap.like("\n".join(want_down), r"warning: connect #2 to subsystem private/verify: ",
         "Postfix's smtpd tried again after 10 seconds")
inst.stop_supervisor()
pid = int(open(os.path.join(inst.dir, "queue", "pid", "verify.pid")).read())
os.kill(pid, 15)
tap.ok(tap.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10), "the verify service is stopped")
mark = len(log_text())
t0 = time.time()
steps = vp.dialogue(smtp_port, ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<other@backup.example>",
                                "QUIT"], timeout=120)
waited = time.time() - t0
tap.like(steps[3][1], r"^450 4\.1\.1 <other@backup\.example>: Recipient address rejected: address "
                      r"verification problem$",
         "with the verify service down: no accept, no 5xx; 450 4.1.1 after smtpd_timeout")
tap.ok(12 <= waited < 60, "smtpd kept asking for smtpd_timeout (%.0f s)" % waited)
down = log_text()[mark:]
tap.like(down, r"postern/smtpd\[\d+\]: warning: connect #1 to subsystem public/verify: ",
         "smtpd logs Postfix's warning for each attempt")
tap.like(down, r"warning: connect #2 to subsystem public/verify: ", "and tries again after 10 seconds")
tap.like(down, r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 450 4\.1\.1 <other@backup\.example>: "
               r"Recipient address rejected: address verification problem;",
         "the reject is logged")
inst.stop()
tap.done()
