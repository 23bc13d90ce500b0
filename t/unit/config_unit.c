/* config_unit.c - a driver for t/10-config.t: calls the configuration
 * library directly for what no command shows on its own.
 *   config_unit split VALUE        items, one a line (or "error: ...")
 *   config_unit time VALUE UNIT    seconds, or -1
 *   config_unit size VALUE         bytes, or -1
 *   config_unit bool VALUE         1, 0 or -1
 *   config_unit conf [-c DIR] [-o n=v] NAME...   conf_str / typed values,
 *                                  after config_load (fatal errors exit 1)
 *   config_unit receive VALUE      receive_override_options' RECEIVE_* mask (hex)
 *   config_unit local [-c DIR] [-o n=v] NAME...  the local submission's value
 *                                  (master.cf's pickup -o, else main.cf)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"

int main(int argc, char **argv)
{
    log_open("config_unit", LOG_STDERR);
    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "split") == 0) {
        struct strlist list = STRLIST_INIT;
        struct strbuf err = STRBUF_INIT;
        if (list_split(argv[2], &list, &err) != 0) {
            printf("error: %s\n", strbuf_str(&err));
            strlist_free(&list);
            strbuf_free(&err);
            return 1;
        }
        for (size_t i = 0; i < list.count; i++)
            printf("[%s]\n", list.item[i]);
        strlist_free(&list);
        strbuf_free(&err);
        return 0;
    }
    if (strcmp(argv[1], "time") == 0 && argc == 4)
        return printf("%lld\n", parse_time(argv[2], argv[3][0])), 0;
    if (strcmp(argv[1], "size") == 0)
        return printf("%lld\n", parse_size(argv[2])), 0;
    if (strcmp(argv[1], "bool") == 0)
        return printf("%d\n", parse_bool(argv[2])), 0;
    if (strcmp(argv[1], "receive") == 0)
        return printf("%#x\n", receive_override_mask(argv[2])), 0;
    if (strcmp(argv[1], "local") == 0) {
        int opt;
        optind = 2;
        while ((opt = getopt(argc, argv, "c:o:")) != -1)
            config_common_option(opt, optarg);
        config_load(0);
        struct strbuf value = STRBUF_INIT;
        for (int i = optind; i < argc; i++) {
            receive_local_setting(argv[i], &value);
            printf("%s=%s\n", argv[i], strbuf_str(&value));
        }
        strbuf_free(&value);
        return 0;
    }
    if (strcmp(argv[1], "conf") == 0) {
        int opt;
        optind = 2;
        while ((opt = getopt(argc, argv, "c:o:")) != -1)
            config_common_option(opt, optarg);
        config_load(0);
        for (int i = optind; i < argc; i++) {
            const char *name = argv[i];
            const struct param_def *def = param_find(name);
            if (def && def->type == PARAM_BOOL)
                printf("%s=%d\n", name, conf_bool(name));
            else if (def && def->type == PARAM_INT)
                printf("%s=%lld\n", name, conf_int(name));
            else if (def && def->type == PARAM_TIME)
                printf("%s=%lld\n", name, conf_time(name));
            else if (def && def->type == PARAM_SIZE)
                printf("%s=%lld\n", name, conf_size(name));
            else
                printf("%s=%s\n", name, conf_str(name));
        }
        return 0;
    }
    return 2;
}
