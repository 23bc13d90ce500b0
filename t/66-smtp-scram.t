#!/usr/bin/env python3
# The smtp runner's SCRAM-SHA-256 and SCRAM-SHA-1 (built in: RFC 5802,
# RFC 7677) against a real SCRAM server, Dovecot's auth service behind a
# second postern's smtpd (smtpd_sasl_type = dovecot); and the 535 cache
# (smtp_sasl_auth_cache_name, smtp_sasl_auth_cache_time): a server that
# refused these credentials with 535 is not asked again while the entry
# lasts, and the mail is deferred (smtp_sasl_auth_soft_bounce = yes) or
# bounced with the remembered reply, as Postfix words it
# ("SASL [CACHED] authentication failed; server HOST said: 535 ...").
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from dovecotauth import DovecotAuth
from instance import new_instance

tap.require(["postern", "postern-smtp", "postern-smtpd"], tools=["dovecot"])

# ---- Dovecot's auth service, SCRAM from a plaintext passwd-file ----
receiver = new_instance("--domain", "direct.test", "-o", "myhostname=receiver.test")
auth = DovecotAuth([("alice", "alice-secret")], "scram-sha-256 scram-sha-1 plain login")
tap.ok(auth.start(), "Dovecot's auth socket is there")
socket_path = auth.socket

with open(os.path.join(receiver.dir, "main.cf"), "a") as f:
    f.write(f"""
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {socket_path}
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions =
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
""")
r = receiver.start()
tap.is_(r.returncode, 0, "the receiving instance starts, authenticating through Dovecot") or tap.diag(r.stderr)
rport = int(re.search(r"(?m)^(?:127\.0\.0\.1:)?(\d+)\s+inet\s", open(os.path.join(receiver.dir, "master.cf")).read()).group(1))
nexthop = f"[127.0.0.1]:{rport}"

sender = new_instance("--domain", "example.com")
passwords = os.path.join(sender.dir, "sasl_passwd")
tap.write(passwords, f"{nexthop} alice:alice-secret\n")
auth_cache = os.path.join(sender.dir, "sasl_auth_cache")


def smtp(*options, rcpt="alice@direct.test"):
    """postern-smtp from a shell, SCRAM only (mutual_auth), with these -o settings."""
    args = [tap.prog("postern-smtp"), "-c", sender.dir, "-o", "smtp_sasl_auth_enable=yes",
            "-o", f"smtp_sasl_password_maps=texthash:{passwords}", "-o", "smtp_tls_security_level=none",
            "-o", "smtp_sasl_security_options=noplaintext, noanonymous, mutual_auth"]
    for o in options:
        args += ["-o", o]
    r = tap.run(args + ["-H", nexthop, "-f", "me@example.com", rcpt], input="Subject: scram\n\nwith SCRAM\n")
    return r.stdout + r.stderr


# 1. SCRAM-SHA-256, chosen first among what Dovecot offers
out = smtp()
tap.like(out, r"alice@direct\.test: dsn=2\.0\.0, status=sent", "SCRAM-SHA-256: sent") or tap.diag(out)
tap.ok(tap.wait_until(lambda: re.search(r"sasl_method=SCRAM-SHA-256, sasl_username=alice", receiver.log()), 20),
       "the server logged sasl_method=SCRAM-SHA-256, sasl_username=alice")
tap.unlike(out, r"without proving", "Dovecot proved it knows the password (server-final verified)")

# 2. SCRAM-SHA-1 by the mechanism filter
out = smtp("smtp_sasl_mechanism_filter=scram-sha-1")
tap.like(out, r"status=sent", "SCRAM-SHA-1: sent")
tap.ok(tap.wait_until(lambda: re.search(r"sasl_method=SCRAM-SHA-1, sasl_username=alice", receiver.log()), 20),
       "the server logged sasl_method=SCRAM-SHA-1")

# 3. a wrong password: Dovecot's SCRAM refuses it, 535; with the 535 cache
#    the second delivery does not ask the server again
tap.write(passwords, f"{nexthop} alice:not-her-password\n")
cache_opts = (f"smtp_sasl_auth_cache_name=proxy:btree:{auth_cache}", "smtp_sasl_auth_cache_time=1h")
out = smtp(*cache_opts)
tap.like(out, r"alice@direct\.test: dsn=4\.7\.8, status=deferred \(SASL authentication failed; server "
              r"127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: authentication failed",
         "a wrong password: deferred with the server's 535") or tap.diag(out)
tap.ok(os.path.exists(auth_cache) and os.stat(auth_cache).st_mode & 0o777 == 0o600,
       "the 535 is remembered in smtp_sasl_auth_cache_name's file (0600)")
tap.ok(b"not-her-password" not in open(auth_cache, "rb").read(), "which holds no password")
sessions = len(re.findall(r"(?<!dis)connect from \S+\[127\.0\.0\.1\]", receiver.log()))
out = smtp(*cache_opts)
tap.like(out, r"alice@direct\.test: dsn=4\.7\.8, status=deferred \(SASL \[CACHED\] authentication failed; "
              r"server 127\.0\.0\.1 said: 535 5\.7\.8 Error: authentication failed",
         "the next delivery: Postfix's [CACHED] deferral with the remembered reply") or tap.diag(out)
tap.ok(tap.wait_until(lambda: len(re.findall(r"disconnect from \S+\[127\.0\.0\.1\]", receiver.log())) > sessions, 20),
       "(the session ended)")
tap.unlike(receiver.log().split("connect from")[-1], r"auth=", "and no AUTH was sent to the server")
out = smtp(*cache_opts, "smtp_sasl_auth_soft_bounce=no")
tap.like(out, r"alice@direct\.test: dsn=5\.7\.8, status=bounced \(SASL \[CACHED\] authentication failed",
         "smtp_sasl_auth_soft_bounce = no: the cached 535 bounces")

# 4. the password is mended: the cache does not stand in the way
tap.write(passwords, f"{nexthop} alice:alice-secret\n")
out = smtp(*cache_opts)
tap.like(out, r"alice@direct\.test: dsn=2\.0\.0, status=sent", "a changed password is tried at once, and works")
tap.is_(open(auth_cache).read(), "",
        "and the 535 entry for the old password is gone (Postfix deletes an entry whose password changed)")

# 5. the entry expires after smtp_sasl_auth_cache_time
tap.write(passwords, f"{nexthop} alice:another-wrong-one\n")
short = (f"smtp_sasl_auth_cache_name=proxy:btree:{auth_cache}", "smtp_sasl_auth_cache_time=1s")
out = smtp(*short)
tap.like(out, r"SASL authentication failed; server \S+ said: 535", "a new wrong password is tried: 535, remembered for 1 s")
tap.ok(tap.wait_until(lambda: "[CACHED]" not in smtp(*short), 10), "asked again once the entry has expired")

# 6. without the cache setting, the server is asked every time
out = smtp()
tap.unlike(out, r"\[CACHED\]", "no smtp_sasl_auth_cache_name: no cache")

sender.stop()
receiver.stop()
auth.stop()
tap.done()
