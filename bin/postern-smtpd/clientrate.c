/* clientrate.c - events per client and time unit, counted across the
 * sessions of one smtpd service: smtpd_client_auth_rate_limit,
 * smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit and
 * smtpd_client_new_tls_session_rate_limit (Postfix's anvil(8) counts them
 * in a daemon of its own; connections are counted by postern-accept,
 * which sees them all).
 *
 * Each session is a process of its own, forked from the service's zygote
 * (postern-accept -z).  The zygote maps a small table of shared memory
 * before it forks (client_rate_init); every child inherits the mapping and
 * counts in it with atomic operations, so there is no daemon to ask, no
 * lock a killed child could leave held, and nothing to clean up: the table
 * goes with the last process of the service.  A slot holds a keyed hash of
 * the client address and one 64-bit word per kind of event, the start of
 * the client's window (seconds) and its count; a window older than
 * anvil_rate_time_unit starts again.  When every slot a client may use is taken by a client
 * with a current window, that client is not counted (the table is a limit
 * against abuse, as anvil's is, not an accounting).  A session could write
 * anything into the table: at worst it resets the counts, which it could
 * evade anyway by reconnecting from elsewhere.
 *
 * Without a zygote (systemd's Accept=yes, inetd) there is no table and no
 * limit; smtpd says so once when the limit is set (doc/auth.md).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "smtpd.h"

#define RATE_SLOTS  4096        /* 160 KiB, touched only where clients land */
#define RATE_PROBES 8

struct rate_slot {
    _Atomic uint64_t key;       /* hash of the address; 0: free */
    _Atomic uint64_t window[CLIENT_EVENTS];     /* start (seconds) << 32 | count */
};

/* The limit of each kind of event and the words of Postfix's warning. */
static const struct {
    const char *param;
    const char *what;
} events[CLIENT_EVENTS] = {
    [CLIENT_AUTH] = {"smtpd_client_auth_rate_limit", "AUTH command rate"},
    [CLIENT_MAIL] = {"smtpd_client_message_rate_limit", "Message delivery request rate"},
    [CLIENT_RCPT] = {"smtpd_client_recipient_rate_limit", "Recipient address rate"},
    [CLIENT_NEWTLS] = {"smtpd_client_new_tls_session_rate_limit", "New TLS session rate"},
};

static struct rate_slot *table;
static uint64_t hash_seed;

void client_rate_init(void)
{
    if (table)
        return;
    void *map = mmap(NULL, RATE_SLOTS * sizeof *table, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        msg_warn_errno("client rate table: mmap");
        return;
    }
    if (getrandom(&hash_seed, sizeof hash_seed, 0) != (ssize_t)sizeof hash_seed)
        hash_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u;
    table = map;
}

/* FNV-1a over the seed and the address; never 0 (a free slot). */
static uint64_t address_hash(const char *address)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((hash_seed >> (8 * i)) & 0xff)) * 0x100000001b3u;
    for (const unsigned char *p = (const unsigned char *)address; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return h ? h : 1;
}

/* Seconds of the machine's monotonic clock, shared by every process; never 0. */
static uint32_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_sec + 1;
}

/* Whether every window of a slot is over. */
static int slot_over(struct rate_slot *slot, uint32_t now, uint32_t unit)
{
    for (int e = 0; e < CLIENT_EVENTS; e++) {
        uint32_t begun = (uint32_t)(atomic_load(&slot->window[e]) >> 32);
        if (begun != 0 && now - begun < unit)
            return 0;
    }
    return 1;
}

/* The client's slot, claimed when it has none; NULL when the table is full. */
static struct rate_slot *find_slot(uint64_t key, uint32_t now, uint32_t unit)
{
    size_t start = (size_t)(key % RATE_SLOTS);
    struct rate_slot *stale = NULL;
    for (size_t i = 0; i < RATE_PROBES; i++) {
        struct rate_slot *slot = &table[(start + i) % RATE_SLOTS];
        uint64_t owner = atomic_load(&slot->key);
        if (owner == 0) {
            uint64_t expected = 0;
            if (atomic_compare_exchange_strong(&slot->key, &expected, key) || expected == key)
                return slot;
            owner = expected;
        }
        if (owner == key)
            return slot;
        if (!stale && slot_over(slot, now, unit))
            stale = slot;
    }
    if (stale) {
        /* another client's windows are over: the slot is ours now */
        for (int e = 0; e < CLIENT_EVENTS; e++)
            atomic_store(&stale->window[e], 0);
        atomic_store(&stale->key, key);
    }
    return stale;
}

/* The count of one kind of event in the client's current window, this one
 * included when `add`; 0 when nothing is counted. */
static unsigned rate_count(enum client_event ev, const char *address, long long unit, int add)
{
    if (!table || unit <= 0)
        return 0;
    uint32_t now = now_seconds();
    uint32_t span = unit > UINT32_MAX ? UINT32_MAX : (uint32_t)unit;
    struct rate_slot *slot = find_slot(address_hash(address), now, span);
    if (!slot)
        return 0;
    _Atomic uint64_t *window = &slot->window[ev];
    uint64_t old = atomic_load(window), next;
    do {
        uint32_t begun = (uint32_t)(old >> 32), count = (uint32_t)old;
        if (begun == 0 || now - begun >= span)
            next = add ? (uint64_t)now << 32 | 1 : 0;
        else
            next = !add || count == UINT32_MAX ? old : old + 1;
        if (!add)
            return (unsigned)(uint32_t)next;
    } while (!atomic_compare_exchange_weak(window, &old, next));
    return (unsigned)(uint32_t)next;
}

/* The client's count of the event (see rate_count), or 0 when the event
 * is not limited for it. */
static unsigned client_count(struct session *s, enum client_event ev, int add, long long *limit)
{
    *limit = conf_int(events[ev].param);
    if (*limit <= 0)
        return 0;
    if (!table) {
        static int said[CLIENT_EVENTS];
        if (!said[ev]++)
            msg_warn("%s needs postern-accept -z (the zygote keeps the counts): it is not enforced",
                     events[ev].param);
        return 0;
    }
    /* as Postfix: clients that may use XCLIENT are not counted, nor the
     * exceptions */
    if (s->xclient_allowed || policy_client_in(s, "smtpd_client_event_limit_exceptions"))
        return 0;
    return rate_count(ev, s->client.address, conf_time("anvil_rate_time_unit"), add);
}

unsigned client_rate_exceeded(struct session *s, enum client_event ev, int add)
{
    long long limit;
    unsigned rate = client_count(s, ev, add, &limit);
    /* a peek (before a TLS handshake) counts the session it would start */
    if (!add && rate)
        rate++;
    if (rate <= limit)
        return 0;
    msg_warn("%s limit exceeded: %u from %s for service %s", events[ev].what, rate,
             s->client.namaddr, client_rate_service(s));
    return rate;
}

void client_rate_add(struct session *s, enum client_event ev)
{
    long long limit;
    (void)client_count(s, ev, 1, &limit);
}

const char *client_rate_service(struct session *s)
{
    static char service[128];
    snprintf(service, sizeof service, "%s:%s",
             *s->client.local_address ? s->client.local_address : "smtpd",
             *s->client.local_port ? s->client.local_port : "smtp");
    return service;
}
