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
 * goes with the last process of the service (lib/util/ratetable.c says
 * how slots are taken, and why a full table evicts rather than fails).
 *
 * Without a zygote (systemd's Accept=yes, inetd) there is no table and no
 * limit; smtpd says so once when the limit is set (doc/auth.md).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "ratetable.h"
#include "smtpd.h"

#define RATE_SLOTS 4096         /* 160 KiB, touched only where clients land */

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

static struct ratetable *table;

void client_rate_init(void)
{
    if (table)
        return;
    table = ratetable_new(RATE_SLOTS, CLIENT_EVENTS);
    if (!table)
        msg_warn_errno("client rate table");
}

/* The count of one kind of event in the client's current window, this one
 * included when `add`; 0 when nothing is counted. */
static unsigned rate_count(enum client_event ev, const char *address, long long unit, int add)
{
    if (!table || unit <= 0)
        return 0;
    return ratetable_count(table, (int)ev, address, unit > UINT32_MAX ? UINT32_MAX : (uint32_t)unit,
                           add, ratetable_now());
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
    if (rate <= limit)
        return 0;
    if (add)
        msg_warn("%s limit exceeded: %u from %s for service %s", events[ev].what, rate,
                 s->client.namaddr, client_rate_service(s));
    return rate;
}

const char *client_rate_service(struct session *s)
{
    static char service[128];
    snprintf(service, sizeof service, "%s:%s",
             *s->client.local_address ? s->client.local_address : "smtpd",
             *s->client.local_port ? s->client.local_port : "smtp");
    return service;
}
