#!/usr/bin/env python3
# `postern conf` behaves as postconf: listing, -n, -d, -h, -x, names,
# unknown names, -e / -X editing main.cf in place, -m.
import os, re, stat, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

d = tempdir()
cf = os.path.join(d, "main.cf")


def conf(*args, **kw):
    return run(["postern", "conf", "-c", d] + list(args), **kw)


write(cf, """# my main.cf
myhostname = mail.example.org
zeta_unknown = 1
biff = no
user_var = hello
smtpd_banner = $myhostname $user_var
""")
r = conf("-n")
is_(r.stdout, f"biff = no\nconfig_directory = {d}\nmyhostname = mail.example.org\n"
              "smtpd_banner = $myhostname $user_var\nuser_var = hello\n",
    "-n: what main.cf sets, sorted by name (user variables too, unknown names not)")
like(r.stderr, re.escape(f"warning: {cf}, line 3: unused parameter: zeta_unknown=1"),
     "-n warns about the unknown parameter on stderr")
is_(r.returncode, 0, "-n exits 0")

r = conf()
names = [l.split(" =")[0] for l in r.stdout.splitlines()]
ok(names == sorted(names) and len(names) > 60, "without arguments: every parameter, sorted")
for want in ["biff = no", "myhostname = mail.example.org", "user_var = hello", "mail_name = postern",
             "message_size_limit = 10240000"]:
    ok(want in r.stdout.splitlines(), f"the full list has '{want}'")
ok("zeta_unknown" not in r.stdout, "the full list leaves unknown names out")

r = conf("-d")
d_names = [l.split(" =")[0] for l in r.stdout.splitlines()]
required = """config_directory queue_directory daemon_directory command_directory mail_owner setgid_group
mail_name mail_version syslog_name syslog_facility maillog_file myhostname mydomain myorigin mydestination
mynetworks mynetworks_style inet_interfaces inet_protocols proxy_interfaces recipient_delimiter
parent_domain_matches_subdomains default_database_type alias_maps alias_database append_at_myorigin
append_dot_mydomain message_size_limit queue_minfree maximal_queue_lifetime bounce_queue_lifetime
minimal_backoff_time maximal_backoff_time queue_run_delay delay_warning_time smtpd_banner
smtpd_recipient_limit smtpd_timeout line_length_limit default_process_limit disable_vrfy_command
smtpd_helo_required biff virtual_mailbox_domains virtual_mailbox_maps virtual_mailbox_base virtual_uid_maps
virtual_gid_maps virtual_minimum_uid virtual_mailbox_limit virtual_alias_maps virtual_alias_domains
relay_domains relay_recipient_maps transport_maps relayhost default_transport relay_transport
local_transport virtual_transport home_mailbox mail_spool_directory""".split()
missing = [n for n in required if n not in d_names]
ok(not missing and d_names == sorted(d_names), "-d lists every required parameter, sorted") or diag(missing)
r = conf("-d", "biff", "smtpd_banner", "mydestination", "mynetworks_style", "smtpd_timeout", "relay_domains")
is_(r.stdout, "biff = yes\nsmtpd_banner = $myhostname ESMTP $mail_name\n"
              "mydestination = $myhostname, localhost.$mydomain, localhost\n"
              "mynetworks_style = ${{$compatibility_level} <level {2} ? {subnet} : {host}}\n"
              "smtpd_timeout = ${stress?{10}:{300}}s\n"
              "relay_domains = ${{$compatibility_level} <level {2} ? {$mydestination} : {}}\n",
    "-d NAME: Postfix's default text, not main.cf's value")
r = conf("-h", "biff", "smtpd_banner")
is_(r.stdout, "no\n$myhostname $user_var\n", "-h: values only")
r = conf("-x", "smtpd_banner", "myorigin")
is_(r.stdout, "smtpd_banner = mail.example.org hello\nmyorigin = mail.example.org\n", "-x: expanded")
r = conf("-o", "biff=yes", "-o", "myhostname=o.example", "-x", "biff", "smtpd_banner")
is_(r.stdout, "biff = yes\nsmtpd_banner = o.example hello\n", "-o overrides what is printed")
r = conf("nosuch_parameter", "biff")
ok(r.stdout == "biff = no\n" and "warning: nosuch_parameter: unknown parameter" in r.stderr,
   "an unknown name: a warning, the others still printed")
is_(r.returncode, 0, "and exit 0, as postconf 3.7")
r = conf("smtpd_proxy_filter")
like(r.stderr, r"smtpd_proxy_filter: Postfix parameter not implemented by postern",
     "a Postfix parameter postern lacks is named as such")

write(cf, "myhostname = a.b\nsmtpd_banner = x   y\tz\nlist =\n    one,\n    two\nmydestination = $list\n")
r = conf("-h", "smtpd_banner", "list")
is_(r.stdout, "x y z\none, two\n", "white space is folded on output, continuation lines joined")

write(cf, "biff = maybe\nmyhostname = a.b\n")
r = conf("-n")
ok(r.returncode == 0 and "biff = maybe\n" in r.stdout and f"{cf}, line 1: bad yes/no value" in r.stderr,
   "a bad value is shown with a warning (postconf shows it too), so it can be fixed") or diag(r.stderr)
r = run(["postern", "conf", "-c", os.path.join(d, "none")])
ok(r.returncode == 1 and "main.cf: No such file" in r.stderr, "a missing main.cf is an error")

# ---- -e and -X ----
ORIG = """# header comment
myhostname = old.example

# the banner
smtpd_banner = first line
    second line
    # comment inside the value
    third line
biff = yes
# trailing comment
"""
write(cf, ORIG, mode=0o640)
r = conf("-e", "smtpd_banner = $myhostname ESMTP", "biff=no", "relayhost = [mx.example]:25")
is_(r.returncode, 0, "-e exits 0")
with open(cf) as f:
    got = f.read()
is_(got, """# header comment
myhostname = old.example

# the banner
smtpd_banner = $myhostname ESMTP
biff = no
# trailing comment
relayhost = [mx.example]:25
""", "-e replaces definitions with their continuation lines, keeps comments and order, appends new ones")
is_(stat.S_IMODE(os.stat(cf).st_mode), 0o640, "-e keeps the file's mode")
is_(sorted(os.listdir(d)), ["main.cf"], "-e leaves no temporary file")
r = conf("-h", "smtpd_banner", "biff", "relayhost")
is_(r.stdout, "$myhostname ESMTP\nno\n[mx.example]:25\n", "postern conf reads the edited file back")
write(cf, "a_user = 1\nbiff = yes\nbiff = no\nmyhostname = x.y\n")
conf("-e", "biff = maybe_not")
with open(cf) as f:
    is_(f.read(), "a_user = 1\nbiff = maybe_not\nmyhostname = x.y\n", "-e on a repeated parameter leaves one definition")
conf("-X", "biff", "a_user")
with open(cf) as f:
    is_(f.read(), "myhostname = x.y\n", "-X removes parameters")
r = conf("-e", "no equals sign")
ok(r.returncode == 1 and "missing '='" in r.stderr, "-e without '=' is an error")
d2 = tempdir()
r = run(["postern", "conf", "-c", d2, "-e", "myhostname = new.example"])
with open(os.path.join(d2, "main.cf")) as f:
    is_(f.read(), "myhostname = new.example\n", "-e creates main.cf when there is none")

# ---- -m ----
r = run(["postern", "conf", "-m"])
types = r.stdout.split()
ok(types == sorted(types) and {"hash", "cdb", "pcre", "regexp", "cidr", "texthash", "inline", "static"} <= set(types),
   "-m lists the table types, sorted")
done()
