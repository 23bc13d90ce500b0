#!/usr/bin/python3
"""milter_script.py - a scriptable milter for the tests, on Debian's
python3-milter (pymilter, a binding of the real libmilter).

    milter_script.py SOCKET PLAN EVENTS

SOCKET is libmilter's "inet:PORT@127.0.0.1" or "unix:/path".  PLAN is a
JSON file read at each connection: {"STAGE": ACTION, ...} where STAGE is
connect, helo, mail, rcpt, data, header, eoh, body or eom, and ACTION is
"continue", "accept", "reject", "tempfail", "discard", "reply:CODE X.Y.Z
text", "sleep:SECONDS" (then continue), or, at eom, a list of changes
["addheader:Name:value", "insheader:INDEX:Name:value",
"chgheader:INDEX:Name:value", "replacebody:text", "chgfrom:addr",
"addrcpt:addr", "delrcpt:addr", "quarantine:reason"] followed by
continue.  Every event is appended to EVENTS as a JSON line with the
macros libmilter gave for it.
"""
import json
import sys
import time

import Milter

SOCKET, PLAN, EVENTS = sys.argv[1:4]
MACROS = ["j", "{daemon_name}", "{daemon_addr}", "v", "_", "i", "{auth_type}",
          "{auth_authen}", "{mail_addr}", "{mail_host}", "{mail_mailer}", "{rcpt_addr}",
          "{rcpt_host}", "{rcpt_mailer}", "{client_addr}", "{client_name}"]


class Script(Milter.Base):
    def __init__(self):
        self.plan = {}

    def record(self, event, *args):
        macros = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                macros[m] = v
        with open(EVENTS, "a") as f:
            f.write(json.dumps({"event": event, "args": [a if isinstance(a, (str, int)) else repr(a)
                                                         for a in args], "macros": macros}) + "\n")

    def act(self, stage):
        action = self.plan.get(stage, "continue")
        if isinstance(action, list):
            for change in action:
                self.change(change)
            return Milter.CONTINUE
        if action.startswith("sleep:"):
            time.sleep(float(action[6:]))
            return Milter.CONTINUE
        if action.startswith("reply:"):
            code, xcode, text = action[6:].split(" ", 2)
            self.setreply(code, xcode, text)
            return Milter.REJECT if code[0] == "5" else Milter.TEMPFAIL
        return {"continue": Milter.CONTINUE, "accept": Milter.ACCEPT, "reject": Milter.REJECT,
                "tempfail": Milter.TEMPFAIL, "discard": Milter.DISCARD}[action]

    def change(self, change):
        kind, _, rest = change.partition(":")
        if kind == "addheader":
            name, _, value = rest.partition(":")
            self.addheader(name, value)
        elif kind == "insheader":
            idx, name, value = rest.split(":", 2)
            self.addheader(name, value, int(idx))
        elif kind == "chgheader":
            idx, name, value = rest.split(":", 2)
            self.chgheader(name, int(idx), value)
        elif kind == "replacebody":
            self.replacebody(rest.encode())
        elif kind == "chgfrom":
            self.chgfrom(rest)
        elif kind == "addrcpt":
            self.addrcpt(rest)
        elif kind == "delrcpt":
            self.delrcpt(rest)
        elif kind == "quarantine":
            self.quarantine(rest)

    def connect(self, hostname, family, hostaddr):
        with open(PLAN) as f:
            self.plan = json.load(f)
        self.record("connect", hostname, hostaddr[0] if hostaddr else "")
        return self.act("connect")

    def hello(self, name):
        self.record("helo", name)
        return self.act("helo")

    def envfrom(self, sender, *params):
        self.record("mail", sender, *params)
        return self.act("mail")

    def envrcpt(self, recipient, *params):
        self.record("rcpt", recipient, *params)
        return self.act("rcpt")

    def data(self):
        self.record("data")
        return self.act("data")

    def header(self, name, value):
        self.record("header", name, value)
        return self.act("header")

    def eoh(self):
        self.record("eoh")
        return self.act("eoh")

    def body(self, chunk):
        self.record("body", chunk.decode("utf-8", "replace"))
        return self.act("body")

    def eom(self):
        self.record("eom")
        return self.act("eom")

    def abort(self):
        self.record("abort")
        return Milter.CONTINUE

    def close(self):
        self.record("close")
        return Milter.CONTINUE

    def unknown(self, command):
        self.record("unknown", command)
        return Milter.CONTINUE


Milter.factory = Script
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT
                 | Milter.ADDRCPT_PAR | Milter.DELRCPT | Milter.CHGFROM | Milter.QUARANTINE)
Milter.runmilter("postern-test", SOCKET, 60)
