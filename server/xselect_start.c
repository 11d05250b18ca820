/*
 * xselect_start.c: a cross-node SELECT begins (xselect.h, PROTOCOL.md
 * §17): its cases grouped by owner, each group sent to its owner; a
 * client's select (xselect_start) or another module's round
 * (xselect_round); and begins again, polled anew (xsel_again), when the
 * send case that won was no longer ready.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "conn.h"
#include "peer.h"
#include "router_int.h"
#include "stats.h"
#include "xselect.h"
#include "xselect_int.h"

/* ---- starting ------------------------------------------------------------------------ */

/*
 * The group of node at addr (cluster.c's buffer, valid until its next
 * call: the peer is found at once), made if new; NULL with why.
 */
static struct xgroup *
group_of(struct xsel *x, const char *node, const char *addr, const char **why)
{
	struct xgroup *g;

	for (uint32_t i = 0; i < x->ngroups; i++)
		if (strcmp(x->g[i].node, node) == 0)
			return &x->g[i];
	if (addr[0] == '\0') {
		*why = "a case's owner is not live (its lease is ending)";
		return NULL;
	}
	g = &x->g[x->ngroups];
	*g = (struct xgroup){ .x = x, .node = node };
	if ((g->pe = peer_get(x->xs->r->peers, node, addr, why)) == NULL)
		return NULL;
	x->ngroups++;
	return g;
}

/* 0 .. n-1 in a uniformly random order (Fisher-Yates); NULL when out of memory. */
static uint32_t *
shuffled(struct xselects *xs, uint32_t n)
{
	uint32_t *order = malloc((n > 0 ? n : 1) * sizeof *order), j, t;

	if (order == NULL)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	for (uint32_t i = n; i > 1; i--) {
		j = xsel_uniform(xs, i);
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	return order;
}

/* The group of case i (the rank-th of q's in the random order); false with why. */
static bool
group_add(struct xselects *xs, struct xsel *x, const struct proto_request *q, uint32_t i,
    uint32_t rank, const char **why)
{
	const struct proto_case *pc = &q->cases[i];
	struct cluster *cl = xs->r->cl;
	const char *node, *addr;
	struct xgroup *g;

	if (pc->name == NULL)
		return true;
	if (cluster_owner(cl, pc->name, pc->name_len, &node, &addr) != CLUSTER_THERE) {
		node = cluster_self(cl);
		addr = xs->r->s->cfg.advertise;
	}
	if ((g = group_of(x, node, addr, why)) == NULL)
		return false;
	/* rank shares index's allocation */
	if (g->index == NULL && ((g->index = calloc(2 * (size_t)q->ncases, sizeof *g->index)) == NULL ||
	    (g->send = calloc(q->ncases, sizeof *g->send)) == NULL)) {
		*why = "out of memory";
		return false;
	}
	g->rank = g->index + q->ncases;
	g->send[g->ncases] = pc->dir;
	g->rank[g->ncases] = rank;
	g->index[g->ncases++] = i;
	return true;
}

/*
 * Group q's cases by owner (nil cases go nowhere), each group's in a
 * uniformly random order of all q's cases, which its owner polls them in
 * (PROTOCOL.md §17: the first ready case of that order wins, uniform
 * among the cases ready on every node); keep its frame (body) if none is
 * kept; false with why when it cannot run.
 */
bool
xsel_group_cases(struct xselects *xs, struct xsel *x, const struct proto_request *q, const uint8_t *body,
    size_t len, const char **why)
{
	uint32_t *order = shuffled(xs, q->ncases);
	bool ok = order != NULL;

	for (uint32_t k = 0; ok && k < q->ncases; k++)
		ok = group_add(xs, x, q, order[k], k, why);
	free(order);
	if (!ok)
		return false;
	/* kept to send the groups again: parked, or a granted send case not ready any more */
	if (x->frame == NULL) {
		if ((x->frame = malloc(len)) == NULL) {
			*why = "out of memory";
			return false;
		}
		memcpy(x->frame, body, len);
		x->frame_len = len;
	}
	return true;
}

/* Send g's SELECT with hold (cases: room for q's); -1 when out of memory. */
static int
send_group(struct xselects *xs, struct xgroup *g, const struct proto_request *q, int64_t wait,
    struct proto_case *cases)
{
	for (uint32_t i = 0; i < g->ncases; i++)
		cases[i] = q->cases[g->index[i]];
	g->pid = peers_next_id(xs->r->peers);
	proto_out_reset(&xs->r->out);
	if (proto_req_select_hold(&xs->r->out, g->pid, wait, cases, g->ncases, q->has_default,
	    g->x->blocking ? PROTO_HOLD_PARKED : 1, g->firm) < 0 ||
	    hmap_insert(&xs->pids, &g->by_pid, hmap_hash_u64(xs->pids.seed, g->pid)) < 0)
		return -1;
	g->open = true;
	g->x->nopen++;
	xsel_send_frame(xs, g->pe);
	return 0;
}

/*
 * g's leading cases that come before every other group's in the home's
 * order: one of them ready at the poll wins whatever the others find, so
 * its owner may fire it for good (PROTOCOL.md §17), without XSETTLE.
 */
static uint32_t
firm_cases(const struct xsel *x, const struct xgroup *g)
{
	uint32_t before = UINT32_MAX, n = 0;

	for (uint32_t i = 0; i < x->ngroups; i++)
		if (&x->g[i] != g && x->g[i].rank[0] < before)
			before = x->g[i].rank[0];
	while (n < g->ncases && g->rank[n] < before)
		n++;
	return n;
}

/* What is left of the client's wait now (PROTO_WAIT_FOREVER stays). */
static int64_t
wait_left(const struct xsel *x, int64_t wait)
{
	int64_t spent = (clock_now_ns() - x->rq.start) / 1000;

	return wait > 0 ? (wait > spent ? wait - spent : 0) : wait;
}

/*
 * Send every group of x (q: its request) with what is left of its wait:
 * each owner polls at once, and one that must wait says so (STARTED) if
 * the client may wait.
 */
void
xsel_run(struct xsel *x, const struct proto_request *q)
{
	int64_t wait = wait_left(x, q->wait_us);
	struct proto_case *cases = malloc(q->ncases * sizeof *cases);

	for (uint32_t i = 0; i < x->ngroups; i++)
		x->g[i].firm = firm_cases(x, &x->g[i]);
	for (uint32_t i = 0; i < x->ngroups; i++) {
		if (cases == NULL || send_group(x->xs, &x->g[i], q, wait, cases) < 0) {
			/* those sent end CANCELED, then it answers LIMIT */
			x->err = STATUS_LIMIT;
			snprintf(x->why, sizeof x->why, "out of memory");
			xsel_cancel_open(x);
			break;
		}
	}
	free(cases);
	cluster_counters(x->xs->r->cl)->forwarded += x->ngroups;
	if (x->nopen == 0)
		xsel_decide(x);	/* not one group could be sent */
}

void
xselect_start(struct xselects *xs, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len)
{
	struct router *r = xs->r;
	int64_t start = router_came(r);
	struct xsel *x;
	const char *why = "out of memory";

	if (!acl_allow_cases(c, q))
		return;
	if ((x = calloc(1, sizeof *x + q->ncases * sizeof x->g[0])) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, why);
		return;
	}
	x->xs = xs;
	x->ncases = q->ncases;
	x->blocking = q->wait_us != 0 && !q->has_default;
	x->rq = (struct remote){ .conn_id = c->id, .id = q->id, .op = OP_SELECT, .start = start,
	    .xselect = true };
	TAILQ_INSERT_TAIL(&xs->list, x, link);
	if (!xsel_group_cases(xs, x, q, body, len, &why)) {
		router_unavailable(r, c, q->id, why);
		xsel_free(x);
		return;
	}
	/* each group is one request forwarded from c (max_pending, as router_forward) */
	if (c->nforwarded + x->ngroups > r->s->cfg.max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are forwarded from this connection");
		xsel_free(x);
		return;
	}
	if (hmap_insert(&r->ids, &x->rq.node, ids_hash(r, c->id, q->id)) < 0)
		goto oom;
	x->c = c;
	c->nforwarded += x->ngroups;
	r->s->current.counted = true;	/* counted when it is answered */
	xsel_run(x, q);
	return;
oom:
	xsel_free(x);
	conn_reply_error(c, q->id, STATUS_LIMIT, why);
}

struct xsel *
xselect_round(struct xselects *xs, const struct proto_request *q, const uint8_t *body, size_t len,
    int64_t start, xselect_done done, void *arg, const char **why)
{
	struct xsel *x = calloc(1, sizeof *x + q->ncases * sizeof x->g[0]);

	*why = "out of memory";
	if (x == NULL)
		return NULL;
	x->xs = xs;
	x->ncases = q->ncases;
	x->blocking = q->wait_us != 0 && !q->has_default;
	x->rq = (struct remote){ .op = OP_SELECT, .start = start };
	TAILQ_INSERT_TAIL(&xs->list, x, link);
	if (!xsel_group_cases(xs, x, q, body, len, why)) {
		xsel_free(x);
		return NULL;
	}
	x->done = done;
	x->arg = arg;
	xsel_run(x, q);
	return x;
}

/* g's memory: its cases and its reply. */
void
xsel_group_release(struct xgroup *g)
{
	free(g->index);		/* and rank, in the same allocation */
	free(g->send);
	free(g->reply);
}

/*
 * Send x's groups again (every one answered, none holds a value): grouped
 * again by owner (a node may have gone meanwhile), with what is left of
 * its wait.
 */
void
xsel_again(struct xsel *x)
{
	struct xselects *xs = x->xs;
	struct proto_request q;
	struct proto_case *cases;
	const char *why = "out of memory";
	bool grouped;

	for (uint32_t i = 0; i < x->ngroups; i++)
		xsel_group_release(&x->g[i]);
	if (x->c != NULL)
		x->c->nforwarded -= x->ngroups;
	x->ngroups = x->ndefault = 0;
	x->canceling = x->restart_pending = false;
	x->winner = NULL;
	x->err = STATUS_OK;
	/* its cases decoded again from its frame (they point into it) */
	grouped = (cases = malloc(x->ncases * sizeof *cases)) != NULL &&
	    proto_decode_request(x->frame, x->frame_len, &xs->r->s->limits, cases, x->ncases, &q,
	    &why) == STATUS_OK && xsel_group_cases(xs, x, &q, NULL, 0, &why);
	if (x->c != NULL)
		x->c->nforwarded += x->ngroups;	/* as many as client_done takes back */
	if (grouped) {
		xsel_run(x, &q);
	} else {
		xsel_reply_error(x, STATUS_UNAVAILABLE, why);
		xsel_free(x);
	}
	free(cases);
}
