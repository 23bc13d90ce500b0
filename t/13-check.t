#!/usr/bin/env python3
# `postern check`: silent with exit 0 when all is well; otherwise every
# problem (syntax, types, loops, unknown parameters, tables: missing file,
# missing or stale NAME.cdb, a table that does not open), each once, exit 1.
import os, re, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

d = tempdir()
cf = os.path.join(d, "main.cf")


def check():
    return run(["postern", "check", "-c", d])


write(cf, """myhostname = mail.example.org
mydomain = example.org
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8 [::1]/128 fd00::/8
smtpd_banner = $myhostname ESMTP
user_var = x
myorigin = $user_var
""")
r = check()
ok(r.returncode == 0 and r.stdout == "" and r.stderr == "", "a clean configuration: silent, exit 0") or diag(r.stderr)

src = write(os.path.join(d, "stale"), "a b\n")
write(os.path.join(d, "stale.cdb"), "")
old = time.time() - 3600
os.utime(os.path.join(d, "stale.cdb"), (old, old))
write(os.path.join(d, "nocdb"), "a b\n")
write(os.path.join(d, "fresh"), "a b\n")
write(os.path.join(d, "fresh.cdb"), "")
os.utime(os.path.join(d, "fresh"), (old, old))
write(os.path.join(d, "ldap.cf"), "server_host = localhost\n")
write(cf, f"""myhostname = mail.example.org
alias_maps = hash:{d}/nocdb
alias_database = hash:{d}/nocdb
biff = perhaps
garbage line here
a = $b
b = $a
unknown_thing = 1
virtual_alias_maps = texthash:{d}/missing, proxy:hash:{d}/stale, hash:{d}/fresh
relay_domains = example.com, ldap:{d}/ldap.cf
smtpd_recipient_restrictions = permit_mynetworks, check_policy_service unix:private/policy,
    check_client_access cidr:{d}/clients.cidr, reject_unauth_destination
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_banner = ${{myhostname
""" + "relay_destination_concurrency_limit = 5\nvirtual_destination_recipient_limit = 1\n"
      + "nosuch_destination_concurrency_limit = 2\n")
# the transports of master.cf beside main.cf (Postfix's postconf looks there too)
write(os.path.join(os.path.dirname(cf), "master.cf"),
      "relay     unix  -       -       n       -       -       smtp\n"
      "virtual   unix  -       n       n       -       -       virtual\n")
r = check()
is_(r.returncode, 1, "problems: exit 1")
err = r.stderr
for pattern, name in [
    (rf"{re.escape(cf)}, line 5: missing '='", "the syntax error, with file:line"),
    (rf"line 4: bad yes/no value for parameter biff", "the bad boolean"),
    (rf"line 6: parameter a: expansion loop", "the expansion loop"),
    (rf"line 14: parameter smtpd_banner: unterminated", "the unterminated ${"),
    (rf"line 8: unused parameter: unknown_thing=1", "the unknown parameter"),
    (rf"line 2: parameter alias_maps: table hash:{re.escape(d)}/nocdb: {re.escape(d)}/nocdb.cdb is missing", "the missing .cdb"),
    (rf"line 9: parameter virtual_alias_maps: table texthash:{re.escape(d)}/missing: .*No such file", "the missing table file"),
    (rf"line 9: parameter virtual_alias_maps: table proxy:hash:{re.escape(d)}/stale: .*stale.cdb is older than its source", "the stale .cdb"),
    (rf"line 10: parameter relay_domains: table ldap:{re.escape(d)}/ldap.cf: ", "the table that does not open"),
    (rf"line 11: parameter smtpd_recipient_restrictions: table cidr:{re.escape(d)}/clients.cidr: .*No such file", "a table in a restriction list"),
]:
    like(err, pattern, f"check reports {name}")
ok(err.count("nocdb.cdb is missing") == 1, "a table named twice is reported once")
unlike(err, r"fresh.cdb is (older|missing)", "an up-to-date .cdb is not stale")
unlike(err, r"unused parameter: (relay|virtual)_destination",
       "per-transport limits of master.cf's transports are not reported unused: qmgr reads them")
like(err, r"unused parameter: nosuch_destination_concurrency_limit=2",
     "those of a transport master.cf does not have are, as postconf does")
unlike(err, r"table unix:private/policy", "a policy service is not taken for a table")
unlike(err, r"table (fd00|\[::1\])", "IPv6 networks are not taken for tables")
m = re.search(r"error: (\d+) problems found", err)
ok(m and int(m.group(1)) == len([l for l in err.splitlines() if "warning:" in l]),
   "the summary counts every problem reported")

# a proxy: table the lookup service would refuse (proxy_read_maps)
write(cf, f"""alias_maps =
alias_database =
proxy_read_maps = proxy:unix:passwd.byname
local_recipient_maps = proxy:unix:passwd.byname unix:group.byname
virtual_alias_maps = proxy:texthash:{d}/fresh
virtual_mailbox_maps = proxy:unix:shadow
""")
r = check()
like(r.stderr, r"line 4: parameter local_recipient_maps: table unix:group.byname: the lookup service is not "
               r"configured for it \(list proxy:unix:group.byname in proxy_read_maps\)",
     "a unix: table proxy_read_maps does not list (a static program asks the service for it)")
like(r.stderr, rf"line 5: parameter virtual_alias_maps: table proxy:texthash:{re.escape(d)}/fresh: the lookup service",
     "a proxy: table it does not list")
unlike(r.stderr, r"table proxy:unix:passwd.byname", "a listed one is fine")
like(r.stderr, r"line 6: parameter virtual_mailbox_maps: table proxy:unix:shadow: .*unknown name",
     "a proxy: table is opened as the service would open it")

r = run(["postern", "check", "-c", os.path.join(d, "none")])
ok(r.returncode == 1 and "No such file" in r.stderr, "a missing main.cf is a problem")
write(cf, b"\x00\x01\x02binary\n")
r = run(["postern", "check", "-c", d], input=b"")
ok(r.returncode == 1 and b"line 1: NUL character" in r.stderr, "a binary main.cf is a problem with its line")
done()
