#!/usr/bin/env python3
# smtpd_peername_lookup from the hosts file: postern-smtpd names a client
# whose address the hosts file holds by that line's canonical name, as
# glibc's "files" source answers Postfix before the DNS, without asking the
# lookup service (none runs here, so a name can only come from the file):
# in the log and the Received header, the first line of an address winning,
# IPv6, an address the file does not hold or a name that is no host name
# left "unknown", the setting off.  Then through postern-accept -z: the
# zygote reads the file once and reads it again when it changes.  The file
# is the test's own (POSTERN_HOSTS_FILE), never /etc/hosts.
import os, smtplib, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest

require(["postern-smtpd", "postern-accept"])

hosts_dir = tempdir()
os.chmod(hosts_dir, 0o755)
hosts = os.path.join(hosts_dir, "hosts")
write(hosts, "# the test's hosts file\n"
             "127.0.0.1\tlocalhost\n"
             "192.0.2.7   named.test alias.test   # a comment\n"
             "192.0.2.7   second.test\n"
             "2001:db8::7 v6.test\n"
             "192.0.2.8   bad!name.test\n"
             "not-an-address some.test\n")
env = {"POSTERN_HOSTS_FILE": hosts}

inst = smtpdtest.Instance()


def session(addr, mail=True):
    """One SMTP session from addr; the message smtpd handed on, if any."""
    return smtpdtest.session_from(inst, addr, env, mail)[1]


msg = session("192.0.2.7")
like(inst.log(), r"connect from named\.test\[192\.0\.2\.7\]",
     "an address in the hosts file: named by its line's canonical name, without the lookup service")
like(msg, r"Received: from client\.example \(named\.test \[192\.0\.2\.7\]\)",
     "... and so in the Received header")
unlike(inst.log(), r"second\.test|alias\.test", "the first line of the address wins; aliases name no one")
unlike(inst.log(), r"client name lookup", "... and the lookup service was not asked")

session("2001:db8::7", mail=False)
like(inst.log(), r"connect from v6\.test\[2001:db8::7\]", "an IPv6 address in the hosts file")

session("192.0.2.9", mail=False)
like(inst.log(), r"connect from unknown\[192\.0\.2\.9\]",
     "an address the file does not hold goes to the lookup service (down here): unknown")

session("192.0.2.8", mail=False)
like(inst.log(), r"connect from unknown\[192\.0\.2\.8\]", "a name in the file that is no host name: unknown")

inst.set(smtpd_peername_lookup="no")
session("192.0.2.7", mail=False)
like(inst.log(), r"connect from unknown\[192\.0\.2\.7\]\n", "smtpd_peername_lookup = no: unknown")
inst.set(smtpd_peername_lookup="yes")

# ---- the zygote: the file read once, and again when it changed ----
d = tempdir()
os.chmod(d, 0o777)      # smtpd runs as nobody under root and logs here
maillog = os.path.join(d, "maillog")
write(maillog, "", 0o666)
write(os.path.join(d, "main.cf"),
      f"maillog_file = {maillog}\nmyhostname = mx.example\nqueue_directory = {d}/queue\n")
write(hosts, "127.0.0.1 first.test\n")
port = free_port()
user = ["-u", "nobody"] if os.geteuid() == 0 else []
acc = start([prog("postern-accept"), "-c", d] + user + ["-z", f"127.0.0.1:{port}", "--",
            prog("postern-smtpd")], env=env)
wait_until(lambda: "listening on" in open(maillog).read() or acc.poll() is not None)


def zygote_session():
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example")
    zygote_session.count += 1
    wait_until(lambda: open(maillog).read().count("disconnect from") >= zygote_session.count, 10)
    return open(maillog).read()


zygote_session.count = 0
like(zygote_session(), r"connect from first\.test\[127\.0\.0\.1\]",
     "-z: the zygote's child names the client from the hosts file")
write(hosts, "127.0.0.1 changed.test   # longer now\n")
ok(wait_until(lambda: "connect from changed.test[127.0.0.1]" in zygote_session(), 10),
   "-z: the hosts file changed: the zygote reads it again")
stop(acc)
done()
