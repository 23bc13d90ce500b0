"""netns.py - a test's own "Internet": run the test script again inside a
network and mount namespace of its own (as root, or as root of a user
namespace), with loopback up and /etc/resolv.conf and /etc/hosts of the
test's own, so that a DNS server on 127.0.0.1:53 and servers on any
127.0.0.N address and port (443 too) answer only this test.

    import netns
    netns.enter("POSTERN_MY_TEST_NETNS", ["postern"], ["unbound"])   # first
    ...                                # now inside: the test's own servers
    netns.private_resolver()           # loopback up, resolv.conf, hosts
"""
import os
import subprocess
import sys


def enter(marker, programs=(), tools=(), needs_root=None):
    """Outside the namespace: require what the test needs, then exec the
    script again inside (the environment variable marker says where we
    are); inside, return at once.  needs_root: why the test cannot run
    as a normal user (the root of a user namespace is no root for
    `postern init`, which hands the mailboxes to mail: EINVAL there); it
    is skipped then, saying so.  A machine that cannot make the
    namespace (a chroot) gets one failed test that says why
    (tap.unshare_mount)."""
    import tap
    if os.environ.get(marker) == "1":
        return
    tap.require(list(programs), tools=["unshare", "ip", "mount"] + list(tools))
    if needs_root and os.geteuid() != 0:
        tap.skip_all(needs_root)
    os.environ[marker] = "1"
    argv = tap.unshare_mount(["--net"]) or tap.done()
    sys.stdout.flush()
    os.execvp("unshare", argv + [sys.executable, os.path.abspath(sys.argv[0])])


def private_resolver():
    """Inside: loopback up, and the namespace's resolv.conf naming
    127.0.0.1 and a hosts file with localhost only (bind mounts)."""
    import tap
    tap.is_(subprocess.run(["ip", "link", "set", "lo", "up"]).returncode, 0,
            "loopback up in the test's network namespace")
    home = tap.tempdir()
    resolv = tap.write(os.path.join(home, "resolv.conf"), "nameserver 127.0.0.1\n")
    hosts = tap.write(os.path.join(home, "hosts"), "127.0.0.1 localhost\n")
    for path, target in ((resolv, "/etc/resolv.conf"), (hosts, "/etc/hosts")):
        r = subprocess.run(["mount", "--bind", path, target], capture_output=True, text=True)
        tap.is_(r.returncode, 0, f"{target} is the test's own (mount namespace)") or tap.diag(r.stderr)
    return home
