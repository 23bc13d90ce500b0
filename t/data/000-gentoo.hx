pgsql:/etc/postfix/pgsql/relay_domains.cf
20971520
