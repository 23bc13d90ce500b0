/* mime_downgrade.h - 8-bit to 7-bit conversion of a message on its way
 * to a server that does not announce 8BITMIME, as Postfix's smtp(8) does
 * it (mime_state's MIME_OPT_DOWNGRADE): the body of each leaf part (and of
 * the message itself) whose Content-Transfer-Encoding is 8bit or binary is
 * re-encoded quoted-printable, and its Content-Transfer-Encoding header
 * replaced, at the end of its header section, by "quoted-printable"; a
 * message or multipart entity declared 8bit or binary gets "7bit"
 * instead and its parts are converted in turn (recursively, through
 * message/rfc822 too).  What is not declared 8-bit passes as it is: a
 * part declared 7bit (or not declared) with 8-bit bytes in it, and 8-bit
 * bytes in headers, as in Postfix.  A structure nested deeper than
 * mime_nesting_limit cannot be converted: the delivery must fail
 * (Postfix's "5.6.0 MIME nesting exceeds safety limit").
 *
 * The structure comes from the one MIME parser (rewrite_mime.h); this
 * module only decides what to write.  Input is the message as the queue
 * holds it (LF line ends), in pieces of any size; output goes to a
 * callback as LF-terminated lines (pieces of long lines in between), for
 * the caller's CR LF and dot-stuffing.
 *
 *     struct mime_downgrade *d = mime_downgrade_begin(&limits, out, ctx);
 *     mime_downgrade_feed(d, bytes, n);       // as often as needed
 *     unsigned errors = mime_downgrade_end(d, NULL); // frees d
 */
#ifndef POSTERN_MIME_DOWNGRADE_H
#define POSTERN_MIME_DOWNGRADE_H

#include <stddef.h>

/* Where converted bytes go. */
typedef void (*mime_downgrade_out)(void *context, const char *bytes, size_t n);

struct mime_downgrade_limits {
    long nesting_limit;         /* mime_nesting_limit */
    size_t boundary_limit;      /* mime_boundary_length_limit (0: 2048) */
    size_t header_limit;        /* header_size_limit: the rest of a longer
                                   header is dropped, as in Postfix */
};

struct mime_downgrade;
struct mime_downgrade *mime_downgrade_begin(const struct mime_downgrade_limits *limits,
                                            mime_downgrade_out out, void *context);
/* Take n more bytes.  Returns the MIME errors found so far (rewrite_mime.h:
 * MIME_ERR_NESTING): once non-zero, the output is incomplete and the
 * caller must abandon the message. */
unsigned mime_downgrade_feed(struct mime_downgrade *d, const char *bytes, size_t n);
/* The input ended (a last line without LF is ended): write what is held
 * and free d.  Returns the MIME errors, as mime_downgrade_feed();
 * *declared_8bit (when not NULL) says whether any entity was declared
 * 8bit or binary (whether anything was converted). */
unsigned mime_downgrade_end(struct mime_downgrade *d, int *declared_8bit);
/* Give up without writing more (NULL is fine). */
void mime_downgrade_free(struct mime_downgrade *d);

#endif
