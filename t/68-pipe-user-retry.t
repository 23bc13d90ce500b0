#!/usr/bin/env python3
# postern-pipe asks the passwd table again when it could not answer at the
# runner's start: a runner (reuse mode, -S, its protocol by hand) started
# while the lookup service is down defers its first request (4.3.5), and
# once the service runs, the same process delivers the next one, instead
# of deferring every request for the rest of its life.
import os, pwd, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import instance as inst_mod

require(programs=("postern-pipe", "postern-lookup", "postern", "postern-qmgr"))
ROOT = os.geteuid() == 0
USER = "nobody" if ROOT else pwd.getpwuid(os.getuid()).pw_name

inst = inst_mod.new_instance()
D = inst.dir
out_dir = os.path.join(D, "out")
os.makedirs(out_dir)
os.chmod(os.path.dirname(D), 0o755)
os.chmod(D, 0o755)
os.chmod(out_dir, 0o777)
got = os.path.join(out_dir, "got")
with open(os.path.join(D, "master.cf"), "a") as f:
    f.write(f"""
retry     unix  -       n       n       -       -       pipe
  user={USER} argv=/usr/bin/tee -a {got}
""")
lookup_socket = os.path.join(D, "queue", "public", "lookup")
ok(not os.path.exists(lookup_socket), "the lookup service is not running yet")

qfile = os.path.join(D, "message")
content = b"Subject: retry\n\nhello\n"
write(qfile, content)
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
theirs.set_inheritable(True)
runner = subprocess.Popen([prog("postern-pipe"), "-S", "-n", "retry", "-c", D], close_fds=False,
                          preexec_fn=lambda: os.dup2(theirs.fileno(), 3), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
theirs.close()
ours.settimeout(60)


def request(qid):
    fd = os.open(qfile, os.O_RDONLY)
    socket.send_fds(ours, [b"Q%s\0Fs@example.org\0M0,%d\0Tr@retry.test\0\0" % (qid, len(content))], [fd])
    os.close(fd)
    answer = b""
    while not answer.endswith(b"\0\0"):
        chunk = ours.recv(4096)
        if not chunk:
            break
        answer += chunk
    return "|".join(r.decode(errors="replace") for r in answer.split(b"\0") if r)


first = request(b"RETRY1")
like(first, r"(^|\|)Z4\.3\.5 mail system configuration error", "lookup service down at the start: deferred (4.3.5)")
ok(not os.path.exists(got), "and the command did not run")

r = inst.start()
is_(r.returncode, 0, "postern start: the lookup service runs now") or diag(r.stderr)
ok(wait_until(lambda: os.path.exists(lookup_socket), 30), "its socket is there")
second = request(b"RETRY2")
like(second, r"(^|\|)K2\.0\.0 delivered via retry service",
     "the same runner asks the passwd table again and delivers the next request")
ok(os.path.exists(got) and open(got, "rb").read().endswith(content), "the command got the message")

ours.shutdown(socket.SHUT_WR)
try:
    is_(runner.wait(20), 0, "EOF on the channel: the runner exits 0")
except subprocess.TimeoutExpired:
    runner.kill()
    runner.wait()
    ok(False, "EOF on the channel: the runner exits 0")
err = runner.stderr.read().decode(errors="replace")
unlike(err, r"Sanitizer|runtime error", "no sanitizer report")
ours.close()
inst.stop()
done()
