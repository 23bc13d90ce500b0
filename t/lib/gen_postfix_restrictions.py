#!/usr/bin/env python3
"""gen_postfix_restrictions.py - record what the real Postfix 3.7 answers to
the dialogues of restriction_probes.py, into
t/data/postfix-3.7-restrictions.txt (which t/33 compares postern with).

Run by hand, as root, against a Postfix started by
/work/shared/bench/postfix-anchor.sh (Postfix is never a test dependency):

    BENCH_ROOT=/var/tmp/mta-bench-NAME postfix-anchor.sh up PORT PORT2
    BENCH_ROOT=/var/tmp/mta-bench-NAME t/lib/gen_postfix_restrictions.py PORT > t/data/postfix-3.7-restrictions.txt

With a second argument, the cases of another module of t/lib (data_probes:
t/data/postfix-3.7-data-rates.txt for t/35; seed_probes:
t/data/postfix-3.7-seeds.txt; dns_probes: t/data/postfix-3.7-dns.txt).

A module with DNS RECORDS (dns_probes) gets a DNS of its own: an unbound
with those records on the module's DNS_ADDR, port 53 (Postfix's resolver
reads only /etc/resolv.conf, which cannot name a port), and this script
runs again in a mount namespace (unshare -m) whose /etc/resolv.conf names
that unbound and whose /etc/hosts is the module's HOSTS; there it stops
the anchor's Postfix and starts it again, so that every Postfix process
sees those files, and stops it at the end (start it again with
postfix-anchor.sh up).  A module with LOG_ALL records every smtpd log
line of a case, not only the NOQUEUE and warning ones.

For each case it appends the case's settings to a copy of the anchor's
main.cf, reloads Postfix, plays the dialogue and collects the NOQUEUE
log lines; the anchor's own main.cf is put back at the end.
"""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import importlib
import restriction_probes as rp

port = int(sys.argv[1])
module = importlib.import_module(sys.argv[2]) if len(sys.argv) > 2 else rp
cases = module.CASES
# GEN_ONLY=text: only the cases whose title holds it (to look at one, or
# to record again what changed), or one of the texts between "|"
cases = [c for c in cases if any(w in c[0] for w in os.environ.get("GEN_ONLY", "").split("|"))]
root = os.path.join(os.environ.get("BENCH_ROOT", "/var/tmp/mta-bench"), "postfix")
etc = os.path.join(root, "etc")
maps_dir = os.path.join(etc, "probes")
os.makedirs(maps_dir, exist_ok=True)
maillog = os.path.join(root, "log", "maillog")
main_cf = os.path.join(etc, "main.cf")
original = open(main_cf).read()


def postfix(*args):
    return subprocess.run(["postfix", "-c", etc] + list(args), capture_output=True)


def restart_postfix():
    """Stop the anchor's Postfix (if it runs) and start it again."""
    postfix("stop")
    for _ in range(100):        # the old master gone before the new one starts
        if postfix("status").returncode:
            break
        time.sleep(0.2)
    time.sleep(1)
    subprocess.run(["postfix", "-c", etc, "start"], check=True, capture_output=True)


dns_mode = hasattr(module, "RECORDS")
if dns_mode and not os.environ.get("GEN_IN_NAMESPACE"):
    # the module's DNS on port 53, and this script again where
    # /etc/resolv.conf names it
    from dnsserver import DnsServer
    import tap
    dns = DnsServer(module.RECORDS, zones=module.ZONES, servfail=module.SERVFAIL,
                    interface=module.DNS_ADDR, port=53)
    resolv = tap.write(os.path.join(dns.dir, "resolv.conf"), f"nameserver {module.DNS_ADDR}\n")
    hosts = tap.write(os.path.join(dns.dir, "hosts"), module.HOSTS)
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 '
                        '&& exec "$@"', "sh", resolv, hosts, sys.executable, os.path.abspath(__file__)]
                       + sys.argv[1:], env=dict(os.environ, GEN_IN_NAMESPACE="1"))
    sys.exit(r.returncode)

master_cf = os.path.join(etc, "master.cf")
original_master = open(master_cf).read()
if "tlsmgr" not in original_master:
    # STARTTLS needs tlsmgr, which the anchor's master.cf leaves out
    with open(master_cf, "a") as f:
        f.write("tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n")
if dns_mode:
    restart_postfix()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


out = sys.stdout
out.reconfigure(line_buffering=True)
out.write("# What Postfix 3.7 (Debian, /work/shared/bench/postfix-anchor.sh) answered to the\n"
          "# dialogues of t/lib/%s.py, recorded by\n"
          "# t/lib/gen_postfix_restrictions.py on %s.  Per case: the settings ({maps}\n"
          "# is the tables' directory, {deadport} a port nobody listens on), the tables,\n"
          "# each command (>>) and reply (<<), and the %s log lines (log).\n"
          % (module.__name__, time.strftime("%Y-%m-%d"),
             "smtpd's" if getattr(module, "LOG_ALL", False) else "NOQUEUE"))
try:
    for case in cases:
        dead = free_port()
        settings = rp.settings_of(case, maps_dir, dead)
        for name, text in case[2].items():
            with open(os.path.join(maps_dir, name), "w") as f:
                f.write(rp.fill_map(text, maps_dir))
        # the anchor's own lines for what the case sets are left out: a
        # parameter given twice makes every Postfix process warn at start,
        # and that burst at each reload can fill postlogd's socket while
        # postlogd itself warns into it (it then hangs, and every process
        # that logs with it)
        kept = "".join(l for l in original.splitlines(True)
                       if l.split("=", 1)[0].strip() not in settings)
        with open(main_cf, "w") as f:
            f.write(kept + "\n# restriction probe: " + case[0] + "\n"
                    + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        if any("{maps}/cert.pem" in v for v in case[1].values()):
            rp.make_cert(maps_dir)
        if any("rate_limit" in k or k.startswith("anvil") for k in case[1]):
            # a fresh anvil: no counts carried over from the case before
            restart_postfix()
        else:
            subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
        time.sleep(2)
        start = os.path.getsize(maillog)
        steps = rp.dialogue(port, case[3], cert_dir=maps_dir)
        time.sleep(1.5)
        with open(maillog) as f:
            f.seek(start)
            logs = [l.split("]: ", 1)[1].rstrip("\n") for l in f
                    if "postfix/smtpd[" in l and "]: " in l
                    and (getattr(module, "LOG_ALL", False)
                         or "NOQUEUE" in l or ": warn: " in l or ": info: " in l or ": reject: " in l
                         or "limit exceeded" in l or "Refusing STARTTLS" in l)]
        out.write(f"\n== {case[0]}\n")
        for k, v in case[1].items():
            out.write(f"set {k} = {v}\n")
        for name, text in case[2].items():
            for line in text.splitlines():
                out.write(f"map {name} {line}\\n\n")
        for cmd, reply in steps:
            if cmd is not None:
                out.write(f">> {cmd}\n")
            for line in (reply or "").split("\n"):
                out.write(f"<< {line}\n")
        for l in logs:
            out.write(f"log {l}\n")
finally:
    with open(main_cf, "w") as f:
        f.write(original)
    with open(master_cf, "w") as f:
        f.write(original_master)
    postfix("stop" if dns_mode else "reload")
