/* queuefile.h - reading, writing and updating queue files in the format of
 * doc/queue-format.md.  postern-queue writes them; qmgr reads them and
 * rewrites recipient status bytes in place; postern-bounce and `postern
 * queue` read them.  Nothing else knows the format. */
#ifndef POSTERN_QUEUEFILE_H
#define POSTERN_QUEUEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config.h"
#include "outcome.h"

struct strbuf;

/* Queue subdirectories. */
#define QUEUE_INCOMING  "incoming"
#define QUEUE_ACTIVE    "active"
#define QUEUE_DEFERRED  "deferred"
#define QUEUE_HOLD      "hold"
#define QUEUE_CORRUPT   "corrupt"
#define QUEUE_TRIGGER   "public/qmgr"
#define QUEUE_SERVICE   "public/queue"  /* the queue service (postern-queue -S) */
/* Emptied queue files that qmgr keeps for injectors to reuse: on ext4
 * creating and removing a file costs more than everything else the queue
 * does for a message (doc/queue-format.md, "Recycled files"). */
#define QUEUE_RECYCLE   "recycle"
#define QUEUE_RECYCLE_SLOTS 64      /* its files are named 0 to 63 */
/* Since the one-fsync commit (doc/queue-format.md, "Commit"), recycle/
 * holds the slots: files whose names are on disk before a message is
 * written into them, so that one fdatasync of the file commits a message.
 * A slot keeps its name for the message's whole life (the queue id is a
 * second link); slots beyond the 64 are made when all are busy and
 * removed when emptied: their names start with QUEUE_SLOT_EXTRA. */
#define QUEUE_SLOT_EXTRA "x"
/* A slot qmgr is making: renamed to its number once its name is on disk
 * (queue_slots_stock); recovery looks at such names as at slots. */
#define QUEUE_SLOT_STAGED ".new."

/* Recipient status bytes: RCPT_TODO, RCPT_BOUNCE, RCPT_DONE of outcome.h. */

struct queue_recipient {
    char *address;
    off_t status_offset;        /* byte offset of the status byte */
    char status;                /* RCPT_TODO, RCPT_BOUNCE or RCPT_DONE */
    char *orcpt;                /* ORCPT attribute or NULL */
    char *notify;               /* NOTIFY attribute or NULL */
    char *last_status;          /* last S record: "4.4.1 text", or NULL */
    char *remote_mta;           /* last Y record: the host that gave the
                                   last status ("mx.example.com"), or NULL */
    int success_noticed;        /* an N record exists */
    char *routed;               /* not in the file: where qmgr's resolver
                                   routed the address (user%other@ours ->
                                   user@other), or NULL when it did not */
    unsigned parts;             /* not in the file: results still to come
                                   for it this round (its own and its
                                   hand-over parts, doc/delivery.md); 0:
                                   the next result is the recipient's */
    char part_outcome;          /* not in the file: the worst outcome of
                                   its parts so far (OUTCOME_*), or 0 */
    char *part_status;          /* not in the file: "X.Y.Z text" of it */
    int relayed;                /* not in the file: delivered this round to a
                                   system that sends no notices (an L result) */
};

struct queue_file {
    char *id;
    long long arrival_sec;
    long arrival_usec;
    char *sender;               /* "" for the null sender */
    struct strlist attrs;       /* "name=value", in file order */
    struct queue_recipient *rcpt;
    size_t rcpt_count;
    off_t content_offset;       /* first byte of the message */
    off_t content_length;
    long long delay_warned;     /* time of the last W record, 0 when none */
    off_t size;                 /* file size when read: where appends go */
    off_t header_end;           /* offset of the M record */
    char *commit_id;            /* the id of the commit record "E<id> <crc>",
                                   NULL for a file of an older postern ("E") */
    uint32_t checksum;          /* the commit record's CRC-32C */
};

/* Parse an open queue file: the part postern-queue wrote and every record
 * appended after it.  0, or -1 with the reason in err (the file is corrupt
 * or unreadable; errno is set for I/O errors, 0 for format errors). */
int queue_file_read(int fd, const char *id, struct queue_file *qf,
                    struct strbuf *err);
void queue_file_free(struct queue_file *qf);
/* The value of a message attribute ("ENVID"), or NULL. */
const char *queue_file_attr(const struct queue_file *qf, const char *name);

/* Check a file read by queue_file_read against its commit record: the
 * CRC-32C of the records before M (status bytes counted as R), of the
 * content and of the id.  0 when it matches, 1 for a file without a
 * checksum (an older postern's "E"), -1 with err set when it does not
 * match or cannot be read (a torn or unfinished write). */
int queue_file_verify(int fd, const struct queue_file *qf, struct strbuf *err);

/* Rewrite one recipient's status byte (pwrite; no sync). 0 or -1 (errno). */
int queue_file_set_status(int fd, struct queue_recipient *rcpt, char status);
/* Append one record line ("S812 4.4.1 text") at the end of the file
 * (no sync). 0 or -1 (errno). */
int queue_file_append(int fd, struct queue_file *qf, const char *record);
/* fdatasync: after this, status changes are on disk. 0 or -1 (errno). */
int queue_file_sync(int fd);

/* Writing a new queue file (postern-queue only). */
struct queue_writer {
    int fd;                     /* the slot (or the temporary file) */
    int dir_fd;                 /* incoming/ */
    int slot_dir_fd;            /* recycle/, -1 for a queue without it */
    char slot[48];              /* the slot's name in recycle/, "" without */
    int slot_new;               /* we made the slot: recycle/ is fsynced */
    uint32_t crc;               /* CRC-32C so far (commit record) */
    char tmp_name[64];          /* a queue without recycle/: incoming/.tmp.* */
    char id[32];
    off_t length_offset;        /* where the content length is patched */
    off_t content_length;
    struct strbuf *buf;         /* pending records and content (one write
                                 * for a small message) */
    off_t flushed;              /* bytes of the file written so far */
    int bad_value;              /* a value held LF: commit refuses */
    uid_t owner;                /* whom the file is for: our euid, or for
                                 * root the owner of incoming/ (mail_owner) */
};
/* Take a free slot of queue_dir/recycle (locked with flock while it is
 * written), or make one; in a queue without recycle/ create a temporary
 * file in incoming/ (mode 0660 less the umask; run as root, given to the
 * owner of incoming/, mail_owner, so that qmgr can set its next attempt
 * time).  Derive the id; the arrival time is now.  0, or -1 with err set
 * (errno kept). */
int queue_writer_open(struct queue_writer *w, const char *queue_dir,
                      struct strbuf *err);
/* Header records, in the order of doc/queue-format.md.  Values must not
 * hold LF (the caller validates; a value with LF makes commit fail). */
void queue_writer_sender(struct queue_writer *w, const char *sender);
void queue_writer_attr(struct queue_writer *w, const char *name_eq_value);
void queue_writer_recipient(struct queue_writer *w, const char *address);
void queue_writer_rcpt_attr(struct queue_writer *w, const char *name_eq_value);
/* Start the content; then append content bytes (LF line ends; the caller
 * makes the content end with LF).  Content is buffered and written in large
 * writes.  0, or -1 with errno set (ENOSPC, EDQUOT: the disk is full). */
int queue_writer_begin_content(struct queue_writer *w);
int queue_writer_content(struct queue_writer *w, const void *bytes, size_t n);
/* Finish: patch the length, write the commit record (E, the id and the
 * checksum), fdatasync the slot (and recycle/ when the slot is new), then
 * link it into incoming/ under the id and unlock it.  In a queue without
 * recycle/: fsync, rename into incoming/ under the id (RENAME_NOREPLACE),
 * fsync the directory.  0 (the message is safe), or -1 with err set,
 * errno kept and the slot emptied (the temporary file removed). */
int queue_writer_commit(struct queue_writer *w, struct strbuf *err);
/* Give up: empty and release the slot (remove the temporary file). */
void queue_writer_abort(struct queue_writer *w);

/* Poke qmgr through the trigger FIFO (best effort): 'A' new mail, 'F' flush. */
void queue_trigger(const char *queue_dir, char request);
/* The longest domain of a site flush, and its characters. */
#define QUEUE_SITE_MAX   253
#define QUEUE_SITE_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_[]:"
/* Ask qmgr to deliver the deferred mail for one domain now, defer_transports
 * included (Postfix's postqueue -s, ETRN): "S" DOMAIN "\n" on the FIFO.
 * 0 (sent, or no qmgr listens), -1 when domain is not one. */
int queue_trigger_site(const char *queue_dir, const char *domain);

/* 1 when name has the form of a queue id (upper-case hex, 6-31 digits). */
int queue_id_valid(const char *name);

/* ---- the queue directory tree (lib/mail/queuedirs.c) ---- */
/* Create queue_dir and its subdirectories and the trigger FIFO with the
 * modes of doc/privileges.md, or fix the modes and owners of existing ones:
 *   queue_dir 0755; incoming/ 01770 owner:group (the setgid_group creates
 *   files there and opens it to fsync it; sticky: an injector can rename or
 *   remove only its own files); public/ 0711 owner:group (anyone reaches
 *   the queue service's socket, the group the FIFO; nobody lists it);
 *   recycle/ 0770 owner:group; active/ deferred/ hold/ corrupt/ pid/ 0700
 *   owner; public/qmgr a FIFO 0620 owner:group; the slots recycle/0..63
 *   (queue_slots_stock).
 * owner/group (uid_t)-1/(gid_t)-1: leave ownership alone (a self-contained
 * instance, where everything belongs to the invoking user).  0, or -1 with
 * err set. */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group,
                      struct strbuf *err);
/* The queue subdirectory (QUEUE_INCOMING, ...) that holds the message id,
 * or NULL when no queue does. */
const char *queue_find(const char *queue_dir, const char *id);
/* Postfix's rule for taking mail (smtpd_check_size, postconf(5)
 * queue_minfree): 1 when free_bytes in the queue file system is at most
 * queue_minfree, or less than 1.5 * message_size_limit (0: no limit), or
 * when a message of size bytes (SIZE=, 0: unknown) would leave less than
 * queue_minfree or take more than half of the free space. */
int queue_space_short(unsigned long long free_bytes, long long minfree, long long limit,
                      long long size);

/* ---- slots (lib/mail/queueslots.c) ---- */
/* Make the missing slots 0..QUEUE_RECYCLE_SLOTS-1 (empty, mode 0660,
 * recycle/'s group) and fsync recycle/ once when one was made, so that
 * injectors find slots whose names are on disk.  The number made, or -1
 * (errno) when recycle/ cannot be used. */
int queue_slots_stock(int queue_fd);
/* One slot that qmgr (or `postern queue`) looked at. */
enum slot_state {
    SLOT_FREE,          /* empty, or busy (a writer holds it, a message links it) */
    SLOT_COMMITTED,     /* a committed message no queue name links: named now */
    SLOT_FINISHED,      /* a committed message with nothing left to do: emptied */
    SLOT_INCOMPLETE,    /* no valid commit record (a writer died): emptied */
    SLOT_REMOVED,       /* an empty extra slot: removed */
};
/* Look at every slot not being written and not linked from the queue:
 * name a committed message in incoming/ under the id of its commit record,
 * empty a finished or incomplete one, remove empty extra slots.  skip(ino,
 * arg) says which inodes the caller holds open (qmgr's active messages:
 * never emptied under it).  report(state, slot, id, arg) is called for
 * each slot acted on.  0, or -1 (errno) when recycle/ cannot be read. */
int queue_slots_recover(int queue_fd, int (*skip)(ino_t, void *),
                        void (*report)(enum slot_state, const char *slot,
                                       const char *id, void *), void *arg);
/* Remove the queue name dir_fd/path (openat's) of a message whose inode may also be a
 * slot: the content is emptied first (made invalid, when keep_content is
 * set: qmgr may still be reading it), so that the slot never names it
 * again.  0 or -1 (errno). */
int queue_file_unlink(int dir_fd, const char *path, int keep_content);

/* ---- listing (lib/mail/queuelist.c) ---- */
/* Print the queue as mailq(1)/postqueue -p do: the heading, one entry per
 * message (id with `*` when active, `!` when on hold; size; arrival; sender,
 * then each recipient still to do, indented, after its deferral reason in
 * parentheses), then `-- N Kbytes in M Requests.`, or `Mail queue is
 * empty`.  Messages of incoming/, active/, deferred/, hold/, in that order.
 * Returns 0, or -1 when a queue directory cannot be read (logged; nothing
 * is printed then). */
int queue_list(const char *queue_dir, FILE *out);

#endif
