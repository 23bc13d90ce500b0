#!/usr/bin/env python3
# postern map (postmap) with the fixed-key table types: building NAME.cdb
# from Postfix's source format, querying, listing, case folding, duplicates,
# continuation lines, stale tables, the swap of a rebuilt table under a
# reader, a 100,000-key table, bad input, and texthash, static, inline,
# unix, fail and proxy: tables.
import grp, os, pwd, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

d = tempdir()
conf = os.path.join(d, "conf")
os.makedirs(conf)
write(os.path.join(conf, "main.cf"), "# empty: defaults only\n")


def pm(*args, input=None):
    return run(["postern", "map", "-c", conf] + list(args), input=input)


def src(name, text):
    return write(os.path.join(d, name), text)


# ---- building and querying ----
virt = src("virtual", "# a comment\n\nFoo@Example.COM  Bar@Example.net\n"
           "info@example.com\tone, two\n")
r = pm(virt)
is_(r.returncode, 0, "build a table with the default type")
ok(os.path.exists(virt + ".cdb"), "it writes NAME.cdb")
is_(r.stderr, "", "and says nothing when all is well")
r = pm("-q", "foo@example.com", virt)
is_((r.returncode, r.stdout), (0, "Bar@Example.net\n"), "-q finds a key; the value keeps its case")
r = pm("-q", "FOO@EXAMPLE.COM", "hash:" + virt)
is_((r.returncode, r.stdout), (0, "Bar@Example.net\n"), "keys are folded to lower case, at build and lookup")
r = pm("-q", "nobody@example.com", virt)
is_((r.returncode, r.stdout), (1, ""), "a missing key: exit 1, no output")
r = pm("-q", "info@example.com", "cdb:" + virt)
is_(r.stdout, "one, two\n", "cdb: reads the same file; value with commas and spaces kept")
r = pm("-q", "info@example.com", "btree:" + virt)
is_(r.stdout, "one, two\n", "so does btree:")
write(os.path.join(conf, "main.cf"), f"queue_directory = {d}/noqueue\n")
r = pm("-q", "info@example.com", "proxy:hash:" + virt)
is_(r.returncode, 75, "proxy: asks the lookup service: none runs, so try again (t/23-lookup-service.t)")
like(r.stderr, r"lookup service .*/noqueue/public/lookup: No such file", "and says why")
write(os.path.join(conf, "main.cf"), "# empty: defaults only\n")
r = pm("-s", virt)
is_(r.stdout, "foo@example.com\tBar@Example.net\ninfo@example.com\tone, two\n",
    "-s lists key TAB value in file order")

# several tables in one command, and the order of queries
a = src("a", "k from-a\nonly-a x\n")
b = src("b", "k from-b\nonly-b y\n")
r = pm("hash:" + a, b)
is_(r.returncode, 0, "build two tables in one command")
r = pm("-q", "k", a, b)
is_(r.stdout, "from-a\n", "-q with two tables: the first that has the key answers")
r = pm("-q", "only-b", a, b)
is_(r.stdout, "y\n", "a key only in the second table is found there")
r = pm("-q", "-", a, b, input="k\nnothing\nonly-b\n")
is_((r.returncode, r.stdout), (0, "k\tfrom-a\nonly-b\ty\n"), "-q - reads keys from stdin, prints key TAB value")
r = pm("-q", "-", a, input="nothing\nnone\n")
is_((r.returncode, r.stdout), (1, ""), "-q - exits 1 when no key was found")

# default_database_type
t = src("typed", "k v\n")
r = run(["postern", "map", "-c", conf, "-o", "default_database_type=texthash", t])
is_(r.returncode, 1, "a default type that cannot be built is refused")
like(r.stderr, r'table type "texthash" is not built', "with a message saying so")
r = run(["postern", "map", "-c", conf, "-o", "default_database_type=cdb", t])
is_(r.returncode, 0, "default_database_type=cdb builds")
r = run(["postern", "map", "-c", conf, "-o", "default_database_type=texthash", "-q", "k", t])
is_(r.stdout, "v\n", "and a bare name is queried with default_database_type (texthash here)")

# ---- the source format ----
fmt = src("format", "a first  \n\tsecond\n# comment between\n   \n   third\n"
          "b value # not a comment\n   # an indented comment\nc\tv1  v2\t\r\nUP CaSe\n")
r = pm(fmt)
is_(r.returncode, 0, "continuation lines, comments and blank lines")
r = pm("-s", fmt)
is_(r.stdout, "a\tfirst  \tsecond   third\nb\tvalue # not a comment\nc\tv1  v2\nup\tCaSe\n",
    "continuations are joined as written; blank and comment lines in between are skipped; '#' after a value is text; trailing blanks and CR dropped")
lead = src("leading", "  starts with space\nk v\n")
r = pm(lead)
is_(r.returncode, 1, "a first line that starts with white space is an error")
like(r.stderr, r"leading, line 1: logical line must not start with white space", "reported with file:line")

# duplicates: warn with file:line, the first wins
dup = src("dup", "k first\nother x\nK second\n")
r = pm(dup)
is_(r.returncode, 0, "duplicates do not fail the build")
like(r.stderr, r'dup, line 3: duplicate entry: "k"', "a duplicate is warned about with file:line")
is_(pm("-q", "k", dup).stdout, "first\n", "and the first entry wins, as in Postfix")
r = pm("-r", dup)
is_((r.returncode, r.stderr), (0, ""), "-r replaces quietly")
is_(pm("-q", "k", dup).stdout, "second\n", "-r: the last entry wins")
r = pm("-w", dup)
is_((r.returncode, r.stderr), (0, ""), "-w ignores duplicates quietly")
is_(pm("-q", "k", dup).stdout, "first\n", "-w: the first entry wins")

# -f keeps case
fc = src("fold", "MixedKey v\n")
pm("-f", fc)
is_(pm("-f", "-q", "MixedKey", fc).stdout, "v\n", "-f: the key keeps its case")
is_(pm("-q", "MixedKey", fc).returncode, 1, "-f table: a folded query does not find the mixed-case key")
is_(pm("-f", "-q", "mixedkey", fc).returncode, 1, "-f query: exact case needed")
is_(pm("-f", "-q", "MixedKey", "texthash:" + fc).stdout, "v\n", "-f applies to texthash too")

# -N: keys and values stored with their NUL, still readable
nul = src("nul", "k v\n")
pm("-N", nul)
with open(nul + ".cdb", "rb") as f:
    ok(b"k\0v\0" in f.read(), "-N stores keys and values with a terminating NUL")
is_(pm("-q", "k", nul).stdout, "v\n", "such a table is read (and Postfix-built -N cdb files too)")

# permissions follow the source file; no temporary file is left behind
perm = src("perm", "k v\n")
os.chmod(perm, 0o640)
pm(perm)
is_(stat.S_IMODE(os.stat(perm + ".cdb").st_mode), 0o640, "NAME.cdb gets the source file's mode")
pm("-p", perm)
mask = os.umask(0o022)
os.umask(mask)
is_(stat.S_IMODE(os.stat(perm + ".cdb").st_mode), 0o644 & ~mask, "-p: mode 0644 (less the umask) instead")
is_(sorted(f for f in os.listdir(d) if ".cdb." in f), [], "no temporary files are left behind")

# stale table
stale = src("stale", "k old\n")
pm(stale)
past = time.time() - 100
os.utime(stale + ".cdb", (past, past))
r = pm("-q", "k", stale)
is_(r.returncode, 0, "a table older than its source still answers")
like(r.stderr, r"database .*stale\.cdb is older than source file .*stale", "with Postfix's warning")
pm(stale)
unlike(pm("-q", "k", stale).stderr, r"older", "no warning once rebuilt")

# ---- the swap: a reader keeps the table it opened ----
swap = src("swap", "k old-value\n")
pm(swap)
reader = start([prog("postern"), "map", "-c", conf, "-q", "-", swap],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
reader.stdin.write("k\n"); reader.stdin.flush()
is_(reader.stdout.readline(), "k\told-value\n", "a reader opens the table")
src("swap", "k new-value\nadded yes\n")
is_(pm(swap).returncode, 0, "the table is rebuilt while the reader runs")
reader.stdin.write("k\nadded\n"); reader.stdin.flush()
is_(reader.stdout.readline(), "k\told-value\n", "the reader still answers from the old table")
reader.stdin.close()
is_(reader.stdout.read(), "", "and does not see keys of the new one")
is_(reader.wait(10), 0, "it ends cleanly")
is_(pm("-q", "k", swap).stdout, "new-value\n", "a new open answers the new value")

# a table changed in place under a reader (cp over NAME.cdb): never a crash
inplace = src("inplace", "k one\n")
pm(inplace)
other = src("other", "k two\n")
pm(other)
reader = start([prog("postern"), "map", "-c", conf, "-q", "-", inplace],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
reader.stdin.write("k\n"); reader.stdin.flush()
is_(reader.stdout.readline(), "k\tone\n", "a reader opens a table")
with open(inplace + ".cdb", "r+b") as f:
    f.truncate(0)
reader.stdin.write("k\n"); reader.stdin.flush()
warnings = ""
while "try again" not in warnings:      # wait until the reader has tried
    line = reader.stderr.readline()
    if not line:
        break
    warnings += line
like(warnings, r"inplace\.cdb was changed in place", "the reader warns that the file was changed in place")
like(warnings, r'lookup of "k" failed: try again later', "and the lookup is 'try again', not a crash or 'not found'")
with open(other + ".cdb", "rb") as f:
    new = f.read()
with open(inplace + ".cdb", "r+b") as f:
    f.write(new)
reader.stdin.write("k\n"); reader.stdin.flush()
is_(reader.stdout.readline(), "k\ttwo\n", "truncated in place: no answer (try again); rewritten: mapped again")
reader.stdin.close()
is_(reader.wait(10), 75, "the reader survives and exits 75 (a lookup had to be retried)")

# ---- a table of 100,000 keys ----
big = os.path.join(d, "big")
with open(big, "w") as f:
    for i in range(100000):
        f.write(f"user{i}@example{i % 97}.com\trelay:[mx{i % 13}.example.net]:25\n")
t0 = time.time()
r = pm(big)
elapsed = time.time() - t0
is_(r.returncode, 0, "build a table of 100,000 keys")
diag(f"100,000-key build: {elapsed:.2f} s, {os.path.getsize(big + '.cdb')} bytes")
keys = [0, 54321, 99999]
line = lambda i: f"user{i}@example{i % 97}.com"
r = pm("-q", "-", big, input="".join(line(i) + "\n" for i in keys) + "user100000@example0.com\n")
is_(r.stdout, "".join(f"{line(i)}\trelay:[mx{i % 13}.example.net]:25\n" for i in keys),
    "first, middle and last keys are found; an absent one is not")
is_(len(pm("-s", big).stdout.splitlines()), 100000, "-s lists all 100,000 entries")

# ---- bad input ----
bad = src("bad", "good value\nnovalue\nalso fine\n")
src("badold", "")
r = pm(bad)
is_(r.returncode, 1, "a line without a value fails the build")
like(r.stderr, r"bad, line 2: expected format: key whitespace value", "naming file and line")
ok(not os.path.exists(bad + ".cdb"), "and writes no table")
src("bad", "good value\n")
pm(bad)
src("bad", "good changed\nnovalue\n")
pm(bad)
is_(pm("-q", "good", bad).stdout, "value\n", "a failed rebuild leaves the old table in place")

binary = os.path.join(d, "binary")
with open(binary, "wb") as f:
    f.write(b"key value\n" + bytes(range(256)) * 40)
r = pm(binary)
is_(r.returncode, 1, "a binary file fails the build")
like(r.stderr, r"binary, line 2: NUL character in line", "with file:line")

onemb = os.path.join(d, "onemb")
with open(onemb, "w") as f:
    f.write("long " + "x" * 1000000 + "\nshort v\n")
r = pm(onemb)
is_(r.returncode, 0, "a 1 MB line is accepted")
is_(len(pm("-q", "long", onemb).stdout), 1000001, "and its value comes back whole")
twomb = os.path.join(d, "twomb")
with open(twomb, "w") as f:
    f.write("short v\nlong " + "x" * 2000000 + "\n")
r = pm(twomb)
is_(r.returncode, 1, "a line over the limit (1 MiB) fails the build")
like(r.stderr, r"twomb, line 2: line longer than 1048576 bytes", "with file:line and the limit")

r = pm(os.path.join(d, "missing"))
is_(r.returncode, 1, "building a missing file fails")
like(r.stderr, r"open .*missing: No such file or directory", "with a clear error")
nocdb = src("nocdb", "k v\n")
r = pm("-q", "k", nocdb)
is_(r.returncode, 2, "querying a table never built: exit 2, not 1")
like(r.stderr, r'open database .*nocdb\.cdb: No such file or directory \(build it with "postern map', "with a hint")
garbage = src("garbage", "k v\n")
write(garbage + ".cdb", "short")
r = pm("-q", "k", garbage)
is_(r.returncode, 2, "a damaged .cdb is refused at open")
like(r.stderr, r"garbage\.cdb: not a cdb file", "with a message")
# a .cdb damaged after it was opened cannot answer: "try again", not "not found"
import struct
def cdb_hash(key):
    h = 5381
    for c in key:
        h = (((h << 5) + h) ^ c) & 0xffffffff
    return h
damaged = src("damaged", "k v\nother w\n")
pm(damaged)
with open(damaged + ".cdb", "r+b") as f:
    h = cdb_hash(b"k")
    f.seek((h & 255) * 8)
    tpos, tlen = struct.unpack("<II", f.read(8))
    slot = tpos + ((h >> 8) % tlen) * 8
    f.seek(slot + 4)
    f.write(struct.pack("<I", 0x7ffffff0))   # the record now lies outside the file
r = pm("-q", "k", damaged)
is_(r.returncode, 75, "a damaged record: exit 75 (MAP_RETRY), never 'not found'")
like(r.stderr, r"damaged\.cdb is damaged", "with a warning naming the file")
is_(pm("-q", "other", damaged).stdout, "w\n", "other keys of the file still answer")
r = pm("-q", "k", "nosuchtype:" + nocdb)
is_(r.returncode, 2, "an unknown table type: exit 2")
like(r.stderr, r'unsupported type "nosuchtype"', "with a message")

# ---- texthash ----
th = src("th", "Key value one\nother two\n  three\nkey dup\n")
r = pm("-q", "KEY", "texthash:" + th)
is_((r.returncode, r.stdout), (0, "value one\n"), "texthash: read at open, keys folded, first duplicate wins")
like(r.stderr, r'th, line 4: duplicate entry: "key"', "texthash warns about duplicates with file:line")
is_(pm("-q", "other", "texthash:" + th).stdout, "two  three\n", "texthash: continuation lines")
is_(pm("-s", "texthash:" + th).stdout, "key\tvalue one\nother\ttwo  three\n", "texthash: -s")
thbad = src("thbad", "k v\nbroken\n")
r = pm("-q", "k", "texthash:" + thbad)
is_(r.returncode, 2, "texthash with a bad line cannot be opened")
like(r.stderr, r"thbad, line 2: expected format", "and says where")
r = pm("-q", "k", "texthash:" + os.path.join(d, "nosuch"))
is_(r.returncode, 2, "texthash: a missing file cannot be opened")

# ---- static ----
is_(pm("-q", "anything", "static:OK").stdout, "OK\n", "static:value answers every key")
is_(pm("-q", "x", "static:{ text with spaces }").stdout, "text with spaces\n", "static:{ text } keeps inner spaces, trims the ends")
is_(pm("-q", "x", "static:relay:[mx.example.net]:587").stdout, "relay:[mx.example.net]:587\n", "static: the whole rest is the value")
r = pm("-q", "x", "static:{ open")
is_(r.returncode, 2, "static:{ without } is an error")
r = pm("-s", "static:x")
isnt(r.returncode, 0, "static cannot be listed")
like(r.stderr, r"listing is not supported", "and says so")

# ---- inline ----
il = "inline:{ a=b, { D = e f }, g=h, a=last }"
is_(pm("-q", "d", il).stdout, "e f\n", "inline: { key = text with spaces }")
is_(pm("-q", "A", il).stdout, "last\n", "inline: keys folded; a repeated key replaces (Postfix)")
is_(pm("-q", "zz", il).returncode, 1, "inline: a missing key")
is_(pm("-s", il).stdout, "a\tlast\nd\te f\ng\th\n", "inline: -s")
is_(pm("-q", "a", "inline:{a=b c=d}").stdout, "b\n", "inline: white space separates items too")
for badspec in ["inline:{}", "inline:{a}", "inline:a=b", "inline:{ {a=b }", "inline:{ {a = } }"]:
    r = pm("-q", "a", badspec)
    ok(r.returncode == 2 and "inline" in r.stderr, f"inline: bad syntax {badspec!r} is refused")

# ---- unix ----
root = pwd.getpwnam("root")
want = ":".join([root.pw_name, root.pw_passwd, str(root.pw_uid), str(root.pw_gid),
                 root.pw_gecos, root.pw_dir, root.pw_shell])
is_(pm("-q", "root", "unix:passwd.byname").stdout, want + "\n", "unix:passwd.byname gives the passwd line")
is_(pm("-q", "ROOT", "unix:passwd.byname").stdout, want + "\n", "its keys are folded")
g = grp.getgrgid(0)
is_(pm("-q", g.gr_name, "unix:group.byname").stdout,
    f"{g.gr_name}:{g.gr_passwd}:0:{','.join(g.gr_mem)}\n", "unix:group.byname gives the group line")
is_(pm("-q", "no-such-user-here", "unix:passwd.byname").returncode, 1, "unix: an unknown user is not found")
is_(pm("-q", "root", "unix:shadow").returncode, 2, "unix: an unknown map name is refused")

# ---- fail ----
r = pm("-q", "k", "fail:down")
is_(r.returncode, 75, "fail: every lookup is 'try again' (exit 75)")
like(r.stderr, r"table fail:down: lookup of \"k\" failed: try again later", "with a message naming the table")
r = pm("-q", "-", "fail:down", input="k\n")
is_(r.returncode, 75, "fail: also with -q -")
r = pm("-q", "k", a, "fail:down")
is_((r.returncode, r.stdout), (0, "from-a\n"), "a table before fail: answers first")
r = pm("-q", "nothing", a, "fail:down")
is_(r.returncode, 75, "a key not in the first table reaches fail: and is not 'not found'")

# ---- usage ----
is_(pm().returncode, 2, "no table: usage, exit 2")
is_(pm("-q", "k", "-s", a).returncode, 2, "-q with -s: usage")
is_(pm("-Z", a).returncode, 2, "an unknown option: usage")
r = pm("-i", a, input="new value\n")
is_(r.returncode, 2, "-i (incremental update) is refused")
like(r.stderr, r"-i is not supported: .*rebuilt from their source file", "with the reason")
done()
