"""lookupclient.py - the lookup service's protocol, raw (doc/lookup.md),
for the tests that speak it: requests are "L" TABLE NUL OPTIONS NUL KEY
NUL, answers STATUS TEXT NUL."""
import socket


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def answers(s, count):
    """The next count answers ("Fvalue", "N", ...); fewer at EOF."""
    got, buf = [], b""
    while len(got) < count:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while b"\0" in buf and len(got) < count:
            rec, buf = buf.split(b"\0", 1)
            got.append(rec.decode(errors="replace"))
    return got


def req(table, key, options=""):
    return b"L" + table.encode() + b"\0" + options.encode() + b"\0" + key.encode() + b"\0"
