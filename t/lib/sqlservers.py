"""sqlservers.py - real database servers for the SQL table tests
(t/26-pgsql.t, t/27-mysql.t): a PostgreSQL cluster (initdb, pg_ctl) or a
MariaDB server (mariadb-install-db, mariadbd) in a temporary directory,
on a unix socket there and a loopback port, run as an unprivileged user
when the test runs as root, and stopped at exit by the PID it wrote.
The postfixadmin-style schema (domain, mailbox, alias with active and
backupmx flags) is the same for both."""
import atexit
import os
import pwd
import shutil
import signal
import subprocess
import time

import tap

PG_BIN = "/usr/lib/postgresql/15/bin"

SCHEMA = """
CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, description VARCHAR(255) NOT NULL DEFAULT '',
                     backupmx BOOLEAN NOT NULL DEFAULT FALSE, active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, email VARCHAR(255), maildir VARCHAR(255),
                      quota BIGINT NOT NULL DEFAULT 0, local_part VARCHAR(255), domain VARCHAR(255),
                      uid INTEGER, active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE alias (address VARCHAR(255) PRIMARY KEY, goto TEXT, domain VARCHAR(255),
                    active BOOLEAN NOT NULL DEFAULT TRUE);
"""


def _runner_user():
    """The user the server runs as: postgres/mysql or nobody when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "mysql", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _as_user(user, argv):
    if user is None:
        return argv
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--"] + argv


def _own(path, user):
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), user.pw_uid, user.pw_gid)


def rows(mailuid):
    """The test data: example.com hosted here, backup.example relayed
    (backupmx), aliases one-to-many; a mailbox whose name holds a quote and
    a backslash; seed 000's largest quota."""
    return [
        ("domain", ("example.com", "hosted here", False, True)),
        ("domain", ("backup.example", "backup MX for backup.example", True, True)),
        ("domain", ("off.example", "inactive", True, False)),
        ("mailbox", ("alice@example.com", "alice@example.com", "example.com/alice/", 9223372036854774784,
                     "alice", "example.com", mailuid, True)),
        ("mailbox", ("bob@example.com", "bob@example.com", "example.com/bob/", 2,
                     "bob", "example.com", mailuid, True)),
        ("mailbox", ("gone@example.com", "gone@example.com", "example.com/gone/", 0,
                     "gone", "example.com", mailuid, False)),
        ("mailbox", ("o'brien\\x@example.com", "o'brien\\x@example.com", "example.com/obrien/", 0,
                     "o'brien\\x", "example.com", mailuid, True)),
        ("alias", ("info@example.com", "alice@example.com,bob@example.com", "example.com", True)),
        ("alias", ("sales@example.com", "bob@example.com", "example.com", True)),
        ("alias", ("known@backup.example", "known@backup.example", "backup.example", True)),
        ("alias", ("off@backup.example", "off@backup.example", "backup.example", False)),
    ]


def sql_literal(v, booleans="pg"):
    if isinstance(v, bool):
        return ("TRUE" if v else "FALSE") if booleans == "pg" else ("1" if v else "0")
    if isinstance(v, int):
        return str(v)
    s = v.replace("'", "''")
    if booleans != "pg":
        s = s.replace("\\", "\\\\")
    return "'" + s + "'"


def inserts(mailuid, booleans="pg"):
    out = []
    for table, values in rows(mailuid):
        out.append("INSERT INTO %s VALUES (%s);" % (table, ", ".join(sql_literal(v, booleans) for v in values)))
    return "\n".join(out) + "\n"


class Postgres:
    """A PostgreSQL 15 cluster: role postfix with password "$password"
    (seed 000's .cf files as written), database postfix."""

    def __init__(self):
        tap.require(tools=[os.path.join(PG_BIN, "initdb"), os.path.join(PG_BIN, "pg_ctl"), "psql"])
        self._make_dirs(_runner_user(), "postern-pg-")
        r = tap.run(_as_user(self.user, [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                                         "--auth-local=trust", "--auth-host=scram-sha-256",
                                         "-E", "UTF8", "--locale=C"]), timeout=120)
        if r.returncode != 0:
            raise RuntimeError("initdb: " + r.stderr)
        atexit.register(self.stop)
        self.start()
        self.psql("CREATE ROLE postfix LOGIN PASSWORD '$password';"
                  "CREATE DATABASE postfix OWNER postfix;", db="postgres")
        self.psql(SCHEMA + "ALTER TABLE domain OWNER TO postfix; ALTER TABLE mailbox OWNER TO postfix;"
                  "ALTER TABLE alias OWNER TO postfix;")

    def _make_dirs(self, user, prefix):
        """The cluster's directory (data, run for the socket) owned by user,
        and a free port."""
        self.user = user
        parent = tap.tempdir(prefix)
        os.chmod(parent, 0o755)
        self.dir = os.path.join(parent, "pg")
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = os.path.join(self.dir, "run")
        os.makedirs(self.socket_dir)
        _own(self.dir, self.user)
        self.port = tap.free_port()

    def start(self):
        opts = (f"-k {self.socket_dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=50 -c shared_buffers=16MB")
        r = tap.run(_as_user(self.user, [os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-o", opts,
                                         "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start"]),
                    timeout=90)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start: " + r.stderr + open(os.path.join(self.dir, "log")).read())

    def pid(self):
        try:
            return int(open(os.path.join(self.data, "postmaster.pid")).readline())
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stop the postmaster this test started (by the PID it wrote)."""
        pid = self.pid()
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGINT)     # fast shutdown
        except ProcessLookupError:
            return
        end = time.time() + 60
        while time.time() < end and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)

    def psql(self, sql, db="postfix"):
        r = tap.run(_as_user(self.user, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                                         "-p", str(self.port), "-U", "postgres", "-d", db, "-At"]),
                    input=sql, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr)
        return r.stdout

    def replica(self):
        """A streaming read replica of this cluster (pg_basebackup -R), on
        its own socket directory and port: PostgreSQL's own replication."""
        return PostgresReplica(self)

    def connections(self):
        """Client connections of the database postfix now."""
        return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'postfix' "
                             "AND pid <> pg_backend_pid();", db="postgres").strip())


class PostgresReplica(Postgres):
    """A hot standby of a Postgres (see Postgres.replica)."""

    def __init__(self, primary):
        self._make_dirs(primary.user, "postern-pgr-")
        r = tap.run(_as_user(self.user, [os.path.join(PG_BIN, "pg_basebackup"), "-h", primary.socket_dir,
                                         "-p", str(primary.port), "-U", "postgres", "-D", self.data, "-R",
                                         "-X", "stream", "-c", "fast"]), timeout=180)
        if r.returncode != 0:
            raise RuntimeError("pg_basebackup: " + r.stderr)
        atexit.register(self.stop)
        self.start()


class MariaDB:
    """A MariaDB server: user postfix with password "$password", database
    postfix, on a socket and a loopback port; with tls=(cert, key), it
    offers TLS with that certificate too."""

    def __init__(self, tls=None):
        self.tls = tls
        tap.require(tools=["mariadb-install-db", "mariadbd", "mariadb"])
        self.user = _runner_user()
        parent = tap.tempdir("postern-my-")
        os.chmod(parent, 0o755)
        self.dir = os.path.join(parent, "my")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.pidfile = os.path.join(self.dir, "mysqld.pid")
        _own(self.dir, self.user)
        self.port = tap.free_port()
        user_opt = [f"--user={self.user.pw_name}"] if self.user else []
        r = tap.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=normal",
                     "--skip-test-db"] + user_opt, timeout=180)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db: " + r.stdout + r.stderr)
        atexit.register(self.stop)
        self.start()
        self.sql("CREATE DATABASE postfix; CREATE USER 'postfix'@'localhost' IDENTIFIED BY '$password';"
                 "CREATE USER 'postfix'@'127.0.0.1' IDENTIFIED BY '$password';"
                 "GRANT SELECT ON postfix.* TO 'postfix'@'localhost';"
                 "GRANT SELECT ON postfix.* TO 'postfix'@'127.0.0.1';", db=None)
        self.sql(SCHEMA)

    def start(self):
        user_opt = [f"--user={self.user.pw_name}"] if self.user else []
        self.proc = tap.start(["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket}",
                               f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.pidfile}",
                               "--skip-log-bin", "--innodb-buffer-pool-size=16M",
                               f"--log-error={self.dir}/error.log"] + user_opt
                              + ([f"--ssl-cert={self.tls[0]}", f"--ssl-key={self.tls[1]}"] if self.tls else []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not tap.wait_until(lambda: os.path.exists(self.socket) and self._ping(), timeout=90):
            raise RuntimeError("mariadbd did not start: " + open(f"{self.dir}/error.log").read())

    def _ping(self):
        r = tap.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", "SELECT 1"], timeout=30)
        return r.returncode == 0

    def stop(self):
        p = getattr(self, "proc", None)
        if p is not None and p.poll() is None:
            tap.stop(p, timeout=60)

    def sql(self, sql, db="postfix"):
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B"]
        if db:
            argv.append(db)
        r = tap.run(argv, input=sql, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("mariadb: " + r.stderr)
        return r.stdout


def map_query(config_dir, key, table):
    """`postern map -c DIR -q KEY TABLE`: (exit code, stdout, stderr)."""
    r = tap.run(["postern", "map", "-c", config_dir, "-q", key, table], timeout=120)
    return r.returncode, r.stdout.strip(), r.stderr


def instance_with_tables(settings):
    """A started postern instance (instance.new_instance) whose main.cf
    gets SETTINGS (a dict) in place of its virtual mailbox settings;
    returns (instance, its SMTP port)."""
    import re
    from instance import new_instance
    inst = new_instance("--domain", "example.com")
    port = int(re.search(r"127\.0\.0\.1:(\d+)", open(os.path.join(inst.dir, "master.cf")).read()).group(1))
    maincf = os.path.join(inst.dir, "main.cf")
    text = open(maincf).read()
    settings = dict({"mydestination": "", "myorigin": "example.com", "mynetworks": "192.0.2.1/32"}, **settings)
    for name in settings:
        text = re.sub(rf"(?m)^{name} = .*\n", "", text)
    text += "".join(f"{k} = {v}\n" for k, v in settings.items())
    tap.write(maincf, text)
    r = inst.start()
    tap.is_(r.returncode, 0, "postern start with SQL tables") or tap.diag(r.stderr)
    return inst, port
