#!/usr/bin/env python3
# The pattern tables pcre, regexp and cidr through `postern map -q KEY
# type:file` (exit 0 and the value when found, 1 when not, non-zero with
# "FILE, line N: ..." when the table is wrong), with Postfix's syntax:
# pcre_table(5), regexp_table(5), cidr_table(5).
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

tmp = tempdir()
count = 0


def table(kind, text):
    """Write a table file and return its type:path spec."""
    global count
    count += 1
    path = write(os.path.join(tmp, f"t{count}.{kind}"), text)
    return f"{kind}:{path}"


def query(spec, key):
    return run(["postern", "map", "-q", key, spec])


def finds(spec, key, want, name):
    r = query(spec, key)
    if not is_(r.stdout.rstrip("\n"), want, name):
        diag(r.stderr)
    is_(r.returncode, 0, f"  and exits 0")


def misses(spec, key, name):
    r = query(spec, key)
    ok(r.returncode == 1 and r.stdout == "", name)
    if r.returncode != 1:
        diag(f"exit {r.returncode}: {r.stdout}{r.stderr}")


def refused(spec, line, pattern, name):
    """Opening fails with FILE, line N: message and a non-zero exit."""
    r = query(spec, "anything")
    path = spec.split(":", 1)[1]
    ok(r.returncode not in (0, 1) and r.returncode > 0, f"{name}: refused (exit {r.returncode})")
    like(r.stderr, re.escape(f"{path}, line {line}: ") + ".*" + pattern, f"  with file:line and the reason")
    unlike(r.stderr, r"Sanitizer|runtime error", "  and no crash")


import re

# ---- pcre ----
subst = table("pcre", r"""# comments and blank lines are skipped

/^(\w+)@(example\.com)$/      user=$1 domain=${2} paren=$(1) cost=$$5
/^(a)(b)(c)(d)(e)(f)(g)(h)(i)$/  $9$8$7$6$5$4$3$2$1
/^(x)(y)?z$/                  [$1][$2]
/^first/                      first
/^first-again/                never reached
/^multi/                      one
   two
~^tilde~                      tilde delimiter
/^a\/b$/                      escaped delimiter
""")
finds(subst, "joe@example.com", "user=joe domain=example.com paren=joe cost=$5", "pcre: $1, ${2}, $(1) and $$")
finds(subst, "abcdefghi", "ihgfedcba", "pcre: $1..$9")
finds(subst, "xz", "[x][]", "pcre: a group that did not take part substitutes nothing")
finds(subst, "first-again", "first", "pcre: the first matching pattern wins")
finds(subst, "multiple", "one   two", "pcre: a line starting with white space continues the result")
finds(subst, "tilde", "tilde delimiter", "pcre: any delimiter")
finds(subst, "a/b", "escaped delimiter", "pcre: \\/ inside /.../")
misses(subst, "nothing@example.org", "pcre: no pattern matches: not found, exit 1")

case = table("pcre", r"""/^Exact$/i       case-sensitive
/^(mixed)$/      $1
/^caseless$/     caseless
""")
finds(case, "Exact", "case-sensitive", "pcre: the i flag makes a pattern case-sensitive")
misses(case, "exact", "pcre: ... and it does not match other case")
finds(case, "CASELESS", "caseless", "pcre: patterns are case-insensitive by default")
finds(case, "MiXeD", "MiXeD", "pcre: the key is matched as given, not folded ($1 keeps its case)")

neg = table("pcre", r"""!/@/          no-domain
/@example\.com$/  ours
""")
finds(neg, "postmaster", "no-domain", "pcre: !/re/ applies when the pattern does not match")
finds(neg, "a@example.com", "ours", "pcre: ... and not when it matches")

cond = table("pcre", r"""if /\.org$/
/^admin@/      org-admin
if !/^root/
/foo/          org-foo-not-root
endif
/bar/          org-bar
endif
/foo/          foo-anywhere
IF /^z/
ENDIF
""")
finds(cond, "admin@x.org", "org-admin", "pcre: if /re/ ... endif applies its rules when the key matches")
finds(cond, "foo@x.org", "org-foo-not-root", "pcre: nested if !/re/")
finds(cond, "rootfoo@x.org", "foo-anywhere", "pcre: a nested if that does not hold skips to its endif")
finds(cond, "rootbar@x.org", "org-bar", "pcre: ... and the outer block goes on after it")
misses(cond, "admin@x.com", "pcre: the rules inside a block that does not hold are skipped")
finds(cond, "foo@x.com", "foo-anywhere", "pcre: rules after endif apply to every key")

flags = table("pcre", r"""/^a.b$/       dot-matches-newline
/^c.d$/s      s-flag
/^e$/m        m-flag
/^ f g $/x    x-flag
/^(h+?)/U     $1
/^(j+)/       $1
""")
finds(flags, "a\nb", "dot-matches-newline", "pcre: . matches a newline by default")
misses(flags, "c\nd", "pcre: the s flag turns that off")
finds(flags, "x\ne", "m-flag", "pcre: the m flag: ^ and $ at newlines")
finds(flags, "fg", "x-flag", "pcre: the x flag ignores white space in the pattern")
finds(flags, "hhh", "hhh", "pcre: the U flag inverts greediness")
finds(flags, "jjj", "jjj", "pcre: greedy by default")

refused(table("pcre", "/ok/ fine\n/(unclosed/ x\n"), 2, r"error in pcre pattern at offset \d+: missing closing parenthesis",
        "pcre: a pattern that does not compile")
refused(table("pcre", "/ok/\n"), 1, "missing result", "pcre: a pattern without result")
refused(table("pcre", "if /a/\n/b/ c\n"), 1, "if without endif", "pcre: if without endif")
refused(table("pcre", "/a/ b\nendif\n"), 2, "endif without if", "pcre: endif without if")
refused(table("pcre", "if /a/\nif /b/\n/c/ d\n"), 2, "if without endif",
        "pcre: of two open ifs, the innermost is named")
refused(table("pcre", "if /a/\n  /b/ c\nendif\n"), 1, "text after the \"if\" pattern", "pcre: an indented rule inside if")
refused(table("pcre", "/(a)/ $2\n"), 1, r"uses \$2 but the pattern has 1 group", "pcre: $n beyond the groups")
refused(table("pcre", "!/(a)/ $1\n"), 1, r"negated pattern", "pcre: $n in a negated rule")
refused(table("pcre", "/a/ cost $5x\n"), 1, r"\"\$5x\" in the result", "pcre: $ followed by a name")
refused(table("pcre", "/a/z b\n"), 1, r"unknown pcre flag \"z\"", "pcre: an unknown flag")
refused(table("pcre", "/a b\n"), 1, r"no closing delimiter", "pcre: no closing delimiter")
refused(table("pcre", "   /a/ b\n"), 1, r"continues nothing", "pcre: a first line that starts with white space")
refused(table("pcre", "hello world\n"), 1, r"expected", "pcre: a line that is no rule")
endif_text = table("pcre", "if /a/\n/b/ ab\nendif  # end of the a block\n")
r = query(endif_text, "ab")
ok(r.returncode == 0 and r.stdout == "ab\n", "pcre: text after endif does not refuse the table (Postfix only warns)")
like(r.stderr, r"line 3: ignoring text after \"endif\"", "  but is warned about")

for n, junk in enumerate([bytes(range(256)) * 64, b"/\xff(/ x\n", b"/a/ \x01\x02\n\x80\x81 y\n"]):
    binary = write(os.path.join(tmp, f"binary{n}.pcre"), junk)
    r = run(["postern", "map", "-q", "x", f"pcre:{binary}"], input=b"")
    ok(r.returncode not in (0, 1) and r.returncode > 0, f"pcre: binary file {n} is refused (exit {r.returncode})")
    err = r.stderr.decode("ascii", "replace")
    like(err, re.escape(binary) + r", line \d+: ", "  with file:line")
    ok(all(32 <= c < 127 or c == 10 for c in r.stderr), "  in printable text")
    unlike(err, r"Sanitizer|runtime error", "  and no crash")

huge = table("pcre", "/" + "a" * (1 << 20) + "/ x\n")
r = query(huge, "aaa")
ok(r.returncode not in (0, 1) and r.returncode > 0, "pcre: a 1 MB pattern is refused, not a crash")
like(r.stderr, r"line 1: error in pcre pattern", "  with PCRE2's reason")
big_result = table("pcre", "/^big$/ " + "r" * (1 << 20) + "\n")
r = query(big_result, "big")
ok(r.returncode == 0 and r.stdout.rstrip("\n") == "r" * (1 << 20), "pcre: a 1 MB result comes back whole")
# the logical-line reader is the one postmap uses, with a larger bound
too_long = table("regexp", "/^a$/ " + "r" * (16 << 20) + "\n/^b$/ fine\n")
refused(too_long, 1, r"line longer than 16777216 bytes", "regexp: a logical line over 16 MB")
r = query(subst, "joe@example.com" * 8000)
is_(r.returncode, 1, "pcre: a 120 kB key is searched (and not found)")

backtrack = table("pcre", "/^(a+)+$/ catastrophic\n/b$/ ends-in-b\n")
r = query(backtrack, "a" * 40 + "b")
is_(r.stdout.rstrip("\n"), "ends-in-b", "pcre: a key that hits PCRE2's match limit skips that rule (as Postfix)")
like(r.stderr, re.escape(backtrack.split(":", 1)[1]) + r", line 1: match limit exceeded", "  with a warning naming the rule")

# inline tables (Postfix 3.7): the rules are in the table's name
finds("pcre:{ {/^(\\w+)@/ user=$1}, { /x/ y } }", "joe@example.com", "user=joe",
      "pcre: an inline table, pcre:{ {rule}, {rule} }")
finds("pcre:{ {/^(\\w+)@/ user=$1}, { /x/ y } }", "x", "y", "  its second rule")
refused("pcre:{ {/ok/ x}, {/(/ y} }", 2, "missing closing parenthesis", "pcre: an inline table with a bad rule")

# ---- regexp ----
rx = table("regexp", r"""/^([a-z]+)@(example\.com)$/   user=$1 domain=${2} cost=$$5
/^Exact@/i                    case-sensitive
!/@/                          no-domain
/^x/!/^xy/                    x-not-xy
if /\.org$/
/^admin@/                     org-admin
if !/^root/
/foo/                         org-foo-not-root
endif
endif
/^a+@b$/x                     basic-syntax
/^(one)|(two)@c$/             [$1][$2]
""")
finds(rx, "JOE@example.com", "user=JOE domain=example.com cost=$5", "regexp: $1, ${2}, $$; case-insensitive by default")
finds(rx, "Exact@d", "case-sensitive", "regexp: the i flag makes a pattern case-sensitive")
misses(rx, "exact@d", "regexp: ... and it does not match other case")
finds(rx, "plain", "no-domain", "regexp: !/re/")
finds(rx, "xa@d", "x-not-xy", "regexp: /re1/!/re2/ matches re1 and not re2")
misses(rx, "xya@d", "regexp: ... and not when re2 matches")
finds(rx, "admin@x.org", "org-admin", "regexp: if ... endif")
finds(rx, "foo@x.org", "org-foo-not-root", "regexp: nested if !/re/")
misses(rx, "rootfoo@x.org", "regexp: a nested if that does not hold")
finds(rx, "a+@b", "basic-syntax", "regexp: the x flag turns extended syntax off (+ is literal)")
misses(rx, "aa@b", "regexp: ... so a+ does not repeat")
finds(rx, "two@c", "[][two]", "regexp: an unmatched group substitutes nothing")
refused(table("regexp", "/ok/ x\n/(a/ y\n"), 2, r"error in regexp pattern", "regexp: a pattern that does not compile")
refused(table("regexp", "/a/ $1\n"), 1, r"uses \$1 but the pattern has 0 groups", "regexp: $n beyond the groups")
refused(table("regexp", "/a/s x\n"), 1, r"unknown regexp flag \"s\"", "regexp: pcre's flags are not regexp's")
refused(table("regexp", "if !/a/\n"), 1, r"if without endif", "regexp: if without endif")
refused(table("regexp", "/ok/ x\n/ab" + "+" * 48 + "/ y\n"), 2, r"too complex",
        "regexp: stacked repetitions that would take all memory in regcomp")
refused(table("regexp", "/((a{255}){255}){255}/ y\n"), 1, r"too complex", "regexp: nested counted repetitions")
# found by the fuzzer: glibc's regcomp spent minutes on this 43-byte pattern
refused(table("regexp", b"/dif**********+++++++++++++@b\xe9f+******/ \x83\n"), 1, r"too complex",
        "regexp: stacked repetitions are refused at once")
finds(table("regexp", "/^(x{2,3}){1,2}-[+*]{1,3}$/ counted\n"), "xxxxx-+*", "counted",
      "regexp: ordinary counted repetitions are fine")

# ---- cidr ----
cidr = table("cidr", """# first match wins, in file order
192.168.1.1         host
192.168.0.0/16      net16
10.0.0.0/8          ten
1.2.3.4/32          slash32
2001:db8::1/128     slash128
2001:db8::/32       v6net
[172.16.0.0]/12     bracketed
::ffff:5.6.7.8      mapped-host
!100.64.0.0/10      outside-cgnat
""")
finds(cidr, "192.168.1.1", "host", "cidr: a bare address")
finds(cidr, "192.168.7.7", "net16", "cidr: a network; the more specific line before it won for .1.1")
finds(cidr, "1.2.3.4", "slash32", "cidr: /32")
finds(cidr, "2001:db8::1", "slash128", "cidr: /128")
finds(cidr, "2001:DB8:0::2", "v6net", "cidr: IPv6 keys in any spelling")
finds(cidr, "172.20.1.1", "bracketed", "cidr: a pattern in [brackets]")
finds(cidr, "::ffff:5.6.7.8", "mapped-host", "cidr: an IPv4-mapped IPv6 pattern matches the IPv6 key")
misses(cidr, "::ffff:10.1.1.1", "cidr: ::ffff:10.1.1.1 is IPv6: it does not match 10.0.0.0/8 (as Postfix)")
finds(cidr, "8.8.8.8", "outside-cgnat", "cidr: !network applies to addresses of its family outside it")
misses(cidr, "100.64.1.1", "cidr: ... and not to addresses inside it")
misses(cidr, "2001:db9::1", "cidr: ... nor to the other family")
misses(cidr, "not-an-address", "cidr: a key that is no IP address matches nothing")
misses(cidr, "[192.168.1.1]", "cidr: a key in brackets matches nothing (as Postfix)")
misses(cidr, "010.1.1.1", "cidr: a key with leading zeros matches nothing")

finds("cidr:{ {10.0.0.0/8 ten}, {::/0 six} }", "10.1.2.3", "ten", "cidr: an inline table")
finds("cidr:{ {10.0.0.0/8 ten}, {::/0 six} }", "::1", "six", "  its second rule")

every = table("cidr", "0.0.0.0/0  any4\n::/0  any6\n")
finds(every, "203.0.113.9", "any4", "cidr: 0.0.0.0/0 matches every IPv4 address")
finds(every, "fe80::1", "any6", "cidr: ::/0 matches every IPv6 address")
finds(every, "::ffff:1.2.3.4", "any6", "cidr: an IPv4-mapped key is an IPv6 key")

nested = table("cidr", """if 10.0.0.0/8
if !10.1.0.0/16
10.0.0.0/8   ten-not-10.1
endif
10.1.2.3     ten-one-host
endif
0.0.0.0/0    default
""")
finds(nested, "10.2.3.4", "ten-not-10.1", "cidr: nested if / if !")
finds(nested, "10.1.2.3", "ten-one-host", "cidr: a nested block that does not hold is skipped")
finds(nested, "11.0.0.1", "default", "cidr: a block that does not hold is skipped")

refused(table("cidr", "10.0.0.0/8 ok\n1.2.3.4/24 x\n"), 2, r'non-null host address bits in "1.2.3.4/24"', "cidr: host bits set")
refused(table("cidr", "2001:db8::1/64 x\n"), 1, r'non-null host address bits', "cidr: host bits set, IPv6")
refused(table("cidr", "1.2.3.0/33 x\n"), 1, r"bad prefix length", "cidr: /33")
refused(table("cidr", "::/129 x\n"), 1, r"bad prefix length", "cidr: /129")
refused(table("cidr", "1.2.3.0/24\n"), 1, r"missing result", "cidr: no result")
refused(table("cidr", "example.com x\n"), 1, r"bad network address", "cidr: not an address")
refused(table("cidr", "if 1.0.0.0/8\n"), 1, r"if without endif", "cidr: if without endif")
refused(table("cidr", "endif\n"), 1, r"endif without if", "cidr: endif without if")
refused(table("cidr", "if 1.0.0.0/8\nif 1.2.0.0/16\n1.2.3.4 x\nendif\n"), 1,
        r"if without endif", "cidr: the if left open is named, not the one closed")
for n, junk in enumerate([b"\x92\xff\x01 result\n", bytes(range(1, 256)) * 16, b"1.2.3.4 ok\n\x00\n"]):
    binary = write(os.path.join(tmp, f"binary{n}.cidr"), junk)
    r = run(["postern", "map", "-q", "1.2.3.4", f"cidr:{binary}"], input=b"")
    ok(r.returncode not in (0, 1) and r.returncode > 0, f"cidr: binary file {n} is refused (exit {r.returncode})")
    ok(all(32 <= c < 127 or c == 10 for c in r.stderr), "  with a message in printable text")
    unlike(r.stderr.decode("ascii", "replace"), r"Sanitizer|runtime error", "  and no crash")
done()
