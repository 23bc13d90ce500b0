"""tokencases.py - header_address_token_limit cases: the To: header sent
and the limits tried, by t/62-token-limit.t against postern and by
bench/postfix-token-probe against the real Postfix 3.7 (its results:
t/data/postfix-3.7-token-limit.txt).  The limits cut the header between
addresses or after a whole word: inside an address Postfix's parser makes
addresses of the pieces ("Old@host, \"Friend <\"@host"), which postern
does not imitate."""

# tokens: Old Friend < old @ example . com > , x @ example . org , (note) y , "Q Z" < z ...
TO = 'Old Friend <old@example.com>, x@example.org, (note) y, "Q Z" <z@example.net>'
LIMITS = [9, 10, 11, 15, 16, 18, 10240]
