#!/usr/bin/env python3
# The main.cf files of the seed guides (t/data/seeds/*.cf) parse, and
# `postern conf -n`, `-h NAME` and `-hx NAME` print what Postfix 3.7's
# postconf printed for the same file (golden files t/data/NAME.{n,h,hx},
# made by hand with the real postconf; config_directory is left out as it
# names the temporary directory).  Also: the submission service's -o lines.
import os, re, shutil, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

data = os.path.join(SRC, "t", "data")
seeds = sorted(f[:-3] for f in os.listdir(os.path.join(data, "seeds")) if f.endswith(".cf"))
ok(len(seeds) >= 4, "the seed fixtures are there")


def read(path):
    with open(path) as f:
        return f.read()


for seed in seeds:
    d = tempdir()
    shutil.copy(os.path.join(data, "seeds", seed + ".cf"), os.path.join(d, "main.cf"))
    r = run(["postern", "conf", "-c", d, "-n"])
    got = "".join(l + "\n" for l in r.stdout.splitlines() if not l.startswith("config_directory = "))
    is_(got, read(os.path.join(data, seed + ".n")), f"{seed}: conf -n as postconf -n")
    ok(f"config_directory = {d}" in r.stdout, f"{seed}: -n shows config_directory from -c, as postconf")
    # every name postconf called unused is warned about by postern too
    pf_unused = re.findall(r"unused parameter: (\S+?)=", read(os.path.join(data, seed + ".n.stderr")))
    ours = re.findall(r"line \d+: unused parameter: (\S+?)=", r.stderr)
    missing = [n for n in pf_unused if n not in ours]
    ok(not missing, f"{seed}: parameters Postfix calls unused are warned about, with line numbers") or diag(missing)
    for flags in ["h", "hx"]:
        names = read(os.path.join(data, f"{seed}.{flags}.names")).split()
        r = run(["postern", "conf", "-c", d, "-" + flags] + names)
        is_(r.stdout, read(os.path.join(data, f"{seed}.{flags}")), f"{seed}: conf -{flags} {' '.join(names)}")

# the submission service of seed 000 (master.cf -o lines) as -o options
d = tempdir()
shutil.copy(os.path.join(data, "seeds", "000-gentoo.cf"), os.path.join(d, "main.cf"))
r = run(["postern", "conf", "-c", d, "-o", "smtpd_tls_security_level=may", "-o", "smtpd_sasl_auth_enable=yes",
         "-o", "smtpd_client_restrictions=permit_sasl_authenticated,reject",
         "-h", "smtpd_tls_security_level", "smtpd_sasl_auth_enable", "smtpd_client_restrictions", "biff"])
is_(r.stdout, "may\nyes\npermit_sasl_authenticated,reject\nno\n", "000: the submission -o overrides apply")
done()
