"""verify_probes.py - the address verification dialogues that t/66-verify.t
plays against postern and gen_postfix_verify.py played against the real
Postfix 3.7 (t/data/postfix-3.7-verify.txt): a backup MX for
backup.example that relays to a receiving MTA (smtpsink.py: bad... 550,
busy... 450, others 250) and checks recipients and senders with
reject_unverified_recipient and reject_unverified_sender.

SETTINGS are the main.cf lines both get ({sink} is the receiving MTA's
port); PHASES are (title, steps) where a step is an SMTP command, or
("wait", [addresses]) for the probes of those addresses to finish (a log
line to=<ADDRESS> ... status=deliverable/undeliverable)."""
import re
import socket
import time

SETTINGS = {
    "relay_domains": "backup.example",
    "transport_maps": "inline:{{ backup.example=smtp:[127.0.0.1]:{sink} }}",
    "smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient",
    "smtpd_sender_restrictions": "reject_unverified_sender",
    "unverified_recipient_reject_code": "550",
    "address_verify_poll_count": "1",
    "smtpd_delay_reject": "yes",
    "virtual_alias_maps": "inline:{{ alias@backup.example=bad@backup.example }}",
}

RCPTS = ["good@backup.example", "bad@backup.example", "busy@backup.example"]

PHASES = [
    ("first contact: every recipient waits for its probe",
     ["EHLO client.example", "MAIL FROM:<>"] + [f"RCPT TO:<{a}>" for a in RCPTS] + ["QUIT"]),
    ("probes", [("wait", RCPTS)]),
    ("after the probes: deliverable, undeliverable, not yet",
     ["EHLO client.example", "MAIL FROM:<>"] + [f"RCPT TO:<{a}>" for a in RCPTS] + ["QUIT"]),
    ("an unverified sender: first contact",
     ["EHLO client.example", "MAIL FROM:<badsender@backup.example>",
      "RCPT TO:<good@backup.example>", "QUIT"]),
    ("probes", [("wait", ["badsender@backup.example"])]),
    ("an unverified sender after its probe (unverified_sender_reject_code 450)",
     ["EHLO client.example", "MAIL FROM:<badsender@backup.example>",
      "RCPT TO:<good@backup.example>", "QUIT"]),
    ("a virtual alias: first contact",
     ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<alias@backup.example>", "QUIT"]),
    ("probes", [("wait", ["alias@backup.example"])]),
    ("a virtual alias is probed as what it expands to",
     ["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<alias@backup.example>", "QUIT"]),
]


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            break
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    return "\n".join(lines)


def dialogue(port, commands, timeout=60):
    """Play commands on a new connection; [(command or None, reply)]."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")
    steps = [(None, read_reply(f))]
    for cmd in commands:
        s.sendall(cmd.encode() + b"\r\n")
        steps.append((cmd, read_reply(f)))
    s.close()
    return steps


def probe_line(log_text, address):
    """The last probe outcome line for address (to=<address>, or
    orig_to=<address> when virtual aliases expanded it), as 'to=<...>,
    relay=..., dsn=..., status=... (text)' without the delays, or None."""
    found = None
    for l in log_text.splitlines():
        # conn_use= (a reused connection) depends on timing: left out
        m = re.search(r": (to=<[^>]*>, (?:orig_to=<[^>]*>, )?relay=[^,]*), (?:conn_use=\d+, )?"
                      r"delay=[^,]*, delays=[^,]*, "
                      r"(dsn=[^,]*, status=(?:deliverable|undeliverable) .*)$", l)
        if m and re.match(r"to=<%s>|to=<[^>]*>, orig_to=<%s>" % (re.escape(address), re.escape(address)),
                          m.group(1)):
            found = m.group(1) + ", " + m.group(2)
    return found


def wait_probes(log_reader, addresses, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        text = log_reader()
        if all(probe_line(text, a) for a in addresses):
            return [probe_line(text, a) for a in addresses]
        time.sleep(0.2)
    text = log_reader()
    return [probe_line(text, a) for a in addresses]


def normalize(text, sink_port):
    """Replies and log lines with the receiving MTA's port as {sink}."""
    return text.replace(f":{sink_port}", ":{sink}")
