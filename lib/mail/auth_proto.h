/* auth_proto.h - the auth service's wire protocol (doc/auth.md): what
 * smtpd sends to postern-auth and what it answers.  Lines of text ending
 * in LF, fields separated by one space, "-" for an empty field:
 *
 *   S APP SERVICE REALM LOCAL REMOTE FLAGS   start (once; again to change)
 *       -> M MECH...   the mechanisms offered    E REASON  refused
 *   A MECH [RESPONSE]  begin an exchange (RESPONSE base64, "=" empty)
 *   R RESPONSE         answer a challenge (base64, may be empty)
 *       -> C CHALLENGE  another round (base64)
 *          K USERNAME   authenticated
 *          F USER REASON  failed (535)    T USER REASON  try again (454)
 *                       (USER: the name tried, "-" when unknown)
 *          E REASON     protocol error; the service closes the connection
 */
#ifndef POSTERN_AUTH_PROTO_H
#define POSTERN_AUTH_PROTO_H

/* the service's socket, in queue_directory (doc/privileges.md) */
#define AUTH_SOCKET         "public/auth"
/* the longest line either side sends (smtpd_sasl_response_limit is 12288
 * bytes of base64; the rest is room for the verb) */
#define AUTH_LINE_MAX       16384

#endif
