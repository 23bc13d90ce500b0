/* policy_dns.c - the restrictions that judge the client's names in the
 * DNS (peer.c finds them through the lookup service), with Postfix 3.7's
 * replies: a name that does not exist gets unknown_client_reject_code
 * (450 by default), one that could not be looked up 450, never a 5xx.
 *   reject_unknown_client_hostname (reject_unknown_client): no
 *     forward-confirmed name; 4.7.25 (RFC 7372)
 *   reject_unknown_reverse_client_hostname: no PTR name; 4.7.1
 */
#include "config.h"
#include "policy_impl.h"
#include "strbuf.h"

/* "CODE DSN Client host rejected: cannot find your [reverse ]hostname, [IP]";
 * status 'N' (does not exist) takes unknown_client_reject_code, else 450. */
static enum verdict unknown_name(struct check_ctx *ctx, char status, const char *dsn,
                                 const char *which)
{
    int code = status == 'N' ? (int)conf_int("unknown_client_reject_code") : 450;
    strbuf_reset(ctx->reply);
    /* the enhanced code's class follows the reply's, as Postfix makes it */
    strbuf_printf(ctx->reply, "%d %d%s Client host rejected: cannot find your %shostname, [%s]",
                  code, code / 100, dsn + 1, which, ctx->s->client.address);
    return V_REPLY;
}

enum verdict check_unknown_client_hostname(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char status = ctx->s->client.forward_status;
    if (status == 'F')
        return V_DUNNO;
    return unknown_name(ctx, status ? status : 'N', "4.7.25", "");
}

enum verdict check_unknown_reverse_client_hostname(struct check_ctx *ctx, const char *table)
{
    (void)table;
    char status = ctx->s->client.reverse_status;
    if (status == 'F')
        return V_DUNNO;
    return unknown_name(ctx, status ? status : 'N', "4.7.1", "reverse ");
}
