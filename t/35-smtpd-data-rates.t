#!/usr/bin/env python3
# smtpd_data_restrictions, smtpd_end_of_data_restrictions,
# reject_multi_recipient_bounce and the per-client rate limits
# (smtpd_client_message_rate_limit, _recipient_rate_limit,
# _connection_rate_limit, _new_tls_session_rate_limit), side by side with Postfix 3.7: the dialogues of
# t/lib/data_probes.py played against postern, every reply compared with
# what the real Postfix answered (t/data/postfix-3.7-data-rates.txt; Postfix
# is not needed here), and Postfix's log lines found in postern's log.
# The rate cases run under postern-accept -z: the zygote maps the table
# of counts its children share (clientrate.c).
#
# Known differences, not compared:
#  - Postfix names its queue file at the first RCPT, so its DATA and
#    END-OF-MESSAGE refusals are logged with the queue id; postern logs
#    NOQUEUE (the id is compared as NOQUEUE).
#  - the service is Postfix's master.cf name (127.0.0.1:PORT): postern-accept
#    is given the same with -s, compared without the port.
# The restriction cases play the client with XCLIENT; the rate cases
# connect from 127.0.0.1, named "localhost" by a hosts file of the test's
# own, as Postfix names it.  The cases cover smtpd_client_new_tls_session_rate_limit
# (the 421 after the handshake, the 454 at STARTTLS), anvil_rate_time_unit,
# seed 001's limits with the default smtpd_client_event_limit_exceptions
# ($mynetworks), `defer` at each stage and reject_unauth_pipelining's
# stage names.
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import smtpdtest
import restriction_probes as rp
import data_probes

require(["postern-smtpd", "postern-accept"], tools=["openssl"])
golden = rp.parse_golden(os.path.join(SRC, "t", "data", "postfix-3.7-data-rates.txt"))
ok(len(golden) == len(data_probes.CASES), f"the golden file has every case ({len(golden)})")
USER = ["-u", "nobody"] if os.geteuid() == 0 else []


def comparable(line):
    """A Postfix or postern log line, without what differs by design."""
    line = rp.log_comparable(line)
    return re.sub(r"\b(localhost|unknown)\[127\.0\.0\.1\]", "CLIENT[127.0.0.1]", line)


# Postfix 3.7 offers no REQUIRETLS (RFC 8689) under TLS: off, to compare EHLO
inst = smtpdtest.Instance({"smtpd_peername_lookup": "no", "smtpd_requiretls_enable": "no"})
initial = dict(inst.settings)
os.chmod(inst.dir, 0o777)               # smtpd runs as nobody under accept -u
for sub in ("libexec", "queue"):
    os.chmod(os.path.join(inst.dir, sub), 0o777)
write(os.path.join(inst.dir, "maillog"), "", 0o666)
# the rate cases connect from 127.0.0.1 itself: named "localhost", as
# Postfix names it, from a hosts file of the test's own
hosts = os.path.join(inst.dir, "hosts")
write(hosts, "127.0.0.1\tlocalhost\n", 0o644)
# the tables, certificate and key outside that world-writable directory:
# the zygote's file keeper opens no file through a directory smtpd's user
# could write in
maps_parent = tempdir()
os.chmod(maps_parent, 0o755)
maps_dir = os.path.join(maps_parent, "probes")
os.makedirs(maps_dir)
os.chmod(maps_dir, 0o755)
cmp = rp.Comparison()
for case in golden:
    rp.apply_case(inst, initial, case, maps_dir)
    before = len(inst.log())
    rates = any("rate_limit" in k for k in case["settings"])
    if rates:
        port = free_port()
        inst.set(smtpd_peername_lookup="yes")
        acc = start([prog("postern-accept"), "-c", inst.dir] + USER
                    + ["-s", f"127.0.0.1:{port}", "-z", f"127.0.0.1:{port}", "--", prog("postern-smtpd")],
                    env={"POSTERN_HOSTS_FILE": hosts})
        wait_until(lambda: "listening on" in inst.log()[before:] or acc.poll() is not None, 10)
    else:
        listener = smtpdtest.Listener(inst.argv(), {"TCPREMOTEHOST": "localhost"})
        port = listener.port
    commands = [c for c, _ in case["steps"] if c is not None]
    got = rp.dialogue(port, commands)
    wait_until(lambda: inst.log()[before:].count("disconnect from")
               >= 1 + commands.count(rp.RECONNECT) - (1 if rates and "connection" in case["title"] else 0), 10)
    if rates:
        stop(acc)
    else:
        listener.stop()
    code_diffs, text_diffs = cmp.case(case, got)
    ok(not code_diffs and not text_diffs, f"{case['title']}: every reply as Postfix's") \
        or diag("\n".join(code_diffs + text_diffs))
    log = inst.log()[before:]
    missing = rp.missing_log_lines(case["logs"], log, comparable)
    ok(not missing, f"... and Postfix's log lines ({len(case['logs'])})") or diag("\n".join(missing) + "\n--\n" + log)
diag(cmp.summary())

# the messages refused after the dot are not queued: as many stored as
# Postfix queued
queued = sum(1 for case in golden for _, r in case["steps"] if r and r.startswith("250 2.0.0 Ok: queued"))
is_(len(inst.captured()), queued, f"only the accepted messages are stored ({queued})")
done()
