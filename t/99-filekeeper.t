#!/usr/bin/env python3
# The file keeper (lib/util/filekeeper.c) that lets smtpd's zygote read a
# root-only TLS key again after it dropped privileges: runs the C unit test
# t/unit/filekeeper_test.c, built by `make check` into $POSTERN_BUILD/t/,
# and passes its TAP through.  Needs root (t/99-tls-reload.t has the whole
# reload).
import os, sys
build = os.environ.get("POSTERN_BUILD") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
binary = os.path.join(build, "t", "filekeeper_test")
if not os.access(binary, os.X_OK):
    print(f"1..1\nnot ok 1 - {binary} is built (make check builds it)")
    sys.exit(1)
if os.geteuid() != 0:
    # make check passes for a normal user too: the root-only parts say so
    print("1..0 # SKIP the files are root's and the test drops privileges: needs root")
    sys.exit(0)
import shutil, subprocess, tempfile
tmp = tempfile.mkdtemp(prefix="postern-t-")
os.chmod(tmp, 0o755)
try:
    rc = subprocess.run([binary, tmp]).returncode
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)
