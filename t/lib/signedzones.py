"""signedzones.py - authoritative DNS with DNSSEC for the tests: zones
written from record lines, signed with ldns-keygen and ldns-signzone
(ldnsutils), served by nsd on a loopback port from a temp dir, and the
trust anchors (the DS records of the signed zones) in a file that a
validating resolver is given.  A zone may be left unsigned, or signed and
then "tampered": the records a test names are changed after signing, so
their signatures no longer verify (DNSSEC "bogus").

    z = SignedZones({"dane.test": {"records": ["ok MX 10 mx.dane.test.", ...]},
                     "bogus.test": {"records": [...], "tamper": ["TLSA"]},
                     "plain.test": {"records": [...], "signed": False}})
    z.address         # "127.0.0.1@PORT" for POSTERN_DNS_SERVER
    z.trust_anchors   # file of DS records (dnssec_trust_anchor_file)
nsd is stopped by PID at exit (tap.start).
"""
import os
import re
import shutil
import subprocess
import time

from dnsserver import query
from tap import diag, free_port, start, tempdir, write

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


class SignedZones:
    def __init__(self, zones):
        self.dir = tempdir("postern-nsd-")
        os.chmod(self.dir, 0o755)      # run as root, the runners read the trust anchors
        self.port = free_port()
        self.address = f"127.0.0.1@{self.port}"
        anchors = []
        conf = ["server:", "  ip-address: 127.0.0.1", f"  port: {self.port}",
                '  username: ""', '  chroot: ""', f'  zonesdir: "{self.dir}"',
                f'  pidfile: "{self.dir}/nsd.pid"', '  database: ""',
                f'  zonelistfile: "{self.dir}/zone.list"', f'  xfrdfile: "{self.dir}/xfrd.state"',
                f'  xfrdir: "{self.dir}"', f'  logfile: "{self.dir}/nsd.log"',
                "  server-count: 1", "  do-ip6: no", "  verbosity: 1",
                "remote-control:", "  control-enable: no"]
        for name, zone in zones.items():
            path = os.path.join(self.dir, name + ".zone")
            lines = [f"$ORIGIN {name}.", "$TTL 300",
                     f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300",
                     f"@ IN NS ns.{name}.", "ns IN A 127.0.0.1"] + list(zone["records"])
            write(path, "\n".join(lines) + "\n")
            served = name + ".zone"
            if zone.get("signed", True):
                key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name],
                                     cwd=self.dir, capture_output=True, text=True, check=True).stdout.strip()
                subprocess.run(["ldns-signzone", "-o", name, path, os.path.join(self.dir, key)],
                               cwd=self.dir, capture_output=True, check=True)
                anchors.append(open(os.path.join(self.dir, key + ".ds")).read().strip())
                served = name + ".zone.signed"
                for rrtype in zone.get("tamper", ()):
                    self._tamper(os.path.join(self.dir, served), rrtype)
            conf += ["zone:", f"  name: {name}", f"  zonefile: {served}"]
        self.trust_anchors = write(os.path.join(self.dir, "trust-anchors"), "\n".join(anchors) + "\n")
        self.conf = write(os.path.join(self.dir, "nsd.conf"), "\n".join(conf) + "\n")
        self.proc = start([NSD, "-d", "-c", self.conf],
                          stdout=open(os.path.join(self.dir, "nsd.out"), "w"), stderr=subprocess.STDOUT)
        first = next(iter(zones))
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            answer = query(self.port, first, 6, 0.2)
            if answer is not None and answer[0] == 0:
                return
        diag(open(os.path.join(self.dir, "nsd.out")).read())
        raise RuntimeError("nsd did not start")

    @staticmethod
    def _tamper(path, rrtype):
        """Change the last hex digit of each rrtype record (not its RRSIG)."""
        out = []
        for line in open(path).read().splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[3] == rrtype:
                last = fields[-1]
                fields[-1] = last[:-1] + ("0" if last[-1] != "0" else "1")
                line = "\t".join(fields)
            out.append(line)
        write(path, "\n".join(out) + "\n")
