/* rewrite_settings.h - the rewrite settings both rewrite fuzz targets
 * derive from their first byte (fuzz/rewrite.c, fuzz/rewrite_stream.c):
 * bits 0-2 append_at_myorigin, append_dot_mydomain,
 * always_add_missing_headers; 3 a small header_size_limit; 4 a local
 * submission; 5 a full name; 6 a uid; 7 a hopcount_limit of 2. */
#ifndef POSTERN_FUZZ_REWRITE_SETTINGS_H
#define POSTERN_FUZZ_REWRITE_SETTINGS_H

#include "config.h"
#include "rewrite.h"

/* Fill cfg and info from flags; free cfg.drop_headers afterwards. */
static inline void fuzz_rewrite_settings(unsigned flags, struct rewrite_config *cfg,
                                         struct rewrite_message_info *info)
{
    *cfg = (struct rewrite_config){
        .myhostname = "host.example.org", .myorigin = "example.org",
        .mydomain = "example.org", .append_at_myorigin = flags & 1,
        .append_dot_mydomain = (flags >> 1) & 1,
        .always_add_missing_headers = (flags >> 2) & 1,
        .header_size_limit = (flags & 8) ? 1024 : 102400,
        .duplicate_filter_limit = 1000, .hopcount_limit = (flags & 128) ? 2 : 50,
        .drop_headers = STRLIST_INIT,
    };
    strlist_add(&cfg->drop_headers, "bcc");
    strlist_add(&cfg->drop_headers, "return-path");
    *info = (struct rewrite_message_info){
        .local = (flags >> 4) & 1, .sender = "alice",
        .full_name = (flags & 32) ? "A. \"Q\" Person" : NULL,
        .uid = (flags & 64) ? "1000" : NULL,
    };
}

#endif
