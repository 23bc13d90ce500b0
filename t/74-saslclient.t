#!/usr/bin/env python3
# The SMTP AUTH client mechanisms of the smtp runner
# (lib/net/saslclient.c): SCRAM against RFC 5802 and RFC 7677 examples;
# runs the C unit test t/unit/saslclient_test.c, built by `make check` into
# $POSTERN_BUILD/t/, and passes its TAP through.
import os, sys
build = os.environ.get("POSTERN_BUILD") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
binary = os.path.join(build, "t", "saslclient_test")
if not os.access(binary, os.X_OK):
    print(f"1..1\nnot ok 1 - {binary} is built (make check builds it)")
    sys.exit(1)
sys.stdout.flush()
os.execv(binary, [binary])
