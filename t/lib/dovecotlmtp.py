"""dovecotlmtp.py - a real Dovecot LMTP server for tests, in a temporary
directory: users from a passwd-file (each with a Maildir under DIR/mail,
owned by the test's uid, or nobody's when the test is root), listening on
DIR/lmtp and on a loopback port; stopped by PID at exit (tap.start)."""
import os
import shutil
import subprocess

import tap


def unprivileged():
    """The dovecot.conf lines a test not run as root needs: Dovecot's
    internal and login users default to dovecot and dovenull, whose groups
    a user cannot chown its run directory to, and anvil chroots."""
    if os.getuid() == 0:
        return ""
    import grp, pwd
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return (f"default_login_user = {user}\ndefault_internal_user = {user}\n"
            f"default_internal_group = {group}\nservice anvil {{\n  chroot =\n}}\n")


def installed():
    """Whether dovecot and its LMTP server are there (./deps --test)."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    return os.access(binary, os.X_OK) and os.path.exists("/usr/lib/dovecot/lmtp")


class DovecotLMTP:
    def __init__(self, users, postmaster="postmaster@lmtp.test", quota=False):
        """users: (name, extra passwd-file fields) pairs, e.g.
        ("bob", "userdb_quota_rule=*:storage=10B") with quota=True."""
        self.binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.dir = tap.tempdir("postern-dovecot-")
        os.chmod(self.dir, 0o755)
        self.mail = os.path.join(self.dir, "mail")
        os.mkdir(self.mail)
        os.chmod(self.mail, 0o1777)
        self.socket = os.path.join(self.dir, "lmtp")
        self.port = tap.free_port()
        self.proc = None
        root = os.getuid() == 0
        uid, gid = (65534, 65534) if root else (os.getuid(), os.getgid())
        d = self.dir
        tap.write(os.path.join(d, "users"), "".join(
            f"{user}::{uid}:{gid}::{self.mail}/{user}::{extra}\n" for user, extra in users))
        quota_conf = "mail_plugins = quota\n" if quota else ""
        quota_plugin = "plugin {\n  quota = maildir:User quota\n}\n" if quota else ""
        tap.write(os.path.join(d, "dovecot.conf"), f"""protocols = lmtp
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
postmaster_address = {postmaster}
hostname = dovecot.test
mail_location = maildir:{self.mail}/%n
{quota_conf}lmtp_save_to_detail_mailbox = no
passdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
{quota_plugin}{unprivileged()}service lmtp {{
  unix_listener {self.socket} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")

    def start(self):
        """Start it; True when its LMTP socket appears (else its log is in diag)."""
        self.proc = tap.start([self.binary, "-F", "-c", os.path.join(self.dir, "dovecot.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if tap.wait_until(lambda: os.path.exists(self.socket), 20):
            return True
        log = os.path.join(self.dir, "dovecot.log")
        tap.diag(open(log).read() if os.path.exists(log) else "")
        return False

    def stop(self):
        if self.proc:
            tap.stop(self.proc)

    def maildir_new(self, user):
        """The messages in user's Maildir new/, as bytes."""
        new = os.path.join(self.mail, user, "new")
        return [open(os.path.join(new, f), "rb").read() for f in os.listdir(new)] if os.path.isdir(new) else []
