/* addrmatch_test.c - unit test of client address-match lists
 * (lib/conf/addrmatch.c): IPv4 and IPv6 networks, brackets, IPv4-mapped
 * addresses, negation, host names and domains, /file lists, tables, a
 * failing table, and malformed items refused with a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addrmatch.h"
#include "config.h"
#include "strbuf.h"
#include "tap.h"

/* One list against one client: the expected answer (1, 0, -1). */
static void match(const char *list_text, const char *name, const char *addr, int want)
{
    struct strbuf err = STRBUF_INIT;
    struct addrmatch *list = addrmatch_open("mynetworks", list_text, &err);
    if (!ok(list != NULL, "open \"%s\"", list_text)) {
        diag("error", strbuf_str(&err));
        strbuf_free(&err);
        return;
    }
    int got = addrmatch_match(list, name, addr);
    if (!ok(got == want, "\"%s\" vs %s[%s] -> %d", list_text, name, addr, want))
        printf("#   got %d\n", got);
    addrmatch_free(list);
    strbuf_free(&err);
}

/* A malformed list is refused with a message naming the parameter. */
static void refuse(const char *list_text, const char *want_in_message)
{
    struct strbuf err = STRBUF_INIT;
    struct addrmatch *list = addrmatch_open("mynetworks", list_text, &err);
    ok(list == NULL, "refused: \"%s\"", list_text);
    if (!ok(strstr(strbuf_str(&err), want_in_message) != NULL, "message says \"%s\"", want_in_message))
        diag("message", strbuf_str(&err));
    addrmatch_free(list);
    strbuf_free(&err);
}

int main(void)
{
    config_load(1);
    char dir[] = "/tmp/postern-addrmatch-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char file[128], spec[160];
    snprintf(file, sizeof file, "%s/nets", dir);
    FILE *f = fopen(file, "w");
    if (!f)
        return 2;
    fputs("# our networks\n192.0.2.0/24 10.0.0.0/8  # inline comment\n[2001:db8::]/32\n", f);
    fclose(f);

    match("127.0.0.0/8", "unknown", "127.0.0.1", 1);
    match("127.0.0.0/8", "unknown", "128.0.0.1", 0);
    match("192.0.2.0/25", "unknown", "192.0.2.127", 1);
    match("192.0.2.0/25", "unknown", "192.0.2.128", 0);
    match("0.0.0.0/0", "unknown", "203.0.113.9", 1);
    match("192.0.2.1", "unknown", "192.0.2.1", 1);
    match("[::1]/128", "unknown", "::1", 1);
    match("::1", "unknown", "[::1]", 1);
    match("[2001:db8::]/32", "unknown", "2001:db8:ffff::1", 1);
    match("[2001:db8::]/32", "unknown", "2001:db9::1", 0);
    match("127.0.0.0/8", "unknown", "::ffff:127.0.0.5", 1);
    match("[::1]/128", "unknown", "127.0.0.1", 0);
    match("!192.0.2.7, 192.0.2.0/24", "unknown", "192.0.2.7", 0);
    match("!192.0.2.7, 192.0.2.0/24", "unknown", "192.0.2.8", 1);
    match("mail.example.com", "Mail.Example.COM", "192.0.2.1", 1);
    match(".example.com", "a.b.example.com", "192.0.2.1", 1);
    match(".example.com", "example.com", "192.0.2.1", 0);
    match("example.com", "sub.example.com", "192.0.2.1", 1);   /* mynetworks is in parent_domain_matches_subdomains */
    match("example.com", "unknown", "192.0.2.1", 0);
    match(file, "unknown", "10.9.8.7", 1);
    match(file, "unknown", "2001:db8::25", 1);
    match(file, "unknown", "198.51.100.1", 0);
    snprintf(spec, sizeof spec, "inline:{ 192.0.2.9=yes }, 10.0.0.0/8");
    match(spec, "unknown", "192.0.2.9", 1);
    match(spec, "unknown", "192.0.2.10", 0);
    match("cidr:{ {198.51.100.0/24 ok} }", "unknown", "198.51.100.200", 1);
    match("fail:down, 10.0.0.0/8", "unknown", "10.0.0.1", -1);
    match("10.0.0.0/8, fail:down", "unknown", "10.0.0.1", 1);

    refuse("127.0.0.1/8", "non-null host address bits");
    refuse("10.0.0.0/33", "bad address pattern");
    refuse("[::1]/129", "bad address pattern");
    refuse("/nonexistent/file", "open /nonexistent/file");
    refuse("nosuchtype:foo", "mynetworks");

    char out[64];
    is_int(addr_normalize("::ffff:192.0.2.1", out, sizeof out), 0, "normalize a mapped address");
    is_str(out, "192.0.2.1", "mapped address is IPv4");
    is_int(addr_normalize("[2001:DB8::1]", out, sizeof out), 0, "normalize a bracketed IPv6 address");
    is_str(out, "2001:db8::1", "IPv6 in its compressed lower-case form");
    is_int(addr_normalize("example.com", out, sizeof out), -1, "a name is not an address");

    unlink(file);
    rmdir(dir);
    return tap_done();
}
