"""instance.py - a self-contained postern instance for end-to-end tests:
`postern init` in a temporary directory, start/stop through `postern`,
submission through `sendmail`, and waiting for mail in its Maildirs."""
import atexit
import os
import signal
import time

from tap import free_port, prog, run, tempdir

NEEDED = ["postern", "sendmail", "postern-rewrite", "postern-queue",
          "postern-qmgr", "postern-virtual"]


# Run as root, `postern start` runs each daemon as its own user (users.c,
# doc/privileges.md) and refuses when they do not exist: the tests name
# users every Debian system has (base-passwd).  qmgr, as mail_owner, runs
# the virtual runner without privileges, so the mailboxes are mail_owner's.
ROOT_USERS = {"mail_owner": "mail", "setgid_group": "mail", "smtpd_user": "nobody",
              "queue_service_user": "daemon"}


def root_init_options():
    """`postern init` options for a test instance: [] unless run as root."""
    if os.geteuid() != 0:
        return []
    import pwd
    mail = pwd.getpwnam(ROOT_USERS["mail_owner"])
    opts = dict(ROOT_USERS, virtual_uid_maps=f"static:{mail.pw_uid}",
                virtual_gid_maps=f"static:{mail.pw_gid}", virtual_minimum_uid="1")
    return [a for k, v in opts.items() for a in ("-o", f"{k}={v}")]


def root_adopt(directory):
    """As root: DIR/mail to mail_owner, whose runner delivers into it."""
    if os.geteuid() != 0:
        return
    import pwd
    mail = pwd.getpwnam(ROOT_USERS["mail_owner"])
    path = os.path.join(directory, "mail")
    if os.path.isdir(path):
        os.chown(path, mail.pw_uid, mail.pw_gid)


def missing_programs():
    return [p for p in NEEDED if not os.access(prog(p), os.X_OK)]


def new_instance(*init_args):
    """An instance for a test of the whole mail path: the test fails when
    the programs are not built (tap.require), and ends when `postern init`
    fails."""
    import tap
    tap.require(programs=NEEDED)
    inst = Instance(*init_args)
    if not tap.is_(inst.init.returncode, 0, "postern init"):
        tap.diag(inst.init.stderr)
        tap.done()
    return inst


class Instance:
    def __init__(self, *init_args):
        parent = tempdir()
        os.chmod(parent, 0o755)     # run as root, mailboxes belong to nobody
        self.dir = os.path.join(parent, "inst")
        # a port of its own: start also runs the SMTP listener of master.cf
        self.init = run(["postern", "init", self.dir, "--port", str(free_port())]
                        + root_init_options() + list(init_args))
        root_adopt(self.dir)
        self.env = {"POSTERN_CONFIG_DIR": self.dir}
        atexit.register(self.kill_daemon)

    def kill_daemon(self):
        """At exit: a qmgr of this instance still running is killed by PID."""
        kill_instance_daemon(self.dir)

    def postern(self, *args):
        return run(["postern"] + list(args[:1]) + ["-c", self.dir] + list(args[1:]))

    def start(self):
        return self.postern("start")

    def stop(self):
        return self.postern("stop")

    def queue_service_pid(self):
        try:
            return int(open(os.path.join(self.dir, "queue", "pid", "queue.pid")).read())
        except (OSError, ValueError):
            return None

    def supervisor_pid(self):
        try:
            return int(open(os.path.join(self.dir, "queue", "pid", "supervise.pid")).read())
        except (OSError, ValueError):
            return None

    def stop_supervisor(self):
        """End the supervisor only (its daemons stay), for a test that
        kills or replaces a daemon and must not see it restarted."""
        pid = self.supervisor_pid()
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        end = time.time() + 30
        while time.time() < end and os.path.exists(f"/proc/{pid}") \
                and " Z " not in open(f"/proc/{pid}/stat").read():
            time.sleep(0.02)

    def queue_workers(self, busy=False):
        """The queue service's workers (busy: only those holding a message
        now: their fd 0 is the message's pipe; an idle worker has
        /dev/null there)."""
        pid = self.queue_service_pid()
        try:
            kids = [int(k) for k in open(f"/proc/{pid}/task/{pid}/children").read().split()]
        except (OSError, TypeError):
            return []
        out = []
        for kid in kids:
            try:
                if not busy or os.readlink(f"/proc/{kid}/fd/0").startswith("pipe:"):
                    out.append(kid)
            except OSError:
                pass
        return out

    def qmgr_pid(self):
        try:
            return int(open(os.path.join(self.dir, "queue", "pid", "qmgr.pid")).read())
        except (OSError, ValueError):
            return None

    def sendmail(self, args, message, timeout=60):
        r = run([prog("sendmail")] + list(args), input=message, env=self.env,
                timeout=timeout)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        return r

    def rewrite(self, envelope, message, timeout=60):
        """postern-rewrite from a shell (doc/injection.md, interface 2)
        with this instance's main.cf: envelope (the NUL-separated records,
        ending in an empty one) and message in; (the message and the
        envelope records it hands the next stage, its stderr) out."""
        import subprocess
        out = tempdir()
        msg_out, env_out = os.path.join(out, "message"), os.path.join(out, "envelope")
        # the next stage reads the message on stdin, the envelope on fd 1
        stage = ["/bin/sh", "-c", 'cat >"$0"; cat <&1 >"$1"', msg_out, env_out]
        env_r, env_w = os.pipe()
        os.write(env_w, envelope)
        os.close(env_w)
        try:
            p = subprocess.run([prog("postern-rewrite"), "-c", self.dir, "--"] + stage,
                               input=message, stdout=env_r, stderr=subprocess.PIPE,
                               env=dict(os.environ, **self.env), timeout=timeout)
        finally:
            os.close(env_r)

        def read(path):
            return open(path, "rb").read() if os.path.exists(path) else b""
        records = [r.decode(errors="replace") for r in read(env_out).split(b"\0") if r]
        return read(msg_out), records, p.stderr.decode(errors="replace")

    def maildir(self, name):
        return os.path.join(self.dir, "mail", name, "Maildir")

    def delivered(self, name):
        """The messages in NAME's Maildir new/, as bytes, oldest first."""
        new = os.path.join(self.maildir(name), "new")
        if not os.path.isdir(new):
            return []
        files = sorted(os.listdir(new), key=lambda f: os.stat(os.path.join(new, f)).st_mtime)
        return [open(os.path.join(new, f), "rb").read() for f in files]

    def wait_for(self, name, count=1, timeout=15):
        """Wait until NAME has at least count messages; returns them."""
        end = time.time() + timeout
        while time.time() < end:
            got = self.delivered(name)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.delivered(name)

    def queue_counts(self):
        counts = {}
        for q in ("incoming", "active", "deferred", "hold", "corrupt"):
            path = os.path.join(self.dir, "queue", q)
            counts[q] = len([f for f in os.listdir(path) if not f.startswith(".")]) if os.path.isdir(path) else 0
        return counts

    def log(self):
        try:
            return open(os.path.join(self.dir, "maillog"), errors="replace").read()
        except OSError:
            return ""


def kill_instance_daemon(directory):
    """Kill the daemons of the instance in DIR: its supervisor first (so
    that it restarts nothing), then qmgr, the queue service and the SMTP
    listeners (postern-accept; its zygote ends with it), as named by
    DIR/queue/pid/*.pid, if their command lines name this instance (never
    anything else)."""
    piddir = os.path.join(directory, "queue", "pid")
    try:
        names = [n for n in os.listdir(piddir) if n.endswith(".pid")]
    except OSError:
        return
    names.sort(key=lambda n: n != "supervise.pid")
    for name in names:
        try:
            pid = int(open(os.path.join(piddir, name)).read())
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if directory.encode() in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
