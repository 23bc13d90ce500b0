#!/usr/bin/env python3
# Every man page in doc/ renders without a warning: groff with all warnings
# (-ww), and man(1) at 80 columns, which also runs tbl and formats a table
# for a terminal (a table wider than the line or a .so that cannot be found
# shows there and nowhere else).  Pages a user cannot read are defects too.
import glob, os, re, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

SRC = os.environ.get("POSTERN_SRC", os.path.join(os.path.dirname(__file__), ".."))
require(tools=["groff", "man"])
pages = sorted(glob.glob(os.path.join(SRC, "doc", "*.[158]")))
ok(len(pages) > 0, f"doc/ has man pages ({len(pages)})")
# a page for every subcommand postern's usage lists, and for the names
# sendmail answers to; each page in the section its file name says
usage = run(["postern"]).stderr
subcommands = re.findall(r"^  (\w+) ", usage, re.M)
ok(len(subcommands) >= 9, f"postern's usage lists its subcommands ({len(subcommands)})")
names = {os.path.basename(p) for p in pages}
want = [f"postern-{c}.1" for c in subcommands] + ["postern.1", "sendmail.1", "mailq.1", "newaliases.1"]
is_([w for w in want if w not in names], [], "every subcommand, mailq and newaliases have a page")
wrong = []
for page in pages:
    with open(page, errors="replace") as f:
        th = re.search(r"^\.TH\s+\S+\s+(\S+)", f.read(), re.M)
    if not th or th.group(1) != page.rsplit(".", 1)[1]:
        wrong.append(os.path.basename(page))
is_(wrong, [], "each page's .TH names the section of its file name (one section per page)")
cwd = tempdir()         # .so requests resolve from here, not from doc/
for page in pages:
    name = os.path.basename(page)
    r = run(["groff", "-ww", "-z", "-t", "-man", page], cwd=cwd)
    is_(r.stderr, "", f"{name}: groff -ww reports nothing")
    r = run(["man", "--warnings=w", "-l", page], env={"MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""}, cwd=cwd)
    ok(r.returncode == 0 and r.stderr == "" and "NAME" in r.stdout,
       f"{name}: man -l renders it at 80 columns without a warning") or diag(r.stderr)
done()
