#!/usr/bin/env python3
# The benchmark harness without benchmarking (make check never measures):
# bench/summarize's medians and round-by-round ratios, and bench/run's
# refusal, with a clear message, when ../shared/bench is not there.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

summarize = os.path.join(SRC, "bench", "summarize")
d = tempdir()
raw = os.path.join(d, "raw.tsv")
# three rounds; round 2's postern figure is the outlier that a mean would
# feel and a median does not; round 3 has no Postfix figure (no ratio)
write(raw, "".join(f"{r}\t{m}\t{t}\t{k}\t{v}\n" for r, m, t, k, v in [
    (1, "postern", "inbound_c1", "e2e_mps", "200"),
    (1, "postfix", "inbound_c1", "e2e_mps", "100"),
    (2, "postern", "inbound_c1", "e2e_mps", "900"),
    (2, "postfix", "inbound_c1", "e2e_mps", "300"),
    (3, "postern", "inbound_c1", "e2e_mps", "150"),
    (1, "postern", "conn_sa", "conns_per_s", "50"),
    (1, "postern", "idle", "private_kb", ""),
]))
r = run([summarize, raw])
is_(r.returncode, 0, "summarize exits 0")
rows = {tuple(l.split("\t")[:2]): l.split("\t") for l in r.stdout.splitlines()}
head = r.stdout.splitlines()[0].split("\t")
is_(head[:3], ["test", "metric", "postern_med"], "a header line names the columns")
row = dict(zip(head, rows[("inbound_c1", "e2e_mps")]))
is_(row["postern_med"], "200", "postern median of 200, 900, 150")
is_((row["postern_min"], row["postern_max"]), ("150", "900"), "postern min and max")
is_(row["postfix_med"], "200", "postfix median of two rounds is their mean")
is_(row["ratio_med"], "2.50", "ratio median over the rounds that have both (1 and 2: ratios 2 and 3)")
is_((row["ratio_min"], row["ratio_max"]), ("2.00", "3.00"), "ratio min and max")
is_(row["n"], "2", "n counts the rounds with a ratio")
row = dict(zip(head, rows[("conn_sa", "conns_per_s")]))
is_((row["postfix_med"], row["ratio_med"]), ("-", "-"), "a figure only postern has: dashes, no ratio")
ok(("idle", "private_kb") not in rows, "an empty value (a failed measurement) is not a figure")

# bench/run without the shared tools says where they should be
results = os.path.join(SRC, "bench", "results")
listing = lambda: sorted(os.listdir(results)) if os.path.isdir(results) else []
before = listing()
r = run([os.path.join(SRC, "bench", "run"), os.path.dirname(BIN)],
        env={"BENCH_SHARED": os.path.join(d, "nowhere")})
ok(r.returncode != 0, "bench/run fails when ../shared/bench is missing")
like(r.stderr, r"shared/bench|BENCH_SHARED", "and says where the tools should be")
is_(listing(), before, "and makes no results directory")
done()
