/* rewrite_mime.h - the MIME structure of a message as rewrite sees it
 * (Postfix's mime_state, trimmed to what mime_header_checks and
 * nested_header_checks need): which header sections there are and where
 * the multipart boundaries stand.  The stream (rewrite_stream.c) reads the
 * lines; this module says what each line starts or ends.  Nothing is
 * decoded, and a message this module does not understand passes as body. */
#ifndef POSTERN_REWRITE_MIME_H
#define POSTERN_REWRITE_MIME_H

#include <stddef.h>

#include "strlist.h"

struct mime_state {
    struct strlist boundaries;  /* of the open multiparts, innermost last */
    long limit;                 /* mime_nesting_limit */
    char *next_boundary;        /* the multipart the current header section declares */
    int next_message;           /* ... or message/rfc822: its body is a message */
};

void mime_init(struct mime_state *ms, long nesting_limit);
void mime_free(struct mime_state *ms);
/* Note one logical header of a header section (Content-Type). */
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
/* 1 when a header name is a MIME header (Content-*, MIME-Version), which
 * Postfix gives to mime_header_checks wherever it stands. */
int mime_header_name(const char *name, size_t len);

#endif
