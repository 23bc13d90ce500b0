#!/usr/bin/env python3
# postern-accept -z with children forked ahead (smtpd_prefork_count): the
# zygote has its children waiting before any client connects; a client is
# served by one of them, which serves only it and exits, and the zygote
# forks another; nothing of one session (its HELO) is seen by the next.
# Tables loaded once in the zygote: a pcre and a cidr table, and
# header_checks, whose files change are used by the next connection,
# without a reload and without a new zygote.  smtpd_prefork_count = 0 forks per connection, as before.
# The hand-off: postern-accept passes a connection straight to a waiting
# child (zygote.h), so a client is served while the zygote is stopped;
# the per-client limits still hold; a waiting child that dies is passed
# over and replaced; SIGHUP to postern-accept replaces the waiting
# children; a burst beyond the pool is served by children forked for it.
import os
import re
import signal
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import smtpdtest  # noqa: E402
import tap  # noqa: E402
from instance import root_adopt, root_init_options  # noqa: E402

ACCEPT = tap.prog("postern-accept")
SMTPD = tap.prog("postern-smtpd")
tap.require(["postern-accept", "postern-smtpd"])
USER = ["-u", "nobody"] if os.geteuid() == 0 else []


instance = smtpdtest.accept_dir
log = smtpdtest.maillog


def start(d, smtpd_args=()):
    """postern-accept -z on a free port; (process, port, zygote pid)."""
    port = tap.free_port()
    p = tap.start([ACCEPT, "-c", d] + USER + ["-z", f"127.0.0.1:{port}", "--", SMTPD, "-c", d]
                  + list(smtpd_args), stderr=open(os.path.join(d, "stderr"), "w"))
    tap.wait_until(lambda: "listening on" in log(d) or p.poll() is not None, 10)
    m = re.search(r"zygote \S+ started as pid (\d+)", log(d))
    return p, port, int(m.group(1)) if m else 0


def children(pid):
    """The pids of a process's children."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return set(int(x) for x in f.read().split())
    except OSError:
        return set()


def served_by(d, nth):
    """The pid of the smtpd that logged the nth "connect from" (from 1)."""
    pids = re.findall(r"smtpd\[(\d+)\]: connect from", log(d))
    return int(pids[nth - 1]) if len(pids) >= nth else 0


def connect_when_placed(port, source="127.0.0.1"):
    """A session once the client's count allows one (count limit 1): a
    session's end reaches postern-accept shortly after its "disconnect"
    line, and until then a new one is refused with 421."""
    for attempt in range(50):
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0))
        except smtplib.SMTPConnectError as e:
            last = e
            time.sleep(0.1)     # a retry's pause, not a wait for nothing
    raise last


def ehlo_when_placed(port, source="127.0.0.1"):
    """EHLO's code once the client's count allows a session (0: never)."""
    try:
        with connect_when_placed(port, source) as s:
            return s.ehlo("client.example")[0]
    except smtplib.SMTPConnectError:
        return 0


def disconnected(d, count):
    return tap.wait_until(lambda: log(d).count("disconnect from") >= count, 10)


# ---- the pool: waiting before any connection, used, refilled ----
d = instance("smtpd_helo_required = yes\n")
acc, port, zygote = start(d)
tap.ok(zygote > 0, "postern-accept -z started its zygote")
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10),
       "before any connection the zygote has 2 children waiting (smtpd_prefork_count's default)") \
    or tap.diag(f"children: {children(zygote)}")
waiting = children(zygote)

with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    tap.is_(s.helo("first.example")[0], 250, "first session: HELO")
    tap.is_(s.mail("a@example.org")[0], 250, "first session: MAIL after HELO")
disconnected(d, 1)
first = served_by(d, 1)
tap.ok(first in waiting, "the first client is served by a child forked before it came") \
    or tap.diag(f"served by {first}, waiting {waiting}")
tap.ok(tap.wait_until(lambda: not os.path.exists(f"/proc/{first}") or first not in children(zygote), 10),
       "that child served one connection and is gone")
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2 and children(zygote) != waiting, 10),
       "the zygote forked another: 2 children wait again") \
    or tap.diag(f"children: {children(zygote)}")

with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    code, text = s.mail("b@example.org")
    tap.is_(code, 503, "second session: MAIL without HELO is refused (the first session's HELO "
                       "is not seen)") or tap.diag(text)
disconnected(d, 2)
second = served_by(d, 2)
tap.ok(second and second != first, "the second session has a process of its own")
tap.unlike(log(d), r"zygote: child \d+ forked ahead ended", "no waiting child ended abnormally")

# SIGHUP: the waiting children hold what was read before; they are replaced
before = children(zygote)
os.kill(zygote, 1)
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2 and not (children(zygote) & before), 10),
       "SIGHUP to the zygote: its waiting children are replaced by new ones") \
    or tap.diag(f"before {before}, now {children(zygote)}")
tap.stop(acc)

# ---- tables opened once, opened again when their file changes ----
d = instance()
pcre = os.path.join(d, "rcpt.pcre")
cidr = os.path.join(d, "clients.cidr")
tap.write(pcre, "/^blocked@/ REJECT first rule\n")
tap.write(cidr, "127.0.0.1 DUNNO\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write(f"smtpd_client_restrictions = check_client_access cidr:{cidr}\n"
            f"smtpd_recipient_restrictions = check_recipient_access pcre:{pcre}, permit_mynetworks, reject\n")
acc, port, zygote = start(d)
tap.wait_until(lambda: len(children(zygote)) == 2, 10)


def rcpt(address):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        return s.rcpt(address)


code, text = rcpt("blocked@example.org")
tap.is_(code, 554, "a pcre access table in the zygote: the recipient is refused")
tap.like(text.decode(), r"first rule", "... by its first rule")
tap.write(pcre, "/^blocked@/ REJECT the rule as changed\n")
code, text = rcpt("blocked@example.org")
tap.like(text.decode(), r"the rule as changed",
         "the pcre file changed: the next connection uses the new rule, without a reload")
tap.like(log(d), r"table pcre:\S+rcpt\.pcre has changed: opened again", "the zygote says so")
tap.write(cidr, "127.0.0.0/8 REJECT cidr says no\n")
code, text = rcpt("someone@example.org")
tap.is_(code, 554, "the cidr file changed: the next connection is refused by its new line")
tap.like(text.decode(), r"cidr says no", "... with its text")
tap.is_(int(re.findall(r"zygote \S+ started as pid (\d+)", log(d))[-1]), zygote,
        "the same zygote all along")
tap.stop(acc)

# ---- rewrite's tables too: header_checks in a whole instance ----
inst = tap.tempdir()
os.chmod(inst, 0o755)
inst = os.path.join(inst, "inst")
port = tap.free_port()
r = tap.run(["postern", "init", inst, "--port", str(port)] + root_init_options())
tap.is_(r.returncode, 0, "postern init")
root_adopt(inst)
checks = os.path.join(inst, "header_checks")
tap.write(checks, "/^Subject: refused/ REJECT first header rule\n")
with open(os.path.join(inst, "main.cf"), "a") as f:
    f.write(f"header_checks = regexp:{checks}\n")
o = ["-o", f"daemon_directory={os.path.dirname(SMTPD)}"]
r = tap.run(["postern", "start", "-c", inst] + o)
tap.like(r.stdout, rf"SMTP on 127\.0\.0\.1:{port}", "postern start: the zygote's listener")


def refused_text():
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        try:
            s.sendmail("bob@localhost", ["alice@localhost"], "Subject: refused\r\n\r\nbody\r\n")
            return ""
        except smtplib.SMTPDataError as e:
            return f"{e.smtp_code} {e.smtp_error.decode()}"


tap.like(refused_text(), r"^550 .*first header rule", "header_checks in the zygote: REJECT")
tap.write(checks, "/^Subject: refused/ REJECT the header rule as changed\n")
tap.like(refused_text(), r"^550 .*the header rule as changed",
         "header_checks changed: the next message meets the new rule, without a reload")
# a change that cannot be opened: the rules read before stay, and the
# zygote neither opens the file again for every connection nor says so
# each time
tap.write(checks, "/^Subject: (refused/ REJECT a rule that does not compile\n")
texts = []
for i in range(3):
    if i:
        time.sleep(1.2)     # the zygote looks at its tables at most once a second
    texts.append(refused_text())
tap.ok(all(re.match(r"^550 .*the header rule as changed", t) for t in texts),
       "header_checks that cannot be opened: three messages meet the rule read before") \
    or tap.diag(repr(texts))
warned = re.findall(r"header_checks has changed but cannot be opened",
                    open(os.path.join(inst, "maillog"), errors="replace").read())
tap.is_(len(warned), 1, "... and the log says so once for the change, not once per connection")
tap.write(checks, "/^Subject: refused/ REJECT the mended rule\n")
tap.like(refused_text(), r"^550 .*the mended rule", "mended again: the next message meets the new rule")
tap.run(["postern", "stop", "-c", inst] + o)


# ---- the hand-off: postern-accept passes the connection to a waiting child ----
d = instance("smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions =\n")
acc, port, zygote = start(d)
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10), "2 children wait")
waiting = children(zygote)
os.kill(zygote, signal.SIGSTOP)
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        tap.is_(s.ehlo("client.example")[0], 250,
                "the zygote stopped: a client is still served, by a waiting child that "
                "postern-accept handed the connection to")
        # the count limit (1) holds for a child postern-accept handed out
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
            tap.ok(False, "a second session of the same client is refused")
        except smtplib.SMTPConnectError as e:
            tap.is_((e.smtp_code, e.smtp_error.decode()),
                    (421, "4.7.0 mx.example Error: too many connections from 127.0.0.1"),
                    "smtpd_client_connection_count_limit = 1: the second session gets 421")
    tap.ok(served_by(d, 1) in waiting, "the session was served by a child forked before it came")
finally:
    os.kill(zygote, signal.SIGCONT)
disconnected(d, 1)
tap.is_(ehlo_when_placed(port), 250,
        "once the session has ended the client is served again (its place given back)")

# ---- a waiting child that dies is passed over, and replaced ----
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10), "2 children wait again")
victims = children(zygote)
for pid in victims:
    os.kill(pid, signal.SIGKILL)
with connect_when_placed(port) as s:
    tap.is_(s.ehlo("client.example")[0], 250,
            "both waiting children killed: the next client is still served")
tap.ok(served_by(d, 3) not in victims, "... by another process")
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2 and not (children(zygote) & victims), 10),
       "the zygote forked new children in their place") or tap.diag(f"{children(zygote)}")
disconnected(d, 3)
tap.is_(ehlo_when_placed(port), 250, "the dead children took no place of the client's (count limit 1)")
disconnected(d, 4)

# ---- a child handed a connection that dies before it answers ----
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10), "2 children wait")
stopped = children(zygote)
for pid in stopped:
    os.kill(pid, signal.SIGSTOP)
# from another address: the count limit of 127.0.0.1 plays no part here
raw = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=("127.0.0.2", 0))
# handed to a stopped child: nothing answers until it is killed
tap.ok(tap.wait_until(lambda: "before it answered" in log(d) or
                      any(open(f"/proc/{p}/stat").read().split()[2] == "T" for p in stopped), 5),
       "the waiting children are stopped")
for pid in stopped:
    os.kill(pid, signal.SIGKILL)
banner = raw.makefile("rb").readline().decode()
tap.like(banner, r"^220 ", "the child handed the connection was killed before its greeting: "
                          "the connection is served again, by another child")
# the new child may greet before postern-accept's line reaches the log
tap.ok(tap.wait_until(lambda: re.search(r"pid \d+ ended before it answered its connection: serving it again",
                                        log(d)), 5),
       "postern-accept says so") or tap.diag(log(d)[-1500:])
raw.sendall(b"QUIT\r\n")
raw.close()
disconnected(d, 5)
tap.is_(ehlo_when_placed(port, "127.0.0.2"), 250,
        "and the client's place was counted once (count limit 1)")
disconnected(d, 6)

# ---- SIGHUP to postern-accept replaces the waiting children ----
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10), "2 children wait")
before = children(zygote)
os.kill(acc.pid, signal.SIGHUP)
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2 and not (children(zygote) & before), 10),
       "SIGHUP to postern-accept: the waiting children are replaced") \
    or tap.diag(f"before {before}, now {children(zygote)}")
with connect_when_placed(port) as s:
    tap.is_(s.ehlo("client.example")[0], 250, "and a client is served after the reload")
tap.ok(served_by(d, 7) not in before, "... not by a child forked before it")
tap.stop(acc)

# ---- a burst beyond the pool: children forked for it ----
d = instance()
acc, port, zygote = start(d)
tap.wait_until(lambda: len(children(zygote)) == 2, 10)
held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for i in range(6)]
tap.is_([s.noop()[0] for s in held], [250] * 6, "6 clients at once with 2 children waiting: all served")
for s in held:
    s.quit()
disconnected(d, 6)
tap.ok(tap.wait_until(lambda: len(children(zygote)) == 2, 10), "the pool is full again afterwards")

# ---- the zygote dies: its waiting children go, a new zygote fills its pool ----
old = children(zygote)
os.kill(zygote, signal.SIGKILL)
tap.ok(tap.wait_until(lambda: len(re.findall(r"zygote \S+ started as pid", log(d))) == 2, 15),
       "postern-accept starts a new zygote")
new = int(re.findall(r"zygote \S+ started as pid (\d+)", log(d))[-1])
tap.ok(tap.wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and
                                      open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in old), 10),
       "the dead zygote's waiting children end")
tap.ok(tap.wait_until(lambda: len(children(new)) == 2, 10), "the new zygote has 2 children waiting")
pool = children(new)
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    tap.is_(s.ehlo("client.example")[0], 250, "and a client is served")
tap.ok(served_by(d, 7) in pool, "... by one of them")
tap.stop(acc)

# ---- smtpd_prefork_count = 0: a fork per connection ----
d = instance()
acc, port, zygote = start(d, ["-o", "smtpd_prefork_count=0"])
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    tap.is_(s.ehlo("client.example")[0], 250, "smtpd_prefork_count = 0: a session is served")
disconnected(d, 1)
tap.ok(tap.wait_until(lambda: not children(zygote), 10),
       "... and once it has ended the zygote has no child waiting") \
    or tap.diag(f"children: {children(zygote)}")
tap.stop(acc)
tap.done()
