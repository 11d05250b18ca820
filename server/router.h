/*
 * router.h: the one routing step between dispatch and the engine
 * (DESIGN.md §11, PROTOCOL.md §17): for each request that names a channel,
 * run it here, forward it to the channel's owner over a peer connection
 * (peer.h), answer MOVED or UNAVAILABLE, or hold it while etcd is asked
 * who owns the channel (then dispatch it again, in its connection's order).
 * CANCEL and CREDIT of a held or forwarded request are the router's too.
 *
 * Single-node chand has no router (server's router is NULL) and pays one
 * branch per request.
 *
 * Ownership: the server owns the router; a held request's frame is copied
 * and freed by the router. A held request whose connection went is dropped;
 * a forwarded one is CANCELed at its owner (router_cancel_all).
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ROUTER_H
#define CHAND_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "conn.h"
#include "server.h"

struct cluster;
struct router;

int router_new(struct router **out, struct server *s, struct cluster *cl);
void router_free(struct router *r);

/* router_local's work in a cluster. */
bool router_route(struct conn *c, const struct proto_request *q, const uint8_t *body, size_t len);
/* router_id_in_use's and router_cancel_all's. */
bool router_has(struct conn *c, uint64_t id);
size_t router_forget(struct conn *c, int status);

/* Is id held or forwarded for c? Then it is in use (PROTOCOL.md §9): the one duplicate check is dispatch's. */
static inline bool
router_id_in_use(struct conn *c, uint64_t id)
{
	return c->srv->router != NULL && router_has(c, id);
}

/*
 * c's pending requests end (it is going, or UNBLOCK): what it forwarded
 * ends with status too, and is CANCELed at its owner, so that no waiter of
 * it stays there. Returns how many.
 */
static inline size_t
router_cancel_all(struct conn *c, int status)
{
	return c->srv->router != NULL ? router_forget(c, status) : 0;
}

/*
 * Does q (decoded from body) run here, now? false: it was answered, or is
 * held and will be dispatched again.
 */
static inline bool
router_local(struct conn *c, const struct proto_request *q, const uint8_t *body, size_t len)
{
	return c->srv->router == NULL || router_route(c, q, body, len);
}

#endif
