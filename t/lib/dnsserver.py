"""A real DNS server for the tests: unbound, started on a loopback port in
a temp dir, answering from local-data (the zones a test gives) and failing
(SERVFAIL or no answer) for the zones a test marks as broken, which it
delegates to a port where nothing listens.  Stopped by PID at exit.

    dns = DnsServer(["ok.test. A 192.0.2.1", ...], broken=["fail.test."])
    env = {"POSTERN_DNS_SERVER": dns.address}      # "127.0.0.1@PORT"
"""
import os, shutil, socket, struct, time
from tap import start, tempdir, write, free_port, ok, diag

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def query(port, name, qtype=1, timeout=1.0):
    """One UDP query; returns (rcode, answer count) or None on no answer."""
    pkt = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    pkt += b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split("."))
    pkt += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, ("127.0.0.1", port))
        try:
            r = s.recv(4096)
        except OSError:
            return None
    return r[3] & 15, struct.unpack(">H", r[6:8])[0]


class DnsServer:
    def __init__(self, records, zones=("test.",), broken=(), port=None):
        """records: unbound local-data lines ("name. TYPE data");
        zones: the static zones they live in (a name in none of them
        would be sent to the Internet: list every zone); broken: zones
        inside those whose queries go to a dead port; port: the port to
        listen on (53 in a network namespace of the test's own), else a
        free one."""
        self.dir = tempdir("postern-dns-")
        self.port = port or free_port()
        self.dead_port = free_port()
        self.address = f"127.0.0.1@{self.port}"
        lines = ["server:",
                 "  interface: 127.0.0.1", f"  port: {self.port}",
                 "  do-daemonize: no", '  username: ""', '  chroot: ""',
                 f'  directory: "{self.dir}"', '  pidfile: ""',
                 "  use-syslog: no", f'  logfile: "{self.dir}/unbound.log"',
                 "  do-ip6: no", "  do-not-query-localhost: no",
                 "  access-control: 127.0.0.0/8 allow",
                 '  module-config: "iterator"',
                 "  qname-minimisation: no",
                 # answer every other name with REFUSED, never from the Internet
                 '  local-zone: "." refuse']
        for z in zones:
            lines.append(f'  local-zone: "{z}" static')
        for z in broken:
            lines.append(f'  local-zone: "{z}" transparent')
        for r in records:
            lines.append("  local-data: '" + r + "'")
        for z in broken:
            lines += ["stub-zone:", f'  name: "{z}"',
                      f"  stub-addr: 127.0.0.1@{self.dead_port}"]
        self.conf = write(os.path.join(self.dir, "unbound.conf"), "\n".join(lines) + "\n")
        self.proc = start([UNBOUND, "-d", "-c", self.conf])
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            if query(self.port, zones[0] if zones else "test.", 6, 0.2) is not None:
                return
        diag(open(os.path.join(self.dir, "unbound.log")).read()
             if os.path.exists(os.path.join(self.dir, "unbound.log")) else "no log")
        raise RuntimeError("unbound did not start")
