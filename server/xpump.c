/*
 * xpump.c: stand-ins and pumps for a link's channels on other nodes
 * (xpump.h, PROTOCOL.md §17 "Links in a cluster").
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cluster.h"
#include "conn.h"
#include "engine.h"
#include "link.h"
#include "log.h"
#include "peer.h"
#include "router_int.h"
#include "value.h"
#include "xpump.h"

enum pump_kind { PUMP_IN, PUMP_OUT };

struct xpset;

/* One remote channel of a link and its stand-in. */
struct pump {
	struct xpset *set;
	struct hmap_node by_pid;	/* in the table's pids while pid is awaited */
	uint64_t pid;			/* the SELECT (in) or SEND (out) awaited; 0: none */
	uint64_t held;			/* in: the SELECT whose value is being sent into sub; 0: none */
	bool canceled;			/* a CANCEL of pid was sent */
	bool closing;			/* pid is the CLOSE of the remote output */
	bool owed;			/* the link's final reply waits for that CLOSE's reply */
	bool checking;			/* pid is the CAP asked before the link starts */
	uint64_t cap;			/* out: the cap the request gave */
	enum pump_kind kind;
	const char *what;		/* "input", "output", "done channel" */
	char *name;			/* the remote channel's */
	uint32_t len;
	struct peer *pe;
	struct chan *sub;		/* the stand-in (held) */
	struct engine_op *op;		/* pending on sub */
	bool retired;			/* a bridge no longer follows it: freed once quiet */
};

/* One link's pumps. */
struct xpset {
	struct xpumps *ps;
	struct link *link;		/* NULL once it stopped (or never ran) */
	struct link *finishing;		/* it ended OK: its final reply waits for the owed CLOSEs */
	unsigned owed;			/* pumps owed */
	unsigned checking;		/* CAPs awaited: the link starts when none is */
	unsigned busy;			/* frames using it: freed only at 0 */
	TAILQ_ENTRY(xpset) entry;
	size_t n, cap;
	struct pump **p;
};

struct xpumps {
	struct router *r;
	struct hmap pids;		/* struct pump by pid */
	TAILQ_HEAD(, xpset) sets;
};

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

static void
pump_free(struct pump *p)
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
		pump_free(set->p[i]);
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

static void
set_enter(struct xpset *set)
{
	set->busy++;
}

static bool
quiet(const struct pump *p)
{
	return p->pid == 0 && p->op == NULL;
}

/*
 * The last frame out frees the pumps a bridge left that are quiet, and the
 * set once its link stopped and every pump is quiet.
 */
static void
set_leave(struct xpset *set)
{
	if (--set->busy > 0)
		return;
	for (size_t i = 0; i < set->n; i++) {
		if (set->p[i]->retired && quiet(set->p[i])) {
			pump_free(set->p[i]);
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

static struct proto_out *
frame(struct pump *p)
{
	struct proto_out *o = &p->set->ps->r->out;

	proto_out_reset(o);
	return o;
}

static void
write_frame(struct pump *p)
{
	struct proto_out *o = &p->set->ps->r->out;

	/* a failure is the connection's: its lost callback stops the link */
	peer_write(p->pe, proto_out_data(o), proto_out_len(o));
}

static uint64_t
next_id(struct pump *p)
{
	return peers_next_id(p->set->ps->r->peers);
}

/* pid is awaited now; false when out of memory. */
static bool
await(struct pump *p, uint64_t pid)
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
	if (proto_req_xsettle(frame(p), next_id(p), target, keep) == 0)
		write_frame(p);
}

static void
cancel_pid(struct pump *p)
{
	if (p->pid == 0 || p->canceled)
		return;
	p->canceled = true;
	if (proto_req_cancel(frame(p), next_id(p), p->pid) == 0)
		write_frame(p);
}

/* The link stops with the owner's status st (msg: its words). */
static void
stop_link(struct pump *p, int st, const char *msg, uint32_t msg_len)
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

static void in_ask(struct pump *p);

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
		in_ask(p);
}

static void
in_sent_cb(void *arg, struct engine_result *res)
{
	struct pump *p = arg;
	struct xpset *set = p->set;

	set_enter(set);
	p->op = NULL;
	in_sent(p, res);
	set_leave(set);
}

/* Park a one-case SELECT with hold at the owner. */
static void
in_ask(struct pump *p)
{
	struct proto_case c = { .dir = CASE_RECV, .name = p->name, .name_len = p->len };
	uint64_t pid = next_id(p);

	if (p->set->link == NULL)
		return;
	if (proto_req_select_hold(frame(p), pid, PROTO_WAIT_FOREVER, &c, 1, false, true) < 0 ||
	    !await(p, pid)) {
		link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	write_frame(p);
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
		stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
		return;
	}
	if (rep.status == STATUS_OK && rep.tag != 0) {
		/* an ack channel's value is in flight, not lent (§16): it goes back at once */
		why = "an ack channel cannot be a link's channel across nodes (its value was given back)";
		if (proto_req_nack(frame(p), next_id(p), rep.tag, 0) == 0)
			write_frame(p);
		stop_link(p, STATUS_UNAVAILABLE, why, (uint32_t)strlen(why));
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
		stop_link(p, rep.status, rep.msg, rep.msg_len);
	}
}

/* ---- outbound: the stand-in's values to the owner ------------------------------------- */

static void out_recv(struct pump *p);

/* The link closed the stand-in (its error, if any): so is the remote output. */
static void
out_close(struct pump *p, const struct close_err *err)
{
	struct proto_close_err ce = { .set = err != NULL };
	uint64_t pid = next_id(p);

	if (err != NULL) {
		ce.code = err->code;
		ce.msg = err->msg;
		ce.msg_len = err->len;
	}
	/* its reply is awaited: a link that ended OK answers only once its outputs closed */
	if (proto_req_close(frame(p), pid, PROTO_WAIT_FOREVER, p->name, p->len, &ce) < 0 ||
	    !await(p, pid)) {
		owed_done(p);
		return;
	}
	p->closing = true;
	write_frame(p);
}

static void
out_send(struct pump *p, struct value *v)
{
	struct proto_value pv;
	const char *why;
	uint64_t pid = next_id(p);

	if (proto_value_parse(value_data(v), value_len(v), &pv, &why) != STATUS_OK ||
	    proto_req_send(frame(p), pid, PROTO_WAIT_FOREVER, p->name, p->len, &pv) < 0 ||
	    !await(p, pid)) {
		value_free(v);
		if (p->set->link != NULL)
			link_stop(p->set->link, STATUS_LIMIT, "out of memory");
		return;
	}
	value_free(v);
	write_frame(p);
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

	set_enter(set);
	p->op = NULL;
	out_got(p, res);
	set_leave(set);
}

/* Take the link's next value from the stand-in (or learn that it closed it). */
static void
out_recv(struct pump *p)
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
		stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
		return;
	}
	if (rep.status == STATUS_CLOSED || rep.status == STATUS_NOT_FOUND) {
		stop_link(p, rep.status, rep.msg, rep.msg_len);
		owed_done(p);
		return;		/* closed or gone there already */
	}
	if (rep.status != STATUS_OK && !(rep.status == STATUS_CANCELED && p->canceled))
		stop_link(p, rep.status, rep.msg, rep.msg_len);
	out_recv(p);
}

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

	set_enter(set);
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
			cancel_pid(p);
	}
	later = set->owed > 0;
	if (later)
		set->finishing = l;
	set_leave(set);
	return later;
}

/* ---- the start: a named remote output's cap, checked as MAKE would (link.c) ------------- */

/* Ask the owner of p's output its cap; false when out of memory. */
static bool
cap_ask(struct pump *p)
{
	uint64_t pid = next_id(p);

	if (proto_req_name(frame(p), OP_CAP, pid, PROTO_WAIT_FOREVER, p->name, p->len) < 0 ||
	    !await(p, pid))
		return false;
	p->checking = true;
	p->set->checking++;
	write_frame(p);
	return true;
}

/* Every pump of set runs (the first n: a bridge's followed channels start themselves). */
static void
run_pumps(struct xpset *set, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (set->p[i]->kind == PUMP_OUT)
			out_recv(set->p[i]);	/* even if it ended at once: the close goes there */
		else
			in_ask(set->p[i]);
	}
}

/* The owner said p's output's cap: the link starts once every one is as asked. */
static void
cap_replied(struct pump *p, const uint8_t *body, size_t len)
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
		stop_link(p, STATUS_PROTOCOL, why, (uint32_t)strlen(why));
	} else if (rep.status != STATUS_OK) {
		stop_link(p, rep.status, rep.msg, rep.msg_len);
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
	set_enter(set);
	unawait(p);
	if (p->closing) {
		p->closing = false;	/* whatever the owner said: it is closed, or will never be */
		owed_done(p);
	} else if (p->checking) {
		cap_replied(p, body, len);
	} else if (p->kind == PUMP_IN) {
		in_replied(p, pid, body, len);
	} else {
		out_replied(p, body, len);
	}
	set_leave(set);
	return true;
}

void
xpump_peer_gone(struct xpumps *ps, struct peer *pe, const char *why)
{
	struct xpset *set, *next;
	char msg[600];

	for (set = TAILQ_FIRST(&ps->sets); set != NULL; set = next) {
		struct pump *lost = NULL;

		set_enter(set);
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
		set_leave(set);
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
 * node's (or anonymous, or owned by no node), with why set when it cannot.
 */
static struct pump *
pump_add(struct xpset *set, enum pump_kind kind, const char *what, const char **name,
    size_t *len, const char **why)
{
	struct router *r = set->ps->r;
	const char *node, *addr;
	struct pump *p;
	bool created;

	*why = NULL;
	if (*name == NULL || (*len > 0 && (*name)[0] == '~') ||
	    cluster_owner(r->cl, *name, *len, &node, &addr) != CLUSTER_THERE)
		return NULL;
	*why = "out of memory";
	if (!set_grow(set) || (p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	*p = (struct pump){ .set = set, .kind = kind, .what = what, .len = (uint32_t)*len };
	if ((p->name = malloc(*len ? *len : 1)) == NULL)
		goto fail;
	memcpy(p->name, *name, *len);
	if ((p->pe = peer_get(r->peers, node, addr, why)) == NULL)
		goto fail;
	if (engine_make(r->s->engine, NULL, 0, 0, &p->sub, &created) != STATUS_OK) {
		*why = "max_channels reached (a stand-in for another node's channel)";
		goto fail;
	}
	set->p[set->n++] = p;
	*name = chan_name(p->sub, len);
	return p;
fail:
	pump_free(p);
	return NULL;
}

/* pump_add for a request's name (uint32_t lengths): -1 when it cannot (why set). */
static int
stand_in(struct xpset *set, enum pump_kind kind, const char *what, const char **name,
    uint32_t *len, const char **why)
{
	size_t l = *len;
	struct pump *p = pump_add(set, kind, what, name, &l, why);

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

/* link.h's follow hook (BRIDGE): another node's channel gets a pump, and the bridge its stand-in. */
static struct chan *
follow(void *arg, const char *name, size_t len)
{
	struct xpset *set = arg;
	struct pump *p;
	const char *why;

	if (set->link == NULL || (p = pump_add(set, PUMP_IN, "followed channel", &name, &len,
	    &why)) == NULL)
		return NULL;	/* "does not exist", as a reference to no channel */
	engine_hold(p->sub);	/* the bridge's own hold */
	set_enter(set);
	in_ask(p);
	set_leave(set);
	return p->sub;
}

/* link.h's unfollow hook: the bridge left ch; its pump (if it has one) stops, its value goes back. */
static void
unfollow(void *arg, struct chan *ch)
{
	struct xpset *set = arg;

	set_enter(set);
	for (size_t i = 0; i < set->n; i++) {
		struct pump *p = set->p[i];

		if (p->sub != ch || p->retired)
			continue;
		p->retired = true;
		if (p->op != NULL)
			engine_op_cancel(set->ps->r->s->engine, p->op, STATUS_CANCELED);
		cancel_pid(p);
	}
	set_leave(set);
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
	set_leave(set);
}
