"""cunit.py - build a C test driver under t/unit/ against the library of
the build being tested ($POSTERN_BUILD/libpostern.a), with the flags that
build used (sanitizers for build-san)."""
import os
import subprocess
from tap import SRC, BIN, tempdir

_LIBS = "openssl libsystemd libsasl2 libpcre2-8 libbsd libpq"


def build(name):
    """Compile t/unit/NAME.c; returns the binary's path or None with a reason."""
    build_dir = os.environ.get("POSTERN_BUILD") or os.path.dirname(BIN)
    lib = os.path.join(build_dir, "libpostern.a")
    if not os.path.exists(lib):
        return None, f"{lib} is missing"
    out = os.path.join(tempdir(), name)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + _LIBS.split(),
                           capture_output=True, text=True).stdout.split()
    san = ["-fsanitize=address,undefined"] if os.path.basename(build_dir.rstrip("/")) == "build-san" else []
    cmd = (["cc", "-std=c17", "-D_GNU_SOURCE", "-I" + os.path.join(SRC, "lib"),
            "-I" + os.path.join(SRC, "maps")] + san +
           ["-o", out, os.path.join(SRC, "t", "unit", name + ".c"), lib] + flags + ["-lcdb"])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    return out, None
