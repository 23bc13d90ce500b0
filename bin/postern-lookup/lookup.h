/* lookup.h - the parts of postern-lookup, the lookup service
 * (postern-lookup(8), doc/lookup.md): main.c starts it, tables.c keeps
 * the allow-list and the open tables and answers one request, serve.c
 * serves the clients of the socket. */
#ifndef POSTERN_LOOKUP_H
#define POSTERN_LOOKUP_H

#include <sys/types.h>

struct strbuf;
struct lookup_request;

/* Read proxy_read_maps into the allow-list and forget the open tables
 * (at start, and again on SIGHUP after main.cf was read again). */
void tables_configure(void);
/* Answer one request: append the answer record to out. */
void tables_answer(const struct lookup_request *req, struct strbuf *out);

/* Serve the listening socket until SIGTERM; signal_fd delivers SIGTERM,
 * SIGINT and SIGHUP.  Returns when it is time to exit. */
void serve(int listen_fd, int signal_fd);

#endif
