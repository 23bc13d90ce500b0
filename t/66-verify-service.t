#!/usr/bin/env python3
# The verify service on its own socket (postern-verify(8), PROTOCOL): what
# a client gets for an address it never saw (a probe goes into the queue,
# once), for updates (a failed probe never replaces a deliverable entry),
# for malformed requests (refused, the connection closed), from a user who
# is not the service's (no updates), and what survives a restart (the
# journal at address_verify_map's path; a torn or foreign line is skipped).
import os
import pwd
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

tap.require(["postern-verify", "postern-queue"])
inst = new_instance()
sock_path = os.path.join(inst.dir, "queue", "public", "verify")
cache = os.path.join(inst.dir, "data", "verify_cache")


def start_service(*options):
    # 0666 as `postern start` binds it when root starts it: smtpd is another user
    p = tap.start([tap.prog("postern-verify"), "-c", inst.dir, "-m", "0666"] + list(options))
    if not tap.wait_until(lambda: os.path.exists(sock_path) and os.path.exists(
            os.path.join(inst.dir, "queue", "pid", "verify.pid")), 20):
        tap.diag(inst.log()[-2000:])
    return p


def ask(data, expect_close=False):
    """Send raw request bytes on a new connection; the answer records."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock_path)
    s.sendall(data)
    got = b""
    want = data.count(b"Q") + data.count(b"U") if not expect_close else 1
    while True:
        try:
            chunk = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        got += chunk
        if not expect_close and got.count(b"\x00") >= want:
            break
    s.close()
    return got


service = start_service()
tap.ok(os.path.exists(sock_path), "postern-verify listens on queue_directory/public/verify")
before = len([f for f in os.listdir(os.path.join(inst.dir, "queue", "incoming"))])
tap.is_(ask(b"Qnew@example.com\x00"), b"PAddress verification in progress\x00",
        "an address never seen: a probe is under way (P)")
tap.ok(tap.wait_until(lambda: len(os.listdir(os.path.join(inst.dir, "queue", "incoming"))) > before, 10),
       "the probe is in the queue")
n_probe = len(os.listdir(os.path.join(inst.dir, "queue", "incoming")))
tap.is_(ask(b"Qnew@example.com\x00"), b"PAddress verification in progress\x00",
        "asked again while the probe is out: still P")
tap.is_(len(os.listdir(os.path.join(inst.dir, "queue", "incoming"))), n_probe,
        "and no second probe (Postfix waits 1000 seconds for one)")

# updates, as qmgr sends them
tap.is_(ask(b"UDnew@example.com\x00host mx[192.0.2.1] said: 550 5.1.1 no such user\x00"), b"K\x00",
        "an update from the service's own user is taken")
tap.is_(ask(b"QNEW@Example.COM\x00"), b"Dhost mx[192.0.2.1] said: 550 5.1.1 no such user\x00",
        "the address is undeliverable, whatever its case")
tap.is_(ask(b"UKok@example.com\x00250 2.1.5 Ok\x00UDok@example.com\x00421 gone\x00Qok@example.com\x00"),
        b"K\x00K\x00K250 2.1.5 Ok\x00",
        "several requests on one connection, answered in order; a failed probe does not "
        "replace a deliverable entry")
tap.is_(ask(b"UZsoft@example.com\x00host said: 450 busy\x00Qsoft@example.com\x00"),
        b"K\x00Zhost said: 450 busy\x00", "undeliverable for now (Z)")

# what is refused
got = ask(b"Xnonsense\x00Qok@example.com\x00", expect_close=True)
tap.ok(got.startswith(b"B") and got.endswith(b"\x00") and got.count(b"\x00") == 1,
       "an unknown request: B, and nothing after it is answered") or tap.diag(got)
got = ask(b"Qtwo\nlines@example.com\x00", expect_close=True)
tap.ok(got.startswith(b"Bbad address"), "an address with a line feed is refused") or tap.diag(got)
got = ask(b"UPx@example.com\x00text\x00", expect_close=True)
tap.ok(got.startswith(b"Bbad status"), "an update may not say 'probe under way'") or tap.diag(got)
got = ask(b"Q" + b"a" * 2000, expect_close=True)
tap.ok(got.startswith(b"Baddress too long"), "an address longer than 1024 bytes is refused") or tap.diag(got)
if os.geteuid() == 0:
    # another user may ask, not tell
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
        try:
            os.write(w, ask(b"UKnew@example.com\x00forged\x00", expect_close=True))
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 4096)
    os.waitpid(pid, 0)
    tap.is_(got, b"Bupdate not permitted\x00", "an update from another user is refused")
    tap.like(inst.log(), r"postern/verify\[\d+\]: warning: verify service: update from uid %d refused"
             % nobody.pw_uid, "and logged")
tap.is_(ask(b"Qnew@example.com\x00")[:1], b"D", "the cache still says undeliverable")

# a restart: the journal keeps what was learned
tap.is_(tap.stop(service), 0, "the service stops on SIGTERM")
tap.ok(not os.path.exists(sock_path), "and removes its socket")
journal = open(cache).read()
tap.like(journal, r"(?m)^new@example\.com\t2:0:\d+:host mx\[192\.0\.2\.1\] said: 550 5\.1\.1 no such user$",
         "the journal holds Postfix's entry form (status:probed:updated:text)")
with open(cache, "a") as f:
    f.write("torn line without a tab\nx@example.com\t9:1:2:bad status\nhalf@example.com\t0:0:1")
service = start_service()
tap.is_(ask(b"Qnew@example.com\x00Qok@example.com\x00"),
        b"Dhost mx[192.0.2.1] said: 550 5.1.1 no such user\x00K250 2.1.5 Ok\x00",
        "after a restart the service answers from the journal")
tap.like(inst.log(), r"warning: verify service: \S+/verify_cache: 3 malformed lines skipped",
         "lines it cannot read are skipped, with a warning")
tap.is_(ask(b"Qx@example.com\x00"), b"PAddress verification in progress\x00",
        "an entry it could not read is not taken")
tap.stop(service)

# address_verify_negative_cache = no: an address nobody answered for is
# not written down while its probe is out
service = start_service("-o", "address_verify_negative_cache=no")
tap.is_(ask(b"Qfresh@example.com\x00"), b"PAddress verification in progress\x00",
        "negative_cache = no: a new address is still probed")
tap.unlike(open(cache).read(), r"fresh@example\.com", "but not kept while the probe is out")
tap.is_(ask(b"UKfresh@example.com\x00250 2.1.5 Ok\x00Qfresh@example.com\x00"), b"K\x00K250 2.1.5 Ok\x00",
        "its outcome is kept when it comes")
tap.stop(service)
tap.done()
