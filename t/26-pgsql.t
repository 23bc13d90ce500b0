#!/usr/bin/env python3
# pgsql: tables (pgsql_table(5)) against a real PostgreSQL 15 cluster the
# test starts in a temporary directory (initdb, pg_ctl; a unix socket and a
# loopback port), with a postfixadmin-style schema and seed 000's and seed
# 002's .cf files as written (hosts aside): `postern map -q` answers as
# postmap -q does (the query language, multi-row results, the old
# table/select_field form with 1024*1024*quota, hosts tried in turn,
# hostile keys quoted by libpq); then a postern instance accepts and
# refuses at RCPT from the tables, delivers into the Maildirs that
# virtual_mailbox_maps and virtual_uid_maps name, expands aliases, keeps
# one connection per table for many sessions, answers 4xx while
# PostgreSQL is down and loses nothing; and the lookup service keeps
# serving while a slow query runs, answers a half-closed client, drops a
# client that never reads.
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import lookupclient  # noqa: E402
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402
from smtpdtest import Client  # noqa: E402

tap.require(programs=["postern", "postern-lookup"])
mailuid = __import__("pwd").getpwnam(ROOT_USERS["mail_owner"]).pw_uid if os.geteuid() == 0 else os.getuid()
pg = sqlservers.Postgres()
pg.psql(sqlservers.inserts(mailuid))
pg.psql("CREATE TABLE big (k VARCHAR(64), v TEXT);"
        + "".join(f"INSERT INTO big VALUES ('many', 'v{i}');" for i in range(5))
        + "ALTER TABLE big OWNER TO postfix;")

cfdir = tap.tempdir()
os.chmod(cfdir, 0o755)
inet = f"inet:127.0.0.1:{pg.port}"


def cf(name, text, hosts=None):
    """A .cf file as the seed writes it, its #hosts line made real."""
    text = text.replace("#hosts          = localhost", f"hosts           = {hosts or inet}")
    return tap.write(os.path.join(cfdir, name), text)


# seed 000, as written
relay_domains = cf("relay_domains.cf", """\
# relay_domains.cf
user            = postfix
password        = $password
dbname          = postfix
#hosts          = localhost
query           = SELECT description FROM domain WHERE domain='%s' AND backupmx='1' AND active='1';
""")
relay_recipients = cf("relay_recipient_maps.cf", """\
# relay_recipient_maps.cf
user            = postfix
password        = $password
dbname          = postfix
#hosts          = localhost
query           = SELECT goto FROM alias WHERE address='%s' AND active='1';
""")
limit_maps = cf("virtual_mailbox_limit_maps.cf", """\
# virtual_alias_maps.cf
user            = postfix
password        = $password
dbname          = postfix
#hosts          = localhost
query           = SELECT quota FROM mailbox WHERE local_part='%u' AND domain='%d' AND active='1';
""")
# seed 002, as written (its hosts = dbServerhostname made ours)
old_form = tap.write(os.path.join(cfdir, "quota-old.cf"), f"""\
# Postfix virtual_mailbox_limit_maps
# Lookup table that defines the mailbox quota limits for specific
# addresses.

user            = postfix
password        = $password
dbname          = postfix
hosts           = {inet}
table           = mailbox
select_field    = 1024*1024*quota
where_field     = email
additional_conditions = and active = 'true'
""")
common = "user = postfix\npassword = $password\ndbname = postfix\n"
many = tap.write(os.path.join(cfdir, "many.cf"), common + f"hosts = {inet}\n"
                 "query = SELECT v FROM big WHERE k='%s' ORDER BY v\n")
limited = tap.write(os.path.join(cfdir, "limited.cf"), common + f"hosts = {inet}\nexpansion_limit = 3\n"
                    "query = SELECT v FROM big WHERE k='%s' ORDER BY v\n")
formats = tap.write(os.path.join(cfdir, "formats.cf"), common + f"hosts = {inet}\n"
                    "result_format = <%s> %u at %d for %U in %1/%2%%\n"
                    "domain = example.com\n"
                    "query = SELECT goto FROM alias WHERE address='%u@%2.%1' AND active\n")
in_turn = tap.write(os.path.join(cfdir, "inturn.cf"), common + "hosts = unix:/nonexistent "
                    f"inet:127.0.0.1:{tap.free_port()} unix:{pg.socket_dir}/.s.PGSQL.{pg.port}\n"
                    "query = SELECT description FROM domain WHERE domain='%s'\n")
down = tap.write(os.path.join(cfdir, "down.cf"), common + f"hosts = inet:127.0.0.1:{tap.free_port()}\n"
                 "query = SELECT description FROM domain WHERE domain='%s'\n")
badpass = tap.write(os.path.join(cfdir, "badpass.cf"), f"user = postfix\npassword = wrong\ndbname = postfix\n"
                    f"hosts = {inet}\nquery = SELECT description FROM domain WHERE domain='%s'\n")

tap.write(os.path.join(cfdir, "main.cf"), f"queue_directory = {cfdir}/queue\n")


def q(key, table):
    return sqlservers.map_query(cfdir, key, table)


tap.is_(q("backup.example", "pgsql:" + relay_domains)[:2], (0, "backup MX for backup.example"),
        "seed 000 relay_domains: a backup-MX domain is found")
tap.is_(q("example.com", "pgsql:" + relay_domains)[:2], (1, ""), "a domain hosted here is not a relay domain")
tap.is_(q("off.example", "pgsql:" + relay_domains)[:2], (1, ""), "an inactive domain is not found")
tap.is_(q("known@backup.example", "pgsql:" + relay_recipients)[:2], (0, "known@backup.example"),
        "seed 000 relay_recipient_maps finds a relay recipient")
tap.is_(q("KNOWN@Backup.Example", "pgsql:" + relay_recipients)[:2], (0, "known@backup.example"),
        "keys are folded to lower case, as Postfix folds pgsql keys")
tap.is_(q("alice@example.com", "pgsql:" + limit_maps)[:2], (0, "9223372036854774784"),
        "seed 000 quota query (%u and %d): the bigint near 2^63 comes back whole")
tap.is_(q("alice", "pgsql:" + limit_maps)[:2], (1, ""), "%d with an unqualified key: no query, not found")
tap.is_(q("bob@example.com", "pgsql:" + old_form)[:2], (0, str(2 * 1024 * 1024)),
        "seed 002's old form (table, select_field 1024*1024*quota, where_field, additional_conditions)")
tap.is_(q("gone@example.com", "pgsql:" + old_form)[:2], (1, ""), "its additional_conditions apply")
tap.is_(q("many", "pgsql:" + many)[:2], (0, "v0,v1,v2,v3,v4"), "several rows are joined by commas")
code, out, err = q("many", "pgsql:" + limited)
tap.is_((code, out), (75, ""), "more rows than expansion_limit: try again (EX_TEMPFAIL), not a partial answer")
tap.like(err, r"more than expansion_limit=3", "and says why")
tap.is_(q("sales@example.com", "pgsql:" + formats)[:2],
        (0, "<bob@example.com> bob at example.com for sales in com/example%"),
        "result_format with %s %u %d %U %1 %2 %%, query with %u %1 %2")
tap.is_(q("info@other.example", "pgsql:" + formats)[:2], (1, ""), "domain = example.com: other domains not asked")
code, out, err = q("backup.example", "pgsql:" + in_turn)
tap.is_((code, out), (0, "backup MX for backup.example"),
        "hosts tried in turn: a missing socket, a closed port, then unix:SOCKET answers")
dead_port = tap.free_port()
random_order = tap.write(os.path.join(cfdir, "random.cf"), common + f"hosts = inet:127.0.0.1:{dead_port} {inet}\n"
                         "query = SELECT description FROM domain WHERE domain='%s'\n")
tried_dead, dead_err = [], ""
for _ in range(16):
    code, out, err = q("backup.example", "pgsql:" + random_order)
    tried_dead.append(code == 0 and f"127.0.0.1:{dead_port}" in err)
    dead_err = err if tried_dead[-1] else dead_err
tap.ok(any(tried_dead) and not all(tried_dead),
       "two hosts are tried in random order, as Postfix's: the closed port came first in %d of 16 lookups"
       % sum(tried_dead))
tap.like(dead_err, r"warning: table pgsql:\S+: cannot connect to inet:127\.0\.0\.1:%d: " % dead_port,
         "a host that fails is logged though another answers")
unix_first = tap.write(os.path.join(cfdir, "unixfirst.cf"), common + f"hosts = inet:127.0.0.1:{dead_port} "
                       f"unix:{pg.socket_dir}/.s.PGSQL.{pg.port}\n"
                       "query = SELECT description FROM domain WHERE domain='%s'\n")
unix_results = [q("backup.example", "pgsql:" + unix_first) for _ in range(8)]
tap.ok(all(r[0] == 0 and f"127.0.0.1:{dead_port}" not in r[2] for r in unix_results),
       "unix: sockets are tried before TCP hosts, as Postfix's") or tap.diag(repr(unix_results[:2]))
uri_ok = tap.write(os.path.join(cfdir, "uri.cf"), common + f"hosts = postgresql://127.0.0.1:{pg.port}/postfix?sslmode=disable\n"
                   "query = SELECT description FROM domain WHERE domain='%s'\n")
tap.is_(q("backup.example", "pgsql:" + uri_ok)[:2], (0, "backup MX for backup.example"),
        "hosts = postgresql://...: a connection URI (Postfix 3.6), user and password from the file")
uri_tls = tap.write(os.path.join(cfdir, "uritls.cf"), common + f"hosts = postgresql://postfix:s3cretpw@127.0.0.1:{pg.port}/postfix?sslmode=require\n"
                    "query = SELECT description FROM domain WHERE domain='%s'\n")
code, out, err = q("backup.example", "pgsql:" + uri_tls)
tap.is_(code, 75, "the URI's sslmode=require reaches libpq: a server without TLS is refused (try again)")
tap.like(err, r"(?i)ssl", "and the log names TLS") or tap.diag(err)
tap.ok("s3cretpw" not in err and "postgresql://***@127.0.0.1" in err,
       "a password in the URI never reaches the log (shown as ***)") or tap.diag(err)
uri_bad = tap.write(os.path.join(cfdir, "uribad.cf"), common + f"hosts = postgresql://127.0.0.1:{pg.port}/postfix?nosuch=1\n"
                    "query = SELECT description FROM domain WHERE domain='%s'\n")
code, out, err = q("backup.example", "pgsql:" + uri_bad)
tap.ok(code not in (0, 1), "a URI libpq cannot read is refused at open") or tap.diag(err)
tap.like(err, r"cannot read the connection URI: .*nosuch", "naming what it cannot read")
code, out, err = q("backup.example", "pgsql:" + down)
tap.is_(code, 75, "a database that is down: try again (EX_TEMPFAIL), never not found")
tap.like(err, r"lookup of \"backup.example\".*(refused|connect)", "and the reason is logged")
code, out, err = q("backup.example", "pgsql:" + badpass)
tap.is_(code, 75, "a wrong password: try again, not found neither")

# hostile keys: libpq quotes them; nothing breaks out of the literal
hostile = ["x' OR '1'='1", "x'; DROP TABLE alias; --", "\\' OR 1=1 --", "a\\", "'", "\\\\'",
           "%s%d%u", "x" * 65536]
results = [q(k, "pgsql:" + relay_recipients)[:2] for k in hostile]
tap.is_(results, [(1, "")] * len(hostile), "hostile keys (quotes, backslashes, escapes, 64 KiB) are not found")
tap.is_(pg.psql("SELECT count(*) FROM alias").strip(), "4", "and the alias table is still there")
tap.is_(q("o'brien\\x@example.com", "pgsql:" + relay_recipients.replace("relay_recipient", "relay_recipient"))[0],
        1, "a quote and a backslash in a key that is not there")
qb = tap.write(os.path.join(cfdir, "mailbox.cf"), common + f"hosts = {inet}\n"
               "query = SELECT maildir FROM mailbox WHERE username='%s' AND active='1'\n")
tap.is_(q("o'brien\\x@example.com", "pgsql:" + qb)[:2], (0, "example.com/obrien/"),
        "a key holding a quote and a backslash finds its row: quoted, not mangled")
tap.is_(q("\xff\xfe@example.com", "pgsql:" + qb)[:2], (1, ""), "a key that is not UTF-8 is not sent: not found")

# ---- a whole instance: seed 000's tables in main.cf --------------------------
vdomains = cf("virtual_domains.cf", common + f"hosts = {inet}\n"
              "query = SELECT domain FROM domain WHERE domain='%s' AND backupmx='0' AND active='1'\n")
valias = cf("virtual_alias.cf", common + f"hosts = {inet}\n"
            "query = SELECT goto FROM alias WHERE address='%s' AND active='1'\n")
vuid = cf("virtual_uid.cf", common + f"hosts = unix:{pg.socket_dir}/.s.PGSQL.{pg.port}\n"
          "query = SELECT uid FROM mailbox WHERE username='%s' AND active='1'\n")
inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": f"pgsql:{vdomains}", "virtual_mailbox_maps": f"pgsql:{qb}",
    "virtual_alias_maps": f"pgsql:{valias}", "virtual_uid_maps": f"pgsql:{vuid}",
    "relay_domains": f"pgsql:{relay_domains}", "relay_recipient_maps": f"pgsql:{relay_recipients}",
    # the backup-MX mail and bounce notices wait in the queue: the smtp
    # runner would ask the machine's DNS for backup.example's MX
    "defer_transports": "relay smtp",
    # a message to keep in hold/ until PostgreSQL is down
    "header_checks": "pcre:" + tap.write(os.path.join(cfdir, "header_checks"), "/^Subject: kept/ HOLD\n")})


def session(rcpts, data=True, subject="hello"):
    c = Client(port, timeout=60)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@client.example>")
    answers = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
    end = None
    if data and any(a.startswith("250") for a in answers):
        c.cmd("DATA")
        c.send(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n".encode())
        end = c.reply()
    c.cmd("QUIT")
    return answers, end


answers, end = session(["alice@example.com", "nobody@example.com", "info@example.com",
                        "known@backup.example", "stranger@backup.example", "someone@elsewhere.example"],
                       subject="first")
tap.like(answers[0], r"^250 ", "RCPT of a pgsql mailbox: 250")
tap.like(answers[1], r"^550 5\.1\.1 .*User unknown in virtual mailbox table", "an unknown mailbox: 550 5.1.1")
tap.like(answers[2], r"^250 ", "a pgsql alias: 250")
tap.like(answers[3], r"^250 ", "a relay recipient of a backup-MX domain (seed 000): 250")
tap.like(answers[4], r"^550 5\.1\.1 .*User unknown in relay recipient table",
         "an unknown recipient of a backup-MX domain: 550 5.1.1")
tap.like(answers[5], r"^(454 4|554 5)\.7\.1 .*Relay access denied", "another domain: relay access denied")
tap.like(end or "", r"^250 ", "the message is queued")


def maildir_new(path):
    d = os.path.join(inst.dir, "mail", path, "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


tap.ok(tap.wait_until(lambda: len(maildir_new("example.com/alice")) == 1, timeout=30),
       "alice gets it once (as herself and through info@: duplicates removed), in the Maildir "
       "virtual_mailbox_maps names")
tap.ok(tap.wait_until(lambda: len(maildir_new("example.com/bob")) == 1, timeout=30),
       "bob gets it through the alias info@ (expanded from pgsql)")
st = os.stat(os.path.join(inst.dir, "mail", "example.com", "alice"))
tap.is_(st.st_uid, mailuid, "the Maildir belongs to the uid virtual_uid_maps answered from pgsql")

# many sessions: the lookup service keeps one connection per table
for i in range(40):
    session(["alice@example.com", "nobody@example.com"], data=False)
connected = re.findall(r"lookup\[\d+\]: table (pgsql:\S+): connected", inst.log())
per_table = {t: connected.count(t) for t in set(connected)}
tap.ok(per_table and max(per_table.values()) == 1,
       "41 SMTP sessions: one connection per table in the lookup service (%r)" % per_table)
tap.ok(len(connected) <= 6, f"{len(connected)} connections opened in all (a handful, not one per session)")
tap.diag(f"connections opened for 41 sessions: {len(connected)} ({per_table})")

# a message accepted while PostgreSQL runs, kept in hold/ (HOLD) so that
# its delivery comes while PostgreSQL is down
hold_dir = os.path.join(inst.dir, "queue", "hold")
answers, end = session(["bob@example.com"], subject="kept")
tap.like(end or "", r"^250 ", "a message for bob accepted while PostgreSQL runs, held by header_checks")
tap.ok(tap.wait_until(lambda: len(os.listdir(hold_dir)) == 1, timeout=30), "it waits in hold/")
kept_id = os.listdir(hold_dir)[0] if os.listdir(hold_dir) else "none"

# PostgreSQL stopped mid-run: 4xx at RCPT, and mail accepted before waits
c = Client(port, timeout=60)
c.reply()
c.cmd("EHLO client.example")
c.cmd("MAIL FROM:<sender@client.example>")
a = c.cmd("RCPT TO:<bob@example.com>")
tap.like(a, r"^250 ", "a recipient accepted while PostgreSQL runs")
c.cmd("DATA")
pg.stop()
c.send(b"Subject: while down\r\n\r\nbody\r\n.\r\n")
end = c.reply()
c.cmd("QUIT")
tap.like(end, r"^(250|4\d\d) ", "its DATA ends in 250 or a 4xx, never a 5xx")
answers, _ = session(["alice@example.com", "known@backup.example"], data=False)
tap.like(answers[0], r"^451 4\.3\.0 ", "PostgreSQL down: RCPT of a mailbox gets 451 4.3.0")
tap.like(answers[1], r"^451 4\.3\.0 ", "and of a relay recipient too (never 5xx, never unknown)")
tap.like(inst.log(), r"table pgsql:\S+: lookup of \"[^\"]+\": .*(refused|No such file|connect)",
         "the lookup service logs why")
queued = end.startswith("250")
# the held message is delivered now: postern-virtual's table lookups fail
r = inst.postern("queue", "release", kept_id)
tap.is_(r.returncode, 0, "postern queue release of the held message while PostgreSQL is down") or tap.diag(r.stderr)
inst.postern("queue", "flush", "example.com")
tap.ok(tap.wait_until(lambda: re.search(rf"{kept_id}: to=<bob@example\.com>, .*status=deferred", inst.log()),
                      timeout=60),
       "its delivery is deferred (a table lookup failed), not bounced") or tap.diag(inst.log()[-2000:])
tap.is_(len(maildir_new("example.com/bob")), 1, "and nothing reached bob's Maildir yet")
pg.start()
answers, _ = session(["alice@example.com"], data=False)
tap.like(answers[0], r"^250 ", "PostgreSQL back: the next RCPT is accepted (the service reconnects)")
inst.postern("queue", "flush", "example.com")
tap.ok(tap.wait_until(lambda: re.search(rf"{kept_id}: to=<bob@example\.com>, .*status=sent", inst.log()),
                      timeout=90),
       "PostgreSQL back: the message that waited is delivered (flush), nothing lost") or tap.diag(inst.log()[-2000:])
if queued:
    tap.ok(tap.wait_until(lambda: len(maildir_new("example.com/bob")) == 3, timeout=90),
           "the message accepted as PostgreSQL went down is delivered too")
else:
    tap.ok(tap.wait_until(lambda: len(maildir_new("example.com/bob")) == 2, timeout=90),
           "the message whose DATA got 4xx as PostgreSQL went down stays with the client; bob has the others")
tap.unlike(inst.log(), r"status=bounced", "nothing bounced")
inst.stop()

# ---- the lookup service itself: a slow query stalls no one -------------------
sdir = tap.tempdir()
queue = os.path.join(sdir, "queue")
for sub in ("pid", "public"):
    os.makedirs(os.path.join(queue, sub))
slow = tap.write(os.path.join(sdir, "slow.cf"), common + f"hosts = {inet}\n"
                 "query = SELECT 'slept ' || '%s' FROM pg_sleep(3)\n")
tap.write(os.path.join(sdir, "fast"), "key fast-value\n")
tap.write(os.path.join(sdir, "main.cf"), f"queue_directory = {queue}\nmaillog_file = {sdir}/maillog\n"
          f"max_idle = 2s\nproxy_read_maps = pgsql:{slow} pgsql:{qb} proxy:texthash:{sdir}/fast\n"
          f"relay_domains = pgsql:{relay_domains}\nsmtpd_sender_login_maps = pgsql:{many}\n")
def idle_closed():
    return open(os.path.join(sdir, "maillog")).read().count("read none of its answers for max_idle: closed")


svc = tap.start([tap.prog("postern-lookup"), "-c", sdir])
sock = os.path.join(queue, "public", "lookup")
tap.wait_until(lambda: os.path.exists(sock), timeout=20)
a = lookupclient.connect(sock)
a.sendall(lookupclient.req(f"pgsql:{slow}", "one") + lookupclient.req(f"proxy:texthash:{sdir}/fast", "key"))
time.sleep(0.2)
b = lookupclient.connect(sock)
t0 = time.time()
b.sendall(lookupclient.req(f"proxy:texthash:{sdir}/fast", "key") + lookupclient.req(f"pgsql:{qb}", "alice@example.com"))
got_b = lookupclient.answers(b, 2)
fast = time.time() - t0
tap.is_(got_b, ["Ffast-value", "Fexample.com/alice/"], "another client's lookups are answered")
tap.ok(fast < 2.0, f"while a 3-second query runs ({fast:.2f}s)")
got_a = lookupclient.answers(a, 2)
tap.is_(idle_closed(), 0, "a client waiting for a slow answer is not idle")
tap.is_(got_a, ["Fslept one", "Ffast-value"], "the slow client gets its answers, in order")
a.close()
b.close()

# a reload (SIGHUP) while a slow query runs: the table's thread finishes
# it on its own; the service does not wait for it
a = lookupclient.connect(sock)
a.sendall(lookupclient.req(f"pgsql:{slow}", "two"))
time.sleep(0.2)
svc.send_signal(1)
tap.ok(tap.wait_until(lambda: "main.cf read again" in open(os.path.join(sdir, "maillog")).read(), timeout=2.0),
       "SIGHUP while a 3-second query runs: the service reads main.cf again at once")
b = lookupclient.connect(sock)
t0 = time.time()
b.sendall(lookupclient.req(f"proxy:texthash:{sdir}/fast", "key") + lookupclient.req(f"pgsql:{qb}", "bob@example.com"))
got_b = lookupclient.answers(b, 2)
fast = time.time() - t0
tap.is_(got_b, ["Ffast-value", "Fexample.com/bob/"], "and answers another client, the pgsql table opened again")
tap.ok(fast < 2.0, f"without waiting for the slow query ({fast:.2f}s)")
tap.is_(lookupclient.answers(a, 1), ["Fslept two"], "the slow query's client still gets its answer")
a.close()
b.close()
# a client that goes away while its slow answer is to come: the table's
# thread, which sends answers to clients itself, must not send that one to
# the client the service accepts next (often on the same descriptor)
g = lookupclient.connect(sock)
g.sendall(lookupclient.req(f"pgsql:{slow}", "gone"))
time.sleep(0.2)
g.close()
time.sleep(0.3)
n2 = lookupclient.connect(sock)
n2.sendall(lookupclient.req(f"proxy:texthash:{sdir}/fast", "key") + lookupclient.req(f"pgsql:{slow}", "next"))
tap.is_(lookupclient.answers(n2, 2), ["Ffast-value", "Fslept next"],
        "a client gone while its database answer was to come: the next client gets only its own answers")
n2.close()
bad_domain = tap.write(os.path.join(cfdir, "baddomain.cf"), common + f"hosts = {inet}\ndomain = proxy:hash:/nonexistent\n"
                       "query = SELECT description FROM domain WHERE domain='%s'\n")
code, out, err = q("backup.example", "pgsql:" + bad_domain)
tap.ok(code not in (0, 1), "domain = proxy:...: refused (a domain table must be a file table)")
tap.like(err, r"domain: proxy:hash:/nonexistent: a table here must be a file table", "saying why")

# proxy_read_maps set as seed 003 sets it: the bare pgsql: tables of the
# parameters Postfix's default names stay allowed (static programs reach
# them only here), and no other
c3 = lookupclient.connect(sock)
c3.sendall(lookupclient.req(f"pgsql:{relay_domains}", "backup.example")
           + lookupclient.req(f"pgsql:{many}", "many") + lookupclient.req(f"pgsql:{limited}", "many"))
got = lookupclient.answers(c3, 3)
tap.is_([g[:1] for g in got], ["F", "F", "D"],
        "with proxy_read_maps set: relay_domains' and smtpd_sender_login_maps' pgsql: tables are "
        "answered, a table main.cf does not name is refused")
c3.close()

# a half-closed client gets every answer
h = lookupclient.connect(sock)
h.sendall(lookupclient.req(f"pgsql:{qb}", "bob@example.com") + lookupclient.req(f"pgsql:{qb}", "nobody@x")
          + lookupclient.req(f"proxy:texthash:{sdir}/fast", "key"))
h.shutdown(socket.SHUT_WR)
tap.is_(lookupclient.answers(h, 4), ["Fexample.com/bob/", "N", "Ffast-value"],
        "a client that half-closes after its requests still gets every answer, then EOF")
h.close()

# a client that sends and never reads loses its slot after max_idle
n = lookupclient.connect(sock)
n.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
n.settimeout(0.5)
big = tap.write(os.path.join(sdir, "big"), "key " + "v" * 60000 + "\n")
tap.write(os.path.join(sdir, "main.cf"), open(os.path.join(sdir, "main.cf")).read().replace(
    f"proxy:texthash:{sdir}/fast", f"proxy:texthash:{sdir}/fast proxy:texthash:{big}"))
svc.send_signal(1)
tap.wait_until(lambda: "read again" in open(os.path.join(sdir, "maillog")).read(), timeout=10)
sent = 0
try:
    for _ in range(200):
        n.sendall(lookupclient.req(f"proxy:texthash:{big}", "key"))
        sent += 1
except (socket.timeout, BlockingIOError):
    pass


def closed_by_service():
    try:
        n.setblocking(False)
        while True:
            chunk = n.recv(1 << 20)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


# reading now would be progress: look only once the service gave up
tap.ok(tap.wait_until(lambda: idle_closed() == 1, timeout=20),
       "the service logs that it closed a client that reads none of its answers")
tap.ok(closed_by_service(), f"a client that sent {sent} requests and never read is closed after max_idle")
n.close()
tap.stop(svc)

# a resolver that cannot be made at start is made at a later DNS request
# (the service sees a resolv.conf of its own: a mount namespace)
tap.require(tools=["unshare"])
unshare = tap.unshare_mount() or tap.done()
ddir = tap.tempdir()
for sub in ("pid", "public"):
    os.makedirs(os.path.join(ddir, "queue", sub))
resolv = tap.write(os.path.join(ddir, "resolv.conf"), "nameserver not-an-address\n")
tap.write(os.path.join(ddir, "main.cf"), f"queue_directory = {ddir}/queue\nmaillog_file = {ddir}/maillog\n")
dsvc = tap.start(unshare + ["sh", "-c", f"mount --bind {resolv} /etc/resolv.conf && "
                  f"exec {tap.prog('postern-lookup')} -c {ddir}"])
dsock = os.path.join(ddir, "queue", "public", "lookup")
tap.wait_until(lambda: os.path.exists(dsock), timeout=20)
dlog = os.path.join(ddir, "maillog")
tap.like(open(dlog).read(), r"no DNS resolver yet", "a resolv.conf libunbound cannot read: no resolver at start")
s1 = lookupclient.connect(dsock)
s1.sendall(lookupclient.req("dns:A", "example.com"))
tap.like(lookupclient.answers(s1, 1)[0], r"^R", "a DNS request meanwhile: try again")
s1.close()
with open(resolv, "w") as f:        # the same file, mounted: a server that answers nothing
    f.write(f"nameserver 127.0.0.1@{tap.free_port()}\n")


def ask_dns():
    with lookupclient.connect(dsock) as s2:
        s2.sendall(lookupclient.req("dns:A", "example.com"))
    return "the DNS resolver is ready" in open(dlog).read()


tap.ok(tap.wait_until(ask_dns, timeout=20),
       "once resolv.conf is readable, a later DNS request makes the resolver (no restart)")
tap.stop(dsvc)

# the proxy: client writes whole requests; a service that hangs up is
# "try again", never a SIGPIPE that kills the client
fdir = tap.tempdir()
os.makedirs(os.path.join(fdir, "queue", "public"))
tap.write(os.path.join(fdir, "main.cf"), f"queue_directory = {fdir}/queue\n")
rude = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
rude.bind(os.path.join(fdir, "queue", "public", "lookup"))
rude.listen(16)


def hang_up():
    while True:
        try:
            conn, _ = rude.accept()
        except OSError:
            return
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()


__import__("threading").Thread(target=hang_up, daemon=True).start()
r = tap.run(["postern", "map", "-c", fdir, "-q", "k" * 4000, f"proxy:pgsql:{qb}"], timeout=120)
tap.is_(r.returncode, 75, "a service that hangs up on every request: the client says try again (75), "
        "not killed by SIGPIPE") or tap.diag(r.stderr)
rude.close()
pg.stop()
tap.done()
