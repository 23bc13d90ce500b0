#!/usr/bin/env python3
# Notices through the real programs: qmgr bounces through an error: next hop,
# asks postern-bounce, which queues the report with postern-queue; qmgr then
# delivers the report into the sender's Maildir with postern-virtual.  The
# report is read with Python's email package.  Expiry and delay warnings
# take the same way.
import email, email.policy, glob, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean

require(["postern-queue", "postern-virtual", "postern-bounce"])

ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()


def instance(main_cf, runners=()):
    inst = Instance("virtual_transport = virtual\nvirtual_mailbox_domains = example.com\n"
                    "myorigin = example.com\n" + main_cf, runners=runners, bounce=False)
    base = os.path.join(inst.dir, "mail")
    os.makedirs(base)
    if ROOT:
        os.chmod(inst.dir, 0o755)
        os.chown(base, OWNER, GROUP)
    write(os.path.join(inst.dir, "vmailbox"), "alice@example.com example.com/alice/\n")
    with open(os.path.join(inst.dir, "main.cf"), "a") as f:
        f.write(f"virtual_mailbox_base = {base}\nvirtual_mailbox_maps = texthash:{inst.dir}/vmailbox\n"
                f"virtual_uid_maps = static:{OWNER}\nvirtual_gid_maps = static:{GROUP}\n")
    for p in ("postern-virtual", "postern-bounce", "postern-queue"):
        os.symlink(os.path.abspath(prog(p)), os.path.join(inst.libexec, p))
    inst.base = base
    return inst


def mailbox(inst):
    out = []
    for path in sorted(glob.glob(os.path.join(inst.base, "example.com", "alice", "new", "*"))):
        with open(path, "rb") as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def report_fields(msg):
    """The per-recipient fields of the message/delivery-status part."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            return {k: v for b in blocks[1:] for k, v in b.items()}
    return {}


inst = instance("default_transport = error:5.7.1 no outbound mail\n")
inst.start()
qid = inst.inject("alice@example.com", ["bob@far.test"])
inst.poke()
ok(inst.wait(lambda: len(mailbox(inst)) == 1, 15), "the non-delivery report reaches the sender's Maildir")
ok(inst.wait_log(rf"{qid}: removed$"), "and the bounced message is removed")
like(inst.logtext(), rf"postern/bounce\[\d+\]: {qid}: sender non-delivery notification: [0-9A-F]+$",
     "postern-bounce logs the notice as Postfix's bounce(8)")
msg = mailbox(inst)[0]
is_(msg["Return-Path"], "<>", "the report has the null sender")
is_(msg.get_content_type(), "multipart/report", "it is a multipart/report")
fields = report_fields(msg)
is_((str(fields.get("Final-Recipient")), str(fields.get("Action")), str(fields.get("Status"))),
    ("rfc822; bob@far.test", "failed", "5.7.1"), "Final-Recipient, Action and Status from qmgr's S record")
inst.stop()

# expiry and a delay warning, with a runner that always defers
inst = instance("relay_domains = slow.test\nrelay_transport = tdefer\nmaximal_queue_lifetime = 3s\n"
                "delay_warning_time = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 1s\n"
                "queue_run_delay = 1s\n", runners=("tdefer",))
inst.start()
qid = inst.inject("alice@example.com", ["defer@slow.test"])
inst.poke()
ok(inst.wait(lambda: len(mailbox(inst)) >= 2, 20), "a delay warning, then the expiry report")
ok(inst.wait_log(rf"{qid}: removed$"), "the expired message is removed")
like(inst.logtext(), rf"{qid}: from=<alice@example.com>, status=expired, returned to sender$",
     "the expiry is logged as Postfix does")
reports = mailbox(inst)
actions = sorted(str(report_fields(m).get("Action")) for m in reports)
is_(actions, ["delayed", "failed"], "one 'delayed' and one 'failed' report")
failed = [m for m in reports if str(report_fields(m).get("Action")) == "failed"][0]
is_(str(report_fields(failed).get("Status")), "4.2.0",
    "the expiry report carries the last deferral status")
inst.stop()
ok(all_clean(), "qmgr stopped cleanly")
done()
