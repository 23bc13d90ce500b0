#!/usr/bin/env python3
# A log line's program name is never garbled by a change of syslog_name
# while another thread logs (lib/util/log.c; the lookup service's database
# threads and its SIGHUP): runs the C unit test t/unit/log_ident_test.c,
# built by `make check` into $POSTERN_BUILD/t/, and passes its TAP through.
import os, shutil, subprocess, sys, tempfile
build = os.environ.get("POSTERN_BUILD") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
binary = os.path.join(build, "t", "log_ident_test")
if not os.access(binary, os.X_OK):
    print(f"1..1\nnot ok 1 - {binary} is built (make check builds it)")
    sys.exit(1)
tmp = tempfile.mkdtemp(prefix="postern-t-")
try:
    sys.stdout.flush()
    rc = subprocess.run([binary, tmp]).returncode
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)
