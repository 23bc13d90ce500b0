#!/usr/bin/env python3
# Socket activation without systemd as PID 1, through systemd-socket-activate:
# postern-accept taking its listening sockets from sd_listen_fds (a unit with
# Accept=no), postern-accept -i under --accept (Accept=yes, the connection on
# fd 0/1 with --inetd or as fd 3 without), and postern-smtpd itself under
# --accept --inetd and behind postern-accept once it is built.
import os
import re
import shutil
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402

tap.require(tools=["systemd-socket-activate"])
ACTIVATE = shutil.which("systemd-socket-activate")
ACCEPT = tap.prog("postern-accept")
SMTPD = tap.prog("postern-smtpd")
USER = ["-u", "nobody"] if os.geteuid() == 0 else []


def instance(extra=""):
    d = tap.tempdir()
    tap.write(os.path.join(d, "main.cf"),
              f"maillog_file = {d}/maillog\nmyhostname = mx.example\n"
              f"queue_directory = {d}/queue\n{extra}")
    os.chmod(d, 0o755)
    return d


def log(d):
    try:
        with open(os.path.join(d, "maillog")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def activate(d, args, program):
    return tap.start([ACTIVATE] + args + program, stderr=open(os.path.join(d, "activate.err"), "w"))


def session(addr, family=socket.AF_INET, send=b""):
    """Connect (retrying while the activator starts) and read to the end."""
    end = time.time() + 5
    while True:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(addr)
            break
        except OSError:
            s.close()
            if time.time() > end:
                return None
            time.sleep(0.05)
    if send:
        s.sendall(send)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode(errors="replace")


def env_of(text):
    return dict(line.split("=", 1) for line in (text or "").splitlines() if "=" in line)


# ---- postern-accept with the listening socket from systemd (Accept=no) ----
d = instance()
port = tap.free_port()
p = activate(d, ["-l", f"127.0.0.1:{port}"], [ACCEPT, "-c", d] + USER + ["--", "/usr/bin/env"])
first = env_of(session(("127.0.0.1", port)))
second = env_of(session(("127.0.0.1", port)))
tap.is_((first.get("TCPREMOTEIP"), first.get("TCPLOCALPORT")), ("127.0.0.1", str(port)),
        "postern-accept serves the socket systemd-socket-activate passed (sd_listen_fds)")
tap.ok(second.get("TCPREMOTEIP") == "127.0.0.1", "and keeps serving it: a second connection")
tap.ok("LISTEN_FDS" not in first and "LISTEN_PID" not in first,
       "the programs it starts do not inherit LISTEN_FDS/LISTEN_PID")
tap.like(log(d), rf"listening on 127\.0\.0\.1:{port} for service smtp", "the passed socket is logged")
tap.is_(tap.stop(p), 0, "SIGTERM stops it")

d = instance()
path = os.path.join(d, "smtpd.sock")
p = activate(d, ["-l", path], [ACCEPT, "-c", d] + USER + ["--", "/usr/bin/env"])
env = env_of(session(path, socket.AF_UNIX))
tap.is_((env.get("PROTO"), env.get("UNIXLOCALPATH")), ("UNIX", path),
        "a unix socket from systemd is served with the UCSPI unix variables")
tap.stop(p)
tap.ok(os.path.exists(path), "a socket systemd made is not removed by postern-accept")

# ---- Accept=yes: one activation per connection ----
d = instance()
port = tap.free_port()
p = activate(d, ["--accept", "--inetd", "-l", f"127.0.0.1:{port}"],
             [ACCEPT, "-i", "-c", d] + USER + ["--", "/usr/bin/env"])
env = env_of(session(("127.0.0.1", port)))
tap.is_((env.get("PROTO"), env.get("TCPREMOTEIP"), env.get("TCPLOCALPORT")),
        ("TCP", "127.0.0.1", str(port)),
        "--accept --inetd: postern-accept -i sets the UCSPI variables for the connection on fd 0/1")
tap.stop(p)

d = instance()
port = tap.free_port()
p = activate(d, ["--accept", "-l", f"127.0.0.1:{port}"],
             [ACCEPT, "-i", "-c", d] + USER + ["--", "/usr/bin/env"])
env = env_of(session(("127.0.0.1", port)))
tap.is_((env.get("TCPREMOTEIP"), "LISTEN_FDS" in env), ("127.0.0.1", False),
        "--accept without --inetd: the connection on fd 3 is moved to fd 0/1")
tap.stop(p)

# ---- postern-smtpd itself (once it is built) ----
if os.path.exists(SMTPD):
    d = instance("mynetworks = 127.0.0.0/8\n")
    port = tap.free_port()
    p = activate(d, ["--accept", "--inetd", "-l", f"127.0.0.1:{port}"], [SMTPD, "-c", d])
    session(("127.0.0.1", port), send=b"")  # wait until it listens
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            code, banner = smtp.ehlo("client.example")
            tap.is_(code, 250, "systemd-socket-activate --accept --inetd postern-smtpd: EHLO 250")
            tap.ok(smtp.noop()[0] == 250, "NOOP 250")
    except (OSError, smtplib.SMTPException) as e:
        tap.ok(False, f"smtplib session through systemd-socket-activate: {e}")
        tap.ok(False, "NOOP 250")
    tap.stop(p)

    d = instance("mynetworks = 127.0.0.0/8\n")
    port = tap.free_port()
    p = activate(d, ["-l", f"127.0.0.1:{port}"], [ACCEPT, "-c", d] + USER + ["--", SMTPD])
    banner = session(("127.0.0.1", port), send=b"QUIT\r\n")
    tap.like(banner, r"^220 mx\.example ESMTP", "postern-accept (socket from systemd) -> postern-smtpd: 220 banner")
    tap.stop(p)

    # keep running under socket activation: the smtpd zygote killed, the
    # socket systemd passed keeps being served (a dead postern-accept is the
    # unit's Restart=on-failure: t/48 checks the units say so; systemd as
    # PID 1 cannot run here)
    d = instance("mynetworks = 127.0.0.0/8\n")
    port = tap.free_port()
    p = activate(d, ["-l", f"127.0.0.1:{port}"], [ACCEPT, "-c", d] + USER + ["-z", "--", SMTPD])
    first = session(("127.0.0.1", port), send=b"QUIT\r\n")
    zygote = None
    end = time.time() + 5
    while not zygote and time.time() < end:
        m = re.search(r"zygote \S+ started as pid (\d+)", log(d))
        zygote = int(m.group(1)) if m else None
        time.sleep(0.05)
    if zygote:
        os.kill(zygote, 9)
    banners = [session(("127.0.0.1", port), send=b"QUIT\r\n") for i in range(10)]
    tap.ok(first and zygote and all(b and b.startswith("220 mx.example") for b in banners),
           "postern-accept -z under systemd-socket-activate: the zygote killed, "
           "every connection still gets its banner")
    tap.is_(p.poll(), None, "and postern-accept keeps the socket (it does not exit)")
    tap.stop(p)
else:
    tap.ok(False, "postern-smtpd is built (make check builds it)")
tap.done()
