#!/usr/bin/env python3
# The main.cf files of the seed guides (t/data/seeds/*.cf) parse, and
# `postern conf -n`, `-h NAME` and `-hx NAME` print what Postfix 3.7's
# postconf printed for the same file (golden files t/data/NAME.{n,h,hx},
# made by hand with the real postconf; config_directory is left out as it
# names the temporary directory).  Also: the submission service's -o lines.
# The parameters of Postfix's VDA patch (quotas, seeds 000 and 002) are
# postern's too: the golden files come from a Postfix without the patch,
# which calls them unused, so they are checked apart, as a patched postconf
# shows them.
import os, re, shutil, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

data = os.path.join(SRC, "t", "data")
seeds = sorted(f[:-3] for f in os.listdir(os.path.join(data, "seeds")) if f.endswith(".cf"))
ok(len(seeds) >= 4, "the seed fixtures are there")


def read(path):
    with open(path) as f:
        return f.read()


VDA = {"virtual_create_maildirsize", "virtual_mailbox_extended", "virtual_mailbox_limit_inbox",
       "virtual_mailbox_limit_maps", "virtual_mailbox_limit_override", "virtual_maildir_extended",
       "virtual_maildir_filter", "virtual_maildir_filter_maps", "virtual_maildir_limit_message",
       "virtual_maildir_limit_message_maps", "virtual_overquota_bounce", "virtual_trash_count",
       "virtual_trash_name"}


def vda(line):
    return line.split(" = ")[0] in VDA


for seed in seeds:
    d = tempdir()
    shutil.copy(os.path.join(data, "seeds", seed + ".cf"), os.path.join(d, "main.cf"))
    r = run(["postern", "conf", "-c", d, "-n"])
    got = "".join(l + "\n" for l in r.stdout.splitlines()
                  if not l.startswith("config_directory = ") and not vda(l))
    is_(got, read(os.path.join(data, seed + ".n")), f"{seed}: conf -n as postconf -n")
    written = {m.group(1): m.group(2) for m in re.finditer(r"(?m)^(\w+)\s*=\s*(.*?)\s*$",
                                                            read(os.path.join(d, "main.cf")))
               if m.group(1) in VDA}
    shown = {l.split(" = ")[0]: l.split(" = ", 1)[1] for l in r.stdout.splitlines() if vda(l)}
    is_(shown, written, f"{seed}: conf -n shows the VDA quota settings as written")
    ok(f"config_directory = {d}" in r.stdout, f"{seed}: -n shows config_directory from -c, as postconf")
    # every name postconf called unused is warned about by postern too
    pf_unused = [n for n in re.findall(r"unused parameter: (\S+?)=",
                                       read(os.path.join(data, seed + ".n.stderr"))) if n not in VDA]
    vda_warned = [n for n in re.findall(r"unused parameter: (\S+?)=", r.stderr) if n in VDA]
    is_(vda_warned, [], f"{seed}: no VDA quota setting is called unused")
    ours = re.findall(r"line \d+: unused parameter: (\S+?)=", r.stderr)
    missing = [n for n in pf_unused if n not in ours]
    ok(not missing, f"{seed}: parameters Postfix calls unused are warned about, with line numbers") or diag(missing)
    for flags in ["h", "hx"]:
        names = [n for n in read(os.path.join(data, f"{seed}.{flags}.names")).split() if n not in VDA]
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
