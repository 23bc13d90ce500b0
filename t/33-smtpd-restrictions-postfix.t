#!/usr/bin/env python3
# Side by side with Postfix 3.7: the dialogues of t/lib/restriction_probes.py
# (defer_if_permit, defer_if_reject, warn_if_reject, access(5) actions,
# restriction classes, smtpd_delay_reject = no at connect, HELO and MAIL,
# a policy service that is not there; reject_plaintext_session,
# permit_inet_interfaces, sleep, check_reverse_client_hostname_access,
# check_sasl_access with XCLIENT LOGIN, check_ccert_access with client
# certificates from a test CA, Postfix's old restriction names) played
# against postern-smtpd, every
# reply compared with what the real Postfix answered
# (t/data/postfix-3.7-restrictions.txt, recorded by
# t/lib/gen_postfix_restrictions.py; Postfix is not needed here), and
# Postfix's NOQUEUE log lines found in postern's log.
#
# Known differences, not compared:
#  - Postfix names its queue file at MAIL, so its "warn:" line carries the
#    queue id; postern has no queue id before the message is stored and
#    logs NOQUEUE there (the id is compared as NOQUEUE).
#  - Postfix evaluates the client, HELO and sender restrictions once per
#    transaction (at the first RCPT); postern at each RCPT, with the same
#    reply, so a warn_if_reject of those lists is logged once per RCPT.
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import restriction_probes as rp

require(["postern-smtpd"])
golden = rp.parse_golden(os.path.join(SRC, "t", "data", "postfix-3.7-restrictions.txt"))
ok(len(golden) == len(rp.CASES), f"the golden file has every case ({len(golden)})")

# Postfix 3.7 offers no REQUIRETLS (RFC 8689) under TLS: off, to compare EHLO
inst = smtpdtest.Instance({"smtpd_peername_lookup": "no", "smtpd_requiretls_enable": "no"})
initial = dict(inst.settings)
maps_dir = os.path.join(inst.dir, "probes")
os.makedirs(maps_dir)
# Postfix's warnings for the later cases (the recording keeps NOQUEUE
# lines only): taken from the anchor's maillog when they were recorded
WARNINGS = {
    "sleep without a number": ["warning: restriction sleep must be followed by number"],
    "check_address_map in a restriction list": ['warning: unknown smtpd restriction: "check_address_map"'],
    "check_relay_domains": ['warning: support for restriction "check_relay_domains" will be removed from '
                            'Postfix; use "reject_unauth_destination" instead'],
    "check_reverse_client_hostname_access": [
        "warning: restriction check_reverse_client_hostname_access returns OK for okrev.example",
        "warning: this is not allowed for security reasons",
        "warning: use DUNNO instead of OK if you want to make an exception"],
    "check_sasl_access without smtpd_sasl_auth_enable": [
        "warning: restriction `check_sasl_access' ignored: no SASL support"],
    "smtpd_tls_ask_ccert = no": ['warning: check_ccert_access is requested, but "smtpd_tls_ask_ccert = no"'],
}
cmp = rp.Comparison()
for case in golden:
    rp.apply_case(inst, initial, case, maps_dir)
    before = len(inst.log())
    # the acceptor names the client, as Postfix names 127.0.0.1 localhost
    listener = smtpdtest.Listener(inst.argv(), {"TCPREMOTEHOST": "localhost"})
    started = time.monotonic()
    got = rp.dialogue(listener.port, [c for c, _ in case["steps"] if c is not None], cert_dir=maps_dir)
    if case["title"].startswith("sleep 1"):
        ok(time.monotonic() - started >= 1.0, "sleep 1: the refusal came after a second or more")
    wait_until(lambda: "disconnect from" in inst.log()[before:], 10)
    listener.stop()
    code_diffs, text_diffs = cmp.case(case, got)
    ok(not code_diffs and not text_diffs, f"{case['title']}: every reply as Postfix's") \
        or diag("\n".join(code_diffs + text_diffs))
    log = inst.log()[before:]
    want = case["logs"] + sum((w for t, w in WARNINGS.items() if t in case["title"]), [])
    missing = rp.missing_log_lines(want, log)
    ok(not missing, f"... and Postfix's log lines ({len(want)})") or diag("\n".join(missing) + "\n--\n" + log)
diag(cmp.summary())
done()
