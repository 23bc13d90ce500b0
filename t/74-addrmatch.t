#!/usr/bin/env python3
# Client address-match lists (lib/conf/addrmatch.c: mynetworks and the like):
# runs the C unit test t/unit/addrmatch_test.c, built by `make check` into
# $POSTERN_BUILD/t/, and passes its TAP through.
import os, sys
build = os.environ.get("POSTERN_BUILD") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
binary = os.path.join(build, "t", "addrmatch_test")
if not os.access(binary, os.X_OK):
    print(f"1..1\nnot ok 1 - {binary} is built (make check builds it)")
    sys.exit(1)
sys.stdout.flush()
os.execv(binary, [binary])
