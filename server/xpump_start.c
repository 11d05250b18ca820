/*
 * xpump_start.c: a link with channels on other nodes starts (its
 * stand-ins, the caps of its remote outputs asked first) and link.h's
 * hooks for it: follow, unfollow, stands_for, ended (xpump.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "conn.h"
#include "engine.h"
#include "link.h"
#include "peer.h"
#include "router_int.h"
#include "xpump_int.h"

/* ---- the link's end -------------------------------------------------------------------- */

/*
 * link.h's hook: the link stopped (its outputs, stand-ins included, closed
 * already). One that ended OK answers once its remote outputs it closed
 * are closed at their owners (their CLOSEs' replies), so that its creator,
 * told it ended, finds them closed.
 */
static bool
ended(void *arg, int status)
{
	struct xpset *set = arg;
	struct engine *e = set->ps->r->s->engine;
	struct link *l = set->link;
	bool later;

	xp_set_enter(set);
	set->link = NULL;
	for (size_t i = 0; i < set->n; i++) {
		struct pump *p = set->p[i];

		if (p->kind == PUMP_OUT && status == STATUS_OK && chan_closed(p->sub)) {
			p->owed = true;
			set->owed++;
		}
		if (p->op != NULL)
			engine_op_cancel(e, p->op, STATUS_CANCELED);	/* a held value goes back */
		/* a link that ended by itself lets its last value reach its output */
		if ((p->kind == PUMP_IN || status != STATUS_OK) && !p->checking)
			xp_cancel_pid(p);
	}
	later = set->owed > 0;
	if (later)
		set->finishing = l;
	xp_set_leave(set);
	return later;
}

/* ---- the start: a named remote output's cap, checked as MAKE would (link.c) ------------- */

/* Ask the owner of p's output its cap; false when out of memory. */
static bool
cap_ask(struct pump *p)
{
	uint64_t pid = xp_next_id(p);

	if (proto_req_name(xp_frame(p), OP_CAP, pid, PROTO_WAIT_FOREVER, p->name, p->len) < 0 ||
	    !xp_await(p, pid))
		return false;
	p->checking = true;
	p->set->checking++;
	xp_write_frame(p);
	return true;
}

/* Every pump of set runs (the first n: a bridge's followed channels start themselves). */
static void
run_pumps(struct xpset *set, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (set->p[i]->kind == PUMP_OUT)
			xp_out_recv(set->p[i]);	/* even if it ended at once: the close goes there */
		else
			xp_in_ask(set->p[i]);
	}
}

/* The owner said p's output's cap: the link starts once every one is as asked. */
void
xp_cap_replied(struct pump *p, const uint8_t *body, size_t len)
{
	struct xpset *set = p->set;
	struct proto_reply rep;
	const char *why;
	char msg[600];
	size_t n;

	p->checking = false;
	set->checking--;
	if (set->link == NULL)
		return;		/* it stopped meanwhile: its only reply went */
	if (proto_decode_reply(body, len, OP_CAP, &rep, &why) != STATUS_OK) {
		xp_stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
	} else if (rep.status != STATUS_OK) {
		xp_stop_link(p, rep.status, rep.msg, rep.msg_len);
	} else if (rep.n != p->cap) {
		snprintf(msg, sizeof msg, "output exists with a different cap (%.*s on node %s has "
		    "cap %" PRIu64 ", not %" PRIu64 ")", (int)p->len, p->name, peer_node(p->pe), rep.n,
		    p->cap);
		link_stop(set->link, STATUS_EXISTS, msg);
	} else if (set->checking == 0) {
		n = set->n;
		link_go(set->link);
		run_pumps(set, n);
	}
}

/* ---- starting -------------------------------------------------------------------------- */

/* Room for one more pump in set; false when out of memory. */
static bool
set_grow(struct xpset *set)
{
	struct pump **grown;
	size_t cap = set->cap ? set->cap * 2 : 4;

	if (set->n < set->cap)
		return true;
	if ((grown = realloc(set->p, cap * sizeof *grown)) == NULL)
		return false;
	set->p = grown;
	set->cap = cap;
	return true;
}

/*
 * If name is another node's, give it a pump of kind and return it (its
 * stand-in's name in *name, *len); NULL with *why NULL when it is this
 * node's (or owned by no node), with why set when it cannot.
 * A followed name the owner cache does not know gets a pump with no peer
 * yet (pe NULL): its caller asks etcd.
 */
static struct pump *
pump_add(struct xpset *set, enum pump_kind kind, const char *what, bool followed,
    const char **name, size_t *len, const char **why)
{
	struct router *r = set->ps->r;
	const char *node, *addr;
	enum cluster_where where;
	struct pump *p;
	bool created;

	*why = NULL;
	if (*name == NULL)
		return NULL;
	/* a link's own names were resolved before it started; a followed one may be too new */
	where = cluster_owner(r->cl, *name, *len, &node, &addr);
	if (where != CLUSTER_THERE && (where != CLUSTER_UNKNOWN || !followed))
		return NULL;
	*why = "out of memory";
	if (!set_grow(set) || (p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	*p = (struct pump){ .set = set, .kind = kind, .what = what, .len = (uint32_t)*len };
	if ((p->name = malloc(*len ? *len : 1)) == NULL)
		goto fail;
	memcpy(p->name, *name, *len);
	if (where == CLUSTER_THERE && (p->pe = peer_get(r->peers, node, addr, why)) == NULL)
		goto fail;
	if (engine_make(r->s->engine, NULL, 0, 0, &p->sub, &created) != STATUS_OK) {
		*why = "max_channels reached (a stand-in for another node's channel)";
		goto fail;
	}
	set->p[set->n++] = p;
	*name = chan_name(p->sub, len);
	return p;
fail:
	xp_pump_free(p);
	return NULL;
}

/* pump_add for a request's name (uint32_t lengths): -1 when it cannot (why set). */
static int
stand_in(struct xpset *set, enum pump_kind kind, const char *what, const char **name,
    uint32_t *len, const char **why)
{
	size_t l = *len;
	struct pump *p = pump_add(set, kind, what, false, name, &l, why);

	*len = (uint32_t)l;
	return p != NULL ? 1 : *why != NULL ? -1 : 0;
}

/* Every remote channel of q (a copy, its names replaced by stand-ins'); false with why. */
static bool
stand_ins(struct xpset *set, struct proto_request *q, struct proto_case *cases, const char **why)
{
	int rc = stand_in(set, PUMP_IN, "done channel", &q->done, &q->done_len, why);

	if (q->op == OP_OR || q->op == OP_FAN_IN) {
		memcpy(cases, q->cases, q->ncases * sizeof *cases);
		q->cases = cases;
		for (uint32_t i = 0; i < q->ncases && rc >= 0; i++)
			rc = stand_in(set, PUMP_IN, "input", &cases[i].name, &cases[i].name_len, why);
	} else if (q->op != OP_REPEAT && rc >= 0) {
		rc = stand_in(set, PUMP_IN, "input", &q->name, &q->name_len, why);
	}
	for (uint32_t i = 0; i < q->nouts && rc >= 0; i++) {
		struct proto_link_out *o = &q->outs[i];

		if ((rc = stand_in(set, PUMP_OUT, "output", &o->name, &o->name_len, why)) == 1) {
			set->p[set->n - 1]->cap = o->cap;	/* checked at the owner first */
			o->cap = 0;	/* the stand-in is unbuffered; the remote output buffers */
		}
	}
	return rc >= 0;
}

/*
 * etcd answered for a followed channel the owner cache did not know: pump
 * from its owner, or close the stand-in with an error value's words if no
 * other node owns it (the bridge says so down its output and goes on).
 */
static void
follow_resolved(void *arg, int status, const char *why)
{
	struct pump *p = arg;
	struct xpset *set = p->set;
	struct router *r = set->ps->r;
	const char *node, *addr, *msg = p->name[0] == '~' ? "the node that made it is not live" :
	    "no node owns it";
	struct close_err *err;

	xp_set_enter(set);
	p->resolving = false;
	if (set->link == NULL || p->retired)
		goto out;
	if (status != STATUS_OK)
		msg = why;
	else if (cluster_owner(r->cl, p->name, p->len, &node, &addr) == CLUSTER_THERE &&
	    (p->pe = peer_get(r->peers, node, addr, &msg)) != NULL) {
		xp_in_ask(p);
		goto out;
	}
	if ((err = close_err_new(STATUS_NOT_FOUND, msg, strlen(msg))) == NULL) {
		link_stop(set->link, STATUS_LIMIT, "out of memory");
		goto out;
	}
	(void)engine_close_err(r->s->engine, p->sub, err);
	close_err_unref(err);
out:
	xp_set_leave(set);
}

/*
 * link.h's follow hook (BRIDGE): another node's channel gets a pump, and the
 * bridge its stand-in. A name the owner cache does not know (made a moment
 * ago on another node, say) is asked of etcd first, as the router does.
 */
static struct chan *
follow(void *arg, const char *name, size_t len)
{
	struct xpset *set = arg;
	struct router *r = set->ps->r;
	struct pump *p;
	const char *why;

	if (set->link == NULL || (p = pump_add(set, PUMP_IN, "followed channel", true, &name, &len,
	    &why)) == NULL)
		return NULL;	/* "does not exist", as a reference to no channel */
	engine_hold(p->sub);	/* the bridge's own hold */
	xp_set_enter(set);
	if (p->pe != NULL)
		xp_in_ask(p);
	else if (cluster_resolve(r->cl, p->name, p->len, false, follow_resolved, p) == 0)
		p->resolving = true;
	else
		link_stop(set->link, STATUS_LIMIT, "out of memory");
	xp_set_leave(set);
	return p->sub;
}

/* link.h's unfollow hook: the bridge left ch; its pump (if it has one) stops, its value goes back. */
static void
unfollow(void *arg, struct chan *ch)
{
	struct xpset *set = arg;

	xp_set_enter(set);
	for (size_t i = 0; i < set->n; i++) {
		struct pump *p = set->p[i];

		if (p->sub != ch || p->retired)
			continue;
		p->retired = true;
		if (p->op != NULL)
			engine_op_cancel(set->ps->r->s->engine, p->op, STATUS_CANCELED);
		xp_cancel_pid(p);
	}
	xp_set_leave(set);
}

/* link.h's stands_for hook: the rights of a stand-in's link are on the remote channel's name. */
static const char *
stands_for(void *arg, const struct chan *ch, size_t *len, bool *sending)
{
	struct xpset *set = arg;

	for (size_t i = 0; i < set->n; i++) {
		struct pump *p = set->p[i];

		if (p->sub == ch && !p->retired) {
			*len = p->len;
			*sending = p->kind == PUMP_OUT && p->pid != 0;	/* its SEND at the owner */
			return p->name;
		}
	}
	return NULL;
}

void
xpump_link(struct xpumps *ps, struct conn *c, const struct proto_request *q)
{
	struct proto_case *cases = NULL;
	struct proto_request q2 = *q;
	struct link_hook hook;
	const char *why = "out of memory";
	struct xpset *set;
	bool started;
	size_t n;

	if ((set = calloc(1, sizeof *set)) == NULL ||
	    (q->ncases > 0 && (cases = calloc(q->ncases, sizeof *cases)) == NULL)) {
		free(set);
		conn_reply_error(c, q->id, STATUS_LIMIT, why);
		return;
	}
	set->ps = ps;
	set->busy = 1;
	TAILQ_INSERT_TAIL(&ps->sets, set, entry);
	if (!stand_ins(set, &q2, cases, &why)) {
		router_unavailable(ps->r, c, q->id, why);
		goto out;
	}
	hook = (struct link_hook){ .ended = ended, .arg = set, .link = &set->link,
	    .stands_for = stands_for };
	if (q->op == OP_BRIDGE) {
		hook.follow = follow;
		hook.unfollow = unfollow;
	}
	/* a named remote output's cap is checked at its owner before the link starts */
	for (size_t i = 0; i < set->n; i++)
		hook.hold_start |= set->p[i]->kind == PUMP_OUT;
	n = set->n;	/* a bridge may follow a channel at once: its pump runs already */
	started = link_start(c, &q2, &hook);
	for (size_t i = 0; started && hook.hold_start && i < n && set->link != NULL; i++)
		if (set->p[i]->kind == PUMP_OUT && !cap_ask(set->p[i]))
			link_stop(set->link, STATUS_LIMIT, "out of memory");
	if (started && !hook.hold_start)
		run_pumps(set, n);
out:
	free(cases);
	xp_set_leave(set);
}
