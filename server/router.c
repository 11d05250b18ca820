/*
 * router.c: local, MOVED or UNAVAILABLE per request; requests whose
 * channel's owner is unknown wait for etcd, in their connection's order.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "dispatch.h"
#include "engine.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "stats.h"

/* A request held until etcd says who owns its channel, or behind one that is. */
struct held {
	struct router *r;
	uint64_t conn_id, id, op;
	int64_t start;			/* when it came: its latency if etcd fails it */
	uint8_t *frame;
	size_t len;
	bool behind;			/* not asking etcd: waiting for an earlier one of its connection */
	bool resolved;			/* etcd answered: dispatch it again */
	TAILQ_ENTRY(held) link;
};
TAILQ_HEAD(held_list, held);

struct router {
	struct server *s;
	struct cluster *cl;
	struct held_list held;
	bool again;			/* dispatching a resolved request again: decide with what is known */
};

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

int
router_new(struct router **out, struct server *s, struct cluster *cl)
{
	struct router *r = calloc(1, sizeof *r);

	if (r == NULL)
		return -1;
	r->s = s;
	r->cl = cl;
	TAILQ_INIT(&r->held);
	cluster_on_fenced(cl, fenced, r);
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
	free(r);
}

/* Requests of c held now; *dup: one of them has id. */
static size_t
held_count(const struct router *r, const struct conn *c, uint64_t id, bool *dup)
{
	const struct held *h;
	size_t n = 0;

	*dup = false;
	TAILQ_FOREACH(h, &r->held, link) {
		if (h->conn_id == c->id) {
			n++;
			*dup |= h->id == id;
		}
	}
	return n;
}

static struct conn *
conn_by_id(struct server *s, uint64_t id)
{
	struct conn *c;

	TAILQ_FOREACH(c, &s->conns, link) {
		if (c->id == id)
			return c->closing || c->dead ? NULL : c;
	}
	return NULL;
}

/* Dispatch h's frame again, as if it had just come. */
static void
redispatch(struct router *r, struct held *h)
{
	struct conn *c = conn_by_id(r->s, h->conn_id);

	if (c != NULL) {
		r->again = h->resolved;
		r->s->stats.requests_total--;	/* it was counted when it came */
		dispatch_frame(c, h->frame, h->len);
		r->again = false;
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
	struct conn *c;

	TAILQ_REMOVE(&r->held, h, link);
	for (b = TAILQ_FIRST(&r->held); b != NULL; b = next) {
		next = TAILQ_NEXT(b, link);
		if (b->conn_id == h->conn_id && b->behind) {
			TAILQ_REMOVE(&r->held, b, link);
			TAILQ_INSERT_TAIL(&behind, b, link);
		}
	}
	if (status != STATUS_OK) {
		if ((c = conn_by_id(r->s, h->conn_id)) != NULL) {
			cluster_stats(r->cl)->unavailable++;
			stats_record(&r->s->ops, h->op, STATUS_UNAVAILABLE, clock_now_ns() - h->start);
			conn_reply_error(c, h->id, STATUS_UNAVAILABLE, why);
		}
		held_free(h);
	} else {
		h->resolved = true;
		redispatch(r, h);
	}
	while ((b = TAILQ_FIRST(&behind)) != NULL) {
		TAILQ_REMOVE(&behind, b, link);
		redispatch(r, b);
	}
}

/* Hold q until etcd answers for name (name NULL: behind an earlier held request). */
static void
hold(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *name, uint32_t nlen)
{
	struct held *h = NULL;
	bool dup;

	if (held_count(r, c, 0, &dup) >= r->s->cfg.max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are waiting for etcd on this connection");
		return;
	}
	if ((h = calloc(1, sizeof *h)) == NULL || (h->frame = malloc(len)) == NULL)
		goto fail;
	*h = (struct held){ .r = r, .conn_id = c->id, .id = q->id, .op = q->op,
	    .start = clock_now_ns(), .frame = h->frame, .len = len, .behind = name == NULL };
	memcpy(h->frame, body, len);
	TAILQ_INSERT_TAIL(&r->held, h, link);
	if (name != NULL && cluster_resolve(r->cl, name, nlen, q->op == OP_MAKE, resolved, h) < 0) {
		TAILQ_REMOVE(&r->held, h, link);
		goto fail;
	}
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
	return name == NULL || (len > 0 && name[0] == '~');
}

/* The channel is another node's: MOVED to a client that follows it, else UNAVAILABLE. */
static void
answer_there(struct router *r, struct conn *c, uint64_t id, const char *node, const char *addr)
{
	char why[512];

	if (addr[0] != '\0' && c->moved) {
		cluster_stats(r->cl)->moved++;
		conn_reply_error(c, id, STATUS_MOVED, addr);
		return;
	}
	if (addr[0] == '\0')
		snprintf(why, sizeof why, "owned by node %s, which is not live (its lease is ending)",
		    node);
	else
		snprintf(why, sizeof why, "owned by node %s at %s; this node does not forward yet", node,
		    addr);
	cluster_stats(r->cl)->unavailable++;
	conn_reply_error(c, id, STATUS_UNAVAILABLE, why);
}

static void
unavailable(struct router *r, struct conn *c, uint64_t id, const char *why)
{
	cluster_stats(r->cl)->unavailable++;
	conn_reply_error(c, id, STATUS_UNAVAILABLE, why);
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

bool
router_route(struct conn *c, const struct proto_request *q, const uint8_t *body, size_t len)
{
	struct router *r = c->srv->router;
	uint32_t n = named(q), here = 0, there = 0;
	const char *node = NULL, *addr = "", *unknown = NULL, *tnode = NULL, *taddr = "";
	uint32_t unknown_len = 0;
	bool dup = false;
	size_t nheld = TAILQ_EMPTY(&r->held) ? 0 : held_count(r, c, q->id, &dup);

	if (q->op == OP_HELLO)
		c->moved = q->moved;
	/* its id is in use (PROTOCOL.md §9), as dispatch's conn_id_in_use would say if it were pending */
	if (dup) {
		char why[96];

		snprintf(why, sizeof why, "duplicate request id %" PRIu64 ": a request with that id is "
		    "waiting for etcd", q->id);
		conn_protocol_error(c, 0, why);
		return false;
	}
	if (n == 0)
		return true;
	if (nheld > 0) {
		hold(r, c, q, body, len, NULL, 0);
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *name = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name : q->name;
		uint32_t nlen = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name_len :
		    q->name_len;

		if (anonymous(name, nlen))
			continue;
		if (!cluster_serving(r->cl)) {
			unavailable(r, c, q->id, "this node is fenced: its etcd lease is not certain");
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
	/* there counts the other owners: more than one, or one and this node, is two nodes */
	if (there > 0 && (here > 0 || there > 1 || unknown != NULL) && n > 1) {
		unavailable(r, c, q->id, "the channels of one SELECT or STREAM must be on one node "
		    "until forwarding exists");
		return false;
	}
	if (there > 0) {
		answer_there(r, c, q->id, tnode, taddr);
		return false;
	}
	if (unknown == NULL)
		return true;
	if (!r->again) {
		hold(r, c, q, body, len, unknown, unknown_len);
		return false;
	}
	/* etcd has no owner for it: a MAKE placed elsewhere goes there; anything else is NOT_FOUND here */
	if (q->op == OP_MAKE) {
		node = cluster_place(r->cl, unknown, unknown_len, &addr);
		if (strcmp(node, cluster_self(r->cl)) == 0) {
			unavailable(r, c, q->id, "the channel could not be claimed here; try again");
			return false;
		}
		answer_there(r, c, q->id, node, addr);
		return false;
	}
	return true;
}
