#!/usr/bin/env python3
# postern-accept(8): binding IPv4, IPv6 and unix sockets, the UCSPI
# variables a connection's program sees, dropping privileges, the process
# limit, the per-client connection count and rate limits with Postfix's 421
# reply and log lines, their exemptions, and what SIGTERM and SIGQUIT do.
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402

ACCEPT = tap.prog("postern-accept")
AS_ROOT = os.geteuid() == 0
# as root, postern-accept must be told whom to run programs as
USER = ["-u", "nobody"] if AS_ROOT else []


def instance(extra=""):
    d = tap.tempdir()
    tap.write(os.path.join(d, "main.cf"),
              f"maillog_file = {d}/maillog\nmyhostname = mx.example\n{extra}")
    os.chmod(d, 0o755)
    return d


def log(d):
    try:
        with open(os.path.join(d, "maillog")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(cond, timeout=5.0):
    return tap.wait_until(cond, timeout)


def connect(addr, family=socket.AF_INET, timeout=5.0):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def read_all(s):
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def start_accept(d, addresses, program, options=(), env=None):
    argv = [ACCEPT, "-c", d] + list(options) + list(addresses) + ["--"] + list(program)
    p = tap.start(argv, env=env, stderr=open(os.path.join(d, "stderr"), "w"))
    return p


def wait_listening(p, addr, family=socket.AF_INET):
    def up():
        if p.poll() is not None:
            return True
        try:
            connect(addr, family, 0.5).close()
            return True
        except OSError:
            return False
    # a probe connection is served like any other; harmless for env/cat
    return wait_for(up) and p.poll() is None


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# ---- the UCSPI variables, IPv4 ----
d = instance()
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/usr/bin/env"], USER,
                 env={"TCPREMOTEHOST": "stale.example", "REMOTE_ADDR": "192.0.2.9"})
tap.ok(wait_listening(p, ("127.0.0.1", port)), "postern-accept listens on 127.0.0.1")
s = connect(("127.0.0.1", port))
client_port = s.getsockname()[1]
env = env_of(read_all(s))
s.close()
tap.is_(env.get("PROTO"), "TCP", "PROTO=TCP")
tap.is_(env.get("TCPREMOTEIP"), "127.0.0.1", "TCPREMOTEIP is the client's address")
tap.is_(env.get("TCPREMOTEPORT"), str(client_port), "TCPREMOTEPORT is the client's port")
tap.is_(env.get("TCPLOCALIP"), "127.0.0.1", "TCPLOCALIP is the address connected to")
tap.is_(env.get("TCPLOCALPORT"), str(port), "TCPLOCALPORT is the port connected to")
tap.is_(env.get("POSTERN_CONFIG_DIR"), d, "the program finds the configuration of -c")
tap.ok("TCPREMOTEHOST" not in env and "REMOTE_ADDR" not in env,
       "variables describing another connection are not passed on")
tap.like(log(d), rf"postern/accept\[\d+\]: listening on 127\.0\.0\.1:{port} for service smtp",
         "the listening address is logged")
tap.stop(p)

# ---- IPv6, and the connection is fd 0 and fd 1 of a real program ----
if socket.has_ipv6:
    try:
        port6 = tap.free_port("::1")
        have_v6 = True
    except OSError:
        have_v6 = False
else:
    have_v6 = False
if have_v6:
    d = instance()
    p = start_accept(d, [f"[::1]:{port6}"], ["/usr/bin/env"], USER)
    tap.ok(wait_listening(p, ("::1", port6), socket.AF_INET6), "postern-accept listens on [::1]")
    s = connect(("::1", port6), socket.AF_INET6)
    env = env_of(read_all(s))
    s.close()
    tap.is_((env.get("PROTO"), env.get("TCPREMOTEIP"), env.get("TCPLOCALIP"), env.get("TCPLOCALPORT")),
            ("TCP", "::1", "::1", str(port6)), "IPv6: PROTO, TCPREMOTEIP, TCPLOCALIP, TCPLOCALPORT")
    tap.stop(p)
else:
    tap.skip("no IPv6 loopback", 2)

# ---- a unix socket; privileges dropped ----
d = instance()
path = os.path.join(d, "smtp.sock")
port = tap.free_port()
p = start_accept(d, [path, f"127.0.0.1:{port}"], ["/usr/bin/env"], ["-u", "root"] if AS_ROOT else [])
tap.ok(wait_listening(p, path, socket.AF_UNIX), "postern-accept listens on a unix socket")
tap.is_(stat.S_IMODE(os.stat(path).st_mode), 0o666, "anyone may connect to the unix socket")
s = connect(path, socket.AF_UNIX)
env = env_of(read_all(s))
s.close()
tap.is_((env.get("PROTO"), env.get("UNIXLOCALPATH"), env.get("UNIXREMOTEEUID"),
         env.get("UNIXREMOTEEGID")),
        ("UNIX", path, str(os.geteuid()), str(os.getegid())),
        "unix socket: PROTO=UNIX, UNIXLOCALPATH, UNIXREMOTEEUID, UNIXREMOTEEGID")
tap.ok(env.get("UNIXREMOTEPID", "").isdigit(), "UNIXREMOTEPID is set")
tap.ok("TCPREMOTEIP" not in env, "no TCP variables on a unix socket")
tap.is_(tap.stop(p), 0, "SIGTERM: postern-accept exits 0")
tap.ok(not os.path.exists(path), "the unix socket it created is removed at exit")

if AS_ROOT:
    d = instance()
    port = tap.free_port()
    p = start_accept(d, [f"127.0.0.1:{port}"], ["/usr/bin/id"], ["-u", "nobody"])
    wait_listening(p, ("127.0.0.1", port))
    s = connect(("127.0.0.1", port))
    out = read_all(s).strip()
    s.close()
    tap.like(out, r"^uid=65534\(nobody\) gid=65534\(\w+\) groups=65534\(\w+\)$",
             "-u nobody: the program runs as nobody with no other groups")
    tap.stop(p)
    d = instance()
    r = tap.run([ACCEPT, "-c", d, f"127.0.0.1:{tap.free_port()}", "--", "/usr/bin/env"])
    tap.ok(r.returncode != 0 and "running as root: give -u USER" in log(d),
           "as root without -u, postern-accept refuses to start")
    r = tap.run([ACCEPT, "-c", d, "-u", "no-such-user-here", f"127.0.0.1:{tap.free_port()}",
                 "--", "/usr/bin/env"])
    tap.ok(r.returncode != 0 and "unknown user: no-such-user-here" in log(d), "-u: an unknown user is refused")
else:
    tap.skip("privilege drop needs root", 2)

# ---- the process limit: the next connection waits in the backlog ----
d = instance()
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER + ["-l", "2"])
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))


def echo(s, text=b"ping\n", timeout=3.0):
    s.settimeout(timeout)
    try:
        s.sendall(text)
        return s.recv(100)
    except (socket.timeout, OSError):
        return None


def echo_when_served(addr, timeout=5.0):
    """Connect and echo once postern-accept has seen a session end (it
    answers 421 until then); returns the connection and what came back."""
    end = time.time() + timeout
    while True:
        c = connect(addr)
        got = echo(c)
        if not (got or b"").startswith(b"421") or time.time() > end:
            return c, got
        c.close()
        time.sleep(0.02)


a = connect(("127.0.0.1", port))
b = connect(("127.0.0.1", port))
tap.ok(echo(a) == b"ping\n" and echo(b) == b"ping\n", "two connections served at -l 2")
c = connect(("127.0.0.1", port))
tap.is_(echo(c, timeout=0.7), None, "the third waits (not refused) while two are open")
a.close()
c.settimeout(5)
tap.is_(c.recv(100), b"ping\n", "the third is served as soon as one ends (its early line echoed)")
tap.like(log(d), r'warning: service "smtp" has reached its process limit "2"',
         "reaching the process limit is logged")
b.close()
c.close()
tap.stop(p)

# ---- connection count limit per client ----
REPLY = "421 4.7.0 mx.example Error: too many connections from 127.0.0.1\r\n"
d = instance("smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
b = connect(("127.0.0.1", port))
tap.ok(echo(a) == b"ping\n" and echo(b) == b"ping\n", "count limit 2: two connections served")
c = connect(("127.0.0.1", port))
tap.is_(read_all(c), REPLY, "the third from the same client gets Postfix's 421 4.7.0 and is closed")
c.close()
tap.like(log(d), r"postern/accept\[\d+\]: warning: Connection concurrency limit exceeded: 3 "
         r"from unknown\[127\.0\.0\.1\] for service smtp$",
         "logged as Postfix's smtpd logs it")
a.close()
c, got = echo_when_served(("127.0.0.1", port))
tap.is_(got, b"ping\n", "after one ends, the client may connect again")
b.close()
c.close()
tap.stop(p)

# ---- SIGHUP reads main.cf again ----
d = instance("smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
echo(a)
b = connect(("127.0.0.1", port))
first = read_all(b)
b.close()
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write("smtpd_client_connection_count_limit = 3\n")
p.send_signal(signal.SIGHUP)
wait_for(lambda: "reload:" in log(d))
b = connect(("127.0.0.1", port))
tap.ok(first == REPLY and echo(b) == b"ping\n", "SIGHUP: a raised count limit applies to new clients")
a.close()
b.close()
tap.stop(p)

# ---- exemptions: default $mynetworks has the loopback network ----
d = instance("smtpd_client_connection_count_limit = 1\nmynetworks = 127.0.0.0/8\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER + ["-s", "submission"])
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
b = connect(("127.0.0.1", port))
tap.ok(echo(a) == b"ping\n" and echo(b) == b"ping\n",
       "clients in $mynetworks (the default exceptions) are not limited")
a.close()
b.close()
tap.stop(p)

d = instance("smtpd_client_connection_count_limit = 1\nmynetworks = 127.0.0.0/8\n"
             "smtpd_client_event_limit_exceptions = !127.0.0.1, $mynetworks\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER + ["-s", "submission"])
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
echo(a)
b = connect(("127.0.0.1", port))
tap.is_(read_all(b), REPLY, "a negated item takes the client out of the exceptions")
tap.like(log(d), r"Connection concurrency limit exceeded: 2 from unknown\[127\.0\.0\.1\] "
         r"for service submission", "-s names the service in the log")
a.close()
b.close()
tap.stop(p)

cidr = os.path.join(tap.tempdir(), "exempt.cidr")
tap.write(cidr, "127.0.0.0/8 OK\n")
d = instance(f"smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions = cidr:{cidr}\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
b = connect(("127.0.0.1", port))
tap.ok(echo(a) == b"ping\n" and echo(b) == b"ping\n", "exceptions from a cidr: table")
a.close()
b.close()
tap.stop(p)

# ---- connection rate limit ----
d = instance("smtpd_client_connection_rate_limit = 3\nanvil_rate_time_unit = 60s\n"
             "smtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/usr/bin/env"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
answers = []
for i in range(5):
    s = connect(("127.0.0.1", port))
    answers.append(read_all(s))
    s.close()
tap.ok(all("TCPREMOTEIP=127.0.0.1" in a for a in answers[:3]), "rate limit 3: three connections served")
tap.is_(answers[3:], [REPLY, REPLY], "the fourth and fifth in the time unit get 421 4.7.0")
tap.like(log(d), r"warning: Connection rate limit exceeded: 4 from unknown\[127\.0\.0\.1\] "
         r"for service smtp", "the rate warning is Postfix's")
tap.stop(p)

d = instance("smtpd_client_connection_rate_limit = 2\nanvil_rate_time_unit = 1s\n"
             "smtpd_client_event_limit_exceptions =\n")
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/usr/bin/env"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
first = [read_all(connect(("127.0.0.1", port))) for i in range(3)]
time.sleep(2.2)
later = read_all(connect(("127.0.0.1", port)))
tap.ok(first[2] == REPLY and "TCPREMOTEIP" in later, "the rate window ends after anvil_rate_time_unit")
tap.stop(p)

# ---- SIGTERM leaves running sessions alone; SIGQUIT ends them ----
d = instance()
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
echo(a)
tap.is_(tap.stop(p), 0, "SIGTERM: postern-accept exits 0")
refused = False
try:
    connect(("127.0.0.1", port), timeout=1).close()
except ConnectionRefusedError:
    refused = True
tap.ok(refused, "after SIGTERM nothing listens")
tap.is_(echo(a, b"still\n"), b"still\n", "a session in progress goes on after SIGTERM (as s6-tcpserverd)")
a.close()
tap.like(log(d), r"stopping: 1 connection\(s\) still served", "the stop is logged with the sessions left")

d = instance()
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/cat"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
a = connect(("127.0.0.1", port))
echo(a)
p.send_signal(signal.SIGQUIT)
p.wait(5)
a.settimeout(3)
try:
    tail = a.recv(10)
except OSError:
    tail = b""
tap.is_(tail, b"", "SIGQUIT: the sessions' programs are stopped too")
a.close()

# ---- abnormal ends of a program are logged ----
d = instance()
port = tap.free_port()
p = start_accept(d, [f"127.0.0.1:{port}"], ["/bin/sh", "-c", "kill -SEGV $$"], USER)
wait_for(lambda: f"listening on 127.0.0.1:{port}" in log(d))
read_all(connect(("127.0.0.1", port)))
tap.ok(wait_for(lambda: "killed by signal 11" in log(d)),
       "a program killed by a signal is logged, as Postfix's master does")
tap.stop(p)

# ---- -i: the connection is already on fd 0 and 1 (inetd, Accept=yes) ----
d = instance()
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(1)
client = connect(listener.getsockname())
client_port = client.getsockname()[1]
served, _ = listener.accept()
proc = subprocess.run([ACCEPT, "-i", "-c", d] + USER + ["--", "/bin/sh", "-c", "id -un; env"],
                      stdin=served, stdout=served, stderr=subprocess.PIPE, timeout=10,
                      env=dict(os.environ, REMOTE_ADDR="192.0.2.9"))
served.close()
out = read_all(client)
client.close()
env = env_of(out)
tap.is_((proc.returncode, env.get("PROTO"), env.get("TCPREMOTEIP"), env.get("TCPREMOTEPORT"),
         env.get("TCPLOCALPORT")),
        (0, "TCP", "127.0.0.1", str(client_port), str(listener.getsockname()[1])),
        "-i: the UCSPI variables from getpeername/getsockname")
listener.close()
tap.ok("REMOTE_ADDR" not in env, "-i: systemd's REMOTE_ADDR gives way to TCPREMOTEIP")
if AS_ROOT:
    tap.is_(out.splitlines()[0] if out else "", "nobody", "-i -u nobody: the program runs as nobody")
else:
    tap.skip("privilege drop needs root")

# ---- -z: the program started once and forked per connection ----
# beside bin/ (t/run-tests may run copies of both, which nobody can reach)
CHILD = os.path.join(os.path.dirname(tap.BIN), "t", "accept_child")
if not os.path.exists(CHILD):
    tap.ok(False, f"-z: {CHILD} is built (make check builds it)")
else:
    # a limit above the three connections below: under load a child may not
    # have been reported ended when the next connection arrives
    d = instance("smtpd_client_connection_count_limit = 10\nsmtpd_client_event_limit_exceptions =\n")
    port = tap.free_port()
    p = start_accept(d, [f"127.0.0.1:{port}"], [CHILD, "env"], USER + ["-z"])
    tap.ok(wait_for(lambda: "zygote" in log(d)), "-z: the zygote is started")
    zygote = re.search(r"zygote \S+ started as pid (\d+)", log(d))
    envs = []
    for i in range(3):
        s = connect(("127.0.0.1", port))
        envs.append((env_of(read_all(s)), s.getsockname()[1]))
        s.close()
    tap.ok(zygote and all(e.get("ppid") == zygote.group(1) for e, _ in envs),
           "-z: each connection is served by a child forked from the zygote")
    tap.is_(len({e.get("pid") for e, _ in envs}), 3, "-z: one process per connection")
    e, cport = envs[-1]
    tap.is_((e.get("PROTO"), e.get("TCPREMOTEIP"), e.get("TCPREMOTEPORT"), e.get("TCPLOCALPORT")),
            ("TCP", "127.0.0.1", str(cport), str(port)), "-z: the UCSPI variables of its own connection")
    tap.ok("POSTERN_ZYGOTE_FD" not in e, "-z: the child does not see the zygote's descriptor variable")
    tap.stop(p)

    d = instance("smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions =\n")
    port = tap.free_port()
    p = start_accept(d, [f"127.0.0.1:{port}"], [CHILD, "wait"], USER + ["-z"])
    wait_for(lambda: "zygote" in log(d))
    a = connect(("127.0.0.1", port))
    b = connect(("127.0.0.1", port))
    tap.ok(echo(a) == b"ping\n" and echo(b) == b"ping\n", "-z: two sessions served")
    c = connect(("127.0.0.1", port))
    tap.is_(read_all(c), REPLY, "-z: the count limit answers 421 at the configured number")
    c.close()
    a.close()
    c, got = echo_when_served(("127.0.0.1", port))
    tap.is_(got, b"ping\n", "-z: a session's end (reported by the zygote) frees its place")
    zygote_pid = int(re.search(r"zygote \S+ started as pid (\d+)", log(d)).group(1))
    tap.is_(tap.stop(p), 0, "-z: SIGTERM stops postern-accept")
    tap.is_(echo(b, b"still\n"), b"still\n", "-z: sessions in progress go on after SIGTERM")
    tap.ok(wait_for(lambda: not os.path.exists(f"/proc/{zygote_pid}") or
                    open(f"/proc/{zygote_pid}/stat").read().split()[2] == "Z"),
           "-z: the zygote exits when postern-accept stops")
    b.close()
    c.close()

    # a dead zygote is replaced without closing the port: connections
    # meanwhile get a program of their own, none is refused
    d = instance()
    port = tap.free_port()
    p = start_accept(d, [f"127.0.0.1:{port}"], [CHILD, "wait"], USER + ["-z"])
    wait_for(lambda: "zygote" in log(d))
    a = connect(("127.0.0.1", port))
    tap.is_(echo(a), b"ping\n", "-z: a session before the zygote dies")
    os.kill(int(re.search(r"zygote \S+ started as pid (\d+)", log(d)).group(1)), signal.SIGKILL)
    answers = []
    for i in range(20):
        try:
            s = connect(("127.0.0.1", port))
            answers.append(echo(s))
            s.close()
        except OSError as e:
            answers.append(repr(e))
    tap.is_(answers, [b"ping\n"] * 20,
            "-z: when the zygote dies, every connection is still served (none refused)")
    tap.ok(wait_for(lambda: len(re.findall(r"zygote \S+ started as pid", log(d))) == 2),
           "-z: postern-accept starts a new zygote")
    tap.like(log(d), r"zygote .* (ended|closed its socket|cannot be reached)", "and says why")
    tap.is_(echo(a, b"still\n"), b"still\n", "-z: a session of the dead zygote goes on")
    a.close()
    s = connect(("127.0.0.1", port))
    tap.is_(echo(s), b"ping\n", "-z: the new zygote serves")
    s.close()
    tap.is_(p.poll(), None, "-z: postern-accept keeps running")
    tap.stop(p)

# ---- -p: a pid file written once the sockets listen, removed at exit ----
d = instance()
port = tap.free_port()
pid_path = os.path.join(d, "accept.pid")
p = start_accept(d, [f"127.0.0.1:{port}"], ["/usr/bin/env"], (["-u", "root"] if AS_ROOT else []) + ["-p", pid_path])
p_ok = wait_for(lambda: os.path.exists(pid_path))
tap.ok(p_ok and open(pid_path).read() == f"{p.pid}\n", "-p: the pid file holds postern-accept's pid")
s = connect(("127.0.0.1", port))
tap.like(read_all(s), r"TCPREMOTEIP=127\.0\.0\.1", "and it is listening when the file appears")
s.close()
tap.stop(p)
tap.ok(not os.path.exists(pid_path), "-p: the pid file is removed at exit")

# ---- command line errors ----
d = instance()
r = tap.run([ACCEPT, "-c", d] + USER + ["127.0.0.1", "--", "/usr/bin/env"])
tap.ok(r.returncode != 0 and "expected host:port" in log(d), "an address without a port is refused")
r = tap.run([ACCEPT, "-c", d] + USER + ["::1:25", "--", "/usr/bin/env"])
tap.ok(r.returncode != 0 and "brackets" in log(d), "an IPv6 address without brackets is refused")
r = tap.run([ACCEPT, "-c", d] + USER + [f"127.0.0.1:{tap.free_port()}", "--", "no-such-program-x"])
tap.ok(r.returncode != 0 and "no-such-program-x: not found in PATH" in log(d),
       "a program that does not exist is refused at start")
r = tap.run([ACCEPT, "-c", d] + USER + ["--", "/usr/bin/env"])
tap.ok(r.returncode != 0 and "no sockets from systemd" in log(d),
       "no address and no sockets from systemd: a clear error")
r = tap.run([ACCEPT, "-c", d] + USER + [f"127.0.0.1:{tap.free_port()}"])
tap.ok(r.returncode == 2 and "usage:" in r.stderr, "no program: usage")
tap.done()
