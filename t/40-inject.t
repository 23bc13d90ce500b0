#!/usr/bin/env python3
# postern-queue (interface 2): a message and its envelope go in, a queue
# file in incoming/ and a K record come out; bad envelopes, oversized
# messages and a killed injector leave nothing named by an id.
import glob, os, re, shutil, signal, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import *
from inject import MAIL_OWNER, OWNERS, SETGID_GROUP, instance, envelope, inject, Injection

cfg, queue = instance()
incoming = os.path.join(queue, "incoming")


def ids():
    return sorted(n for n in os.listdir(incoming) if not n.startswith("."))


def dotfiles():
    return sorted(n for n in os.listdir(incoming) if n.startswith("."))


def cat(qid):
    return run(["postern", "queue", "-c", cfg, "cat", qid])


# --- a message with a real envelope
msg = (b"From: alice@example.com\r\nTo: bob@example.org\r\nMessage-ID: <m1@example.com>\r\n"
       b"Subject: hello\r\n\r\nline one\r\nbare\rCR stays\r\nlast line without end")
env = envelope("alice@example.com", ["bob@example.org", "carol@example.net"],
               attrs=["ENVID=env-1", "RET=HDRS", "origin=smtp"],
               rcpt_attrs={"bob@example.org": ["NOTIFY=SUCCESS,FAILURE",
                                               "ORCPT=rfc822;bob@example.org"]})
code, status, err = inject(cfg, msg, env)
is_(code, 0, "injection exits 0")
ok(len(status) == 1 and re.fullmatch(r"K[0-9A-F]{6,}", status[0]), "fd 3 gets one K record with a queue id")
qid = status[0][1:] if status else ""
is_(ids(), [qid], "the queue file is in incoming/ under that id")
is_(dotfiles(), [], "no temporary file is left behind")
mode = stat.S_IMODE(os.stat(os.path.join(incoming, qid)).st_mode)
is_(oct(mode), oct(0o660), "the queue file is mode 0660")
r = cat(qid)
is_(r.returncode, 0, "postern queue cat parses the file")
like(r.stdout, r"^sender: alice@example\.com$", "sender is stored")
like(r.stdout, r"^recipient: bob@example\.org\nnotify_flags: SUCCESS,FAILURE$|"
     r"^recipient: bob@example\.org\noriginal_recipient: rfc822;bob@example\.org\nnotify_flags: SUCCESS,FAILURE$",
     "per-recipient attributes follow their recipient")
like(r.stdout, r"^recipient: carol@example\.net$", "second recipient is stored")
like(r.stdout, r"^named_attribute: ENVID=env-1$", "message attributes are stored")
raw = open(os.path.join(incoming, qid), "rb").read()
length_digits, rest = raw.split(b"\nM", 1)[1].split(b"\n", 1)
content = rest[:int(length_digits)].decode()
commit = rest[int(length_digits):]
is_(content, "From: alice@example.com\nTo: bob@example.org\nMessage-ID: <m1@example.com>\n"
    "Subject: hello\n\nline one\nbare\rCR stays\nlast line without end\n",
    "CRLF is stored as LF, a bare CR is kept, a last line gets its LF")
ok(raw.startswith(b"V1\nt") and re.fullmatch(rb"\nE%s [0-9A-F]{8}\n" % qid.encode(), commit),
   "the file has the version record first and the commit record (E, id, checksum) last")
log = open(os.path.join(cfg, "maillog")).read()
like(log, r"postern/queue\[\d+\]: %s: message-id=<m1@example\.com>" % qid, "the Message-ID is logged as cleanup does")

# --- the envelope written before the message; no fd 3
big = b"Subject: big\n\n" + b"".join(b"line %07d of a long message\n" % i for i in range(200000))
code, status, err = inject(cfg, big, envelope("", ["x@example.org"]), envelope_first=True)
is_(code, 0, "a 6 MB message whose envelope comes first is stored")
qid2 = status[0][1:] if status else ""
r = cat(qid2)
ok(r.returncode == 0 and r.stdout.encode().count(b"of a long message\n") == 200000,
   "its content is complete")
like(r.stdout, r"^sender: $", "the null sender is stored empty")
code, status, err = inject(cfg, b"Subject: x\n\nno status channel\n", envelope("a@b", ["c@d"]), status_fd=False)
is_((code, status), (0, []), "without fd 3 the injection works and writes no status")
like(open(os.path.join(cfg, "maillog")).read(), r"message-id=<>", "a message without Message-ID logs message-id=<>")
before = ids()

# --- bad envelopes: exit 91 (or 55 when cut short), nothing stored
bad = [
    (b"Tbob@example.org\0Falice@example.com\0\0", 91, "recipient before sender"),
    (b"Falice@example.com\0\0", 91, "no recipient"),
    (b"Falice@example.com\0Tbob@exa\nmple.org\0\0", 91, "LF inside a value"),
    (b"Falice@example.com\0PNOTIFY=NEVER\0Tbob@example.org\0\0", 91, "P record before any T"),
    (b"Falice@example.com\0Tbob@example.org\0Xwhat\0\0", 91, "unknown record type"),
    (b"Falice@example.com\0Tbob@example.org\0Anovalue\0\0", 91, "attribute without ="),
    (b"Falice@example.com\0T" + b"x" * 9000 + b"\0\0", 91, "record longer than the limit"),
    (b"Falice@example.com\0T" + b"x" * 3000 + b"\0\0", 11, "address too long (exit 11)"),
    (b"Falice@example.com\0Tbob@example.org\0", 55, "envelope cut short (temporary, 55)"),
]
for data, want, what in bad:
    code, status, err = inject(cfg, b"Subject: x\n\nbody\n", data)
    is_(code, want, f"bad envelope: {what}")
is_(ids(), before, "no bad envelope left a queue file")
is_(dotfiles(), [], "and no temporary file")

# --- message_size_limit
limited = ["-c", cfg, "-o", "message_size_limit=1000"]
body = b"Subject: s\n\n" + b"y" * 987 + b"\n"          # exactly 1000 bytes
code, status, err = inject(cfg, body, envelope("a@b", ["c@d"]), argv=[prog("postern-queue")] + limited)
is_(code, 0, "a message of exactly message_size_limit bytes is accepted")
after_ok = ids()
code, status, err = inject(cfg, body + b"z\n", envelope("a@b", ["c@d"]), argv=[prog("postern-queue")] + limited)
is_(code, 31, "one byte more exits 31")
is_(status, ["D552 5.3.4 Message size exceeds fixed maximum message size"], "with D552 5.3.4 on fd 3")
code, status, err = inject(cfg, b"Subject: s\n\n" + b"w" * 3000000, envelope("a@b", ["c@d"]),
                           envelope_first=True, argv=[prog("postern-queue")] + limited)
ok(code == 31 and status and status[0].startswith("D552"), "a much larger message is refused the same way")
is_((ids(), dotfiles()), (after_ok, []), "a refused message leaves nothing in incoming/")

# --- kill -9 in the middle of a large message
inj = Injection([prog("postern-queue"), "-c", cfg], True, None)
inj.env_w.write(envelope("a@b", ["c@d"]))
inj.env_w.flush()
chunk = b"Subject: k\n\n" + b"k" * (1 << 20)
inj.msg_w.write(chunk)
inj.msg_w.flush()
recycle = os.path.join(os.path.dirname(incoming), "recycle")


def slots_in_use():
    """Slots of recycle/ holding content (doc/queue-format.md, "Commit")."""
    return [n for n in os.listdir(recycle) if os.path.getsize(os.path.join(recycle, n)) > 0]


deadline = time.time() + 10
while time.time() < deadline and not slots_in_use():
    time.sleep(0.01)
ok(bool(slots_in_use()) and not dotfiles(), "while it runs, the message is written into a slot of recycle/")
os.kill(inj.pid, signal.SIGKILL)
code, status, err = inj.finish()
is_(code, -9, "the injector died of SIGKILL")
is_(status, [], "it acknowledged nothing")
is_(ids(), after_ok, "nothing named by an id appeared in incoming/")
left = slots_in_use()
for n in left:
    os.truncate(os.path.join(recycle, n), 0)

# --- a setgid injector does not lend its group to a configuration the caller picks
nobody = None
try:
    import pwd, grp
    nobody = pwd.getpwnam("nobody")
    setgid_group = grp.getgrnam(SETGID_GROUP)
except (KeyError, ImportError):
    pass
if os.geteuid() == 0 and nobody:
    bindir = tempdir()
    os.chmod(bindir, 0o755)
    sgid = os.path.join(bindir, "postern-queue")
    shutil.copy(prog("postern-queue"), sgid)
    os.chown(sgid, 0, setgid_group.gr_gid)
    os.chmod(sgid, 0o2755)
    os.chmod(cfg, 0o755)
    os.chmod(os.path.join(cfg, "maillog"), 0o666)
    os.chmod(os.path.join(cfg, "main.cf"), 0o644)
    r = run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             "sh", "-c", f'exec "{sgid}" -c "{cfg}" 3>&2 2>/dev/null', ], input=b"Subject: s\n\nx\n")
    is_(r.returncode, 53, "setgid postern-queue run by a user with -c DIR cannot write the queue (group dropped)")
    like(r.stderr.decode(), r"Z451 4.3.0", "and says so on fd 3")
    r = run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             "ls", incoming])
    isnt(r.returncode, 0, "a user cannot list incoming/")
else:
    skip("setgid check needs root and a nobody user", 3)
# --- a set-group-id injector with its own default configuration: a user
# queues mail through the group, the uid attribute is the real one, and -c
# keeps the group only for a directory the default main.cf lists
build = os.environ.get("POSTERN_BUILD", os.path.join(SRC, "build"))
libpostern = os.path.join(build, "libpostern.a")
cc = shutil.which("cc")
if os.geteuid() == 0 and nobody and cc and os.path.exists(libpostern):
    top = tempdir()
    os.chmod(top, 0o755)
    dirs = {}
    for name in ("default", "listed", "other"):
        d = os.path.join(top, name)
        write(os.path.join(d, "main.cf"),
              f"queue_directory = {d}/queue\ndata_directory = {d}/data\nmaillog_file = {d}/maillog\n"
              + OWNERS
              + (f"alternate_config_directories = {top}/listed\n" if name == "default" else ""))
        os.chmod(d, 0o755)
        write(os.path.join(d, "maillog"), "", 0o666)
        r = run(["postern", "queue", "-c", d, "init"])
        dirs[name] = d
    variant = os.path.join(top, "postern-queue")
    pkgs = subprocess.run(["pkg-config", "--libs", "openssl", "libsystemd", "libsasl2", "libpcre2-8",
                           "libbsd", "libpq"], capture_output=True, text=True).stdout.split()
    san = []
    if "san" in os.path.basename(build):
        # LeakSanitizer cannot trace a set-group-id process, and a
        # set-group-id process ignores ASAN_OPTIONS: switch leaks off inside
        # (the unprivileged runs above check them)
        no_leaks = write(os.path.join(top, "no_leaks.c"),
                         "const char *__asan_default_options(void);\n"
                         "const char *__asan_default_options(void) { return \"detect_leaks=0\"; }\n")
        san = ["-fsanitize=address,undefined", no_leaks]
    r = subprocess.run([cc, "-D_GNU_SOURCE",
                        *["-I" + os.path.join(SRC, d) for d in ("lib/util", "maps", "lib/conf", "lib/mail")],
                        f'-DDEF_CONFIG_DIR="{dirs["default"]}"', '-DDEF_QUEUE_DIR="/nonexistent"',
                        '-DDEF_DAEMON_DIR="/nonexistent"', '-DDEF_COMMAND_DIR="/nonexistent"',
                        '-DPOSTERN_VERSION="test"', "-std=c17", *san, "-o", variant,
                        *sorted(glob.glob(os.path.join(SRC, "bin", "postern-queue", "*.c"))),
                        libpostern, *pkgs, "-lcdb"],
                       capture_output=True, text=True)
    ok(r.returncode == 0, "a postern-queue with its own default configuration builds") or diag(r.stderr)
    os.chown(variant, 0, setgid_group.gr_gid)
    os.chmod(variant, 0o2755)

    def as_nobody(args, env_bytes, env_vars=None):
        return inject(None, b"Subject: setgid\n\nx\n", env_bytes, env_vars=env_vars,
                      argv=["/usr/bin/setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                            "--clear-groups", variant] + args)

    def stored(name):
        inc = os.path.join(dirs[name], "queue", "incoming")
        return [n for n in os.listdir(inc) if not n.startswith(".")]

    lying = envelope("a@example.com", ["b@example.org"],
                     attrs=["uid=0", "origin=local", "filter=maildrop:elsewhere",
                            "sasl_username=alice", "client_address=192.0.2.1", "verify=yes"])
    code, status, err = as_nobody([], lying)
    is_(code, 0, "a user queues mail through the set-group-id injector")
    files = stored("default")
    is_(len(files), 1, "into the default queue")
    data = open(os.path.join(dirs["default"], "queue", "incoming", files[0]), "rb").read() if files else b""
    ok(b"\nAuid=%d\n" % nobody.pw_uid in data and b"Auid=0\n" not in data,
       "the uid attribute is the user's real uid, not the one claimed")
    log = open(os.path.join(dirs["default"], "maillog")).read()
    like(log, r"warning: envelope uid=0 replaced by the real uid=%d" % nobody.pw_uid, "the false claim is logged")
    ok(b"Afilter=" not in data, "a user's FILTER (route through any transport) is not stored")
    ok(b"Asasl_username=" not in data and b"Aclient_address=" not in data,
       "nor a user's claim of an SMTP client or a SASL login (pipe's ${sasl_username})")
    like(log, r"warning: FILTER maildrop:elsewhere from uid %d ignored: only a trusted submitter may route mail"
         % nobody.pw_uid, "and its dropping is logged")
    like(log, r"uid=%d from=<a@example\.com>" % nobody.pw_uid, "and the submission as pickup logs it")
    ok(b"Averify=" not in data, "a user's address verification probe mark (verify=yes) is not stored")
    like(log, r"warning: address verification probe from uid %d ignored: only the verify service may submit probes"
         % nobody.pw_uid, "and its dropping is logged")
    # sendmail -bv's mark (verify=report) stays: it feeds no cache, and its
    # report goes to the sender, as the user's mail may
    before = set(stored("default"))
    code, status, err = as_nobody([], envelope("a@example.com", ["b@example.org"], attrs=["verify=report"]))
    new_files = sorted(set(stored("default")) - before)
    data = open(os.path.join(dirs["default"], "queue", "incoming", new_files[0]), "rb").read() if new_files else b""
    ok(code == 0 and b"\nAverify=report\n" in data, "a user's sendmail -bv (verify=report) is kept")
    for n in new_files:
        os.unlink(os.path.join(dirs["default"], "queue", "incoming", n))
    mail_owner = pwd.getpwnam(MAIL_OWNER)
    # (its group is not setgid_group, as the units' postern is not in
    # postern-drop by its primary group: the injector runs set-group-id)
    probe = envelope("double-bounce@example.com", ["b@example.org"], attrs=["verify=yes"])
    before = set(stored("default"))
    code, status, err = inject(None, b"Subject: probe\n\n", probe,
                               argv=["/usr/bin/setpriv", f"--reuid={mail_owner.pw_uid}", f"--regid={nobody.pw_gid}",
                                     "--clear-groups", variant])
    new_files = sorted(set(stored("default")) - before)
    data = open(os.path.join(dirs["default"], "queue", "incoming", new_files[0]), "rb").read() if new_files else b""
    ok(code == 0 and b"Averify=yes" in data,
       "mail_owner (postern-verify's user; the owner of active/) may queue a probe through the same injector") \
        or diag((code, status, err, open(os.path.join(dirs["default"], "maillog")).read()[-600:]))
    for n in new_files:
        os.unlink(os.path.join(dirs["default"], "queue", "incoming", n))
    forged = envelope("f@example.com", ["b@example.org"],
                      attrs=["origin=smtp", "log_client=mx.forged.example[192.0.2.9]", "log_pid=1"])
    code, status, err = as_nobody([], forged)
    log = open(os.path.join(dirs["default"], "maillog")).read()
    like(log, r"postern/smtpd\[\d+\]: \w+: client=mx\.forged\.example\[192\.0\.2\.9\], uid=%d\n"
         % nobody.pw_uid, "a client= line an untrusted caller asks for names its real uid")
    checked = envelope("g@example.com", ["b@example.org"],
                       attrs=["log_line=reject: header Subject: x from mx.example[192.0.2.7]; from=<g@example.com>",
                              "discard=no"])
    code, status, err = as_nobody([], checked)
    is_(code, 0, "a user's envelope with a check's log line and discard=no is queued")
    log = open(os.path.join(dirs["default"], "maillog")).read()
    like(log, r": reject: header Subject: x from mx\.example\[192\.0\.2\.7\]; from=<g@example\.com>, uid=%d\n"
         % nobody.pw_uid, "a check's line an untrusted caller sends names its real uid")
    is_(len(stored("default")), 3, "discard= with a value other than yes stores the message")
    code, status, err = as_nobody(["-c", dirs["listed"]], envelope("a@b", ["c@d"]))
    is_((code, len(stored("listed"))), (0, 1), "-c with a directory listed in alternate_config_directories keeps the group")
    code, status, err = as_nobody(["-c", dirs["other"]], envelope("a@b", ["c@d"]))
    is_((code, stored("other")), (53, []), "-c with any other directory drops it")
    code, status, err = as_nobody([], envelope("a@b", ["c@d"]), env_vars={"POSTERN_CONFIG_DIR": dirs["other"]})
    is_((code, stored("other")), (53, []), "so does POSTERN_CONFIG_DIR")
else:
    skip("needs root, a nobody user, cc and the build's libpostern.a", 15)
done()
