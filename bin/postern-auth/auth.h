/* auth.h - postern-auth's two parts: main.c (the socket, signals, one
 * child per connection) and session.c (one connection's SASL exchanges
 * with Cyrus libsasl2). */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

/* Set libsasl2 up for this application (smtpd_sasl_path) once, before
 * the children are forked, so that a client does not wait for the
 * plugins to load. */
void session_preload(const char *app);
/* Serve one client on fd until it closes (in a child of the service). */
_Noreturn void session_serve(int fd);

#endif
