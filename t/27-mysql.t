#!/usr/bin/env python3
# mysql: tables (mysql_table(5)) against a real MariaDB server the test
# starts in a temporary directory (mariadb-install-db, mariadbd; a unix
# socket and a loopback port): the same query language as pgsql:
# (maps/sql.c), hosts tried in turn (unix:SOCKET, inet:HOST:PORT), hostile
# keys quoted by mysql_real_escape_string, several rows joined by commas,
# the old table/select_field form; a postern instance that accepts and
# refuses at RCPT from MariaDB through the lookup service, with one
# connection per table, and answers 4xx while MariaDB is down.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402
from smtpdtest import Client  # noqa: E402

tap.require(programs=["postern", "postern-lookup"])
mailuid = __import__("pwd").getpwnam(ROOT_USERS["mail_owner"]).pw_uid if os.geteuid() == 0 else os.getuid()
# a certificate for 127.0.0.1 from a CA of the test's own, for TLS
pki = tap.tempdir()
os.chmod(pki, 0o755)
ca_key, ca_cert = os.path.join(pki, "ca.key"), os.path.join(pki, "ca.pem")
srv_key, srv_csr, srv_cert = (os.path.join(pki, n) for n in ("srv.key", "srv.csr", "srv.pem"))
other_key, other_ca = os.path.join(pki, "other.key"), os.path.join(pki, "other.pem")
for argv in (["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
              "-days", "2", "-subj", "/CN=postern test CA"],
             ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", other_key, "-out", other_ca,
              "-days", "2", "-subj", "/CN=another CA"],
             ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", srv_key, "-out", srv_csr,
              "-subj", "/CN=127.0.0.1"],
             ["openssl", "x509", "-req", "-in", srv_csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
              "-out", srv_cert, "-days", "2", "-extfile", "/dev/stdin"]):
    r = tap.run(argv, input="subjectAltName = IP:127.0.0.1\n" if argv[1] == "x509" else None, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(" ".join(argv) + ": " + r.stderr)
for f in os.listdir(pki):
    os.chmod(os.path.join(pki, f), 0o644)
my = sqlservers.MariaDB(tls=(srv_cert, srv_key))
my.sql(sqlservers.inserts(mailuid, booleans="mysql")
       + "CREATE TABLE big (k VARCHAR(64), v TEXT);"
       + "".join(f"INSERT INTO big VALUES ('many', 'v{i}');" for i in range(5)))

d = tap.tempdir()
os.chmod(d, 0o755)
inet = f"inet:127.0.0.1:{my.port}"
common = "user = postfix\npassword = $password\ndbname = postfix\n"


def cf(name, text, hosts=None):
    return tap.write(os.path.join(d, name), common + f"hosts = {hosts or inet}\n" + text)


relay_domains = cf("relay_domains.cf", "query = SELECT description FROM domain WHERE domain='%s' "
                   "AND backupmx='1' AND active='1';\n")
relay_recipients = cf("relay_recipient_maps.cf", "query = SELECT goto FROM alias WHERE address='%s' AND active='1';\n")
mailbox = cf("mailbox.cf", "query = SELECT maildir FROM mailbox WHERE username='%s' AND active=1\n")
quota = cf("quota.cf", "query = SELECT quota FROM mailbox WHERE local_part='%u' AND domain='%d' AND active='1';\n")
old_form = cf("old.cf", "table = mailbox\nselect_field = 1024*1024*quota\nwhere_field = email\n"
              "additional_conditions = and active = '1'\n")
many = cf("many.cf", "query = SELECT v FROM big WHERE k='%s' ORDER BY v\n")
in_turn = cf("inturn.cf", "query = SELECT description FROM domain WHERE domain='%s'\n",
             hosts=f"unix:/nonexistent/mysqld.sock inet:127.0.0.1:{tap.free_port()} unix:{my.socket}")
down = cf("down.cf", "query = SELECT description FROM domain WHERE domain='%s'\n",
          hosts=f"inet:127.0.0.1:{tap.free_port()}")
tap.write(os.path.join(d, "main.cf"), f"queue_directory = {d}/queue\n")


def q(key, table):
    return sqlservers.map_query(d, key, table)[:2]


tap.is_(q("backup.example", "mysql:" + relay_domains), (0, "backup MX for backup.example"), "seed 000's relay_domains query")
tap.is_(q("example.com", "mysql:" + relay_domains), (1, ""), "a hosted domain is not a relay domain")
tap.is_(q("known@backup.example", "mysql:" + relay_recipients), (0, "known@backup.example"), "a relay recipient")
tap.is_(q("alice@example.com", "mysql:" + quota), (0, "9223372036854774784"), "%u and %d; the bigint near 2^63")
tap.is_(q("bob@example.com", "mysql:" + old_form), (0, str(2 * 1024 * 1024)), "the old form with 1024*1024*quota")
tap.is_(q("many", "mysql:" + many), (0, "v0,v1,v2,v3,v4"), "several rows joined by commas")
tap.is_(q("backup.example", "mysql:" + in_turn), (0, "backup MX for backup.example"),
        "hosts tried in turn: a missing socket, a closed port, then unix:SOCKET")
tap.is_(q("backup.example", "mysql:" + down)[0], 75, "a server that is down: try again, never not found")
# TLS (mysql_table(5)'s tls_* settings) and the client option file
cipher_query = ("query = SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                "WHERE VARIABLE_NAME = 'Ssl_cipher' AND '%s' <> ''\n")
plain = cf("plain.cf", cipher_query)
tap.is_(q("k", "mysql:" + plain), (1, ""), "without tls_* settings the connection is plain (no cipher: not found)")
tls_ok = cf("tls.cf", cipher_query + f"tls_CAfile = {ca_cert}\ntls_verify_cert = yes\n")
code, out = q("k", "mysql:" + tls_ok)
tap.ok(code == 0 and out != "", "tls_CAfile with tls_verify_cert = yes: TLS, the server verified (cipher %s)" % out)
tls_wrong_ca = cf("tlsbad.cf", cipher_query + f"tls_CAfile = {other_ca}\ntls_verify_cert = yes\n")
code, out, err = sqlservers.map_query(d, "k", "mysql:" + tls_wrong_ca)
tap.is_(code, 75, "a server certificate from another CA: try again, never plain text")
tap.like(err, r"(?i)(certificate|verify|tls|ssl)", "and the log says why") or tap.diag(err)
optfile = tap.write(os.path.join(d, "my.cnf"), "[postern]\npassword = $password\n")
os.chmod(optfile, 0o644)
no_password = tap.write(os.path.join(d, "nopass.cf"), f"user = postfix\ndbname = postfix\nhosts = {inet}\n"
                        "query = SELECT description FROM domain WHERE domain='%s'\n")
tap.is_(q("backup.example", "mysql:" + no_password)[0], 75, "no password: the server refuses (try again)")
with_optfile = tap.write(os.path.join(d, "optfile.cf"), f"user = postfix\ndbname = postfix\nhosts = {inet}\n"
                         f"option_file = {optfile}\noption_group = postern\n"
                         "query = SELECT description FROM domain WHERE domain='%s'\n")
tap.is_(q("backup.example", "mysql:" + with_optfile), (0, "backup MX for backup.example"),
        "option_file and option_group: the password comes from the file's [postern] group")

hostile = ["x' OR '1'='1", "x'; DROP TABLE alias; --", "\\' OR 1=1 -- ", "a\\", "'", "\\\\'", "%s", "z" * 65536]
tap.is_([q(k, "mysql:" + relay_recipients) for k in hostile], [(1, "")] * len(hostile),
        "hostile keys (quotes, backslashes, 64 KiB) are not found")
tap.is_(my.sql("SELECT count(*) FROM alias").strip(), "4", "the alias table is still there")
tap.is_(q("o'brien\\x@example.com", "mysql:" + mailbox), (0, "example.com/obrien/"),
        "a key holding a quote and a backslash finds its row")

# ---- an instance: RCPT from MariaDB through the lookup service ------------
domains = cf("domains.cf", "query = SELECT domain FROM domain WHERE domain='%s' AND backupmx=0 AND active=1\n")
aliases = cf("aliases.cf", "query = SELECT goto FROM alias WHERE address='%s' AND active=1\n",
             hosts=f"unix:{my.socket}")
inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": f"mysql:{domains}", "virtual_mailbox_maps": f"mysql:{mailbox}",
    "virtual_alias_maps": f"mysql:{aliases}", "relay_domains": f"mysql:{relay_domains}",
    "relay_recipient_maps": f"mysql:{relay_recipients}"})


def rcpts(addresses):
    c = Client(port, timeout=60)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@client.example>")
    got = [c.cmd(f"RCPT TO:<{a}>") for a in addresses]
    c.cmd("QUIT")
    return got


got = rcpts(["alice@example.com", "nobody@example.com", "info@example.com", "known@backup.example",
             "stranger@backup.example"])
tap.like(got[0], r"^250 ", "a MariaDB mailbox: 250")
tap.like(got[1], r"^550 5\.1\.1 ", "an unknown mailbox: 550 5.1.1")
tap.like(got[2], r"^250 ", "a MariaDB alias: 250")
tap.like(got[3], r"^250 ", "a relay recipient of a backup-MX domain: 250")
tap.like(got[4], r"^550 5\.1\.1 ", "an unknown relay recipient: 550 5.1.1")
for _ in range(30):
    rcpts(["alice@example.com"])
connected = re.findall(r"lookup\[\d+\]: table (mysql:\S+): connected", inst.log())
tap.ok(connected and max(connected.count(t) for t in connected) == 1,
       f"31 sessions: one connection per table ({len(connected)} in all)")
my.stop()
got = rcpts(["alice@example.com"])
tap.like(got[0], r"^451 4\.3\.0 ", "MariaDB down: 451 4.3.0, never 5xx")
my.start()
got = rcpts(["alice@example.com"])
tap.like(got[0], r"^250 ", "MariaDB back: the service reconnects, 250")
inst.stop()
my.stop()
tap.done()
