#!/usr/bin/env python3
# The smtpd zygote reads its indexed tables (hash:, cdb:, the .cdb files
# `postern map` builds) into read-only memory in transparent huge pages
# instead of mapping the files (lib/util/hugemem.h), so that each child it
# forks reads them without faulting their pages in again.  Checked from
# /proc and by what clients see: neither the zygote nor a waiting child
# maps the .cdb file, the copy is an anonymous read-only mapping asked for
# huge pages, and the table answers; a table rebuilt by `postern map` and
# one changed in place are both used by the next connection; two tables
# naming the same file share one copy; rebuilding a table again and again
# leaves no copies behind.  The zygote's settings are packed into a
# writable huge page of the same kind (lib/conf/config.c, pack_settings),
# which a session reads, and stress mode (which rewrites them in a child)
# still works from it.  POSTERN_HUGETEXT=0 maps the files as before.
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import smtpdtest  # noqa: E402
import tap  # noqa: E402

ACCEPT = tap.prog("postern-accept")
SMTPD = tap.prog("postern-smtpd")
POSTERN = tap.prog("postern")
tap.require(["postern-accept", "postern-smtpd", "postern"])
USER = ["-u", "nobody"] if os.geteuid() == 0 else []
with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
    setting = f.read()
THP = "[always]" in setting or "[madvise]" in setting
if not THP:
    tap.bail_out("transparent huge pages are off on this machine (never): "
                 "what this test checks cannot happen here")


def start(d, env=None):
    """postern-accept -z; (process, port, zygote pid)."""
    port = tap.free_port()
    p = tap.start([ACCEPT, "-c", d] + USER + ["-z", f"127.0.0.1:{port}", "--", SMTPD, "-c", d],
                  stderr=open(os.path.join(d, "stderr"), "w"), env=env)
    tap.wait_until(lambda: "listening on" in smtpdtest.maillog(d) or p.poll() is not None, 10)
    m = re.search(r"zygote \S+ started as pid (\d+)", smtpdtest.maillog(d))
    return p, port, int(m.group(1)) if m else 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def smaps(pid):
    """(perms, path, Size kB, VmFlags) of each mapping of a process (none
    once it has ended)."""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        head = block.split("\n", 1)[0].split()
        if len(head) < 5:
            continue            # a process ending as it is read
        size = re.search(r"^Size:\s+(\d+)", block, re.M)
        flags = re.search(r"^VmFlags:(.*)$", block, re.M)
        out.append((head[1], " ".join(head[5:]), int(size.group(1)) if size else 0,
                    flags.group(1) if flags else ""))
    return out


def maps_file(pid, path):
    return any(p == path for _, p, _, _ in smaps(pid))


def advised_kb(pid, perms_wanted="r--p"):
    """kB of anonymous mappings with these permissions asked for huge
    pages (hg)."""
    return sum(size for perms, path, size, flags in smaps(pid)
               if perms == perms_wanted and not path and " hg" in flags)


def advised_readonly_kb(pid):
    return advised_kb(pid, "r--p")


def rcpt(port, address):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, text = s.rcpt(address)
        return code, text.decode()


def build(d, path, text):
    tap.write(path, text)
    r = tap.run([POSTERN, "map", "-c", d, f"hash:{path}"])
    tap.is_(r.returncode, 0, f"postern map {os.path.basename(path)}") or tap.diag(r.stderr)


# a zygote without tables: its read-only huge pages are its code's and
# constants' alone (hugetext.h)
d = smtpdtest.accept_dir("smtpd_peername_lookup = no\n")
acc, port, zygote = start(d)
tap.ok(tap.wait_until(lambda: children(zygote), 10), "a zygote without tables has a child waiting")
code_kb = advised_readonly_kb(zygote)
tap.stop(acc)

# no lookup service here: the client's name is not looked up
d = smtpdtest.accept_dir("smtpd_peername_lookup = no\n")
table = os.path.join(d, "rcpt")
build(d, table, "blocked@example.org REJECT first rule\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    # the same file twice: one copy serves both
    f.write(f"smtpd_recipient_restrictions = check_recipient_access hash:{table}, "
            f"check_recipient_access cdb:{table}, permit_mynetworks, reject\n")
acc, port, zygote = start(d)
tap.ok(zygote > 0, "postern-accept -z started its zygote") or tap.diag(smtpdtest.maillog(d))
tap.ok(tap.wait_until(lambda: children(zygote), 10), "a child waits")
cdb = table + ".cdb"
base_kb = advised_readonly_kb(zygote)
tap.ok(not maps_file(zygote, cdb), "the zygote does not map the .cdb file")
kid = children(zygote)[0] if children(zygote) else 0
tap.ok(kid and not maps_file(kid, cdb), "nor does a waiting child")
tap.ok(base_kb >= code_kb + 2048, "an anonymous read-only mapping asked for huge pages holds it") \
    or tap.diag(f"{code_kb} kB without the table, {base_kb} kB with it\n" + "\n".join(map(str, smaps(zygote))))
tap.ok(advised_kb(zygote, "rw-p") >= 2048, "the settings are packed into a writable huge page") \
    or tap.diag("\n".join(map(str, smaps(zygote))))
code, text = rcpt(port, "blocked@example.org")
tap.is_(code, 554, "the table in the zygote's copy refuses the recipient")
tap.like(text, r"first rule", "... with its text")
tap.is_(rcpt(port, "other@example.org")[0], 250, "an address it does not list is accepted")

# rebuilt by postern map (a new file renamed over the old one)
build(d, table, "blocked@example.org REJECT rebuilt rule\n")
code, text = rcpt(port, "blocked@example.org")
tap.like(text, r"rebuilt rule", "rebuilt with postern map: the next connection uses the new table")
tap.like(smtpdtest.maillog(d), r"has changed: opened again", "the zygote opens it again")
# changed in place: the new content written over the old file
tap.write(os.path.join(d, "other"), "blocked@example.org REJECT rule written in place\n")
tap.is_(tap.run([POSTERN, "map", "-c", d, f"hash:{os.path.join(d, 'other')}"]).returncode, 0,
        "another table built")
with open(os.path.join(d, "other.cdb"), "rb") as f:
    new = f.read()
with open(cdb, "r+b") as f:
    f.truncate(0)
    f.write(new)
code, text = rcpt(port, "blocked@example.org")
tap.like(text, r"rule written in place", "changed in place: the next connection uses what was written")
# the child that served it mapped the changed file itself, and ends
tap.ok(tap.wait_until(lambda: children(zygote) and not any(maps_file(k, cdb) for k in children(zygote)), 10),
       "the zygote has copied it again: the children it forks next do not map it") \
    or tap.diag(f"children {children(zygote)}")

# rebuilt again and again: the copies made for earlier versions are gone
for i in range(5):
    build(d, table, f"blocked@example.org REJECT version {i}\n")
    tap.like(rcpt(port, "blocked@example.org")[1], rf"version {i}", f"version {i} is used")
tap.ok(advised_readonly_kb(zygote) <= base_kb + 2048,
       "after five rebuilds the zygote holds no more than one block more than at the start") \
    or tap.diag(f"{base_kb} kB at the start, {advised_readonly_kb(zygote)} kB now")
# (a zygote that looks while postern map writes may say that the table is
# older than its source, which is true for that moment)
tap.unlike(smtpdtest.maillog(d), r"warning: (?!database \S+ is older than source file)", "no warning") \
    or tap.diag(smtpdtest.maillog(d))
tap.stop(acc)

# POSTERN_HUGETEXT=0: the file is mapped as before
d = smtpdtest.accept_dir("smtpd_peername_lookup = no\n")
table = os.path.join(d, "rcpt")
build(d, table, "blocked@example.org REJECT mapped rule\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write(f"smtpd_recipient_restrictions = check_recipient_access hash:{table}, permit_mynetworks, reject\n")
acc, port, zygote = start(d, dict(os.environ, POSTERN_HUGETEXT="0"))
tap.like(rcpt(port, "blocked@example.org")[1], r"mapped rule", "POSTERN_HUGETEXT=0: the table answers")
tap.ok(maps_file(zygote, table + ".cdb"), "POSTERN_HUGETEXT=0: the zygote maps the .cdb file")
tap.stop(acc)
tap.done()
