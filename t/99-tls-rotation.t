#!/usr/bin/env python3
# TLS session ticket keys rotate (tlsmgr's job in Postfix; postern-smtpd(8),
# smtpd_tls_session_cache_timeout): the zygote makes a new key every
# interval and keeps the previous one for decryption only, so a ticket
# resumes for one to two intervals and no longer.  The interval's minimum is
# 120 s, too slow for a test: POSTERN_TEST_TICKET_ROTATION (test-only,
# documented in postern-smtpd(8)) makes it a few seconds here.  Each
# rotation is logged at smtpd_tls_loglevel 2, which the test waits for.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

tap.require(["postern", "postern-smtpd", "postern-accept"], tools=["openssl"])
ROTATION = 6
ROTATED = "new TLS session ticket key; the previous one still opens tickets"

inst = new_instance("--domain", "example.com")
port = int(re.search(r"^127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read(), re.M).group(1))
with open(os.path.join(inst.dir, "main.cf"), "a") as f:
    f.write("smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 2\n"
            "smtpd_tls_session_cache_timeout = 3600s\n")
os.environ["POSTERN_TEST_TICKET_ROTATION"] = str(ROTATION)
r = inst.start()
del os.environ["POSTERN_TEST_TICKET_ROTATION"]
tap.is_(r.returncode, 0, "postern start") or tap.diag(r.stdout + r.stderr)
announced = "POSTERN_TEST_TICKET_ROTATION=%d: TLS session ticket keys rotate every %d seconds" % (ROTATION, ROTATION)
tap.ok(tap.wait_until(lambda: announced in inst.log()), "the test rotation is announced in the log") \
    or tap.diag(inst.log()[-1500:])
tmp = tap.tempdir()


def s_client(*args):
    r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
                 "-servername", "localhost", "-ign_eof"] + list(args), input="QUIT\n", timeout=60)
    return r.stdout + r.stderr


def rotations():
    return inst.log().count(ROTATED)


def next_rotation():
    """Wait for the next rotation's log line; the time it took."""
    before = rotations()
    ok = tap.wait_until(lambda: rotations() > before, timeout=ROTATION * 4)
    return ok


# start right after a rotation, so that each step below has the whole
# interval before the next one
tap.ok(next_rotation(), f"the zygote rotates its key (every {ROTATION} s here)")
first = os.path.join(tmp, "first.pem")
count = rotations()
out = s_client("-sess_out", first)
tap.like(out, r"(?m)^New, TLSv1\.3", "a full handshake issues a ticket under the current key")
out = s_client("-sess_in", first)
tap.like(out, r"(?m)^Reused, TLSv1\.3", "which resumes at once")
tap.is_(rotations(), count, "(no rotation in between)")

tap.ok(next_rotation(), "one rotation later")
second = os.path.join(tmp, "second.pem")
count = rotations()
out = s_client("-sess_in", first, "-sess_out", second)
tap.like(out, r"(?m)^Reused, TLSv1\.3", "the ticket still resumes: the previous key still opens it") \
    or tap.diag(out[-1500:])
tap.like(out, r"TLS session ticket lifetime hint: 3600",
         "and a new ticket comes, still with smtpd_tls_session_cache_timeout as its lifetime")
tap.is_(rotations(), count, "(no rotation in between)")

tap.ok(next_rotation(), "two rotations after the first ticket")
count = rotations()
out = s_client("-sess_in", first)
tap.like(out, r"(?m)^New, TLSv1\.3", "the first ticket no longer resumes: its key was wiped") or tap.diag(out[-1500:])
out = s_client("-sess_in", second)
tap.like(out, r"(?m)^Reused, TLSv1\.3", "the ticket issued one rotation later still does")
tap.is_(rotations(), count, "(no rotation in between)")

# without the test variable the interval is smtpd_tls_session_cache_timeout
# (at least 120 s): nothing rotates within a few seconds (t/99-tls-tickets.t
# checks the lifetime hint)
r = inst.stop()
tap.is_(r.returncode, 0, "postern stop") or tap.diag(r.stdout + r.stderr)
tap.done()
