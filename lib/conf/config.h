/* config.h - main.cf: reading it, the parameter registry, typed values.
 *
 * Syntax and meaning are Postfix's (postconf(5)): `name = value`, comments,
 * continuation lines that start with white space, `$name`, `${name}`,
 * `$(name)`, `${name?value}`, `${name:value}` (and the `{value}` forms),
 * expanded recursively when a value is used, not when it is read.
 *
 * The configuration is process-wide, like Postfix's var_* variables: a
 * program parses its options (config_set_dir for -c, config_add_override for
 * each -o), calls config_load() once, then reads values with conf_*().
 * Every parameter postern implements is declared once, in lib/conf/params.c, with
 * its Postfix name, type and default; values are read only through it.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include "strlist.h"

struct strbuf;

enum param_type {
    PARAM_STR,      /* text; lists are text split by conf_list() */
    PARAM_BOOL,     /* yes / no */
    PARAM_INT,      /* decimal integer */
    PARAM_TIME,     /* number with optional unit s m h d w; unit defaults per parameter */
    PARAM_SIZE,     /* bytes (Postfix takes plain numbers; k/m/g suffixes accepted) */
};

struct param_def {
    const char *name;
    enum param_type type;
    const char *default_value;      /* raw default, may hold $name; ignored when derive is set */
    void (*derive)(struct strbuf *out); /* computes the default at run time (myhostname, ...) */
    char time_unit;                 /* PARAM_TIME: 's', 'm', 'h', 'd' or 'w' */
    long long min, max;             /* INT/TIME/SIZE range; min == max == 0: unchecked */
};

/* ---- the registry (lib/conf/params.c) ---- */
/* The declaration of a parameter, or NULL when postern does not implement it. */
const struct param_def *param_find(const char *name);
/* All declarations, sorted by name (for `postern conf`). */
const struct param_def *param_table(size_t *count);

/* ---- program start ---- */
/* -c DIR: the directory holding main.cf (else $POSTERN_CONFIG_DIR, else the
 * compiled-in default). */
void config_set_dir(const char *dir);
/* -o name=value: overrides main.cf; may be given many times.  Fatal on a
 * malformed argument. */
void config_add_override(const char *name_eq_value);
/* For every program's getopt loop: handles -c DIR, -o name=value and -v
 * (given as opt and optarg); returns 1 when it took the option, else 0. */
int config_common_option(int opt, const char *arg);
/* The options of a service behind a unix socket (postern-lookup,
 * postern-verify): -c, -o and -v (config_common_option) and -m MODE, the
 * mode of a socket it binds itself (socket_mode_parse).  0, or -1 on a
 * wrong argument (the caller says how to call it). */
int config_service_options(int argc, char **argv, mode_t *socket_mode);
/* Read main.cf, apply the overrides, configure logging (syslog_name,
 * syslog_facility, maillog_file), and warn once for every parameter postern
 * does not know ("FILE, line N: unused parameter: name=value"), unless it is
 * referenced as $name by another value, and for every setting that has no
 * effect in postern yet ("FILE, line N: not implemented by postern:
 * name=value: what happens instead"; setting_not_implemented).  Fatal (with file:line) on a syntax
 * error or an unreadable file; a missing main.cf is fatal unless
 * allow_missing is set (then every parameter has its default). */
void config_load(int allow_missing);
/* The same, without exiting: returns the number of problems found and
 * appends one line per problem ("FILE, line N: ...") to `report` (used by
 * `postern check`, which must see them all). */
int config_load_report(int allow_missing, struct strbuf *report);
/* The same with errors (syntax, types, loops, an unreadable file) and
 * warnings (unused, not implemented, duplicates) apart, one line each;
 * returns the number of errors. */
int config_load_split(int allow_missing, struct strbuf *errors, struct strbuf *warnings);
/* Re-read main.cf (SIGHUP); the overrides stay.  Values returned earlier
 * by conf_str() stay valid until the next config_reload(). */
void config_reload(void);
/* Postfix's master gives the processes it starts while a service is at its
 * process limit "-o stress=yes"; postern-accept puts this variable in a
 * connection's environment instead (a fork request carries no argv), and
 * config_apply_stress() turns it into stress=yes. */
#define CONFIG_STRESS_VARIABLE "POSTERN_STRESS"
/* After config_load(), in a process started (or forked by a zygote) for one
 * connection: when CONFIG_STRESS_VARIABLE is "yes", set stress=yes as -o
 * would, so that every ${stress?...} value (smtpd_timeout, ...) is
 * expanded again.  Strings conf_str() returned before stay valid.  Returns
 * 1 when stress is on. */
int config_apply_stress(void);
/* Expand every parameter now (each declared one and each set in main.cf)
 * and keep the values: a zygote calls this before it forks, so that no
 * child expands (and writes to copy-on-write pages) what it reads per
 * connection. */
void config_expand_all(void);
/* The configuration directory and the path of main.cf in use. */
const char *config_dir(void);
const char *config_file(void);

/* ---- values ---- */
/* The expanded value of a parameter (set, overridden, or default).  Fatal
 * for a name that is not declared (a programming error) and for an
 * expansion loop or a value of the wrong type (a configuration error, with
 * the parameter's name). */
const char *conf_str(const char *name);
int conf_bool(const char *name);
long long conf_int(const char *name);
long long conf_time(const char *name);      /* seconds */
long long conf_size(const char *name);      /* bytes */

/* The value as written (main.cf or -o, else the default), unexpanded; NULL
 * for a name that is neither declared nor set.  For undeclared names that
 * main.cf sets (user variables), the main.cf text. */
const char *conf_raw(const char *name);
/* 1 when main.cf or -o sets the parameter. */
int conf_is_set(const char *name);
/* Expand $name references in any text with the current configuration.
 * Returns 0, or -1 with a message in err (loop, unterminated ${...). */
int conf_expand(const char *text, struct strbuf *out, struct strbuf *err);

/* Parameters set in main.cf, in file order, with where they were set
 * (for `postern conf -n` and `postern check`).  Returns the count. */
struct conf_entry {
    const char *name;
    const char *value;      /* raw */
    const char *file;
    int line;
};
size_t conf_entries(const struct conf_entry **entries);

/* ---- lists ---- */
/* Split the expanded value of a parameter (fatal on a malformed list);
 * struct strlist and list_split() are in lib/util/strlist.h. */
void conf_list(const char *name, struct strlist *out);

/* ---- what postern does not do yet (lib/conf/unimplemented.c) ---- */
/* For a parameter set to value (expanded): what postern does not do of it,
 * as a short text, or NULL when the setting takes effect (or has none to
 * miss, like an empty value).  config_load() warns with it, as
 * "FILE, line N: not implemented by postern: name=value: text". */
const char *setting_not_implemented(const char *name, const char *value);
/* A transport value (transport[:nexthop]) postern has no runner for: the
 * text, else NULL. */
const char *transport_not_implemented(const char *value);
/* 1 when the transport name (len bytes) has a runner or is decided by qmgr. */
int transport_implemented(const char *transport, size_t len);
/* A master.cf command postern has no program for (smtp, pipe, postscreen,
 * ...): the text, else NULL. */
const char *master_command_not_implemented(const char *command);

/* ---- Receiving (lib/conf/receive.c) ---- */
/* Postfix's name_mask: the flags of the names a list value holds (split
 * as conf_list splits), each looked up in table (ignoring case with
 * NAME_MASK_ANY_CASE); an unknown name is warned about ("unknown PARAM
 * value \"NAME\" ignored") and ignored; with NAME_MASK_IGNORE silently, as is
 * a list that cannot be split (then what could be split counts); with
 * NAME_MASK_FATAL it ends the program (temporary failure) with Postfix's
 * "unknown PARAM value \"NAME\" in \"VALUE\"". */
struct name_flag {
    const char *name;
    unsigned flag;
};
#define NAME_MASK_ANY_CASE 0x1u
#define NAME_MASK_IGNORE 0x2u
#define NAME_MASK_FATAL 0x4u
unsigned name_mask(const char *param, const char *value, const struct name_flag *table,
                   size_t count, unsigned flags);
/* receive_override_options, as Postfix's smtpd and pickup read it: what a
 * receiving program leaves out.  Unknown names are warned about and
 * ignored. */
#define RECEIVE_NO_UNKNOWN_RECIPIENT_CHECKS 0x1u  /* smtpd: reject_unlisted_* */
#define RECEIVE_NO_ADDRESS_MAPPINGS 0x2u    /* canonical, masquerading, virtual
                                               aliases, automatic BCC */
#define RECEIVE_NO_HEADER_BODY_CHECKS 0x4u  /* header_checks, body_checks and
                                               their MIME and nested kinds */
#define RECEIVE_NO_MILTERS 0x8u             /* smtpd_milters */
unsigned receive_override_mask(const char *value);
/* The first name in a receive_override_options value that is not one
 * (kept in name), else NULL: for postern check, which must not end. */
const char *receive_override_unknown(const char *value, struct strbuf *name);
/* The expanded value of `name` (content_filter, receive_override_options)
 * for local submission: the last -o of master.cf's pickup service that
 * sets it, as Postfix's pickup(8) reads it, else the parameter's own. */
void receive_local_setting(const char *name, struct strbuf *out);

/* ---- conversions shared with map and command parsers ---- */
/* Parse "yes"/"no" (any case); returns 1, 0, or -1 when it is neither. */
int parse_bool(const char *s);
/* Parse a time with `unit` as the default unit; -1 on a syntax error. */
long long parse_time(const char *s, char unit);
/* Parse a size in bytes; -1 on a syntax error. */
long long parse_size(const char *s);

#endif
