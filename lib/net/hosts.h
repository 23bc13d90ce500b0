/* hosts.h - the hosts file (hosts(5), /etc/hosts) read by postern itself,
 * without the name service switch, so that a static program (smtpd) can
 * name a client the way glibc's "files" source would before it asks the
 * DNS: the address's first line gives its canonical name, and that name
 * is forward-confirmed by the same line.  Read once (smtpd: in the zygote)
 * and read again when the file changes (hosts_refresh).
 *
 * Which file: POSTERN_HOSTS_FILE in the environment (tests), else
 * /etc/hosts, used only when the "hosts:" line of /etc/nsswitch.conf names
 * "files" first (Debian's "files dns"; no such line: glibc's default
 * "dns files" asks the DNS first, so the file is not used here).
 */
#ifndef POSTERN_HOSTS_H
#define POSTERN_HOSTS_H

#include <stddef.h>

#define HOSTS_FILE_VARIABLE "POSTERN_HOSTS_FILE"

struct hosts;

/* Read the hosts file that applies (see above); NULL when none does or it
 * cannot be read (then every lookup goes to the DNS). */
struct hosts *hosts_open(void);
/* Read the file again if it changed since it was read (its inode, size or
 * modification time); the table may be replaced: use the pointer returned.
 * NULL in, NULL out. */
struct hosts *hosts_refresh(struct hosts *hosts);
/* The canonical name of the first line holding addr (text form, IPv4 or
 * IPv6), copied into name: 1; 0 when no line holds it or addr is no
 * address. */
int hosts_name_of(const struct hosts *hosts, const char *addr, char *name, size_t size);
void hosts_free(struct hosts *hosts);

/* Parse hosts(5) text (for the fuzz target): a table, never NULL. */
struct hosts *hosts_parse(const char *text, size_t len);

#endif
