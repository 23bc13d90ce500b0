/* lookup.h - the parts of postern-lookup, the lookup service
 * (postern-lookup(8), doc/lookup.md): main.c starts it, tables.c keeps
 * the allow-list and the open tables and answers one request, slow.c
 * runs the lookups of database tables in their threads, serve.c serves
 * the clients of the socket. */
#ifndef POSTERN_LOOKUP_H
#define POSTERN_LOOKUP_H

#include <sys/types.h>

struct strbuf;
struct lookup_request;

/* Read proxy_read_maps into the allow-list and forget the open tables
 * (at start, and again on SIGHUP after main.cf was read again). */
void tables_configure(void);
/* slow.c: lookups in tables that wait on a server (MAP_SLOW), each
 * table in a thread of its own.  slow_table_start starts a table's
 * thread, slow_table_retire hands the table over to it: the thread answers
 * what it has queued, closes the table and ends, while the poll loop goes
 * on (a reload never waits on a slow database).  slow_start queues a lookup; done(arg, answer
 * record) is called from slow_process, which the poll loop calls when
 * slow_fd is readable.  Given the client's socket (direct_fd, else -1),
 * the thread sends the answer itself, and done gets what it could not
 * send.  slow_cancel forgets a lookup whose client went away; the socket
 * is not closed before. */
struct map;
struct slow_table;
struct slowreq;
typedef void slow_done(void *arg, struct strbuf *answer);
struct slow_table *slow_table_start(struct map *map);
void slow_table_retire(struct slow_table *table);
struct slowreq *slow_start(struct slow_table *table, const char *key, slow_done *done,
                           void *arg, int direct_fd);
void slow_cancel(struct slowreq *req);
int slow_fd(void);
void slow_process(void);

/* Answer one request: append the answer record to out and return NULL;
 * or, for a table whose lookups wait on a server, start the lookup in its
 * thread and return it (its answer comes through done, slow.c; direct_fd
 * as slow_start's). */
struct slowreq *tables_answer(const struct lookup_request *req, struct strbuf *out,
                              slow_done *done, void *arg, int direct_fd);

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
