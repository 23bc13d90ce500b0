#!/usr/bin/env python3
# Privileged runners behind a socket (DESIGN interface 4, postern-spawn(8)):
# a transport of privileged_transports is reached through the runner service
# on queue_directory/private/TRANSPORT instead of being started by qmgr.
#
# As root, a system-style install in a temporary directory: the queue and
# qmgr belong to an unprivileged mail_owner the test creates, postern-spawn
# runs as root, and postern-virtual writes each Maildir as the uid and gid
# virtual_uid_maps and virtual_gid_maps give (two users the test creates);
# qmgr holds no capability; uid 0 from a table is refused as Postfix's
# virtual(8) refuses it; a peer that is not mail_owner gets no runner.
# As anyone, a self-contained instance with privileged_transports runs the
# service through `postern start` and delivers through it.
import atexit, glob, os, pwd, re, shutil, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from qmgrtest import Instance, all_clean
import instance as inst_mod

require(["postern-spawn", "postern-virtual", "postern-qmgr"])

ROOT = os.geteuid() == 0


def wait(cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def proc_status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.split()
    return fields


# ---- as root: a system-style install ------------------------------------
def system_install():
    tag = "%05d" % (os.getpid() % 100000)
    users = {"owner": f"pmo{tag}", "a": f"pva{tag}", "b": f"pvb{tag}"}
    created = []

    def remove_users():
        for name in created:
            subprocess.run(["userdel", "-f", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    atexit.register(remove_users)
    for name in users.values():
        r = subprocess.run(["useradd", "-r", "-M", "-U", "-s", "/usr/sbin/nologin", name],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            ok(False, f"useradd {name}: {r.stdout.decode(errors='replace')}")
            return
        created.append(name)
    pw = {k: pwd.getpwnam(v) for k, v in users.items()}
    owner = pw["owner"]
    ok(len({p.pw_uid for p in pw.values()}) == 3 and all(p.pw_uid != 0 for p in pw.values()),
       "three new unprivileged users: mail_owner and two mailbox owners")

    inst = Instance(f"""mail_owner = {users['owner']}
setgid_group = {users['owner']}
virtual_transport = virtual
virtual_mailbox_domains = example.com
privileged_transports = virtual
""", runners=())
    os.chmod(inst.dir, 0o755)
    base = os.path.join(inst.dir, "mail")
    os.makedirs(os.path.join(base, "example.com"))
    for k in ("a", "b"):
        d = os.path.join(base, "example.com", k)
        os.makedirs(d)
        os.chown(d, pw[k].pw_uid, pw[k].pw_gid)
        os.chmod(d, 0o700)
    os.makedirs(os.path.join(base, "example.com", "r"))
    write(os.path.join(inst.dir, "vmailbox"),
          "a@example.com example.com/a/\nb@example.com example.com/b/\n"
          "r@example.com example.com/r/\n")
    write(os.path.join(inst.dir, "vuid"),
          f"a@example.com {pw['a'].pw_uid}\nb@example.com {pw['b'].pw_uid}\nr@example.com 0\n")
    write(os.path.join(inst.dir, "vgid"),
          f"a@example.com {pw['a'].pw_gid}\nb@example.com {pw['b'].pw_gid}\nr@example.com 0\n")
    with open(os.path.join(inst.dir, "main.cf"), "a") as f:
        f.write(f"virtual_mailbox_base = {base}\n"
                f"virtual_mailbox_maps = texthash:{inst.dir}/vmailbox\n"
                f"virtual_uid_maps = texthash:{inst.dir}/vuid\n"
                f"virtual_gid_maps = texthash:{inst.dir}/vgid\n")
    os.symlink(os.path.abspath(prog("postern-virtual")),
               os.path.join(inst.libexec, "postern-virtual"))
    # the queue belongs to mail_owner, as `postern queue init` makes it
    r = run(["postern", "queue", "-c", inst.dir, "init"])
    is_(r.returncode, 0, "postern queue init as root") or diag(r.stderr)
    private = os.stat(os.path.join(inst.queue, "private"))
    is_((private.st_uid, private.st_mode & 0o777), (owner.pw_uid, 0o700),
        "it makes private/ for mail_owner, 0700 (a socket unit then finds it so)")
    data = os.stat(os.path.join(inst.dir, "data"))
    is_((data.st_uid, data.st_gid, data.st_mode & 0o777), (owner.pw_uid, owner.pw_gid, 0o700),
        "and data_directory for mail_owner, 0700 (the verify cache, TLS-RPT records), as Postfix's /var/lib/postfix")
    write(inst.log, "")
    os.chown(inst.log, owner.pw_uid, owner.pw_gid)

    # the service, as root
    stderr = open(os.path.join(inst.dir, "spawn.stderr"), "ab")
    service = start([prog("postern-spawn"), "-c", inst.dir, "virtual"], stderr=stderr)
    sock = os.path.join(inst.queue, "private", "virtual")
    spawn_pid = os.path.join(inst.queue, "pid", "spawn.virtual.pid")

    def service_ready():
        try:
            return open(spawn_pid).read().strip() == str(service.pid)
        except OSError:
            return False
    if not ok(wait(lambda: service_ready() or service.poll() is not None)
              and service.poll() is None and os.path.exists(sock),
              "postern-spawn listens on queue_directory/private/virtual"):
        diag(open(os.path.join(inst.dir, "spawn.stderr"), errors="replace").read()
             + inst.logtext())
        return
    st = os.stat(sock)
    is_((st.st_uid, st.st_mode & 0o777), (owner.pw_uid, 0o600),
        "its socket belongs to mail_owner, mode 0600")
    is_(os.stat(os.path.dirname(sock)).st_mode & 0o777, 0o700, "in private/, mode 0700")

    # qmgr as mail_owner, no capability
    inst.proc = start(["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                       "--clear-groups", "--", prog("postern-qmgr"), "-c", inst.dir],
                      stderr=open(os.path.join(inst.dir, "stderr"), "ab"))
    pidfile = os.path.join(inst.queue, "pid", "qmgr.pid")

    def qmgr_ready():
        try:
            return open(pidfile).read().strip() == str(inst.proc.pid)
        except OSError:
            return False
    ok(wait(lambda: qmgr_ready() or inst.proc.poll() is not None) and inst.proc.poll() is None,
       "qmgr runs as mail_owner (its pid file names it)")
    is_(open(f"/proc/{inst.proc.pid}/comm").read().strip(), "postern-qmgr", "the process is qmgr itself")
    status = proc_status(inst.proc.pid)
    is_(status["Uid"], [str(owner.pw_uid)] * 4, "qmgr's real, effective, saved and fs uid are mail_owner's")
    is_((status["CapEff"], status["CapPrm"], status["CapAmb"]), (["0000000000000000"],) * 3,
        "qmgr holds no capability (effective, permitted, ambient)")

    body = "From: c@example.org\nSubject: privileged\n\nhello\n"
    good = [inst.inject("c@example.org", ["a@example.com", "b@example.com"], body=body)
            for _ in range(2)]
    bad = inst.inject("c@example.org", ["r@example.com"], body=body)
    for q in good + [bad]:
        os.chown(os.path.join(inst.queue, "incoming", q), owner.pw_uid, owner.pw_gid)
    inst.poke()
    ok(all(inst.wait_log(rf"{q}: removed$", 15) for q in good), "both messages are delivered")
    log = inst.logtext()
    like(log, rf"{good[0]}: to=<a@example.com>, relay=virtual, .*dsn=2\.0\.0, status=sent \(delivered to maildir\)",
         "logged as Postfix's virtual(8)")
    for k in ("a", "b"):
        files = glob.glob(os.path.join(base, "example.com", k, "new", "*"))
        is_(len(files), 2, f"two messages in {k}'s Maildir")
        owners = {(os.stat(f).st_uid, os.stat(f).st_gid) for f in files}
        is_(owners, {(pw[k].pw_uid, pw[k].pw_gid)},
            f"owned by the uid and gid the tables give for {k}@example.com")
        is_(os.stat(os.path.join(base, "example.com", k, "new")).st_uid, pw[k].pw_uid,
            f"as is the Maildir {k} made")
    ok(inst.wait_log(rf"{bad}: to=<r@example.com>, relay=virtual, .*dsn=4\.3\.5, status=deferred \(mail system configuration error\)"),
       "uid 0 from virtual_uid_maps is refused (deferred 4.3.5, as Postfix's virtual_minimum_uid >= 1)")
    like(inst.logtext(), r"recipient r@example.com: bad uid 0 in virtual_uid_maps",
         "with Postfix's warning")
    is_(os.listdir(os.path.join(base, "example.com", "r")), [], "and nothing written as root")

    runners = [int(p) for p in os.listdir("/proc") if p.isdigit()
               and os.path.exists(f"/proc/{p}/stat")
               and open(f"/proc/{p}/stat").read().split(") ")[1].split()[1] == str(service.pid)]
    ok(len(runners) >= 1, "the runner is the service's child, not qmgr's")
    if runners:
        st = proc_status(runners[0])
        is_(st["Uid"][1], "0", "and between deliveries its effective uid is root's again")

    # a peer that is not mail_owner (root here) gets no runner
    before = len(runners)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock)
    c.settimeout(10)
    is_(c.recv(10), b"", "a connection from root (not mail_owner) is closed at once")
    c.close()
    ok(inst.wait_log(rf"refused a connection from uid 0 pid {os.getpid()}: not mail_owner {users['owner']}"),
       "and the refusal is logged with the peer's uid and pid")
    probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('EACCES')\n")
    r = run(["setpriv", f"--reuid={pw['a'].pw_uid}", f"--regid={pw['a'].pw_gid}", "--clear-groups",
             "--", sys.executable, "-c", probe, sock])
    is_(r.stdout.strip(), "EACCES", "another user cannot even reach the socket (private/ is 0700)")

    code = inst.stop()
    is_(code, 0, "qmgr stops cleanly")
    ok(wait(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and int(p) in runners]),
       "its runners end when qmgr closes their channels")
    is_(stop(service), 0, "the service stops on SIGTERM with exit 0")
    ok(not os.path.exists(sock), "and removes its socket")


if ROOT:
    system_install()
else:
    print("# SKIP the system-style install needs root (useradd, setpriv); the instance part runs")

# ---- qmgr's side of a runner behind a service: failures --------------
def failures():
    me = pwd.getpwuid(os.getuid()).pw_name
    inst = Instance(f"mail_owner = {me}\nprivileged_transports = tvirt\ntvirt_time_limit = 2s\n"
                    "virtual_mailbox_domains = v.example\n",
                    runners=("tvirt",))
    # a private/ that others may write in, or that is a link, is refused:
    # whoever can write there can put another socket where qmgr connects
    priv = os.path.join(inst.queue, "private")
    os.makedirs(priv, 0o700)
    os.chmod(priv, 0o777)
    r = run([prog("postern-spawn"), "-c", inst.dir, "tvirt"], timeout=30)
    ok(r.returncode == 75 and re.search(r"private has mode 0777: group and others must have no access",
                                        r.stderr + inst.logtext()),
       "postern-spawn refuses a private/ of mode 0777") or diag(r.stderr)
    os.rmdir(priv)
    os.symlink(tempdir(), priv)
    r = run([prog("postern-spawn"), "-c", inst.dir, "tvirt"], timeout=30)
    ok(r.returncode == 75 and re.search(r"private is not a directory", r.stderr + inst.logtext()),
       "and a private/ that is a symbolic link") or diag(r.stderr)
    os.unlink(priv)
    os.makedirs(priv, 0o700)
    stderr = open(os.path.join(inst.dir, "spawn.stderr"), "ab")
    sock = os.path.join(inst.queue, "private", "tvirt")
    # as a unit with Accept=no starts it: the listening socket on fd 3
    activate = shutil.which("systemd-socket-activate")
    if activate:
        service = start([activate, "-l", sock, prog("postern-spawn"), "-c", inst.dir, "tvirt"],
                        stderr=stderr)
    else:
        print("# SKIP systemd-socket-activate is not installed: the service binds its socket")
        service = start([prog("postern-spawn"), "-c", inst.dir, "tvirt"], stderr=stderr)
    ok(wait(lambda: os.path.exists(sock)), "a service for the fake runner tvirt")
    inst.start()
    q = inst.inject("s@example.org", ["fine@v.example"])
    inst.poke()
    ok(inst.wait_log(rf"{q}: to=<fine@v.example>, relay=tvirt, .*status=sent \(delivered by fake\)"),
       "the fake runner answers through the service")
    runs = inst.runs()
    ok(runs and runs[-1]["args"][:1] == ["-S"], "it was started in reuse mode (-S)")
    if activate:
        like(inst.logtext(), r"postern/spawn\[\d+\]: tvirt: ready on the socket systemd passed",
             "on the socket systemd-socket-activate passed")
    q = inst.inject("s@example.org", ["crash@v.example"])
    inst.poke()
    ok(inst.wait_log(rf"{q}: to=<crash@v.example>, relay=tvirt, .*status=deferred \(delivery agent postern-tvirt behind {re.escape(sock)} ended without a result\)"),
       "a runner that dies mid-request: its recipients are deferred")
    q = inst.inject("s@example.org", ["hang@v.example"])
    inst.poke()
    ok(inst.wait_log(rf"{q}: to=<hang@v.example>, relay=tvirt, .*status=deferred \(delivery agent postern-tvirt exceeded its time limit \(2s\)\)", 15),
       "a runner past tvirt_time_limit: deferred, its channel closed")
    like(inst.logtext(), rf"{q}: closing the channel to \S+/postern-tvirt behind {re.escape(sock)}: time limit exceeded",
         "qmgr says it closed the channel (there is no pid of its own to kill)")
    ok(inst.proc.poll() is None, "and qmgr, which sends it no signal, is still running")
    q = inst.inject("s@example.org", ["again@v.example"])
    inst.poke()
    ok(inst.wait_log(rf"{q}: to=<again@v.example>, relay=tvirt, .*status=sent"),
       "the next delivery takes a new runner")
    is_(stop(service), 0, "the service stops")
    q = inst.inject("s@example.org", ["later@v.example"])
    inst.poke()
    ok(inst.wait_log(rf"{q}: to=<later@v.example>, relay=none, .*status=deferred \(cannot connect to the runner service {re.escape(sock)}: (No such file or directory|Connection refused)\)"),
       "without the service the batch is deferred, naming the socket") or diag(inst.logtext()[-1500:])
    is_(inst.stop(), 0, "qmgr stops cleanly")


failures()

# ---- a self-contained instance: postern start runs the service ---------
missing = inst_mod.missing_programs()
if missing:
    ok(False, f"programs missing for the instance part: {missing}")
else:
    inst = inst_mod.Instance()
    is_(inst.init.returncode, 0, "postern init")
    r = inst.postern("conf", "-e", "privileged_transports = virtual")
    is_(r.returncode, 0, "privileged_transports = virtual")
    r = inst.start()
    out = r.stdout
    is_(r.returncode, 0, "postern start")
    like(out, r"started the runner service virtual \(pid \d+\)", "starts the runner service")
    r = inst.postern("status")
    like(r.stdout, r"runner service virtual: running \(pid \d+\)",
         "postern status reports it")
    r = inst.sendmail(["you@localhost"], b"Subject: through the service\n\nhello\n")
    is_(r.returncode, 0, "sendmail queues a message")
    got = inst.wait_for("you")
    is_(len(got), 1, "delivered through the runner service")
    like(inst.log(), r"postern/spawn\[\d+\]: virtual: ready on .*/private/virtual", "the service logged it was ready")
    r = inst.stop()
    out = r.stdout
    is_(r.returncode, 0, "postern stop")
    like(out, r"stopped the runner service virtual", "stops the service too")

ok(all_clean(), "qmgr stopped cleanly")

# as root, the parts above also run as a normal user (nobody), where the
# service runs as that user and has no ids to switch
if ROOT:
    # nobody may not reach the source tree (a clone in /root is 0700): it
    # runs a copy of this test and t/lib (t/run-tests copies the programs)
    import shutil
    copy = tempdir()
    os.chmod(copy, 0o755)
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copytree(os.path.join(here, "lib"), os.path.join(copy, "lib"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = os.path.join(copy, os.path.basename(__file__))
    shutil.copy(os.path.abspath(__file__), script)
    r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
             sys.executable, script], timeout=120, cwd=copy)
    ok(r.returncode == 0 and "not ok" not in r.stdout and "1.." in r.stdout,
       "the same instance tests pass as nobody") or diag(r.stdout[-3000:] + r.stderr[-2000:])
done()
