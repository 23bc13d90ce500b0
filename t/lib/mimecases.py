"""mimecases.py - the MIME error cases that t/39-mime-errors.t sends to
postern and bench/postfix-mime-probe sent to the real Postfix 3.7 (its
answers are t/data/postfix-3.7-mime-errors.txt): a name, the main.cf
settings (on top of BASE), the message (CRLF lines), MAIL options."""

BASE = ["strict_7bit_headers=no", "strict_8bitmime=no", "strict_8bitmime_body=no",
        "strict_mime_encoding_domain=no", "mime_nesting_limit=100", "header_checks=",
        "mime_boundary_length_limit=2048", "header_size_limit=102400",
        "disable_mime_input_processing=no"]

H8 = b"Subject: caf\xc3\xa9\r\n\r\nplain\r\n"
B8 = b"Subject: b\r\n\r\ncaf\xc3\xa9 body\r\n"
B8_CTE = b"Subject: b\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 body\r\n"
MP_B64 = (b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--\r\n")
MSG_QP = (b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
          b"--B\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
          b"Subject: inner\r\n\r\ny\r\n--B--\r\n")
PART8 = (b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
         b"--B\r\nContent-Type: text/plain\r\nX-Note: caf\xc3\xa9\r\n\r\nbody caf\xc3\xa9\r\n--B--\r\n")
BL = (b"Subject: bl\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"AAAAAAAAAAouter\"\r\n\r\n"
      b"--AAAAAAAAAAouter\r\nContent-Type: text/plain\r\n\r\nline\r\n--AAAAAAAAAAfake\r\nX-Fake: 1\r\n\r\n"
      b"more\r\n--AAAAAAAAAAouter--\r\n")
NEST8 = b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner caf\xc3\xa9\r\n\r\ny\r\n"
ALL = (b"Subject: caf\xc3\xa9\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n--B\r\n\r\nx\xc3\xa9\r\n--B--\r\n")
QP8 = b"Subject: q\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf\xc3\xa9\r\n"
BIN8 = b"Subject: q\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\ncaf\xc3\xa9\r\n"
MP8 = (b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--\r\n")
H8C = b"Subject: plain\r\n continued caf\xc3\xa9\r\n\r\nbody\r\n"
# multipart/digest: a part without Content-Type is message/rfc822 (RFC 2046
# 5.1.5), so its lines after the empty part header are a nested message's
# header; the second part says text/plain, so its lines are body
DIGEST = (b"Subject: d\r\nMIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=\"D\"\r\n\r\n"
          b"--D\r\n\r\nSubject: inner\r\nX-Inner: 1\r\n\r\nbody 1\r\n"
          b"--D\r\nContent-Type: text/plain\r\n\r\nX-Plain: 2\r\n--D--\r\n")
DIGEST8 = DIGEST.replace(b"Subject: inner", b"Subject: inner caf\xc3\xa9")


def digest_nest(explicit):
    """a digest whose part (message/rfc822 by default, or said) holds a
    message of three multiparts, each the first part of the one before:
    four multiparts in all"""
    ct = b"Content-Type: message/rfc822\r\n" if explicit else b""
    return (b"Subject: dn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=\"D\"\r\n\r\n"
            b"--D\r\n" + ct + b"\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"M\"\r\n\r\n"
            b"--M\r\nContent-Type: multipart/mixed; boundary=\"N\"\r\n\r\n"
            b"--N\r\nContent-Type: multipart/mixed; boundary=\"O\"\r\n\r\n"
            b"--O\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--O--\r\n--N--\r\n--M--\r\n--D--\r\n")


BIG = b"Subject: s\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\nbody\r\n"


def nest(n):
    """n multiparts, each the first part of the one before."""
    out = b"Subject: n\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"
    for i in range(1, n):
        out += b"--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n" % (i - 1, i)
    out += b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % (n - 1)
    for i in reversed(range(n)):
        out += b"--b%d--\r\n" % i
    return out


# HC: a header_checks table the case writes first ({hc} in settings)
CASES = [
    ("8-bit Subject, defaults", [], H8, ()),
    ("8-bit Subject, strict_7bit_headers", ["strict_7bit_headers=yes"], H8, ()),
    ("8-bit Subject, strict_8bitmime", ["strict_8bitmime=yes"], H8, ()),
    ("8-bit body, no CTE, strict_8bitmime_body", ["strict_8bitmime_body=yes"], B8, ()),
    ("8-bit body, no CTE, strict_8bitmime_body, BODY=8BITMIME", ["strict_8bitmime_body=yes"], B8,
     ("BODY=8BITMIME",)),
    ("8-bit body, CTE 8bit, strict_8bitmime", ["strict_8bitmime=yes"], B8_CTE, ()),
    ("8-bit body, no CTE, strict_8bitmime", ["strict_8bitmime=yes"], B8, ()),
    ("8-bit body, no CTE, strict_7bit_headers only", ["strict_7bit_headers=yes"], B8, ()),
    ("multipart base64, defaults", [], MP_B64, ()),
    ("multipart base64, strict_mime_encoding_domain", ["strict_mime_encoding_domain=yes"], MP_B64, ()),
    ("message/rfc822 quoted-printable, strict_mime_encoding_domain", ["strict_mime_encoding_domain=yes"],
     MSG_QP, ()),
    ("8-bit part header, strict_7bit_headers", ["strict_7bit_headers=yes"], PART8, ()),
    ("8-bit part body, strict_8bitmime_body", ["strict_8bitmime_body=yes"], PART8, ()),
    ("8-bit nested message header, strict_7bit_headers", ["strict_7bit_headers=yes"], NEST8, ()),
    ("8-bit header + encoding domain + 8-bit body, all strict",
     ["strict_8bitmime=yes", "strict_mime_encoding_domain=yes"], ALL, ()),
    ("disable_mime_input_processing=yes, strict_8bitmime, 8-bit header",
     ["disable_mime_input_processing=yes", "strict_8bitmime=yes"], H8, ()),
    ("8-bit body, CTE quoted-printable, strict_8bitmime_body", ["strict_8bitmime_body=yes"], QP8, ()),
    ("8-bit body, CTE binary, strict_8bitmime_body", ["strict_8bitmime_body=yes"], BIN8, ()),
    ("multipart 8bit, strict_mime_encoding_domain", ["strict_mime_encoding_domain=yes"], MP8, ()),
    ("multipart BASE64 (case), strict_mime_encoding_domain", ["strict_mime_encoding_domain=yes"],
     MP_B64.replace(b"base64", b"BASE64"), ()),
    ("8-bit folded header continuation, strict_7bit_headers", ["strict_7bit_headers=yes"], H8C, ()),
    ("header_checks REJECT then 8-bit body error", ["header_checks=regexp:{hc}", "strict_8bitmime_body=yes"],
     B8, (), "/^Subject:/ REJECT subject rejected\n"),
    ("nesting 4 > mime_nesting_limit 3, no checks", ["mime_nesting_limit=3"], nest(4), ()),
    ("nesting 3, mime_nesting_limit 1", ["mime_nesting_limit=1", "header_checks=regexp:{hc}"], nest(3), (), ""),
    ("nesting 4, mime_nesting_limit 1", ["mime_nesting_limit=1", "header_checks=regexp:{hc}"], nest(4), (), ""),
    ("nesting 4, mime_nesting_limit 2", ["mime_nesting_limit=2", "header_checks=regexp:{hc}"], nest(4), (), ""),
    ("nesting 5, mime_nesting_limit 2", ["mime_nesting_limit=2", "header_checks=regexp:{hc}"], nest(5), (), ""),
    ("nesting 5, mime_nesting_limit 3", ["mime_nesting_limit=3", "header_checks=regexp:{hc}"], nest(5), (), ""),
    ("nesting 6, mime_nesting_limit 3", ["mime_nesting_limit=3", "header_checks=regexp:{hc}"], nest(6), (), ""),
    ("nesting 4, mime_nesting_limit 1, strict_8bitmime_body (no header checks)",
     ["mime_nesting_limit=1", "strict_8bitmime_body=yes"], nest(4), ()),
    ("boundary prefix, default mime_boundary_length_limit", ["header_checks=regexp:{hc}"], BL, (),
     "/^X-Fake:/ REJECT fake part header seen\n"),
    ("boundary prefix, mime_boundary_length_limit=10",
     ["header_checks=regexp:{hc}", "mime_boundary_length_limit=10"], BL, (),
     "/^X-Fake:/ REJECT fake part header seen\n"),
    ("header 3000 bytes > header_size_limit 2000", ["header_size_limit=2000"], BIG, ()),
    ("header 3000 bytes > header_size_limit 2000, strict_8bitmime",
     ["header_size_limit=2000", "strict_8bitmime=yes"], BIG, ()),
    # multipart/digest (after the others: they set nested_header_checks
    # and body_checks, which BASE does not reset)
    ("digest part without Content-Type, nested_header_checks",
     ["nested_header_checks=regexp:{hc}", "body_checks="], DIGEST, (), "/^X-Inner:/ REJECT nested header seen\n"),
    ("digest part without Content-Type, body_checks",
     ["nested_header_checks=", "body_checks=regexp:{hc}"], DIGEST, (), "/^X-Inner:/ REJECT body line seen\n"),
    ("digest part with Content-Type text/plain, body_checks",
     ["nested_header_checks=", "body_checks=regexp:{hc}"], DIGEST, (), "/^X-Plain:/ REJECT body line seen\n"),
    ("digest part without Content-Type, 8-bit header, strict_7bit_headers",
     ["nested_header_checks=", "body_checks=", "strict_7bit_headers=yes"], DIGEST8, ()),
    ("digest part without Content-Type, 8-bit header, strict_8bitmime_body",
     ["nested_header_checks=", "body_checks=", "strict_8bitmime_body=yes"], DIGEST8, ()),
    ("digest nesting, part without Content-Type, mime_nesting_limit 1",
     ["nested_header_checks=", "body_checks=", "mime_nesting_limit=1", "header_checks=regexp:{hc}"],
     digest_nest(False), (), ""),
    ("digest nesting, part message/rfc822, mime_nesting_limit 1",
     ["nested_header_checks=", "body_checks=", "mime_nesting_limit=1", "header_checks=regexp:{hc}"],
     digest_nest(True), (), ""),
    ("digest nesting, part without Content-Type, mime_nesting_limit 3",
     ["nested_header_checks=", "body_checks=", "mime_nesting_limit=3", "header_checks=regexp:{hc}"],
     digest_nest(False), (), ""),
    ("digest nesting, part message/rfc822, mime_nesting_limit 3",
     ["nested_header_checks=", "body_checks=", "mime_nesting_limit=3", "header_checks=regexp:{hc}"],
     digest_nest(True), (), ""),
]
