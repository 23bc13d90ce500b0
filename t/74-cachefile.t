#!/usr/bin/env python3
# The cache file the smtp runners share
# (lib/util/cachefile.c: the TLS session and SASL 535 caches):
# runs the C unit test t/unit/cachefile_test.c, built by `make check` into
# $POSTERN_BUILD/t/, and passes its TAP through.
import os, sys
build = os.environ.get("POSTERN_BUILD") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
binary = os.path.join(build, "t", "cachefile_test")
if not os.access(binary, os.X_OK):
    print(f"1..1\nnot ok 1 - {binary} is built (make check builds it)")
    sys.exit(1)
sys.stdout.flush()
os.execv(binary, [binary])
