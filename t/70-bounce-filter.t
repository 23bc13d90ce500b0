#!/usr/bin/env python3
# internal_mail_filter_classes, as Postfix's cleanup: header_checks and
# body_checks do not see postern's own bounces unless the setting names
# "bounce", and never see mail that postern-local forwards for an alias
# (Postfix's local(8) re-injects it without content inspection).  A
# header_checks HOLD that matches the bounce's Subject and the Delivered-To:
# of the forwarded copy shows who was checked: held mail lands in hold/.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpsink import Sink

tap.require(["postern", "postern-smtp", "postern-local", "postern-qmgr", "postern-bounce",
             "postern-rewrite", "sendmail"], tools=["/usr/bin/python3"])

port = tap.free_port()
sink = Sink("127.0.0.1", port)      # "bad..." recipients get 550 5.1.1

inst = new_instance("--domain", "example.com", "-o", "minimal_backoff_time=1s",
                    "-o", "maximal_backoff_time=2s", "-o", "queue_run_delay=1s")
D = inst.dir
tap.write(os.path.join(D, "transport"), f"remote.test smtp:[127.0.0.1]:{port}\n")
tap.write(os.path.join(D, "aliases"), "team bob@example.com\n")
tap.write(os.path.join(D, "header_checks"),
          "/^Subject: Undelivered Mail Returned to Sender/ HOLD bounce held\n"
          "/^Delivered-To: team@local\\.test/ HOLD forward held\n"
          "/^Subject: never/ REJECT never\n")
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
transport_maps = texthash:{D}/transport
mydestination = local.test
alias_maps = texthash:{D}/aliases
alias_database =
forward_path =
header_checks = regexp:{D}/header_checks
""")
    if os.geteuid() == 0:
        f.write("privileged_transports = local\n")


def log_after(at, pattern, name, timeout=30):
    found = tap.wait_until(lambda: re.search(pattern, inst.log()[at:]), timeout)
    return tap.ok(found, name) or tap.diag(inst.log()[at:][-3000:])


def round_trip(classes):
    """One bounce and one forward with internal_mail_filter_classes set."""
    inst.stop()
    r = inst.postern("conf", "-e", "internal_mail_filter_classes=" + classes)
    tap.is_(r.returncode, 0, "internal_mail_filter_classes = %r" % classes)
    tap.is_(inst.start().returncode, 0, "the instance starts")
    at = len(inst.log())
    held = inst.queue_counts()["hold"]
    alice = len(inst.delivered("alice"))
    bob = len(inst.delivered("bob"))
    # a bounce: the sink refuses bad@remote.test with 550 5.1.1
    r = inst.sendmail(["-f", "alice@example.com", "bad@remote.test"],
                      b"Subject: to nowhere\n\nlost\n")
    tap.is_(r.returncode, 0, "sendmail to a recipient the server refuses")
    log_after(at, r"to=<bad@remote\.test>.*status=bounced", "the message bounced")
    log_after(at, r"postern/bounce\[\d+\]: [0-9A-F]+: sender non-delivery notification: [0-9A-F]+",
              "a non-delivery notice was made")
    if "bounce" in classes:
        log_after(at, r"[0-9A-F]+: hold: header Subject: Undelivered Mail Returned to Sender from "
                      r".*: bounce held", "header_checks held the bounce (its class is filtered)")
        tap.wait_until(lambda: inst.queue_counts()["hold"] > held, 15)
        tap.is_(inst.queue_counts()["hold"], held + 1, "the bounce waits in hold/")
        tap.is_(len(inst.delivered("alice")), alice, "alice got no bounce")
    else:
        got = inst.wait_for("alice", alice + 1)
        tap.is_(len(got), alice + 1, "the bounce reached alice: header_checks skipped it")
        tap.like(got[-1].decode(errors="replace"), r"Subject: Undelivered Mail Returned to Sender",
                 "it is the bounce")
        tap.unlike(inst.log()[at:], r"hold: header Subject: Undelivered", "no hold logged")
    # a forward: postern-local re-injects team@local.test's copy for bob
    at = len(inst.log())
    r = inst.sendmail(["-f", "carol@example.com", "team@local.test"],
                      b"Subject: for the team\n\nhi\n")
    tap.is_(r.returncode, 0, "sendmail to an alias")
    got = inst.wait_for("bob", bob + 1, 30)
    if tap.is_(len(got), bob + 1, "the forwarded copy reached bob: never checked"):
        tap.like(got[-1].decode(errors="replace"), r"Delivered-To: team@local\.test",
                 "it carries the Delivered-To: the check would have matched")
    tap.unlike(inst.log()[at:], r"forward held", "no hold logged for the forward")


round_trip("")
round_trip("bounce, notify")

# mail from outside is still checked: a REJECT refuses it at submission
r = inst.sendmail(["-f", "alice@example.com", "bob@example.com"], b"Subject: never\n\nx\n")
tap.isnt(r.returncode, 0, "a message header_checks rejects is refused")
tap.like(r.stderr, r"never", "with the check's text")

inst.stop()
tap.done()
