"""stage.py - helpers for tests of the injection chain (doc/injection.md):
run a stage with the message on fd 0, the envelope on fd 1 and a status
pipe on fd 3, and a stand-in "queue" that records what reached it."""
import os
import subprocess
import sys
import tempfile

from tap import tempdir, write

# A stand-in for postern-queue: reads the message to its end, then the
# envelope (qmail's order), stores both in $CAPTURE_DIR, answers K.
CAPTURE_QUEUE = r'''#!/usr/bin/env python3
import os, sys
def slurp(fd):
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
d = os.environ["CAPTURE_DIR"]
msg = slurp(0)
env = slurp(1)
open(os.path.join(d, "message"), "wb").write(msg)
open(os.path.join(d, "envelope"), "wb").write(env)
if not env.endswith(b"\0\0"):
    sys.exit(91)        # no end record: the writer failed, store nothing
code = int(os.environ.get("CAPTURE_EXIT", "0"))
try:
    os.write(3, os.environ.get("CAPTURE_STATUS", "Kcaptured1").encode() + b"\0")
except OSError:
    pass
sys.exit(code)
'''


def records(raw):
    """Envelope bytes -> list of record strings (without the end record)."""
    out = []
    for rec in raw.split(b"\0"):
        if rec == b"":
            break
        out.append(rec.decode())
    return out


def envelope(sender, recipients, attrs=()):
    data = b"F" + sender.encode() + b"\0"
    for r in recipients:
        data += b"T" + r.encode() + b"\0"
    for a in attrs:
        data += a.encode() + b"\0"
    return data + b"\0"


def run_stage(argv, message, env_bytes, extra_env=None, message_pipe=False,
              timeout=30):
    """Run a stage.  The message is a file (default) or a pipe written
    before the envelope (message_pipe=True, qmail's order).  Returns
    (exit code, status records, stderr)."""
    status_r, status_w = os.pipe()
    envr, envw = os.pipe()
    if message_pipe:
        msgr, msgw = os.pipe()
        stdin = msgr
    else:
        f = tempfile.TemporaryFile()
        f.write(message)
        f.flush()
        f.seek(0)
        stdin = f
    full_env = dict(os.environ)
    if extra_env:
        full_env.update(extra_env)
    p = subprocess.Popen(["sh", "-c", 'exec "$0" "$@" 3>&%d' % status_w] + list(argv),
                         stdin=stdin, stdout=envr, stderr=subprocess.PIPE,
                         pass_fds=(status_w,), env=full_env)
    os.close(status_w)
    os.close(envr)
    if message_pipe:
        os.close(msgr)
        try:
            view = memoryview(message)
            while view:
                n = os.write(msgw, view[:65536])
                view = view[n:]
        except BrokenPipeError:
            pass
        os.close(msgw)
    try:
        os.write(envw, env_bytes)
    except BrokenPipeError:
        pass
    os.close(envw)
    status = b""
    while True:
        b = os.read(status_r, 4096)
        if not b:
            break
        status += b
    os.close(status_r)
    err = p.stderr.read().decode(errors="replace")
    p.wait(timeout)
    return p.returncode, records(status + b"\0"), err


def capture_queue(directory):
    """Write the stand-in queue program into directory; returns its path."""
    return write(os.path.join(directory, "capture-queue"), CAPTURE_QUEUE, 0o755)


def split_message(raw):
    """bytes -> (list of logical header strings, body bytes)."""
    head, sep, body = raw.partition(b"\n\n")
    headers = []
    for line in head.decode().split("\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] += "\n" + line
        elif line:
            headers.append(line)
    return headers, body
