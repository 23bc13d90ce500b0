/* milter_proto.h - the Sendmail milter protocol (version 6, as libmilter
 * speaks it and Postfix's MILTER_README describes it), the MTA's side:
 * packets are a 4-byte length in network order (counting the command
 * byte), a command byte and its data.  This module builds the MTA's
 * packets and parses the milter's; it does no I/O (milter_client.c
 * talks to the milters).
 */
#ifndef POSTERN_MILTER_PROTO_H
#define POSTERN_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* MTA to milter */
#define SMFIC_ABORT     'A'
#define SMFIC_BODY      'B'
#define SMFIC_CONNECT   'C'
#define SMFIC_MACRO     'D'
#define SMFIC_BODYEOB   'E'
#define SMFIC_HELO      'H'
#define SMFIC_HEADER    'L'
#define SMFIC_MAIL      'M'
#define SMFIC_EOH       'N'
#define SMFIC_OPTNEG    'O'
#define SMFIC_QUIT      'Q'
#define SMFIC_RCPT      'R'
#define SMFIC_DATA      'T'
#define SMFIC_UNKNOWN   'U'

/* milter to MTA */
#define SMFIR_ADDRCPT     '+'
#define SMFIR_DELRCPT     '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN    '4'
#define SMFIR_ACCEPT      'a'
#define SMFIR_REPLBODY    'b'
#define SMFIR_CONTINUE    'c'
#define SMFIR_DISCARD     'd'
#define SMFIR_CHGFROM     'e'
#define SMFIR_CONN_FAIL   'f'
#define SMFIR_ADDHEADER   'h'
#define SMFIR_INSHEADER   'i'
#define SMFIR_SETSYMLIST  'l'
#define SMFIR_CHGHEADER   'm'
#define SMFIR_PROGRESS    'p'
#define SMFIR_QUARANTINE  'q'
#define SMFIR_REJECT      'r'
#define SMFIR_SKIP        's'
#define SMFIR_TEMPFAIL    't'
#define SMFIR_REPLYCODE   'y'

/* actions the MTA allows (SMFIF_*) */
#define SMFIF_ADDHDRS     0x001
#define SMFIF_CHGBODY     0x002
#define SMFIF_ADDRCPT     0x004
#define SMFIF_DELRCPT     0x008
#define SMFIF_CHGHDRS     0x010
#define SMFIF_QUARANTINE  0x020
#define SMFIF_CHGFROM     0x040
#define SMFIF_ADDRCPT_PAR 0x080
#define SMFIF_SETSYMLIST  0x100

/* protocol steps (SMFIP_*): events not sent, replies not given */
#define SMFIP_NOCONNECT   0x000001
#define SMFIP_NOHELO      0x000002
#define SMFIP_NOMAIL      0x000004
#define SMFIP_NORCPT      0x000008
#define SMFIP_NOBODY      0x000010
#define SMFIP_NOHDRS      0x000020
#define SMFIP_NOEOH       0x000040
#define SMFIP_NR_HDR      0x000080
#define SMFIP_NOUNKNOWN   0x000100
#define SMFIP_NODATA      0x000200
#define SMFIP_SKIP        0x000400
#define SMFIP_RCPT_REJ    0x000800
#define SMFIP_NR_CONN     0x001000
#define SMFIP_NR_HELO     0x002000
#define SMFIP_NR_MAIL     0x004000
#define SMFIP_NR_RCPT     0x008000
#define SMFIP_NR_DATA     0x010000
#define SMFIP_NR_UNKN     0x020000
#define SMFIP_NR_EOH      0x040000
#define SMFIP_NR_BODY     0x080000
#define SMFIP_HDR_LEADSPC 0x100000

/* macro stages of SMFIR_SETSYMLIST */
enum milter_stage {
    MILTER_STAGE_CONNECT, MILTER_STAGE_HELO, MILTER_STAGE_MAIL, MILTER_STAGE_RCPT,
    MILTER_STAGE_DATA, MILTER_STAGE_EOM, MILTER_STAGE_EOH, MILTER_STAGE_COUNT
};

#define MILTER_PACKET_MAX   (1024 * 1024)   /* a larger reply is an error */
#define MILTER_CHUNK_SIZE   65535           /* body data per SMFIC_BODY */

/* Start a packet of `command` in out (replacing its contents); then add
 * its data with the functions below and close it with milter_packet_end. */
void milter_packet_begin(struct strbuf *out, int command);
void milter_packet_u32(struct strbuf *out, uint32_t value);
void milter_packet_u16(struct strbuf *out, uint16_t value);
/* A NUL-terminated string (the NUL included). */
void milter_packet_string(struct strbuf *out, const char *s);
void milter_packet_bytes(struct strbuf *out, const void *bytes, size_t n);
/* Write the length into the header; the packet is out->s, out->len bytes. */
void milter_packet_end(struct strbuf *out);

/* The length in a packet's 4-byte header (the command byte and data). */
uint32_t milter_packet_length(const unsigned char header[4]);

/* The milter's answer to SMFIC_OPTNEG. */
struct milter_optneg {
    uint32_t version, actions, protocol;
    /* SMFIR_SETSYMLIST: the macros the milter wants at each stage, "" when
     * it named none (then the MTA's lists apply) */
    struct strbuf macros[MILTER_STAGE_COUNT];
    int macros_set[MILTER_STAGE_COUNT];
};
/* Parse an SMFIC_OPTNEG answer's data (after the command byte): 0, or -1
 * with why set. */
int milter_optneg_parse(const unsigned char *data, size_t len, struct milter_optneg *out,
                        struct strbuf *why);
void milter_optneg_free(struct milter_optneg *neg);

/* One reply or modification request of a milter. */
struct milter_reply {
    int command;                /* SMFIR_* */
    uint32_t index;             /* SMFIR_INSHEADER, SMFIR_CHGHEADER */
    struct strbuf name;         /* header name; address (ADDRCPT, DELRCPT,
                                   CHGFROM); SMTP reply (REPLYCODE);
                                   reason (QUARANTINE) */
    struct strbuf value;        /* header value; ESMTP arguments (ADDRCPT_PAR,
                                   CHGFROM); body bytes (REPLBODY) */
};
#define MILTER_REPLY_INIT { 0, 0, STRBUF_INIT, STRBUF_INIT }
/* Parse a reply packet (command byte and data, without the length): 0,
 * or -1 with why set (an unknown command, a bad length, a missing NUL, a
 * malformed SMTP reply).  An SMFIR_REPLYCODE is checked as Postfix checks
 * it (4xx or 5xx, a space or hyphen, the enhanced code's class matching)
 * and its doubled '%' made single, lone ones dropped. */
int milter_reply_parse(const unsigned char *packet, size_t len, struct milter_reply *out,
                       struct strbuf *why);
void milter_reply_free(struct milter_reply *reply);

#endif
