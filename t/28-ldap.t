#!/usr/bin/env python3
# ldap: tables (ldap_table(5)) against a real OpenLDAP slapd the test starts
# in a temporary directory (an mdb database on a loopback port): the query
# language of the SQL types in query_filter, keys escaped for a search
# filter (RFC 4515) and for a DN in search_base (RFC 4514), result_format,
# several values and entries joined by commas, groups expanded through
# special_result_attribute (member DNs), a simple bind with bind_dn and
# bind_pw, a wrong password and a server that is down answering "try
# again" (never "not found"), and a postern instance accepting, refusing
# and expanding aliases at RCPT from the directory through the lookup
# service.
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
import sqlservers  # noqa: E402
from smtpdtest import Client  # noqa: E402

SLAPD = "/usr/sbin/slapd"
tap.require(programs=["postern", "postern-lookup"], tools=[SLAPD, "ldapadd"])

d = tap.tempdir()
os.chmod(d, 0o755)
db = os.path.join(d, "db")
os.makedirs(db)
port = tap.free_port()
conf = tap.write(os.path.join(d, "slapd.conf"), f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw secret
directory {db}
access to attrs=userPassword by anonymous auth by * none
access to dn.subtree="ou=private,dc=example,dc=com" by dn.exact="cn=postern,ou=apps,dc=example,dc=com" read by * none
access to * by * read
""")
slapd = tap.start([SLAPD, "-d", "0", "-f", conf, "-h", f"ldap://127.0.0.1:{port}/"])


def stop_slapd():
    if slapd.poll() is None:
        slapd.send_signal(signal.SIGINT)
        slapd.wait(timeout=30)


import atexit  # noqa: E402
atexit.register(stop_slapd)
uri = f"ldap://127.0.0.1:{port}"
tap.ok(tap.wait_until(lambda: tap.run(["ldapsearch", "-x", "-H", uri, "-b", "", "-s", "base"], timeout=10)
                      .returncode == 0, timeout=30), "slapd answers on loopback")
ldif = """\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=apps,dc=example,dc=com
objectClass: organizationalUnit
ou: apps

dn: ou=private,dc=example,dc=com
objectClass: organizationalUnit
ou: private

dn: cn=postern,ou=apps,dc=example,dc=com
objectClass: person
cn: postern
sn: postern
userPassword: apppass

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: alice@example.com
mail: a.liddell@example.com

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
mail: bob@example.com

dn: cn=info,ou=groups,dc=example,dc=com
objectClass: groupOfNames
objectClass: extensibleObject
cn: info
mail: info@example.com
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
member: uid=gone,ou=people,dc=example,dc=com

dn: uid=carol,ou=private,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
mail: carol@example.com
"""
r = tap.run(["ldapadd", "-x", "-H", uri, "-D", "cn=admin,dc=example,dc=com", "-w", "secret"], input=ldif, timeout=30)
tap.is_(r.returncode, 0, "the directory is loaded (ldapadd)") or tap.diag(r.stderr)

common = f"server_host = {uri}\nversion = 3\nsearch_base = dc=example,dc=com\n"
mailbox = tap.write(os.path.join(d, "mailbox.cf"), common + "query_filter = (&(objectClass=inetOrgPerson)(mail=%s))\n"
                    "result_attribute = uid\nresult_format = %D/%s/\n")
mails = tap.write(os.path.join(d, "mails.cf"), common + "query_filter = (uid=%u)\nresult_attribute = mail\n")
groups = tap.write(os.path.join(d, "groups.cf"), common.replace("dc=example,dc=com\n", "ou=groups,dc=example,dc=com\n")
                   + "query_filter = (&(objectClass=groupOfNames)(mail=%s))\n"
                   "special_result_attribute = member\nleaf_result_attribute = mail\n")
bare_host = tap.write(os.path.join(d, "bare.cf"), f"server_host = 127.0.0.1\nserver_port = {port}\nversion = 3\n"
                      "search_base = ou=people,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = uid\n")
by_domain = tap.write(os.path.join(d, "bydomain.cf"), f"server_host = {uri}\nversion = 3\n"
                      "search_base = ou=people,dc=%2,dc=com\nquery_filter = (mail=%s)\nresult_attribute = uid\n")
private = tap.write(os.path.join(d, "private.cf"), common + "bind_dn = cn=postern,ou=apps,dc=example,dc=com\n"
                    "bind_pw = apppass\nquery_filter = (mail=%s)\nresult_attribute = uid\n")
anonymous = tap.write(os.path.join(d, "anon.cf"), common + "query_filter = (mail=%s)\nresult_attribute = uid\n")
wrong_pw = tap.write(os.path.join(d, "wrongpw.cf"), common + "bind_dn = cn=postern,ou=apps,dc=example,dc=com\n"
                     "bind_pw = nope\nquery_filter = (mail=%s)\nresult_attribute = uid\n")
down = tap.write(os.path.join(d, "down.cf"), f"server_host = ldap://127.0.0.1:{tap.free_port()}\nversion = 3\n"
                 "search_base = dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = uid\n")
no_base = tap.write(os.path.join(d, "nobase.cf"), f"server_host = {uri}\nquery_filter = (mail=%s)\n")
tap.write(os.path.join(d, "main.cf"), f"queue_directory = {d}/queue\n")


def q(key, table):
    return sqlservers.map_query(d, key, table)


tap.is_(q("alice@example.com", "ldap:" + mailbox)[:2], (0, "example.com/alice/"),
        "query_filter with %s, result_attribute uid, result_format %D/%s/ (%D: the key's domain)")
tap.is_(q("A.Liddell@Example.COM", "ldap:" + mailbox)[:2], (0, "example.com/alice/"),
        "keys are folded to lower case; a second mail value finds the same entry")
tap.is_(q("nobody@example.com", "ldap:" + mailbox)[:2], (1, ""), "no entry: not found")
tap.is_(q("alice@example.com", "ldap:" + mails)[:2], (0, "alice@example.com,a.liddell@example.com"),
        "%u in the filter; several values of result_attribute joined by commas")
tap.is_(q("info@example.com", "ldap:" + groups)[:2], (0, "alice@example.com,a.liddell@example.com,bob@example.com"),
        "special_result_attribute: the group's member DNs are read in turn (a dangling member adds nothing); "
        "leaf_result_attribute: the group's own mail is not a result")
terminal = tap.write(os.path.join(d, "terminal.cf"), common + "query_filter = (mail=%s)\n"
                     "special_result_attribute = member\nresult_attribute = mail\nterminal_result_attribute = cn\n")
tap.is_(q("info@example.com", "ldap:" + terminal)[:2], (0, "info"),
        "terminal_result_attribute: an entry that has one gives it, and nothing else")
tap.is_(q("bob@example.com", "ldap:" + bare_host)[:2], (0, "bob"), "server_host HOST with server_port")
tap.is_(q("bob@example.com", "ldap:" + by_domain)[:2], (0, "bob"), "search_base with %2 (the domain's labels from the right)")
tap.is_(q("bob@x.example,dc=evil.com", "ldap:" + by_domain)[:2], (1, ""),
        "a key cannot steer search_base: its , is escaped in the DN (RFC 4514); a base that names nothing: not found")
for key in ("*", "*)(uid=*", "a*@example.com", "bob@example.com)(mail=*", "\\2a"):
    code, out, err = q(key, "ldap:" + anonymous)
    tap.is_((code, out), (1, ""), f"a hostile key {key!r} matches nothing (escaped as RFC 4515 says)")
tap.is_(q("carol@example.com", "ldap:" + anonymous)[:2], (1, ""), "anonymous: the private subtree is not visible")
tap.is_(q("carol@example.com", "ldap:" + private)[:2], (0, "carol"), "bind_dn and bind_pw: a simple bind sees it")
code, out, err = q("carol@example.com", "ldap:" + wrong_pw)
tap.is_(code, 75, "a wrong bind_pw: try again (EX_TEMPFAIL), never not found")
tap.like(err, r"Invalid credentials", "and the log says why")
code, out, err = q("bob@example.com", "ldap:" + down)
tap.is_(code, 75, "a directory that is down: try again")
tap.like(err, r"(?i)can't contact|connect", "and the log says why") or tap.diag(err)
code, out, err = q("bob@example.com", "ldap:" + no_base)
tap.ok(code not in (0, 1), "a table without search_base does not open")
tap.like(err, r'no "search_base"', "and says what is missing")

# ---- an instance: virtual mailboxes and aliases from the directory ---------
inst, smtp_port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": "example.com",
    "virtual_mailbox_maps": f"proxy:ldap:{mailbox}",
    "virtual_alias_maps": f"proxy:ldap:{groups}",
})


def session(rcpts):
    c = Client(smtp_port, timeout=60)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<sender@client.example>")
    answers = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
    end = None
    if any(a.startswith("250") for a in answers):
        c.cmd("DATA")
        c.send(b"Subject: from ldap\r\n\r\nbody\r\n.\r\n")
        end = c.reply()
    c.cmd("QUIT")
    return answers, end


def maildir_new(user):
    path = os.path.join(inst.dir, "mail", "example.com", user, "new")
    return os.listdir(path) if os.path.isdir(path) else []


answers, end = session(["alice@example.com", "nobody@example.com", "info@example.com"])
tap.like(answers[0], r"^250 ", "RCPT of a directory mailbox: 250")
tap.like(answers[1], r"^550 5\.1\.1 .*User unknown in virtual mailbox table", "an unknown one: 550 5.1.1")
tap.like(answers[2], r"^250 ", "a directory group: 250")
tap.like(end or "", r"^250 ", "queued")
tap.ok(tap.wait_until(lambda: len(maildir_new("alice")) == 2 and len(maildir_new("bob")) == 1, timeout=60)
       or tap.diag(inst.log()[-3000:]),
       "the group expands to its members' mail values: alice's two addresses (one is her own RCPT, "
       "delivered once), bob's one")
connected = re.findall(r"lookup\[\d+\]: table (ldap:\S+): connected", inst.log())
tap.ok(connected and max(connected.count(t) for t in set(connected)) == 1,
       "the lookup service keeps one connection per table (%r)" % sorted(set(connected)))
stop_slapd()
answers, end = session(["bob@example.com"])
tap.like(answers[0], r"^451 4\.3\.0 ", "slapd stopped: 451 4.3.0, never 5xx")
inst.stop()
tap.done()
