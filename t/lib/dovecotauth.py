"""dovecotauth.py - a real Dovecot auth server for tests (Dovecot's SASL:
PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256, ...), in a temporary
directory: users and plaintext passwords in a passwd-file, the client
socket at DIR/auth-client for smtpd_sasl_type = dovecot; stopped by PID at
exit (tap.start).

    auth = DovecotAuth([("dana", "dana-secret")], "plain login cram-md5")
    auth.start()                    # True when its socket is there
    ("smtpd_sasl_type=dovecot", "smtpd_sasl_path=" + auth.socket)
"""
import os
import shutil
import subprocess

import tap
from dovecotlmtp import unprivileged


class DovecotAuth:
    def __init__(self, users, mechanisms):
        self.binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.dir = tap.tempdir("postern-dovecot-auth-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "auth-client")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        d = self.dir
        tap.write(os.path.join(d, "users"), "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in users))
        tap.write(os.path.join(d, "dovecot.conf"), f"""protocols =
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log_path}
auth_verbose = yes
ssl = no
auth_failure_delay = 0
auth_mechanisms = {mechanisms}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
{unprivileged()}service auth {{
  unix_listener {self.socket} {{
    mode = 0666
  }}
}}
""")

    def installed(self):
        return os.access(self.binary, os.X_OK)

    def start(self):
        """Start it; True when its socket appears (else its log is in diag)."""
        self.proc = tap.start([self.binary, "-F", "-c", os.path.join(self.dir, "dovecot.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if tap.wait_until(lambda: os.path.exists(self.socket), 20):
            return True
        tap.diag(self.log())
        return False

    def log(self):
        return open(self.log_path).read() if os.path.exists(self.log_path) else ""

    def stop(self):
        if self.proc:
            tap.stop(self.proc)
