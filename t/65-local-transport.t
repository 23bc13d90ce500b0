#!/usr/bin/env python3
# postern-local's mailbox_transport, mailbox_transport_maps,
# fallback_transport and fallback_transport_maps, as Postfix's local(8):
# after the aliases and .forward, the mailbox delivery goes to another
# transport (here a real Dovecot LMTP server the test starts), and a user
# unknown to passwd goes to the fallback transport instead of bouncing.
# postern-local hands the recipient back to qmgr with the new route (an H
# result, doc/delivery.md), so the log line is the lmtp runner's.
#
# As root the local user is a temporary one (useradd) served through the
# runner service (privileged_transports = local), with a .forward whose
# "\user" still reaches the transport and a user outside the maps that
# still gets his mbox; not as root, the instance's own user.
import os
import pwd
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from dovecotlmtp import DovecotLMTP, installed as dovecot_installed

tap.require(["postern", "postern-local", "postern-lmtp", "postern-qmgr", "postern-lookup",
             "postern-spawn", "postern-bounce", "sendmail"])
if not tap.ok(dovecot_installed(),
              "dovecot and its LMTP server are installed (./deps: dovecot-core, dovecot-lmtpd)"):
    tap.done()

ROOT = os.geteuid() == 0
tag = "%04d" % (os.getpid() % 10000)
if ROOT:
    from users import create_users
    U, V, W = (p.pw_name for p in create_users([f"mtu{tag}", f"mtv{tag}", f"mtw{tag}"]))
else:
    U, V, W = pwd.getpwuid(os.getuid()).pw_name, None, None
GHOST, SPOOK, NOBODY, LOOPY = f"ghost{tag}", f"spook{tag}", f"nobody{tag}", f"loopy{tag}"
for name in (GHOST, SPOOK, NOBODY, LOOPY):
    try:
        pwd.getpwnam(name)
        tap.skip_all(f"{name} is a user of this system")
    except KeyError:
        pass

# ---- Dovecot LMTP, on a unix socket and on a loopback port -------------
dc = DovecotLMTP(tuple((user, "") for user in (U, V, GHOST, SPOOK) if user),
                 postmaster="postmaster@local.test")
if not tap.ok(dc.start(), "Dovecot's LMTP socket is there"):
    tap.done()
dove, lmtp_port, proc = dc.dir, dc.port, dc.proc
dovecot_new = dc.maildir_new
UNIX_RELAY = re.escape(f"localhost[{dove}/lmtp]")
INET_RELAY = re.escape(f"127.0.0.1[127.0.0.1]:{lmtp_port}")

# ---- the instance: local.test is ours, mailbox_transport into Dovecot --
inst = new_instance()
D = inst.dir
spool = os.path.join(D, "spool")
os.mkdir(spool)
tap.write(os.path.join(D, "aliases"), f"team {U}\n")     # texthash: "key value"
with open(os.path.join(D, "main.cf"), "a") as f:
    f.write(f"""
mydestination = local.test
myorigin = local.test
alias_maps = texthash:{D}/aliases
alias_database =
recipient_delimiter = +
home_mailbox =
mail_spool_directory = {spool}
mailbox_transport = lmtp:unix:{dove}/lmtp
""")
    # not root: the own user's real .forward stays out of it
    f.write("privileged_transports = local\n" if ROOT else "forward_path =\n")
r = inst.postern("check")
tap.unlike(r.stderr, r"mailbox_transport", "postern check no longer calls mailbox_transport unimplemented") or tap.diag(r.stderr)
tap.is_(inst.start().returncode, 0, "the instance starts")


def log_has(pattern, name, timeout=30):
    found = tap.wait_until(lambda: re.search(pattern, inst.log()), timeout)
    if not tap.ok(found, name):
        tap.diag(f"expected: {pattern}\n" + "".join(
            line for line in inst.log().splitlines(True) if "to=<" in line or "fatal" in line))
    return found


r = inst.sendmail(["-f", "s@example.org", f"{U}@local.test", "team@local.test", f"{GHOST}@local.test"],
                  b"Subject: to the transport\n\nhello Dovecot\n")
tap.is_(r.returncode, 0, "sendmail") or tap.diag(r.stderr)
log_has(rf"to=<{U}@local\.test>, relay={UNIX_RELAY}, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <{U}@local\.test> \S+ Saved\)",
        "mailbox_transport: the local user's mail goes to Dovecot, logged by the lmtp runner with Dovecot's reply")
log_has(r"to=<team@local\.test>, relay=local, .*dsn=2\.0\.0, status=sent \(forwarded as [0-9A-F]+\)",
        "an alias is still expanded first, by postern-local")
tap.ok(tap.wait_until(lambda: len(dovecot_new(U)) == 2, 30),
       "the user has both copies in the Dovecot Maildir (the alias's copy handed over too)")
tap.like((dovecot_new(U) or [b""])[0].decode(errors="replace"), r"hello Dovecot", "with the body")
log_has(rf"to=<{GHOST}@local\.test>, relay={UNIX_RELAY}, .*status=sent",
        "a user unknown to passwd goes to mailbox_transport too (Postfix: whether or not in passwd)")
tap.ok(tap.wait_until(lambda: len(dovecot_new(GHOST)) == 1, 30), "and lands in Dovecot")
tap.unlike(inst.log(), rf"to=<{U}@local\.test>, relay=local,", "no local delivery line for the user")
tap.is_(os.listdir(spool), [], "postern-local wrote no mailbox")

# from a shell there is no qmgr to hand over to: deferred with the reason
r = tap.run([tap.prog("postern-local"), "-c", D, "-f", "s@example.org", U], input=b"Subject: shell\n\nx\n")
tap.is_(r.returncode, 75, "from a shell: EX_TEMPFAIL")
tap.like(r.stdout.decode(), rf"{U}: dsn=4\.3\.0, status=deferred \(mailbox_transport sends this recipient to "
         rf"lmtp:unix:{re.escape(dove)}/lmtp: only qmgr can hand it over",
         "and it says where the mail would go")

# ---- the _maps variants and fallback_transport -------------------------
tap.is_(inst.stop().returncode, 0, "stop for the second configuration")
tap.write(os.path.join(D, "mbxmaps"), f"{U} lmtp:inet:127.0.0.1:{lmtp_port}\n{LOOPY} local:\n"
          + (f"{V} lmtp:unix:{dove}/lmtp\n" if ROOT else ""))
tap.write(os.path.join(D, "fbmaps"), f"{GHOST} lmtp:inet:127.0.0.1:{lmtp_port}\n")
for setting in ("mailbox_transport=", f"mailbox_transport_maps=texthash:{D}/mbxmaps",
                f"fallback_transport_maps=texthash:{D}/fbmaps", f"fallback_transport=lmtp:unix:{dove}/lmtp"):
    tap.is_(inst.postern("conf", "-e", setting).returncode, 0, f"postern conf -e {setting.split('=')[0]}")
tap.is_(inst.start().returncode, 0, "the instance starts again")
rcpts = [f"{U}+ext@local.test", f"{GHOST}@local.test", f"{SPOOK}@local.test", f"{NOBODY}@local.test",
         f"{LOOPY}@local.test"]
if ROOT:
    # V's .forward keeps a copy in a file and sends "\V" to the mailbox
    v = pwd.getpwnam(V)
    copy = os.path.join(v.pw_dir, "copy")
    tap.write(os.path.join(v.pw_dir, ".forward"), f"\\{V}, {copy}\n")
    os.chown(os.path.join(v.pw_dir, ".forward"), v.pw_uid, v.pw_gid)
    rcpts += [f"{V}@local.test", f"{W}@local.test"]
r = inst.sendmail(["-f", "s@example.org"] + rcpts, b"Subject: maps\n\nthrough the maps\n")
tap.is_(r.returncode, 0, "sendmail") or tap.diag(r.stderr)
log_has(rf"to=<{U}\+ext@local\.test>, relay={INET_RELAY}, .*status=sent \(250 2\.0\.0 <{U}\+ext@local\.test>",
        "mailbox_transport_maps: looked up by the user without the extension, its transport and next hop used")
tap.ok(tap.wait_until(lambda: len(dovecot_new(U)) == 3, 30), "the message is in the user's Dovecot Maildir")
log_has(rf"to=<{GHOST}@local\.test>, relay={INET_RELAY}, .*status=sent",
        "fallback_transport_maps: an unknown user found there goes to its transport")
log_has(rf"to=<{SPOOK}@local\.test>, relay={UNIX_RELAY}, .*status=sent",
        "fallback_transport: any other unknown user goes there instead of bouncing")
tap.ok(tap.wait_until(lambda: len(dovecot_new(GHOST)) == 2 and len(dovecot_new(SPOOK)) == 1, 30),
       "both land in Dovecot")
log_has(rf"to=<{NOBODY}@local\.test>, relay={UNIX_RELAY}, .*dsn=5\.1\.1, status=bounced \(host {UNIX_RELAY} said: "
        rf"550 5\.1\.1 <{NOBODY}@local\.test> User doesn't exist",
        "a user Dovecot does not know either: the transport's verdict is the recipient's")
log_has(rf"to=<{LOOPY}@local\.test>, relay=local, .*dsn=4\.3\.0, status=deferred \(mail forwarding loop: handed "
        r"over to local:\S+ again\)",
        "a hand-over back to local itself is deferred, not looped")
if ROOT:
    log_has(rf"to=<{V}@local\.test>, relay={UNIX_RELAY}, .*status=sent",
            "root: a .forward's \\user reaches the mailbox transport")
    tap.ok(tap.wait_until(lambda: os.path.exists(copy), 20), "and the .forward's file entry was still written")
    tap.ok(tap.wait_until(lambda: len(dovecot_new(V)) == 1, 20), "the user's copy is in Dovecot")
    log_has(rf"to=<{W}@local\.test>, relay=local, .*status=sent \(delivered to mailbox\)",
            "root: a user outside the maps still gets his own mailbox")
    tap.ok(os.path.exists(os.path.join(spool, W)), "in the spool")
else:
    tap.skip("the .forward and the user outside the maps need root (temporary users)", 5)

inst.stop()
tap.stop(proc)
tap.done()
