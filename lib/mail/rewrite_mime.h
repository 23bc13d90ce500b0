/* rewrite_mime.h - the MIME structure of a message as rewrite sees it
 * (Postfix's mime_state, trimmed to what mime_header_checks,
 * nested_header_checks and the strict_* checks need): which header
 * sections there are, where the multipart boundaries stand, and each
 * section's type and Content-Transfer-Encoding.  The stream
 * (rewrite_stream.c) reads the lines; this module says what each line
 * starts or ends, and reports the MIME errors Postfix's cleanup reports.
 * Nothing is decoded (Postfix decodes nothing either: body_checks see the
 * encoded lines), and a message this module does not understand passes
 * as body. */
#ifndef POSTERN_REWRITE_MIME_H
#define POSTERN_REWRITE_MIME_H

#include <stddef.h>

#include "strlist.h"

/* MIME errors, most serious first (the reject reason is the first set):
 * Postfix's mime_state errors, each with the text its cleanup replies
 * with (mime_error_text). */
#define MIME_ERR_NESTING            0x01    /* mime_nesting_limit */
#define MIME_ERR_8BIT_IN_HEADER     0x04    /* strict_7bit_headers */
#define MIME_ERR_8BIT_IN_7BIT_BODY  0x08    /* strict_8bitmime_body */
#define MIME_ERR_ENCODING_DOMAIN    0x10    /* strict_mime_encoding_domain */

/* Called for each error as it is found: the code and the text that
 * shows it (the header, the body line, or the encoding's name). */
typedef void (*mime_error_fn)(void *context, unsigned code, const char *text, size_t len);

struct mime_state {
    struct strlist boundaries;  /* of the open multiparts, innermost last */
    char *digest;               /* per open multipart: 1 for multipart/digest,
                                 * whose parts default to message/rfc822 */
    int next_digest;            /* the declared multipart is a digest */
    long limit;                 /* mime_nesting_limit */
    size_t boundary_limit;      /* mime_boundary_length_limit */
    char *next_boundary;        /* the multipart the current header section declares */
    int next_message;           /* ... or message/rfc822: its body is a message */
    int ctype, stype;           /* the current header section's Content-Type */
    int encoding;               /* ... and its Content-Transfer-Encoding */
    int body_encoding;          /* the encoding of the body lines now read */
    unsigned report;            /* MIME_ERR_* to report */
    unsigned errors;            /* MIME_ERR_* found */
    mime_error_fn error;
    void *error_context;
};

void mime_init(struct mime_state *ms, long nesting_limit);
/* Report the errors in `report` (MIME_ERR_*) through `fn`; boundaries are
 * compared on their first `boundary_limit` bytes (0: 2048). */
void mime_report(struct mime_state *ms, unsigned report, size_t boundary_limit,
                 mime_error_fn fn, void *context);
void mime_free(struct mime_state *ms);
/* Note one logical header of a header section (Content-Type,
 * Content-Transfer-Encoding; 8-bit data). */
void mime_note_header(struct mime_state *ms, const char *header, size_t len);
/* A header section ended: 1 when what follows is the header section of
 * an attached message (message/rfc822), else 0; a declared multipart's
 * boundary is now open (up to the nesting limit). */
int mime_section_end(struct mime_state *ms);
/* A body line: MIME_PART when it is the boundary that starts a part (a
 * header section follows), MIME_CLOSE when it closes a multipart,
 * MIME_NONE otherwise. */
#define MIME_NONE 0
#define MIME_PART 1
#define MIME_CLOSE 2
int mime_boundary(struct mime_state *ms, const char *line, size_t len);
/* A body line (a piece of one) that is neither a boundary nor in a header
 * section: checked for 8-bit data where the body is 7bit. */
void mime_body_line(struct mime_state *ms, const char *line, size_t len);
/* 8-bit to 7-bit conversion (mime_downgrade.c) of the header section now
 * ending (ask before mime_section_end): MIME_KEEP when its encoding is
 * in the 7bit domain (7bit, quoted-printable, base64, or none given),
 * MIME_TO_7BIT for a message/ or multipart/ entity declared 8bit or
 * binary, MIME_TO_QP for any other entity so declared. */
#define MIME_KEEP 0
#define MIME_TO_7BIT 1
#define MIME_TO_QP 2
int mime_section_downgrade(const struct mime_state *ms);
/* 1 when the body lines now read are declared 8bit or binary. */
int mime_body_8bit(const struct mime_state *ms);
/* 1 when the logical header is a Content-Transfer-Encoding header. */
int mime_header_is_encoding(const char *header, size_t len);
/* 1 when a header name is a MIME header (Content-*, MIME-Version), which
 * Postfix gives to mime_header_checks wherever it stands. */
int mime_header_name(const char *name, size_t len);
/* The text of the most serious error in `errors` ("improper use of 8-bit
 * data in message header", ...: Postfix's words); its status is 5.6.0. */
const char *mime_error_text(unsigned errors);

#endif
