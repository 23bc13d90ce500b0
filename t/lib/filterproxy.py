"""filterproxy.py - the "advanced" after-queue content filter of Postfix's
FILTER_README for the tests: an SMTP server on a loopback port (aiosmtpd,
run by Debian's /usr/bin/python3) that hands each message to SpamAssassin
(spamc -x -E against a spamd the test started) and re-injects it, marked
with SpamAssassin's X-Spam-* headers, over SMTP into the MTA's second
listener with the same envelope.  Its answer to the end of DATA is the
filter's verdict, as FILTER_README's filters answer:

It offers XFORWARD (Postfix's XFORWARD_README), notes what it is told and
tells the listener the same before it re-injects, as amavisd-new does.

    spam (spamc -E exits 1)          550 5.7.1 Message content rejected
    spamc failed (spamd down, ...)   451 4.3.0 content filter unavailable
    re-injection refused or failed   the listener's reply, else 451 4.3.0
    re-injected                      250 2.0.0 Ok: filtered and queued as ID

Every transaction is noted as DIR/NNNN.json: the client's HELO name, its
XFORWARD arguments, sender, recipients, verdict.

    proxy = FilterProxy(port, reinject_port, spamd_port)   # from a test
    python3 filterproxy.py DIR PORT REINJECT_PORT SPAMD_PORT
"""
import json
import os
import sys
import time

PYTHON = "/usr/bin/python3"     # Debian's, with python3-aiosmtpd


class FilterProxy:
    def __init__(self, port, reinject_port, spamd_port):
        import tap
        self.dir = tap.tempdir("postern-filter-")
        self.port = port
        self.proc = tap.start([PYTHON, os.path.abspath(__file__), self.dir, str(port),
                               str(reinject_port), str(spamd_port)],
                              stdout=open(os.path.join(self.dir, "out"), "w"),
                              stderr=open(os.path.join(self.dir, "err"), "w"))
        ready = os.path.join(self.dir, "ready")
        if not tap.wait_until(lambda: os.path.exists(ready), 20):
            tap.diag(open(os.path.join(self.dir, "err")).read())
            raise RuntimeError("the filter proxy did not start")

    def stop(self):
        import tap
        tap.stop(self.proc)

    def transactions(self):
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        return [json.load(open(os.path.join(self.dir, n))) for n in names]


def serve(directory, port, reinject_port, spamd_port):
    import smtplib
    import subprocess
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
    count = [0]

    class XforwardSMTP(SMTP):
        async def smtp_XFORWARD(self, arg):
            if not hasattr(self.session, "xforward"):
                self.session.xforward = []
            self.session.xforward.append(arg)
            await self.push("250 2.0.0 Ok")

    class XforwardController(Controller):
        def factory(self):
            return XforwardSMTP(self.handler, **self.SMTP_kwargs)

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            session.xforward = []
            responses.insert(len(responses) - 1, "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT")
            return responses

        async def handle_DATA(self, server, session, envelope):
            xforward = list(getattr(session, "xforward", []))
            count[0] += 1
            scan = subprocess.run(["spamc", "-x", "-E", "-d", "127.0.0.1", "-p", str(spamd_port)],
                                  input=envelope.original_content, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=60)
            if scan.returncode == 1:
                verdict = "550 5.7.1 Message content rejected"
            elif scan.returncode != 0:
                verdict = "451 4.3.0 content filter unavailable"
            else:
                try:
                    with smtplib.SMTP("127.0.0.1", reinject_port, local_hostname="localhost",
                                      timeout=60) as client:
                        client.ehlo("localhost")
                        for arg in xforward:
                            code, text = client.docmd("XFORWARD", arg)
                            if code != 250:
                                raise smtplib.SMTPResponseException(code, text)
                        client.sendmail(envelope.mail_from, envelope.rcpt_tos, scan.stdout)
                    verdict = "250 2.0.0 Ok: filtered and re-injected"
                except smtplib.SMTPResponseException as e:
                    verdict = "%d %s" % (e.smtp_code, e.smtp_error.decode(errors="replace"))
                except (smtplib.SMTPException, OSError) as e:
                    verdict = "451 4.3.0 re-injection failed: %s" % e
            record = {"helo": session.host_name, "xforward": xforward, "sender": envelope.mail_from,
                      "recipients": envelope.rcpt_tos,
                      "verdict": verdict}
            path = os.path.join(directory, "%04d.json" % count[0])
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            return verdict

    # not the MTA's own name: its smtp client would see a mail loop
    controller = XforwardController(Handler(), hostname="127.0.0.1", port=port,
                                    server_hostname="filter.test")
    controller.start()
    open(os.path.join(directory, "ready"), "w").close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
