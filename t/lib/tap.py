"""tap.py - a small TAP producer and helpers for postern's tests.

Tests are Python scripts named t/NN-name.t; prove runs them (perl hands a
file whose #! line names another interpreter to that interpreter).  Programs
under test are found in $POSTERN_BIN, the source tree in $POSTERN_SRC; both
are set by t/run-tests.  Run one test by hand with
    POSTERN_BIN=build/bin POSTERN_SRC=. python3 t/10-config.t

Every helper that starts a process keeps its PID and stops it by PID at exit.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

SRC = os.environ.get("POSTERN_SRC") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("POSTERN_BIN") or os.path.join(SRC, "build", "bin")

_count = 0
_failed = 0
_planned = None
_children = []
_tempdirs = []


def plan(n):
    """Announce the number of tests up front (optional; done() also works)."""
    global _planned
    _planned = n
    print(f"1..{n}", flush=True)


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print(f"# {line}", flush=True)


def ok(cond, name=""):
    global _count, _failed
    _count += 1
    if not cond:
        _failed += 1
    print(f"{'ok' if cond else 'not ok'} {_count} - {name}", flush=True)
    return bool(cond)


def is_(got, want, name=""):
    if not ok(got == want, name):
        diag(f"     got: {got!r}")
        diag(f"expected: {want!r}")
        return False
    return True


def isnt(got, unwanted, name=""):
    if not ok(got != unwanted, name):
        diag(f"     got: {got!r} (must differ)")
        return False
    return True


def like(got, pattern, name=""):
    if not ok(got is not None and re.search(pattern, got, re.M) is not None, name):
        diag(f"     got: {got!r}")
        diag(f"expected to match: {pattern!r}")
        return False
    return True


def unlike(got, pattern, name=""):
    if not ok(got is None or re.search(pattern, got, re.M) is None, name):
        diag(f"     got: {got!r}")
        diag(f"expected not to match: {pattern!r}")
        return False
    return True


def skip_all(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


def skip(reason, count=1):
    """Skip count tests: a TAP SKIP line each, and one line on stderr so
    that `make check` shows what was not tested and why."""
    for _ in range(count):
        ok(True, f"# SKIP {reason}")
    print(f"SKIP {os.path.basename(sys.argv[0])}: {reason}", file=sys.stderr, flush=True)


def unshare_mount(extra=()):
    """The unshare(1) argv for a mount namespace of the test's own, with
    private propagation (as a user, root of a user namespace too), when
    this machine can make one; else one failed test that says why, and
    None.  A booted system can; a chroot cannot when its root is a plain
    directory, not a mount point (bind-mount the directory onto itself
    before chroot), nor, for a user, at all (the kernel refuses a user
    namespace to a chrooted process)."""
    argv = ["unshare", "--mount", "--propagation", "private", *extra]
    if os.geteuid() != 0:
        argv.append("--map-root-user")
    r = subprocess.run(argv + ["true"], capture_output=True, text=True)
    if r.returncode == 0:
        return argv
    ok(False, f"a mount namespace of the test's own ({' '.join(argv)}): {r.stderr.strip()} "
              "(in a chroot: / must be a mount point; a user namespace is refused there)")
    return None


def require(programs=(), tools=()):
    """End the test, failed, when a program under test is not built or a
    tool that `make check` installs (./deps --test) is missing: neither is
    a reason to skip, a skip would hide it."""
    missing = [p for p in programs if not os.access(prog(p), os.X_OK)]
    absent = [t for t in tools if not shutil.which(t)]
    if not missing and not absent:
        return
    for p in missing:
        ok(False, f"{p} is built (in {BIN}; make check builds it)")
    for t in absent:
        ok(False, f"{t} is installed (make check installs it: ./deps --test)")
    done()


def done():
    """Print the plan if none was given and exit with the failure count."""
    if _planned is None:
        print(f"1..{_count}", flush=True)
    sys.exit(min(_failed, 254))


def tempdir(prefix="postern-t-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def prog(name):
    return os.path.join(BIN, name)


def run(argv, input=None, env=None, timeout=60, cwd=None):
    """Run a program to completion; returns CompletedProcess with text
    stdout/stderr (bytes when input is bytes)."""
    if argv and not os.path.isabs(argv[0]) and os.path.exists(prog(argv[0])):
        argv = [prog(argv[0])] + list(argv[1:])
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    text = not isinstance(input, (bytes, bytearray))
    return subprocess.run(argv, input=input, capture_output=True, env=full_env,
                          timeout=timeout, text=text, cwd=cwd)


def start(argv, env=None, **kw):
    """Start a background process; it is stopped by PID at exit."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.Popen(argv, env=full_env, **kw)
    _children.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def free_port(host="127.0.0.1"):
    """A TCP port that nothing listens on now (bind to port 0, read it back)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(port, host="127.0.0.1"):
    """True when something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_until(cond, timeout=20):
    """Poll cond() every 50 ms until it is true or timeout seconds pass;
    returns its last value (wait for the event, never a fixed sleep)."""
    import time
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def _cleanup():
    for p in _children:
        try:
            stop(p)
        except Exception:
            pass
    if not os.environ.get("POSTERN_KEEP_TMP"):
        for d in _tempdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    # a run stopped from outside (prove interrupted, a timeout's SIGTERM,
    # a closed terminal): exit through atexit, so the servers and instances
    # this test started are stopped by their PIDs, not left running
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    if signal.getsignal(_sig) in (signal.SIG_DFL, signal.default_int_handler):
        signal.signal(_sig, _on_signal)
