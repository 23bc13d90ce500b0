#!/usr/bin/env python3
# The queue service (postern-queue -S, doc/injection.md "The queue
# service"): `postern start` runs it; mail from smtpd and sendmail is
# queued by its children (daemon_directory/postern-queue is replaced by a
# program that fails, and mail still queues), delivered once; a local user's
# submission records that user's uid (SO_PEERCRED) as the set-group-id
# injector would; the process limit holds clients back until a child ends;
# a child killed mid-message gives its client a temporary failure and
# queues nothing; a killed service leaves its child to finish, and the next
# submission runs postern-queue itself; `postern stop` stops it.
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
tap.ok(len(queue_pids) == 2 and svc not in queue_pids,
       "stored by two children of the service (log lines of other pids)")
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


def status_of(c, timeout=10):
    c.settimeout(timeout)
    try:
        data = b""
        while len(data) < 4:
            chunk = c.recv(4 - len(data))
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        data = b""
    c.close()
    return struct.unpack("i", data)[0] if len(data) == 4 else "eof"


c, _, _, s_r = client(b"Subject: direct\n\nx\n", envelope("carol@localhost"))
st = status_of(c)
tap.is_(st, 0, "a direct client gets the wait status 0")
tap.like(os.read(s_r, 100).decode(errors="replace"), r"^K[0-9A-F]+\0", "and K+id on its status channel")
os.close(s_r)

j = connect()
ready(j)
j.send(b"junk without descriptors")
tap.is_(status_of(j), "eof", "a malformed request is dropped without a status")
tap.like(inst.log(), r"warning: queue service: malformed request", "and logged")

# --- (c) a child killed mid-message: temporary failure, nothing queued
tap.ok(wait_until(lambda: queue_files() == 0), "the queue is empty")
c, m_w, e_w, s_r = client()
os.write(m_w, b"Subject: half\n\nfirst half\n")
tap.ok(wait_until(lambda: children_of(svc)), "a child serves the client")
kids = children_of(svc)
os.kill(kids[0], 9)
st = status_of(c)
tap.ok(st not in ("eof", "timeout") and os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9,
       "the client gets the child's wait status: killed (a temporary failure)")
os.close(m_w)
os.close(e_w)
os.close(s_r)
# the child is dead and reaped (its status came back): it stores nothing more
tap.is_(queue_files(), 0, "nothing of it is queued")
tap.unlike(inst.log(), r"postern/queue\[%d\]: [0-9A-F]+: message-id" % kids[0], "nor logged as stored")

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
                     "-o", "default_process_limit=1"])
tap.ok(wait_until(lambda: service_pid() == limited.pid), "a service with default_process_limit=1")
svc = limited.pid
a, a_m, a_e, a_s = client()
tap.ok(wait_until(lambda: len(children_of(svc)) == 1), "the first client is served")
b = connect()
tap.ok(not ready(b, timeout=0.5), "a second client is not accepted (no R): one at a time")
tap.is_(len(children_of(svc)), 1, "one child")
os.write(a_m, b"Subject: first\n\nz\n")
os.close(a_m)
os.write(a_e, envelope("erin@localhost"))
os.close(a_e)
tap.is_(status_of(a), 0, "the first ends with 0")
b, _, _, b_s = client(b"Subject: second\n\ny\n", envelope("erin@localhost"), c=b)
tap.is_(status_of(b), 0, "then the second is accepted, served and ends with 0")
for fd in (a_s, b_s):
    os.close(fd)
tap.ok(len(inst.wait_for("erin", 2)) == 2, "both delivered")

# --- the service killed with a child mid-message: the child dies with it
c, m_w, e_w, s_r = client()
os.write(m_w, b"Subject: orphan\n\nthe service dies under me\n")
tap.ok(wait_until(lambda: children_of(svc)), "a child serves the client")
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
       "its child dies with it (only the service could report its exit)")
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
    tap.stop(act)
else:
    tap.ok(False, "systemd-socket-activate is installed (make check installs it: ./deps --test)")
tap.done()
