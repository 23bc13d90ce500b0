#!/usr/bin/env python3
# The queue service (postern-queue -S, doc/injection.md "The queue
# service"): `postern start` runs it; mail from smtpd and sendmail is
# queued by its persistent workers (daemon_directory/postern-queue is
# replaced by a program that fails, and mail still queues), delivered once;
# one connection carries request after request (an SMTP session's
# messages, stored by one worker, no process per message); a worker
# retires after max_use messages; a local user's submission records that
# user's uid (SO_PEERCRED) as the set-group-id injector would; the process
# limit makes requests wait for a worker; a worker killed mid-message
# gives its client a temporary failure (smtpd: 451, and the next message
# of the session is stored by a new worker) and queues nothing; a killed
# service takes its workers with it, and the next submission runs
# postern-queue itself; a stopping service tells idle connections 'X';
# `postern stop` stops it.
import grp
import os
import pwd
import shutil
import smtplib
import socket
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from instance import NEEDED, ROOT_USERS, Instance  # noqa: E402

tap.require(NEEDED + ["postern-smtpd", "postern-accept"])

# daemon_directory: the built programs, with a postern-queue of our own
bindir = tap.tempdir()
os.chmod(bindir, 0o755)
for name in os.listdir(tap.BIN):
    if name != "postern-queue":
        os.symlink(os.path.abspath(tap.prog(name)), os.path.join(bindir, name))
queue_prog = os.path.join(bindir, "postern-queue")
real_copy = os.path.join(bindir, "postern-queue.real")
shutil.copy(tap.prog("postern-queue"), queue_prog)
shutil.copy(tap.prog("postern-queue"), real_copy)

inst = Instance("-o", f"daemon_directory={bindir}", "-o", f"command_directory={bindir}")
# the services this test starts itself run as `postern start` runs them
AS_SERVICE = []
if os.geteuid() == 0:
    AS_SERVICE = ["-u", "%d:%d" % (pwd.getpwnam(ROOT_USERS["queue_service_user"]).pw_uid,
                                   grp.getgrnam(ROOT_USERS["setgid_group"]).gr_gid)]
tap.is_(inst.init.returncode, 0, "postern init") or tap.diag(inst.init.stderr)
socket_path = os.path.join(inst.dir, "queue", "public", "queue")
port = int(open(os.path.join(inst.dir, "master.cf")).read().split("127.0.0.1:")[1].split()[0])


def service_pid():
    return inst.queue_service_pid()


def children_of(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def queue_files():
    counts = inst.queue_counts()
    return sum(counts.values())


def alive(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(cond, timeout=10):
    return tap.wait_until(cond, timeout)


def busy_workers(pid):
    """The workers of the service pid that hold a message."""
    return inst.queue_workers(busy=True) if pid == service_pid() else []


def set_failing_injector():
    """daemon_directory/postern-queue: a program that always fails"""
    tmp = queue_prog + ".new"
    tap.write(tmp, "#!/bin/sh\necho 'Z4.3.0 not the service' >&3\nexit 71\n", 0o755)
    os.replace(tmp, queue_prog)


def set_real_injector():
    shutil.copy(real_copy, queue_prog + ".new")
    os.replace(queue_prog + ".new", queue_prog)


r = inst.start()
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stdout + r.stderr)
svc = service_pid()
tap.like(r.stdout, r"started the queue service \(pid %d\)" % (svc or -1), "it starts the queue service")
# the test kills and replaces the service itself: no supervisor may restart it
inst.stop_supervisor()
if os.geteuid() == 0:
    # root runs it as queue_service_user; smtpd (smtpd_user) must reach it
    st = os.stat(socket_path)
    tap.ok((st.st_mode & 0o777) == 0o666 and st.st_uid == pwd.getpwnam(ROOT_USERS["queue_service_user"]).pw_uid,
           "which listens on queue/public/queue, mode 0666, owned by queue_service_user (root's instance)")
else:
    tap.ok(os.path.exists(socket_path) and (os.stat(socket_path).st_mode & 0o777) == 0o600,
           "which listens on queue/public/queue, mode 0600 (the invoking user's)")
r = inst.postern("status")
tap.like(r.stdout, r"queue service: running \(pid %d\)" % (svc or -1), "postern status shows it")

# --- (a) with the injector replaced by one that fails, mail still queues
set_failing_injector()
r = inst.sendmail(["alice@localhost"], b"Subject: via sendmail\n\nsendmail body\n")
tap.is_(r.returncode, 0, "sendmail: accepted") or tap.diag(r.stderr)
try:
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example")
    refused = s.sendmail("sender@example.org", ["alice@localhost"],
                         b"Subject: via smtp\r\n\r\nsmtp body\r\n")
    s.quit()
except (OSError, smtplib.SMTPException) as e:
    refused = str(e)
tap.is_(refused, {}, "smtpd: 250 for the message")
got = inst.wait_for("alice", 2)
tap.is_(len(got), 2, "both were queued by the service and delivered")
# a queue file goes only after its last delivery: then none can follow
wait_until(lambda: queue_files() == 0)
got = inst.delivered("alice")
tap.is_(len(got), 2, "each once")
tap.ok(any(b"sendmail body" in m for m in got) and any(b"smtp body" in m for m in got),
       "the two messages")
log = inst.log()
queue_pids = set(int(p) for p in re.findall(r"postern/queue\[(\d+)\]: [0-9A-F]+: message-id=", log))
tap.ok(1 <= len(queue_pids) <= 2 and svc not in queue_pids and queue_pids <= set(children_of(svc)),
       "stored by the service's workers, which are still there (log lines of other pids)")
tap.unlike(log, r"not the service", "the replaced postern-queue never ran")

# --- the protocol itself, with pipes we control
def envelope(rcpt):
    return b"Fsender@example.org\0T" + rcpt.encode() + b"\0\0"


def connect(timeout=10):
    """Connect; a socket file that exists but does not listen yet
    (systemd-socket-activate binds before it listens) is retried."""
    deadline = time.time() + timeout
    while True:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(socket_path)
            return c
        except ConnectionRefusedError:
            c.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def ready(c, timeout=10):
    """The service's 'R': it has a slot for us."""
    c.settimeout(timeout)
    try:
        return c.recv(1) == b"R"
    except socket.timeout:
        return False


def client(message=None, env=None, c=None):
    """Connect (or use c), wait for 'R' and pass pipes; returns (socket,
    message write end, envelope write end, status read end)."""
    if c is None:
        c = connect()
    if not ready(c):
        raise RuntimeError("the service did not send R")
    return request(c, message, env)


def request(c, message=None, env=None):
    """Send a request on c: pipes for the message, envelope and status,
    written and closed when given; returns as client() does."""
    m_r, m_w = os.pipe()
    e_r, e_w = os.pipe()
    s_r, s_w = os.pipe()
    socket.send_fds(c, [b"Q"], [m_r, e_r, s_w])
    for fd in (m_r, e_r, s_w):
        os.close(fd)
    if message is not None:
        os.write(m_w, message)
        os.close(m_w)
        m_w = None
    if env is not None:
        os.write(e_w, env)
        os.close(e_w)
        e_w = None
    return c, m_w, e_w, s_r


def status_of(c, timeout=10, keep=False):
    """'S' and the wait status (an 'X' before it skipped); the connection
    closed unless keep."""
    c.settimeout(timeout)
    try:
        data = b""
        while len(data) < 5:
            chunk = c.recv(5 - len(data))
            if not chunk:
                break
            data += chunk
            if data == b"X":
                data = b""
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        data = b""
    if not keep:
        c.close()
    return struct.unpack("i", data[1:])[0] if len(data) == 5 and data[:1] == b"S" else "eof"


c, _, _, s_r = client(b"Subject: direct\n\nx\n", envelope("carol@localhost"))
st = status_of(c, keep=True)
tap.is_(st, 0, "a direct client gets the wait status 0")
tap.like(os.read(s_r, 100).decode(errors="replace"), r"^K[0-9A-F]+\0", "and K+id on its status channel")
os.close(s_r)
# a second request on the same connection (as smtpd sends a session's messages)
_, _, _, s_r = request(c, b"Subject: direct again\n\ny\n", envelope("carol@localhost"))
tap.is_(status_of(c), 0, "a second request on the same connection is served too")
tap.like(os.read(s_r, 100).decode(errors="replace"), r"^K[0-9A-F]+\0", "with its own K+id")
os.close(s_r)
tap.is_(len(inst.wait_for("carol", 2)), 2, "both delivered")

j = connect()
ready(j)
j.send(b"junk without descriptors")
tap.is_(status_of(j), "eof", "a malformed request is dropped without a status")
tap.like(inst.log(), r"warning: queue service: malformed request", "and logged")

# --- (c) a child killed mid-message: temporary failure, nothing queued
tap.ok(wait_until(lambda: queue_files() == 0), "the queue is empty")
c, m_w, e_w, s_r = client()
os.write(m_w, b"Subject: half\n\nfirst half\n")
tap.ok(wait_until(lambda: busy_workers(svc)), "a worker serves the client")
kids = busy_workers(svc)
idle_before = [k for k in children_of(svc) if k not in kids]
stored_by = lambda pid: len(re.findall(r"postern/queue\[%d\]: [0-9A-F]+: message-id" % pid, inst.log()))
stored_before = stored_by(kids[0])
os.kill(kids[0], 9)
st = status_of(c)
tap.ok(st not in ("eof", "timeout") and os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9,
       "the client gets the worker's wait status: killed (a temporary failure)")
os.close(m_w)
os.close(e_w)
os.close(s_r)
# the child is dead and reaped (its status came back): it stores nothing more
tap.is_(queue_files(), 0, "nothing of it is queued")
tap.is_(stored_by(kids[0]), stored_before, "nor logged as stored")
tap.like(inst.log(), r"queue service: worker %d killed by signal 9" % kids[0], "the service logs the dead worker")
tap.ok(all(alive(k) for k in idle_before), "the other workers live on")
tap.ok(wait_until(lambda: children_of(svc)), "and a worker is ready again")

# --- two messages at once, one worker killed: the other message is stored
# whole and delivered; only the killed one's client gets a failure
a, a_m, a_e, a_s = client()
b, b_m, b_e, b_s = client()
os.write(a_m, b"Subject: twin A\n\nfirst half of A\n")
os.write(b_m, b"Subject: twin B\n\nfirst half of B\n")
tap.ok(wait_until(lambda: len(busy_workers(svc)) == 2), "two workers hold a message each")
os.kill(busy_workers(svc)[0], 9)
for fd, rest, env_fd, rcpt in ((a_m, b"rest of A\n", a_e, "nina@localhost"),
                               (b_m, b"rest of B\n", b_e, "nina@localhost")):
    try:
        os.write(fd, rest)
        os.close(fd)
        os.write(env_fd, envelope(rcpt))
    except BrokenPipeError:
        pass
    os.close(env_fd)
results = sorted([status_of(a), status_of(b)], key=str)
tap.ok(results[0] == 0 and results[1] not in ("eof", "timeout") and os.WIFSIGNALED(results[1]),
       "one request ends with 0, the other with its worker's death (%s)" % results)
got = inst.wait_for("nina", 1)
tap.ok(len(got) == 1 and (b"first half of A\nrest of A\n" in got[0] or b"first half of B\nrest of B\n" in got[0]),
       "the surviving message is delivered whole")
wait_until(lambda: queue_files() == 0)
tap.is_(len(inst.delivered("nina")), 1, "and only it")
for fd in (a_s, b_s):
    os.close(fd)

# --- a worker killed in the middle of an SMTP message: 451, and the
# session's next message goes through on the same connection to the service
smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
smtp.ehlo("client.example")
smtp.mail("sender@example.org")
smtp.rcpt("kate@localhost")
code, _ = smtp.docmd("DATA")
tap.is_(code, 354, "DATA: 354")
smtp.send(b"Subject: killed\r\n\r\nthe first part\r\n")
tap.ok(wait_until(lambda: busy_workers(svc)), "a worker takes the message")
victim = busy_workers(svc)[0]
os.kill(victim, 9)
smtp.send(b"the rest\r\n.\r\n")
code, msg = smtp.getreply()
tap.ok(400 <= code < 500, "the client gets a temporary failure (%d %s)" % (code, msg.decode(errors="replace")))
tap.is_(smtp.sendmail("sender@example.org", ["kate@localhost"], b"Subject: after\r\n\r\nnext\r\n"), {},
        "the next message of the session is accepted")
smtp.quit()
got = inst.wait_for("kate", 1)
tap.ok(len(got) == 1 and b"Subject: after" in got[0], "only that one is delivered")
tap.ok(wait_until(lambda: queue_files() == 0), "nothing of the killed one is left in the queue")

# --- one session, several messages: one connection, stored by workers
# already running (no process per message)
before = set(children_of(svc))
smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
smtp.ehlo("client.example")
for i in range(5):
    smtp.sendmail("sender@example.org", ["liam@localhost"], b"Subject: m%d\r\n\r\nx\r\n" % i)
smtp.quit()
tap.is_(len(inst.wait_for("liam", 5)), 5, "five messages of one session delivered")
ids = re.findall(r"postern/queue\[(\d+)\]: ([0-9A-F]+): message-id", inst.log())[-5:]
tap.ok(set(int(p) for p, _ in ids) <= before, "stored by workers that ran before the session")

# --- the service restarted between two messages of one session: smtpd's
# connection gets 'X', and its next message goes to the new service
log_start = len(inst.log())
smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
smtp.ehlo("client.example")
tap.is_(smtp.sendmail("sender@example.org", ["owen@localhost"], b"Subject: o1\r\n\r\nx\r\n"), {},
        "a session's first message")
os.kill(svc, 15)
tap.ok(wait_until(lambda: not alive(svc)), "the service stops (SIGTERM) while the session is idle")
restarted = tap.start([os.path.abspath(tap.prog("postern-queue")), "-S", "-m", "0666", "-c", inst.dir]
                      + AS_SERVICE)
tap.ok(wait_until(lambda: service_pid() == restarted.pid), "a new service runs")
svc = restarted.pid
tap.is_(smtp.sendmail("sender@example.org", ["owen@localhost"], b"Subject: o2\r\n\r\nx\r\n"), {},
        "the session's next message is accepted")
smtp.quit()
tap.is_(len(inst.wait_for("owen", 2)), 2, "both delivered")
last = re.findall(r"postern/queue\[(\d+)\]: [0-9A-F]+: message-id", inst.log())[-1]
tap.ok(int(last) in children_of(svc), "the second stored by a worker of the new service")
tap.unlike(inst.log()[log_start:], r"smtpd\[\d+\]: warning", "smtpd warned of nothing")

# --- (b) a local user's submission records that user's uid
nobody = open_svc = None
try:
    nobody = pwd.getpwnam("nobody")
except KeyError:
    pass
if os.geteuid() == 0 and nobody and shutil.which("setpriv"):
    # a service whose socket anyone may reach, as the system units have it
    os.kill(svc, 15)
    tap.ok(wait_until(lambda: not alive(svc)), "the instance's service stops on SIGTERM")
    # as queue_service_user it cannot remove its socket from public/
    # (mail_owner's); postern stop does, and a new service replaces it
    if os.geteuid() == 0:
        tap.ok(os.path.exists(socket_path),
               "(root's instance: its user cannot remove its socket from public/; postern stop does)")
    else:
        tap.ok(not os.path.exists(socket_path), "and removes its socket")
    open_svc = tap.start([os.path.abspath(tap.prog("postern-queue")), "-S", "-m", "0666", "-c", inst.dir]
                         + AS_SERVICE)
    tap.ok(wait_until(lambda: service_pid() == open_svc.pid), "a service with -m 0666 runs")
    os.chmod(os.path.join(inst.dir, "maillog"), 0o666)
    env = dict(os.environ, POSTERN_CONFIG_DIR=inst.dir)
    r = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups", tap.prog("sendmail"), "dave@localhost"],
                       input=b"Subject: from nobody\n\nx\n", capture_output=True, env=env, timeout=60)
    tap.is_(r.returncode, 0, "nobody's sendmail is accepted") or tap.diag(r.stderr)
    tap.ok(inst.wait_for("dave", 1), "and delivered")
    tap.like(inst.log(), r"postern/queue\[\d+\]: [0-9A-F]+: uid=%d from=<nobody@" % nobody.pw_uid,
             "with nobody's uid, taken from the connection")
    svc = open_svc.pid
else:
    tap.skip("a local user's submission needs root, a nobody user and setpriv", 6)

# --- (d) the process limit: a second client waits until the first child ends
if open_svc:
    tap.stop(open_svc)
else:
    os.kill(svc, 15)
    wait_until(lambda: not alive(svc))
limited = tap.start([os.path.abspath(tap.prog("postern-queue")), "-S", "-c", inst.dir] + AS_SERVICE + [
                     "-o", "default_process_limit=1", "-o", "max_use=3"])
tap.ok(wait_until(lambda: service_pid() == limited.pid), "a service with default_process_limit=1")
svc = limited.pid
a, a_m, a_e, a_s = client()
tap.ok(wait_until(lambda: len(busy_workers(svc)) == 1), "the first client is served")
b, _, _, b_s = client(b"Subject: second\n\ny\n", envelope("erin@localhost"))
tap.is_(status_of(b, timeout=0.5, keep=True), "timeout", "a second request waits for the one worker")
tap.is_(len(children_of(svc)), 1, "one worker")
os.write(a_m, b"Subject: first\n\nz\n")
os.close(a_m)
os.write(a_e, envelope("erin@localhost"))
os.close(a_e)
tap.is_(status_of(a), 0, "the first ends with 0")
tap.is_(status_of(b), 0, "then the second is served by the same worker and ends with 0")
for fd in (a_s, b_s):
    os.close(fd)
tap.ok(len(inst.wait_for("erin", 2)) == 2, "both delivered")
# max_use=3: the third message is the worker's last; the fourth is stored by a new one
first_worker = children_of(svc)
for i in range(2):
    c, _, _, s_r = client(b"Subject: use %d\n\nx\n" % i, envelope("erin@localhost"))
    tap.is_(status_of(c), 0, "message %d after the two" % (i + 1))
    os.close(s_r)
ids = re.findall(r"postern/queue\[(\d+)\]: ([0-9A-F]+): message-id", inst.log())[-4:]
pids = [int(p) for p, _ in ids]
tap.ok(len(first_worker) == 1 and pids[:3] == first_worker * 3 and pids[3] != first_worker[0],
       "max_use=3: a worker stores three messages, then a new one takes over (%s)" % pids)
tap.ok(wait_until(lambda: not alive(first_worker[0])), "and the retired worker is gone")


# --- the service killed with a worker mid-message: the worker dies with it
c, m_w, e_w, s_r = client()
os.write(m_w, b"Subject: orphan\n\nthe service dies under me\n")
tap.ok(wait_until(lambda: busy_workers(svc)), "a worker serves the client")
orphans = list(children_of(svc))
# a sendmail meanwhile: the service is at its limit (and stopped), so it
# does not accept; after 2 seconds sendmail runs postern-queue itself (the
# failing one: exit 75 says that it ran)
os.kill(svc, 19)    # SIGSTOP
started = time.time()
r = inst.sendmail(["ivan@localhost"], b"Subject: never\n\nx\n")
tap.ok(1.5 < time.time() - started < 20, "a sendmail waits for the busy service about 2 seconds")
tap.is_(r.returncode, 75, "then runs daemon_directory/postern-queue itself")
tap.like(inst.log(), r"warning: the queue service did not take the message within 2000 ms",
         "saying so in the log")
os.kill(svc, 9)
limited.wait()
tap.is_(status_of(c), "eof", "the served client sees the connection end without a status (temporary failure)")
tap.ok(wait_until(lambda: not any(alive(p) for p in orphans)),
       "its workers die with it (only the service could report their results)")
try:
    os.close(m_w)
    os.write(e_w, envelope("frank@localhost"))
except BrokenPipeError:
    pass
os.close(e_w)
# its child is gone (above): what it had stored would be in the queue or
# delivered by now, and nothing else can store it
tap.is_((queue_files(), len(inst.delivered("frank"))), (0, 0),
        "so nothing is stored that the client was told had failed (it sends it again)")
os.close(s_r)

# --- with the service gone, the next injection runs postern-queue itself
tap.ok(os.path.exists(socket_path), "the killed service left its socket")
r = inst.sendmail(["grace@localhost"], b"Subject: fallback\n\nx\n")
tap.is_(r.returncode, 75, "with the failing injector in place, the fallback runs it: temporary failure")
tap.like(r.stderr, r"queue file write error", "and says so")
set_real_injector()
r = inst.sendmail(["grace@localhost"], b"Subject: fallback\n\nx\n")
tap.is_(r.returncode, 0, "with the real one, sendmail succeeds through the exec fallback")
tap.is_(r.stderr, "", "silently")
tap.ok(inst.wait_for("grace", 1), "and the mail is delivered")
tap.is_(inst.delivered("ivan"), [], "the message whose service was killed was not stored")

# --- 250 on K: the injection client (smtpd's, here sendmail's) takes the
# queue's K (written after its fsync) as the verdict, without waiting for
# the injector to exit (here one that lingers 4 s after it)
tmp = queue_prog + ".new"
tap.write(tmp, "#!/bin/sh\n%s \"$@\"\nrc=$?\nsleep 4\nexit $rc\n" % real_copy, 0o755)
os.replace(tmp, queue_prog)
started = time.time()
# (its output to a file: the lingering injector holds sendmail's stderr)
with open(os.path.join(inst.dir, "sendmail.err"), "wb") as err:
    r = subprocess.run([tap.prog("sendmail"), "mia@localhost"], input=b"Subject: k\n\nx\n",
                       stdout=err, stderr=err, env=inst.env, timeout=60)
elapsed = time.time() - started
tap.is_(r.returncode, 0, "sendmail: accepted through an injector that lingers after K")
tap.ok(elapsed < 3, "at once, not when it exits (%.1f s)" % elapsed)
tap.is_(len(inst.wait_for("mia", 1)), 1, "and delivered")
set_real_injector()

# --- postern start brings it back, postern stop stops it
r = inst.start()
tap.like(r.stdout, r"started the queue service", "postern start starts a new service")
pid = service_pid()
r = inst.stop()
tap.like(r.stdout, r"stopped the queue service \(pid %d\)" % (pid or -1), "postern stop stops it")
tap.ok(not os.path.exists(socket_path), "and its socket is gone")
tap.ok(service_pid() is None, "and its pid file")

# --- the socket from systemd (LISTEN_FDS), as units/postern-queue.socket passes it
activate = shutil.which("systemd-socket-activate")
if activate:
    act = tap.start([activate, "-l", socket_path, os.path.abspath(tap.prog("postern-queue")), "-S",
                     "-c", inst.dir], stderr=subprocess.DEVNULL)
    tap.ok(wait_until(lambda: os.path.exists(socket_path)), "systemd-socket-activate listens")
    c, _, _, s_r = client(b"Subject: activated\n\nx\n", envelope("henry@localhost"))
    tap.is_(status_of(c), 0, "a service started on the first connection serves it")
    os.close(s_r)
    tap.like(inst.log(), r"queue service: ready on the socket systemd passed", "on the passed socket")
    # a stopping service tells an idle connection 'X' (send no more), and
    # still serves a request already on its way
    idle = connect()
    tap.ok(ready(idle), "an idle connection (as smtpd's between MAIL and DATA)")
    late = connect()
    tap.ok(ready(late), "and another")
    act.send_signal(15)
    idle.settimeout(10)
    tap.is_(idle.recv(1), b"X", "SIGTERM: the idle connection is told X")
    idle.close()
    queued = queue_files()
    # sent before it read its X
    _, _, _, s_r = request(late, b"Subject: crossed\n\nx\n", envelope("henry@localhost"))
    tap.is_(status_of(late), 0, "a request that crossed the X is still stored")
    os.close(s_r)
    tap.is_(queue_files(), queued + 1, "and queued")
    tap.ok(wait_until(lambda: act.poll() is not None), "then the service ends")
    tap.stop(act)
else:
    tap.ok(False, "systemd-socket-activate is installed (make check installs it: ./deps --test)")
tap.done()
