#!/usr/bin/env python3
# postern alias (postalias) and newaliases: the aliases(5) syntax in all its
# forms, building NAME.cdb, -q, -s, errors with file:line, and building every
# table of alias_database when no file is given.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

d = tempdir()
conf = os.path.join(d, "conf")
os.makedirs(conf)
write(os.path.join(conf, "main.cf"), "# defaults only\n")


def pa(*args, input=None, config=conf):
    return run(["postern", "alias", "-c", config] + list(args), input=input)


aliases = write(os.path.join(d, "aliases"), """\
# Basic system aliases
Postmaster: root
MAILER-DAEMON:	postmaster

root:	alice,  bob ,
	carol
# a comment between continuation lines
	, dave
"quoted name": x
"with: colon" : y
prog: |"/usr/bin/cmd arg", /path/file, :include:/path/inc
filter: "|/usr/bin/procmail -a $EXTENSION"
named: Joe User <joe@example.com>, "Smith, Jane" <jane@example.com>, (a, comment) k
spaced   :   v   
""")
r = pa(aliases)
is_((r.returncode, r.stderr), (0, ""), "build an aliases file")
ok(os.path.exists(aliases + ".cdb"), "it writes NAME.cdb")
want = [
    ("postmaster", "root"),
    ("mailer-daemon", "postmaster"),
    ("root", "alice, bob, carol, dave"),
    ("quoted name", "x"),
    ("with: colon", "y"),
    ("prog", '|"/usr/bin/cmd arg", /path/file, :include:/path/inc'),
    ("filter", '"|/usr/bin/procmail -a $EXTENSION"'),
    ("named", 'Joe User <joe@example.com>, "Smith, Jane" <jane@example.com>, (a, comment) k'),
    ("spaced", "v"),
]
for key, value in want:
    r = pa("-q", key, aliases)
    is_((r.returncode, r.stdout), (0, value + "\n"), f"{key!r} -> {value!r}")
is_(pa("-q", "POSTMASTER", aliases).stdout, "root\n", "names are folded to lower case")
is_(pa("-q", '"quoted name"', aliases).returncode, 1, "a quoted name is stored without its quotes")
is_(pa("-q", "nobody", aliases).returncode, 1, "an unknown name: exit 1")
r = pa("-s", aliases)
is_(r.stdout, "".join(f"{k}:\t{v}\n" for k, v in want), "-s prints name: TAB value, as postalias does")
r = run(["postern", "map", "-c", conf, "-q", "root", "hash:" + aliases])
is_(r.stdout, "alice, bob, carol, dave\n", "the table is an ordinary hash table for postern map")

# errors
bad = write(os.path.join(d, "bad"), """\
ok: fine
nocolon value
empty:
remote@example.com: x
"unterminated: y
: nameless
"quoted"@example.com: z
dup: one
DUP: two
""")
r = pa(bad)
is_(r.returncode, 1, "bad lines fail the build")
like(r.stderr, r"bad, line 2: need name:value pair", "a line without ':' is named")
like(r.stderr, r"bad, line 3: need name:value pair", "a name without a value is named")
like(r.stderr, r"bad, line 4: name must be local", "an address as name is refused")
like(r.stderr, r"bad, line 5: unterminated quoted name", "an unterminated quote is named")
like(r.stderr, r"bad, line 6: empty name", "an empty name is named")
like(r.stderr, r"bad, line 7: name must be local", "a quoted local part with a domain is refused")
like(r.stderr, r'bad, line 9: duplicate entry: "dup"', "a duplicate is warned about")
ok(not os.path.exists(bad + ".cdb"), "no table is written from a file with errors")
dup = write(os.path.join(d, "dup"), "dup: one\nDUP: two\n")
r = pa(dup)
is_(r.returncode, 0, "duplicates alone do not fail")
is_(pa("-q", "dup", dup).stdout, "one\n", "the first one wins")
lead = write(os.path.join(d, "lead"), "  x: y\n")
r = pa(lead)
like(r.stderr, r"lead, line 1: logical line must not start with white space", "a first line starting with white space")
is_(pa(os.path.join(d, "missing")).returncode, 1, "a missing file fails")

# newaliases: no file builds every table of alias_database
nconf = os.path.join(d, "nconf")
one = write(os.path.join(d, "one"), "a: b\n")
two = write(os.path.join(d, "two"), "c: d\n")
write(os.path.join(nconf, "main.cf"), f"alias_database = hash:{one}, cdb:{two}\n")
r = pa(config=nconf)
is_((r.returncode, r.stderr), (0, ""), "without a file, every alias_database table is built")
is_(pa("-q", "a", one).stdout, "b\n", "the first")
is_(pa("-q", "c", "cdb:" + two).stdout, "d\n", "and the second")
write(os.path.join(nconf, "main.cf"), f"alias_database = hash:{bad}, hash:{one}\n")
write(one, "a: changed\n")
r = pa(config=nconf)
is_(r.returncode, 1, "a bad table in alias_database fails the command")
like(r.stderr, r"bad, line 2:", "naming the bad line")
is_(pa("-q", "a", one).stdout, "changed\n", "the other tables are still built")
r = pa("-o", f"alias_database=hash:{two}", config=nconf)
is_(r.returncode, 0, "-o alias_database=... overrides main.cf")
done()
