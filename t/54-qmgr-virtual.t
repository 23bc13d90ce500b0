#!/usr/bin/env python3
# postern-qmgr with the real postern-virtual runner: queue file -> qmgr ->
# postern-virtual -> Maildir and mbox, unknown users bounced (5.1.1), the
# log lines as Postfix writes them.
import glob, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean

if not os.access(prog("postern-virtual"), os.X_OK):
    skip_all("postern-virtual is not built")

ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()

inst = Instance("virtual_transport = virtual\nvirtual_mailbox_domains = example.com\n", runners=())
base = os.path.join(inst.dir, "mail")
os.makedirs(os.path.join(base, "example.com"))
if ROOT:
    os.chmod(inst.dir, 0o755)
    os.chown(base, OWNER, GROUP)
    os.chown(os.path.join(base, "example.com"), OWNER, GROUP)
write(os.path.join(inst.dir, "vmailbox"), "bob@example.com example.com/bob/\n"
      "alice@example.com example.com/alice\n")
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(f"virtual_mailbox_base = {base}\n"
            f"virtual_mailbox_maps = texthash:{inst.dir}/vmailbox\n"
            f"virtual_uid_maps = static:{OWNER}\nvirtual_gid_maps = static:{GROUP}\n")
os.symlink(os.path.abspath(prog("postern-virtual")), os.path.join(inst.libexec, "postern-virtual"))
inst.start()

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
