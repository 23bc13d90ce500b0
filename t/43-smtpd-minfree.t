#!/usr/bin/env python3
# Disk space at the door: on a small tmpfs holding the queue, smtpd answers
# MAIL FROM with Postfix's "452 4.3.1 Insufficient system storage" when less
# than 1.5 x message_size_limit is free (postconf(5) queue_minfree), when the
# free space is at most queue_minfree, and when the SIZE= the client declares
# would not fit; with room again MAIL is accepted.  Needs root to mount the
# tmpfs; skipped otherwise.
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from smtpdtest import Client, Instance

if os.geteuid() != 0:
    tap.skip_all("needs root to mount a tmpfs")
inst = Instance({"message_size_limit": "400000", "queue_minfree": "0"})
queue = inst.settings["queue_directory"]
m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "postern-test", queue],
                   capture_output=True, text=True)
if m.returncode != 0:
    tap.skip_all("cannot mount a tmpfs: " + m.stderr.strip())
filler = os.path.join(queue, "filler")
try:
    port = inst.listen()
    st = os.statvfs(queue)
    free = st.f_bavail * st.f_frsize

    def fill_to(left):
        with open(filler, "wb") as f:
            f.truncate(0)
            f.write(b"\0" * (free - left))

    def mail(line):
        c = Client(port)
        c.reply()
        c.cmd("EHLO client.example")
        r = c.cmd(line)
        c.cmd("QUIT")
        c.close()
        return r

    fill_to(700000)     # more than 1.5 x 400000 free
    tap.is_(mail("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok",
            "MAIL is accepted with more than 1.5 x message_size_limit free")
    tap.is_(mail("MAIL FROM:<a@example.org> SIZE=400000"), "452 4.3.1 Insufficient system storage",
            "a declared SIZE that would take more than half of the free space is refused")
    tap.is_(mail("MAIL FROM:<a@example.org> SIZE=100000"), "250 2.1.0 Ok",
            "a small declared SIZE is accepted")
    fill_to(500000)     # less than 600000
    tap.is_(mail("MAIL FROM:<a@example.org>"), "452 4.3.1 Insufficient system storage",
            "below 1.5 x message_size_limit MAIL FROM is refused at once, as Postfix does")
    tap.like(inst.log(), r"not enough free space in queue directory",
             "and the log says why")
    inst.set(message_size_limit="0", queue_minfree="600000")
    tap.is_(mail("MAIL FROM:<a@example.org>"), "452 4.3.1 Insufficient system storage",
            "at most queue_minfree free: refused (message_size_limit = 0: no limit)")
    inst.set(queue_minfree="0")
    tap.is_(mail("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok",
            "with neither limit set MAIL is accepted")
    inst.set(message_size_limit="400000")
    os.unlink(filler)
    tap.is_(mail("MAIL FROM:<a@example.org> SIZE=1000"), "250 2.1.0 Ok",
            "once space is freed MAIL is accepted again")
finally:
    inst.stop()
    if os.path.exists(filler):
        os.unlink(filler)
    u = subprocess.run(["umount", queue], capture_output=True, text=True)
    tap.ok(u.returncode == 0, "the tmpfs is unmounted")
tap.done()
