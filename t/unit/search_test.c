/* search_test.c - unit test of Postfix's search orders (maps/search.c):
 * addresses (virtual(5)/canonical(5) order and access(5) order), domains
 * with and without parent_domain_matches_subdomains, client IP prefixes,
 * pattern tables seeing whole keys only, and "try again" ending a search.
 * Tables are texthash, pcre and cidr files in a temporary directory, and
 * fail: for a table that answers "try again". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "tap.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/postern-search-XXXXXX";
static int file_count;
static char file_names[64][128];

/* Write a table file and return "type:path" (static storage). */
static const char *table(const char *type, const char *name, const char *text)
{
    static char specs[64][192];
    int i = file_count++;
    snprintf(file_names[i], sizeof file_names[i], "%s/%s", tmpdir, name);
    FILE *f = fopen(file_names[i], "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(file_names[i]);
        exit(2);
    }
    snprintf(specs[i], sizeof specs[i], "%s:%s", type, file_names[i]);
    return specs[i];
}

/* Open a list of tables; NULL (and a failed test) when that fails. */
static struct maplist *open_list(const char *value)
{
    struct strbuf err = STRBUF_INIT;
    struct maplist *list = maplist_open(value, &err);
    if (!list)
        ok(0, "open \"%s\": %s", value, strbuf_str(&err));
    strbuf_free(&err);
    return list;
}

/* "FOUND value", "NOTFOUND" or "RETRY", for comparisons. */
static const char *outcome(int result, const struct strbuf *value)
{
    static char text[256];
    if (result == MAP_FOUND)
        snprintf(text, sizeof text, "FOUND %s", strbuf_str(value));
    else
        snprintf(text, sizeof text, "%s", result == MAP_NOTFOUND ? "NOTFOUND" : "RETRY");
    return text;
}

static const char *const form_names[] = {"full", "noext", "local_ext", "local", "domain"};

/* map_search_address, checked for its answer and the key form. */
static void address(const char *tables, const char *addr, const char *delimiters,
                    int local, const char *want, const char *want_form)
{
    struct maplist *list = open_list(tables);
    if (!list)
        return;
    struct strbuf value = STRBUF_INIT, name = STRBUF_INIT;
    enum addr_key_form form = ADDR_KEY_FULL;
    int result = map_search_address(list, addr, delimiters, local, &value, &form);
    strbuf_printf(&name, "address %s (delimiters \"%s\", %s domain): %s", addr,
                  delimiters ? delimiters : "", local ? "local" : "remote", want);
    is_str(outcome(result, &value), want, name.s);
    if (want_form && result == MAP_FOUND) {
        strbuf_reset(&name);
        strbuf_printf(&name, "  answered by the %s form", want_form);
        is_str(form_names[form], want_form, name.s);
    }
    strbuf_free(&value);
    strbuf_free(&name);
    maplist_close(list);
}

/* map_search_mail_access. */
static void mail_access(const char *tables, const char *addr, int parent_matches,
                        const char *want)
{
    struct maplist *list = open_list(tables);
    if (!list)
        return;
    struct strbuf value = STRBUF_INIT, name = STRBUF_INIT;
    int result = map_search_mail_access(list, addr, "+", parent_matches, &value);
    strbuf_printf(&name, "access(5) address %s%s: %s", addr,
                  parent_matches ? " (parent matches)" : "", want);
    is_str(outcome(result, &value), want, name.s);
    strbuf_free(&value);
    strbuf_free(&name);
    maplist_close(list);
}

/* map_search_domain. */
static void domain(const char *tables, const char *dom, int parent_matches,
                   const char *want)
{
    struct maplist *list = open_list(tables);
    if (!list)
        return;
    struct strbuf value = STRBUF_INIT, name = STRBUF_INIT;
    int result = map_search_domain(list, dom, parent_matches, &value);
    strbuf_printf(&name, "domain %s%s: %s", dom,
                  parent_matches ? " (parent matches)" : "", want);
    is_str(outcome(result, &value), want, name.s);
    strbuf_free(&value);
    strbuf_free(&name);
    maplist_close(list);
}

/* map_search_client_ip. */
static void client_ip(const char *tables, const char *ip, const char *want)
{
    struct maplist *list = open_list(tables);
    if (!list)
        return;
    struct strbuf value = STRBUF_INIT, name = STRBUF_INIT;
    int result = map_search_client_ip(list, ip, &value);
    strbuf_printf(&name, "client %s: %s", ip, want);
    is_str(outcome(result, &value), want, name.s);
    strbuf_free(&value);
    strbuf_free(&name);
    maplist_close(list);
}

/* Join two specs into a list value (static storage, a few at a time). */
static const char *list2(const char *a, const char *b)
{
    static char lists[8][512];
    static int next;
    char *out = lists[next++ % 8];
    snprintf(out, sizeof lists[0], "%s, %s", a, b);
    return out;
}

static void test_address(void)
{
    const char *all = table("texthash", "all",
        "user+ext@example.com full\nuser@example.com noext\nuser+ext local_ext\n"
        "user local\n@example.com domain\n");
    const char *no_full = table("texthash", "no_full",
        "user@example.com noext\nuser+ext local_ext\nuser local\n@example.com domain\n");
    const char *local_forms = table("texthash", "local_forms",
        "user+ext local_ext\nuser local\n@example.com domain\n");
    const char *bare_local = table("texthash", "bare_local", "user local\n@example.com domain\n");
    const char *catchall = table("texthash", "catchall", "@example.com domain\n");
    const char *owner = table("texthash", "owner", "owner@example.com split\n@example.com domain\n");

    address(all, "user+ext@example.com", "+", 1, "FOUND full", "full");
    address(all, "User+Ext@Example.COM", "+", 1, "FOUND full", "full");
    address(no_full, "user+ext@example.com", "+", 1, "FOUND noext", "noext");
    address(local_forms, "user+ext@example.com", "+", 1, "FOUND local_ext", "local_ext");
    address(local_forms, "user+ext@example.com", "+", 0, "FOUND domain", "domain");
    address(bare_local, "user+ext@example.com", "+", 1, "FOUND local", "local");
    address(catchall, "user+ext@example.com", "+", 1, "FOUND domain", "domain");
    address(catchall, "user@other.example", "+", 1, "NOTFOUND", NULL);
    /* several delimiters: split at the first of any of them */
    address(no_full, "user-ext@example.com", "+-", 1, "FOUND noext", "noext");
    address(no_full, "user-ext+more@example.com", "+-", 1, "FOUND noext", "noext");
    /* no delimiter: no extension; the whole localpart is the local form */
    address(local_forms, "user+ext@example.com", "", 1, "FOUND local_ext", "local");
    address(no_full, "user+ext@example.com", NULL, 0, "FOUND domain", "domain");
    /* Postfix never splits owner-*, *-request, postmaster, mailer-daemon */
    address(owner, "owner-list@example.com", "-", 1, "FOUND domain", "domain");
    address(owner, "owner-list@example.com", "+", 1, "FOUND domain", "domain");
    /* a leading delimiter does not start an extension */
    address(table("texthash", "lead", "+user@example.com whole\n"),
            "+user@example.com", "+", 1, "FOUND whole", "full");
    /* an address without a domain: itself, then without its extension */
    address(all, "user+ext", "+", 0, "FOUND local_ext", "full");
    address(all, "user+other", "+", 0, "FOUND local", "local");

    /* pattern tables see the whole address only */
    const char *pcre_noext = table("pcre", "noext.pcre", "/^user@example\\.com$/ pattern-noext\n");
    const char *pcre_full = table("pcre", "full.pcre", "/^user\\+ext@/ pattern-full\n");
    address(list2(pcre_noext, catchall), "user+ext@example.com", "+", 1, "FOUND domain", "domain");
    address(list2(pcre_full, all), "user+ext@example.com", "+", 1, "FOUND pattern-full", "full");
    /* each key is tried in every table before the next key */
    address(list2(catchall, no_full), "user+ext@example.com", "+", 1, "FOUND noext", "noext");

    /* "try again" ends the search: never a less specific key instead */
    address(list2(catchall, "fail:down"), "user+ext@example.com", "+", 1, "RETRY", NULL);
    address(list2(all, "fail:down"), "user+ext@example.com", "+", 1, "FOUND full", "full");
}

static void test_mail_access(void)
{
    const char *t = table("texthash", "access_all",
        "user+ext@example.com full\nuser@example.com noext\nexample.com domain\n"
        "user+ext@ local_ext\nuser@ local\n");
    const char *t2 = table("texthash", "access_2", "example.com domain\nuser+ext@ local_ext\nuser@ local\n");
    const char *t3 = table("texthash", "access_3", "user+ext@ local_ext\nuser@ local\n");
    const char *t4 = table("texthash", "access_4", "user@ local\n");
    const char *parent = table("texthash", "access_parent", "example.com parent\n");
    const char *dot = table("texthash", "access_dot", ".example.com dot\n");
    const char *null = table("texthash", "access_null", "<> null-sender\n");

    mail_access(t, "user+ext@example.com", 0, "FOUND full");
    mail_access(t, "user+other@example.com", 0, "FOUND noext");
    mail_access(t2, "user+ext@example.com", 0, "FOUND domain");
    mail_access(t3, "user+ext@example.com", 0, "FOUND local_ext");
    mail_access(t4, "user+ext@example.com", 0, "FOUND local");
    mail_access(parent, "user@sub.example.com", 1, "FOUND parent");
    mail_access(parent, "user@sub.example.com", 0, "NOTFOUND");
    mail_access(dot, "user@sub.example.com", 0, "FOUND dot");
    mail_access(null, "<>", 0, "FOUND null-sender");
    mail_access(list2(t4, "fail:down"), "user+ext@example.com", 0, "RETRY");
}

static void test_domain(void)
{
    const char *both = table("texthash", "dom_both", "example.com exact\n.example.com dot\n");
    const char *exact = table("texthash", "dom_exact", "example.com exact\n");
    const char *top = table("texthash", "dom_top", "com top\n.com dot-top\n");

    domain(both, "example.com", 0, "FOUND exact");
    domain(both, "a.b.example.com", 0, "FOUND dot");
    domain(both, "a.b.example.com", 1, "FOUND exact");
    domain(exact, "sub.example.com", 0, "NOTFOUND");
    domain(exact, "sub.example.com", 1, "FOUND exact");
    domain(exact, "Sub.Example.COM", 1, "FOUND exact");
    domain(top, "example.com", 1, "FOUND top");
    domain(top, "example.com", 0, "FOUND dot-top");
    domain(exact, "", 1, "NOTFOUND");
    domain(exact, "notexample.com", 1, "NOTFOUND");

    const char *pattern = table("pcre", "dom.pcre", "/^example\\.com$/ pattern\n");
    domain(pattern, "example.com", 1, "FOUND pattern");
    domain(pattern, "sub.example.com", 1, "NOTFOUND");
    domain(list2(top, "fail:down"), "sub.example.com", 1, "RETRY");
}

static void test_client_ip(void)
{
    const char *v4 = table("texthash", "ip4", "1.2.3 net3\n1 net1\n");
    const char *v6 = table("texthash", "ip6", "2001:db8: colon\n2001:db8 groups2\n");
    const char *cidr = table("cidr", "ip.cidr", "1.2.0.0/16 cidr16\n");

    client_ip(v4, "1.2.3.4", "FOUND net3");
    client_ip(v4, "1.9.9.9", "FOUND net1");
    client_ip(v4, "2.0.0.1", "NOTFOUND");
    client_ip(v6, "2001:db8::1", "FOUND colon");
    client_ip(v6, "2001:DB8:0:0::1", "FOUND colon");
    client_ip(v6, "2001:db8:1::1", "FOUND groups2");
    client_ip(v6, "::1", "NOTFOUND");
    client_ip(cidr, "1.2.3.4", "FOUND cidr16");
    client_ip(list2(cidr, v4), "1.2.3.4", "FOUND cidr16");
    client_ip(list2(v4, cidr), "1.2.3.4", "FOUND cidr16");
    client_ip(table("texthash", "ip_name", "foo found\n"), "foo.bar", "NOTFOUND");
    client_ip(list2(v4, "fail:down"), "1.2.3.4", "RETRY");
}

int main(void)
{
    log_open("search_test", 0);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_address();
    test_mail_access();
    test_domain();
    test_client_ip();
    for (int i = 0; i < file_count; i++)
        unlink(file_names[i]);
    rmdir(tmpdir);
    return tap_done();
}
