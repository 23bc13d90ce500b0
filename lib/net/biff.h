/* biff.h - the biff(1) notice of a mailbox delivery (biff.c). */
#ifndef POSTERN_BIFF_H
#define POSTERN_BIFF_H

/* Tell comsat on this machine that mail for user starts at offset in
 * the user's mailbox; errors are ignored, as Postfix's local(8). */
void biff_notify(const char *user, long long offset);

#endif
