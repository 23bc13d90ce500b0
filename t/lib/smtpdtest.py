"""smtpdtest.py - helpers for postern-smtpd's tests.

An instance is a temporary directory with a main.cf whose daemon_directory
holds a stand-in postern-queue (smtpd runs rewrite in-process and starts the
queue stage itself): it reads the message, then the envelope
(doc/injection.md), stores both under DIR/captured/ (NAME.done.msg, NAME.done.env), and answers
on fd 3 with K and a queue id, or with what DIR/verdict says (a status
record and an exit code), so the tests see exactly what smtpd hands to the
queue, rewritten.  There is no postern-rewrite in that directory, so smtpd
must not need one.  The real chain is used by the end-to-end tests once it exists.

Connections are served the UCSPI way: a listener on a free loopback port
accepts each connection and starts postern-smtpd with the socket as fd 0
and fd 1 and TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT set (what
tcpserver and postern-accept do).
"""
import os
import re
import socket
import subprocess
import threading
import time

import tap

STAND_IN_QUEUE = r'''#!/bin/sh
# stand-in for postern-queue: message (fd 0) to its end, then the envelope
# (fd 1); store both, answer on fd 3
base=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$base/captured"
tmp=$(mktemp "$base/captured/in.XXXXXX") || exit 71
cat > "$tmp.msg" || exit 54
cat <&1 > "$tmp.env" || exit 55
# no end record: the submitter failed; store nothing
if [ "$(tail -c 2 "$tmp.env" | od -An -c | tr -d ' ')" != '\0\0' ]; then
    rm -f "$tmp" "$tmp.msg" "$tmp.env"
    exit 91
fi
id=$(basename "$tmp" | cut -c4- | od -An -tx1 | tr -d ' \n' | cut -c1-10 | tr a-f A-F)
mv "$tmp.env" "$tmp.done.env" && mv "$tmp.msg" "$tmp.done.msg" && rm -f "$tmp"
if [ -f "$base/verdict" ]; then
    { read -r record; read -r code; } < "$base/verdict"
    printf '%s\0' "$record" >&3
    exit "$code"
fi
printf 'K%s\0' "$id" >&3
exit 0
'''


class Instance:
    def __init__(self, settings=None):
        self.dir = tap.tempdir("postern-smtpd-")
        self.daemon_dir = os.path.join(self.dir, "libexec")
        os.makedirs(self.daemon_dir)
        os.makedirs(os.path.join(self.dir, "queue", "public"))
        tap.write(os.path.join(self.daemon_dir, "postern-queue"), STAND_IN_QUEUE, 0o755)
        base = {
            "myhostname": "mx.example.com",
            "mydomain": "example.com",
            "mydestination": "example.com, localhost",
            "daemon_directory": self.daemon_dir,
            "queue_directory": os.path.join(self.dir, "queue"),
            "maillog_file": os.path.join(self.dir, "maillog"),
            "local_recipient_maps": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_error_sleep_time": "0",
            # the tests see the message as the client sent it: no header
            # rewriting for 127.0.0.1 (t/84 and t/62 test the default)
            "local_header_rewrite_clients": "",
        }
        base.update(settings or {})
        self.settings = base
        self.write_config()
        self.listener = None

    def write_config(self):
        tap.write(os.path.join(self.dir, "main.cf"),
                  "".join("%s = %s\n" % kv for kv in self.settings.items()))

    def set(self, **kw):
        self.settings.update(kw)
        self.write_config()

    def argv(self, *extra):
        return [tap.prog("postern-smtpd"), "-c", self.dir] + list(extra)

    def log(self):
        try:
            return open(os.path.join(self.dir, "maillog")).read()
        except FileNotFoundError:
            return ""

    def captured(self):
        """[(message bytes, [envelope records])] in arrival order."""
        cap = os.path.join(self.dir, "captured")
        out = []
        if not os.path.isdir(cap):
            return out
        names = [f[:-len(".done.msg")] for f in os.listdir(cap) if f.endswith(".done.msg")]
        names.sort(key=lambda n: os.stat(os.path.join(cap, n + ".done.msg")).st_mtime_ns)
        for n in names:
            msg = open(os.path.join(cap, n + ".done.msg"), "rb").read()
            env = open(os.path.join(cap, n + ".done.env"), "rb").read()
            out.append((msg, [r.decode("utf-8", "replace") for r in env.split(b"\0")[:-2]]))
        return out

    def verdict(self, record, code):
        tap.write(os.path.join(self.dir, "verdict"), "%s\n%d\n" % (record, code))

    def no_verdict(self):
        try:
            os.unlink(os.path.join(self.dir, "verdict"))
        except FileNotFoundError:
            pass

    # ---- serving connections, the UCSPI way ----
    def listen(self, env=None):
        """Start a listener for this instance; returns the port."""
        self.listener = Listener(self.argv(), env)
        self.port = self.listener.port
        return self.port

    def stop(self):
        if self.listener:
            self.listener.stop()


class Listener:
    """Accept connections on a free loopback port and start argv for each
    with the socket as fd 0 and 1 and the UCSPI variables set (what
    tcpserver and postern-accept do)."""

    def __init__(self, argv, env=None):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.children = []
        self.argv = list(argv)
        self.extra = dict(env or {})
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            local = conn.getsockname()
            child_env = dict(os.environ)
            child_env.update({
                "TCPREMOTEIP": peer[0], "TCPREMOTEPORT": str(peer[1]),
                "TCPLOCALIP": local[0], "TCPLOCALPORT": str(local[1]),
                "PROTO": "TCP",
            })
            child_env.update(self.extra)
            child_env.pop("POSTERN_CONFIG_DIR", None)
            p = subprocess.Popen(self.argv, stdin=conn, stdout=conn, env=child_env, close_fds=True)
            self.children.append(p)
            conn.close()

    def stop(self):
        self.sock.close()
        for p in self.children:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Client:
    """A raw SMTP client for protocol edge cases."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One whole (possibly multi-line) reply as text, or None at EOF."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    chunk = b""
                if not chunk:
                    return "\n".join(lines) if lines else None
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        """True when the server closed the connection."""
        try:
            self.sock.settimeout(5)
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def transaction(port, sender, rcpts, message, helo="client.example"):
    """One mail transaction over a new connection: EHLO, MAIL, each RCPT,
    DATA with message (LF line ends, sent as CRLF), QUIT.  Returns the
    RCPT replies, the end-of-data reply and the queue id it names (None
    when there is none)."""
    c = Client(port)
    c.reply()
    c.cmd("EHLO " + helo)
    c.cmd("MAIL FROM:<%s>" % sender)
    answers = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    c.cmd("DATA")
    c.send(message.replace("\n", "\r\n").encode() + b".\r\n")
    answer = c.reply()
    c.cmd("QUIT")
    m = re.match(r"250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", answer or "")
    return answers, answer, m.group(1) if m else None


def rcpt_reply(inst, addr, sender="a@example.org", helo="client.example",
               rcpt="postmaster@example.com", timeout=20):
    """One session from client address addr (TCPREMOTEIP) up to RCPT;
    returns the RCPT reply."""
    listener = Listener(inst.argv(), {"TCPREMOTEIP": addr})
    c = Client(listener.port, timeout=timeout)
    c.reply()
    c.cmd("EHLO " + helo)
    c.cmd(f"MAIL FROM:<{sender}>")
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("QUIT")
    c.close()
    listener.stop()
    return r


def wait_for(predicate, timeout=5.0):
    return tap.wait_until(predicate, timeout)


def session_from(inst, addr, env=None, mail=True):
    """One SMTP session from addr (TCPREMOTEIP) through a listener of its
    own, with one message unless mail is False; returns the banner and the
    message smtpd handed on ("" when none).  Waits for the session's
    "disconnect from" line."""
    listener = Listener(inst.argv(), dict(env or {}, TCPREMOTEIP=addr))
    before = len(inst.captured())
    done = inst.log().count("disconnect from")
    c = Client(listener.port)
    banner = c.reply()
    c.cmd("EHLO client.example")
    if mail:
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<postmaster@example.com>")
        c.cmd("DATA")
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
        c.reply()
    c.cmd("QUIT")
    c.close()
    wait_for(lambda: inst.log().count("disconnect from") > done)
    listener.stop()
    got = inst.captured()
    return banner, (got[-1][0].decode() if mail and len(got) > before else "")


def accept_dir(extra=""):
    """A directory for postern-accept in front of the real postern-smtpd:
    a main.cf logging to DIR/maillog (which smtpd, as nobody under root,
    appends to), mynetworks 127.0.0.0/8, plus `extra` lines."""
    d = tap.tempdir()
    os.chmod(d, 0o777)
    tap.write(os.path.join(d, "main.cf"),
              f"maillog_file = {d}/maillog\nmyhostname = mx.example\nmynetworks = 127.0.0.0/8\n"
              f"queue_directory = {d}/queue\n{extra}")
    # postern-accept opens it before dropping privileges; smtpd, as nobody, appends
    tap.write(os.path.join(d, "maillog"), "", 0o666)
    return d


def maillog(d):
    """What DIR/maillog holds so far ("" before it exists)."""
    try:
        with open(os.path.join(d, "maillog")) as f:
            return f.read()
    except FileNotFoundError:
        return ""
