#!/usr/bin/env python3
# The configuration library: lists, typed values, $name expansion in every
# form, -o overrides, defaults, derived defaults (computed here
# independently), and errors with file:line for bad main.cf files.
import ipaddress, os, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

# the driver t/unit/config_unit.c is built by `make check` (Makefile rule for
# t/unit/*.c) with the same flags as the programs, sanitizers included
unit = os.path.join(os.environ.get("POSTERN_BUILD") or os.path.join(SRC, "build"), "t", "config_unit")
if not ok(os.access(unit, os.X_OK), "the unit driver is built (make check builds t/unit/*.c)"):
    done()


def u(*args, **kw):
    return run([unit] + list(args), **kw)


def lines(r):
    return r.stdout.splitlines()


# ---- lists ----
is_(lines(u("split", "a, b c\n\td,,e")), ["[a]", "[b]", "[c]", "[d]", "[e]"],
    "lists split on commas and white space")
is_(lines(u("split", "{ a b }, c")), ["[a b]", "[c]"], "{ ... } groups one item, braces removed")
is_(lines(u("split", "inline:{ a=b, c=d }, hash:/x")), ["[inline:{ a=b, c=d }]", "[hash:/x]"],
    "braces inside an item keep the item whole (inline: tables)")
is_(lines(u("split", "check_client_access {inline:{a=b}}")), ["[check_client_access]", "[inline:{a=b}]"],
    "nested braces: the outer pair is removed")
is_(lines(u("split", " , ")), [], "an empty list has no items")
r = u("split", "a, { b c")
ok(r.returncode == 1 and "unbalanced" in r.stdout, "an unclosed '{' is an error")
r = u("split", "a } b")
ok(r.returncode == 1 and "unbalanced" in r.stdout, "a stray '}' is an error")

# ---- typed values ----
is_([u("time", v, unit).stdout.strip() for v, unit in
     [("5d", "d"), ("300", "s"), ("10", "d"), ("1w", "s"), ("2h", "s"), ("3m", "s"), ("0h", "h")]],
    ["432000", "300", "864000", "604800", "7200", "180", "0"],
    "times: units s m h d w, the parameter's unit when none is given")
is_([u("time", v, "s").stdout.strip() for v in ["1x", "", "s", "5dd", "-1", "99999999999999999999"]],
    ["-1"] * 6, "bad times are refused (unit, empty, sign, overflow)")
is_([u("size", v).stdout.strip() for v in ["10240000", "10k", "2m", "x", "", "1q"]],
    ["10240000", "10240", "2097152", "-1", "-1", "-1"], "sizes")
is_([u("bool", v).stdout.strip() for v in ["yes", "No", "YES", "maybe", ""]],
    ["1", "0", "1", "-1", "-1"], "yes/no in any case")

d = tempdir()
cf = os.path.join(d, "main.cf")


def conf(text, *args):
    write(cf, text)
    return u("conf", "-c", d, *args)


# ---- expansion, every form (expected values checked by hand with Postfix 3.7's postconf) ----
EXPAND = """myhostname = mail.example.org
v_set = value
v_empty =
a1 = $v_set
a2 = ${v_set}
a3 = $(v_set)
a4 = ${v_set?yes}|${v_empty?yes}|${undefined_x?yes}
a5 = ${v_set:no}|${v_empty:no}|${undefined_x:no}
a6 = ${v_set?{ braced }}|${v_empty?{a}:{b}}|${v_set?{a}:{b}}
a7 = ${{$v_set} == {value} ? {eq} : {ne}}|${{$compatibility_level} <level {2} ? {old} : {new}}|${{10} < {9} ? {lt} : {ge}}
a8 = $$v_set|$undefined_x|end
a9 = $a1.$a2-x
smtpd_banner = $a1 $a2 $a3 $a4 $a5 $a6 $a7 $a8 $a9
"""
write(cf, EXPAND)
r = run(["postern", "conf", "-c", d, "-hx", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"])
is_(r.stdout.splitlines(), ["value", "value", "value", "yes||", "|no|no", "braced |b|a",
                            "eq|new|ge", "$v_set||end", "value.value-x"],
    "$name ${name} $(name) ${name?..} ${name:..} {..} forms, relations, $$, undefined names")
# more forms, each checked against Postfix 3.7's postconf -hx (t/data/expand-cases.txt)
cases = [l.rstrip("\n").split("\t") for l in open(os.path.join(SRC, "t", "data", "expand-cases.txt"))
         if not l.startswith("#")]
wrong = []
for value, want in cases:
    write(cf, f"myhostname = h.example\nv_set = value\nv_empty =\nnum = 10\nt = {value}\nsmtpd_banner = $t\n")
    r = run(["postern", "conf", "-c", d, "-hx", "t"])
    if r.stdout != want + "\n":
        wrong.append((value, want, r.stdout, r.stderr))
ok(len(cases) > 30 and not wrong, f"{len(cases)} expansion cases give what postconf gives") or diag(wrong)
write(cf, EXPAND)
r = run(["postern", "conf", "-c", d, "-o", "compatibility_level=0", "-hx", "a7"])
is_(r.stdout, "eq|old|ge\n", "<level compares compatibility levels")
r = u("conf", "-c", d, "smtpd_banner")
is_(r.stdout, "smtpd_banner=value value value yes|| |no|no braced |b|a eq|new|ge $v_set||end value.value-x\n",
    "a program reads the expanded value through conf_str()")
unlike(r.stderr, r"unused parameter", "user variables referenced as $name are not unused")

# ---- overrides, defaults, types ----
r = conf("myhostname = mail.example.org\nmessage_size_limit = 20971520\n", "-o", "message_size_limit=1000",
         "-o", "biff = no", "-o", "myhostname=a.example.net", "-o", "myhostname=b.example.net",
         "message_size_limit", "biff", "myhostname", "mydomain", "myorigin", "mydestination")
is_(lines(r), ["message_size_limit=1000", "biff=0", "myhostname=b.example.net", "mydomain=example.net",
               "myorigin=b.example.net", "mydestination=b.example.net, localhost.example.net, localhost"],
    "-o overrides main.cf (the last -o wins) and derived values follow")
r = conf("", "message_size_limit", "maximal_queue_lifetime", "bounce_queue_lifetime",
         "minimal_backoff_time", "maximal_backoff_time", "queue_run_delay", "delay_warning_time",
         "smtpd_timeout", "smtpd_recipient_limit", "line_length_limit", "default_process_limit",
         "biff", "disable_vrfy_command", "smtpd_helo_required", "mynetworks_style", "relay_domains",
         "append_dot_mydomain", "mail_name", "syslog_name", "inet_protocols", "inet_interfaces",
         "virtual_minimum_uid", "virtual_mailbox_limit", "relay_transport", "default_transport",
         "alias_maps", "mail_spool_directory")
is_(lines(r), ["message_size_limit=10240000", "maximal_queue_lifetime=432000", "bounce_queue_lifetime=432000",
               "minimal_backoff_time=300", "maximal_backoff_time=4000", "queue_run_delay=300",
               "delay_warning_time=0", "smtpd_timeout=300", "smtpd_recipient_limit=1000",
               "line_length_limit=2048", "default_process_limit=100", "biff=1", "disable_vrfy_command=0",
               "smtpd_helo_required=0", "mynetworks_style=host", "relay_domains=", "append_dot_mydomain=0",
               "mail_name=postern", "syslog_name=postern", "inet_protocols=all", "inet_interfaces=all",
               "virtual_minimum_uid=100", "virtual_mailbox_limit=51200000", "relay_transport=relay",
               "default_transport=smtp", "alias_maps=hash:/etc/aliases", "mail_spool_directory=/var/mail"],
    "defaults are Postfix 3.7's (compatibility level 3.6)")
r = conf("stress = yes\nmaximal_queue_lifetime = 2\ndelay_warning_time = 4\n",
         "smtpd_timeout", "maximal_queue_lifetime", "delay_warning_time")
is_(lines(r), ["smtpd_timeout=10", "maximal_queue_lifetime=172800", "delay_warning_time=14400"],
    "a time without a unit takes the parameter's unit (d, h); ${stress?..} in a default")

# ---- derived defaults, computed here independently ----
host = socket.gethostname()
want_host = host if "." in host else host + ".localdomain"
want_domain = want_host.split(".", 1)[1]
r = conf("", "myhostname", "mydomain", "myorigin", "mydestination")
is_(lines(r), [f"myhostname={want_host}", f"mydomain={want_domain}", f"myorigin={want_host}",
               f"mydestination={want_host}, localhost.{want_domain}, localhost"],
    "myhostname from gethostname (made fully qualified), mydomain without its first label")
if "." not in host:
    r = conf("mydomain = example.com\n", "myhostname")
    is_(r.stdout, f"myhostname={host}.example.com\n", "an unqualified host name gets $mydomain when set")
r = conf("myhostname = single\n", "mydomain")
is_(r.stdout, "mydomain=localdomain\n", "a myhostname without a dot gives mydomain localdomain")

def interfaces():
    """(family, ip_interface) of every address of interfaces that are up, from ip(8)."""
    out = subprocess.run(["ip", "-o", "addr", "show", "up"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        m = re.search(r"\b(inet6?) (\S+)", line)
        if m:
            found.append(ipaddress.ip_interface(m.group(2)))
    return found

def networks(style):
    items = []
    addrs = interfaces()
    for a in [a for a in addrs if a.version == 4] + [a for a in addrs if a.version == 6]:
        if style == "host":
            net = ipaddress.ip_network(f"{a.ip}/{a.max_prefixlen}")
        elif style == "class" and a.version == 4:
            first = int(str(a.ip).split(".")[0])
            plen = 8 if first < 128 else 16 if first < 192 else 24 if first < 224 else 32
            net = ipaddress.ip_network(f"{a.ip}/{plen}", strict=False)
        else:
            net = a.network
        text = f"{net.network_address}/{net.prefixlen}" if net.version == 4 else f"[{net.network_address}]/{net.prefixlen}"
        if text not in items:
            items.append(text)
    return " ".join(items)

if subprocess.run(["sh", "-c", "command -v ip"], capture_output=True).returncode == 0:
    for style in ["host", "subnet", "class"]:
        r = conf(f"mynetworks_style = {style}\n", "mynetworks")
        is_(r.stdout, f"mynetworks={networks(style)}\n", f"mynetworks from the interfaces, style {style}")
    r = conf("inet_protocols = ipv4\n", "mynetworks")
    is_(r.stdout, "mynetworks=" + " ".join(n for n in networks("host").split() if not n.startswith("[")) + "\n",
        "inet_protocols = ipv4 leaves IPv6 networks out")
    r = conf("", "mynetworks")
    like(r.stdout, r"^mynetworks=127\.0\.0\.1/32\b", "the default style is host (Postfix 3.x)")
else:
    diag("ip(8) missing: mynetworks not compared")

# ---- errors: file:line, non-zero exit, never a crash or a hang ----
def fails(text, pattern, name, binary=False):
    write(cf, text)
    start = time.time()
    r = run([unit, "conf", "-c", d, "myhostname"], input=b"" if binary else None, timeout=20)
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode("utf-8", "replace")
    ok(r.returncode == 1 and re.search(pattern, err) and time.time() - start < 10, name) or diag(err)

fails("myhostname = a.b\nthis line has no equals\n", re.escape(cf) + r", line 2: missing '='",
      "a line without '=': file and line named")
fails("= value\n", re.escape(cf) + r", line 1: missing parameter name", "a missing name")
fails("bad name = 1\n", r"line 1: bad parameter name", "a name with a space")
fails("x\n\n# c\na = $b\nb = ${a}\nsmtpd_banner = $a\n", r"line 4: .*expansion loop", "an expansion loop is an error with its line")
fails("myhostname = ${mydomain\n", r"line 1: parameter myhostname: unterminated \"\$\{\"", "an unterminated ${ is an error")
fails("smtpd_banner = cost $ 5\n", r"line 1: .*without a parameter name", "a lone '$' is an error (Postfix: write $$)")
fails("biff = maybe\n", r"line 1: bad yes/no value for parameter biff", "a bad boolean")
fails("smtpd_timeout = 10x\n", r"line 1: bad time .* smtpd_timeout", "a bad time")
fails("message_size_limit = lots\n", r"line 1: bad size .* message_size_limit", "a bad size")
fails("default_process_limit = +5\n", r"line 1: bad integer value for parameter default_process_limit", "a number with a sign")
fails("default_process_limit = 0\n", r"line 1: value of parameter default_process_limit out of range", "a value out of range")
write(cf, b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00garbage\nmore\x00\xff\xfe\n")
r = run([unit, "conf", "-c", d, "myhostname"], input=b"", timeout=20)
ok(r.returncode == 1 and b"line 1: NUL character" in r.stderr, "a binary file: a clear error, no crash") or diag(r.stderr)
write(cf, "smtpd_banner = " + "x" * (1024 * 1024) + "\nbiff = no\n")
r = run([unit, "conf", "-c", d, "biff"], timeout=20)
ok(r.returncode == 1 and "line 1: line too long" in r.stderr, "a 1 MB line: a clear error") or diag(r.stderr[:500])
write(cf, "a0 = x\n" + "".join(f"a{i} = $a{i-1}$a{i-1}\n" for i in range(1, 40)) + "smtpd_banner = $a39\n")
start = time.time()
r = run([unit, "conf", "-c", d, "smtpd_banner"], timeout=30)
ok(r.returncode == 1 and "longer than" in r.stderr and time.time() - start < 10,
   "exponential expansion is cut off with an error") or diag(r.stderr[:500])
r = run([unit, "conf", "-c", os.path.join(d, "nonexistent"), "biff"])
ok(r.returncode == 1 and "main.cf: No such file" in r.stderr, "a missing main.cf is an error")

# ---- unused parameters: warned once, with file and line ----
r = conf("myhostname = a.b\nzeta = 1\nuser_var = x\nsmtpd_banner = $user_var\n", "myhostname")
is_(re.findall(r"warning: .*", r.stderr), [f"warning: {cf}, line 2: unused parameter: zeta=1"],
    "an unknown parameter is warned about once with file and line; a referenced one is not")
r = conf("myhostname = a.b\nmyhostname = c.d\n", "myhostname")
ok(r.stdout == "myhostname=c.d\n" and f"{cf}, line 2: overriding earlier entry" in r.stderr,
   "a repeated parameter: the last wins, with a warning")

r = conf("  indented = 1\nmyhostname = a.b\n", "myhostname")
ok(r.returncode == 0 and r.stdout == "myhostname=a.b\n"
   and f"warning: {cf}, line 1: logical line must not start with white space" in r.stderr,
   "an indented first line is skipped with a warning, as Postfix does") or diag(r.stderr)
r = conf("myhostname = a.b\n", "-o", "zz_unknown=1", "-o", "zz_user=2", "-o", "smtpd_banner=$zz_user", "smtpd_banner")
ok(r.stdout == "smtpd_banner=2\n" and "-o option: unused parameter: zz_unknown=1" in r.stderr
   and "zz_user=2" not in r.stderr, "an unknown -o parameter is warned about too") or diag(r.stderr)

r = conf("zz_unknown = 1\nbiff = yes\n", "-o", "zz_unknown=2", "-o", "biff=no", "biff")
ok(r.returncode == 0 and r.stdout == "biff=0\n" and f"{cf}, line 1: unused parameter: zz_unknown=1" in r.stderr,
   "-o replacing main.cf values, known and unknown") or diag(r.stderr)

# ---- -c and POSTERN_CONFIG_DIR ----
write(cf, "myhostname = env.example\n")
r = run([unit, "conf", "myhostname", "config_directory"], env={"POSTERN_CONFIG_DIR": d})
is_(r.stdout, f"myhostname=env.example\nconfig_directory={d}\n", "POSTERN_CONFIG_DIR chooses the directory")

# ---- receive_override_options and the local submission's settings (lib/conf/receive.c) ----
r = u("receive", "no_unknown_recipient_checks, no_address_mappings,no_header_body_checks no_milters")
is_(r.stdout, "0xf\n", "receive_override_options: the four names, any separators")
is_(u("receive", "no_address_mappings").stdout, "0x2\n", "no_address_mappings alone")
r = u("receive", "no_header_body_checks,No_Milters")
ok(r.returncode == 75 and r.stdout == ""
   and 'fatal: unknown receive_override_options value "No_Milters" in "no_header_body_checks,No_Milters"' in r.stderr,
   "names are case-sensitive, and an unknown one is fatal (temporary), in Postfix 3.7's words") \
    or diag(f"{r.returncode} {r.stdout} {r.stderr}")
is_(u("receive", "").stdout, "0\n", "empty: nothing left out")
write(cf, "content_filter = scan:[127.0.0.1]:10025\nreceive_override_options = no_address_mappings\n"
          "fhost = 127.0.0.2\n")
write(os.path.join(d, "master.cf"), "smtp inet n - n - - smtpd\n  -o content_filter=filter:dummy\n")
is_(u("local", "-c", d, "content_filter", "receive_override_options").stdout,
    "content_filter=scan:[127.0.0.1]:10025\nreceive_override_options=no_address_mappings\n",
    "local submission: main.cf's values when master.cf has no pickup service (smtpd's -o do not count)")
write(os.path.join(d, "master.cf"), "pickup unix n - n 60 1 pickup\n  -o content_filter=\n"
      "  -o { receive_override_options = no_header_body_checks }\n  -o content_filter=smtp:[$fhost]:10026\n")
is_(u("local", "-c", d, "content_filter", "receive_override_options").stdout,
    "content_filter=smtp:[127.0.0.2]:10026\nreceive_override_options=no_header_body_checks\n",
    "the pickup service's last -o wins, expanded; the { name = value } form")
os.unlink(os.path.join(d, "master.cf"))
done()
