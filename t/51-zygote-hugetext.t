#!/usr/bin/env python3
# The smtpd zygote moves its code and constants into transparent huge
# pages (lib/util/hugetext.h), which the children it forks share: a TLS
# session then touches a few huge pages instead of ~1,000 small ones.
# Checked from /proc: the zygote's code is an anonymous read+exec mapping
# with huge pages, its constants and RELRO data read-only huge pages, a
# waiting child maps the same huge pages, nothing of it is writable, and
# STARTTLS and plain sessions work from the moved code, also under the
# rule of systemd's MemoryDenyWriteExecute (the code is then copied
# through /proc/self/mem).  POSTERN_HUGETEXT=0 leaves the program's file
# mappings as they were.  On a machine whose transparent huge pages are
# off, or in a dynamically linked build (SANITIZE=1), nothing is moved.
import ctypes
import os
import re
import smtplib
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import smtpdtest  # noqa: E402
import tap  # noqa: E402
from testca import TestCA  # noqa: E402

ACCEPT = tap.prog("postern-accept")
SMTPD = tap.prog("postern-smtpd")
tap.require(["postern-accept", "postern-smtpd"], tools=["openssl"])
USER = ["-u", "nobody"] if os.geteuid() == 0 else []
with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
    setting = f.read()
THP = "[always]" in setting or "[madvise]" in setting

cadir = tap.tempdir()
os.chmod(cadir, 0o755)
cert, key = TestCA(cadir).issue("mx.example")
os.chmod(key, 0o644)        # smtpd reads it as nobody in this test


def start(env=None, preexec_fn=None):
    """postern-accept -z with STARTTLS; (dir, port, zygote pid)."""
    d = smtpdtest.accept_dir(f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\n"
                             f"smtpd_tls_key_file = {key}\n")
    port = tap.free_port()
    tap.start([ACCEPT, "-c", d] + USER + ["-z", f"127.0.0.1:{port}", "--", SMTPD, "-c", d],
              stderr=open(os.path.join(d, "stderr"), "w"), env=env, preexec_fn=preexec_fn)
    tap.wait_until(lambda: "listening on" in smtpdtest.maillog(d), 10)
    m = re.search(r"zygote \S+ started as pid (\d+)", smtpdtest.maillog(d))
    return d, port, int(m.group(1)) if m else 0


def mappings(pid):
    """(range, perms, path, AnonHugePages kB) of each mapping of a process."""
    out = []
    with open(f"/proc/{pid}/smaps") as f:
        text = f.read()
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        head = block.split("\n", 1)[0].split()
        huge = re.search(r"^AnonHugePages:\s+(\d+)", block, re.M)
        out.append((head[0], head[1], " ".join(head[5:]), int(huge.group(1)) if huge else 0))
    return out


def children(pid):
    """The zygote's children of its own user (not the TLS file keeper,
    which stays root)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return [k for k in kids if os.path.exists(f"/proc/{k}") and os.stat(f"/proc/{k}").st_uid == os.stat(f"/proc/{pid}").st_uid]


def thp_refusals():
    """How often this machine's kernel could not give a huge page at a
    fault (all processes): under memory fragmentation it falls back to
    small pages, which smtpd cannot change."""
    with open("/proc/vmstat") as f:
        return sum(int(v) for k, v in (line.split() for line in f) if k == "thp_fault_fallback")


def advised_kb(pid, perms_wanted):
    """kB of anonymous mappings with these permissions that smtpd asked
    huge pages for (VmFlags hg)."""
    with open(f"/proc/{pid}/smaps") as f:
        text = f.read()
    total = 0
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        head = block.split("\n", 1)[0].split()
        size = re.search(r"^Size:\s+(\d+)", block, re.M)
        flags = re.search(r"^VmFlags:(.*)$", block, re.M)
        if len(head) == 5 and head[1] == perms_wanted and size and flags and " hg" in flags.group(1):
            total += int(size.group(1))
    return total


def executable_huge(pid):
    """kB of huge pages in executable anonymous mappings."""
    return sum(h for _, perms, path, h in mappings(pid) if "x" in perms and not path)


def sessions_work(port, what):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example")
        tap.ok(s.has_extn("starttls"), f"{what}: STARTTLS offered")
        tap.is_(s.starttls(context=context)[0], 220, f"{what}: STARTTLS")
        tap.is_(s.ehlo("client.example")[0], 250, f"{what}: EHLO inside TLS")
        tap.is_(s.mail("a@example.org")[0], 250, f"{what}: MAIL inside TLS")
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        tap.is_(s.helo("client.example")[0], 250, f"{what}: a plain session")


refused_before = thp_refusals()
d, port, zygote = start()
tap.ok(zygote > 0, "postern-accept -z started its zygote")
# a session served: the zygote has set itself up
sessions_work(port, "huge pages")
tap.ok(tap.wait_until(lambda: smtpdtest.maillog(d).count("disconnect from") >= 2, 10),
       "both sessions ended") or tap.diag(smtpdtest.maillog(d))
tap.ok(tap.wait_until(lambda: children(zygote), 10), "a child waits")
maps = mappings(zygote)
moved = [m for m in maps if "x" in m[1] and not m[2]]
tap.ok(not any("w" in perms for _, perms, _, huge in moved if huge),
       "the huge pages of code are not writable")
exe_file = [m for m in maps if m[2].endswith("postern-smtpd") and "x" in m[1]]
# a SANITIZE=1 build links smtpd dynamically: OpenSSL's code is in shared
# libraries, and smtpd's own is smaller than a huge page
static = not any("libcrypto" in path for _, _, path, _ in maps)
if THP and static:
    tap.ok(executable_huge(zygote) >= 2048, "the zygote's code is in huge pages (anonymous, read+exec)") \
        or tap.diag("\n".join(map(str, maps)))
    tap.is_(exe_file, [], "no executable mapping of the program's file is left")
    readonly = sum(h for _, perms, path, h in maps if perms == "r--p" and not path)
    refused = thp_refusals() - refused_before
    if readonly < 4096:
        # the kernel did not give them all (twice beside a full make check,
        # once with thp_fault_fallback unchanged): what smtpd controls is
        # that it asked for them, over mappings that big
        tap.diag(f"read-only huge pages: {readonly} kB; the kernel fell back to small pages "
                 f"{refused} time(s) meanwhile")
        readonly = advised_kb(zygote, "r--p")
    tap.ok(readonly >= 4096, "constants and RELRO data are in read-only huge pages") \
        or tap.diag("\n".join(map(str, maps)))
    kid = children(zygote)[0] if children(zygote) else 0
    tap.ok(kid and executable_huge(kid) >= 2048, "the waiting child maps the same huge pages")
else:
    why = "transparent huge pages are off" if not THP else "smtpd is linked dynamically"
    tap.is_(executable_huge(zygote), 0, f"{why}: nothing moved")
    tap.ok(exe_file, "the code is mapped from the program's file")
    tap.skip(why, 2)
tap.unlike(smtpdtest.maillog(d), r"huge pages", "no warning about the move")

# systemd's MemoryDenyWriteExecute (as the smtpd units set it): no memory
# may become executable after it was mapped.  Linux 6.3's PR_SET_MDWE is
# that rule, inherited by postern-accept and its zygote.
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
if THP and static and libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) >= 0:
    d, port, zygote = start(preexec_fn=lambda: libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
    sessions_work(port, "MemoryDenyWriteExecute")
    tap.ok(executable_huge(zygote) >= 2048, "MemoryDenyWriteExecute: the code is in huge pages all the same") \
        or tap.diag(smtpdtest.maillog(d))
    tap.unlike(smtpdtest.maillog(d), r"huge pages", "MemoryDenyWriteExecute: no warning about the move")
else:
    tap.skip("no huge pages of code here, or no PR_SET_MDWE (Linux 6.3)", 7)

env = dict(os.environ, POSTERN_HUGETEXT="0")
d, port, zygote = start(env)
sessions_work(port, "POSTERN_HUGETEXT=0")
tap.is_(executable_huge(zygote), 0, "POSTERN_HUGETEXT=0: no huge pages of code")
tap.ok([m for m in mappings(zygote) if m[2].endswith("postern-smtpd") and "x" in m[1]],
       "POSTERN_HUGETEXT=0: the code is mapped from the program's file")
tap.done()
