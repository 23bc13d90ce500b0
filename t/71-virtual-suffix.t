#!/usr/bin/env python3
# postern-virtual: virtual_maildir_suffix, the VDA patch's suffix appended
# to the mailbox path of virtual_mailbox_maps for Maildir delivery: with
# "Maildir/", a row "example.com/carol/" delivers into
# example.com/carol/Maildir/; the quota (maildirsize, ",S=" names, the
# over-quota deferral) and the filter's MOVE folders live in that Maildir,
# while the user's maildirfilter file stays in the mailbox directory, as
# the patch has it.  The mailboxes and quotas come from a real PostgreSQL
# table in seed 000's style; an mbox path (no final /) gets no suffix.
import glob, os, re, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
import sqlservers

require(programs=("postern-virtual", "postern"))
pg = sqlservers.Postgres()
pg.psql("INSERT INTO mailbox (username, maildir, quota, active) VALUES"
        " ('carol@example.com', 'example.com/carol/', 100000, TRUE),"
        " ('dan@example.com', 'example.com/dan', 0, TRUE);")
cfdir = tempdir()
os.chmod(cfdir, 0o755)
common = f"user = postfix\npassword = $password\ndbname = postfix\nhosts = inet:127.0.0.1:{pg.port}\n"
maps_cf = write(os.path.join(cfdir, "virtual_mailbox_maps.cf"),
                common + "query = SELECT maildir FROM mailbox WHERE username='%s' AND active='1'\n")
quota_cf = write(os.path.join(cfdir, "virtual_mailbox_limit_maps.cf"),
                 common + "query = SELECT quota FROM mailbox WHERE username='%s' AND active='1'\n")
inst, port = sqlservers.instance_with_tables({
    "virtual_mailbox_domains": "example.com", "virtual_mailbox_maps": f"pgsql:{maps_cf}",
    "virtual_mailbox_limit_maps": f"pgsql:{quota_cf}", "virtual_mailbox_limit_override": "yes",
    "virtual_maildir_extended": "yes", "virtual_maildir_suffix": "Maildir/",
    "virtual_maildir_filter": "yes"})
r = inst.postern("check")
unlike(r.stdout + r.stderr, r"virtual_maildir_suffix", "postern check no longer calls it unimplemented")
carol = os.path.join(inst.dir, "mail", "example.com", "carol")
maildir = os.path.join(carol, "Maildir")


def send(rcpt, subject, extra=""):
    r = inst.sendmail(["-f", "s@example.org", rcpt],
                      f"From: s@example.org\n{extra}Subject: {subject}\n\n{'x' * 500}\n".encode())
    is_(r.returncode, 0, f"sendmail: {subject}") or diag(r.stderr)


def count(sub):
    return len(glob.glob(os.path.join(maildir, sub, "*")))


def usage(subs=("new", "cur", ".Junk/new")):
    files = [p for s in subs for p in glob.glob(os.path.join(maildir, s, "*"))]
    return sum(os.stat(p).st_size for p in files), len(files)


def sizefile():
    p = os.path.join(maildir, "maildirsize")
    return open(p).read() if os.path.exists(p) else ""


def sums(text):
    lines = text.split("\n")
    pairs = [l.split() for l in lines[1:] if l]
    return lines[0], sum(int(a) for a, _ in pairs), sum(int(b) for _, b in pairs)


def logged(pattern, timeout=30):
    return wait_until(lambda: re.search(pattern, inst.log()) is not None, timeout)


send("carol@example.com", "one")
ok(wait_until(lambda: count("new") == 1, 30), "the message is in example.com/carol/Maildir/new/") \
    or diag(inst.log()[-3000:])
is_(glob.glob(os.path.join(carol, "new", "*")), [], "and not in example.com/carol/new/")
names = glob.glob(os.path.join(maildir, "new", "*"))
like(names[0] if names else "", r",S=\d+$", "its name carries its size (virtual_maildir_extended)")
ok(not os.path.exists(os.path.join(carol, "maildirsize")), "no maildirsize beside the Maildir")
is_(sums(sizefile()), ("100000S",) + usage(), "Maildir/maildirsize: the table's quota, and the usage of Maildir/")

# the filter file stays in the mailbox directory; MOVE goes below the suffix
filt = os.path.join(carol, "maildirfilter")
write(filt, "/^x-spam-flag: yes/m MOVE Junk\n")
if os.geteuid() == 0:
    st = os.stat(maildir)
    os.chown(filt, st.st_uid, st.st_gid)
send("carol@example.com", "junk", "X-Spam-Flag: YES\n")
ok(wait_until(lambda: count(".Junk/new") == 1, 30), "maildirfilter in carol/: MOVE files it in Maildir/.Junk/") \
    or diag(inst.log()[-3000:])
ok(os.path.exists(os.path.join(maildir, ".Junk", "maildirfolder")), "a Maildir++ folder (maildirfolder)")
is_(glob.glob(os.path.join(carol, ".Junk")), [], "no folder beside the Maildir")
is_(sums(sizefile())[1:], usage(), "maildirsize counts the folder too")

# over quota: the table's new limit, just above the usage, defers the next
used = usage()[0]
pg.psql(f"UPDATE mailbox SET quota = {used + 10} WHERE username = 'carol@example.com';")
send("carol@example.com", "over")
ok(logged(r"to=<carol@example\.com>, relay=virtual, .*dsn=4\.2\.2, status=deferred \(maildir delivery "
          r"failed: Sorry, the user's maildir has overdrawn his diskspace quota"),
   "over the quota counted in Maildir/: deferred 4.2.2") or diag(inst.log()[-3000:])
is_(count("new"), 1, "nothing more in Maildir/new")
like(sizefile(), r"^%dS\n" % (used + 10), "maildirsize remade with the new quota")

# an mbox path is not a Maildir: no suffix
send("dan@example.com", "mbox")
dan = os.path.join(inst.dir, "mail", "example.com", "dan")
ok(wait_until(lambda: os.path.isfile(dan), 30), "an mbox path (no final /) is the file itself") \
    or diag(inst.log()[-3000:])
ok(not os.path.exists(dan + "Maildir"), "no suffix for an mbox")
inst.stop()

# a suffix without a final / gets one (the patch would write "MailDirnew/")
d = tempdir()
base = os.path.join(d, "mail")
os.makedirs(base)
owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
if os.geteuid() == 0:
    os.chmod(d, 0o755)
    os.chown(base, *owner)
write(os.path.join(d, "vmailbox"), "erin@example.com erin/\n")
write(os.path.join(d, "main.cf"), f"virtual_mailbox_base = {base}\n"
      f"virtual_mailbox_maps = texthash:{d}/vmailbox\nvirtual_uid_maps = static:{owner[0]}\n"
      f"virtual_gid_maps = static:{owner[1]}\nvirtual_minimum_uid = 1\nmaillog_file = {d}/maillog\n"
      "virtual_maildir_suffix = MailDir\n")
r = run([prog("postern-virtual"), "-c", d, "-f", "s@example.org", "erin@example.com"],
        input=b"Subject: s\n\nbody\n", env={"TMPDIR": d})
is_(r.returncode, 0, "a direct delivery with virtual_maildir_suffix = MailDir") or diag(r.stdout + r.stderr)
is_(len(glob.glob(os.path.join(base, "erin", "MailDir", "new", "*"))), 1, "it lands in erin/MailDir/new/")
done()
