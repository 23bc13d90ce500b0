"""inject.py - helpers for tests that drive postern-queue through interface 2
(doc/injection.md): the message on fd 0, envelope records on fd 1, the status
channel on fd 3; and that set up a queue with a main.cf of their own."""
import os
import threading

from tap import prog, tempdir, write, run

# mail_owner and setgid_group of the tests' queues, run as root: accounts
# every Debian system has (base-passwd), unlike Postfix's postfix and
# postdrop, which only its package creates (and make check never installs
# Postfix).  The user nobody is not in the group.
MAIL_OWNER, SETGID_GROUP = "mail", "mail"
OWNERS = f"mail_owner = {MAIL_OWNER}\nsetgid_group = {SETGID_GROUP}\n"


def instance(extra=""):
    """A config dir with main.cf and an initialised queue; returns (cfg, queue)."""
    top = tempdir()
    queue = os.path.join(top, "queue")
    write(os.path.join(top, "main.cf"),
          f"queue_directory = {queue}\ndata_directory = {top}/data\n"
          f"maillog_file = {top}/maillog\n"
          + OWNERS + extra)
    r = run(["postern", "queue", "-c", top, "init"])
    assert r.returncode == 0, r.stderr
    return top, queue


def envelope(sender, rcpts, attrs=(), rcpt_attrs=None):
    """Envelope records as bytes: F, then T (+P) per recipient, A, end."""
    out = b"F" + sender.encode() + b"\0"
    for r in rcpts:
        out += b"T" + r.encode() + b"\0"
        for p in (rcpt_attrs or {}).get(r, ()):
            out += b"P" + p.encode() + b"\0"
    for a in attrs:
        out += b"A" + a.encode() + b"\0"
    return out + b"\0"


class Injection:
    """A running postern-queue: write the message to msg_w and the envelope
    to env_w (file objects), read status from st_r; pid for signals."""

    def __init__(self, cmd, status_fd, env_vars):
        msg_r, msg_w = os.pipe()
        env_r, env_w = os.pipe()
        err_r, err_w = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, msg_r, 0), (os.POSIX_SPAWN_DUP2, env_r, 1),
                   (os.POSIX_SPAWN_DUP2, err_w, 2)]
        st_r = st_w = None
        if status_fd:
            st_r, st_w = os.pipe()
            actions.append((os.POSIX_SPAWN_DUP2, st_w, 3))
        else:
            actions.append((os.POSIX_SPAWN_CLOSE, 3))
        full_env = dict(os.environ)
        full_env.update(env_vars or {})
        self.pid = os.posix_spawn(cmd[0], cmd, full_env, file_actions=actions)
        for fd in (msg_r, env_r, err_w, st_w):
            if fd is not None:
                os.close(fd)
        self.msg_w = os.fdopen(msg_w, "wb")
        self.env_w = os.fdopen(env_w, "wb")
        self.err_r = err_r
        self.st_r = st_r

    def finish(self, close_inputs=True):
        """Close our ends, collect (exit code, status records, stderr)."""
        for f in (self.msg_w, self.env_w) if close_inputs else ():
            try:
                f.close()
            except OSError:
                pass
        status = b""
        if self.st_r is not None:
            with os.fdopen(self.st_r, "rb") as f:
                status = f.read()
        with os.fdopen(self.err_r, "rb") as f:
            err = f.read().decode(errors="replace")
        _, code = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(code)
        return code, [r.decode(errors="replace") for r in status.split(b"\0") if r], err


def _feed(f, data):
    try:
        f.write(data)
        f.close()
    except (OSError, ValueError):
        pass


def inject(cfg, message, env, status_fd=True, envelope_first=False, argv=None,
           env_vars=None):
    """Run postern-queue with message bytes on fd 0 and env bytes on fd 1
    (message first, as qmail submitters do, unless envelope_first).
    Returns (exit code, status records, stderr)."""
    cmd = argv or [prog("postern-queue"), "-c", cfg]
    inj = Injection(cmd, status_fd, env_vars)
    order = [(inj.env_w, env), (inj.msg_w, message)]
    if not envelope_first:
        order.reverse()
    t = threading.Thread(target=lambda: [_feed(f, d) for f, d in order])
    t.start()
    code = inj.finish(close_inputs=False)
    t.join()
    return code
