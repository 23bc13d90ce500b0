#!/usr/bin/env python3
# REQUIRETLS (RFC 8689), end to end through two real peers: a client
# (smtplib and swaks) sets MAIL FROM ... REQUIRETLS at postern's smtpd,
# which takes it only under TLS (530 5.7.10 in clear, not offered there,
# smtpd_requiretls_enable = no turns it off); the envelope carries it
# through the queue to the smtp runner, which sends the mail only over a
# verified TLS session to an aiosmtpd that offers REQUIRETLS, and passes
# REQUIRETLS on MAIL FROM.  A server without REQUIRETLS (5.7.30), without
# STARTTLS, with a certificate from another CA, or a policy that does not
# verify (may) makes the recipient bounce (5.7.10) instead of a delivery in
# clear; a second MX that offers it is tried.  The bounce returns only the
# header.  "TLS-Required: No" lets a mail without REQUIRETLS through a
# server whose certificate a "secure" policy would refuse.
import os
import re
import smtplib
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap
from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink
from testca import TestCA

tap.require(["postern", "postern-smtp", "postern-smtpd", "sendmail", "postern-bounce"],
            tools=["/usr/bin/python3", "openssl", "swaks"])

port = tap.free_port()          # every MX listens on this port (smtp_tcp_port)
dns = DnsServer([
    "rt.test. MX 10 mx.rt.test.",
    "mx.rt.test. A 127.0.0.5",
    "norq.test. MX 10 mx.norq.test.",
    "mx.norq.test. A 127.0.0.6",
    "plain.test. MX 10 mx.plain.test.",
    "mx.plain.test. A 127.0.0.7",
    "wrongca.test. MX 10 mx.wrongca.test.",
    "mx.wrongca.test. A 127.0.0.8",
    "tlsno.test. MX 10 mx.wrongca.test.",
    "may.test. MX 10 mx.rt.test.",
    # the best MX lacks REQUIRETLS: the second one gets the mail
    "two.test. MX 10 mx.norq.test.",
    "two.test. MX 20 mx.rt.test.",
])
os.environ["POSTERN_DNS_SERVER"] = dns.address

ca = TestCA(tap.tempdir())
other_ca = TestCA(tap.tempdir(), "another test CA")
rt_chain, rt_key = ca.issue("mx.rt.test")
norq_chain, norq_key = ca.issue("mx.norq.test")
wrong_chain, wrong_key = other_ca.issue("mx.wrongca.test")
# the runner reads the CA file as the instance's user
os.chmod(ca.dir, 0o755)
os.chmod(ca.cert, 0o644)
rt_sink = Sink("127.0.0.5", port, "mx.rt.test", tls={"cert": rt_chain, "key": rt_key}, requiretls=True)
norq_sink = Sink("127.0.0.6", port, "mx.norq.test", tls={"cert": norq_chain, "key": norq_key})
plain_sink = Sink("127.0.0.7", port, "mx.plain.test", requiretls=True)
wrong_sink = Sink("127.0.0.8", port, "mx.wrongca.test", tls={"cert": wrong_chain, "key": wrong_key},
                  requiretls=True)

inst = new_instance("--domain", "example.com",
                    "-o", f"smtp_tcp_port={port}", "-o", f"smtp_tls_CAfile={ca.cert}",
                    "-o", "smtp_tls_security_level=may", "-o", "smtp_tls_loglevel=1",
                    "-o", "minimal_backoff_time=300s", "-o", "maximal_backoff_time=600s",
                    "-o", "smtpd_tls_loglevel=1")
# TLS-RPT results (smtp_tls_report_enable) under data_directory, which
# the runner (mail_owner when the test runs as root) writes
data_dir = os.path.join(inst.dir, "data")
os.makedirs(data_dir, exist_ok=True)
if os.geteuid() == 0:
    import pwd
    os.chown(data_dir, pwd.getpwnam("mail").pw_uid, -1)
policy = tap.write(os.path.join(inst.dir, "tls_policy"),
                   "rt.test       secure\n"
                   "norq.test     secure\n"
                   "plain.test    secure\n"
                   "wrongca.test  secure\n"
                   "tlsno.test    secure\n"
                   "two.test      secure match=.test\n")
r = inst.postern("conf", "-e", f"smtp_tls_policy_maps=texthash:{policy}", f"data_directory={data_dir}",
                 "smtp_tls_report_enable=yes")
tap.is_(r.returncode, 0, "smtp_tls_policy_maps set") or tap.diag(r.stderr)
tap.is_(inst.start().returncode, 0, "the instance starts")
sport = int(re.search(r"127\.0\.0\.1:(\d+)\s", open(os.path.join(inst.dir, "master.cf")).read()).group(1))
own_cert = os.path.join(inst.dir, "tls", "cert.pem")

# ---- smtpd: offered and taken only under TLS ----
c = smtplib.SMTP("127.0.0.1", sport, timeout=30)
c.ehlo("client.example")
tap.ok(not c.has_extn("requiretls"), "EHLO in clear: no REQUIRETLS")
code, text = c.docmd("MAIL", "FROM:<sender@example.com> REQUIRETLS")
tap.is_(f"{code} {text.decode()}", "530 5.7.10 REQUIRETLS needs an encrypted session: issue STARTTLS first",
        "MAIL FROM ... REQUIRETLS in clear: 530 5.7.10")
c.starttls(context=ssl.create_default_context(cafile=own_cert))
c.ehlo("client.example")
tap.ok(c.has_extn("requiretls"), "EHLO under TLS offers REQUIRETLS")
code, text = c.docmd("MAIL", "FROM:<sender@example.com> REQUIRETLS")
tap.is_(code, 250, "MAIL FROM ... REQUIRETLS under TLS: 250")
c.rset()
c.quit()


def submit(rcpt, subject, requiretls=True, extra_header=""):
    """Through smtpd under TLS; the queue id from the reply."""
    c = smtplib.SMTP("127.0.0.1", sport, timeout=30)
    c.starttls(context=ssl.create_default_context(cafile=own_cert))
    c.ehlo("client.example")
    msg = (f"From: sender@example.com\nTo: {rcpt}\nSubject: {subject}\n{extra_header}\n"
           f"the secret body of {subject}\n")
    c.sendmail("sender@example.com", [rcpt], msg, mail_options=["REQUIRETLS"] if requiretls else [])
    c.quit()


def wait_log(pattern, timeout=40):
    tap.wait_until(lambda: re.search(pattern, inst.log()), timeout)
    return tap.like(inst.log(), pattern)


def received(sink, rcpt):
    return [m for m in sink.messages() if rcpt in m["recipients"]]


# ---- the runner: verified TLS to a server that offers it ----
submit("a@rt.test", "verified")
wait_log(r"to=<a@rt\.test>, relay=mx\.rt\.test\[127\.0\.0\.5\]:%d, .*status=sent" % port)
got = received(rt_sink, "a@rt.test")
tap.is_(len(got), 1, "sent to the server that offers REQUIRETLS")
tap.ok(got and got[0]["tls"], "over TLS")
tap.ok(got and "REQUIRETLS" in got[0]["mail_options"], "with REQUIRETLS on MAIL FROM") or \
    tap.diag(got and got[0]["mail_options"])

# the server does not offer REQUIRETLS: bounced 5.7.30, never sent
submit("b@norq.test", "norq")
wait_log(r"to=<b@norq\.test>, relay=mx\.norq\.test\[127\.0\.0\.6\]:%d, .*dsn=5\.7\.30, status=bounced "
         r"\(REQUIRETLS support required, but was not offered by host mx\.norq\.test\[127\.0\.0\.6\]\)" % port)
tap.is_(received(norq_sink, "b@norq.test"), [], "nothing reached the server without REQUIRETLS")

# no STARTTLS at all: bounced 5.7.10, nothing in clear
submit("c@plain.test", "plain")
wait_log(r"to=<c@plain\.test>, .*dsn=5\.7\.10, status=bounced \(TLS is required, but was not offered")
tap.is_(received(plain_sink, "c@plain.test"), [], "nothing was sent in clear")

# a certificate from another CA: not verified, bounced 5.7.10
submit("d@wrongca.test", "wrongca")
wait_log(r"to=<d@wrongca\.test>, .*dsn=5\.7\.10, status=bounced \(Server certificate not verified\)")
tap.is_(received(wrong_sink, "d@wrongca.test"), [], "nothing was sent to the unverified server")

# a policy that does not verify (may): bounced before any connection
submit("e@may.test", "may")
wait_log(r"to=<e@may\.test>, .*dsn=5\.7\.10, status=bounced \(REQUIRETLS: the TLS security level for "
         r"mx\.rt\.test\[127\.0\.0\.5\] is \"may\"")
tap.is_(received(rt_sink, "e@may.test"), [], "not sent even though the server could take it")

# the first MX lacks REQUIRETLS, the second has it
submit("f@two.test", "two")
wait_log(r"to=<f@two\.test>, relay=mx\.rt\.test\[127\.0\.0\.5\]:%d, .*status=sent" % port)
tap.is_(len(received(rt_sink, "f@two.test")), 1, "the second MX, which offers REQUIRETLS, got it")
tap.is_(received(norq_sink, "f@two.test"), [], "the first did not")

# ---- the bounces: only the header of the original returned ----
notices = []
tap.wait_until(lambda: len(inst.delivered("sender")) >= 4, 40)
notices = [m.decode("utf-8", "replace") for m in inst.delivered("sender")]
tap.is_(len(notices), 4, "four non-delivery notices to the sender")
norq = [n for n in notices if "b@norq.test" in n]
tap.ok(norq and "Subject: norq" in norq[0], "the notice returns the original header")
tap.ok(norq and "the secret body of norq" not in norq[0], "but not the body of a REQUIRETLS message")
tap.like(norq[0] if norq else "", r"Status: 5\.7\.30", "Status: 5.7.30 in the delivery status")

# ---- TLS-Required: No ----
submit("g@tlsno.test", "strict", requiretls=False)
wait_log(r"to=<g@tlsno\.test>, .*dsn=4\.7\.5, status=deferred \(Server certificate not verified\)")
submit("h@tlsno.test", "relaxed", requiretls=False, extra_header="TLS-Required: No\n")
wait_log(r"TLS-Required: No: the secure policy for mx\.wrongca\.test\[127\.0\.0\.8\]:%d is not enforced" % port)
wait_log(r"to=<h@tlsno\.test>, relay=mx\.wrongca\.test\[127\.0\.0\.8\]:%d, .*status=sent" % port)
got = received(wrong_sink, "h@tlsno.test")
tap.ok(got and got[0]["tls"], "TLS-Required: No: sent, still over TLS, to the unverified server")
tap.ok(got and "REQUIRETLS" not in got[0]["mail_options"], "without REQUIRETLS")

# the field folded over two lines (RFC 8689 section 5, RFC 5322 2.2.3)
submit("j@tlsno.test", "folded", requiretls=False, extra_header="TLS-Required:\n No\n")
wait_log(r"to=<j@tlsno\.test>, relay=mx\.wrongca\.test\[127\.0\.0\.8\]:%d, .*status=sent" % port)
tap.is_(len(received(wrong_sink, "j@tlsno.test")), 1, "TLS-Required: No folded over two lines: relaxed all the same")

# REQUIRETLS wins over TLS-Required: No (RFC 8689 section 4.1)
submit("i@wrongca.test", "both", extra_header="TLS-Required: No\n")
wait_log(r"to=<i@wrongca\.test>, .*dsn=5\.7\.10, status=bounced")
tap.is_(received(wrong_sink, "i@wrongca.test"), [], "REQUIRETLS and TLS-Required: No: REQUIRETLS holds")

# ---- TLS-RPT: each attempt's result, per policy domain ----
import glob
days = glob.glob(os.path.join(data_dir, "tlsrpt", "????-??-??"))
tap.is_(len(days), 1, "one day's TLS-RPT file under data_directory/tlsrpt")
rows = [l.split("\t") for l in open(days[0]).read().splitlines()] if days else []
results = {(r[1], r[3]) for r in rows if len(r) == 8}
for want in [("rt.test", "success"), ("norq.test", "success"), ("plain.test", "starttls-not-supported"),
             ("wrongca.test", "certificate-not-trusted"), ("two.test", "success")]:
    tap.ok(want in results, f"recorded: {want[0]} {want[1]}") or tap.diag(rows)
tap.ok(all(len(r) == 8 and r[0].isdigit() and r[2] == "no-policy-found" for r in rows),
       "every line: time, policy domain, policy type, result, MX host, address, sending address, policy")

# ---- openssl s_client; smtpd_requiretls_enable = no ----
def s_client(lines):
    r = tap.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{sport}",
                 "-CAfile", own_cert, "-quiet", "-verify_return_error", "-name", "client.example"],
                input=("".join(l + "\r\n" for l in lines)).encode(), timeout=60)
    return r.stdout.decode("utf-8", "replace")


out = s_client(["EHLO client.example", "MAIL FROM:<sender@example.com> REQUIRETLS", "QUIT"])
tap.like(out, r"(?m)^250[- ]REQUIRETLS\r?$", "openssl s_client: REQUIRETLS offered after STARTTLS")
tap.like(out, r"(?m)^250 2\.1\.0 Ok\r?$", "and MAIL FROM ... REQUIRETLS taken")

r = inst.postern("conf", "-e", "smtpd_requiretls_enable=no")
tap.is_(r.returncode, 0, "smtpd_requiretls_enable = no") or tap.diag(r.stderr)
inst.stop()
r = inst.start()
tap.is_(r.returncode, 0, "postern start again") or tap.diag(r.stderr)
out = s_client(["EHLO client.example", "QUIT"])
tap.like(out, r"250 CHUNKING", "EHLO under TLS answers")
tap.unlike(out, r"REQUIRETLS", "but no longer offers REQUIRETLS")
out = s_client(["EHLO client.example", "MAIL FROM:<sender@example.com> REQUIRETLS", "QUIT"])
tap.like(out, r"555 5\.5\.4 Unsupported option: REQUIRETLS", "and MAIL FROM ... REQUIRETLS is 555 5.5.4")

inst.stop()
tap.done()
