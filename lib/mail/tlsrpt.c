/* tlsrpt.c - the TLS-RPT result line and the _smtp._tls TXT record
 * (RFC 8460 sections 3 and 4.3): see tlsrpt.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strlist.h"
#include "tlsrpt.h"

static const char *const result_types[] = {
    "success", "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
};

int tlsrpt_result_known(const char *word)
{
    for (size_t i = 0; i < sizeof result_types / sizeof result_types[0]; i++)
        if (strcmp(word, result_types[i]) == 0)
            return 1;
    return 0;
}

static int policy_type_known(const char *word)
{
    return strcmp(word, "tlsa") == 0 || strcmp(word, "sts") == 0
           || strcmp(word, "no-policy-found") == 0;
}

/* Copy the field [p, end) into out (size bytes); -1 when empty or too long. */
static int field(const char *p, const char *end, char *out, size_t size)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= size || memchr(p, '\0', n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int tlsrpt_line_parse(const char *line, size_t len, struct tlsrpt_line *out)
{
    memset(out, 0, sizeof *out);
    const char *p = line, *end = line + len;
    const char *f[8][2];
    size_t count = 0;
    while (count < 8) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *stop = tab ? tab : end;
        f[count][0] = p;
        f[count][1] = stop;
        count++;
        if (!tab)
            break;
        p = tab + 1;
    }
    if (count < 6 || (count == 8 && memchr(f[7][1], '\t', (size_t)(end - f[7][1]))))
        return -1;
    char num[24];
    if (field(f[0][0], f[0][1], num, sizeof num) != 0)
        return -1;
    char *e;
    out->time = strtoll(num, &e, 10);
    if (*e || out->time < 0 || !isdigit((unsigned char)num[0]))
        return -1;
    if (field(f[1][0], f[1][1], out->domain, sizeof out->domain) != 0
        || field(f[2][0], f[2][1], out->policy_type, sizeof out->policy_type) != 0
        || field(f[3][0], f[3][1], out->result, sizeof out->result) != 0
        || field(f[4][0], f[4][1], out->mx_host, sizeof out->mx_host) != 0
        || field(f[5][0], f[5][1], out->receiving_ip, sizeof out->receiving_ip) != 0)
        return -1;
    if (!policy_type_known(out->policy_type) || !tlsrpt_result_known(out->result))
        return -1;
    if (count >= 7) {
        if (field(f[6][0], f[6][1], out->sending_ip, sizeof out->sending_ip) != 0)
            return -1;
        if (strcmp(out->sending_ip, "-") == 0)
            out->sending_ip[0] = '\0';
    }
    if (count == 8) {
        if (field(f[7][0], f[7][1], out->policy_string, sizeof out->policy_string) != 0)
            return -1;
        if (strcmp(out->policy_string, "-") == 0)
            out->policy_string[0] = '\0';
    }
    /* what goes into the JSON report must be printable text */
    const char *texts[] = {out->domain, out->mx_host, out->receiving_ip, out->sending_ip,
                           out->policy_string};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (const unsigned char *c = (const unsigned char *)texts[i]; *c; c++)
            if (*c < 0x20 || *c == 0x7f)
                return -1;
    return 0;
}

int tlsrpt_line_format(const struct tlsrpt_line *r, char *out, size_t size)
{
    const char *texts[] = {r->domain, r->policy_type, r->result, r->mx_host, r->receiving_ip,
                           r->sending_ip, r->policy_string};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (const unsigned char *c = (const unsigned char *)texts[i]; *c; c++)
            if (*c < 0x20 || *c == 0x7f)
                return -1;
    if (!*r->domain || !*r->mx_host || !*r->receiving_ip || !policy_type_known(r->policy_type)
        || !tlsrpt_result_known(r->result))
        return -1;
    int n = snprintf(out, size, "%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->time, r->domain,
                     r->policy_type, r->result, r->mx_host, r->receiving_ip,
                     *r->sending_ip ? r->sending_ip : "-",
                     *r->policy_string ? r->policy_string : "-");
    return n > 0 && (size_t)n < size ? n : -1;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* One rua URI (white space trimmed): appended to rua when usable. */
static void add_uri(const char *p, size_t n, struct strlist *rua)
{
    while (n && isspace((unsigned char)*p))
        p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    if (n > 7 && strncasecmp(p, "mailto:", 7) == 0) {
        char addr[512];
        size_t k = 0;
        for (size_t i = 7; i < n && p[i] != '?'; i++) {
            int c = (unsigned char)p[i];
            if (c == '%' && i + 2 < n && hexval((unsigned char)p[i + 1]) >= 0
                && hexval((unsigned char)p[i + 2]) >= 0) {
                c = hexval((unsigned char)p[i + 1]) * 16 + hexval((unsigned char)p[i + 2]);
                i += 2;
            }
            if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || k + 1 >= sizeof addr)
                return;
            addr[k++] = (char)c;
        }
        addr[k] = '\0';
        const char *at = strrchr(addr, '@');
        if (!at || at == addr || !at[1])
            return;
        char uri[520];
        snprintf(uri, sizeof uri, "mailto:%s", addr);
        strlist_add(rua, uri);
    } else if (n > 8 && n < 2048 && strncasecmp(p, "https://", 8) == 0) {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
                return;
        char uri[2048];
        memcpy(uri, p, n);
        uri[n] = '\0';
        strlist_add(rua, uri);
    }
}

int tlsrpt_txt_parse(const char *txt, struct strlist *rua)
{
    /* "v=TLSRPTv1" first, then "; field=value" (RFC 8460 section 3) */
    if (strncmp(txt, "v=TLSRPTv1", 10) != 0)
        return -1;
    const char *p = txt + 10;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ';')
        return -1;
    size_t before = rua->count;
    int seen_rua = 0;
    while (*p == ';') {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && eq - p == 3 && strncmp(p, "rua", 3) == 0 && !seen_rua) {
            seen_rua = 1;
            const char *u = eq + 1;
            while (u < end) {
                const char *comma = memchr(u, ',', (size_t)(end - u));
                const char *stop = comma ? comma : end;
                add_uri(u, (size_t)(stop - u), rua);
                u = comma ? comma + 1 : end;
            }
        }
        p = end;
    }
    return rua->count > before ? 0 : -1;
}
