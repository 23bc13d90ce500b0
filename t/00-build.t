#!/usr/bin/env python3
# The build produced every program and `postern` answers with its usage.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

for name in ["postern"]:
    ok(os.access(prog(name), os.X_OK), f"{name} is built")
r = run(["postern"])
is_(r.returncode, 2, "postern without a subcommand exits 2")
like(r.stderr, r"usage: postern SUBCOMMAND", "and prints its usage")
r = run(["postern", "nosuch"])
like(r.stderr, r'unknown subcommand "nosuch"', "an unknown subcommand is named")
done()
