#!/usr/bin/env python3
# postern-virtual: Maildir++ quotas as Postfix's VDA patch gives them
# (seeds 000 and 002): virtual_mailbox_limit_maps, the maildirsize file,
# ",S=" file names, bounce or defer with virtual_maildir_limit_message,
# quota 0 = no limit, quotas near 2^63, recalculation as Maildir++ says,
# and many deliveries at once keeping the file equal to the Maildir.
import glob, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

VIRTUAL = prog("postern-virtual")
ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()
SEED_MESSAGE = '"Sorry, the recipients mailbox is currently full. Please try again later."'
BIG = 9223372036854775807                   # PostgreSQL's largest bigint


def instance(quota="", extra="", seed000=True):
    """A configuration with seed 000's quota settings (texthash tables in
    place of its pgsql ones: the same lookups)."""
    d = tempdir()
    base = os.path.join(d, "mail")
    os.makedirs(os.path.join(base, "example.com"))
    if ROOT:
        os.chmod(d, 0o755)
        for p in (base, os.path.join(base, "example.com")):
            os.chown(p, OWNER, GROUP)
    write(os.path.join(d, "vmailbox"),
          "bob@example.com   example.com/bob/\n"
          "carol@example.com example.com/carol/\n"
          "dave@example.com  example.com/dave/\n"
          "mbox@example.com  example.com/mbox\n")
    write(os.path.join(d, "quota"), quota)
    cf = (f"virtual_mailbox_base = {base}\n"
          f"virtual_mailbox_maps = texthash:{d}/vmailbox\n"
          f"virtual_uid_maps = static:{OWNER}\n"
          f"virtual_gid_maps = static:{GROUP}\n"
          f"virtual_minimum_uid = 1\n"
          f"maillog_file = {d}/maillog\n")
    if seed000:
        cf += (f"virtual_mailbox_limit_maps = texthash:{d}/quota\n"
               "virtual_mailbox_limit_inbox = no\n"
               "virtual_mailbox_limit_override = yes\n"
               "virtual_maildir_extended = yes\n"
               "virtual_overquota_bounce = no\n"
               f"virtual_maildir_limit_message = {SEED_MESSAGE}\n"
               "virtual_trash_count = no\n"
               'virtual_trash_name = ".Trash"\n'
               "virtual_maildir_filter = no\n"
               "mailbox_size_limit = 0\n"
               "message_size_limit = 20971520\n")
    write(os.path.join(d, "main.cf"), cf + extra)
    return d


def message(size):
    """A message whose Maildir file (with the 3 prepended lines) is exactly
    `size` bytes for recipient bob@example.com and sender s@example.org."""
    head = (b"Return-Path: <s@example.org>\nX-Original-To: bob@example.com\n"
            b"Delivered-To: bob@example.com\n")
    body = b"Subject: q\n\n"
    fill = size - len(head) - len(body) - 1
    assert fill >= 0
    return body + b"x" * fill + b"\n"


def deliver(d, rcpt="bob@example.com", size=1000, opts=()):
    argv = [VIRTUAL, "-c", d]
    for o in opts:
        argv += ["-o", o]
    argv += ["-f", "s@example.org", rcpt]
    return run(argv, input=message(size), env={"TMPDIR": d})


def maildir(d, user="bob"):
    return os.path.join(d, "mail", "example.com", user) + "/"


def sizefile(d, user="bob"):
    try:
        with open(maildir(d, user) + "maildirsize") as f:
            return f.read()
    except FileNotFoundError:
        return None


def sums(text):
    lines = text.split("\n")
    b = c = 0
    for line in lines[1:]:
        if line:
            x, y = line.split()
            b += int(x)
            c += int(y)
    return lines[0], b, c


def real_usage(d, user="bob", folders=True):
    """What is really in the Maildir: bytes and files of new/ and cur/."""
    b = c = 0
    pats = ["new/*", "cur/*"] + ([".*/new/*", ".*/cur/*"] if folders else [])
    for pat in pats:
        for p in glob.glob(maildir(d, user) + pat):
            if "/.Trash/" in p:
                continue
            b += os.stat(p).st_size
            c += 1
    return b, c


def log(d):
    path = os.path.join(d, "maillog")
    return open(path).read() if os.path.exists(path) else ""


def result(r):
    return r.stdout.decode().strip()


def add_cf(d, text):
    with open(os.path.join(d, "main.cf"), "a") as f:
        f.write(text)


def put_sizefile(d, text, user="bob", age=0):
    path = maildir(d, user) + "maildirsize"
    os.makedirs(maildir(d, user), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if ROOT:
        os.chown(path, OWNER, GROUP)
    if age:
        t = time.time() - age
        os.utime(path, (t, t))


# ---- seed 000: a quota from the table, deferral with the seed's text ----
d = instance("bob@example.com 3500\ncarol@example.com 0\n")
for i in range(3):
    r = deliver(d)
    is_(result(r), "bob@example.com: dsn=2.0.0, status=sent (delivered to maildir)",
        f"seed 000: message {i + 1} of 1000 bytes fits in 3500")
new = sorted(glob.glob(maildir(d) + "new/*"))
is_(len(new), 3, "three files in new/")
ok(all(p.endswith(",S=1000") for p in new), "virtual_maildir_extended: ,S=SIZE in each name") \
    or diag(new)
is_(sizefile(d), "3500S\n0 0\n1000 1\n1000 1\n1000 1\n",
    "maildirsize: the definition, the count when made, one line per delivery")
r = deliver(d)
is_(r.returncode, 75, "over quota: exit 75 (deferred)")
is_(result(r), "bob@example.com: dsn=4.2.2, status=deferred (maildir delivery failed: "
    f"{SEED_MESSAGE})", "over quota: 4.2.2 and the seed's message, quotes and all, as Postfix-VDA")
like(log(d), r"to=<bob@example\.com>, relay=virtual, delay=[\d.]+, dsn=4\.2\.2, status=deferred "
     r"\(maildir delivery failed: \"Sorry, the recipients mailbox is currently full\. Please try again later\.\"\)",
     "over quota: the log line says what Postfix-VDA's does")
is_(len(glob.glob(maildir(d) + "new/*")), 3, "over quota: nothing was written to new/")
is_(glob.glob(maildir(d) + "tmp/*"), [], "over quota: nothing left in tmp/")
is_(sums(sizefile(d))[1:], (3000, 3), "over quota: maildirsize unchanged")
r = deliver(d, size=500)
is_(r.returncode, 0, "a smaller message that still fits is delivered (3500 exactly)")
r = deliver(d, "carol@example.com")
is_(r.returncode, 0, "another user is not affected")
for i in range(5):
    deliver(d, "carol@example.com", size=5000)
is_(len(glob.glob(maildir(d, "carol") + "new/*")), 6,
    "seed 002: a quota of 0 in the table means no limit")
is_(sizefile(d, "carol").split("\n")[0], "0S", "quota 0: maildirsize says 0S (no limit)")
r = deliver(d, "dave@example.com", size=2000)
is_(r.returncode, 0, "no entry in the table: virtual_mailbox_limit (51200000) is the quota")
is_(sizefile(d, "dave").split("\n")[0], "51200000S", "... and maildirsize says so")

# ---- virtual_overquota_bounce = yes: 5.2.2 ----
r = deliver(d, opts=["virtual_overquota_bounce=yes"])
is_(r.returncode, 67, "virtual_overquota_bounce = yes: exit 67 (bounced)")
like(result(r), r"^bob@example\.com: dsn=5\.2\.2, status=bounced \(maildir delivery failed: \"Sorry",
     "virtual_overquota_bounce = yes: 5.2.2 with the same text")
d2 = instance("bob@example.com 1500\n")
r = deliver(d2, size=2000)
like(result(r), r"dsn=5\.2\.2, status=bounced", "a message larger than the whole quota bounces "
     "even with virtual_overquota_bounce = no (VDA: it can never fit)")

# ---- virtual_maildir_limit_message_maps ----
d3 = instance("bob@example.com 1500\ncarol@example.com 1500\n")
add_cf(d3, f"virtual_maildir_limit_message_maps = texthash:{d3}/messages\n")
write(os.path.join(d3, "messages"), "bob@example.com Bob's box is full, sorry\n")
deliver(d3)
deliver(d3, "carol@example.com")
is_(result(deliver(d3)), "bob@example.com: dsn=4.2.2, status=deferred (maildir delivery failed: "
    "Bob's box is full, sorry)", "virtual_maildir_limit_message_maps: the recipient's own text")
like(result(deliver(d3, "carol@example.com")), r"\(maildir delivery failed: \"Sorry, the recipients",
     "virtual_maildir_limit_message_maps: others get virtual_maildir_limit_message")

# ---- quotas near 2^63 (seed 000's bigint) ----
d4 = instance(f"bob@example.com {BIG}\ncarol@example.com 9223372036854774784\n")
r = deliver(d4)
is_(r.returncode, 0, "quota 2^63-1: delivered")
is_(sizefile(d4), f"{BIG}S\n0 0\n1000 1\n", "quota 2^63-1: written exactly, no overflow")
is_(deliver(d4, "carol@example.com").returncode, 0, "quota 9223372036854774784: delivered")
put_sizefile(d4, f"{BIG}S\n{BIG - 500} 1\n")
r = deliver(d4)
like(result(r), r"dsn=4\.2\.2", "usage 2^63-501 plus 1000 bytes: over (usage + size is never "
     "computed past 2^63)")
put_sizefile(d4, f"{BIG}S\n{BIG - 1000} 1\n")
is_(deliver(d4).returncode, 0, "usage 2^63-1-1000 plus 1000 bytes: exactly full, delivered")
put_sizefile(d4, f"{BIG}S\n{BIG} 1\n1 1\n")
r = deliver(d4)
is_(r.returncode, 0, "lines that add up past 2^63: the file is malformed and recalculated")
is_(sums(sizefile(d4))[1:], real_usage(d4), "... to what the Maildir holds")
d5 = instance("bob@example.com 92233720368547758070\ncarol@example.com lots\n")
like(result(deliver(d5)), r"dsn=4\.3\.5, status=deferred \(mail system configuration error\)",
     "a quota beyond 2^63: a configuration error (deferred), not a wrapped number")
like(result(deliver(d5, "carol@example.com")), r"dsn=4\.3\.5",
     "a quota that is no number: deferred")
like(log(d5), r"warning: recipient carol@example\.com: bad quota lots in virtual_mailbox_limit_maps",
     "... with a warning naming the table")

# ---- override, negative values, virtual_mailbox_limit ----
d6 = instance("bob@example.com 1500\ncarol@example.com -1\n",
              "virtual_mailbox_limit_override = no\n")
deliver(d6)
is_(deliver(d6).returncode, 0, "virtual_mailbox_limit_override = no: a quota below "
    "message_size_limit falls back to virtual_mailbox_limit")
like(log(d6), r"warning: deliver_maildir: recipient bob@example\.com - virtual maildir limit is "
     r"smaller than message_size_limit in virtual_mailbox_limit_maps - falling back to "
     r"virtual_mailbox_limit", "... with Postfix-VDA's warning")
deliver(d6, "carol@example.com")
is_(sizefile(d6, "carol").split("\n")[0], "51200000S",
    "a negative quota: virtual_mailbox_limit")
d7 = instance("", "virtual_mailbox_limit = 2500\nmessage_size_limit = 2000\n")
deliver(d7)
deliver(d7)
like(result(deliver(d7)), r"dsn=4\.2\.2", "no table entry: virtual_mailbox_limit is the Maildir quota")
d8 = instance("", "virtual_mailbox_limit = 0\nmessage_size_limit = 0\n")
for i in range(3):
    deliver(d8, size=30000)
is_(len(glob.glob(maildir(d8) + "new/*")), 3, "virtual_mailbox_limit = 0: no quota at all")
like(open(os.path.join(d8, "main.cf")).read(), r"mailbox_size_limit = 0",
     "(mailbox_size_limit = 0 as the seed sets it)")
unlike(log(d8), r"mailbox_size_limit|unused parameter",
       "seed 000's settings draw no warning (none unused, mailbox_size_limit = 0 fine)")

# ---- without the VDA settings: unchanged ----
d9 = instance(seed000=False)
deliver(d9)
is_(sizefile(d9), None, "no VDA setting: no maildirsize")
ok(not glob.glob(maildir(d9) + "new/*,S=*"), "no VDA setting: Postfix's plain names")

# ---- seed 002's older names ----
d10 = instance("bob@example.com 2500\n", seed000=False, extra=(
    "virtual_create_maildirsize = yes\nvirtual_mailbox_extended = yes\n"
    "virtual_mailbox_limit_override = yes\nvirtual_overquota_bounce = yes\n"
    "virtual_maildir_limit_message = Sorry, the recipients mailbox is currently full. "
    "Please try again later.\n"))
add_cf(d10, f"virtual_mailbox_limit_maps = texthash:{d10}/quota\n")
deliver(d10)
deliver(d10)
is_(result(deliver(d10)), "bob@example.com: dsn=5.2.2, status=bounced (maildir delivery failed: "
    "Sorry, the recipients mailbox is currently full. Please try again later.)",
    "seed 002 (virtual_create_maildirsize, virtual_mailbox_extended, bounce): 5.2.2")
is_(sizefile(d10), "2500S\n0 0\n1000 1\n1000 1\n", "seed 002: maildirsize kept")
ok(all(p.endswith(",S=1000") for p in glob.glob(maildir(d10) + "new/*")),
   "seed 002: virtual_mailbox_extended names the size")

# ---- folders, trash, inbox only ----
d11 = instance("bob@example.com 5000\n")
deliver(d11)
for folder, n in ((".Sent", 2), (".Trash", 3)):
    os.makedirs(maildir(d11) + folder + "/cur")
    for i in range(n):
        write(maildir(d11) + f"{folder}/cur/{i}.x.host,S=1000:2,S", "x" * 10)
os.unlink(maildir(d11) + "maildirsize")
deliver(d11)
is_(sizefile(d11), "5000S\n3000 3\n1000 1\n", "recalculated: .Sent counted by its ,S= names, "
    ".Trash not (virtual_trash_count = no), tmp/ not")
os.unlink(maildir(d11) + "maildirsize")
r = deliver(d11, opts=["virtual_trash_count=yes"])
like(result(r), r"dsn=4\.2\.2", "virtual_trash_count = yes: the trash counts and the box is full")
is_(sizefile(d11).split("\n")[1], "7000 7", "... and maildirsize says 7000 bytes")
r = deliver(d11, opts=["virtual_mailbox_limit_inbox=yes", "virtual_trash_count=yes"])
is_(r.returncode, 0, "virtual_mailbox_limit_inbox = yes: only new/ and cur/ count (2000)")
is_(sums(sizefile(d11))[1:], (8000, 8), "... while maildirsize still counts the whole Maildir")

# ---- when the file is remade (Maildir++) ----
d12 = instance("bob@example.com 100000\n")
deliver(d12)
put_sizefile(d12, "100000S\n" + "0 0\n" * 1300)       # 5208 bytes
deliver(d12)
is_(sizefile(d12), "100000S\n1000 1\n1000 1\n", "a file of 5120 bytes or more is recalculated")
put_sizefile(d12, "100000S\n1000 1\ngarbage\n")
deliver(d12)
is_(sizefile(d12), "100000S\n2000 2\n1000 1\n", "a malformed file is recalculated")
put_sizefile(d12, "100000S\n1000 1\n20")
deliver(d12)
is_(sizefile(d12), "100000S\n3000 3\n1000 1\n", "a last line without its newline: recalculated")
write(os.path.join(d12, "quota"), "bob@example.com 200000\n")
deliver(d12)
is_(sizefile(d12), "200000S\n4000 4\n1000 1\n",
    "the table's quota changed: the file is remade with the new definition")
put_sizefile(d12, "200000S,5C\n5000 5\n")
like(result(deliver(d12)), r"dsn=4\.2\.2", "a count limit (C) in the file is honoured")
for p in glob.glob(maildir(d12) + "new/*")[:3]:
    os.unlink(p)                    # a reader removed mail without telling the file
put_sizefile(d12, "200000S\n199500 5\n")
like(result(deliver(d12)), r"dsn=4\.2\.2",
     "over quota by a fresh file: refused without counting again")
put_sizefile(d12, "200000S\n199500 5\n", age=16 * 60)
is_(deliver(d12).returncode, 0, "over quota by a file older than 15 minutes: counted again, "
    "and the mail fits")
is_(sums(sizefile(d12))[1:], real_usage(d12), "... and the file matches the Maildir")
put_sizefile(d12, "200000S\n1000 1\n-1000 -1\n")
deliver(d12)
is_(sums(sizefile(d12))[1:], (1000, 1), "negative lines (a reader's removals) are honoured")

# ---- many deliveries at once ----
d13 = instance("bob@example.com 0\n")
deliver(d13)
ok_all = True
for rnd in range(3):
    # grow the file past 5120 bytes (rounds 1 and 3: every delivery that
    # reads it first remakes it while the others append), or to just under
    # (round 2: it crosses the line during the run)
    text = sizefile(d13)
    pad = (5100 if rnd == 1 else 5140) - len(text)
    if pad > 0:
        put_sizefile(d13, text + "0 0\n" * (pad // 4))
    procs = []
    for i in range(40):
        size = 300 + (i * 37 + rnd * 11) % 900
        p = subprocess.Popen([VIRTUAL, "-c", d13, "-f", "s@example.org", "bob@example.com"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TMPDIR=d13))
        procs.append((p, size))
    for p, size in procs:
        p.stdin.write(message(size))
        p.stdin.close()
    codes = [p.wait(60) for p, _ in procs]
    ok_all = ok_all and all(c == 0 for c in codes)
    text = sizefile(d13)
    is_(sums(text)[1:], real_usage(d13),
        f"round {rnd + 1}: 40 deliveries at once, file remade meanwhile: maildirsize adds up "
        "to exactly what new/ holds") or diag(text[:300])
    if rnd != 1:
        ok(len(text) < 5000, f"round {rnd + 1}: the file was remade during the run")
ok(ok_all, "every concurrent delivery succeeded")
files = glob.glob(maildir(d13) + "new/*") + glob.glob(maildir(d13) + "cur/*")
du = run(["du", "-cb"] + files).stdout.splitlines()[-1].split()[0]
is_(str(sums(sizefile(d13))[1]), du, "maildirsize's sum is what du -b says of the messages")
is_(real_usage(d13)[1], 121, "121 messages in the Maildir")

# ---- mbox: the table's quota bounds the file ----
d14 = instance("mbox@example.com 2500\n")
deliver(d14, "mbox@example.com")
deliver(d14, "mbox@example.com")
like(result(deliver(d14, "mbox@example.com")), r"dsn=5\.2\.2, status=bounced",
     "mbox: the table's quota is the file's size limit (VDA)")

done()
