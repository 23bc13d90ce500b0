#!/usr/bin/env python3
# The smtp runner's TLS policy against real TLS-speaking servers (aiosmtpd
# with STARTTLS, certificates from a test CA): smtp_tls_policy_maps with
# Postfix's levels and attributes, keyed by next hop and parent domain;
# "may" retrying a failed handshake in clear; "secure" for lmtp:inet:
# naming the host; and what a misbehaving server's replies become: bytes
# made printable, and one deadline for a whole reply.
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink
from testca import TestCA

tap.require(["postern", "postern-smtp", "postern-lmtp"], tools=["/usr/bin/python3", "openssl"])

port = tap.free_port()          # every MX listens on this port (smtp_tcp_port)
old_port = tap.free_port("127.0.0.8")
lmtp_port = tap.free_port()
raw_port = tap.free_port("127.0.0.10")
dns = DnsServer([
    "tls.test. MX 10 mx.tls.test.",
    "mx.tls.test. A 127.0.0.5",
    "other.test. MX 10 mx.tls.test.",
    "sub.parent.test. MX 10 plain.parent.test.",
    "plain.parent.test. A 127.0.0.7",
    "fp.test. MX 10 mx.tls.test.",
    "badfp.test. MX 10 mx.tls.test.",
    "bad.test. MX 10 mx.tls.test.",
    "sts.test. MX 10 mx.tls.test.",
    "broken.test. MX 10 mx.tls.test.",
    "ta.test. MX 10 mx.tls.test.",
    "tawrong.test. MX 10 mx.tls.test.",
])
os.environ["POSTERN_DNS_SERVER"] = dns.address

ca = TestCA(tap.tempdir())
chain, key = ca.issue("mx.tls.test")
tls_sink = Sink("127.0.0.5", port, "mx.tls.test", tls={"cert": chain, "key": key})
plain_sink = Sink("127.0.0.7", port, "plain.parent.test")
# a server whose TLS stops at 1.2, for a client that insists on 1.3
old_sink = Sink("127.0.0.8", old_port, "old.test", tls={"cert": chain, "key": key, "max": "TLSv1.2"})
lmtp_sink = Sink("127.0.0.5", lmtp_port, "mx.tls.test", tls={"cert": chain, "key": key}, lmtp=True)

other_ca = TestCA(tap.tempdir(), "another test CA")
digest = ca.cert_sha256(chain)
fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)).upper()
inst = new_instance("--domain", "example.com")
policy = tap.write(os.path.join(inst.dir, "tls_policy"),
                   "tls.test      secure ciphers=high\n"
                   "other.test    secure\n"
                   ".parent.test  encrypt\n"
                   f"fp.test       fingerprint match=00:11|{fingerprint}\n"
                   "badfp.test    fingerprint match=00:11:22:33\n"
                   "bad.test      secure foo=bar\n"
                   f"[127.0.0.8]:{old_port} may protocols=TLSv1.3\n"
                   f"127.0.0.8:{old_port}   encrypt protocols=TLSv1.3\n"
                   f"mx.tls.test:{lmtp_port} secure\n"
                   f"ta.test       secure match=mx.tls.test tafile={ca.cert}\n"
                   f"tawrong.test  secure match=mx.tls.test tafile={other_ca.cert}\n")


def shell(prog, nexthop, rcpt, *options):
    start = time.time()
    r = tap.run([tap.prog(prog), "-c", inst.dir, "-o", f"smtp_tcp_port={port}",
                 "-o", "smtp_tls_security_level=none", "-o", f"smtp_tls_CAfile={ca.cert}",
                 "-o", f"smtp_tls_policy_maps=texthash:{policy}", "-o", "smtp_tls_loglevel=1"]
                + list(options) + ["-H", nexthop, "-f", "s@example.com", rcpt],
                input=b"Subject: tls\n\nhello\n")
    return (r.stdout + r.stderr).decode("utf-8", "replace"), time.time() - start


def resumed(rcpt):
    """Whether the TLS server resumed a session for this recipient's mail."""
    got = [m for m in tls_sink.messages() if rcpt in m["recipients"]]
    return got[0]["resumed"] if got else None


def delivered_over_tls(sink, rcpt):
    got = [m for m in sink.messages() if rcpt in m["recipients"]]
    return got[0]["tls"] if got else None


# secure, from the table: the certificate names mx.tls.test, under the
# next-hop domain tls.test (smtp_tls_secure_cert_match: nexthop, dot-nexthop)
out, _ = shell("postern-smtp", "tls.test", "a@tls.test")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test\[127\.0\.0\.5\]:%d: TLSv1\.[23] "
              r"with cipher \S+" % port, "secure: Verified TLS connection established")
tap.like(out, r"a@tls\.test: .*status=sent", "and the mail is sent")
tap.is_(delivered_over_tls(tls_sink, "a@tls.test"), True, "the server received it over TLS")

tap.is_(tls_sink.sni()[-1:], ["-"], "no SNI by default, as Postfix (smtp_tls_servername is empty)")
shell("postern-smtp", "tls.test", "a2@tls.test", "-o", "smtp_tls_servername=hostname")
tap.is_(tls_sink.sni()[-1:], ["mx.tls.test"], "smtp_tls_servername = hostname: the MX host's name")
shell("postern-smtp", "tls.test", "a3@tls.test", "-o", "smtp_tls_policy_maps=inline:{ {tls.test = may servername=sni.example} }")
tap.is_(tls_sink.sni()[-1:], ["sni.example"], "servername= in the policy table")

# secure for a domain the certificate does not name
out, _ = shell("postern-smtp", "other.test", "b@other.test")
tap.like(out, r"Untrusted TLS connection established to mx\.tls\.test",
         "other.test: a certificate of another name is Untrusted (Postfix 3.7's words)")
tap.like(out, r"b@other\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "but the name is not other.test's: deferred 4.7.5")

# ".parent.test encrypt" covers sub.parent.test; its server has no STARTTLS
out, _ = shell("postern-smtp", "sub.parent.test", "c@sub.parent.test")
tap.like(out, r"c@sub\.parent\.test: dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered "
              r"by host plain\.parent\.test\[127\.0\.0\.7\]\)", "a parent-domain entry applies (encrypt)")
tap.is_([m for m in plain_sink.messages() if "c@sub.parent.test" in m["recipients"]], [],
        "nothing was sent in clear")

# fingerprint: one of the '|'-separated digests matches
out, _ = shell("postern-smtp", "fp.test", "d@fp.test")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test", "fingerprint: Verified")
tap.like(out, r"d@fp\.test: .*status=sent", "and sent")
out, _ = shell("postern-smtp", "badfp.test", "e@badfp.test")
tap.like(out, r"e@badfp\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "a fingerprint that does not match: deferred")

# tafile=: that CA only, whatever smtp_tls_CAfile trusts
out, _ = shell("postern-smtp", "ta.test", "ta@ta.test", "-o", f"smtp_tls_CAfile={other_ca.cert}")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test", "tafile=: the chain ends at its CA: Verified")
tap.like(out, r"ta@ta\.test: .*status=sent", "and sent")
out, _ = shell("postern-smtp", "tawrong.test", "tb@tawrong.test")
tap.like(out, r"tb@tawrong\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "tafile= of another CA: not verified, though smtp_tls_CAfile trusts the chain")

# a wrong attribute: Postfix's warning and "client TLS configuration problem"
out, _ = shell("postern-smtp", "bad.test", "f@bad.test")
tap.like(out, r"warning: smtp_tls_policy_maps, next-hop destination \"bad\.test\": invalid attribute name: \"foo\"",
         "the bad attribute is named as Postfix names it")
tap.like(out, r"TLS policy lookup for bad\.test/mx\.tls\.test: client TLS configuration problem",
         "Postfix's policy warning")
tap.like(out, r"f@bad\.test: dsn=4\.7\.5, status=deferred \(client TLS configuration problem\)",
         "deferred 4.7.5, no connection made")
tap.is_([m for m in tls_sink.messages() if "f@bad.test" in m["recipients"]], [], "nothing was sent")

# [host]:port "may protocols=TLSv1.3" to a TLS 1.2 server: the handshake
# fails.  As Postfix 3.7 does (compared with it on this machine), a fresh
# message is deferred; one that has waited minimal_backoff_time goes to
# the same server in clear ("When opportunistic TLS handshakes fail,
# Postfix retries the connection with TLS disabled")
out, _ = shell("postern-smtp", f"[127.0.0.8]:{old_port}", "g@old.test")
tap.like(out, r"SSL_connect error to 127\.0\.0\.8\[127\.0\.0\.8\]:%d" % old_port, "the handshake fails")
tap.like(out, r"g@old\.test: dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)",
         "may, a fresh message: deferred once, as Postfix")
out, _ = shell("postern-smtp", f"[127.0.0.8]:{old_port}", "g@old.test", "-o", "minimal_backoff_time=0s")
tap.like(out, r"NOQUEUE: Cannot start TLS: handshake failure", "a message that waited: Postfix's line")
tap.like(out, r"g@old\.test: .*dsn=2\.0\.0, status=sent", "and it is sent all the same")
tap.is_(delivered_over_tls(old_sink, "g@old.test"), False, "in clear, on a second connection")
# the same server as host:port "encrypt protocols=TLSv1.3": deferred
out, _ = shell("postern-smtp", f"127.0.0.8:{old_port}", "h@old.test")
tap.like(out, r"h@old\.test: dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)",
         "encrypt: the failed handshake defers")
tap.is_([m for m in old_sink.messages() if "h@old.test" in m["recipients"]], [], "nothing sent in clear")

# Postfix's rule: with SASL credentials for the server, a failed handshake
# under "may" never falls back to clear, however long the message waited
# (the password would go in clear)
out, _ = shell("postern-smtp", f"[127.0.0.8]:{old_port}", "k@old.test", "-o", "minimal_backoff_time=0s",
               "-o", "smtp_sasl_auth_enable=yes",
               "-o", f"smtp_sasl_password_maps=inline:{{ {{[127.0.0.8]:{old_port} = user:secret}} }}")
tap.like(out, r"k@old\.test: dsn=4\.7\.5, status=deferred \(Cannot start TLS: handshake failure\)",
         "may, SASL credentials for the server: deferred, no clear fallback")
tap.unlike(out, r"NOQUEUE: Cannot start TLS", "(no fallback line)")
tap.is_([m for m in old_sink.messages() if "k@old.test" in m["recipients"]], [], "nothing sent in clear")

# the same through qmgr: deferred at the first attempt, sent in clear at
# the retry after minimal_backoff_time (3 s here; ages count in whole seconds)
tap.write(os.path.join(inst.dir, "transport"), f"old.test smtp:[127.0.0.8]:{old_port}\n")
for setting in (f"transport_maps=texthash:{inst.dir}/transport", "smtp_tls_security_level=may",
                "smtp_tls_protocols=TLSv1.3", "smtp_tls_loglevel=1", "minimal_backoff_time=3s",
                "maximal_backoff_time=4s", "queue_run_delay=1s"):
    inst.postern("conf", "-e", setting)
tap.is_(inst.start().returncode, 0, "an instance starts")
r = inst.sendmail(["-f", "s@example.com", "q@old.test"], b"Subject: retry in clear\n\nhello\n")
tap.is_(r.returncode, 0, "sendmail to q@old.test")
tap.wait_until(lambda: re.search(r"to=<q@old\.test>.*status=sent", inst.log()), 60)
tap.like(inst.log(), r"to=<q@old\.test>, relay=127\.0\.0\.8\[127\.0\.0\.8\]:%d, .*dsn=4\.7\.5, "
                     r"status=deferred \(Cannot start TLS: handshake failure\)" % old_port,
         "qmgr: deferred at the first attempt")
tap.like(inst.log(), r"postern/smtp\[\d+\]: [0-9A-F]+: Cannot start TLS: handshake failure", "then Postfix's line")
tap.like(inst.log(), r"to=<q@old\.test>, relay=127\.0\.0\.8\[127\.0\.0\.8\]:%d, .*status=sent" % old_port,
         "and sent in clear at the retry")
tap.is_(delivered_over_tls(old_sink, "q@old.test"), False, "without TLS")

# a clear fallback session is never kept for the next message: with
# connection reuse on for this next hop and one runner at a time, each of
# two messages tries TLS first, and falls back on its own
for setting in ("smtp_connection_cache_destinations=127.0.0.8", "smtp_destination_concurrency_limit=1",
                "smtp_connection_cache_time_limit=10s"):
    inst.postern("conf", "-e", setting)
inst.stop()
tap.is_(inst.start().returncode, 0, "restarted with connection reuse for 127.0.0.8")
ids = []
for rcpt in ("q1@old.test", "q2@old.test"):
    r = inst.sendmail(["-f", "s@example.com", rcpt], b"Subject: fallback\n\nhello\n")
    tap.is_(r.returncode, 0, f"sendmail to {rcpt}")
tap.ok(tap.wait_until(lambda: len(re.findall(r"to=<q[12]@old\.test>.*status=sent", inst.log())) == 2, 60),
       "both sent at the retry") or tap.diag(inst.log()[-3000:])
for rcpt in ("q1", "q2"):
    m = re.search(r"postern/qmgr\[\d+\]: ([0-9A-F]+): to=<%s@old\.test>.*status=sent" % rcpt, inst.log())
    qid = m.group(1) if m else "none"
    tap.like(inst.log(), r"postern/smtp\[\d+\]: %s: Cannot start TLS: handshake failure" % qid,
             f"{rcpt}: its own handshake failed before it went in clear (no kept clear session)")
tap.is_([delivered_over_tls(old_sink, r) for r in ("q1@old.test", "q2@old.test")], [False, False],
        "both in clear")
inst.stop()
for setting in ("smtp_tls_security_level", "smtp_tls_protocols", "transport_maps",
                "smtp_connection_cache_destinations", "smtp_destination_concurrency_limit",
                "smtp_connection_cache_time_limit"):
    inst.postern("conf", "-X", setting)

# the session cache through qmgr, as seed 003 names it
# (btree:${queue_directory}/smtp_scache): the runners, as mail_owner,
# make and share the file; the second message's session is resumed
# (may: the runners' user need not read the test's CA)
for setting in (f"smtp_tcp_port={port}", "smtp_tls_security_level=may",
                "smtp_tls_session_cache_database=btree:${queue_directory}/smtp_scache", "smtp_tls_loglevel=1"):
    inst.postern("conf", "-e", setting)
tap.is_(inst.start().returncode, 0, "an instance with smtp_tls_session_cache_database starts")
for rcpt in ("s1@tls.test", "s2@tls.test"):
    inst.sendmail(["-f", "s@example.com", rcpt], b"Subject: cached\n\nhello\n")
    tap.ok(tap.wait_until(lambda: re.search(r"to=<%s>.*status=sent" % re.escape(rcpt), inst.log()), 30),
           f"qmgr: {rcpt} sent") or tap.diag(inst.log()[-2000:])
qcache = os.path.join(inst.dir, "queue", "smtp_scache")
st = os.stat(qcache) if os.path.exists(qcache) else None
owner = os.stat(os.path.join(inst.dir, "queue", "deferred")).st_uid
tap.ok(st is not None and st.st_mode & 0o777 == 0o600 and st.st_uid == owner,
       "the cache file in the queue directory: 0600, mail_owner's (the runners' user)")
tap.is_([resumed(r) for r in ("s1@tls.test", "s2@tls.test")], [False, True],
        "the second message's runner resumed the first one's session")
tap.like(inst.log(), r"postern/smtp\[\d+\]: mx\.tls\.test\[127\.0\.0\.5\]:\d+: re-using session with untrusted "
                     r"certificate, look for details earlier in the log",
         "an untrusted certificate's session resumed: Postfix's note (no CA here)")
inst.stop()
for setting in ("smtp_tcp_port", "smtp_tls_security_level", "smtp_tls_session_cache_database",
                "smtp_tls_loglevel"):
    inst.postern("conf", "-X", setting)

# The client TLS session cache (smtp_tls_session_cache_database): each
# postern-smtp is a process of its own, as qmgr's runners are; the second
# delivery to the same server resumes the first one's session, which the
# server sees (its SSL object says session_reused)
scache = os.path.join(inst.dir, "data", "smtp_scache")
os.makedirs(os.path.dirname(scache), exist_ok=True)
cache = ("-o", f"smtp_tls_session_cache_database=btree:{scache}", "-o", "smtp_tls_loglevel=2")



out, _ = shell("postern-smtp", "tls.test", "r1@tls.test", *cache)
tap.like(out, r"r1@tls\.test: .*status=sent", "with a session cache: sent")
tap.is_(resumed("r1@tls.test"), False, "the first session is a full handshake")
tap.ok(os.path.exists(scache) and os.stat(scache).st_mode & 0o777 == 0o600,
       "the session is kept in the cache file, mode 0600")
tap.like(out, r"save session [0-9a-f]{64} to btree:%s cache" % re.escape(scache),
         "smtp_tls_loglevel 2: Postfix's \"save session\" line")
out, _ = shell("postern-smtp", "tls.test", "r2@tls.test", *cache)
tap.like(out, r"mx\.tls\.test\[127\.0\.0\.5\]:%d: Reusing old session" % port,
         "the next runner: \"Reusing old session\" (smtp_tls_loglevel 2, as Postfix)")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test", "still Verified (secure) when resumed")
tap.like(out, r"r2@tls\.test: .*status=sent", "and sent")
tap.is_(resumed("r2@tls.test"), True, "the server resumed the session")
shell("postern-smtp", "tls.test", "r3@tls.test")
tap.is_(resumed("r3@tls.test"), False, "without smtp_tls_session_cache_database: no resumption")
shell("postern-smtp", "fp.test", "r4@fp.test", *cache)
tap.is_(resumed("r4@fp.test"), False, "another TLS policy (fingerprint) for the same server: its own session")
shell("postern-smtp", "tls.test", "r5@tls.test", *cache, "-o", "smtp_tls_session_cache_timeout=1s")
# the entry kept for 1 s ("EXPIRES KEY HEX" lines): wait until it is past
soon = [int(line.split()[0]) for line in open(scache) if int(line.split()[0]) <= time.time() + 2]
tap.is_(len(soon), 1, "smtp_tls_session_cache_timeout = 1s: the session is kept for 1 s")
tap.wait_until(lambda: time.time() > max(soon + [0]), 5)
shell("postern-smtp", "tls.test", "r6@tls.test", *cache)
tap.is_(resumed("r6@tls.test"), False, "an expired session is not offered")
os.chmod(scache, 0o644)
out, _ = shell("postern-smtp", "tls.test", "r7@tls.test", *cache)
tap.like(out, r"warning: cannot save a TLS session to %s" % re.escape(scache),
         "a cache file others may read is not used (warned)")
tap.like(out, r"r7@tls\.test: .*status=sent", "and the mail goes all the same")
tap.is_(resumed("r7@tls.test"), False, "without resumption")

# LMTP: lmtp:inet:mx.tls.test:PORT, looked up without "inet:", and
# "secure" checks mx.tls.test (not "inet")
out, _ = shell("postern-lmtp", f"inet:mx.tls.test:{lmtp_port}", "i@lmtp.test",
               "-o", "lmtp_tls_security_level=none", "-o", f"lmtp_tls_CAfile={ca.cert}",
               "-o", f"lmtp_tls_policy_maps=texthash:{policy}", "-o", "lmtp_tls_loglevel=1")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test\[127\.0\.0\.5\]:%d" % lmtp_port,
         "lmtp:inet: secure verifies the host's name")
tap.like(out, r"i@lmtp\.test: .*status=sent", "and the LMTP server takes the mail")
tap.is_(delivered_over_tls(lmtp_sink, "i@lmtp.test"), True, "over TLS")


# A server that misbehaves, on a raw socket: its reply to RCPT holds a
# control byte, a byte that is no UTF-8 and a UTF-8 letter; another sends
# its greeting one line every 0.4 s.
def raw_server(address, port_number, script):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port_number))
    listener.listen(5)

    def serve():
        while True:
            conn, _ = listener.accept()
            try:
                script(conn)
            except OSError:
                pass
            conn.close()
    threading.Thread(target=serve, daemon=True).start()


def odd_bytes(conn):
    f = conn.makefile("rb")
    conn.sendall(b"220 raw.test ESMTP\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            conn.sendall(b"250 raw.test\r\n")
        elif verb == b"MAIL":
            conn.sendall(b"250 2.1.0 Ok\r\n")
        elif verb == b"RCPT":
            conn.sendall(b"550 5.1.1 <j@raw.test>: bad\x01byte \xff and caf\xc3\xa9\r\n")
        elif verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"503 5.5.1 no\r\n")


def slow_greeting(conn):
    for i in range(20):
        conn.sendall(b"220-still greeting, line %d\r\n" % i)
        time.sleep(0.4)
    conn.sendall(b"220 raw.test\r\n")


raw_server("127.0.0.10", raw_port, odd_bytes)
raw_server("127.0.0.11", raw_port, slow_greeting)
out, _ = shell("postern-smtp", f"[127.0.0.10]:{raw_port}", "j@raw.test")
tap.like(out, r"j@raw\.test: dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.10\[127\.0\.0\.10\] said: "
              r"550 5\.1\.1 <j@raw\.test>: bad\?byte \? and caf\?\? \(in reply to RCPT TO command\)\)",
         "the reply is made printable: control bytes and bytes outside ASCII as '?' in the log")
tap.unlike(out, "[\x00-\x08\x0b-\x1f\x7f\ufffd]", "no control byte or broken UTF-8 in what is logged")
out, elapsed = shell("postern-smtp", f"[127.0.0.11]:{raw_port}", "k@raw.test", "-o", "smtp_helo_timeout=2s")
tap.like(out, r"k@raw\.test: dsn=4\.4\.2, status=deferred \(conversation with 127\.0\.0\.11\[127\.0\.0\.11\] "
              r"timed out while receiving the initial server greeting\)",
         "a greeting that dribbles in line by line times out")
tap.ok(elapsed < 6, f"after smtp_helo_timeout for the whole reply ({elapsed:.1f} s; 20 lines would take 8)")


# smtp_tls_policy_maps through a socketmap, as Postfix reaches an MTA-STS
# policy server (postfix-mta-sts-resolver answers "OK secure match=..."):
# here a socketmap server on a raw socket speaking the protocol
# (netstrings "NAME KEY" and "OK value" / "NOTFOUND " / "TEMP why")
socketmap_port = tap.free_port()
socketmap_log = []


def socketmap(conn):
    f = conn.makefile("rb")
    while True:
        digits = b""
        while True:
            c = f.read(1)
            if not c:
                return
            if c == b":":
                break
            digits += c
        request = f.read(int(digits)).decode()
        f.read(1)                               # ","
        name, key = request.split(" ", 1)
        socketmap_log.append(request)
        answer = {"sts.test": "OK secure match=mx.tls.test",
                  "broken.test": "TEMP the policy server has a problem"}.get(key, "NOTFOUND ")
        if name != "postfix":
            answer = "PERM unknown map"
        data = answer.encode()
        conn.sendall(b"%d:%s," % (len(data), data))


raw_server("127.0.0.1", socketmap_port, socketmap)
sm = f"socketmap:inet:127.0.0.1:{socketmap_port}:postfix"
r = inst.postern("map", "-q", "sts.test", sm)
tap.is_((r.returncode, r.stdout.strip()), (0, "secure match=mx.tls.test"),
        "postern map -q through the socketmap: found") or tap.diag(r.stderr)
r = inst.postern("map", "-q", "nowhere.test", sm)
tap.is_(r.returncode, 1, "NOTFOUND: not found")
r = inst.postern("map", "-q", "broken.test", sm)
tap.is_(r.returncode, 75, "TEMP: try again") or tap.diag(r.stdout + r.stderr)
tap.like(r.stdout + r.stderr, r"the policy server has a problem", "the server's words are logged")
# the lookup service serves the tables main.cf names (proxy_read_maps)
tap.is_(inst.postern("conf", "-e", f"smtp_tls_policy_maps=proxy:{sm}").returncode, 0, "main.cf names it")
tap.is_(inst.start().returncode, 0, "the instance starts (its lookup service)")
out, _ = shell("postern-smtp", "sts.test", "m@sts.test", "-o", f"smtp_tls_policy_maps=proxy:{sm}")
tap.like(out, r"Verified TLS connection established to mx\.tls\.test", "the socketmap's secure policy applies, "
              "looked up through the lookup service (proxy:)")
tap.like(out, r"m@sts\.test: .*status=sent", "and the mail is sent")
tap.ok("postfix sts.test" in socketmap_log, "the server was asked for the next-hop domain")
out, _ = shell("postern-smtp", "broken.test", "n@broken.test", "-o", f"smtp_tls_policy_maps=proxy:{sm}")
tap.like(out, r"n@broken\.test: dsn=4\.7\.5, status=deferred \(client TLS configuration problem\)",
         "a policy server that fails: deferred, as Postfix does")
inst.stop()
tap.done()
