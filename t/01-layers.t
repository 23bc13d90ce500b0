#!/usr/bin/env python3
# lib/ is in layers a reader can see (DESIGN.md, Repository layout): each
# folder includes only from itself and the layers below it, so the utility
# layer knows nothing of mail and the tables know nothing of main.cf.
#   lib/util  <  maps  <  lib/conf  <  lib/mail  (<  lib/net, when it comes)
import os, re, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

ORDER = ["lib/util", "maps", "lib/conf", "lib/mail", "lib/net"]
home = {}                       # header name -> layer
for layer in ORDER:
    d = os.path.join(SRC, layer)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if f.endswith(".h"):
                if f in home:
                    ok(False, f"{f} is in one layer only (also in {home[f]})")
                home.setdefault(f, layer)

ok(not [f for f in os.listdir(os.path.join(SRC, "lib")) if f.endswith((".c", ".h"))],
   "no source file lies loose in lib/: each is in its layer's folder")

for layer in ORDER:
    d = os.path.join(SRC, layer)
    if not os.path.isdir(d):
        continue
    bad = []
    for f in sorted(os.listdir(d)):
        if not f.endswith((".c", ".h")):
            continue
        for n, line in enumerate(open(os.path.join(d, f), encoding="utf-8"), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = home.get(os.path.basename(m.group(1)))
            if target is None:
                bad.append(f"{layer}/{f}:{n}: includes \"{m.group(1)}\", which is in no layer")
            elif ORDER.index(target) > ORDER.index(layer):
                bad.append(f"{layer}/{f}:{n}: includes {target}/{m.group(1)} from a layer above")
    ok(not bad, f"{layer} includes only from its own layer and those below") or diag("\n".join(bad))
done()
