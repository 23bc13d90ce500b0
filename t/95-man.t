#!/usr/bin/env python3
# Every man page in doc/ renders without a warning: groff with all warnings
# (-ww), and man(1) at 80 columns, which also runs tbl and formats a table
# for a terminal (a table wider than the line or a .so that cannot be found
# shows there and nowhere else).  Pages a user cannot read are defects too.
import glob, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

SRC = os.environ.get("POSTERN_SRC", os.path.join(os.path.dirname(__file__), ".."))
require(tools=["groff", "man"])
pages = sorted(glob.glob(os.path.join(SRC, "doc", "*.[158]")))
ok(len(pages) > 0, f"doc/ has man pages ({len(pages)})")
cwd = tempdir()         # .so requests resolve from here, not from doc/
for page in pages:
    name = os.path.basename(page)
    r = run(["groff", "-ww", "-z", "-t", "-man", page], cwd=cwd)
    is_(r.stderr, "", f"{name}: groff -ww reports nothing")
    r = run(["man", "--warnings=w", "-l", page], env={"MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""}, cwd=cwd)
    ok(r.returncode == 0 and r.stderr == "" and "NAME" in r.stdout,
       f"{name}: man -l renders it at 80 columns without a warning") or diag(r.stderr)
done()
