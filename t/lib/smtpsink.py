"""smtpsink.py - a receiving MTA for the smtp runner's tests: aiosmtpd
(Debian's python3-aiosmtpd, run by /usr/bin/python3, which has it) on a
loopback address and port, answering recipients by their local part:

    bad...     550 5.1.1 <ADDR>: Recipient address rejected: User unknown
    soft...    451 4.3.0 <ADDR>: Recipient address rejected: try again later
    busy...    450 4.2.1 <ADDR>: Recipient address rejected: mailbox busy
    once...    451 the first time, accepted afterwards
    others     250

Every RCPT TO is noted in DIR/rcpt ("ADDRESS CODE" a line); every
accepted transaction is written to DIR/NNNN.json (sender, recipients,
mail options, content (and its bytes as latin-1 in "raw"), whether it came
over TLS and in a resumed TLS session) and its arrival noted in
DIR/log.  With tls={"cert": PEM, "key": PEM, "max": "TLSv1.2"} it offers
STARTTLS (the certificate file may hold the chain) and notes the SNI name
of each handshake in DIR/sni ("-" for none); with lmtp=True it speaks
LMTP (aiosmtpd's LMTP); with eightbitmime=False it does not announce
8BITMIME (as smtp-sink -8); with requiretls=True it offers REQUIRETLS
(RFC 8689) in EHLO under TLS and takes MAIL FROM's REQUIRETLS (kept in
mail_options).

    sink = Sink("127.0.0.3", port)          # from a test
    python3 smtpsink.py DIR ADDRESS PORT    # what Sink runs
"""
import json
import os
import sys
import time

PYTHON = "/usr/bin/python3"     # Debian's, with python3-aiosmtpd


class Sink:
    def __init__(self, address, port, name="sink.test", tls=None, lmtp=False, eightbitmime=True,
                 requiretls=False):
        import tap
        self.dir = tap.tempdir("postern-sink-")
        self.address, self.port = address, port
        options = json.dumps({"tls": tls, "lmtp": lmtp, "eightbitmime": eightbitmime,
                              "requiretls": requiretls})
        self.proc = tap.start([PYTHON, os.path.abspath(__file__), self.dir, address, str(port), name,
                               options],
                              stdout=open(os.path.join(self.dir, "out"), "w"),
                              stderr=open(os.path.join(self.dir, "err"), "w"))
        ready = os.path.join(self.dir, "ready")
        if not tap.wait_until(lambda: os.path.exists(ready), 20):
            tap.diag(open(os.path.join(self.dir, "err")).read())
            raise RuntimeError("the SMTP sink did not start")

    def sni(self):
        """The SNI names of the handshakes so far ("-": none)."""
        try:
            return open(os.path.join(self.dir, "sni")).read().split()
        except OSError:
            return []

    def rcpts(self):
        """The RCPT TO commands so far, as (address, reply code)."""
        try:
            return [tuple(l.split()) for l in open(os.path.join(self.dir, "rcpt")).read().splitlines()]
        except OSError:
            return []

    def messages(self):
        """The transactions received so far, oldest first."""
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        return [json.load(open(os.path.join(self.dir, n))) for n in names]


def serve(directory, address, port, name, options):
    from aiosmtpd.controller import Controller
    seen = set()
    count = [0]

    class Handler:
        async def handle_RCPT(self, server, session, envelope, addr, rcpt_options):
            reply = self.rcpt_reply(envelope, addr, rcpt_options)
            with open(os.path.join(directory, "rcpt"), "a") as f:
                f.write(f"{addr} {reply[:3]}\n")
            return reply

        def rcpt_reply(self, envelope, addr, rcpt_options):
            local = addr.split("@")[0]
            if local.startswith("bad"):
                return f"550 5.1.1 <{addr}>: Recipient address rejected: User unknown"
            if local.startswith("busy"):
                return f"450 4.2.1 <{addr}>: Recipient address rejected: mailbox busy"
            if local.startswith("soft") or (local.startswith("once") and addr not in seen):
                seen.add(addr)
                return f"451 4.3.0 <{addr}>: Recipient address rejected: try again later"
            envelope.rcpt_tos.append(addr)
            envelope.rcpt_options.append(rcpt_options)
            return "250 2.1.5 Ok"

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            if options.get("requiretls") and session.ssl is not None:
                responses.insert(len(responses) - 1, "250-REQUIRETLS")
            return responses

        async def handle_DATA(self, server, session, envelope):
            count[0] += 1
            record = {"helo": session.host_name, "sender": envelope.mail_from,
                      "tls": session.ssl is not None,
                      "resumed": bool(session.ssl and session.ssl.get("ssl_object") is not None
                                      and session.ssl["ssl_object"].session_reused),
                      "mail_options": envelope.mail_options, "recipients": envelope.rcpt_tos,
                      "content": envelope.original_content.decode("utf-8", "replace"),
                      "raw": envelope.original_content.decode("latin-1")}
            path = os.path.join(directory, "%04d.json" % count[0])
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            return "250 2.0.0 Ok: queued as SINK%04d" % count[0]

    class Handler7(Handler):
        """A server that does not announce 8BITMIME (smtp-sink -8)."""
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            return [r for r in responses if r != "250-8BITMIME"]

    kwargs = {}
    if options.get("tls"):
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options["tls"]["cert"], options["tls"]["key"])
        def note_sni(ssl_object, server_name, ssl_context):
            with open(os.path.join(directory, "sni"), "a") as f:
                f.write((server_name or "-") + "\n")
        context.sni_callback = note_sni
        if options["tls"].get("max"):
            context.maximum_version = getattr(ssl.TLSVersion, options["tls"]["max"].replace(".", "_"))
        kwargs = {"tls_context": context, "require_starttls": False}
    handler = Handler() if options.get("eightbitmime", True) else Handler7()
    if options.get("requiretls"):
        from aiosmtpd.smtp import SMTP

        class RequireTlsSMTP(SMTP):
            def _getparams(self, params):
                result = super()._getparams(params)
                # REQUIRETLS (no value) is taken only under TLS, as RFC 8689 says
                if result is not None and "REQUIRETLS" in result and self.session.ssl is not None:
                    del result["REQUIRETLS"]
                return result

        class RequireTlsController(Controller):
            def factory(self):
                return RequireTlsSMTP(self.handler, **self.SMTP_kwargs)
        controller = RequireTlsController(handler, hostname=address, port=port, server_hostname=name,
                                          **kwargs)
    elif options.get("lmtp"):
        from aiosmtpd.lmtp import LMTP

        class LmtpController(Controller):
            def factory(self):
                return LMTP(self.handler, hostname=name, **kwargs)
        controller = LmtpController(handler, hostname=address, port=port)
    else:
        controller = Controller(handler, hostname=address, port=port, server_hostname=name, **kwargs)
    controller.start()
    open(os.path.join(directory, "ready"), "w").close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4],
          json.loads(sys.argv[5]) if len(sys.argv) > 5 else {})
