#!/usr/bin/env python3
# Beyond one machine (issue 15, doc/lookup.md "Several MX hosts on one
# database"): two self-contained postern instances stand in for two MX
# hosts. Both read one PostgreSQL database; the second reads it through a
# streaming read replica of its own (pg_basebackup -R: PostgreSQL's own
# replication) with the primary as the second host of its tables. Both
# accept mail for the same domain and deliver into one shared Maildir tree,
# where one maildirsize keeps the quota exact whichever host delivers. A
# mailbox added on the primary reaches the replica's host; when the replica
# stops, that host falls back to the primary and says so.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402
from smtpdtest import Client  # noqa: E402

tap.require(programs=["postern", "postern-lookup", "postern-virtual"],
            tools=[os.path.join(sqlservers.PG_BIN, "pg_basebackup")])
pwent = __import__("pwd").getpwnam(ROOT_USERS["mail_owner"]) if os.geteuid() == 0 else None
mailuid = pwent.pw_uid if pwent else os.getuid()
pg = sqlservers.Postgres()
pg.psql(sqlservers.inserts(mailuid)
        + "INSERT INTO mailbox VALUES ('carol@example.com', 'carol@example.com', 'example.com/carol/', "
        + f"5000, 'carol', 'example.com', {mailuid}, TRUE);")
replica = pg.replica()
tap.ok(tap.wait_until(lambda: replica.psql("SELECT count(*) FROM mailbox;").strip() == "5", timeout=60),
       "the read replica has the primary's mailboxes")

cfdir = tap.tempdir()
os.chmod(cfdir, 0o755)
shared = tap.tempdir()             # the Maildirs both hosts deliver into
os.chmod(shared, 0o755)
if pwent:
    os.chown(shared, pwent.pw_uid, pwent.pw_gid)
common = "user = postfix\npassword = $password\ndbname = postfix\n"
QUERIES = {
    "domains": "SELECT domain FROM domain WHERE domain='%s' AND backupmx='0' AND active='1'",
    "mailbox": "SELECT maildir FROM mailbox WHERE username='%s' AND active='1'",
    "alias": "SELECT goto FROM alias WHERE address='%s' AND active='1'",
    "uid": "SELECT uid FROM mailbox WHERE username='%s' AND active='1'",
    "quota": "SELECT quota FROM mailbox WHERE local_part='%u' AND domain='%d' AND active='1'",
}


def tables(host_name, hosts):
    names = {}
    for name, query in QUERIES.items():
        names[name] = tap.write(os.path.join(cfdir, f"{host_name}-{name}.cf"),
                                common + f"hosts = {hosts}\nquery = {query}\n")
    return {
        "virtual_mailbox_domains": f"pgsql:{names['domains']}", "virtual_mailbox_maps": f"pgsql:{names['mailbox']}",
        "virtual_alias_maps": f"pgsql:{names['alias']}", "virtual_uid_maps": f"pgsql:{names['uid']}",
        "virtual_mailbox_limit_maps": f"pgsql:{names['quota']}",
        "virtual_mailbox_base": shared, "virtual_maildir_extended": "yes",
        "virtual_overquota_bounce": "yes", "virtual_mailbox_limit_override": "yes",
        # notices to the sender (client.example) wait: no DNS here
        "defer_transports": "smtp relay",
    }


# host A reads the primary; host B its replica first (a unix socket: tried
# first), the primary second
primary_socket = f"unix:{pg.socket_dir}/.s.PGSQL.{pg.port}"
replica_socket = f"unix:{replica.socket_dir}/.s.PGSQL.{replica.port}"
a, port_a = sqlservers.instance_with_tables(tables("a", primary_socket))
b, port_b = sqlservers.instance_with_tables(tables("b", f"{replica_socket} inet:127.0.0.1:{pg.port}"))


def send(port, rcpt, subject, size=1500):
    c = Client(port, timeout=60)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@client.example>")
    answer = c.cmd(f"RCPT TO:<{rcpt}>")
    end = None
    if answer.startswith("250"):
        c.cmd("DATA")
        c.send(b"Subject: " + subject.encode() + b"\r\n\r\n" + b"x" * size + b"\r\n.\r\n")
        end = c.reply()
    c.cmd("QUIT")
    return answer, end


def maildir_files(user):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(shared, "example.com", user, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, n) for n in os.listdir(d)]
    return out


def logged(inst, pattern, timeout=60):
    return tap.wait_until(lambda: re.search(pattern, inst.log()), timeout)


answer_a, end_a = send(port_a, "alice@example.com", "via a", size=100)
answer_b, end_b = send(port_b, "alice@example.com", "via b", size=100)
tap.like(end_a or answer_a, r"^250 ", "host A (the primary) accepts mail for example.com")
tap.like(end_b or answer_b, r"^250 ", "host B (the replica) accepts mail for the same domain")
tap.ok(tap.wait_until(lambda: len(maildir_files("alice")) == 2, timeout=60),
       "both land in the one shared Maildir")
tap.ok(int(replica.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'postfix' "
                        "AND pid <> pg_backend_pid();", db="postgres").strip()) > 0,
       "host B's lookup service reads the replica")

# carol's quota of 5000 bytes, filled from both hosts in turn: one
# maildirsize counts every delivery, whichever host made it
results = []
for i in range(6):
    inst, port = (a, port_a) if i % 2 == 0 else (b, port_b)
    answer, end = send(port, "carol@example.com", f"fill {i}")
    results.append((answer, end))
tap.ok(all(e and e.startswith("250") for _, e in results), "six messages of some 1600 bytes accepted by A and B in turn")
tap.ok(logged(a, r"to=<carol@example\.com>, relay=virtual, .*status=bounced") or
       logged(b, r"to=<carol@example\.com>, relay=virtual, .*status=bounced", timeout=5),
       "once over quota, carol's mail bounces (virtual_overquota_bounce)")
done_pattern = r"to=<carol@example\.com>, relay=virtual, .*status=(sent|bounced)"
tap.ok(tap.wait_until(lambda: len(re.findall(done_pattern, a.log())) + len(re.findall(done_pattern, b.log())) == 6,
                      timeout=90), "every one of the six is delivered or bounced")
files = maildir_files("carol")
on_disk = sum(os.path.getsize(f) for f in files)
sent = len(re.findall(r"to=<carol@example\.com>, relay=virtual, .*status=sent", a.log() + b.log()))
tap.is_(len(files), sent, f"carol's Maildir holds the {sent} messages the two hosts delivered")
smallest = min((os.path.getsize(f) for f in files), default=0)
tap.ok(sent >= 1 and on_disk <= 5000 < on_disk + smallest,
       f"{sent} messages ({on_disk} bytes) fit in 5000, one more would not: the two hosts enforced one quota")
size_file = os.path.join(shared, "example.com", "carol", "maildirsize")
lines = open(size_file).read().split("\n") if os.path.exists(size_file) else []
counted = [ln.split() for ln in lines[1:] if ln.strip()]
total = sum(int(f[0]) for f in counted)
count = sum(int(f[1]) for f in counted)
tap.is_((total, count), (on_disk, len(files)),
        "one maildirsize, written by both hosts, counts exactly what is on disk")
tap.like(lines[0] if lines else "", r"^5000S", "with the quota from the database")

# a mailbox added on the primary reaches host B through replication
pg.psql("INSERT INTO mailbox VALUES ('dave@example.com', 'dave@example.com', 'example.com/dave/', 0, "
        f"'dave', 'example.com', {mailuid}, TRUE);")
tap.ok(tap.wait_until(lambda: replica.psql("SELECT count(*) FROM mailbox WHERE username = 'dave@example.com';")
                      .strip() == "1", timeout=60), "the new mailbox is replicated")
answer, end = send(port_b, "dave@example.com", "new", size=10)
tap.like(end or answer, r"^250 ", "host B accepts mail for it")

# the replica stops: host B's tables fall back to the primary
replica.stop()
answer, end = send(port_b, "dave@example.com", "after the replica", size=10)
if not answer.startswith("250"):
    # the kept connection to the replica fails once; the next lookup reconnects
    answer, end = send(port_b, "dave@example.com", "after the replica, again", size=10)
tap.like(end or answer, r"^250 ", "the replica stopped: host B still accepts, from the primary")
tap.ok(logged(b, r"table pgsql:\S+: connected to inet:127\.0\.0\.1:%d" % pg.port, timeout=30),
       "and its lookup service logs the connection to the primary")
tap.ok(tap.wait_until(lambda: len(maildir_files("dave")) >= 2, timeout=60), "dave's mail is delivered")
tap.unlike(a.log() + b.log(), r"to=<(alice|dave)@example\.com>, .*status=bounced", "nothing else bounced")
a.stop()
b.stop()
tap.done()
