#!/usr/bin/env python3
# `postern check`: silent with exit 0 when all is well; otherwise every
# problem, each once: errors (syntax, types, loops, tables: missing file,
# missing or stale NAME.cdb, a table that does not open, settings that defer
# every delivery) exit 2; warnings only (unknown parameters, settings postern
# does not implement, restrictions that answer 451, transports and master.cf
# services without a program) exit 1.
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
smtpd_recipient_restrictions = permit_mynetworks, check_address_map,
    check_client_access cidr:{d}/clients.cidr, reject_unauth_destination
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_banner = ${{myhostname
""" + "relay_destination_concurrency_limit = 5\nvirtual_destination_recipient_limit = 1\n"
      + "nosuch_destination_concurrency_limit = 2\n"
      + "smtpd_helo_restrictions = check_ccert_access { texthash:/nonexistent/x, { search_order = serial } }\n")
# the transports of master.cf beside main.cf (Postfix's postconf looks there too)
write(os.path.join(os.path.dirname(cf), "master.cf"),
      "relay     unix  -       -       n       -       -       smtp\n"
      "virtual   unix  -       n       n       -       -       virtual\n")
r = check()
is_(r.returncode, 2, "errors: exit 2")
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
m = re.search(r"error: (\d+) errors? and (\d+) warnings? found", err)
lines = err.splitlines()[:-1]
ok(m and int(m.group(1)) == len([l for l in lines if "error:" in l])
   and int(m.group(2)) == len([l for l in lines if "warning:" in l]),
   "the summary counts every error and warning reported") or diag(err)
like(err, r"error: .*line 11: parameter smtpd_recipient_restrictions: unknown restriction check_address_map: "
          r"smtpd answers 451 4\.3\.5", "a restriction that will answer 451 is named (one Postfix's smtpd does not "
          "know either)")
ok(err.count("restriction check_address_map") == 1, "... once")
like(err, r"error: .*parameter smtpd_helo_restrictions: check_ccert_access: cannot parse "
          r"\"texthash:/nonexistent/x, \{ search_order = serial \}\": expected type:table or",
     "a check_ccert_access search order smtpd cannot take is named")
unlike(err, r"table texthash:/nonexistent/x", "... and its table is not reported again")

# ---- warnings only: what postern does not do, exit 1 ----
write(os.path.join(d, "aliases"), "alias@example.com bob@example.com\n")
write(os.path.join(d, "transport"), "# comment\nexample.com smtp:[mx.example.com]\n"
      "example.net virtual:\n.example.org lmtp:unix:private/dovecot\n")
write(cf, f"""myhostname = mail.example.org
alias_maps =
alias_database =
non_smtpd_milters = inet:localhost:8892
reset_owner_alias = yes
content_filter = scan:localhost:10025
command_execution_directory = /var/tmp
relayhost = [smarthost.example.net]
smtpd_data_restrictions = reject_unauth_pipelining
smtpd_proxy_ehlo = filter.example.org
milter_macro_defaults = auth_type=none
milter_header_checks = texthash:{d}/aliases
transport_maps = texthash:{d}/transport
smtpd_recipient_restrictions = permit_mynetworks, reject_rbl_client zen.example.org, permit_mx_backup,
    reject_unauth_destination
message_size_limit = 0
""")
write(os.path.join(d, "master.cf"),
      "smtp       inet n - n - - smtpd\n"
      "submission inet n - n - - smtpd\n"
      "  -o syslog_name=postern/submission\n"
      "  -o smtpd_proxy_filter=127.0.0.1:10025\n"
      "  -o zz_nonesuch=1\n"
      "  -o smtpd_proxy_options=speed_adjust\n"
      "  -o milter_macro_defaults=ORIGINATING\n"
      "relay      unix - - n - - smtp\n"
      "virtual    unix - n n - - virtual\n"
      "dovecot    unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver\n")
r = check()
err = r.stderr
is_(r.returncode, 1, "warnings only: exit 1") or diag(err)
unlike(err, r"error:", "no error is reported")
for pattern, name in [
    (r"line 5: not implemented by postern: reset_owner_alias=yes: a child alias's local addresses still go to a new "
     r"queue file \(the sender is owner-NAME either way, as in Postfix\)", "reset_owner_alias"),
    (r"line 6: not implemented by postern: content_filter=scan:localhost:10025: postern has no scan runner: "
     r"such mail waits in the queue", "content_filter through a transport without a runner"),
    (r"line 10: not implemented by postern: smtpd_proxy_ehlo=", "a Postfix parameter postern lacks"),
    (r"master.cf, line 2: service submission: -o: not implemented by postern: smtpd_proxy_filter=127.0.0.1:10025", "a master.cf -o setting"),
    (r"master.cf, line 2: service submission: -o: unused parameter: zz_nonesuch=1", "an unknown parameter in -o"),
    (r"master.cf, line 2: service submission: -o: not implemented by postern: smtpd_proxy_options", "a Postfix parameter in -o"),
]:
    like(err, pattern, f"check names {name}")
unlike(err, r"not implemented by postern: milter_(macro_defaults|header_checks)",
       "milter_macro_defaults (main.cf and -o) and milter_header_checks are implemented: not reported")
unlike(err, r"non_smtpd_milters", "non_smtpd_milters is implemented (postern-rewrite): not reported")
unlike(err, r"smtpd_data_restrictions", "smtpd_data_restrictions is evaluated: not reported")
unlike(err, r"command_execution_directory", "command_execution_directory is implemented (postern-local): not reported")
unlike(err, r"permit_mx_backup|reject_rbl_client", "permit_mx_backup and reject_rbl_client are implemented: not reported")
unlike(err, r"relayhost=|smtp runner|lmtp runner|command smtp", "the smtp and lmtp runners exist: relayhost, smtp: and lmtp: entries and master.cf's smtp are not reported")
unlike(err, r"line 3: virtual:|zen.example.org|reject_unauth_destination|message_size_limit",
       "implemented transports, restriction arguments and message_size_limit = 0 are not reported")
unlike(err, r"service (smtp|virtual|dovecot|relay):", "services postern has are not reported (smtp: postern-smtp, a pipe transport: postern-pipe)")
like(err, r"warning: 0 errors and 6 warnings found", "the summary counts them")

# the same warnings at a program's start, once each, in its log
write(cf, open(cf).read() + f"maillog_file = {d}/maillog\n")
r = run([prog("postern-smtpd"), "-c", d], input="QUIT\r\n")
log = open(os.path.join(d, "maillog")).read()
is_(len(re.findall(r"not implemented by postern: reset_owner_alias=", log)), 1,
    "a program's start logs each unimplemented setting once")
like(log, r"postern/smtpd\[\d+\]: warning: .*line 5: not implemented by postern: reset_owner_alias=yes",
     "with the program's name, file and line")

# a setting that defers every virtual delivery is an error
write(cf, f"""virtual_mailbox_domains = example.com
virtual_mailbox_maps = texthash:{d}/aliases
virtual_mailbox_base = {d}/mail
virtual_mailbox_limit = 1000
message_size_limit = 2000
alias_maps =
alias_database =
""")
os.unlink(os.path.join(d, "master.cf"))
r = check()
is_(r.returncode, 2, "a setting that defers every delivery: exit 2")
like(r.stderr, r"error: .*line 4: parameter virtual_mailbox_limit: 1000 is smaller than message_size_limit "
               r"\(2000\): every virtual delivery is deferred", "virtual_mailbox_limit below message_size_limit")
write(cf, open(cf).read().replace("message_size_limit = 2000", "message_size_limit = 0"))
r = check()
is_(r.returncode, 2, "message_size_limit = 0 (no limit) with a limited virtual mailbox: exit 2")
like(r.stderr, r"error: .*line 4: parameter virtual_mailbox_limit: 1000 is smaller than message_size_limit "
               r"\(0: no limit\): every virtual delivery is deferred .*set virtual_mailbox_limit = 0 too",
     "it says that every virtual delivery is deferred, and what to set")
write(cf, open(cf).read().replace("virtual_mailbox_limit = 1000", "virtual_mailbox_limit = 0"))
r = check()
ok(r.returncode == 0 and r.stderr == "", "both 0 (no limits) is fine, as in Postfix") or diag(r.stderr)
write(cf, open(cf).read() + "receive_override_options = no_address_mappings, No_Milters\n")
r = check()
ok(r.returncode == 2 and re.search(r"error: .*line 8: parameter receive_override_options: unknown value "
                                   r"\"No_Milters\": smtpd and local submission refuse every message", r.stderr),
   "an unknown receive_override_options name (they are case-sensitive) is an error") or diag(r.stderr)
write(cf, open(cf).read().replace("No_Milters", "no_milters"))
r = check()
ok(r.returncode == 0 and r.stderr == "", "the four known names are fine") or diag(r.stderr)
r = run(["postern", "check", "-x"])
is_(r.returncode, 64, "a usage error exits 64")

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
ok(r.returncode == 2 and "No such file" in r.stderr, "a missing main.cf is an error")
write(cf, b"\x00\x01\x02binary\n")
r = run(["postern", "check", "-c", d], input=b"")
ok(r.returncode == 2 and b"line 1: NUL character" in r.stderr, "a binary main.cf is an error with its line")
done()
