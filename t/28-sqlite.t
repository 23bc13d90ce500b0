#!/usr/bin/env python3
# sqlite: tables (sqlite_table(5)): an SQLite file with the
# postfixadmin-style schema, read through `postern map -q` with the same
# query language as pgsql: and mysql: (maps/sql.c: %s %u %d %1, the old
# table/select_field form, result_format, expansion_limit, several rows
# joined by commas), hostile keys quoted, a file that is missing or broken
# answering "try again"; and a postern instance that accepts and refuses
# at RCPT from the file, through the lookup service, and delivers.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402
from smtpdtest import Client  # noqa: E402

tap.require(programs=["postern", "postern-lookup"], tools=["sqlite3"])
mailuid = __import__("pwd").getpwnam(ROOT_USERS["mail_owner"]).pw_uid if os.geteuid() == 0 else os.getuid()
d = tap.tempdir()
os.chmod(d, 0o755)
db = os.path.join(d, "postfix.sqlite")
schema = sqlservers.SCHEMA.replace("BOOLEAN", "INTEGER").replace("DEFAULT TRUE", "DEFAULT 1") \
    .replace("DEFAULT FALSE", "DEFAULT 0")
r = tap.run(["sqlite3", db], input=schema + sqlservers.inserts(mailuid, booleans="sqlite").replace("\\\\", "\\")
            + "CREATE TABLE big (k TEXT, v TEXT);"
            + "".join(f"INSERT INTO big VALUES ('many', 'v{i}');" for i in range(5)))
tap.is_(r.returncode, 0, "sqlite3 makes the database") or tap.diag(r.stderr)
os.chmod(db, 0o644)


def cf(name, text):
    return tap.write(os.path.join(d, name), f"dbpath = {db}\n" + text)


relay_domains = cf("relay_domains.cf", "query = SELECT description FROM domain WHERE domain='%s' "
                   "AND backupmx='1' AND active='1'\n")
mailbox = cf("mailbox.cf", "query = SELECT maildir FROM mailbox WHERE username='%s' AND active=1\n")
quota = cf("quota.cf", "query = SELECT quota FROM mailbox WHERE local_part='%u' AND domain='%d' AND active=1\n")
old_form = cf("old.cf", "table = mailbox\nselect_field = 1024*1024*quota\nwhere_field = email\n"
              "additional_conditions = and active = 1\n")
many = cf("many.cf", "query = SELECT v FROM big WHERE k='%s' ORDER BY v\n")
limited = cf("limited.cf", "expansion_limit = 2\nquery = SELECT v FROM big WHERE k='%s'\n")
labels = cf("labels.cf", "result_format = %s via %2.%1\nquery = SELECT goto FROM alias WHERE address='%u@%2.%1'\n")
missing = tap.write(os.path.join(d, "missing.cf"), f"dbpath = {d}/nonexistent.sqlite\nquery = SELECT '%s'\n")
broken = tap.write(os.path.join(d, "broken.sqlite"), "this is not a database\n" * 100)
brokencf = tap.write(os.path.join(d, "broken.cf"), f"dbpath = {broken}\nquery = SELECT v FROM big WHERE k='%s'\n")
badquery = cf("badquery.cf", "query = SELECT nosuchcolumn FROM alias WHERE address='%s'\n")
tap.write(os.path.join(d, "main.cf"), f"queue_directory = {d}/queue\n")


def q(key, table):
    return sqlservers.map_query(d, key, table)[:2]


tap.is_(q("backup.example", "sqlite:" + relay_domains), (0, "backup MX for backup.example"), "a relay domain")
tap.is_(q("example.com", "sqlite:" + relay_domains), (1, ""), "a hosted domain is not one")
tap.is_(q("Alice@Example.COM", "sqlite:" + mailbox), (0, "example.com/alice/"), "a mailbox; keys folded")
tap.is_(q("gone@example.com", "sqlite:" + mailbox), (1, ""), "an inactive mailbox is not found")
tap.is_(q("alice@example.com", "sqlite:" + quota), (0, "9223372036854774784"), "%u and %d; a quota near 2^63")
tap.is_(q("bob@example.com", "sqlite:" + old_form), (0, str(2 * 1024 * 1024)), "the old form with 1024*1024*quota")
tap.is_(q("many", "sqlite:" + many), (0, "v0,v1,v2,v3,v4"), "several rows joined by commas")
tap.is_(q("many", "sqlite:" + limited)[0], 75, "more than expansion_limit: try again")
tap.is_(q("sales@example.com", "sqlite:" + labels), (0, "bob@example.com via example.com"), "%1 %2 in query and result")
tap.is_(q("sales@com", "sqlite:" + labels), (1, ""), "too few labels for %2: no query, not found")
tap.is_(q("a@b", "sqlite:" + missing)[0], 75, "a database file that is missing: try again, not \"not found\"")
tap.is_(q("many", "sqlite:" + brokencf)[0], 75, "a file that is no database: try again")
tap.is_(q("a@example.com", "sqlite:" + badquery)[0], 75, "a query the database refuses: try again")
hostile = ["x' OR '1'='1", "x'; DROP TABLE alias; --", "\\' OR 1=1 --", "'", "%s%%", "y" * 65536]
tap.is_([q(k, "sqlite:" + mailbox) for k in hostile], [(1, "")] * len(hostile),
        "hostile keys (quotes, backslashes, 64 KiB) are not found")
tap.is_(q("o'brien\\x@example.com", "sqlite:" + mailbox), (0, "example.com/obrien/"),
        "a key holding a quote and a backslash finds its row")
r = tap.run(["sqlite3", db, "SELECT count(*) FROM alias"])
tap.is_(r.stdout.strip(), "4", "the alias table is still there")

# ---- an instance: RCPT accepted and refused from SQLite, through the service
domains = cf("domains.cf", "query = SELECT domain FROM domain WHERE domain='%s' AND backupmx=0 AND active=1\n")
aliases = cf("aliases.cf", "query = SELECT goto FROM alias WHERE address='%s' AND active=1\n")
inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": f"sqlite:{domains}", "virtual_mailbox_maps": f"sqlite:{mailbox}",
    "virtual_alias_maps": f"sqlite:{aliases}"})
c = Client(port, timeout=60)
c.reply()
c.cmd("EHLO client.example")
c.cmd("MAIL FROM:<sender@client.example>")
a1 = c.cmd("RCPT TO:<sales@example.com>")
a2 = c.cmd("RCPT TO:<nobody@example.com>")
tap.like(a1, r"^250 ", "RCPT of an SQLite alias: 250")
tap.like(a2, r"^550 5\.1\.1 ", "an address SQLite does not know: 550 5.1.1")
c.cmd("DATA")
c.send(b"Subject: sqlite\r\n\r\nbody\r\n.\r\n")
tap.like(c.reply(), r"^250 ", "the message is queued")
c.cmd("QUIT")
new = os.path.join(inst.dir, "mail", "example.com", "bob", "new")
tap.ok(tap.wait_until(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1, timeout=30),
       "delivered to the alias's target, in the Maildir the SQLite table names")
tap.like(inst.log(), r"lookup\[\d+\]: table sqlite:\S+: connected to " + re.escape(db),
         "the lookup service opened the file (the static smtpd did not)")
inst.stop()
tap.done()
