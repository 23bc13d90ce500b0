#!/usr/bin/env python3
# The lookup service's answers within one SMTP transaction: smtpd's checks
# at RCPT and the rewriting at the end of DATA ask PostgreSQL each question
# once (the alias table for the recipient: once, where it was asked at RCPT
# and again by rewriting before), and the next transaction asks afresh, so
# a change in the table between two transactions of one session is seen.
# mydestination, virtual_alias_domains and virtual_mailbox_domains are
# string lists as in Postfix: the domain is asked, never its parent
# (".com").  PostgreSQL logs every statement (log_statement = all); the
# test counts them in its log.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402
from smtpdtest import Client  # noqa: E402

tap.require(programs=["postern", "postern-lookup", "postern-smtpd"])
mailuid = __import__("pwd").getpwnam(ROOT_USERS["mail_owner"]).pw_uid if os.geteuid() == 0 else os.getuid()
pg = sqlservers.Postgres()
pg.psql(sqlservers.inserts(mailuid))
pg.psql("ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf();", db="postgres")
pglog = os.path.join(pg.dir, "log")

cfdir = tap.tempdir()
os.chmod(cfdir, 0o755)
common = f"user = postfix\npassword = $password\ndbname = postfix\nhosts = inet:127.0.0.1:{pg.port}\n"
tables = {
    "domains": "SELECT domain FROM domain WHERE domain='%s' AND backupmx='0' AND active='1'",
    "mailbox": "SELECT maildir FROM mailbox WHERE username='%s' AND active='1'",
    "alias": "SELECT goto FROM alias WHERE address='%s' AND active='1'",
}
cf = {}
for name, query in tables.items():
    cf[name] = tap.write(os.path.join(cfdir, name + ".cf"), common + f"query = {query}\n")
    os.chmod(cf[name], 0o644)

inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": f"proxy:pgsql:{cf['domains']}",
    "virtual_mailbox_maps": f"proxy:pgsql:{cf['mailbox']}",
    "virtual_alias_maps": f"proxy:pgsql:{cf['alias']}",
    "virtual_uid_maps": f"static:{mailuid}",
})


def asked(fragment):
    """How often PostgreSQL was sent a statement holding fragment."""
    return len(re.findall(r"statement: SELECT [^\n]*" + re.escape(fragment), open(pglog).read()))


def transaction(c, rcpt, subject):
    tap.is_(c.cmd("MAIL FROM:<sender@client.example>"), "250 2.1.0 Ok", f"{subject}: MAIL")
    tap.is_(c.cmd(f"RCPT TO:<{rcpt}>"), "250 2.1.5 Ok", f"{subject}: RCPT TO:<{rcpt}>")
    tap.like(c.cmd("DATA"), r"^354 ", f"{subject}: DATA")
    c.send(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n".encode())
    return c.reply()


before_alias = asked("address='sales@example.com'")
c = Client(port)
c.reply()
c.cmd("EHLO client.example")
tap.like(transaction(c, "sales@example.com", "first"), r"^250 2\.0\.0 Ok: queued as ",
         "a message to an alias in PostgreSQL is queued")
tap.ok(tap.wait_until(lambda: asked("address='sales@example.com'") > before_alias, 10), "the alias was asked")
tap.is_(asked("address='sales@example.com'") - before_alias, 1,
        "once in the transaction: RCPT asked, rewriting at the end of DATA was answered from what RCPT got")
tap.is_(asked("address='.com'") + asked("domain='.com'"), 0,
        "no parent domain is asked of virtual_alias_domains or virtual_mailbox_domains (string lists)")

# the table changes between two transactions of the same session
pg.psql("UPDATE alias SET goto = 'alice@example.com' WHERE address = 'sales@example.com';")
tap.like(transaction(c, "sales@example.com", "second"), r"^250 2\.0\.0 Ok: queued as ",
         "a second transaction in the session")
tap.is_(asked("address='sales@example.com'") - before_alias, 2, "the next transaction asked again")
c.cmd("QUIT")
c.close()

maildirs = os.path.join(inst.dir, "mail", "example.com")


def subjects(box):
    out = []
    d = os.path.join(maildirs, box, "new")
    for name in os.listdir(d) if os.path.isdir(d) else []:
        m = re.search(r"(?m)^Subject: (\w+)", open(os.path.join(d, name)).read())
        out.append(m.group(1) if m else "?")
    return sorted(out)


tap.ok(tap.wait_until(lambda: subjects("bob") == ["first"] and subjects("alice") == ["second"], 30),
       "the first went to bob, the second, after the change, to alice") \
    or tap.diag(f"bob {subjects('bob')} alice {subjects('alice')}\n" + inst.log()[-2000:])

# qmgr keeps its last resolution for a second, as Postfix's resolve client
# keeps its last answer: the same address twice in a row costs one
# lookup of its domain (what a second later is asked again is not timed
# here: the test would depend on the machine's speed)
qmgr = "postern-qmgr"
before = asked("domain='example.com'")
r = tap.run([qmgr, "-c", inst.dir, "-r", "bob@example.com", "bob@example.com"])
tap.ok(r.returncode == 0 and r.stdout.count("class=virtual mailbox") == 2,
       "postern-qmgr -r resolves the address twice") or tap.diag(r.stdout + r.stderr)
tap.is_(asked("domain='example.com'") - before, 1, "asking virtual_mailbox_domains once")
r = tap.run([qmgr, "-c", inst.dir, "-r", "bob@example.com"])
tap.ok(tap.wait_until(lambda: asked("domain='example.com'") - before == 2, 10),
       "another process asks again") or tap.diag(r.stdout + r.stderr)

inst.stop()
tap.done()
