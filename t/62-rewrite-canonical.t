#!/usr/bin/env python3
# canonical_maps, sender_canonical_maps, recipient_canonical_maps with their
# *_classes, masquerade_domains (with ! and masquerade_exceptions) and the
# header rewrite context (local_header_rewrite_clients,
# remote_header_rewrite_domain), through smtpd and sendmail: the Maildir a
# message lands in, its Return-Path and its header addresses.  What Postfix
# 3.7 did with the same maps: t/data/postfix-3.7-canonical.txt.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from smtpdtest import Client, Listener

inst = new_instance("--domain", "example.com")

d = inst.dir
tap.write(os.path.join(d, "canonical"), "old@example.com new@example.com\n")
# seed 004's canonical table
tap.write(os.path.join(d, "canonical.pcre"),
          "/^(.+)@(t)?(cs)?(bsd|linux|sun)\\d*\\.cs\\.nctu\\.edu\\.tw$/ $1@cs.nctu.edu.tw\n")
tap.write(os.path.join(d, "sender_canonical"), "me@example.com boss@example.com\n")
tap.write(os.path.join(d, "recipient_canonical"), "me@example.com mine@example.com\n")
maincf = os.path.join(d, "main.cf")
tap.write(maincf, re.sub(r"(?m)^myorigin = .*$", "myorigin = example.com", open(maincf).read()))
with open(maincf, "a") as f:
    f.write("canonical_maps = texthash:%s/canonical, pcre:%s/canonical.pcre\n" % (d, d))
    f.write("sender_canonical_maps = texthash:%s/sender_canonical\n" % d)
    f.write("recipient_canonical_maps = texthash:%s/recipient_canonical\n" % d)
    # seed 004
    f.write("masquerade_domains = !chairman.cs.nctu.edu.tw cs.nctu.edu.tw\n")
    f.write("masquerade_exceptions = admin, root\n")
r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stderr)
r = inst.postern("check")
tap.unlike(r.stdout + r.stderr, r"canonical_maps|masquerade_domains", "postern check no longer reports them")


def send(port, sender, rcpts, header):
    c = Client(port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<%s>" % sender)
    for rcpt in rcpts:
        c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    c.send(header.replace("\n", "\r\n").encode() + b"\r\nbody\r\n.\r\n")
    answer = c.reply()
    c.cmd("QUIT")
    return answer


def newest(name, count):
    got = inst.wait_for(name, count)
    return got[count - 1].decode("utf-8", "replace") if len(got) >= count else ""


def header(msg, name):
    m = re.search(r"(?mi)^%s: (.*(?:\n[ \t].*)*)$" % name, msg)
    return m.group(1) if m else None


smtpd = Listener([tap.prog("postern-smtpd"), "-c", d])
queued = r"^250 2\.0\.0 Ok: queued as "

# ---- the default classes, SMTP from 127.0.0.1 (a local client) ----
tap.like(send(smtpd.port, "me@example.com", ["old@example.com", "me@example.com"],
              "Subject: a\nFrom: Me <me@example.com>\nTo: old@example.com\nCc: me@example.com\n"),
         queued, "queued")
msg = newest("new", 1)
tap.ok(msg != "", "canonical_maps: mail for old@ lands in new's Maildir")
tap.ok(not os.path.isdir(inst.maildir("old")), "and old has no Maildir")
tap.is_(header(msg, "Return-Path"), "<boss@example.com>", "sender_canonical_maps: the envelope sender")
tap.is_(header(msg, "From"), "Me <boss@example.com>", "sender_canonical_maps: From: (header_sender)")
tap.is_(header(msg, "To"), "new@example.com", "canonical_maps: To: (header_recipient)")
tap.is_(header(msg, "Cc"), "mine@example.com", "recipient_canonical_maps: Cc: (header_recipient)")
tap.ok(newest("mine", 1) != "", "recipient_canonical_maps: me@ as a recipient lands in mine's Maildir")

# ---- seed 004: pcre canonical, masquerading ----
tap.like(send(smtpd.port, "joe@bsd3.cs.nctu.edu.tw", ["frank@example.com"],
              "Subject: b\nFrom: joe@tcslinux2.cs.nctu.edu.tw\nTo: carol@ws.cs.nctu.edu.tw, "
              "root@ws.cs.nctu.edu.tw,\n bob@chairman.cs.nctu.edu.tw\nReply-To: alice@host.cs.nctu.edu.tw\n"),
         queued, "queued")
msg = newest("frank", 1)
tap.is_(header(msg, "Return-Path"), "<joe@cs.nctu.edu.tw>", "seed 004 pcre canonical: the envelope sender")
tap.is_(header(msg, "From"), "joe@cs.nctu.edu.tw", "and From:")
tap.like(msg, r"(?m)^To: carol@cs\.nctu\.edu\.tw, root@ws\.cs\.nctu\.edu\.tw,\n\tbob@chairman\.cs\.nctu\.edu\.tw$",
         "masquerade: carol's host is stripped, root is an exception, !chairman is kept; refolded under "
         "70 columns with a TAB as Postfix (t/data/postfix-3.7-canonical.txt)")
tap.is_(header(msg, "Reply-To"), "alice@cs.nctu.edu.tw", "masquerade: Reply-To (header_sender)")
tap.like(send(smtpd.port, "alice@host.cs.nctu.edu.tw", ["frank@example.com"], "Subject: c\n"), queued, "queued")
tap.is_(header(newest("frank", 2), "Return-Path"), "<alice@cs.nctu.edu.tw>", "masquerade: the envelope sender")

# ---- classes ----
only_env = Listener([tap.prog("postern-smtpd"), "-c", d, "-o", "canonical_classes=envelope_recipient"])
tap.like(send(only_env.port, "x@example.org", ["old@example.com"], "Subject: d\nTo: old@example.com\n"), queued, "queued")
msg = newest("new", 2)
tap.is_(header(msg, "To"), "old@example.com", "canonical_classes = envelope_recipient: To: stays")
tap.ok(msg != "", "but the envelope recipient is mapped")
only_env.stop()

# ---- the header rewrite context ----
remote = Listener([tap.prog("postern-smtpd"), "-c", d, "-o", "local_header_rewrite_clients="])
tap.like(send(remote.port, "me@example.com", ["old@example.com"], "Subject: e\nTo: old@example.com, joe\n"),
         queued, "queued")
msg = newest("new", 3)
tap.is_(header(msg, "To"), "old@example.com, joe", "a client not in local_header_rewrite_clients: headers untouched")
tap.is_(header(msg, "Return-Path"), "<boss@example.com>", "but the envelope is mapped")
tap.is_(header(msg, "Message-Id"), None, "and no Message-Id is added")
remote.stop()
remote = Listener([tap.prog("postern-smtpd"), "-c", d, "-o", "local_header_rewrite_clients=",
                   "-o", "remote_header_rewrite_domain=domain.invalid"])
tap.like(send(remote.port, "me@example.com", ["old@example.com"], "Subject: f\nTo: old@example.com, joe\n"),
         queued, "queued")
msg = newest("new", 4)
tap.is_(header(msg, "To"), "new@example.com, joe@domain.invalid",
        "remote_header_rewrite_domain: joe@domain.invalid, and canonical_maps apply")
tap.like(header(msg, "Message-Id") or "", r"^<.*@localhost>$", "and a Message-Id is added")
remote.stop()
listed = Listener([tap.prog("postern-smtpd"), "-c", d, "-o", "local_header_rewrite_clients=static:all"])
tap.like(send(listed.port, "me@example.com", ["old@example.com"], "Subject: g\nTo: joe\n"), queued, "queued")
tap.is_(header(newest("new", 5), "To"), "joe@example.com", "local_header_rewrite_clients = static:all: local")
listed.stop()

# ---- sendmail (postern-rewrite) ----
r = inst.sendmail(["-f", "me", "old"], b"Subject: h\nTo: old\n\nbody\n")
tap.is_(r.returncode, 0, "sendmail") or tap.diag(r.stderr)
msg = newest("new", 6)
tap.is_(header(msg, "Return-Path"), "<boss@example.com>", "sendmail: the sender qualified, then mapped")
tap.is_(header(msg, "To"), "new@example.com", "sendmail: To: qualified, then mapped")
tap.like(header(msg, "From") or "", r"(^|<)boss@example\.com>?$", "sendmail: the missing From: is the mapped sender")
smtpd.stop()
tap.done()
