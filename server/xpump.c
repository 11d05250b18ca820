/*
 * xpump.c: the pumps of a link's channels on other nodes (xpump.h,
 * PROTOCOL.md §17 "Links in a cluster"): their traffic with the owners,
 * inbound and outbound, the replies, a peer lost. Their start and the
 * link's hooks are xpump_start.c's.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "conn.h"
#include "engine.h"
#include "link.h"
#include "log.h"
#include "peer.h"
#include "router_int.h"
#include "value.h"
#include "xpump_int.h"

struct xpumps *
xpumps_new(struct router *r)
{
	struct xpumps *ps = calloc(1, sizeof *ps);

	if (ps == NULL)
		return NULL;
	ps->r = r;
	hmap_init(&ps->pids, (uint64_t)(uintptr_t)ps ^ 0x3c6ef372fe94f82bULL);
	TAILQ_INIT(&ps->sets);
	return ps;
}

void
xp_pump_free(struct pump *p)
{
	if (p->pid != 0)
		hmap_remove(&p->set->ps->pids, &p->by_pid);
	if (p->sub != NULL)
		engine_release(p->set->ps->r->s->engine, p->sub);
	free(p->name);
	free(p);
}

static void
set_free(struct xpset *set)
{
	if (set->finishing != NULL)
		link_finish(set->finishing);	/* the router is going */
	for (size_t i = 0; i < set->n; i++)
		xp_pump_free(set->p[i]);
	TAILQ_REMOVE(&set->ps->sets, set, entry);
	free(set->p);
	free(set);
}

void
xpumps_free(struct xpumps *ps)
{
	struct xpset *set;

	if (ps == NULL)
		return;
	while ((set = TAILQ_FIRST(&ps->sets)) != NULL)
		set_free(set);
	hmap_destroy(&ps->pids);
	free(ps);
}

void
xp_set_enter(struct xpset *set)
{
	set->busy++;
}

static bool
quiet(const struct pump *p)
{
	return p->pid == 0 && p->op == NULL && !p->resolving;
}

/*
 * The last frame out frees the pumps a bridge left that are quiet, and the
 * set once its link stopped and every pump is quiet.
 */
void
xp_set_leave(struct xpset *set)
{
	if (--set->busy > 0)
		return;
	for (size_t i = 0; i < set->n; i++) {
		if (set->p[i]->retired && quiet(set->p[i])) {
			xp_pump_free(set->p[i]);
			set->p[i--] = set->p[--set->n];
		}
	}
	if (set->link != NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		if (!quiet(set->p[i]))
			return;
	set_free(set);
}

/* ---- talking to the owners ------------------------------------------------------------ */

/* p's remote output is closed, or will never be: once none is owed, the link's final reply goes. */
static void
owed_done(struct pump *p)
{
	struct xpset *set = p->set;
	struct link *l = set->finishing;

	if (!p->owed)
		return;
	p->owed = false;
	if (--set->owed > 0 || l == NULL)
		return;
	set->finishing = NULL;
	link_finish(l);
}

struct proto_out *
xp_frame(struct pump *p)
{
	struct proto_out *o = &p->set->ps->r->out;

	proto_out_reset(o);
	return o;
}

void
xp_write_frame(struct pump *p)
{
	struct proto_out *o = &p->set->ps->r->out;

	/* a failure is the connection's: its lost callback stops the link */
	peer_write(p->pe, proto_out_data(o), proto_out_len(o));
}

uint64_t
xp_next_id(struct pump *p)
{
	return peers_next_id(p->set->ps->r->peers);
}

/* pid is awaited now; false when out of memory. */
bool
xp_await(struct pump *p, uint64_t pid)
{
	struct xpumps *ps = p->set->ps;

	if (hmap_insert(&ps->pids, &p->by_pid, hmap_hash_u64(ps->pids.seed, pid)) < 0)
		return false;
	p->pid = pid;
	p->canceled = false;
	return true;
}

static void
unawait(struct pump *p)
{
	hmap_remove(&p->set->ps->pids, &p->by_pid);
	p->pid = 0;
}

/* Keep, or give back, the value held at the owner for SELECT target (nobody awaits the OK). */
static void
settle(struct pump *p, uint64_t target, bool keep)
{
	if (proto_req_xsettle(xp_frame(p), xp_next_id(p), target, keep) == 0)
		xp_write_frame(p);
}

void
xp_cancel_pid(struct pump *p)
{
	if (p->pid == 0 || p->canceled)
		return;
	p->canceled = true;
	if (proto_req_cancel(xp_frame(p), xp_next_id(p), p->pid) == 0)
		xp_write_frame(p);
}

/* The link stops with the owner's status st (msg: its words). */
void
xp_stop_link(struct pump *p, int st, const char *msg, uint32_t msg_len)
{
	char why[600];

	if (p->set->link == NULL)
		return;
	if (st == STATUS_CLOSED && p->kind == PUMP_OUT)
		snprintf(why, sizeof why, "an output of the link was closed by someone else (%.*s on "
		    "node %s)", (int)p->len, p->name, peer_node(p->pe));
	else if (st == STATUS_NOT_FOUND)
		snprintf(why, sizeof why, "a channel of the link was deleted (the %s %.*s on node %s)",
		    p->what, (int)p->len, p->name, peer_node(p->pe));
	else
		snprintf(why, sizeof why, "the %s %.*s on node %s: %s: %.*s", p->what, (int)p->len,
		    p->name, peer_node(p->pe), status_name(st), (int)msg_len, msg_len ? msg : "");
	if (st == STATUS_MOVED || st == STATUS_PROTOCOL || st == STATUS_CANCELED ||
	    st == STATUS_DEADLINE_EXCEEDED || st == STATUS_OK)
		st = STATUS_UNAVAILABLE;
	link_stop(p->set->link, st, why);
}

/* ---- inbound: the owner's values into the stand-in ------------------------------------ */


/* The held value's send into the stand-in ended: kept at the owner only once sent. */
static void
in_sent(struct pump *p, struct engine_result *res)
{
	uint64_t target = p->held;

	p->held = 0;
	value_free(res->value);
	res->value = NULL;
	if (target == 0)
		return;		/* its peer connection went: given back there already */
	settle(p, target, res->status == STATUS_OK);
	if (res->status == STATUS_OK && !p->retired)
		xp_in_ask(p);
}

static void
in_sent_cb(void *arg, struct engine_result *res)
{
	struct pump *p = arg;
	struct xpset *set = p->set;

	xp_set_enter(set);
	p->op = NULL;
	in_sent(p, res);
	xp_set_leave(set);
}

/* Park a one-case SELECT with hold at the owner. */
void
xp_in_ask(struct pump *p)
{
	struct proto_case c = { .dir = CASE_RECV, .name = p->name, .name_len = p->len };
	uint64_t pid = xp_next_id(p);

	if (p->set->link == NULL)
		return;
	if (proto_req_select_hold(xp_frame(p), pid, PROTO_WAIT_FOREVER, &c, 1, false, true, 0) < 0 ||
	    !xp_await(p, pid)) {
		link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	xp_write_frame(p);
}

/* A value lent by the owner (SELECT target): into the stand-in, waiting for the link. */
static void
in_push(struct pump *p, uint64_t target, const struct proto_value *pv)
{
	struct engine_case c = { .ch = p->sub, .dir = CASE_SEND };
	struct engine_result now;

	if ((c.value = value_new(pv->raw, pv->raw_len)) == NULL) {
		settle(p, target, false);
		link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	p->held = target;
	if (engine_submit(p->set->ps->r->s->engine, &c, 1, ENGINE_WAIT, in_sent_cb, p, &p->op,
	    &now) == 0)
		in_sent(p, &now);
}

/* The owner closed the remote channel: the stand-in closes with its error. */
static void
in_closed(struct pump *p, const struct proto_close_err *ce)
{
	struct close_err *err = NULL;

	if (ce->set && (err = close_err_new(ce->code, ce->msg, ce->msg_len)) == NULL) {
		link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	(void)engine_close_err(p->set->ps->r->s->engine, p->sub, err);
	close_err_unref(err);
}

static void
in_replied(struct pump *p, uint64_t target, const uint8_t *body, size_t len)
{
	struct proto_reply rep;
	const char *why;
	bool held;

	if (proto_decode_reply(body, len, OP_SELECT, &rep, &why) != STATUS_OK) {
		xp_stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
		return;
	}
	if (rep.status == STATUS_OK && rep.tag != 0) {
		/* an ack channel's value is in flight, not lent (§16): it goes back at once */
		why = "an ack channel cannot be a link's channel across nodes (its value was given back)";
		if (proto_req_nack(xp_frame(p), xp_next_id(p), rep.tag, 0) == 0)
			xp_write_frame(p);
		xp_stop_link(p, STATUS_UNAVAILABLE, why, (uint32_t)strlen(why));
		return;
	}
	held = rep.status == STATUS_OK && rep.index == 0 && rep.ok &&
	    rep.value.kind != VALUE_NONE;
	if (p->set->link == NULL || p->retired) {
		if (held)
			settle(p, target, false);	/* it crossed our CANCEL: it goes back */
	} else if (held) {
		in_push(p, target, &rep.value);
	} else if (rep.status == STATUS_OK && rep.index == 0) {
		in_closed(p, &rep.close_err);
	} else {
		xp_stop_link(p, rep.status, rep.msg, rep.msg_len);
	}
}

/* ---- outbound: the stand-in's values to the owner ------------------------------------- */


/* The link closed the stand-in (its error, if any): so is the remote output. */
static void
out_close(struct pump *p, const struct close_err *err)
{
	struct proto_close_err ce = { .set = err != NULL };
	uint64_t pid = xp_next_id(p);

	if (err != NULL) {
		ce.code = err->code;
		ce.msg = err->msg;
		ce.msg_len = err->len;
	}
	/* its reply is awaited: a link that ended OK answers only once its outputs closed */
	if (proto_req_close(xp_frame(p), pid, PROTO_WAIT_FOREVER, p->name, p->len, &ce) < 0 ||
	    !xp_await(p, pid)) {
		owed_done(p);
		return;
	}
	p->closing = true;
	xp_write_frame(p);
}

static void
out_send(struct pump *p, struct value *v)
{
	struct proto_value pv;
	const char *why;
	uint64_t pid = xp_next_id(p);

	if (proto_value_parse(value_data(v), value_len(v), &pv, &why) != STATUS_OK ||
	    proto_req_send(xp_frame(p), pid, PROTO_WAIT_FOREVER, p->name, p->len, &pv) < 0 ||
	    !xp_await(p, pid)) {
		value_free(v);
		if (p->set->link != NULL)
			link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	value_free(v);
	xp_write_frame(p);
}

static void
out_got(struct pump *p, struct engine_result *res)
{
	if (res->status == STATUS_OK && res->ok)
		out_send(p, res->value);
	else if (res->status == STATUS_OK)
		out_close(p, res->err);
	else
		value_free(res->value);
	res->value = NULL;
}

static void
out_got_cb(void *arg, struct engine_result *res)
{
	struct pump *p = arg;
	struct xpset *set = p->set;

	xp_set_enter(set);
	p->op = NULL;
	out_got(p, res);
	xp_set_leave(set);
}

/* Take the link's next value from the stand-in (or learn that it closed it). */
void
xp_out_recv(struct pump *p)
{
	struct engine_case c = { .ch = p->sub, .dir = CASE_RECV };
	struct engine_result now;

	if (p->set->link == NULL && !chan_closed(p->sub))
		return;		/* the link left it open (§13): so is the remote one */
	if (engine_submit(p->set->ps->r->s->engine, &c, 1, ENGINE_WAIT, out_got_cb, p, &p->op,
	    &now) == 0)
		out_got(p, &now);
}

static void
out_replied(struct pump *p, const uint8_t *body, size_t len)
{
	struct proto_reply rep;
	const char *why;

	if (proto_decode_reply(body, len, OP_SEND, &rep, &why) != STATUS_OK) {
		xp_stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
		return;
	}
	if (rep.status == STATUS_CLOSED || rep.status == STATUS_NOT_FOUND) {
		xp_stop_link(p, rep.status, rep.msg, rep.msg_len);
		owed_done(p);
		return;		/* closed or gone there already */
	}
	if (rep.status != STATUS_OK && !(rep.status == STATUS_CANCELED && p->canceled))
		xp_stop_link(p, rep.status, rep.msg, rep.msg_len);
	xp_out_recv(p);
}

bool
xpump_replied(struct xpumps *ps, uint64_t pid, const uint8_t *body, size_t len)
{
	struct hmap_node *n;
	struct pump *p = NULL;
	struct xpset *set;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(ps->pids.seed, pid), &ps->pids) {
		if (HMAP_ENTRY(n, struct pump, by_pid)->pid == pid)
			p = HMAP_ENTRY(n, struct pump, by_pid);
	}
	if (p == NULL)
		return false;
	set = p->set;
	xp_set_enter(set);
	unawait(p);
	if (p->closing) {
		p->closing = false;	/* whatever the owner said: it is closed, or will never be */
		owed_done(p);
	} else if (p->checking) {
		xp_cap_replied(p, body, len);
	} else if (p->kind == PUMP_IN) {
		in_replied(p, pid, body, len);
	} else {
		out_replied(p, body, len);
	}
	xp_set_leave(set);
	return true;
}

void
xpump_peer_gone(struct xpumps *ps, struct peer *pe, const char *why)
{
	struct xpset *set, *next;
	char msg[600];

	for (set = TAILQ_FIRST(&ps->sets); set != NULL; set = next) {
		struct pump *lost = NULL;

		xp_set_enter(set);
		for (size_t i = 0; i < set->n; i++) {
			struct pump *p = set->p[i];

			if (p->pe != pe)
				continue;
			/* one the link still needs (not a channel left, or an input that closed) */
			if (!p->retired && (p->kind == PUMP_OUT || !chan_closed(p->sub)))
				lost = p;
			if (p->pid != 0)
				unawait(p);	/* no reply will come */
			p->closing = false;
			if (p->checking) {
				p->checking = false;
				set->checking--;
			}
			p->held = 0;		/* its owner gave it back (or died with it) */
			owed_done(p);
		}
		if (lost != NULL && set->link != NULL) {
			snprintf(msg, sizeof msg, "node %s lost: %s (the %s %.*s)", peer_node(pe), why,
			    lost->what, (int)lost->len, lost->name);
			log_warn("link-pump-lost node=%s channel=%.*s", peer_node(pe), (int)lost->len,
			    lost->name);
			link_stop(set->link, STATUS_UNAVAILABLE, msg);
		}
		next = TAILQ_NEXT(set, entry);
		xp_set_leave(set);
	}
}
