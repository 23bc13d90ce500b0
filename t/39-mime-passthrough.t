#!/usr/bin/env python3
# What the MIME reader does not understand passes through rewriting byte
# for byte, with header_checks, mime_header_checks and body_checks set (so
# the reader runs) and matching nothing: 8-bit bytes in headers, 1,000
# MIME parts, a multipart whose boundary never comes, a part header that
# never ends, a boundary line past mime_boundary_length_limit.  A header
# longer than header_size_limit is cut as Postfix's cleanup cuts it
# (t/39-mime-errors.t compares that with Postfix 3.7); the body after it
# is left alone.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance

inst = new_instance("--domain", "example.com")
d = inst.dir
tap.write(os.path.join(d, "checks"), "/^X-Never-Matches: nothing/ REJECT no\n")
with open(os.path.join(d, "main.cf"), "a") as f:
    f.write(f"header_checks = regexp:{d}/checks\nmime_header_checks = regexp:{d}/checks\n"
            f"nested_header_checks = regexp:{d}/checks\nbody_checks = regexp:{d}/checks\n")

HEAD = (b"From: a@example.com\nTo: b@example.com\nDate: Mon, 7 Dec 2026 16:00:00 +0000\n"
        b"Message-ID: <pass@example.com>\n")


def rewritten(message):
    """The message as postern-rewrite from a shell hands it on."""
    got, _, err = inst.rewrite(b"Fa@example.com\0Tb@example.com\0\0", message)
    if not got:
        tap.diag(err[-2000:])
    return got


def same(message, what):
    got = rewritten(message)
    tap.ok(got == message, what) or tap.diag(f"{len(got)} bytes out of {len(message)}; first "
                                             f"difference at {next((i for i, (a, b) in enumerate(zip(got, message)) if a != b), min(len(got), len(message)))}")


same(HEAD + "Subject: caf\xe9 \xc3\xa9t\xe9\nX-Raw: \x80\xff\xfe\n".encode("latin-1")
     + b"\nbody \xe9\xff\n", "8-bit bytes in headers and body pass byte for byte")

parts = b"".join(b"--b\nContent-Type: text/plain\nX-Part: %d\n\npart %d\n" % (i, i) for i in range(1000))
same(HEAD + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n" + parts + b"--b--\n",
     "1,000 MIME parts pass byte for byte")

same(HEAD + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=never\n\n"
     b"--other\nContent-Type: text/plain\n\nno part of ours\n",
     "a multipart whose boundary never comes passes byte for byte")

same(HEAD + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nX-Not-Closed: yes\n",
     "a message that ends inside a part's header passes byte for byte")

same(HEAD + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=" + b"q" * 3000 + b"\n\n--"
     + b"q" * 3000 + b"\nContent-Type: text/plain\n\nlong boundary\n--" + b"q" * 3000 + b"--\n",
     "boundaries past mime_boundary_length_limit pass byte for byte")

# a 1 MB header line: cut at header_size_limit (102400), the body whole
big = b"X-Big: " + b"x" * (1024 * 1024) + b"\n"
got = rewritten(HEAD + big + b"\nbody after a big header\n")
head, _, body = got.partition(b"\n\n")
tap.is_(body, b"body after a big header\n", "after a 1 MB header line the body is whole")
tap.ok(head.startswith(HEAD + b"X-Big: xxx") and len(head) < 102400 + len(HEAD) + 100,
       f"and the header is cut at header_size_limit, as Postfix's cleanup ({len(head)} bytes)")
tap.done()
