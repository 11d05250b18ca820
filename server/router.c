/*
 * router.c: local, forwarded (router_fwd.c), MOVED or UNAVAILABLE per
 * request; requests whose channel's owner is unknown wait for etcd, in
 * their connection's order.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "dispatch.h"
#include "engine.h"
#include "log.h"
#include "peer.h"
#include "request.h"
#include "router.h"
#include "router_int.h"
#include "stats.h"
#include "xlink.h"
#include "xpump.h"
#include "xselect.h"
#include "xstream.h"

/*
 * A request held until etcd says who owns its channel, or behind one that
 * is: on the router's list (it owns it) and on its connection's, until
 * the connection goes (then only etcd's answer for it is awaited).
 */
struct held {
	struct remote rq;
	struct router *r;
	struct conn *c;			/* its connection; NULL once it is gone */
	TAILQ_ENTRY(held) clink;	/* on c's for_etcd */
	uint8_t *frame;
	size_t len;
	bool behind;			/* not asking etcd: waiting for an earlier one of its connection */
	bool resolved;			/* etcd answered: dispatch it again */
	bool canceled;			/* CANCEL answered it: etcd's answer only frees it */
	uint32_t asked;			/* etcd's answers it had before it was held */
	TAILQ_ENTRY(held) link;
};

static struct remote *
remote_find(const struct router *r, uint64_t conn_id, uint64_t id)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, ids_hash(r, conn_id, id), &r->ids) {
		struct remote *rq = HMAP_ENTRY(n, struct remote, node);

		if (rq->conn_id == conn_id && rq->id == id)
			return rq;
	}
	return NULL;
}

bool
router_has(struct conn *c, uint64_t id)
{
	struct router *r = c->srv->router;

	return hmap_count(&r->ids) > 0 && remote_find(r, c->id, id) != NULL;
}

/* A named (cluster) channel among what r waits on? */
static bool
waits_on_named(const struct request *r)
{
	enum case_dir dir;

	for (size_t i = 0; i < request_ncases(r); i++) {
		struct chan *ch = request_case(r, i, &dir);

		if (ch != NULL && !chan_anonymous(ch))
			return true;
	}
	return false;
}

/*
 * This node is fenced: operations waiting on its named channels end
 * UNAVAILABLE now rather than wait while another node may take them over.
 * Links run on as before (PROTOCOL.md §17).
 */
static void
fenced(void *arg)
{
	struct router *r = arg;
	struct hmap_node *n, *nx;
	struct conn *c;
	size_t pos, ended = 0;

	TAILQ_FOREACH(c, &r->s->conns, link) {
		HMAP_FOR_EACH_SAFE(n, nx, pos, &c->pending) {
			struct request *q = HMAP_ENTRY(n, struct request, node);

			if (q->kind != REQUEST_LINK && waits_on_named(q)) {
				request_cancel(q, STATUS_UNAVAILABLE);
				ended++;
			}
		}
	}
	log_warn("cluster-fenced-waiters ended=%zu status=UNAVAILABLE", ended);
}

/*
 * A node left the live set: what was forwarded to it ends now, not when
 * TCP notices. One that (re)joined is dialled at once, without waiting
 * out the backoff of a connection lost to it before.
 */
static void
node_changed(void *arg, const char *node, bool up)
{
	struct router *r = arg;

	if (up)
		peers_node_up(r->peers, node);
	else
		peers_node_down(r->peers, node);
}

int
router_new(struct router **out, struct server *s, struct cluster *cl)
{
	struct router *r = calloc(1, sizeof *r);

	if (r == NULL)
		return -1;
	r->s = s;
	r->cl = cl;
	r->peers = s->peers;
	TAILQ_INIT(&r->held);
	hmap_init(&r->ids, (uint64_t)(uintptr_t)r ^ (uint64_t)clock_now_ns());
	hmap_init(&r->fwds, (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ULL);
	hmap_init(&r->ftags, (uint64_t)(uintptr_t)r ^ 0x2545f4914f6cdd1dULL);
	proto_out_init(&r->out);
	if ((r->xs = xselects_new(r)) == NULL || (r->xt = xstreams_new(r)) == NULL ||
	    (r->xps = xpumps_new(r)) == NULL) {
		router_free(r);
		return -1;
	}
	cluster_on_fenced(cl, fenced, r);
	cluster_on_node_change(cl, node_changed, r);
	peers_on(r->peers, router_peer_replied, router_peer_gone, r);
	*out = r;
	return 0;
}

static void
held_free(struct held *h)
{
	free(h->frame);
	free(h);
}

void
router_free(struct router *r)
{
	struct held *h;

	if (r == NULL)
		return;
	while ((h = TAILQ_FIRST(&r->held)) != NULL) {
		TAILQ_REMOVE(&r->held, h, link);
		held_free(h);
	}
	router_fwds_free(r);
	router_tags_free(r);
	xstreams_free(r->xt);
	xselects_free(r->xs);
	xpumps_free(r->xps);
	hmap_destroy(&r->ids);
	hmap_destroy(&r->fwds);
	hmap_destroy(&r->ftags);
	proto_out_destroy(&r->out);
	free(r);
}

/* h off its connection's list (it is on the router's still). */
static void
held_unlink_conn(struct held *h)
{
	if (h->c == NULL)
		return;
	TAILQ_REMOVE(&h->c->for_etcd, h, clink);
	if (!h->canceled)
		h->c->nfor_etcd--;
	h->c = NULL;
}

/* h's connection, if it may still be answered. */
static struct conn *
held_conn(const struct held *h)
{
	return h->c != NULL && !h->c->closing && !h->c->dead ? h->c : NULL;
}

/* Dispatch h's frame again on c (NULL: gone), as if it had just come (its id is free again first). */
static void
redispatch(struct router *r, struct held *h, struct conn *c)
{
	hmap_remove(&r->ids, &h->rq.node);
	/* a connection is freed from the loop, never inside a dispatch: c may only be closing */
	if (c != NULL && !c->closing && !c->dead) {
		r->asked = h->asked + h->resolved;
		r->again_start = h->rq.start;
		r->s->stats.requests_total--;	/* it was counted when it came */
		dispatch_frame(c, h->frame, h->len, NULL);
		r->asked = 0;
		r->again_start = 0;
	}
	held_free(h);
}

/* etcd answered for h: h first, then its connection's requests behind it, in order. */
static void
resolved(void *arg, int status, const char *why)
{
	struct held *h = arg, *b, *next;
	struct router *r = h->r;
	struct held_list behind = TAILQ_HEAD_INITIALIZER(behind);
	struct conn *c = held_conn(h);

	/* off every list first: what is dispatched again is held again behind nothing of theirs */
	TAILQ_REMOVE(&r->held, h, link);
	for (b = h->c != NULL ? TAILQ_FIRST(&h->c->for_etcd) : NULL; b != NULL; b = next) {
		next = TAILQ_NEXT(b, clink);
		if (b->behind) {
			TAILQ_REMOVE(&r->held, b, link);
			held_unlink_conn(b);
			TAILQ_INSERT_TAIL(&behind, b, link);
		}
	}
	held_unlink_conn(h);
	if (h->canceled) {
		held_free(h);
	} else if (status != STATUS_OK) {
		hmap_remove(&r->ids, &h->rq.node);
		if (c != NULL) {
			cluster_counters(r->cl)->unavailable++;
			stats_record(&r->s->ops, h->rq.op, STATUS_UNAVAILABLE,
			    clock_now_ns() - h->rq.start);
			conn_reply_error(c, h->rq.id, STATUS_UNAVAILABLE, why);
		}
		held_free(h);
	} else {
		h->resolved = true;
		redispatch(r, h, c);
	}
	while ((b = TAILQ_FIRST(&behind)) != NULL) {
		TAILQ_REMOVE(&behind, b, link);
		redispatch(r, b, c);
	}
}

/*
 * h ends with status, answered unless its connection is going. True when
 * it is kept, canceled, where it is, until etcd's answer frees it (those
 * behind it on its connection wait for it still); false when it waited
 * behind another and is freed now.
 */
static bool
held_end(struct router *r, struct held *h, int status)
{
	struct conn *c = held_conn(h);

	hmap_remove(&r->ids, &h->rq.node);
	stats_record(&r->s->ops, h->rq.op, status, clock_now_ns() - h->rq.start);
	if (c != NULL)
		conn_reply_error(c, h->rq.id, status, request_status_message(status));
	if (h->behind) {
		TAILQ_REMOVE(&r->held, h, link);
		held_unlink_conn(h);
		held_free(h);
		return false;
	}
	if (h->c != NULL)
		h->c->nfor_etcd--;
	h->canceled = true;
	return true;
}

size_t
router_held_forget(struct router *r, struct conn *c, int status)
{
	struct held *h;
	size_t n = 0;

	while ((h = TAILQ_FIRST(&c->for_etcd)) != NULL) {
		if (!h->canceled) {
			n++;
			if (!held_end(r, h, status))
				continue;	/* freed */
		}
		held_unlink_conn(h);	/* etcd's answer only frees it */
	}
	return n;
}

/* Hold q until etcd answers for name (name NULL: behind an earlier held request). */
static void
hold(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *name, uint32_t nlen)
{
	struct held *h = NULL;

	if (c->nfor_etcd >= r->s->cfg.max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are waiting for etcd on this connection");
		return;
	}
	if ((h = calloc(1, sizeof *h)) == NULL || (h->frame = malloc(len)) == NULL)
		goto fail;
	*h = (struct held){ .rq = { .conn_id = c->id, .id = q->id, .op = q->op,
	    .start = router_came(r) }, .r = r, .c = c,
	    .frame = h->frame, .len = len, .behind = name == NULL, .asked = r->asked };
	memcpy(h->frame, body, len);
	if (hmap_insert(&r->ids, &h->rq.node, ids_hash(r, c->id, q->id)) < 0)
		goto fail;
	if (name != NULL && cluster_resolve(r->cl, name, nlen, q->op == OP_MAKE, resolved, h) < 0) {
		hmap_remove(&r->ids, &h->rq.node);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&r->held, h, link);
	TAILQ_INSERT_TAIL(&c->for_etcd, h, clink);
	c->nfor_etcd++;
	/* not counted now: it is counted when it is dispatched again */
	r->s->current.counted = true;
	return;
fail:
	if (h != NULL)
		held_free(h);
	conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
}

static bool
anonymous(const char *name, uint32_t len)
{
	return len > 0 && name[0] == '~';
}

/*
 * An anonymous channel whose maker is not live, etcd asked: it went with
 * its node (PROTOCOL.md §17).
 */
static void
anonymous_gone(struct conn *c, uint64_t id, const char *name, uint32_t len)
{
	char msg[192];
	size_t mlen;
	const char *maker = engine_anon_maker(name, len, &mlen);

	snprintf(msg, sizeof msg, "no such channel: node %.*s made it and is not live (an anonymous "
	    "channel ends with the node that made it)", (int)mlen, maker);
	conn_reply_error(c, id, STATUS_NOT_FOUND, msg);
}

/* CANCEL of a held request: it ends CANCELED now, then the CANCEL is OK (as dispatch's op_cancel). */
static void
cancel_held(struct router *r, struct conn *c, const struct proto_request *q, struct held *h)
{
	/* one asking etcd stays, canceled: its answer frees it and lets those behind it run */
	(void)held_end(r, h, STATUS_CANCELED);
	if (proto_rep_ok(&r->s->out, q->id) == 0)
		conn_flush_out(c);
}

/* ---- the routing step ---------------------------------------------------------------- */

/* The channel is another node's: MOVED to a client that follows it, else forwarded there. */
static void
route_there(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *node, const char *addr)
{
	char why[512];

	if (addr[0] == '\0') {
		snprintf(why, sizeof why, "owned by node %s, which is not live (its lease is ending)",
		    node);
		router_unavailable(r, c, q->id, why);
		return;
	}
	if (c->moved) {
		cluster_counters(r->cl)->moved++;
		conn_reply_error(c, q->id, STATUS_MOVED, addr);
		return;
	}
	router_forward(r, c, q, body, len, node, addr);
}

/* The channels q names: one, or its cases (SELECT, STREAM); 0 for an op that names none. */
static uint32_t
named(const struct proto_request *q)
{
	switch (q->op) {
	case OP_MAKE: case OP_OPEN: case OP_SEND: case OP_RECV: case OP_CLOSE:
	case OP_LEN: case OP_CAP: case OP_DELETE: case OP_INFO:
		return 1;
	case OP_SELECT: case OP_STREAM:
		return q->ncases;
	default:
		return 0;
	}
}

/*
 * A link runs here (xlink.h): on this node's channels as any link (true),
 * with pumps to other nodes' (xpump.h: a BRIDGE always, for the channels it
 * will follow), held while etcd is asked about a name the owner cache does
 * not know (once per name at most, as any request), or refused.
 */
static bool
link_here(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len)
{
	char why[400];
	struct xlink_found f;
	int st = xlink_check(r->cl, q, &f, why, sizeof why);

	if (st == STATUS_NOT_FOUND && f.unknown != NULL && r->asked < f.names)
		hold(r, c, q, body, len, f.unknown, f.unknown_len);
	else if (st == STATUS_UNAVAILABLE)
		router_unavailable(r, c, q->id, why);
	else if (st != STATUS_OK)
		conn_reply_error(c, q->id, st, why);
	else if (f.remote || q->op == OP_BRIDGE)
		xpump_link(r->xps, c, q);	/* a bridge may follow another node's channel */
	return st == STATUS_OK && !f.remote && q->op != OP_BRIDGE;
}

/* CANCEL or CREDIT of a request the router has: false when handled here. */
static bool
to_target(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len)
{
	struct remote *rq = remote_find(r, c->id, q->target);

	if (rq == NULL || (rq->xselect && q->op != OP_CANCEL))
		return true;
	if (rq->xstream)
		xstream_target(r->xt, c, q, rq);
	else if (rq->xselect)
		xselect_cancel(r->xs, c, q, rq);
	else if (rq->forwarded)
		router_forward_to_target(r, c, q, rq);
	else if (q->op == OP_CANCEL)
		cancel_held(r, c, q, (struct held *)rq);
	else
		/* CREDIT for a STREAM waiting for etcd: after it, in order */
		hold(r, c, q, body, len, NULL, 0);
	return false;
}

bool
router_route(struct conn *c, const struct proto_request *q, const uint8_t *body, size_t len)
{
	struct router *r = c->srv->router;
	struct remote *rq;
	uint32_t n = named(q), here = 0, there = 0;
	const char *node = NULL, *addr = "", *unknown = NULL, *tnode = NULL, *taddr = "";
	uint32_t unknown_len = 0;

	if (q->op == OP_HELLO)
		c->moved = q->moved;
	if ((q->op == OP_CANCEL || q->op == OP_CREDIT) && hmap_count(&r->ids) > 0)
		return to_target(r, c, q, body, len);
	if (q->op == OP_WANT && hmap_count(&r->ids) > 0 && (rq = remote_find(r, c->id, q->target)) != NULL) {
		/*
		 * a request held or forwarded here, waited for: its reply is written
		 * when it comes; as dispatch's WANT of a pending one, nothing held is
		 * written now, and WANT's own reply is held
		 */
		rq->deferred = false;
		if (proto_rep_ok(&r->s->out, q->id) == 0)
			conn_queue_out(c, true);
		return false;
	}
	if ((q->op == OP_ACK || q->op == OP_NACK || q->op == OP_TOUCH) && hmap_count(&r->ftags) > 0)
		return router_tags_route(r, c, q);
	if (proto_op_is_link(q->op)) {
		if (c->nfor_etcd > 0) {
			hold(r, c, q, body, len, NULL, 0);	/* behind an earlier one, in order */
			return false;
		}
		return link_here(r, c, q, body, len);
	}
	if (n == 0)
		return true;
	if (c->nfor_etcd > 0) {
		hold(r, c, q, body, len, NULL, 0);
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *name = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name : q->name;
		uint32_t nlen = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name_len :
		    q->name_len;

		/* nil cases go nowhere; an anonymous MAKE is here, as its channel is, and served fenced */
		if (name == NULL && q->op != OP_MAKE)
			continue;
		if (name == NULL) {
			here++;
			continue;
		}
		if (!anonymous(name, nlen) && !cluster_serving(r->cl, server_request_start(r->s))) {
			router_unavailable(r, c, q->id, "this node is fenced: its etcd lease is not certain");
			return false;
		}
		switch (cluster_owner(r->cl, name, nlen, &node, &addr)) {
		case CLUSTER_HERE:
			here++;
			break;
		case CLUSTER_THERE:
			/* node points into the mirror, stable until the loop runs again */
			if (tnode != NULL && strcmp(tnode, node) != 0)
				there++;
			if (tnode == NULL)
				there = 1;
			tnode = node;
			taddr = addr;
			break;
		case CLUSTER_UNKNOWN:
			if (unknown == NULL) {
				unknown = name;
				unknown_len = nlen;
			}
			break;
		}
	}
	/*
	 * ask etcd first (the watch may not have told this node yet of a channel
	 * just made), once per name at most: then decide with what is known
	 */
	if (unknown != NULL && r->asked < n) {
		hold(r, c, q, body, len, unknown, unknown_len);
		return false;
	}
	/* there counts the other owners: more than one, or one and this node, is two nodes */
	if (there > 0 && (here > 0 || there > 1 || unknown != NULL) && n > 1) {
		if (q->op == OP_SELECT && q->hold)
			/* a group of another node's cross-node select: one owner each, or its value could not be held */
			router_unavailable(r, c, q->id, "the channels of a held SELECT are on several nodes "
			    "now; try again");
		else if (q->op == OP_SELECT)
			xselect_start(r->xs, c, q, body, len);
		else
			xstream_start(r->xt, c, q, body, len);
		return false;
	}
	if (there > 0) {
		route_there(r, c, q, body, len, tnode, taddr);
		return false;
	}
	if (unknown == NULL)
		return true;
	if (anonymous(unknown, unknown_len)) {
		anonymous_gone(c, q->id, unknown, unknown_len);
		return false;
	}
	/* etcd has no owner for it: a MAKE placed elsewhere goes there; anything else is NOT_FOUND here */
	if (q->op == OP_MAKE) {
		node = cluster_place(r->cl, unknown, unknown_len, &addr);
		if (strcmp(node, cluster_self(r->cl)) == 0) {
			router_unavailable(r, c, q->id, "the channel could not be claimed here; try again");
			return false;
		}
		route_there(r, c, q, body, len, node, addr);
		return false;
	}
	return true;
}
