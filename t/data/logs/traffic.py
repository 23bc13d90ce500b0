"""traffic.py - one generated "day" of mail traffic, the same for postern
and for Postfix, so that their logs can be compared with pflogsumm and
fail2ban (t/NN-logs.t, t/data/logs/make-postfix-log).

The MTA under test must be set up as config_lines() says: domain bench.test
with the mailboxes in MAILBOXES, mynetworks 127.0.0.1/32, the access maps
of access_maps(), and the mailbox "blocked" made undeliverable (a plain file
where its Maildir should be), so that its mail is deferred.

run(smtp_port, sendmail_argv, env) sends everything; expected() says how
many recipients end delivered, deferred and bounced, for waiting on the log.
"""
import random
import smtplib
import socket
import subprocess
import time

DOMAIN = "bench.test"
MAILBOXES = ["u1", "u2", "u3", "u4", "u5", "u6", "blocked"]
SENDERS = ["alice@client.test", "bob@example.org", "carol@bench.test",
           "dave@partner.test"]
INSIDE = "127.0.0.1"        # in mynetworks
OUTSIDE = "127.0.0.2"       # not in mynetworks: may not relay
REJECTED_CLIENT = "127.0.0.3"   # refused by the client access map


def access_maps():
    """name -> contents of the access maps (texthash)."""
    return {
        "client_access": f"{REJECTED_CLIENT} REJECT\n",
        "sender_access": "badguy@spam.test REJECT\n",
        "recipient_access": f"spamtrap@{DOMAIN} REJECT\n",
    }


def config_lines(mail_base_map, map_dir):
    """main.cf lines both MTAs share; mail_base_map is the value of
    virtual_mailbox_maps, map_dir where access_maps() were written."""
    return [
        "mynetworks = 127.0.0.1/32",
        f"virtual_mailbox_domains = {DOMAIN}",
        f"virtual_mailbox_maps = {mail_base_map}",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtpd_recipient_restrictions ="
        f" check_client_access texthash:{map_dir}/client_access,"
        f" check_sender_access texthash:{map_dir}/sender_access,"
        f" check_recipient_access texthash:{map_dir}/recipient_access",
    ]


def message(rng, sender, rcpts, size, n):
    head = (f"From: <{sender or 'MAILER-DAEMON@' + DOMAIN}>\r\n"
            f"To: {', '.join('<' + r + '>' for r in rcpts)}\r\n"
            f"Subject: traffic {n}\r\n"
            f"Message-ID: <traffic.{n}@{DOMAIN}>\r\n\r\n")
    words = []
    length = len(head)
    while length < size:
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        words.append(w)
        length += len(w) + 1
    body = ""
    line = ""
    for w in words:
        if len(line) + len(w) > 70:
            body += line + "\r\n"
            line = ""
        line += w + " "
    body += line + "\r\n"
    return head + body


def plan_traffic():
    """The list of events, from a fixed seed: ("smtp", client, sender,
    [(rcpt, accepted)], size) or ("sendmail", sender, [rcpts], size) or a
    special session ("lost", client, ...) / ("pipelining", client)."""
    rng = random.Random(10)
    events = []
    known = [f"{m}@{DOMAIN}" for m in MAILBOXES if m != "blocked"]
    for i in range(18):
        client = INSIDE if i % 3 else OUTSIDE
        sender = rng.choice(SENDERS)
        rcpts = [(r, True) for r in rng.sample(known, rng.randint(1, 3))]
        if i in (4, 11):
            rcpts.append((f"nosuch{i}@{DOMAIN}", False))      # unknown user
        if i == 7:
            rcpts.append((f"spamtrap@{DOMAIN}", False))       # recipient access map
        if i == 9:
            rcpts.append((f"blocked@{DOMAIN}", True))         # deferred
        if i == 3:      # a client outside mynetworks
            rcpts.append(("someone@elsewhere.test", False))   # relay from outside
        events.append(("smtp", client, sender, rcpts, rng.randint(300, 30000)))
    for i in range(7):
        sender = rng.choice(SENDERS)
        rcpts = rng.sample(known, rng.randint(1, 2))
        events.append(("sendmail", sender, rcpts, rng.randint(300, 20000)))
    # deferred and bounced through local submission (null sender: no notice)
    events.append(("sendmail", "dave@partner.test", [f"blocked@{DOMAIN}"], 900))
    events.append(("sendmail", "", [f"nosuch@{DOMAIN}"], 1200))
    events.append(("sendmail", "", [f"u2@{DOMAIN}", f"gone@{DOMAIN}"], 2500))
    # a bounce with a notice to its (local) sender: the notice is delivered
    # but not "received" (no smtpd or pickup line, as in Postfix)
    events.append(("sendmail", f"u5@{DOMAIN}", [f"lost@{DOMAIN}"], 700))
    # refused sessions
    events.append(("smtp", OUTSIDE, "bob@example.org",
                   [("friend@elsewhere.test", False)], 500))          # relay denied
    events.append(("smtp", OUTSIDE, "badguy@spam.test", [(f"u1@{DOMAIN}", False)], 500))
    events.append(("smtp", REJECTED_CLIENT, "eve@client.test", [(f"u3@{DOMAIN}", False)], 500))
    events.append(("smtp", INSIDE, "alice@client.test", [(f"nobody@{DOMAIN}", False)], 500))
    events.append(("lost", OUTSIDE, "mallory@client.test", f"u4@{DOMAIN}"))
    events.append(("pipelining", OUTSIDE))
    return events


def expected():
    """(delivered, deferred, bounced) recipient outcomes the log must show."""
    delivered = deferred = bounced = 0
    for ev in plan_traffic():
        if ev[0] == "smtp":
            for rcpt, accepted in ev[3]:
                if not accepted or not any(a for _, a in ev[3]):
                    continue
                if rcpt.startswith("blocked@"):
                    deferred += 1
                elif rcpt.endswith("@" + DOMAIN):
                    delivered += 1
        elif ev[0] == "sendmail":
            for rcpt in ev[2]:
                if rcpt.startswith("blocked@"):
                    deferred += 1
                elif rcpt.split("@")[0] in MAILBOXES:
                    delivered += 1
                else:
                    bounced += 1
                    if ev[1].split("@")[0] in MAILBOXES:
                        delivered += 1      # the notice to the sender
    return delivered, deferred, bounced


def smtp_session(port, client, sender, rcpts, body, helo):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname=helo,
                     source_address=(client, 0), timeout=30)
    s.ehlo(helo)
    code, _ = s.mail(sender)
    if code != 250:
        s.quit()
        return
    accepted = 0
    for rcpt, _ in rcpts:
        code, _ = s.rcpt(rcpt)
        accepted += code == 250
    if accepted:
        s.data(body.encode())
    s.quit()


def raw_session(port, client, lines, wait_banner=True):
    """Talk raw SMTP; returns what the server said."""
    sock = socket.socket()
    sock.bind((client, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    got = b""
    if wait_banner:
        got += sock.recv(4096)
    for chunk in lines:
        sock.sendall(chunk.encode())
        got += sock.recv(4096)
    return sock, got


def run(port, sendmail_argv, env=None, log=None):
    """Send the whole plan; log (a function) hears about failures."""
    rng = random.Random(20)
    n = 0
    for ev in plan_traffic():
        n += 1
        kind = ev[0]
        if kind == "smtp":
            _, client, sender, rcpts, size = ev
            body = message(rng, sender, [r for r, _ in rcpts], size, n)
            smtp_session(port, client, sender, rcpts, body, f"client{n}.example")
        elif kind == "sendmail":
            _, sender, rcpts, size = ev
            body = message(rng, sender, rcpts, size, n).replace("\r\n", "\n")
            argv = list(sendmail_argv) + ["-f", sender or "<>", "--"] + rcpts
            r = subprocess.run(argv, input=body.encode(), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            if r.returncode != 0 and log:
                log(f"sendmail {argv}: exit {r.returncode}: {r.stderr!r}")
        elif kind == "lost":
            _, client, sender, rcpt = ev
            sock, _ = raw_session(port, client, ["EHLO lost.example\r\n",
                                                 f"MAIL FROM:<{sender}>\r\n",
                                                 f"RCPT TO:<{rcpt}>\r\n"])
            sock.close()
        elif kind == "pipelining":
            # HELO does not offer PIPELINING: a client that sends ahead anyway
            sock, _ = raw_session(port, ev[1], ["HELO pipe.example\r\nMAIL FROM:<x@pipe.example>\r\n"])
            try:
                sock.sendall(b"QUIT\r\n")
                sock.recv(4096)
            except OSError:
                pass
            sock.close()


def wait_log(path, timeout=60):
    """Wait until the log at path shows every expected outcome; returns
    the log text."""
    delivered, deferred, bounced = expected()
    end = time.time() + timeout
    text = ""
    while time.time() < end:
        try:
            text = open(path, errors="replace").read()
        except OSError:
            text = ""
        if (text.count("status=sent") >= delivered and text.count("status=deferred") >= deferred
                and text.count("status=bounced") >= bounced
                and "lost connection after RCPT" in text):
            return text
        time.sleep(0.2)
    return text
