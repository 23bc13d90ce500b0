/* clients.c - the state postern-accept keeps across connections, as
 * Postfix's anvil(8) does: per client address the number of open connections
 * and the connections in the current rate window; per child the client it
 * serves, so its exit gives the connection back. */
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "accept.h"
#include "xalloc.h"

struct client {
    struct client_key key;
    unsigned count;             /* open connections */
    unsigned rate_count;        /* connections since rate_start */
    time_t rate_start;
    struct client *next;        /* hash chain */
};

static struct client **client_buckets;
static size_t client_bucket_count;      /* power of two */
static size_t client_total;

/* FNV-1a over the key. */
static size_t key_hash(const struct client_key *key)
{
    uint64_t h = 1469598103934665603ULL ^ key->family;
    size_t n = key->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        h ^= key->bytes[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29));
}

int client_key_from(struct client_key *key, const struct sockaddr *addr)
{
    memset(key, 0, sizeof *key);
    if (addr->sa_family == AF_INET) {
        key->family = AF_INET;
        memcpy(key->bytes, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return 0;
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key->family = AF_INET;
            memcpy(key->bytes, a->s6_addr + 12, 4);
        } else {
            key->family = AF_INET6;
            memcpy(key->bytes, a->s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

/* Double the bucket array and rehash. */
static void grow_clients(void)
{
    size_t new_count = client_bucket_count ? 2 * client_bucket_count : 256;
    struct client **buckets = xcalloc(new_count, sizeof *buckets);
    for (size_t i = 0; i < client_bucket_count; i++) {
        struct client *c = client_buckets[i], *next;
        for (; c; c = next) {
            next = c->next;
            size_t b = key_hash(&c->key) & (new_count - 1);
            c->next = buckets[b];
            buckets[b] = c;
        }
    }
    free(client_buckets);
    client_buckets = buckets;
    client_bucket_count = new_count;
}

struct client *client_get(const struct client_key *key)
{
    if (client_total >= client_bucket_count)
        grow_clients();
    size_t b = key_hash(key) & (client_bucket_count - 1);
    for (struct client *c = client_buckets[b]; c; c = c->next)
        if (memcmp(&c->key, key, sizeof *key) == 0)
            return c;
    struct client *c = xcalloc(1, sizeof *c);
    c->key = *key;
    c->next = client_buckets[b];
    client_buckets[b] = c;
    client_total++;
    return c;
}

unsigned client_connect(struct client *client, time_t now, time_t rate_unit,
                        unsigned *rate)
{
    /* anvil's window: it starts at the first connection and lasts one
     * rate_unit; the next connection after it starts a new one */
    if (client->rate_count == 0 || now - client->rate_start > rate_unit) {
        client->rate_start = now;
        client->rate_count = 0;
    }
    client->rate_count++;
    client->count++;
    *rate = client->rate_count;
    return client->count;
}

void client_disconnect(struct client *client)
{
    if (client->count > 0)
        client->count--;
}

void client_expire(time_t now, time_t rate_unit)
{
    for (size_t i = 0; i < client_bucket_count; i++) {
        struct client **link = &client_buckets[i];
        while (*link) {
            struct client *c = *link;
            if (c->count == 0 && now - c->rate_start > rate_unit) {
                *link = c->next;
                free(c);
                client_total--;
            } else {
                link = &c->next;
            }
        }
    }
}

/* ---- children: an open-addressing table pid -> client ---- */

struct child_slot {
    pid_t pid;                  /* 0 = empty */
    struct client *client;      /* NULL: none, or its connection already given back */
    unsigned long long serial;  /* order of starting: the oldest has the lowest */
};

static struct child_slot *child_slots;
static size_t child_slot_count;         /* power of two */
static size_t child_total;
static unsigned long long child_serial;

/* The home slot of a pid. */
static size_t pid_home(pid_t pid)
{
    return ((size_t)pid * 2654435761u) & (child_slot_count - 1);
}

/* Place an entry (the table has room). */
static void child_insert(const struct child_slot *entry)
{
    size_t i = pid_home(entry->pid);
    while (child_slots[i].pid)
        i = (i + 1) & (child_slot_count - 1);
    child_slots[i] = *entry;
}

void child_add(pid_t pid, struct client *client)
{
    if (2 * (child_total + 1) > child_slot_count) {
        struct child_slot *old = child_slots;
        size_t old_count = child_slot_count;
        child_slot_count = old_count ? 2 * old_count : 256;
        child_slots = xcalloc(child_slot_count, sizeof *child_slots);
        for (size_t i = 0; i < old_count; i++)
            if (old[i].pid)
                child_insert(&old[i]);
        free(old);
    }
    struct child_slot entry = {pid, client, ++child_serial};
    child_insert(&entry);
    child_total++;
}

int child_remove(pid_t pid, struct client **client)
{
    if (!child_slot_count)
        return 0;
    size_t mask = child_slot_count - 1;
    size_t i = pid_home(pid);
    while (child_slots[i].pid && child_slots[i].pid != pid)
        i = (i + 1) & mask;
    if (!child_slots[i].pid)
        return 0;
    *client = child_slots[i].client;
    child_slots[i].pid = 0;
    child_total--;
    /* backward-shift deletion keeps every probe chain unbroken */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; child_slots[j].pid; j = (j + 1) & mask) {
        size_t home = pid_home(child_slots[j].pid);
        /* move j into the hole when its home is not in (hole, j] */
        int home_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!home_between) {
            child_slots[hole] = child_slots[j];
            child_slots[j].pid = 0;
            hole = j;
        }
    }
    return 1;
}

size_t child_count(void)
{
    return child_total;
}

unsigned client_connections(const struct client *client)
{
    return client ? client->count : 0;
}

const struct client_key *client_key_of(const struct client *client)
{
    return &client->key;
}

pid_t child_evict(unsigned more_than, struct client **victim)
{
    struct child_slot *chosen = NULL;
    for (size_t i = 0; i < child_slot_count; i++) {
        struct child_slot *slot = &child_slots[i];
        if (!slot->pid || !slot->client || slot->client->count <= more_than)
            continue;
        if (!chosen || slot->client->count > chosen->client->count
            || (slot->client == chosen->client && slot->serial < chosen->serial))
            chosen = slot;
    }
    if (!chosen)
        return 0;
    *victim = chosen->client;
    client_disconnect(chosen->client);
    chosen->client = NULL;
    return chosen->pid;
}

void child_signal_all(int sig)
{
    for (size_t i = 0; i < child_slot_count; i++)
        if (child_slots[i].pid)
            kill(child_slots[i].pid, sig);
}

void clients_free_all(void)
{
    for (size_t i = 0; i < client_bucket_count; i++) {
        struct client *c = client_buckets[i], *next;
        for (; c; c = next) {
            next = c->next;
            free(c);
        }
    }
    free(client_buckets);
    client_buckets = NULL;
    client_bucket_count = client_total = 0;
    free(child_slots);
    child_slots = NULL;
    child_slot_count = child_total = 0;
}
