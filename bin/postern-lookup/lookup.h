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

/* dnsreq.c: DNS lookups for the static programs (tables "dns:TYPE",
 * "dns:client").  dnsreq_start answers through done(arg, answer record),
 * now or later; it returns the request while the answer is to come, NULL
 * when done was called already.  dnsreq_cancel forgets a request whose
 * answer has not come (its client went away). */
struct dnsreq;
typedef void dnsreq_done(void *arg, struct strbuf *answer);
int dnsreq_is_dns(const char *table);
struct dnsreq *dnsreq_start(const struct lookup_request *req, dnsreq_done *done, void *arg);
void dnsreq_cancel(struct dnsreq *req);

/* Serve the listening socket until SIGTERM; signal_fd delivers SIGTERM,
 * SIGINT and SIGHUP.  Returns when it is time to exit. */
void serve(int listen_fd, int signal_fd);

#endif
