"""cyrussasl.py - a Cyrus SASL setup for smtpd_sasl_type = cyrus in a
test's own directory: an auxprop sasldb made by saslpasswd2 and the
smtpd.conf that cyrus_sasl_config_path names; as root, both belong to
mail_owner, whom the auth service runs as (Debian gives the sasl group
/etc/sasldb2 the same way)."""
import os
import subprocess

import tap
from instance import ROOT_USERS


def sasl_directory(parent, users, mech_list):
    """PARENT/sasl with a sasldb of USERS, (user, realm or None, password)
    each (one test each for saslpasswd2), and an smtpd.conf offering
    MECH_LIST; returns the directory, for cyrus_sasl_config_path."""
    sasl = os.path.join(parent, "sasl")
    os.mkdir(sasl)
    sasldb = os.path.join(sasl, "sasldb2")
    for user, realm, password in users:
        p = subprocess.run(["saslpasswd2", "-p", "-c", "-f", sasldb] + (["-u", realm] if realm else [])
                           + [user], input=password.encode(), capture_output=True)
        tap.is_(p.returncode, 0, f"saslpasswd2 makes {user}") or tap.diag(p.stderr.decode())
    conf = os.path.join(sasl, "smtpd.conf")
    tap.write(conf, f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {sasldb}\n"
                    f"mech_list: {mech_list}\n")
    if os.geteuid() == 0:
        import pwd
        mail = pwd.getpwnam(ROOT_USERS["mail_owner"])
        for path in (sasl, sasldb, conf):
            os.chown(path, mail.pw_uid, mail.pw_gid)
    return sasl


def cyrus_settings(sasl):
    """main.cf lines for smtpd's SASL through that directory (noanonymous)."""
    return ("smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = cyrus\n"
            f"smtpd_sasl_security_options = noanonymous\ncyrus_sasl_config_path = {sasl}\n")
