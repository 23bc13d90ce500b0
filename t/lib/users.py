"""users.py - temporary system users for tests run as root: useradd with a
home in a temporary directory (mode 0755) and a group of the same name,
userdel at exit.  A user that cannot be made ends the test (skip_all)."""
import atexit
import os
import pwd
import subprocess

from tap import skip_all, tempdir

_created = []


def _remove_users():
    for name in _created:
        subprocess.run(["userdel", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def create_users(names):
    """Make each user of names; their pwd entries, in the same order."""
    if not _created:
        atexit.register(_remove_users)
    homes = tempdir()
    os.chmod(homes, 0o755)
    for name in names:
        r = subprocess.run(["useradd", "-m", "-d", os.path.join(homes, name), "-U", "-s", "/bin/sh", name],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode:
            skip_all(f"useradd {name}: {r.stdout.decode(errors='replace')}")
        _created.append(name)
    return [pwd.getpwnam(name) for name in names]
