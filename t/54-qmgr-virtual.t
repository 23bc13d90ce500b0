#!/usr/bin/env python3
# postern-qmgr with the real postern-virtual runner: queue file -> qmgr ->
# postern-virtual -> Maildir and mbox, unknown users bounced (5.1.1), the
# log lines as Postfix writes them.
import glob, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import all_clean, virtual_instance

require(["postern-virtual"])

inst, base = virtual_instance(("texthash:", "bob@example.com example.com/bob/\n"
                                            "alice@example.com example.com/alice\n"))

body = "From: Alice <alice@example.org>\nSubject: hello\n\nfirst line\nFrom the middle\n"
ids = [inst.inject("alice@example.org", ["bob@example.com", "alice@example.com"], body=body)
       for _ in range(3)]
bad = inst.inject("alice@example.org", ["nobody@example.com"], body=body)
inst.poke()
ok(all(inst.wait_log(rf"{q}: removed$", 15) for q in ids + [bad]), "every message is done and removed")
log = inst.logtext()
like(log, rf"{ids[0]}: to=<bob@example.com>, relay=virtual, delay=[\d.]+, delays=[\d.]+/[\d.]+/0/[\d.]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)$",
     "Maildir delivery logged as Postfix's virtual(8)")
like(log, rf"{ids[0]}: to=<alice@example.com>, relay=virtual, .*dsn=2\.0\.0, status=sent \(delivered to mailbox\)$",
     "mbox delivery too")
like(log, rf"{bad}: to=<nobody@example.com>, relay=virtual, .*dsn=5\.1\.1, status=bounced \(",
     "an unknown user bounces 5.1.1")
mails = sorted(glob.glob(os.path.join(base, "example.com", "bob", "new", "*")))
is_(len(mails), 3, "three messages in bob's Maildir/new")
with open(mails[0], errors="replace") as f:
    text = f.read()
like(text, r"^Delivered-To: bob@example.com$", "with Delivered-To")
like(text, r"^Return-Path: <alice@example.org>$", "and Return-Path")
like(text, r"^first line\nFrom the middle$", "and the body as queued")
with open(os.path.join(base, "example.com", "alice"), errors="replace") as f:
    mbox = f.read()
is_(len([l for l in mbox.splitlines() if l.startswith("From alice@example.org ")]), 3,
    "three messages in alice's mbox")
is_([n["kind"] for n in inst.runs("notices.jsonl")], ["failure"],
    "the bounce asks postern-bounce for a notice")
inst.stop()
ok(all_clean(), "qmgr stopped cleanly")
done()
