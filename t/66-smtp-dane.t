#!/usr/bin/env python3
# DANE (RFC 7672) in the smtp runner: zones signed with ldns-signzone and
# served by nsd, validated by the runner's own libunbound against the
# zones' trust anchors (smtp_dns_support_level = dnssec,
# dnssec_trust_anchor_file), a TLS server in aiosmtpd whose certificate
# comes from a test CA.  What a user sees: "Verified TLS connection
# established" where a TLSA record matches (DANE-EE 3 1 1, DANE-TA 2 0 1),
# a deferral where it does not or where the signature is bogus, and
# Postfix's fallbacks (no TLSA or an unsigned zone: may; unusable records:
# encrypt; an MX record that is not signed: "Trusted").
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from instance import new_instance
from signedzones import SignedZones
from smtpsink import Sink
from testca import TestCA

tap.require(["postern", "postern-smtp", "postern-qmgr"],
            tools=["/usr/bin/python3", "openssl", "nsd", "ldns-signzone", "ldns-keygen"])

port = tap.free_port("127.0.0.6")
hosts = ["mx-ok", "mx-ta", "mx-wrong", "mx-unusable", "mx-notlsa"]
ca = TestCA(tap.tempdir())
chain, key = ca.issue(*[h + ".dane.test" for h in hosts], "mx.bogus.test", "mx.plain.test")
spki = ca.spki_sha256(chain)
records = []
for h in hosts:
    records += [f"{h[3:]} MX 10 {h}.dane.test.", f"{h} A 127.0.0.6"]
records += [f"_{port}._tcp.mx-ok TLSA 3 1 1 {spki}",
            f"_{port}._tcp.mx-ta TLSA 2 0 1 {ca.cert_sha256(ca.cert)}",
            f"_{port}._tcp.mx-wrong TLSA 3 1 1 {'00' * 32}",
            f"_{port}._tcp.mx-unusable TLSA 1 1 1 {spki}"]
zones = SignedZones({
    "dane.test": {"records": records},
    # the TLSA record is changed after signing: its signature is bogus
    "bogus.test": {"records": ["@ MX 10 mx.bogus.test.", "mx A 127.0.0.6",
                               f"_{port}._tcp.mx TLSA 3 1 1 {spki}"], "tamper": ["TLSA"]},
    # not signed: its (wrong) TLSA record must not count
    "plain.test": {"records": ["@ MX 10 mx.plain.test.", "mx A 127.0.0.6",
                               f"_{port}._tcp.mx TLSA 3 1 1 {'00' * 32}",
                               "insecuremx MX 10 mx-ok.dane.test."], "signed": False},
})
os.environ["POSTERN_DNS_SERVER"] = zones.address
sink = Sink("127.0.0.6", port, "mx-ok.dane.test", tls={"cert": chain, "key": key})

inst = new_instance("--domain", "example.com",
                    "-o", f"smtp_tcp_port={port}", "-o", "smtp_tls_security_level=dane",
                    "-o", "smtp_dns_support_level=dnssec",
                    "-o", f"dnssec_trust_anchor_file={zones.trust_anchors}",
                    "-o", "smtp_tls_loglevel=1", "-o", "smtp_tls_report_enable=yes")


def shell(domain, rcpt, *options):
    r = tap.run([tap.prog("postern-smtp"), "-c", inst.dir] + list(options)
                + ["-H", domain, "-f", "s@example.com", rcpt], input=b"Subject: dane\n\nhello\n")
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def over_tls(rcpt):
    got = [m for m in sink.messages() if rcpt in m["recipients"]]
    return got[0]["tls"] if got else None


def established(out, how, host):
    return re.search(r"%s TLS connection established to %s\[127\.0\.0\.6\]:%d: TLSv1\.[23] with cipher"
                     % (how, re.escape(host), port), out)


out = shell("ok.dane.test", "a@ok.dane.test")
tap.ok(established(out, "Verified", "mx-ok.dane.test"), "DANE-EE 3 1 1 matches: Verified") or tap.diag(out)
tap.like(out, r"a@ok\.dane\.test: .*dsn=2\.0\.0, status=sent", "and the mail is sent")
tap.is_(over_tls("a@ok.dane.test"), True, "over TLS")

out = shell("ta.dane.test", "b@ta.dane.test")
tap.ok(established(out, "Verified", "mx-ta.dane.test"), "DANE-TA 2 0 1 (the CA) matches: Verified") \
    or tap.diag(out)
tap.like(out, r"b@ta\.dane\.test: .*status=sent", "and sent")

out = shell("wrong.dane.test", "c@wrong.dane.test")
tap.ok(established(out, "Untrusted", "mx-wrong.dane.test"), "a TLSA record that does not match: Untrusted") \
    or tap.diag(out)
tap.like(out, r"c@wrong\.dane\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "and deferred 4.7.5")
tap.is_(over_tls("c@wrong.dane.test"), None, "nothing was sent")

out = shell("bogus.test", "d@bogus.test")
tap.like(out, r"DANE TLSA lookup problem: _%d\._tcp\.mx\.bogus\.test: DNSSEC validation failed" % port,
         "a bogus signature: the lookup fails validation")
tap.like(out, r"d@bogus\.test: dsn=4\.7\.5, status=deferred \(TLSA lookup error for mx\.bogus\.test:%d\)" % port,
         "and the mail is deferred")
tap.is_(over_tls("d@bogus.test"), None, "no connection was made")

out = shell("plain.test", "e@plain.test")
tap.ok(established(out, "Untrusted", "mx.plain.test"), "an unsigned zone: its TLSA record is ignored (may)") \
    or tap.diag(out)
tap.like(out, r"e@plain\.test: .*status=sent", "and the mail is sent over opportunistic TLS")

out = shell("notlsa.dane.test", "f@notlsa.dane.test")
tap.like(out, r"f@notlsa\.dane\.test: .*status=sent", "no TLSA record: may, sent")
out = shell("notlsa.dane.test", "g@notlsa.dane.test", "-o", "smtp_tls_security_level=dane-only")
tap.like(out, r"g@notlsa\.dane\.test: dsn=4\.7\.5, status=deferred \(no TLSA records found\)",
         "dane-only without TLSA records: deferred")

out = shell("unusable.dane.test", "h@unusable.dane.test")
tap.ok(established(out, "Untrusted", "mx-unusable.dane.test"),
       "only a PKIX-EE (1) record: unusable in SMTP, encrypt without authentication") or tap.diag(out)
tap.like(out, r"h@unusable\.dane\.test: .*status=sent", "and sent (encrypted)")
out = shell("unusable.dane.test", "i@unusable.dane.test", "-o", "smtp_tls_security_level=dane-only")
tap.like(out, r"i@unusable\.dane\.test: dsn=4\.7\.5, status=deferred \(TLSA records unusable\)",
         "dane-only: unusable records defer")

out = shell("insecuremx.plain.test", "j@insecuremx.plain.test")
tap.ok(established(out, "Trusted", "mx-ok.dane.test"),
       "an MX record that is not signed, a host with a matching TLSA record: only Trusted") or tap.diag(out)
tap.like(out, r"j@insecuremx\.plain\.test: .*status=sent", "and sent")

out = shell("insecuremx.plain.test", "j2@insecuremx.plain.test", "-o", "smtp_tls_dane_insecure_mx_policy=may")
tap.ok(established(out, "Untrusted", "mx-ok.dane.test"),
       "smtp_tls_dane_insecure_mx_policy = may: the unsigned MX gets opportunistic TLS") or tap.diag(out)

out = shell("wrong.dane.test", "k@wrong.dane.test", "-o", "smtp_dns_support_level=")
tap.like(out, r"wrong\.dane\.test: dane configured with dnssec lookups disabled",
         "dane without smtp_dns_support_level = dnssec: Postfix's warning")
tap.like(out, r"k@wrong\.dane\.test: .*status=sent", "and may instead (the wrong TLSA record is not looked at)")

# the level from smtp_tls_policy_maps, with a global level of may
out = shell("wrong.dane.test", "l@wrong.dane.test", "-o", "smtp_tls_security_level=may",
            "-o", "smtp_tls_policy_maps=inline:{wrong.dane.test=dane-only}")
tap.like(out, r"l@wrong\.dane\.test: dsn=4\.7\.5, status=deferred \(Server certificate not verified\)",
         "dane-only from the policy table applies")

# TLS-RPT (RFC 8460): what each attempt recorded, policy type tlsa
data_dir = inst.postern("conf", "-h", "data_directory").stdout.strip()
tlsrpt_dir = os.path.join(data_dir, "tlsrpt")
rows = []
for day in (os.listdir(tlsrpt_dir) if os.path.isdir(tlsrpt_dir) else []):
    rows += [l.split("\t") for l in open(os.path.join(tlsrpt_dir, day)).read().splitlines()]
seen = {(r[1], r[2], r[3]) for r in rows if len(r) == 8}
for want in [("ok.dane.test", "tlsa", "success"), ("wrong.dane.test", "tlsa", "tlsa-invalid"),
             ("bogus.test", "tlsa", "dnssec-invalid")]:
    tap.ok(want in seen, "TLS-RPT recorded: %s %s %s" % want) or tap.diag(rows)
ok_rows = [r for r in rows if len(r) == 8 and r[1] == "ok.dane.test"]
tap.like(ok_rows[0][7] if ok_rows else "", r"^3 1 1 [0-9a-f]{64}$",
         "the policy-string of a tlsa policy: the usable TLSA record")

# end to end: the instance's qmgr hands the mail to the runner
tap.is_(inst.start().returncode, 0, "the instance starts")
r = inst.sendmail(["-f", "s@example.com", "m@ok.dane.test", "n@wrong.dane.test"], b"Subject: e2e\n\nhi\n")
tap.is_(r.returncode, 0, "sendmail")
tap.wait_until(lambda: re.search(r"to=<n@wrong\.dane\.test>.*status=deferred", inst.log())
               and re.search(r"to=<m@ok\.dane\.test>.*status=", inst.log()), 60)
log = inst.log()
tap.like(log, r"postern/smtp\[\d+\]: Verified TLS connection established to mx-ok\.dane\.test\[127\.0\.0\.6\]:%d"
         % port, "the instance's log: Verified")
tap.like(log, r"to=<m@ok\.dane\.test>, relay=mx-ok\.dane\.test\[127\.0\.0\.6\]:%d, .*status=sent" % port,
         "delivered")
tap.like(log, r"to=<n@wrong\.dane\.test>, relay=mx-wrong\.dane\.test\[127\.0\.0\.6\]:%d, .*dsn=4\.7\.5, "
              r"status=deferred \(Server certificate not verified\)" % port, "the mismatch is deferred")
inst.stop()
tap.done()
