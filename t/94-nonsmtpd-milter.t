#!/usr/bin/env python3
# non_smtpd_milters (postconf(5), MILTER_README "Milters for non-SMTP
# mail") with a real libmilter milter (Debian's python3-milter,
# t/lib/milter_script.py) and sendmail(1) submissions to an instance:
#  - the milter is told what Postfix 3.7's cleanup tells it (recorded in
#    t/data/postfix-3.7-nonsmtpd-milter.txt): a connection from localhost
#    [127.0.0.1], HELO localhost, MAIL with the bare sender, RCPT, DATA,
#    the header rewrite made (Message-Id, Date) and the body, with the
#    same macros but the queue id;
#  - a header the milter adds is in the delivered message (a DKIM signer's
#    DKIM-Signature);
#  - a REJECT or TEMPFAIL at end of message: sendmail prints the milter's
#    text and exits 69 or 75, nothing is queued, and the log says
#    "milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]" as Postfix's;
#  - a milter that is down: milter_default_action tempfail (sendmail exits
#    75, nothing queued) or accept (delivered);
#  - sendmail -bs: the same milters, their refusal in the SMTP reply;
#  - receive_override_options = no_milters: the milter hears nothing.
import json
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from instance import NEEDED, new_instance
import milter_probes as mp

require(NEEDED)
mp.require_milter()

work = tempdir("postern-nsm-")
plan_file = os.path.join(work, "plan.json")
events_file = os.path.join(work, "events")
write(plan_file, "{}")
port, dead = free_port(), free_port()
milter = mp.start_milter(port, plan_file, events_file)

inst = new_instance("--domain", "example.com")
SENDER = "alice@example.org"
MESSAGE = b"Subject: probe\nFrom: alice@example.org\nTo: you@example.com\n\nhello\n"


def conf(**settings):
    r = inst.postern("conf", "-e", *[f"{k}={v}" for k, v in settings.items()])
    if r.returncode != 0:
        diag(r.stderr)


def events():
    try:
        return [json.loads(l) for l in open(events_file)]
    except FileNotFoundError:
        return []


def submit(plan, rcpt="you@example.com"):
    """sendmail -f SENDER rcpt under a milter plan: the result."""
    write(plan_file, json.dumps(plan))
    if os.path.exists(events_file):
        os.unlink(events_file)
    return inst.sendmail(["-f", SENDER, rcpt], MESSAGE)


def recorded(title):
    """A case of the Postfix recording: {"X": exit, "E": events, "L": log lines}."""
    out, case = {}, None
    for line in open(os.path.join(os.path.dirname(__file__), "data",
                                  "postfix-3.7-nonsmtpd-milter.txt")):
        line = line.rstrip("\n")
        if line.startswith("case: "):
            case = line[6:]
            out[case] = {"X": None, "E": [], "L": []}
        elif case and line[:3] in ("X: ", "E: ", "L: "):
            v = line[3:]
            if line[0] == "X":
                out[case]["X"] = int(v)
            elif line[0] == "E":
                out[case]["E"].append(json.loads(v))
            else:
                out[case]["L"].append(v)
    return out[title]


def queued():
    c = inst.queue_counts()
    return sum(c[q] for q in ("incoming", "active", "deferred", "hold"))


conf(non_smtpd_milters=f"inet:127.0.0.1:{port}", milter_command_timeout="5s",
     milter_content_timeout="5s")
r = inst.start()
is_(r.returncode, 0, "postern start")

# ---- what the milter is told, against Postfix's ----
r = submit({"eom": ["addheader:X-Signed:yes"]})
is_(r.returncode, 0, "sendmail exits 0 through a milter that adds a header")
got = inst.wait_for("you")
ok(len(got) == 1, "the message is delivered")
text = got[0].decode(errors="replace") if got else ""
like(text, r"(?m)^X-Signed: yes$", "the header the milter added is in the delivered message")
like(text, r"(?m)^Subject: probe$", "the message's own header is kept")
wait_until(lambda: "eom" in [e["event"] for e in events()], 10)
seen = [e for e in events() if e["event"] not in ("body", "close", "abort")]
pf = recorded("add a header")["E"]
is_([e["event"] for e in seen], [e["event"] for e in pf],
    "the milter is told the same events as by Postfix's cleanup (connect, helo, mail, rcpt, data, "
    "header x5, eoh, eom)")
for name in ("connect", "helo", "mail"):
    mine = [e["args"] for e in seen if e["event"] == name]
    theirs = [e["args"] for e in pf if e["event"] == name]
    is_(mine, theirs, f"{name}: the same arguments as Postfix gives ({theirs})")
is_([e["args"][0] for e in seen if e["event"] == "header"],
    [e["args"][0] for e in pf if e["event"] == "header"],
    "the header fields it sees are those after rewriting, Message-Id and Date included")
for name in ("connect", "mail", "rcpt", "eom"):
    mine = sorted(k for e in seen if e["event"] == name for k in e["macros"] if k not in ("v",))
    theirs = sorted(k for e in pf if e["event"] == name for k in e["macros"] if k not in ("v", "i"))
    is_(mine, theirs, f"the macros at {name} are Postfix's (but the queue id)")
m = [e for e in seen if e["event"] == "connect"]
is_(m[0]["macros"].get("_") if m else None, "localhost [127.0.0.1]", "the _ macro says localhost [127.0.0.1]")

# ---- the other changes and verdicts at end of message ----
r = submit({"eom": ["chgfrom:bounces@example.org", "addrcpt:<bob@example.com>", "delrcpt:<you@example.com>",
                    "chgheader:1:Subject:changed"]})
is_(r.returncode, 0, "sendmail exits 0 through a milter that changes the envelope")
got = inst.wait_for("bob")
text = got[-1].decode(errors="replace") if got else ""
like(text, r"(?m)^Return-Path: <bounces@example\.org>$", "the sender the milter set is the envelope's")
like(text, r"(?m)^Subject: changed$", "the header it changed is changed")
is_(len(inst.delivered("you")), 1, "the recipient it deleted gets nothing (bob's copy came alone)")
r = submit({"eom": ["quarantine:look at it"]})
is_(r.returncode, 0, "a quarantine: sendmail exits 0")
ok(wait_until(lambda: inst.queue_counts()["hold"] == 1, 15), "and the message waits in the hold queue")
like(inst.log(), r"NOQUEUE: milter-hold: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: milter triggers HOLD action",
     "logged milter-hold")
inst.postern("queue", "delete", "ALL")
r = submit({"eom": "discard"})
is_(r.returncode, 0, "a discard: sendmail exits 0")
ok(wait_until(lambda: "milter-discard: END-OF-MESSAGE from localhost[127.0.0.1]" in inst.log(), 15),
   "logged milter-discard")
ok(wait_until(lambda: queued() == 0, 15), "and the message is not kept")

# ---- refusals ----
before = len(inst.delivered("you"))
log_at = len(inst.log())
r = submit({"eom": "reply:550 5.7.1 unsigned mail refused"})
is_(r.returncode, 69, "a milter REJECT makes sendmail exit 69 (EX_UNAVAILABLE)")
like(r.stderr, r"unsigned mail refused", "and print the milter's text")
is_(queued(), 0, "nothing is queued")
pf_line = recorded("reject at end of message")["L"][0]
want = re.sub(r"^cleanup: ID: ", "", pf_line).replace("rcpt@bench.test", "you@example.com")
ok(want in inst.log()[log_at:], f"logged as Postfix logs it: {want}")
if not ok("NOQUEUE: " + want in inst.log()[log_at:], "with NOQUEUE for the queue id"):
    diag(inst.log()[log_at:])
# the queue saw no envelope: a withdrawal, not a writer that failed (rewrite
# waits for the queue stage to end, and sendmail for rewrite: anything
# either would say is in the log by now)
unlike(inst.log()[log_at:], r"warning", "and said once: no warning from rewrite or the queue")

log_at = len(inst.log())
r = submit({"eom": "tempfail"})
is_(r.returncode, 75, "a milter TEMPFAIL makes sendmail exit 75 (EX_TEMPFAIL)")
like(r.stderr, r"Service unavailable - try again later", "and print Postfix's tempfail text")
is_(queued(), 0, "nothing is queued")
want = re.sub(r"^cleanup: ID: ", "", recorded("tempfail at end of message")["L"][0]) \
    .replace("rcpt@bench.test", "you@example.com")
ok(want in inst.log()[log_at:], f"logged as Postfix logs it: {want}")

log_at = len(inst.log())
r = submit({"mail": "reject"})
is_(r.returncode, 69, "a REJECT at MAIL makes sendmail exit 69")
want = re.sub(r"^cleanup: ID: ", "", recorded("reject at MAIL")["L"][0])
ok(want in inst.log()[log_at:], f"logged as Postfix logs it: {want}")
is_(queued(), 0, "nothing is queued")

# ---- sendmail -bs: the same milters, answered in SMTP ----
def bs(plan):
    write(plan_file, json.dumps(plan))
    if os.path.exists(events_file):
        os.unlink(events_file)
    dialogue = (b"HELO me.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<you@example.com>\r\n"
                b"DATA\r\n" + MESSAGE.replace(b"\n", b"\r\n") + b".\r\nQUIT\r\n")
    return inst.sendmail(["-bs"], dialogue)


bs_before = len(inst.delivered("you"))
r = bs({"eom": ["addheader:X-Signed:bs"]})
like(r.stdout, r"250 2\.0\.0 Ok: queued as", "sendmail -bs: queued through non_smtpd_milters")
got = inst.wait_for("you", bs_before + 1)
like(got[-1].decode(errors="replace") if len(got) > bs_before else "", r"(?m)^X-Signed: bs$",
     "the header the milter added is delivered")
c = [e for e in events() if e["event"] == "connect"]
is_(c[0]["args"] if c else None, ["localhost", "127.0.0.1"], "the milter sees a connection from localhost")
r = bs({"eom": "reply:550 5.7.1 unsigned mail refused"})
like(r.stdout, r"550 5\.7\.1 unsigned mail refused", "a REJECT is the -bs client's reply")
is_(queued(), 0, "nothing is queued")

# ---- a milter that is down ----
conf(non_smtpd_milters=f"inet:127.0.0.1:{dead}")
log_at = len(inst.log())
r = submit({})
is_(r.returncode, 75, "a dead milter under milter_default_action = tempfail: sendmail exits 75")
is_(queued(), 0, "nothing is queued")
like(inst.log()[log_at:], rf"connect to Milter service inet:127\.0\.0\.1:{dead}: Connection refused",
     "the failed connection is logged as Postfix logs it")
conf(milter_default_action="accept")
before = len(inst.delivered("you"))
r = submit({})
is_(r.returncode, 0, "under milter_default_action = accept: sendmail exits 0")
is_(len(inst.wait_for("you", before + 1)), before + 1, "and the message is delivered")

# ---- no_milters ----
conf(non_smtpd_milters=f"inet:127.0.0.1:{port}", milter_default_action="tempfail",
     receive_override_options="no_milters")
r = submit({"connect": "reject", "eom": "reject"})
is_(r.returncode, 0, "receive_override_options = no_milters: a rejecting milter is not asked")
is_(len(inst.wait_for("you", before + 2)), before + 2, "and the message is delivered")
is_(events(), [], "the milter heard nothing")

inst.stop()
done()
