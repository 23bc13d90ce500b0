#!/usr/bin/env python3
# Every fuzz target (fuzz/*.c, built by `make fuzz-build` into BUILD/fuzz/)
# runs for a few seconds from its seeds without a crash, a leak or a hang.
# Fails, with the reason, when clang cannot build libFuzzer programs.
import os, re, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

SECONDS = int(os.environ.get("POSTERN_FUZZ_SECONDS", "5"))
build = os.environ.get("POSTERN_BUILD") or os.path.join(SRC, "build")

require(tools=["clang"])
probe_dir = tempdir()
probe = os.path.join(probe_dir, "probe.c")
write(probe, "#include <stdint.h>\n#include <stddef.h>\n"
             "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
             "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
r = subprocess.run(["clang", "-fsanitize=fuzzer,address,undefined", "-o", os.path.join(probe_dir, "probe"), probe],
                   capture_output=True, text=True)
if not ok(r.returncode == 0, "clang links a libFuzzer program (make check installs libclang-rt-14-dev)"):
    diag(r.stderr.strip()[:2000])
    done()

targets = sorted(f[:-2] for f in os.listdir(os.path.join(SRC, "fuzz")) if f.endswith(".c"))
r = subprocess.run(["make", "-s", "-C", SRC, "fuzz-build", f"BUILD={build}"], capture_output=True, text=True)
if not ok(r.returncode == 0, f"make fuzz-build builds {len(targets)} target(s)"):
    diag(r.stderr[-3000:])
    done()

fuzz_dir = os.path.join(build, "fuzz")
binaries = sorted(f for f in os.listdir(fuzz_dir)
                  if os.path.isfile(os.path.join(fuzz_dir, f)) and os.access(os.path.join(fuzz_dir, f), os.X_OK))
ok(set(targets) <= set(binaries), "every fuzz/*.c has its binary") or diag(f"targets {targets}, binaries {binaries}")
env = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
before = set(os.listdir(SRC))
for name in binaries:
    corpus = tempdir()
    artifacts = os.path.join(fuzz_dir, f"artifacts-{name}")     # kept for a look
    os.makedirs(artifacts, exist_ok=True)
    seeds = os.path.join(SRC, "fuzz", "seeds", name)
    ok(os.path.isdir(seeds) and os.listdir(seeds), f"fuzz target {name} has seeds in fuzz/seeds/{name}/")
    argv = [os.path.join(fuzz_dir, name), f"-max_total_time={SECONDS}", "-max_len=65536",
            "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={artifacts}/",
            corpus] + ([seeds] if os.path.isdir(seeds) else [])
    r = run(argv, env=env, timeout=SECONDS + 120)
    if not ok(r.returncode == 0, f"fuzz target {name} runs {SECONDS}s cleanly"):
        diag(r.stderr[-3000:])
        for f in os.listdir(artifacts):
            diag(f"artifact: {artifacts}/{f}")
ok(not [f for f in set(os.listdir(SRC)) - before if re.match(r"(crash|leak|timeout|slow-unit|oom)-", f)],
   "libFuzzer wrote no artefact into the source tree")
ok(not [f for f in os.listdir(SRC) if re.match(r"(crash|leak|timeout|slow-unit|oom)-", f)],
   "and none is committed there")
done()
