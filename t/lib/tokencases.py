"""tokencases.py - header_address_token_limit cases: the To: header sent
and the limits tried, by t/62-token-limit.t (SMTP) and t/62-token-limit-t.t
(sendmail -t) against postern and by bench/postfix-token-probe against the
real Postfix 3.7 (its results: t/data/postfix-3.7-token-limit.txt).  Every
limit from 1 to 24 and 10240: the cut falls between addresses, after a
whole word, and inside addresses, where Postfix's parser makes addresses
of the pieces ("Old@host, \"Friend <old\"@example")."""

# tokens: Old Friend < old @ example . com > , x @ example . org , (note) y , "Q Z" < z ...
TO = 'Old Friend <old@example.com>, x@example.org, (note) y, "Q Z" <z@example.net>'
LIMITS = list(range(1, 25)) + [10240]
