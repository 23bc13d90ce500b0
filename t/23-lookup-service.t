#!/usr/bin/env python3
# The lookup service, postern-lookup (doc/lookup.md, postern-lookup(8)):
# started as `postern start` starts it, it answers proxy:unix:passwd.byname
# for real users through postern map's proxy: client, refuses a table
# proxy_read_maps does not list with Postfix's messages, answers the raw
# protocol (pipelined requests, garbage, over-long fields, a stalled
# client), serves many clients at once, reads main.cf again on SIGHUP, and
# `postern start/status/stop` of a self-contained instance run it.
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from instance import Instance  # noqa: E402
import lookupclient  # noqa: E402

d = tap.tempdir()
queue = os.path.join(d, "queue")
for sub in ("pid", "public"):
    os.makedirs(os.path.join(queue, sub))
sock_path = os.path.join(queue, "public", "lookup")
tap.write(os.path.join(d, "table"), "alice alice-value\nbob bob-value\n")
tap.write(os.path.join(d, "main.cf"),
          f"queue_directory = {queue}\nmaillog_file = {d}/maillog\n"
          f"proxy_read_maps = $local_recipient_maps proxy:texthash:{d}/table proxy:fail:down "
          f"proxy:texthash:{d}/missing\n"
          "alias_maps =\n")


def log():
    try:
        return open(os.path.join(d, "maillog"), errors="replace").read()
    except OSError:
        return ""


def start_service():
    p = tap.start([tap.prog("postern-lookup"), "-c", d])
    for _ in range(200):
        if os.path.exists(os.path.join(queue, "pid", "lookup.pid")) and os.path.exists(sock_path):
            break
        time.sleep(0.02)
    return p


def pm(*args):
    return tap.run(["postern", "map", "-c", d] + list(args))


svc = start_service()
tap.like(log(), r"lookup\[\d+\]: lookup service: ready on " + sock_path, "the service starts and says where")
tap.is_(open(os.path.join(queue, "pid", "lookup.pid")).read().strip(), str(svc.pid), "and writes its pid file")
tap.is_(os.stat(sock_path).st_mode & 0o777, 0o600, "its socket is the invoking user's (mode 0600, -m to change)")

# ---- through the proxy: client ----
for name in ("root", "nobody"):
    pw = pwd.getpwnam(name)
    want = f"{pw.pw_name}:{pw.pw_passwd}:{pw.pw_uid}:{pw.pw_gid}:{pw.pw_gecos}:{pw.pw_dir}:{pw.pw_shell}\n"
    r = pm("-q", name.upper(), "proxy:unix:passwd.byname")
    tap.is_((r.returncode, r.stdout), (0, want), f"proxy:unix:passwd.byname answers {name} (key folded)")
r = pm("-q", "no-such-user-here", "proxy:unix:passwd.byname")
tap.is_((r.returncode, r.stdout, r.stderr), (1, "", ""), "an unknown user is not found")
r = pm("-q", "bob", f"proxy:texthash:{d}/table")
tap.is_(r.stdout, "bob-value\n", "a proxied file table listed in proxy_read_maps answers too")

# a table that cannot answer, or cannot be opened: try again, with the reason
r = pm("-q", "x", "proxy:fail:down")
tap.is_(r.returncode, 75, "a table that fails its lookup: try again through the service")
tap.like(r.stderr, r"table proxy:fail:down: lookup of \"x\": the table cannot answer now", "saying so")
r = pm("-q", "x", f"proxy:texthash:{d}/missing")
tap.is_(r.returncode, 75, "a table that cannot be opened: try again")
tap.like(r.stderr, r"missing: No such file or directory", "with the service's reason")
tap.like(log(), r"lookup\[\d+\]: warning: table texthash:\S+/missing: .*No such file", "which the service logs")

# a file table changed under the service is read again
tap.write(os.path.join(d, "table.new"), "alice alice-value\nbob bob-changed\n")
os.rename(os.path.join(d, "table.new"), os.path.join(d, "table"))
for _ in range(60):
    r = pm("-q", "bob", f"proxy:texthash:{d}/table")
    if r.stdout != "bob-value\n":
        break
    time.sleep(0.1)
tap.is_(r.stdout, "bob-changed\n", "a file table replaced while the service runs answers its new value")
tap.like(log(), r"table texthash:\S+/table has changed: opened again", "and the service says so")
# a change that cannot be opened: what was read keeps answering, the file
# is tried again every 10 seconds (not at every lookup), said once
tap.write(os.path.join(d, "table.new"), "alice alice-value\nbob bob-broken\na-line-without-value\n")
os.rename(os.path.join(d, "table.new"), os.path.join(d, "table"))
answers = []
for i in range(3):
    time.sleep(1.1)         # the service looks at a file at most once a second
    answers.append(pm("-q", "bob", f"proxy:texthash:{d}/table").stdout)
tap.is_(answers, ["bob-changed\n"] * 3, "a changed table that cannot be opened: the one read before answers")
tap.is_(len(re.findall(r"table texthash:\S+/table has changed but cannot be opened .*line 3: "
                       r"expected format: key whitespace value.*still using what was read before", log())), 1,
        "the service says so once for the change, not at every lookup")
tap.write(os.path.join(d, "table.new"), "alice alice-value\nbob bob-mended\n")
os.rename(os.path.join(d, "table.new"), os.path.join(d, "table"))
time.sleep(1.1)
tap.is_(pm("-q", "bob", f"proxy:texthash:{d}/table").stdout, "bob-mended\n", "mended: read again at once")

r = pm("-q", "root", "proxy:unix:group.byname")
tap.is_(r.returncode, 75, "a table not in proxy_read_maps: try again (exit 75), never not found")
tap.like(r.stderr, r'proxymap service is not configured for table "unix:group.byname"',
         "with Postfix's client message")
tap.like(log(), r'warning: request for unapproved table: "unix:group.byname"', "the service logs Postfix's warning")
tap.like(log(), r"warning: to approve this table for read-only access, list proxy:unix:group.byname "
                r"in main.cf:proxy_read_maps", "and how to approve it")


# ---- the protocol, raw ----
from lookupclient import answers, req  # noqa: E402


def connect():
    return lookupclient.connect(sock_path)


s = connect()
s.sendall(req("unix:passwd.byname", "root") + req("unix:passwd.byname", "nosuch")
          + req(f"texthash:{d}/table", "alice") + req("proxy:unix:passwd.byname", "nobody")
          + req("unix:group.byname", "root"))
got = answers(s, 5)
tap.is_([g[:1] for g in got], ["F", "N", "F", "F", "D"], "pipelined requests: answered in order")
tap.like(got[0], r"^Froot:", "F carries the value")
tap.is_(got[2], "Falice-value", "a file table's value")
# a request in pieces, a byte at a time
for b in req("unix:passwd.byname", "root"):
    s.send(bytes([b]))
tap.like(answers(s, 1)[0], r"^Froot:", "a request sent a byte at a time is answered once whole")
s.close()

for what, data, why in [
        ("an unknown request type", b"X whatever\0\0\0", "unknown request type"),
        ("a table without type:name", b"Lnotatable\0\0key\0", "not type:name"),
        ("an unknown option", b"Lunix:passwd.byname\0z\0root\0", "unknown option"),
        ("a key over 4096 bytes", b"Lunix:passwd.byname\0\0" + b"a" * 5000, "key longer than 4096"),
        ("a table name over 1024 bytes", b"L" + b"t" * 2000, "table name longer than 1024")]:
    s = connect()
    s.sendall(data)
    got = answers(s, 2)
    tap.ok(len(got) == 1 and got[0].startswith("B") and why in got[0],
           f"{what}: B with the reason, then the connection is closed") or tap.diag(repr(got))
    s.close()
tap.like(log(), r"warning: lookup service: bad request from pid \d+ uid \d+: unknown request type",
         "a bad request is logged with the client's pid and uid")

# a client that sends half a request and stops holds up nobody
stalled = connect()
stalled.sendall(b"Lunix:passwd.byname\0\0ro")
r = pm("-q", "root", "proxy:unix:passwd.byname")
tap.is_(r.returncode, 0, "a stalled client does not hold up the others")

# many clients at once
results = []


def worker(n):
    try:
        c = connect()
        ok = 0
        for i in range(50):
            key = "root" if i % 2 else "nosuch%d" % n
            c.sendall(req("unix:passwd.byname", key))
            a = answers(c, 1)
            ok += bool(a) and a[0][:1] == ("F" if i % 2 else "N")
        c.close()
        results.append(ok)
    except OSError as e:
        results.append(repr(e))


threads = [threading.Thread(target=worker, args=(n,)) for n in range(60)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
tap.is_(results, [50] * 60, "60 clients at once, 50 lookups each: every answer right")
stalled.close()
tap.ok(svc.poll() is None, "the service is still running")

# SIGHUP: main.cf read again, proxy_read_maps with it
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("proxy_read_maps = proxy:unix:group.byname\n")
svc.send_signal(signal.SIGHUP)
for _ in range(100):
    if "main.cf read again" in log():
        break
    time.sleep(0.05)
r = pm("-q", "root", "proxy:unix:group.byname")
tap.is_(r.returncode, 0, "after SIGHUP a table newly listed in proxy_read_maps answers")
r = pm("-q", "root", "proxy:unix:passwd.byname")
tap.is_(r.returncode, 75, "and one no longer listed is refused")

svc.send_signal(signal.SIGTERM)
svc.wait(10)
tap.is_(svc.returncode, 0, "SIGTERM: the service exits 0")
tap.ok(not os.path.exists(sock_path) and not os.path.exists(os.path.join(queue, "pid", "lookup.pid")),
       "and removes its socket and pid file")
r = pm("-q", "root", "proxy:unix:passwd.byname")
tap.is_(r.returncode, 75, "no service: try again")
tap.like(r.stderr, r"lookup service .*public/lookup: (No such file|Connection refused)", "saying why")

# ---- the socket from systemd (LISTEN_FDS), as units/postern-lookup.socket passes it ----
activate = shutil.which("systemd-socket-activate")
if activate:
    act = tap.start([activate, "-l", sock_path, tap.prog("postern-lookup"), "-c", d],
                    stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock_path):
            break
        time.sleep(0.02)
    r = pm("-q", "root", "proxy:unix:group.byname")
    tap.like(r.stdout, r"^root:", "socket-activated: the service started on the first connection answers")
    tap.like(log(), r"lookup service: ready on the socket systemd passed", "on the passed socket")
    tap.ok(not os.path.exists(os.path.join(queue, "pid", "lookup.pid")), "and writes no pid file then")
    act.terminate()
    act.wait(10)
else:
    tap.ok(False, "systemd-socket-activate is installed (make check installs it: ./deps --test)")

# ---- postern start / status / stop of a self-contained instance ----
inst = Instance()
tap.is_(inst.init.returncode, 0, "postern init") or tap.diag(inst.init.stderr)
r = inst.start()
tap.like(r.stdout, r"started the lookup service \(pid (\d+)\)", "postern start starts the lookup service")
m = re.search(r"started the lookup service \(pid (\d+)\)", r.stdout)
lookup_pid = int(m.group(1)) if m else -1
tap.ok(r.stdout.find("lookup service") < r.stdout.find("queue service"), "before the queue service")
r = inst.postern("status")
tap.like(r.stdout, r"lookup service: running \(pid %d\)" % lookup_pid, "postern status shows it")
r = tap.run(["postern", "map", "-c", inst.dir, "-q", "root", "proxy:unix:passwd.byname"])
tap.like(r.stdout, r"^root:", "the instance's service answers proxy:unix:passwd.byname")
inst.stop_supervisor()      # or it would start the service again at once (t/92)
os.kill(lookup_pid, signal.SIGTERM)
for _ in range(100):
    if not os.path.exists(f"/proc/{lookup_pid}"):
        break
    time.sleep(0.05)
r = inst.postern("status")
tap.like(r.stdout, r"lookup service: not running \(proxy: and unix: lookups answer \"try again\"\)",
         "status says when it is not running, and what that means")
tap.is_(r.returncode, 1, "and exits 1")
r = inst.start()
tap.like(r.stdout, r"started the lookup service", "postern start starts it again")
r = inst.stop()
tap.like(r.stdout, r"stopped the lookup service \(pid \d+\)", "postern stop stops it")
tap.done()
