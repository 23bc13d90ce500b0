#!/usr/bin/env python3
# The systemd units' arrangement keeps what smtpd knows about the client:
# smtpd runs as its own user (postern-accept -z -u, as units/postern-smtp,
# -submission and -smtps.service), and the queue service runs as
# queue_service_user with `-t NAME` naming that user, as
# units/postern-queue.service does (`-t postern-smtpd`; the name is looked
# up through the lookup service, since the static queue calls no NSS).  A
# message submitted with SMTP AUTH is then logged and queued with its
# client and sasl_username; the same service without -t treats smtpd as an
# untrusted local submitter and drops them (", uid=N" on the client= line:
# doc/privileges.md, "The queue service"); an unknown name stops the
# service at start.
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from cyrussasl import cyrus_settings, sasl_directory  # noqa: E402
from instance import NEEDED, ROOT_USERS, Instance  # noqa: E402

tap.require(NEEDED + ["postern-smtpd", "postern-accept", "postern-auth"], tools=["saslpasswd2", "swaks"])
if os.geteuid() != 0:
    # make check passes for a normal user too: the root-only parts say so
    tap.skip_all("the daemons run as their users, as the units run them, only when root starts them")

inst = Instance("--domain", "example.com")
tap.is_(inst.init.returncode, 0, "postern init") or tap.diag(inst.init.stderr)
port = int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read(), re.M).group(1))
parent = os.path.dirname(inst.dir)

# libsasl2's sasldb for the auth service (as t/94), mail_owner's to read
sasl = sasl_directory(parent, [("alice", None, "alice-secret")], "PLAIN LOGIN")
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write(cyrus_settings(sasl) + f"""smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination
# relayed mail stays in the queue, where its attributes can be read
defer_transports = smtp relay
""")
r = inst.start()
tap.is_(r.returncode, 0, "postern start (as root)") or tap.diag(r.stdout + r.stderr)
# the units have no supervisor: stop it, so that it does not bring back
# the queue service we replace
inst.stop_supervisor()

smtpd_user = ROOT_USERS["smtpd_user"]
smtpd_uid = pwd.getpwnam(smtpd_user).pw_uid
accept_pid = int(open(os.path.join(inst.dir, "queue", "pid", f"accept.127.0.0.1:{port}.pid")).read())
zygote = int(open(f"/proc/{accept_pid}/task/{accept_pid}/children").read().split()[0])
uid_of = lambda pid: int(re.search(r"^Uid:\s+(\d+)", open(f"/proc/{pid}/status").read(), re.M).group(1))
# it drops to smtpd_user once it has read main.cf and the key
tap.ok(tap.wait_until(lambda: uid_of(zygote) == smtpd_uid),
       f"smtpd (the zygote) runs as smtpd_user {smtpd_user}, as in the units")

socket_path = os.path.join(inst.dir, "queue", "public", "queue")
AS_SERVICE = ["-u", "%d:%d" % (pwd.getpwnam(ROOT_USERS["queue_service_user"]).pw_uid,
                               grp.getgrnam(ROOT_USERS["setgid_group"]).gr_gid)]


def replace_service(*trust):
    """Stop the running queue service; start one as the unit does."""
    old = inst.queue_service_pid()
    if old and os.path.exists(f"/proc/{old}"):
        os.kill(old, 15)
        tap.wait_until(lambda: not os.path.exists(f"/proc/{old}") or " Z " in open(f"/proc/{old}/stat").read())
    for path in (socket_path, os.path.join(inst.dir, "queue", "pid", "queue.pid")):
        if os.path.exists(path):
            os.unlink(path)
    svc = tap.start([os.path.abspath(tap.prog("postern-queue")), "-S", "-m", "0666", "-c", inst.dir]
                    + AS_SERVICE + list(trust))
    tap.wait_until(lambda: inst.queue_service_pid() == svc.pid or svc.poll() is not None)
    return svc


def submit(subject):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.example.com",
                        "--timeout", "20", "--from", "alice@example.com", "--to", "someone@remote.example",
                        "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-secret",
                        "--header", f"Subject: {subject}"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def queued_line(before):
    """The queue's client= line of the message submitted after log offset before."""
    found = []
    tap.wait_until(lambda: found.extend(re.findall(r"postern/smtpd\[\d+\]: [0-9A-F]+: client=.*",
                                                   inst.log()[before:])) or found)
    return found[0] if found else ""


# ---- the units' arrangement: -t NAME ----
svc = replace_service("-t", smtpd_user)
tap.is_(inst.queue_service_pid(), svc.pid, f"a queue service with -t {smtpd_user} (a name, as the unit)")
before = len(inst.log())
code, out = submit("trusted")
tap.is_(code, 0, "swaks with AUTH PLAIN through smtpd is accepted") or tap.diag(out[-1500:])
line = queued_line(before)
tap.like(line, r"client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice$",
         "the queue keeps client= and sasl_username: smtpd is trusted") or tap.diag(inst.log()[before:][-2000:])
tap.unlike(line, r", uid=", "no uid= of an untrusted submitter")
qid = re.search(r"\]: ([0-9A-F]+): client=", line)
if qid:
    # the attributes are in the queue file: postern queue cat (postcat) shows them
    r = inst.postern("queue", "cat", qid.group(1))
    tap.like(r.stdout, r"sasl_username[:=] ?alice", "the queue file carries sasl_username=alice") \
        or tap.diag(r.stdout[-1500:] + r.stderr)
else:
    tap.ok(False, "a queue id on the client= line")
tap.stop(svc)

# ---- without -t: smtpd's user is a local submitter like any other ----
svc = replace_service()
before = len(inst.log())
code, out = submit("untrusted")
tap.is_(code, 0, "without -t the message is accepted too") or tap.diag(out[-1500:])
line = queued_line(before)
tap.like(line, r"client=localhost\[127\.0\.0\.1\], uid=%d$" % smtpd_uid,
         "but smtpd's claims are dropped: client= with its real uid, no sasl_username") \
    or tap.diag(inst.log()[before:][-2000:])
tap.stop(svc)

# ---- a name that is not a user: the service does not start ----
r = tap.run([os.path.abspath(tap.prog("postern-queue")), "-S", "-c", inst.dir] + AS_SERVICE
            + ["-t", "no-such-user-postern"], timeout=60)
tap.isnt(r.returncode, 0, "-t with an unknown user: the service refuses to start")
tap.like(inst.log(), r"-t no-such-user-postern: no such user", "and says why")

r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.done()
