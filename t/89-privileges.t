#!/usr/bin/env python3
# Least privilege as root (issue 10): `postern start` run by root runs every
# daemon as the user doc/privileges.md gives it, and only the supervisor
# stays root.  Every process of a started instance is checked through
# /proc/PID/status (real, effective, saved and file-system ids, and the
# supplementary groups): the queue service as queue_service_user with
# setgid_group, qmgr and its runner as mail_owner (+ setgid_group),
# postern-accept, the smtpd zygote and a live SMTP session as smtpd_user
# without setgid_group.  Then, as the smtpd user, the queue: no queue can be
# listed, a queued message cannot be read, nothing can be written into
# incoming/.  (The users are the base-passwd ones of t/lib/instance.py.)
import grp
import os
import pwd
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from instance import NEEDED, ROOT_USERS, Instance  # noqa: E402

if os.geteuid() != 0:
    tap.skip_all("the daemons change users only when postern start runs as root")
tap.require(programs=("postern-accept", "postern-smtpd") + tuple(NEEDED))

owner = pwd.getpwnam(ROOT_USERS["mail_owner"])
smtpd_user = pwd.getpwnam(ROOT_USERS["smtpd_user"])
service_user = pwd.getpwnam(ROOT_USERS["queue_service_user"])
drop = grp.getgrnam(ROOT_USERS["setgid_group"]).gr_gid

# mail for other domains goes to a port where nothing listens: it is
# refused at once and stays deferred (no DNS, no network)
inst = Instance("-o", f"relayhost=[127.0.0.1]:{tap.free_port()}")
tap.is_(inst.init.returncode, 0, "postern init")
port = int(open(os.path.join(inst.dir, "master.cf")).read().split("127.0.0.1:")[1].split()[0])
r = inst.start()
tap.is_(r.returncode, 0, "postern start as root") or tap.diag(r.stdout + r.stderr)

# a message delivered (qmgr's runner stays for max_idle) and one that stays
# queued (the relayhost refuses: deferred), then a session left open
r = inst.sendmail(["alice@localhost"], b"Subject: one\n\nx\n")
tap.is_(r.returncode, 0, "root's sendmail queues a message")
tap.ok(inst.wait_for("alice", 1), "delivered by qmgr's runner")
r = inst.sendmail(["someone@example.org"], b"Subject: stays\n\ny\n")
end = time.time() + 15
while time.time() < end and not inst.queue_counts()["deferred"]:
    time.sleep(0.1)
tap.ok(inst.queue_counts()["deferred"] >= 1, "a message for a remote domain stays in deferred/")
session = socket.create_connection(("127.0.0.1", port), timeout=10)
tap.like(session.recv(512).decode(), r"^220 ", "an SMTP session is open")


def status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def processes():
    """{pid: (comm, status)} of every live process of the instance: those
    whose command line names it, and their descendants."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = status(int(d))
            cmd = open(f"/proc/{d}/cmdline", "rb").read()
        except OSError:
            continue
        if st.get("State", ["?"])[0] == "Z":
            continue
        table[int(d)] = (st["Name"][0], st, cmd, int(st["PPid"][0]))
    ours = {p for p, (_, _, cmd, _) in table.items() if inst.dir.encode() in cmd}
    grew = True
    while grew:
        grew = False
        for p, (_, _, _, ppid) in table.items():
            if ppid in ours and p not in ours:
                ours.add(p)
                grew = True
    return {p: table[p][:2] for p in ours}


def ids(st, key):
    return [int(x) for x in st[key]]


expected = {
    # comm: (uid, gid, groups that must be there, groups that must not)
    "postern-queue": (service_user.pw_uid, drop, {drop}, set()),
    "postern-qmgr": (owner.pw_uid, owner.pw_gid, {drop}, set()),
    "postern-virtual": (owner.pw_uid, owner.pw_gid, {drop}, set()),
    "postern-accept": (smtpd_user.pw_uid, smtpd_user.pw_gid, set(), {drop}),
    "postern-smtpd": (smtpd_user.pw_uid, smtpd_user.pw_gid, set(), {drop}),
}
procs = processes()
seen = {}
for pid, (comm, st) in sorted(procs.items()):
    seen.setdefault(comm, []).append(pid)
tap.diag("processes: " + ", ".join(f"{c} x{len(p)}" for c, p in sorted(seen.items())))
tap.ok(len(seen.get("postern-smtpd", [])) >= 2, "the smtpd zygote and the open session are there")
tap.ok(all(c in seen for c in expected), "the queue service, qmgr, its runner and postern-accept are there")
root_ones = [(p, c) for p, (c, st) in procs.items() if 0 in ids(st, "Uid") or 0 in ids(st, "Gid")]
tap.is_(sorted(c for _, c in root_ones), ["filekeeper", "postern-supervi"],
        "no process runs with a root uid or gid but the supervisor and the zygote's file keeper")
keeper = [p for p, c in root_ones if c == "filekeeper"]
zygotes = set(seen.get("postern-smtpd", []))
tap.ok(keeper and int(procs[keeper[0]][1]["PPid"][0]) in zygotes,
       "the file keeper is the smtpd zygote's child (it reopens the TLS key for a reload)")
for comm, (uid, gid, need, forbid) in expected.items():
    good = True
    for pid in seen.get(comm, []):
        st = procs[pid][1]
        groups = set(ids(st, "Groups"))
        if set(ids(st, "Uid")) != {uid} or set(ids(st, "Gid")) != {gid} \
                or not need <= groups or groups & forbid:
            good = False
            tap.diag(f"{comm} pid {pid}: Uid {st['Uid']} Gid {st['Gid']} Groups {st['Groups']}")
    user = pwd.getpwuid(uid).pw_name
    tap.ok(good and seen.get(comm),
           f"{comm}: real, effective, saved and fs uid {user}, gid {gid}"
           + (f", with setgid_group" if need else ", without setgid_group"))
cap = [(c, st["CapEff"][0]) for p, (c, st) in procs.items() if c not in ("postern-supervi", "filekeeper")
       and int(st["CapEff"][0], 16) != 0]
tap.is_(cap, [], "none of them has an effective capability")
tap.is_([(procs[p][1]["CapEff"][0], procs[p][1]["CapPrm"][0], procs[p][1]["NoNewPrivs"][0]) for p in keeper],
        [("0000000000000004", "0000000000000004", "1")],
        "the file keeper: no capability but CAP_DAC_READ_SEARCH, and no_new_privs")


def as_smtpd_user(fn):
    """Run fn() in a child with the smtpd user's uid, gid and groups;
    returns what it returned (a short string)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(smtpd_user.pw_gid)
            os.setuid(smtpd_user.pw_uid)
            out = fn()
        except BaseException as e:     # noqa: B902 - the child reports everything
            out = "error " + repr(e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


queue = os.path.join(inst.dir, "queue")
deferred = [f for f in os.listdir(os.path.join(queue, "deferred")) if not f.startswith(".")]


def try_list():
    out = []
    for q in ("incoming", "active", "deferred", "hold", "corrupt", "recycle", "pid"):
        try:
            os.listdir(os.path.join(queue, q))
            out.append(f"{q}:listed")
        except PermissionError:
            out.append(f"{q}:denied")
    return " ".join(out)


def try_read():
    try:
        open(os.path.join(queue, "deferred", deferred[0]), "rb").read()
        return "read"
    except PermissionError:
        return "denied"


def try_write():
    try:
        open(os.path.join(queue, "incoming", "intruder"), "wb").close()
        return "written"
    except PermissionError:
        return "denied"


tap.is_(as_smtpd_user(try_list), " ".join(f"{q}:denied" for q in (
    "incoming", "active", "deferred", "hold", "corrupt", "recycle", "pid")),
    "the smtpd user cannot list any queue")
tap.is_(as_smtpd_user(try_read) if deferred else "no file", "denied",
        "nor read a queued message by its path")
tap.is_(as_smtpd_user(try_write), "denied", "nor create a file in incoming/")
session.close()
r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.done()
