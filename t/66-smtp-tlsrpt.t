#!/usr/bin/env python3
# TLS-RPT (RFC 8460) end to end.  In a network namespace of its own (as
# t/66-smtp-mta-sts.t) with the test's unbound serving the zones: the smtp
# runner, with smtp_tls_report_enable, makes TLS sessions that succeed
# and fail to three policy domains (good.test: verified twice; bad.test:
# a certificate of another name, once refused at "verify", once taken at
# "may"; sts.test: an MTA-STS policy as a policy server describes it to
# Postfix 3.10, policy_type=sts with its policy_string lines).  The day's
# records are moved to yesterday (a finished day), and `postern tlsrpt`:
#   - finds each domain's _smtp._tls TXT record through postern's resolver;
#   - mails the gzipped JSON report to the mailto: address through the
#     instance's queue and its smtp runner, to an aiosmtpd server (the
#     reports.test MX);
#   - POSTs it to bad.test's https: address, a small HTTPS server with the
#     test's CA, which refuses the first time (503): that send is tried at
#     the next run, the mail already sent is not sent again;
#   - sends nothing for a domain without a TXT record (none.test).
# The test gunzips each report and checks its JSON against the sessions it
# caused.
import calendar
import email
import gzip
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap

import netns
netns.enter("POSTERN_TLSRPT_NETNS", ["postern", "postern-smtp"], ["unbound"],
            needs_root="a network namespace whose instance runs as the machine's root: needs root")

from dnsserver import DnsServer
from instance import new_instance
from smtpsink import Sink
from testca import TestCA

home = netns.private_resolver()

https_port = tap.free_port("127.0.0.8")
dns = DnsServer([
    "good.test. MX 10 mx.good.test.",
    "mx.good.test. A 127.0.0.5",
    '_smtp._tls.good.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"',
    "bad.test. MX 10 mx.bad.test.",
    "mx.bad.test. A 127.0.0.6",
    f'_smtp._tls.bad.test. TXT "v=TLSRPTv1;rua=https://collector.test:{https_port}/v1/tls,mailto:tlsrpt@reports.test"',
    "sts.test. MX 10 mx.good.test.",
    '_smtp._tls.sts.test. TXT "v=TLSRPTv1; rua=mailto:sts-reports@reports.test"',
    # a second record that is not TLSRPT's is discarded (section 3)
    '_smtp._tls.sts.test. TXT "something else"',
    "none.test. MX 10 mx.good.test.",
    "reports.test. MX 10 mx.reports.test.",
    "mx.reports.test. A 127.0.0.7",
    "collector.test. A 127.0.0.8",
], port=53)
os.environ["POSTERN_DNS_SERVER"] = dns.address

ca = TestCA(tap.tempdir())
port = tap.free_port("127.0.0.5")
good_chain, good_key = ca.issue("mx.good.test")
other_chain, other_key = ca.issue("other.example")
good = Sink("127.0.0.5", port, "mx.good.test", tls={"cert": good_chain, "key": good_key})
bad = Sink("127.0.0.6", port, "mx.bad.test", tls={"cert": other_chain, "key": other_key})
reports = Sink("127.0.0.7", port, "mx.reports.test")

# the https: collector: 503 until told otherwise
posts = []
refuse = [True]
web_chain, web_key = ca.issue("collector.test")


class Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        posts.append({"path": self.path, "type": self.headers.get("Content-Type"), "body": body,
                      "refused": refuse[0]})
        self.send_response(503 if refuse[0] else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


web = http.server.ThreadingHTTPServer(("127.0.0.8", https_port), Collector)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(web_chain, web_key)
web.socket = context.wrap_socket(web.socket, server_side=True)
threading.Thread(target=web.serve_forever, daemon=True).start()

inst = new_instance("--domain", "example.com")
# the instance's own deliveries (the reports) go to the sinks' port in clear
for setting in (f"smtp_tcp_port={port}", "smtp_tls_security_level=none", "mydomain=example.com",
                f"smtp_tls_report_CAfile={ca.cert}", "smtp_tls_report_organization=Example Org",
                "smtp_tls_report_contact=tls-admin@example.com",
                "smtp_tls_report_sender=tlsrpt-noreply@example.com"):
    r = inst.postern("conf", "-e", setting)
    tap.is_(r.returncode, 0, f"main.cf: {setting}") or tap.diag(r.stderr)
data_dir = inst.postern("conf", "-h", "data_directory").stdout.strip()

sts_lines = ["version: STSv1", "mode: enforce", "mx: mx.good.test", "max_age: 86400"]
policy = tap.write(os.path.join(home, "tls_policy"),
                   "sts.test secure match=mx.good.test policy_type=sts policy_domain=sts.test "
                   + " ".join("{ policy_string = %s }" % l for l in sts_lines) + "\n")


def send(domain, rcpt, level):
    r = tap.run([tap.prog("postern-smtp"), "-c", inst.dir, "-o", f"smtp_tcp_port={port}",
                 "-o", f"smtp_tls_security_level={level}", "-o", f"smtp_tls_CAfile={ca.cert}",
                 "-o", "smtp_tls_report_enable=yes", "-o", f"smtp_tls_policy_maps=texthash:{policy}",
                 "-o", "smtp_tls_loglevel=1", "-H", domain, "-f", "s@example.com", rcpt],
                input=b"Subject: tlsrpt\n\nhello\n")
    return (r.stdout + r.stderr).decode("utf-8", "replace")


out = send("good.test", "a@good.test", "verify")
tap.like(out, r"a@good\.test: .*status=sent", "good.test, verify: sent") or tap.diag(out)
out = send("good.test", "b@good.test", "verify")
tap.like(out, r"b@good\.test: .*status=sent", "good.test again: sent")
out = send("bad.test", "c@bad.test", "verify")
tap.like(out, r"c@bad\.test: dsn=4\.7\.5, status=deferred", "bad.test, verify: the wrong name waits")
out = send("bad.test", "d@bad.test", "may")
tap.like(out, r"d@bad\.test: .*status=sent", "bad.test, may: sent over TLS all the same")
out = send("sts.test", "e@sts.test", "may")
tap.like(out, r"Verified TLS connection established to mx\.good\.test", "sts.test: the policy's secure level")
tap.like(out, r"e@sts\.test: .*status=sent", "sts.test: sent")
out = send("none.test", "f@none.test", "may")
tap.like(out, r"f@none\.test: .*status=sent", "none.test: sent")

tlsrpt_dir = os.path.join(data_dir, "tlsrpt")
days = sorted(n for n in os.listdir(tlsrpt_dir) if re.fullmatch(r"\d{4}-\d\d-\d\d", n))
tap.is_(len(days), 1, "one day of records") or tap.done()
lines = open(os.path.join(tlsrpt_dir, days[0])).read().splitlines()
tap.is_(len(lines), 6, "six TLS attempts recorded") or tap.diag(lines)
sts_line = [l.split("\t") for l in lines if "\tsts.test\t" in l]
tap.is_(sts_line and sts_line[0][2], "sts", "sts.test recorded with policy type sts")
tap.is_(sts_line and sts_line[0][7], "|".join(sts_lines), "and the policy's lines")

# nothing for today: the day is not finished
r = inst.postern("tlsrpt")
tap.is_(r.returncode, 0, "postern tlsrpt: nothing due today") or tap.diag(r.stderr)
tap.is_(reports.messages(), [], "no report for a day that is not over")

# the records become yesterday's
yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
os.rename(os.path.join(tlsrpt_dir, days[0]), os.path.join(tlsrpt_dir, yesterday))
day_start = calendar.timegm(time.strptime(yesterday, "%Y-%m-%d"))

r = inst.postern("tlsrpt", "-n")
tap.is_(r.returncode, 0, "postern tlsrpt -n: the reports printed")
printed = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
tap.is_(sorted(p["policies"][0]["policy"]["policy-domain"] for p in printed),
        ["bad.test", "good.test", "none.test", "sts.test"], "-n: one report per policy domain")
tap.is_(os.listdir(tlsrpt_dir), [yesterday], "-n changes nothing")

# no DNS answer: nothing is sent or marked, the day waits for the next run
dead = tap.free_port()
r = tap.run(["postern", "tlsrpt", "-c", inst.dir],
            env={"POSTERN_DNS_SERVER": f"127.0.0.1@{dead}", "POSTERN_DNS_TIMEOUT_MS": "500"})
tap.is_(r.returncode, 75, "TXT lookups that fail: exit 75") or tap.diag(r.stderr)
tap.like(r.stderr, r"TXT lookup of _smtp\._tls\.good\.test", "the failed lookup is logged")
tap.is_(os.listdir(tlsrpt_dir), [yesterday], "nothing marked: tried again at the next run")
tap.is_(posts, [], "nothing posted")

tap.is_(inst.start().returncode, 0, "the instance starts (its queue delivers the reports)")
r = inst.postern("tlsrpt")
tap.is_(r.returncode, 75, "the https: collector refused: exit 75, to be tried again") or tap.diag(r.stderr)
tap.like(r.stderr, r"cannot post the report to https://collector\.test:%d/v1/tls: HTTP status 503" % https_port,
         "the refusal is logged")
tap.is_(len(posts), 1, "one POST was made")
tap.ok(tap.wait_until(lambda: len(reports.messages()) >= 3, 60), "three reports mailed") or \
    tap.diag(inst.log()[-3000:])
mails = reports.messages()
tap.is_(sorted(r for m in mails for r in m["recipients"]),
        ["sts-reports@reports.test", "tlsrpt@reports.test", "tlsrpt@reports.test"],
        "to the mailto: addresses of good.test, bad.test and sts.test; none to none.test")
tap.ok(os.path.exists(os.path.join(tlsrpt_dir, yesterday)), "the day stays until every report is out")


def report_of(mail):
    msg = email.message_from_bytes(mail["raw"].encode("latin-1"))
    parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    return msg, parts


by_domain = {}
for m in mails:
    msg, parts = report_of(m)
    domain = msg["TLS-Report-Domain"]
    by_domain[domain] = (m, msg, parts)
tap.is_(sorted(by_domain), ["bad.test", "good.test", "sts.test"], "TLS-Report-Domain names each domain")

m, msg, parts = by_domain["good.test"]
tap.ok("\r\r" not in m["raw"], "line ends as SMTP has them (no CR doubled)")
tap.is_(msg.get_content_type(), "multipart/report", "multipart/report")
tap.is_(msg.get_param("report-type"), "tlsrpt", 'report-type="tlsrpt"')
tap.is_(msg["TLS-Report-Submitter"], "example.com", "TLS-Report-Submitter: the submitting domain")
tap.like(msg["Subject"] or "", r"Report Domain: good\.test\s+Submitter: example\.com\s+Report-ID: <[^>]+>",
         "the Subject of section 5.3")
tap.is_(msg["From"], "tlsrpt-noreply@example.com", "From: smtp_tls_report_sender")
tap.is_(m["sender"], "tlsrpt-noreply@example.com", "the envelope sender too")
tap.is_(len(parts), 1, "one application/tlsrpt+gzip part")
fname = parts[0].get_filename() if parts else ""
tap.is_(fname, f"example.com!good.test!{day_start}!{day_start + 86399}.json.gz",
        "the attachment's name: submitter!domain!begin!end.json.gz")
report = json.loads(gzip.decompress(parts[0].get_payload(decode=True))) if parts else {}
tap.is_(report.get("organization-name"), "Example Org", "organization-name")
tap.is_(report.get("contact-info"), "tls-admin@example.com", "contact-info")
tap.ok(report.get("report-id"), "a report-id")
tap.is_(report.get("date-range"), {"start-datetime": yesterday + "T00:00:00Z",
                                   "end-datetime": yesterday + "T23:59:59Z"}, "date-range: the whole day")
pol = report.get("policies", [{}])
tap.is_(len(pol), 1, "good.test: one policy")
tap.is_(pol[0].get("policy"), {"policy-type": "no-policy-found", "policy-domain": "good.test",
                               "mx-host": ["mx.good.test"]}, "no-policy-found, its MX")
tap.is_(pol[0].get("summary"), {"total-successful-session-count": 2, "total-failure-session-count": 0},
        "two successful sessions, no failure")
tap.ok("failure-details" not in pol[0], "no failure-details")

m, msg, parts = by_domain["bad.test"]
report = json.loads(gzip.decompress(parts[0].get_payload(decode=True))) if parts else {}
pol = report.get("policies", [{}])
tap.is_(pol[0].get("summary"), {"total-successful-session-count": 1, "total-failure-session-count": 1},
        "bad.test: one success (may), one failure (verify)")
details = pol[0].get("failure-details", [])
tap.is_(details, [{"result-type": "certificate-host-mismatch", "sending-mta-ip": "127.0.0.1",
                   "receiving-mx-hostname": "mx.bad.test", "receiving-ip": "127.0.0.6",
                   "failed-session-count": 1}],
        "failure-details: certificate-host-mismatch from 127.0.0.1 to mx.bad.test")

m, msg, parts = by_domain["sts.test"]
report = json.loads(gzip.decompress(parts[0].get_payload(decode=True))) if parts else {}
pol = report.get("policies", [{}])
tap.is_(pol[0].get("policy"), {"policy-type": "sts", "policy-string": sts_lines, "policy-domain": "sts.test",
                               "mx-host": ["mx.good.test"]}, "sts.test: policy-type sts and its policy-string")
tap.is_(pol[0].get("summary"), {"total-successful-session-count": 1, "total-failure-session-count": 0},
        "one successful session")

# the next run: only the refused POST again
refuse[0] = False
r = inst.postern("tlsrpt")
tap.is_(r.returncode, 0, "the next run: everything out") or tap.diag(r.stderr)
tap.is_(len(posts), 2, "the report POSTed again")
tap.is_(posts[-1]["path"], "/v1/tls", "to the URI's path")
tap.is_(posts[-1]["type"], "application/tlsrpt+gzip", "as application/tlsrpt+gzip")
posted = json.loads(gzip.decompress(posts[-1]["body"]))
tap.is_(posted["policies"][0]["policy"]["policy-domain"], "bad.test", "bad.test's report")
tap.is_(posted["policies"][0]["summary"]["total-failure-session-count"], 1, "with its failure")
tap.unlike(r.stderr, r"queued as", "no mail sent a second time")
tap.is_(sorted(os.listdir(tlsrpt_dir)), [yesterday + ".done", yesterday + ".sent"],
        "the day is marked done")
sent = open(os.path.join(tlsrpt_dir, yesterday + ".sent")).read().splitlines()
tap.ok("none.test\t-" in sent, "none.test: no TXT record, nothing to send, done")

r = inst.postern("tlsrpt")
tap.is_(r.returncode, 0, "a third run")
tap.is_(r.stderr, "", "sends nothing")
tap.is_(len(posts), 2, "no POST")
inst.stop()
tap.is_(len(reports.messages()), 3, "and no mail")
web.shutdown()
tap.done()
