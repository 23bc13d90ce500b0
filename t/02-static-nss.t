#!/usr/bin/env python3
# No program started per connection or per message (the Makefile's
# STATIC_PROGS) links the name service (getpwnam, getgrnam, getaddrinfo,
# gethostbyname, ... and glibc's NSS machinery behind them) or a library
# that loads plugins (Cyrus SASL; OpenSSL's nss_keylog_int is about the
# NSS key log format, not the name service): glibc would load libnss_*.so into the
# static program at run time, and libnss_systemd crashed smtpd that way
# (issue 9).  Such lookups go through the lookup service (doc/lookup.md).
# Static programs are read with nm (their own symbols); dynamically linked
# ones (SANITIZE=1, STATIC_PROGS=) with nm -D (the symbols they import).
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402

FORBIDDEN = re.compile(
    r"^(getpw\w*|getgr\w*|getsp\w*|getaddrinfo|getnameinfo|gethostby\w*|gethostent\w*"
    r"|getservby\w*|getservent\w*|getprotoby\w*|getnetby\w*|initgroups|getgrouplist"
    r"|getlogin\w*|getusershell|_nss_\w+|__nss_\w+|(?!nss_keylog)nss_\w+|__res_\w+|res_n?(query|search|send)"
    r"|sasl_\w+|sd_\w+)$")

makefile = open(os.path.join(tap.SRC, "Makefile")).read()
m = re.search(r"^STATIC_PROGS \?= (.*)$", makefile, re.M)
programs = m.group(1).split() if m else []
tap.ok(len(programs) >= 5, "the Makefile names the static programs: " + " ".join(programs))


def is_static(path):
    r = tap.run(["readelf", "-l", path])
    return r.returncode == 0 and "INTERP" not in r.stdout


for name in programs:
    path = tap.prog(name)
    if not tap.ok(os.path.exists(path), f"{name} is built"):
        continue
    static = is_static(path)
    r = tap.run(["nm", path] if static else ["nm", "-D", "--undefined-only", path])
    symbols = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and (static and len(parts) == 3 or not static):
            symbols.add(parts[-1].split("@")[0])
    bad = sorted(s for s in symbols if FORBIDDEN.match(s))
    how = "static" if static else "dynamic (imports)"
    if not tap.ok(r.returncode == 0 and not bad, f"{name} ({how}) links no NSS or plugin-loading call"):
        tap.diag("found: " + " ".join(bad[:40]))

# the check itself: the lookup service is dynamically linked and does ask
# the name service, so nm must find getpwnam there
lookup = tap.prog("postern-lookup")
r = tap.run(["nm", "-D", "--undefined-only", lookup])
tap.ok(any(FORBIDDEN.match(l.split()[-1].split("@")[0]) for l in r.stdout.splitlines() if l.split()),
       "the check sees getpwnam in postern-lookup, which may call it")
tap.done()
