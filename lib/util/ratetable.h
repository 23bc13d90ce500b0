/* ratetable.h - counts of events per key (a client address) and time
 * window, in shared memory that every process forked after
 * ratetable_new() updates with atomic operations: no lock a killed process
 * could leave held, no daemon to ask (smtpd's anvil rate limits,
 * bin/postern-smtpd/clientrate.c).  ratetable.c says how slots are taken. */
#ifndef POSTERN_RATETABLE_H
#define POSTERN_RATETABLE_H

#include <stddef.h>
#include <stdint.h>

#define RATETABLE_MAX_EVENTS 8

struct ratetable;

/* A table of `slots` keys (a power of two), `events` kinds of event each;
 * NULL with errno set when the memory cannot be mapped. */
struct ratetable *ratetable_new(size_t slots, int events);

/* Seconds of the machine's monotonic clock, the same in every process;
 * never 0. */
uint32_t ratetable_now(void);

/* The key's count of the event in its current window of `unit` seconds at
 * `now`, this event included when `add` (a window older than the unit
 * starts again); without `add`, only looked at.  0 when nothing is counted
 * (other processes kept winning the race for the key's slot). */
unsigned ratetable_count(struct ratetable *t, int event, const char *key, uint32_t unit, int add,
                         uint32_t now);

/* Whether the key has a slot now (nothing is claimed or counted): for
 * tests and diagnostics. */
int ratetable_holds(struct ratetable *t, const char *key);

#endif
