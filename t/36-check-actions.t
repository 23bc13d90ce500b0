#!/usr/bin/env python3
# header_checks and body_checks actions that act on the whole message, as
# Postfix 3.7 does them (t/data/postfix-3.7-actions.txt): DISCARD (250,
# then nothing stored, a "discard:" line with the queue id), HOLD (into
# hold/, "!" in mailq, delivered after `postern queue release`), REDIRECT
# (every recipient replaced, orig_to logged), FILTER (the route of every
# recipient), BCC (one more recipient); the lines are logged with the
# queue id, from=, to=, proto= and helo= as Postfix's cleanup logs them.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Listener, transaction

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "header_checks"), """\
/^Subject: discard me/ DISCARD dropped it
/^Subject: hold me/ HOLD held it
/^Subject: redirect me/ REDIRECT other@example.com
/^Subject: filter me/ FILTER error:5.7.0 filtered away
/^Subject: bcc me/ BCC copy@example.com
/^Subject: bad filter/ FILTER nocolon
""")
tap.write(os.path.join(d, "body_checks"), """\
/^discard body/ DISCARD body gone
/^hold body/ HOLD
""")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("header_checks = regexp:%s/header_checks\n" % d)
    f.write("body_checks = regexp:%s/body_checks\n" % d)
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)

smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])


def send(subject, body="body\n", rcpt="rcpt@example.com"):
    _, answer, qid = transaction(smtpd.port, "x@example.org", [rcpt], "Subject: %s\n\n%s" % (subject, body))
    return answer, qid


def wait_log(pattern, what):
    ok = tap.wait_until(lambda: re.search(pattern, inst.log(), re.M), timeout=15)
    return tap.ok(ok, what) or tap.diag(inst.log()[-3000:])


TAIL = r" from localhost\[127\.0\.0\.1\]; from=<x@example\.org> to=<rcpt@example\.com> proto=ESMTP helo=<client\.example>"

# DISCARD: accepted, logged, never stored or delivered
answer, qid = send("discard me")
tap.ok(qid, "DISCARD: the client hears 250 ... queued as ID") or tap.diag(answer)
wait_log(r"postern/\w+\[\d+\]: %s: discard: header Subject: discard me%s: dropped it$" % (qid, TAIL),
         "DISCARD logged with the queue id, as Postfix's cleanup")
tap.unlike(inst.log(), r"%s: message-id=" % qid, "and no message-id line (Postfix logs none)")
answer, qid2 = send("discard not", "discard body here\n")
wait_log(r"%s: discard: body discard body here%s: body gone$" % (qid2, TAIL), "a body DISCARD")

# HOLD: stored into hold/, listed with "!", delivered once released
answer, hold_id = send("hold me")
wait_log(r"%s: hold: header Subject: hold me%s: held it$" % (hold_id, TAIL), "HOLD logged")
held = os.path.join(d, "queue", "hold", hold_id or "none")
tap.ok(tap.wait_until(lambda: os.path.exists(held), timeout=15), "the held message waits in hold/")
r = inst.postern("queue", "list")
tap.like(r.stdout, r"(?m)^%s!\s" % hold_id, "mailq marks it with '!'") or tap.diag(r.stdout)
answer, body_hold = send("body hold", "hold body\n")
wait_log(r"%s: hold: body hold body%s$" % (body_hold, TAIL), "a body HOLD without text")
tap.ok(tap.wait_until(lambda: os.path.exists(os.path.join(d, "queue", "hold", body_hold or "none")),
                      timeout=15), "and it is held too")

# REDIRECT: delivered to the new address instead, orig_to logged
answer, redirect_id = send("redirect me")
wait_log(r"%s: redirect: header Subject: redirect me%s: other@example\.com$" % (redirect_id, TAIL),
         "REDIRECT logged")
tap.is_(len(inst.wait_for("other")), 1, "REDIRECT: the new address got it")
wait_log(r"%s: to=<other@example\.com>, orig_to=<rcpt@example\.com>, relay=" % redirect_id,
         "delivery logged with orig_to, as Postfix")

# BCC: one more recipient
answer, bcc_id = send("bcc me")
wait_log(r"%s: bcc: header Subject: bcc me%s: copy@example\.com$" % (bcc_id, TAIL), "BCC logged")
tap.is_(len(inst.wait_for("copy")), 1, "BCC: the copy arrived")

# FILTER: the route of every recipient (here Postfix's error transport)
answer, filter_id = send("filter me")
wait_log(r"%s: filter: header Subject: filter me%s: error:5\.7\.0 filtered away$" % (filter_id, TAIL),
         "FILTER logged")
wait_log(r"%s: to=<rcpt@example\.com>, relay=none, .*status=bounced \(filtered away\)" % filter_id,
         "FILTER error:text routes the message to the error transport")
answer, bad_id = send("bad filter")
wait_log(r"bad FILTER action syntax \"nocolon\"", "a FILTER without transport:destination is warned about")

# rcpt got exactly: the bcc message, the bad-filter one (and after release, the held ones)
got = inst.wait_for("rcpt", 2)
subjects = sorted(re.search(r"(?m)^Subject: (.*)$", m.decode()).group(1) for m in got)
tap.is_(subjects, ["bad filter", "bcc me"], "nothing discarded, held, redirected or filtered reached rcpt")

r = inst.postern("queue", "release", hold_id)
tap.is_(r.returncode, 0, "postern queue release") or tap.diag(r.stderr)
inst.postern("queue", "flush")      # as postsuper -H, then postqueue -f
got = inst.wait_for("rcpt", 3)
tap.ok(any(b"Subject: hold me" in m for m in got), "the released message is delivered")
tap.ok(os.path.exists(os.path.join(d, "queue", "hold", body_hold)), "the other one stays held")

# sendmail: the same through postern-rewrite, "from local"
r = inst.sendmail(["-f", "me@example.com", "rcpt@example.com"], b"Subject: hold me\n\nbody\n")
tap.is_(r.returncode, 0, "sendmail: a held message is accepted") or tap.diag(r.stderr)
wait_log(r"postern/\w+\[\d+\]: ([0-9A-F]+): hold: header Subject: hold me from local; "
         r"from=<me@example\.com> to=<rcpt@example\.com>: held it$", "sendmail: HOLD logged with the queue id")
qid = re.findall(r"([0-9A-F]+): hold: header Subject: hold me from local", inst.log())[-1]
tap.ok(tap.wait_until(lambda: os.path.exists(os.path.join(d, "queue", "hold", qid)), timeout=15),
       "sendmail: held in hold/")

# a submitter's own log_line that is no check's line is not logged as the queue's
env_r, env_w = os.pipe()
os.write(env_w, b"Fme@example.com\0Trcpt@example.com\0Alog_line=to=<forged@example.com>, status=sent\0\0")
os.close(env_w)
p = subprocess.run([tap.prog("postern-rewrite"), "-c", d], input=b"Subject: forged\n\nbody\n", stdout=env_r,
                   stderr=subprocess.PIPE, env=dict(os.environ, POSTERN_CONFIG_DIR=d))
os.close(env_r)
tap.is_(p.returncode, 0, "postern-rewrite from a shell") or tap.diag(p.stderr)
wait_log(r"log_line attribute that is no check's line ignored: to=<forged", "a forged log_line is refused, with a warning")
tap.unlike(inst.log(), r"[0-9A-F]+: to=<forged@example\.com>, status=sent", "and not logged")
# milter_header_checks' lines (smtpd's milters) are check lines too
env_r, env_w = os.pipe()
os.write(env_w, b"Fme@example.com\0Trcpt@example.com\0Alog_line=milter-header-warning: header X-Spam: yes "
         b"from local; from=<me@example.com> to=<rcpt@example.com>: looked\0\0")
os.close(env_w)
p = subprocess.run([tap.prog("postern-rewrite"), "-c", d], input=b"Subject: milter line\n\nbody\n", stdout=env_r,
                   stderr=subprocess.PIPE, env=dict(os.environ, POSTERN_CONFIG_DIR=d))
os.close(env_r)
tap.is_(p.returncode, 0, "postern-rewrite from a shell, with a milter_header_checks line") or tap.diag(p.stderr)
wait_log(r"[0-9A-F]+: milter-header-warning: header X-Spam: yes from local; from=<me@example\.com> "
         r"to=<rcpt@example\.com>: looked", "the queue logs a milter-header line with the queue id")
smtpd.stop()
inst.stop()
tap.done()
