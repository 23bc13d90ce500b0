#!/usr/bin/env python3
# smtpd_milters (Postfix's MILTER_README) with a real libmilter milter
# (Debian's python3-milter, t/lib/milter_script.py) started here on
# loopback and scripted per session:
#  - every event arrives in order with Postfix's macros (connect, helo,
#    mail, rcpt, data, header, eoh, body, eom), and smtpd's own Received
#    header is never shown;
#  - reject, tempfail and a custom reply at CONNECT (then at MAIL), MAIL,
#    RCPT, DATA and end of message give Postfix's replies and
#    "milter-reject" log lines; a refused message leaves nothing queued;
#  - discard at RCPT and at end of message: 250, logged milter-discard,
#    the envelope says discard; quarantine: milter-hold, held;
#  - the changes at end of message: headers added, inserted, changed and
#    deleted, the body replaced, the sender changed, recipients added
#    and deleted, all in what the queue gets;
#  - milter_macro_defaults: a macro without a value of its own gets its
#    default (plain and "{ name = value }" items, and as smtpd's -o),
#    one with a value keeps it;
#  - milter_header_checks on the fields milters add or change (not the
#    client's own): REJECT refuses with nothing queued, IGNORE drops the
#    field, REPLACE replaces it, HOLD and REDIRECT reach the envelope;
#  - a milter that is down or too slow: milter_default_action (tempfail,
#    accept, reject) and the per-milter { ..., default_action=... } form.
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import milter_probes as mp

require(["postern-smtpd"])
mp.require_milter()

work = tempdir("postern-milter-")
plan_file = os.path.join(work, "plan.json")
events_file = os.path.join(work, "events")
write(plan_file, "{}")
port = free_port()
milter = mp.start_milter(port, plan_file, events_file)

inst = smtpdtest.Instance({"smtpd_peername_lookup": "no",
                           "smtpd_milters": f"inet:127.0.0.1:{port}",
                           "milter_command_timeout": "5s", "milter_content_timeout": "5s"})
inst.listen()


def events():
    try:
        return [json.loads(l) for l in open(events_file)]
    except FileNotFoundError:
        return []


def session(plan, rcpts=("bob@example.com",), body="Subject: hi\nFrom: a@example.org\n\nhello\n",
            quit=True):
    """One session under a plan: the replies, keyed by command."""
    write(plan_file, json.dumps(plan))
    if os.path.exists(events_file):
        os.unlink(events_file)
    n = inst.log().count("disconnect from")
    c = smtpdtest.Client(inst.port, timeout=20)
    r = {"greeting": c.reply()}
    r["ehlo"] = c.cmd("EHLO client.example")
    r["mail"] = c.cmd("MAIL FROM:<a@example.org> SIZE=100")
    r["rcpt"] = [c.cmd(f"RCPT TO:<{x}>") for x in rcpts]
    r["data"] = c.cmd("DATA")
    if r["data"] and r["data"].startswith("354"):
        c.send(body.replace("\n", "\r\n").encode() + b".\r\n")
        r["eom"] = c.reply()
    if quit:
        c.cmd("QUIT")
    c.close()
    wait_until(lambda: inst.log().count("disconnect from") > n, 15)
    return r


# ---- events and macros ----
before = len(inst.captured())
r = session({})
like(r["eom"] or "", r"^250 2\.0\.0 Ok: queued as ", "a message through a milter that continues is queued")
wait_until(lambda: "close" in [e["event"] for e in events()], 10)
ev = events()
names = [e["event"] for e in ev]
is_([n for n in names if n not in ("header", "body")],
    ["connect", "helo", "mail", "rcpt", "data", "eoh", "eom", "close"],
    "the milter sees connect, helo, mail, rcpt, data, eoh, eom and the end, in order")
headers = [e["args"][0] for e in ev if e["event"] == "header"]
is_(headers, ["Subject", "From"], "the milter sees the client's headers, not smtpd's Received header")
bodies = "".join(e["args"][0] for e in ev if e["event"] == "body")
is_(bodies, "hello\r\n", "the body arrives with CR LF line ends")
conn = ev[0]
is_(conn["macros"].get("j"), "mx.example.com", "macro j at connect is myhostname")
is_(conn["macros"].get("{daemon_name}"), "mx.example.com", "macro {daemon_name} is milter_macro_daemon_name")
like(conn["macros"].get("_", ""), r"^unknown \[127\.0\.0\.1\]$", "macro _ names the client")
mail = [e for e in ev if e["event"] == "mail"][0]
is_(mail["args"], ["<a@example.org>", "SIZE=100"], "MAIL's path and ESMTP arguments")
is_(mail["macros"].get("{mail_addr}"), "a@example.org", "macro {mail_addr}")
rcpt = [e for e in ev if e["event"] == "rcpt"][0]
is_(rcpt["macros"].get("{rcpt_addr}"), "bob@example.com", "macro {rcpt_addr}")
is_(rcpt["macros"].get("{rcpt_mailer}"), "local", "macro {rcpt_mailer} for a local domain")
is_(len(inst.captured()), before + 1, "the message reached the queue")

# ---- refusals at each stage ----
def refusal_case(stage, action, reply, where, log_reply):
    # at END-OF-MESSAGE Postfix's cleanup logs the text without the code
    if where == "END-OF-MESSAGE":
        log_reply = log_reply[4:]
    before = len(inst.captured())
    r = session({stage: action})
    got = {"connect": r["mail"], "mail": r["mail"], "rcpt": r["rcpt"][0], "data": r["data"],
           "header": r.get("eom"), "eom": r.get("eom")}[stage]
    is_(got, reply, f"{action} at {stage}: {reply}")
    like(inst.log(), rf"NOQUEUE: milter-reject: {where} from unknown\[127\.0\.0\.1\]: {log_reply};",
         f"{action} at {stage} logged as Postfix logs it")
    is_(len(inst.captured()), before, f"{action} at {stage}: nothing queued")


refusal_case("connect", "reject", "550 5.7.1 Command rejected", "CONNECT", r"550 5\.7\.1 Command rejected")
like(inst.log(), r"NOQUEUE: milter-reject: MAIL from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 Command rejected; "
     r"from=<a@example\.org> proto=ESMTP helo=<client\.example>",
     "a refusal at CONNECT persists: MAIL is refused with it")
refusal_case("mail", "tempfail", "451 4.7.1 Service unavailable - try again later", "MAIL",
             r"451 4\.7\.1 Service unavailable - try again later")
refusal_case("rcpt", "reply:554 5.7.1 Go away", "554 5.7.1 Go away", "RCPT", r"554 5\.7\.1 Go away")
like(inst.log(), r"milter-reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 Go away; "
     r"from=<a@example\.org> to=<bob@example\.com> proto=ESMTP helo=<client\.example>",
     "the RCPT refusal names sender and recipient")
refusal_case("data", "reject", "550 5.7.1 Command rejected", "DATA", r"550 5\.7\.1 Command rejected")
refusal_case("header", "reply:550 5.7.1 Bad header", "550 5.7.1 Bad header", "END-OF-MESSAGE",
             r"550 5\.7\.1 Bad header")
refusal_case("eom", "tempfail", "451 4.7.1 Service unavailable - try again later", "END-OF-MESSAGE",
             r"451 4\.7\.1 Service unavailable - try again later")
like(inst.log(), r"NOQUEUE: milter-reject: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: 4\.7\.1 Service "
     r"unavailable - try again later; from=<a@example\.org> to=<bob@example\.com> proto=ESMTP "
     r"helo=<client\.example>", "the end-of-message refusal's log line")

# ---- accept, discard, quarantine ----
r = session({"mail": "accept", "eom": ["addheader:X-Never:seen"]})
like(r["eom"] or "", r"^250 ", "accept at MAIL: the message is queued")
ok("eom" not in [e["event"] for e in events()], "accept at MAIL: no more events for the message")
ok(b"X-Never" not in inst.captured()[-1][0], "accept at MAIL: the milter changes nothing")
r = session({"rcpt": "discard"})
like(r["eom"] or "", r"^250 2\.0\.0 Ok: queued as ", "discard at RCPT: the client hears 250")
like(inst.log(), r"NOQUEUE: milter-discard: RCPT from unknown\[127\.0\.0\.1\]: milter triggers DISCARD action; "
     r"from=<a@example\.org> to=<bob@example\.com>", "discard at RCPT logged")
ok("Adiscard=yes" in inst.captured()[-1][1], "discard at RCPT: the envelope says discard")
r = session({"eom": "discard"})
like(r["eom"] or "", r"^250 ", "discard at end of message: 250")
like(inst.log(), r"NOQUEUE: milter-discard: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: milter triggers DISCARD "
     r"action; from=<a@example\.org> to=<bob@example\.com> proto=ESMTP helo=<client\.example>",
     "discard at end of message logged")
ok("Adiscard=yes" in inst.captured()[-1][1], "discard at end of message: the envelope says discard")
r = session({"eom": ["quarantine:looks odd"]})
like(r["eom"] or "", r"^250 ", "quarantine: 250")
like(inst.log(), r"milter-hold: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: milter triggers HOLD action;",
     "quarantine logged as milter-hold")
ok("Ahold=yes" in inst.captured()[-1][1], "quarantine: the envelope says hold")

# ---- changes at end of message ----
body = "Subject: hi\nFrom: a@example.org\nX-Drop: me\nX-Change: old\n\nhello\n"
r = session({"eom": ["addheader:X-Added:one", "insheader:0:X-Top:first",
                     "chgheader:1:X-Change:new", "chgheader:1:X-Drop:",
                     "replacebody:new body\r\n", "chgfrom:<c@example.net>",
                     "addrcpt:<carol@example.com>", "delrcpt:<bob@example.com>"]},
            rcpts=("bob@example.com", "dave@example.com"), body=body)
like(r["eom"] or "", r"^250 ", "a message with changes is queued")
msg, env = inst.captured()[-1]
text = msg.decode()
head, _, tail = text.partition("\n\n")
lines = head.split("\n")
is_(lines[0], "X-Top: first", "insheader at index 0 goes first, above the Received header")
like(lines[1], r"^Received: from client\.example", "smtpd's Received header follows")
ok("X-Added: one" in lines[-1], "addheader appends at the end of the header")
ok("X-Change: new" in lines and "X-Change: old" not in lines, "chgheader replaces a value")
ok(not any(l.startswith("X-Drop") for l in lines), "chgheader with an empty value deletes the header")
is_(tail, "new body\n", "replacebody replaces the body")
like(inst.log(), r"sender changed to <c@example\.net>", "chgfrom is logged")
records = env
ok("Tcarol@example.com" in records and "Tdave@example.com" in records
   and "Tbob@example.com" not in records, "addrcpt and delrcpt change the recipients")

# the last header deleted, alone
r = session({"eom": ["chgheader:1:X-Last:"]}, body="Subject: hi\nX-Last: gone\n\nbody\n")
like(r["eom"] or "", r"^250 ", "a message whose last header a milter deletes is queued")
ok(inst.captured()[-1][0].decode().endswith("Subject: hi\n\nbody\n"), "the last header is gone, the rest kept")

# ---- BDAT: the chunks are held for the milters too ----
write(plan_file, json.dumps({"eom": ["addheader:X-Chunked:yes"]}))
n = inst.log().count("disconnect from")
c = smtpdtest.Client(inst.port, timeout=20)
c.reply()
c.cmd("EHLO client.example")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<bob@example.com>")
part1, part2 = b"Subject: chunks\r\n\r\nfirst ", b"second\r\n"
c.send(b"BDAT %d\r\n" % len(part1) + part1)
is_(c.reply(), f"250 2.0.0 Ok: {len(part1)} bytes", "BDAT: the first chunk is taken")
c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
like(c.reply() or "", r"^250 2\.0\.0 Ok: queued as ", "BDAT LAST: queued after the milter")
c.cmd("QUIT")
c.close()
wait_until(lambda: inst.log().count("disconnect from") > n, 15)
chunked = inst.captured()[-1][0].decode()
ok("X-Chunked: yes\n" in chunked and chunked.endswith("\n\nfirst second\n"),
   "BDAT: the milter's header is added, the text kept whole")

# ---- milter_macro_defaults ----
inst.set(milter_macro_defaults="{auth_type}=none, { {auth_authen} = no one, here }, {rcpt_addr}=nobody")
r = session({})
like(r["eom"] or "", r"^250 ", "a message with milter_macro_defaults set is queued")
ev = events()
mail = [e for e in ev if e["event"] == "mail"][0]
is_(mail["macros"].get("{auth_type}"), "none", "milter_macro_defaults: {auth_type} without AUTH gets its default")
is_(mail["macros"].get("{auth_authen}"), "no one, here",
    "milter_macro_defaults: the { name = value } form keeps commas and spaces in the value")
rcpt = [e for e in ev if e["event"] == "rcpt"][0]
is_(rcpt["macros"].get("{rcpt_addr}"), "bob@example.com", "milter_macro_defaults: a macro with a value keeps it")
inst.set(milter_macro_defaults="")
inst.listener.argv = inst.argv("-o", "milter_macro_defaults=i=from-o")
r = session({})
mail = [e for e in events() if e["event"] == "mail"][0]
is_(mail["macros"].get("i"), "from-o", "milter_macro_defaults as smtpd's -o (master.cf)")
ok("{auth_type}" not in mail["macros"], "without a default, a macro without a value is not sent")
inst.listener.argv = inst.argv()

# ---- milter_header_checks ----
write(os.path.join(work, "mhc"), "/^X-Verdict: reject/ REJECT 5.7.2 not with that header\n"
      "/^X-Verdict: ignore/ IGNORE\n/^X-Verdict: replace/ REPLACE X-Verdict: replaced\n"
      "/^X-Verdict: hold/ HOLD\n/^X-Verdict: redirect/ REDIRECT carol@example.com\n"
      "/^Subject: changed/ REJECT\n")
inst.set(milter_header_checks=f"regexp:{work}/mhc")
before = len(inst.captured())
r = session({"eom": ["addheader:X-Verdict:reject"]})
is_(r["eom"], "550 5.7.2 not with that header", "milter_header_checks REJECT of an added field: its reply")
like(inst.log(), r"NOQUEUE: milter-header-reject: header X-Verdict: reject from unknown\[127\.0\.0\.1\]; "
     r"from=<a@example\.org> to=<bob@example\.com> proto=ESMTP helo=<client\.example>: 5\.7\.2 not with that header",
     "... logged milter-header-reject")
is_(len(inst.captured()), before, "... nothing queued")
r = session({"eom": ["chgheader:1:Subject:changed"]})
is_(r["eom"], "550 5.7.1 message content rejected", "REJECT of a changed field, without text: 5.7.1")
r = session({}, body="Subject: hi\nX-Verdict: reject\n\nhello\n")
like(r["eom"] or "", r"^250 ", "a field the client sent is not milter_header_checks' business")
r = session({"eom": ["addheader:X-Verdict:ignore", "addheader:X-Verdict:replace", "addheader:X-Kept:yes"]})
like(r["eom"] or "", r"^250 ", "IGNORE and REPLACE: queued")
text = inst.captured()[-1][0].decode()
ok("X-Verdict: ignore" not in text and "X-Verdict: replaced\n" in text and "X-Kept: yes\n" in text,
   "IGNORE drops the added field, REPLACE replaces it, the rest stays") or diag(text)
r = session({"eom": ["addheader:X-Verdict:hold"]})
ok("Ahold=yes" in inst.captured()[-1][1], "HOLD: the envelope says hold")
ok(any(x.startswith("Alog_line=milter-header-hold: header X-Verdict: hold from ") for x in inst.captured()[-1][1]),
   "HOLD: the queue is given the line to log with the queue id")
r = session({"eom": ["addheader:X-Verdict:redirect"]})
env = inst.captured()[-1][1]
is_([x for x in env if x.startswith("T")], ["Tcarol@example.com"], "REDIRECT: the one recipient is the new address")
inst.set(milter_header_checks="")

# ---- a milter that is down or too slow ----
dead = free_port()
inst.set(smtpd_milters=f"inet:127.0.0.1:{dead}")
before = len(inst.captured())
r = session({})
is_(r["mail"], "451 4.7.1 Service unavailable - try again later",
    "a milter that is down: milter_default_action tempfail at MAIL")
like(inst.log(), rf"warning: connect to Milter service inet:127\.0\.0\.1:{dead}: Connection refused",
     "the failed connection is logged as Postfix logs it")
inst.set(milter_default_action="accept")
r = session({})
like(r["eom"] or "", r"^250 ", "milter_default_action = accept: mail flows without the milter")
inst.set(milter_default_action="tempfail",
         smtpd_milters=f"{{ inet:127.0.0.1:{dead}, default_action=reject, connect_timeout=5s }}")
r = session({})
is_(r["mail"], "550 5.5.0 Service unavailable", "the per-milter default_action=reject")
inst.set(smtpd_milters=f"inet:127.0.0.1:{port}", milter_content_timeout="1s")
r = session({"eom": "sleep:3"})
is_(r.get("eom"), "451 4.7.1 Service unavailable - try again later",
    "a milter slower than milter_content_timeout: tempfail")
like(inst.log(), r"warning: milter inet:127\.0\.0\.1:\d+: can't read SMFIC_BODYEOB reply packet header: "
     r"Connection timed out", "the timeout is logged")
is_(len(inst.captured()), before + 1, "only the accepted message was queued")

# ---- receive_override_options = no_milters (FILTER_README's re-injection
# listener, where the mail has been through the milters once) ----
inst.set(milter_content_timeout="5s", receive_override_options="no_milters")
r = session({"connect": "reject"})
like(r.get("eom") or "", r"^250 2\.0\.0 Ok: queued as ", "no_milters: a milter that would refuse is not asked")
is_(events(), [], "the milter sees nothing of the session")
inst.set(receive_override_options="")
r = session({"connect": "reject"})
like(r["mail"] or "", r"^5\d\d ", "without it the same milter refuses the session")

inst.stop()
stop(milter)
done()
