"""eightbitcases.py - the 8-bit to 7-bit conversion cases that
t/66-smtp-8bit.t relays through postern-smtp and bench/postfix-8bit-probe
relayed through the real Postfix 3.7 to smtp-sink (its results are
t/data/postfix-3.7-8bit.txt): a name, the main.cf settings (on top of
BASE), the message (CRLF lines), MAIL options given to the MTA, and
whether the receiving server announces 8BITMIME.

Each message has its own Date, Message-ID, From and To, so neither MTA
adds headers; only the MTA's own Received: header comes first."""

BASE = ["disable_mime_output_conversion=no", "mime_nesting_limit=100"]

HEAD = (b"From: a@example.org\r\nTo: rcpt@example.net\r\n"
        b"Date: Mon, 7 Dec 2026 05:00:00 +0000\r\n")


def msg(n, rest):
    return HEAD + b"Message-ID: <case%d@example.org>\r\n" % n + rest


E = b"caf\xc3\xa9"          # "cafe" with an accent, UTF-8

# a text part declared 8bit: every quoted-printable rule in one body
TEXT8 = msg(1, b"Subject: text 8bit\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            b"X-After: header after the encoding\r\n\r\n"
            b"plain " + E + b" line\r\n"
            b"equals = sign and\ttab\r\n"
            b"trailing space \r\n"
            b"trailing tab\t\r\n"
            b".a line with a leading dot " + E + b"\r\n"
            b"From the start of a line\r\n"
            + b"x" * 72 + E + b"\r\n"
            + b"y" * 73 + b"\r\n"
            + E * 40 + b"\r\n"
            b"\r\n"
            b"del \x7f and ctrl \x01 end\r\n")
BINARY = msg(2, b"Subject: binary\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
             b"Content-Transfer-Encoding: binary\r\n\r\nbinary " + E + b"\r\n")
PLAIN8 = msg(3, b"Subject: no MIME\r\n\r\nundeclared " + E + b" body\r\n")
MULTI = msg(4, b"Subject: multipart\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"XX\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"preamble " + E + b"\r\n"
            b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"part one " + E + b"\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"AAECAwQF\r\n"
            b"--XX\r\nContent-Type: text/plain\r\n\r\nseven bit part with " + E + b"\r\n"
            b"--XX\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 8BIT\r\n\r\n"
            b"<p>" + E + b"</p>\r\n"
            b"--XX--\r\nepilogue " + E + b"\r\n")
NESTED = msg(5, b"Subject: attached\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n"
             b"--OUT\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
             b"--OUT\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             b"Subject: inner " + E + b"\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             b"inner body " + E + b"\r\n"
             b"--OUT--\r\n")
HEADER8 = msg(6, b"Subject: " + E + b" in the header\r\nMIME-Version: 1.0\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\nbody " + E + b"\r\n")
ODD = msg(7, b"Subject: odd\r\nMIME-Version: 1.0\r\nX-Spaced : before the colon\r\n"
          b"Content-Type: multipart/mixed; boundary=\"P\"\r\n\r\n"
          b"--P\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n"
          b"this line ends the part header " + E + b"\r\nsecond line\r\n"
          b"--P--\r\n")
PARTIAL = msg(8, b"Subject: partial\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: message/partial; id=\"x\"; number=1\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\npartial " + E + b"\r\n")

# multipart/digest: its parts without Content-Type are message/rfc822
# (RFC 2046 5.1.5), so the first part's message declares its own 8bit text
DIGEST8 = msg(10, b"Subject: digest\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/digest; boundary=\"DG\"\r\n\r\n"
              b"--DG\r\n\r\nSubject: first\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
              b"first body " + E + b"\r\n"
              b"--DG\r\n\r\nSubject: second\r\n\r\nsecond body\r\n"
              b"--DG--\r\n")


def nest(n):
    """n multiparts, each the first part of the one before, the innermost
    text declared 8bit."""
    out = msg(9, b"Subject: deep\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
    for i in range(1, n):
        out += b"--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n" % (i - 1, i)
    out += b"--b%d\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" % (n - 1)
    out += b"deep " + E + b"\r\n"
    for i in reversed(range(n)):
        out += b"--b%d--\r\n" % i
    return out


# name, settings, message, MAIL options, the server announces 8BITMIME
CASES = [
    ("text 8bit", [], TEXT8, (), False),
    ("text 8bit, BODY=8BITMIME", [], TEXT8, ("BODY=8BITMIME",), False),
    ("text 8bit, BODY=7BIT", [], TEXT8, ("BODY=7BIT",), False),
    ("text 8bit, server with 8BITMIME", [], TEXT8, ("BODY=8BITMIME",), True),
    ("text 8bit, disable_mime_output_conversion", ["disable_mime_output_conversion=yes"], TEXT8,
     ("BODY=8BITMIME",), False),
    ("binary", [], BINARY, (), False),
    ("undeclared 8-bit body", [], PLAIN8, (), False),
    ("multipart", [], MULTI, (), False),
    ("message/rfc822 in a multipart", [], NESTED, (), False),
    ("8-bit header", [], HEADER8, (), False),
    ("odd headers", [], ODD, (), False),
    ("message/partial 8bit", [], PARTIAL, (), False),
    ("nesting over mime_nesting_limit", ["mime_nesting_limit=3"], nest(6), (), False),
    ("nesting within mime_nesting_limit", ["mime_nesting_limit=3"], nest(3), (), False),
    ("multipart/digest, parts without Content-Type", [], DIGEST8, (), False),
]
