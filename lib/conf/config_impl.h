/* config_impl.h - the parts of the configuration layer shared between its
 * files (and with the fuzz target and `postern conf`/`postern check`), not
 * part of the API every program uses (that is config.h).
 */
#ifndef POSTERN_CONFIG_IMPL_H
#define POSTERN_CONFIG_IMPL_H

#include <stddef.h>

#include "config.h"

struct strbuf;

/* Limits on what main.cf may hold: larger input is a configuration error
 * reported with file:line, never a crash or an unbounded allocation. */
#define MAINCF_MAX_BYTES        (16 * 1024 * 1024)
#define MAINCF_MAX_LINE         (256 * 1024)    /* one logical line, joined */
#define EXPAND_MAX_DEPTH        100             /* nested $name references */
#define EXPAND_MAX_BYTES        (4 * 1024 * 1024)

/* ---- config_parse.c: main.cf text to name/value pairs ---- */
/* Called for every `name = value` (value trimmed, continuation lines joined
 * as Postfix joins them). */
typedef void maincf_entry_fn(const char *name, const char *value, int line, void *ctx);
/* Parse main.cf text held in memory.  Every error gets one line
 * "FILE, line N: ..." in report, every warning (what Postfix only warns
 * about) one in warnings; returns the number of errors.  Parsing goes on
 * after a bad line, so all problems are seen. */
int maincf_parse(const char *text, size_t len, const char *file,
                 maincf_entry_fn *fn, void *ctx, struct strbuf *report,
                 struct strbuf *warnings);
/* 1 when name is a well-formed parameter name (letters, digits, '_', '-', '.'). */
int param_name_valid(const char *name, size_t len);

/* ---- config_expand.c: $name expansion ---- */
/* How expansion finds a parameter's value, already expanded (the caller
 * caches and detects loops): 0 with *value set (NULL when undefined), or
 * -1 with the reason in err. */
typedef int expand_lookup_fn(const char *name, void *ctx, const char **value,
                             struct strbuf *err);
/* Expand text into out (appending).  0, or -1 with the reason in err. */
int expand_text(const char *text, expand_lookup_fn *lookup, void *ctx,
                struct strbuf *out, struct strbuf *err);
/* Call fn for every name referenced as $name, ${name...} or $(name) in
 * text, including inside conditional values (not expanding them). */
void expand_references(const char *text, void (*fn)(const char *name, size_t len, void *ctx),
                       void *ctx);

/* ---- config.c: state for the commands and the fuzz target ---- */
/* Parse main.cf text from memory as config_load_report() parses the file
 * (the overrides and -c state stay); problems go to report. */
int config_load_text(const char *text, size_t len, const char *file,
                     struct strbuf *report);
/* Forget everything loaded (not the overrides or the directory). */
void config_clear(void);
/* 1 when a set parameter that postern does not declare is referenced as
 * $name by some value (a user variable). */
int config_is_referenced(const char *name);
/* The value of every declared parameter as if main.cf were empty: the
 * expanded or raw default (derived ones computed). */
void config_default(const struct param_def *def, struct strbuf *out);
/* The expanded value of a name, or fallback when it is undefined or does
 * not expand (for derived defaults and logging set-up: never exits). */
const char *config_value_or(const char *name, const char *fallback);
/* Add the name of every parameter set by main.cf, -o or -c (config_directory). */
void config_set_names(struct strlist *out);
/* 1 when -c or $POSTERN_CONFIG_DIR chose the directory. */
int config_dir_given(void);

/* ---- params_postfix.c ---- */
/* 1 when Postfix 3.7 has a parameter of this name. */
int param_is_postfix_name(const char *name);

/* ---- params_derived.c: defaults computed from the machine ---- */
void derive_myhostname(struct strbuf *out);
void derive_mydomain(struct strbuf *out);
void derive_mynetworks(struct strbuf *out);

#endif
