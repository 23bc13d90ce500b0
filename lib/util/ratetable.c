/* ratetable.c - events per key and time window in shared memory (see
 * ratetable.h).
 *
 * A slot is one owner word and one window word per kind of event.  The
 * owner word is a keyed hash of the key (40 bits) and the second the slot
 * was claimed (24 bits, modulo 2^24: 194 days, far longer than any time
 * unit); a window word is the start of the key's window (seconds) and its
 * count.  A key may use RATE_PROBES slots from the one its hash names.
 *
 * Taking a slot, free or not, is one compare-and-swap of the owner word:
 * two processes cannot both win it, and nothing else is stored.  A window
 * that began before the slot was claimed is the last owner's and counts as
 * over, as does one older than the unit.  A slot whose windows are all over
 * and which was claimed at least a unit ago is stale; a slot just claimed
 * and not yet counted is not.
 *
 * When none of a key's slots is free, its own or stale, the least recently
 * active one is taken (evicted), so every key is counted.  Failing open (not
 * counting) let a spread of addresses that filled the table lift the limit
 * for every client; failing closed would let it refuse every client's mail
 * (anvil never refuses to count: its table grows).  An evicted key starts a
 * new window when it comes back, which is what a spread of addresses could
 * have given it anyway.  A process could write anything into the table: at
 * worst it resets counts, as such a spread could.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "ratetable.h"

#define RATE_PROBES 8
#define CLAIM_BITS  24
#define CLAIM_MASK  ((1u << CLAIM_BITS) - 1)

struct ratetable {
    size_t slots;               /* a power of two */
    int events;
    uint64_t seed;
    _Atomic uint64_t words[];   /* per slot: owner, then a window per event */
};

struct ratetable *ratetable_new(size_t slots, int events)
{
    if (slots == 0 || (slots & (slots - 1)) || events < 1 || events > RATETABLE_MAX_EVENTS) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = sizeof(struct ratetable) + slots * (1 + (size_t)events) * sizeof(uint64_t);
    struct ratetable *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED)
        return NULL;
    t->slots = slots;
    t->events = events;
    if (getrandom(&t->seed, sizeof t->seed, 0) != (ssize_t)sizeof t->seed)
        t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u;
    return t;
}

uint32_t ratetable_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_sec + 1;
}

/* FNV-1a over the seed and the key. */
static uint64_t key_hash(const struct ratetable *t, const char *key)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((t->seed >> (8 * i)) & 0xff)) * 0x100000001b3u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return h;
}

static _Atomic uint64_t *slot_at(struct ratetable *t, size_t i)
{
    return &t->words[(i & (t->slots - 1)) * (1 + (size_t)t->events)];
}

static uint32_t since(uint32_t now, uint32_t then)
{
    return (now - then) & CLAIM_MASK;
}

/* The start of a window of the slot's owner, 0 when it is over (older than
 * the unit, or the last owner's: begun before the claim). */
static uint32_t window_begun(uint64_t window, uint64_t owner, uint32_t now, uint32_t unit)
{
    uint32_t begun = (uint32_t)(window >> 32);
    uint32_t claimed = (uint32_t)(owner & CLAIM_MASK);
    if (begun == 0 || now - begun >= unit || since(begun, claimed) > since(now, claimed))
        return 0;
    return begun;
}

/* How long ago the slot's owner was last active (the latest start of a
 * current window, else its claim), and whether the slot is stale. */
static uint32_t slot_idle(struct ratetable *t, _Atomic uint64_t *slot, uint64_t owner, uint32_t now,
                          uint32_t unit, int *stale)
{
    uint32_t idle = since(now, (uint32_t)(owner & CLAIM_MASK));
    *stale = idle >= unit;
    for (int e = 0; e < t->events; e++) {
        uint32_t begun = window_begun(atomic_load(&slot[1 + e]), owner, now, unit);
        if (begun) {
            *stale = 0;
            if (now - begun < idle)
                idle = now - begun;
        }
    }
    return idle;
}

/* The key's slot and its owner word: its own, else a free one, else a
 * stale one, else the least recently active one. */
static _Atomic uint64_t *find_slot(struct ratetable *t, uint64_t hash, uint32_t now, uint32_t unit,
                                   uint64_t *owner_out)
{
    uint64_t tag = hash >> CLAIM_BITS ? hash >> CLAIM_BITS : 1;
    uint64_t mine = tag << CLAIM_BITS | (now & CLAIM_MASK);
    for (int attempt = 0; attempt < 4; attempt++) {
        _Atomic uint64_t *victim = NULL, *free_slot = NULL;
        uint64_t victim_owner = 0;
        uint32_t victim_idle = 0;
        int victim_stale = 0;
        for (size_t i = 0; i < RATE_PROBES; i++) {
            _Atomic uint64_t *slot = slot_at(t, (size_t)hash + i);
            uint64_t owner = atomic_load(slot);
            if (owner == 0) {
                free_slot = slot;
                break;
            }
            if (owner >> CLAIM_BITS == tag) {
                *owner_out = owner;
                return slot;
            }
            int stale;
            uint32_t idle = slot_idle(t, slot, owner, now, unit, &stale);
            if (!victim || stale > victim_stale || (stale == victim_stale && idle > victim_idle)) {
                victim = slot;
                victim_owner = owner;
                victim_idle = idle;
                victim_stale = stale;
            }
        }
        /* slots are never freed, only taken over: a key owns none beyond a
         * free one, and takes the first free one it meets */
        if (free_slot) {
            victim = free_slot;
            victim_owner = 0;
        }
        if (atomic_compare_exchange_strong(victim, &victim_owner, mine)) {
            *owner_out = mine;
            return victim;
        }
    }
    return NULL;
}

unsigned ratetable_count(struct ratetable *t, int event, const char *key, uint32_t unit, int add,
                         uint32_t now)
{
    if (!t || event < 0 || event >= t->events || unit == 0)
        return 0;
    if (unit > CLAIM_MASK / 2)
        unit = CLAIM_MASK / 2;
    uint64_t owner;
    _Atomic uint64_t *slot = find_slot(t, key_hash(t, key), now, unit, &owner);
    if (!slot)
        return 0;
    _Atomic uint64_t *window = &slot[1 + event];
    uint64_t old = atomic_load(window), next;
    do {
        if (!window_begun(old, owner, now, unit))
            next = add ? (uint64_t)now << 32 | 1 : 0;
        else
            next = !add || (uint32_t)old == UINT32_MAX ? old : old + 1;
        if (!add)
            return (unsigned)(uint32_t)next;
    } while (!atomic_compare_exchange_weak(window, &old, next));
    return (unsigned)(uint32_t)next;
}

int ratetable_holds(struct ratetable *t, const char *key)
{
    if (!t)
        return 0;
    uint64_t hash = key_hash(t, key);
    uint64_t tag = hash >> CLAIM_BITS ? hash >> CLAIM_BITS : 1;
    for (size_t i = 0; i < RATE_PROBES; i++)
        if (atomic_load(slot_at(t, (size_t)hash + i)) >> CLAIM_BITS == tag)
            return 1;
    return 0;
}
