#!/usr/bin/env python3
# postern-virtual: virtual_maildir_filter = yes, the per-user header filter
# of Postfix's VDA patch (lib/mail/maildirfilter.h): the Maildir's own
# "maildirfilter" regexp table matched against the unfolded, lower-cased
# header; REJECT bounces 5.0.0, DISCARD drops, MOVE files into a Maildir++
# folder (with virtual_maildir_extended), WARN/LOG/INFO log; and
# virtual_maildir_filter_maps from a real PostgreSQL table in the style of
# seed 000 (rows joined by commas, a "# M<stamp>" first row), which
# rewrites the file when its stamp changes and defers when the database is
# down.
import glob, os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *

VIRTUAL = prog("postern-virtual")
require(programs=("postern-virtual", "postern"))
ROOT = os.geteuid() == 0
OWNER = 65534 if ROOT else os.getuid()
GROUP = 65534 if ROOT else os.getgid()


def instance(extra=""):
    d = tempdir()
    base = os.path.join(d, "mail")
    os.makedirs(os.path.join(base, "example.com", "bob"))
    if ROOT:
        os.chmod(d, 0o755)
        for p in (base, os.path.join(base, "example.com"), os.path.join(base, "example.com", "bob")):
            os.chown(p, OWNER, GROUP)
    write(os.path.join(d, "vmailbox"), "bob@example.com example.com/bob/\n")
    write(os.path.join(d, "main.cf"),
          f"virtual_mailbox_base = {base}\n"
          f"virtual_mailbox_maps = texthash:{d}/vmailbox\n"
          f"virtual_uid_maps = static:{OWNER}\n"
          f"virtual_gid_maps = static:{GROUP}\n"
          "virtual_minimum_uid = 1\n"
          f"maillog_file = {d}/maillog\n"
          f"virtual_mailbox_limit_maps = inline:{{bob@example.com=100000}}\n"
          "virtual_maildir_extended = yes\n"
          "virtual_maildir_filter = yes\n" + extra)
    return d


def box(d, sub=""):
    return os.path.join(d, "mail", "example.com", "bob", sub)


def files(d, sub="new"):
    return sorted(glob.glob(os.path.join(box(d), sub, "*")))


def put_filter(d, text):
    path = box(d, "maildirfilter")
    write(path, text)
    if ROOT:
        os.chown(path, OWNER, GROUP)


def deliver(d, msg, opts=()):
    argv = [VIRTUAL, "-c", d]
    for o in opts:
        argv += ["-o", o]
    return run(argv + ["-f", "s@example.org", "bob@example.com"], input=msg.encode())


def result(r):
    return r.stdout.decode().strip()


def log(d):
    p = os.path.join(d, "maillog")
    return open(p, errors="replace").read() if os.path.exists(p) else ""


def sizes(d):
    with open(box(d, "maildirsize")) as f:
        lines = f.read().split("\n")[1:]
    return sum(int(l.split()[0]) for l in lines if l)


SENT = "bob@example.com: dsn=2.0.0, status=sent (delivered to maildir)"
d = instance()
r = deliver(d, "Subject: viagra\n\nno filter file yet\n")
is_(result(r), SENT, "no maildirfilter file: delivered as usual")

put_filter(d, "# a user's filter, regexp_table(5)\n"
              "/^subject: .*viagra/m REJECT no pills here\n"
              "/^x-spam-flag: yes/m  MOVE Spam\n"
              "/^from: .*noise@/m    DISCARD not wanted\n"
              "/^subject: watch me/m WARN a watched subject\n"
              "/^subject: one folded and matched$/m INFO folded subject seen\n"
              "/^subject: climb/m    MOVE ../../../../etc\n"
              "/^delivered-to: bob@example\\.com$/m  INFO delivered-to seen\n")
r = deliver(d, "From: a@example.org\nSubject: Buy VIAGRA now\n\nbody\n")
is_(r.returncode, 67, "REJECT: exit 67 (bounced)")
is_(result(r), "bob@example.com: dsn=5.0.0, status=bounced (maildir delivery failed: "
    "User filter - REJECT: no pills here)", "REJECT: 5.0.0, the rule's text")
is_(len(files(d)), 1, "REJECT: nothing written to new/")
is_(files(d, "tmp"), [], "REJECT: nothing left in tmp/")

used = sizes(d)
r = deliver(d, "From: a@example.org\nX-Spam-Flag: YES\nSubject: offer\n\nbody\n")
is_(result(r), SENT, "MOVE Spam: delivered")
moved = glob.glob(box(d, ".Spam/new/*"))
is_(len(moved), 1, "MOVE Spam: into the Maildir++ folder .Spam/")
ok(os.path.exists(box(d, ".Spam/maildirfolder")) and os.path.isdir(box(d, ".Spam/cur"))
   and os.path.isdir(box(d, ".Spam/tmp")), "the folder is made whole: maildirfolder, cur/, tmp/")
is_(len(files(d)), 1, "MOVE: the inbox did not get it")
if moved:
    ok(re.search(r",S=\d+$", moved[0]) is not None, "the ,S= size in its name (virtual_maildir_extended)")
    is_(sizes(d) - used, os.path.getsize(moved[0]), "maildirsize counts it (folders count)")
if ROOT and moved:
    is_(os.stat(moved[0]).st_uid, OWNER, "written as the mailbox owner")

r = deliver(d, "From: Noise@example.org\nSubject: hi\n\nbody\n")
is_(result(r), "bob@example.com: dsn=2.0.0, status=sent (User filter - DISCARD: not wanted)",
    "DISCARD: done, with the rule's text")
is_(len(files(d)) + len(glob.glob(box(d, ".*/new/*"))), 2, "DISCARD: nothing written anywhere")

r = deliver(d, "Subject: watch me\n\nbody\n")
is_(result(r), SENT, "WARN: delivered")
like(log(d), r"warning: deliver_maildir: header check warning: a watched subject", "WARN: logged")

r = deliver(d, "From: a@example.org\nSubject: one\n\tfolded and matched\nTo: b@example.com\n\nbody\n")
is_(result(r), SENT, "INFO: delivered")
like(log(d), r"deliver_maildir: header check info: folded subject seen",
     "a folded Subject is matched as one line (TAB made a space)")

r = deliver(d, "From: a@example.org\nSubject: plain\n\nSubject: viagra\nX-Spam-Flag: YES\n")
is_(result(r), SENT, "a body line that looks like a header is not matched")
like(log(d), r"header check info: delivered-to seen", "the Delivered-To line postern-virtual adds is seen")

r = deliver(d, "Subject: climb\n\nbody\n")
is_(result(r), SENT, "MOVE ../../../../etc: delivered")
is_(len(glob.glob(box(d, ".etc/new/*"))), 1, "into .etc/ inside the Maildir: '/' and '..' cut out")

before = len(files(d))
r = deliver(d, "Subject: viagra\n\nbody\n", opts=["virtual_maildir_filter=no"])
is_(result(r), SENT, "virtual_maildir_filter = no: the file is not read")
r = deliver(d, "X-Spam-Flag: yes\n\nbody\n", opts=["virtual_maildir_extended=no"])
is_(result(r), SENT, "virtual_maildir_extended = no: MOVE is not done ...")
is_(len(files(d)), before + 2, "... the message goes to the inbox")

put_filter(d, "/^subject: (viagra/ REJECT broken\n")
r = deliver(d, "Subject: viagra\n\nbody\n")
is_(result(r), SENT, "a filter that does not compile: delivered unfiltered")
like(log(d), r"warning: \S+maildirfilter: .*delivered without the filter", "and the log says why")

r = run(["postern", "check", "-c", d])
unlike(r.stdout + r.stderr, r"virtual_maildir_filter", "postern check no longer calls it unimplemented")

# ---- virtual_maildir_filter_maps from PostgreSQL, seed 000's style --------
import sqlservers  # noqa: E402
from instance import ROOT_USERS  # noqa: E402

pg = sqlservers.Postgres()
pg.psql("CREATE TABLE maildir_filter (id SERIAL PRIMARY KEY, username VARCHAR(255), rule TEXT,"
        " active BOOLEAN NOT NULL DEFAULT TRUE); ALTER TABLE maildir_filter OWNER TO postfix;"
        "INSERT INTO maildir_filter (username, rule) VALUES"
        " ('alice@example.com', '# M1700000000'),"
        " ('alice@example.com', '/^subject: .*viagra/m REJECT no pills here'),"
        " ('alice@example.com', '/^x-spam-flag: yes/m MOVE Junk');")
cfdir = tempdir()
os.chmod(cfdir, 0o755)
filter_cf = write(os.path.join(cfdir, "virtual_maildir_filter_maps.cf"), f"""\
# virtual_maildir_filter_maps.cf
user            = postfix
password        = $password
dbname          = postfix
hosts           = inet:127.0.0.1:{pg.port}
query           = SELECT rule FROM maildir_filter WHERE username='%s' AND active='1' ORDER BY id;
""")
mailboxes = write(os.path.join(cfdir, "vmailbox"), "alice@example.com example.com/alice/\n")
inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": "example.com", "virtual_mailbox_maps": f"texthash:{mailboxes}",
    "virtual_maildir_extended": "yes", "virtual_maildir_filter": "yes",
    "virtual_maildir_filter_maps": f"pgsql:{filter_cf}"})
alice = os.path.join(inst.dir, "mail", "example.com", "alice")


def send(subject, extra=""):
    r = inst.sendmail(["-f", "s@example.org", "alice@example.com"],
                      f"From: s@example.org\n{extra}Subject: {subject}\n\nbody\n".encode())
    is_(r.returncode, 0, f"sendmail: {subject}") or diag(r.stderr)


def logged(pattern, timeout=30):
    return wait_until(lambda: re.search(pattern, inst.log()) is not None, timeout)


def count(sub):
    return len(glob.glob(os.path.join(alice, sub, "*")))


send("hello")
ok(wait_until(lambda: count("new") == 1, 30), "pgsql filter: a plain message reaches the inbox") \
    or diag(inst.log()[-3000:])
fpath = os.path.join(alice, "maildirfilter")
text = open(fpath).read() if os.path.exists(fpath) else ""
is_(text, "# M1700000000\n/^subject: .*viagra/m REJECT no pills here\n/^x-spam-flag: yes/m MOVE Junk\n",
    "the rows, joined, became the Maildir's maildirfilter file, one rule a line")
send("cheap viagra")
ok(logged(r"to=<alice@example\.com>, relay=virtual, .*dsn=5\.0\.0, status=bounced \(maildir delivery "
          r"failed: User filter - REJECT: no pills here\)"), "pgsql filter: REJECT bounces 5.0.0")
send("junk", "X-Spam-Flag: YES\n")
ok(wait_until(lambda: count(".Junk/new") == 1, 30), "pgsql filter: MOVE Junk files it in .Junk/")
pg.psql("UPDATE maildir_filter SET rule = '# M1700000100' WHERE rule LIKE '# M%';"
        "UPDATE maildir_filter SET active = FALSE WHERE rule LIKE '%viagra%';")
send("more viagra")
ok(wait_until(lambda: count("new") == 2, 30), "a new stamp in the table: the rule it dropped no longer refuses")
is_(open(fpath).read() if os.path.exists(fpath) else "", "# M1700000100\n/^x-spam-flag: yes/m MOVE Junk\n",
    "and the file was written again from the table")
pg.stop()
send("while down")
ok(logged(r"to=<alice@example\.com>, relay=virtual, .*dsn=4\.3\.5, status=deferred"),
   "PostgreSQL down: the message is deferred (4.3.5), never delivered unfiltered")
is_(count("new"), 2, "nothing more in the inbox")
inst.stop()
done()
