/* pcre.c - the pcre table type: pcre_table(5) files matched with PCRE2.
 *
 * The file syntax is regex_table.c's.  Patterns are compiled once, at open,
 * with the JIT when the library has it, each with its own preallocated
 * match data, since these tables are searched on every SMTP command.
 * Matching is case-insensitive and "." matches a newline unless the flags
 * say otherwise (pcre_table(5)): i, m, s, x, A, E, U toggle the options
 * of the same letters; X is accepted (PCRE2 always refuses unknown escapes).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "map_impl.h"
#include "regex_table.h"
#include "strbuf.h"
#include "xalloc.h"

struct pcre_pattern {
    pcre2_code *code;
    pcre2_match_data *match_data;
};

/* PCRE2's text for an error code. */
static void pcre_error_text(int code, struct strbuf *out)
{
    PCRE2_UCHAR message[256];
    if (pcre2_get_error_message(code, message, sizeof message) < 0)
        strbuf_printf(out, "PCRE2 error %d", code);
    else
        strbuf_puts(out, (const char *)message);
}

/* Compile one pattern (struct regex_engine.compile). */
static void *pcre_compile_pattern(const char *pattern, const char *flags,
                                  size_t flags_len, int want_groups,
                                  size_t *groups, struct strbuf *err)
{
    uint32_t options = PCRE2_CASELESS | PCRE2_DOTALL;
    (void)want_groups;
    for (size_t i = 0; i < flags_len; i++) {
        switch (flags[i]) {
        case 'i': options ^= PCRE2_CASELESS; break;
        case 'm': options ^= PCRE2_MULTILINE; break;
        case 's': options ^= PCRE2_DOTALL; break;
        case 'x': options ^= PCRE2_EXTENDED; break;
        case 'A': options ^= PCRE2_ANCHORED; break;
        case 'E': options ^= PCRE2_DOLLAR_ENDONLY; break;
        case 'U': options ^= PCRE2_UNGREEDY; break;
        case 'X': break;
        default:
            strbuf_printf(err, "unknown pcre flag \"%c\" (flags are i m s x A E U X)",
                          flags[i]);
            return NULL;
        }
    }
    int code;
    PCRE2_SIZE offset;
    pcre2_code *compiled = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                         options, &code, &offset, NULL);
    if (!compiled) {
        strbuf_printf(err, "error in pcre pattern at offset %zu: ", (size_t)offset);
        pcre_error_text(code, err);
        return NULL;
    }
    (void)pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE);  /* faster when it works */
    uint32_t captures = 0;
    (void)pcre2_pattern_info(compiled, PCRE2_INFO_CAPTURECOUNT, &captures);
    *groups = captures;
    struct pcre_pattern *pat = xmalloc(sizeof *pat);
    pat->code = compiled;
    pat->match_data = pcre2_match_data_create_from_pattern(compiled, NULL);
    if (!pat->match_data)
        die_nomem();
    return pat;
}

/* Match a key (struct regex_engine.match). */
static int pcre_match_key(void *compiled, const char *key, size_t key_len,
                          size_t *spans, size_t nspans, struct strbuf *err)
{
    struct pcre_pattern *pat = compiled;
    int rc = pcre2_match(pat->code, (PCRE2_SPTR)key, key_len, 0, 0,
                         pat->match_data, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        pcre_error_text(rc, err);
        return -1;
    }
    if (spans) {
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(pat->match_data);
        uint32_t pairs = pcre2_get_ovector_count(pat->match_data);
        for (size_t i = 0; i < nspans; i++) {
            int set = i < pairs && (rc == 0 || i < (size_t)rc)
                      && ovector[2 * i] != PCRE2_UNSET;
            spans[2 * i] = set ? ovector[2 * i] : REGEX_SPAN_UNSET;
            spans[2 * i + 1] = set ? ovector[2 * i + 1] : REGEX_SPAN_UNSET;
        }
    }
    return 1;
}

/* Free a compiled pattern (struct regex_engine.free). */
static void pcre_free_pattern(void *compiled)
{
    struct pcre_pattern *pat = compiled;
    pcre2_match_data_free(pat->match_data);
    pcre2_code_free(pat->code);
    free(pat);
}

static const struct regex_engine pcre_engine = {
    .type = "pcre",
    .second_pattern = 0,
    .compile = pcre_compile_pattern,
    .match = pcre_match_key,
    .free = pcre_free_pattern,
};

/* Read and compile the table file. */
static int pcre_open(struct map *map, const char *name, struct strbuf *err)
{
    return regex_table_open(map, name, &pcre_engine, err);
}

const struct map_type map_type_pcre = {
    .name = "pcre",
    .flags = MAP_PATTERN,
    .open = pcre_open,
    .lookup = regex_table_lookup,
    .close = regex_table_close,
    .file_suffix = "",
};
