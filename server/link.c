/*
 * link.c: the life of a link: creation from a request, the done-channel
 * watcher, the pump that runs the kind's slots, stopping, and freeing.
 *
 * References keep a link alive while anything can still call into it:
 * one for "running" (dropped by link_stop), one per pending engine
 * operation and per item on the worker pool (dropped by their callbacks),
 * and one per stack frame that may stop it. The last one frees it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "budget.h"
#include "conn.h"
#include "link_int.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "stage.h"
#include "value.h"

static const struct link_kind *const kinds[OP_MAX - OP_LINK_MIN + 1] = {
	[OP_OR - OP_LINK_MIN] = &link_or,
	[OP_OR_DONE - OP_LINK_MIN] = &link_or_done,
	[OP_TEE - OP_LINK_MIN] = &link_tee,
	[OP_BRIDGE - OP_LINK_MIN] = &link_bridge,
	[OP_FAN_IN - OP_LINK_MIN] = &link_fan_in,
	[OP_REPEAT - OP_LINK_MIN] = &link_repeat,
	[OP_TAKE - OP_LINK_MIN] = &link_take,
	[OP_FAN_OUT - OP_LINK_MIN] = &link_fan_out,
};

/* ---- small helpers for the kinds ------------------------------------------ */

void
link_case_recv(struct engine_case *c, struct chan *ch)
{
	*c = (struct engine_case){ .ch = ch, .dir = CASE_RECV };
}

void
link_case_send(struct engine_case *c, struct chan *ch, struct value *v)
{
	*c = (struct engine_case){ .ch = ch, .dir = CASE_SEND, .value = v };
}

struct value *
link_error_value(const char *msg)
{
	struct value *v;

	return stage_error_value(msg, &v) == 0 ? v : NULL;
}

struct value *
link_value_dup(const struct value *v)
{
	return value_new(value_data(v), value_len(v));
}

bool
link_may(struct link *l, unsigned right, const char *name, size_t len, char *msg, size_t cap)
{
	/* the link lives on its creator's connection: c->ident is the identity it acts for */
	if (l->req != NULL && acl_link_may(l->req->conn, right, name, len))
		return true;
	snprintf(msg, cap, "permission denied: %s on %.*s", auth_right_name(right), (int)len, name);
	return false;
}

/*
 * The name the creator's rights on ch are checked on: its own, the one a
 * bridge follows, or the one a stand-in stands for (link.h's hook; then
 * *sending says whether a value sent into it is still on its way).
 */
static const char *
rights_name(const struct link *l, const struct chan *ch, size_t *len, bool *sending)
{
	const char *name;

	*sending = false;
	if (ch == l->inner) {
		*len = l->inner_len;
		return l->inner_name;
	}
	if (l->hook.stands_for != NULL && (name = l->hook.stands_for(l->hook.arg, ch, len, sending)))
		return name;
	return chan_name(ch, len);
}

/* A stand-in for another node's channel (xpump.h)? */
static bool
stand_in(const struct link *l, const struct chan *ch)
{
	size_t len;
	bool sending;

	return l->hook.stands_for != NULL && l->hook.stands_for(l->hook.arg, ch, &len, &sending);
}

static bool
may_close(struct link *l, struct chan *ch)
{
	size_t len;
	bool sending;
	const char *name = rights_name(l, ch, &len, &sending);

	return acl_link_may_close(l->req->conn, ch, name, len);
}

/* A new anonymous output of the link's: the creator's own, it needs no right. */
static bool
own_output(const struct link *l, const struct chan *ch)
{
	for (size_t i = 0; i < l->nout; i++)
		if (l->out[i] == ch)
			return (l->own_outs & 1u << i) != 0;
	return false;
}

void
link_input_closed(struct link *l, const struct engine_result *res)
{
	/* errgroup's rule: the first error wins */
	if (res->err != NULL && l->err == NULL) {
		l->err = res->err;
		close_err_ref(l->err);
	}
}

bool
link_check(struct link *l, struct engine_result *res)
{
	const char *msg;

	if (res->status == STATUS_OK)
		return true;
	value_free(res->value);
	res->value = NULL;
	switch (res->status) {
	case STATUS_CLOSED: msg = "an output of the link was closed by someone else"; break;
	case STATUS_NOT_FOUND: msg = "a channel of the link was deleted"; break;
	case STATUS_LIMIT: msg = "max_buffered_bytes reached"; break;
	default: msg = NULL; break;
	}
	link_stop(l, res->status, msg);
	return false;
}

/* ---- lifetime ---------------------------------------------------------------- */

static void
link_free(struct link *l)
{
	struct engine *e = l->srv->engine;

	if (l->kind->free)
		l->kind->free(l);
	value_free(l->val);
	for (size_t i = 0; i < l->nvalues; i++)
		value_free(l->values[i]);
	free(l->values);
	if (l->inner)
		engine_release(e, l->inner);
	free(l->inner_name);
	for (size_t i = 0; i < l->nin; i++)
		if (l->in[i])
			engine_release(e, l->in[i]);
	for (size_t i = 0; i < l->nout; i++)
		if (l->out[i])
			engine_release(e, l->out[i]);
	if (l->done)
		engine_release(e, l->done);
	free(l->in);
	free(l->in_closed);
	free(l->cases);
	close_err_unref(l->err);
	free(l);
}

void
link_ref(struct link *l)
{
	l->refs++;
}

void
link_unref(struct link *l)
{
	if (--l->refs == 0)
		link_free(l);
}

/* The final reply. */
static void
answer(struct link *l, int status, const char *msg)
{
	log_debug("link-end client=%" PRIu64 " id=%" PRIu64 " op=%s status=%s sent=%" PRIu64,
	    l->req->conn->id, l->req->id, proto_op_name(l->kind->op), status_name(status), l->sent);
	request_link_end(l->req, status, msg, l->sent);
	l->req = NULL;
}

void
link_finish(struct link *l)
{
	if (l->req)
		answer(l, STATUS_OK, NULL);
	l->finishing = false;
	link_unref(l);	/* running */
}

void
link_stop(struct link *l, int status, const char *msg)
{
	struct engine *e = l->srv->engine;
	bool later = false;

	if (l->stopped) {
		/* its request ends (CANCEL, deadline, disconnect) while the reply waits: now */
		if (l->finishing && l->req)
			answer(l, STATUS_OK, NULL);
		return;
	}
	l->stopped = true;
	l->srv->stats.links_running--;
	if (l->kind->op == OP_FAN_OUT)
		l->srv->stats.jobs_running--;
	link_ref(l);
	/* no waiter may outlive the link; callbacks already queued see stopped */
	for (unsigned s = 0; s < LINK_SLOTS; s++)
		if (l->op[s])
			engine_op_cancel(e, l->op[s], STATUS_CANCELED);
	if (l->done_op)
		engine_op_cancel(e, l->done_op, STATUS_CANCELED);
	/* defer close(out): a closed or deleted output is simply left as it is; an input's
	 * close error goes downstream only when the link ended by itself. One that never
	 * started closes nothing. */
	for (size_t i = 0; i < l->nout && !l->starting; i++)
		if (l->req == NULL || own_output(l, l->out[i]) || may_close(l, l->out[i]))
			(void)engine_close_err(e, l->out[i], status == STATUS_OK ? l->err : NULL);
	if (l->hook.ended != NULL) {
		link_end_fn *ended = l->hook.ended;

		l->hook.ended = NULL;
		later = ended(l->hook.arg, status) && status == STATUS_OK;
	}
	if (later)
		l->finishing = true;	/* the hook's link_finish answers and drops "running" */
	else if (l->req)
		answer(l, status, msg);
	if (!later)
		link_unref(l);	/* running */
	link_unref(l);	/* this frame */
}

/* ---- the pump ---------------------------------------------------------------- */

static void
slot_done(struct link *l, unsigned slot, struct engine_result *res)
{
	l->op[slot] = NULL;
	if (l->stopped) {
		value_free(res->value);	/* matched as the link stopped: lost, as for a client */
	} else {
		l->kind->result(l, slot, res);
		link_pump(l);
	}
	link_unref(l);
}

static void
slot0_done(void *arg, struct engine_result *res)
{
	slot_done(arg, 0, res);
}

static void
slot1_done(void *arg, struct engine_result *res)
{
	slot_done(arg, 1, res);
}

/* May the creator send to (or receive from) ch now? A nil case or an own output needs nothing. */
static bool
may_use(struct link *l, struct chan *ch, enum case_dir dir, char *msg, size_t cap)
{
	const char *name;
	size_t len;
	bool sending;

	if (ch == NULL || own_output(l, ch))
		return true;
	name = rights_name(l, ch, &len, &sending);
	return link_may(l, dir == CASE_SEND ? RIGHT_SEND : RIGHT_RECV, name, len, msg, cap);
}

/*
 * Each operation is checked as its creator's own request would be, so a
 * reload applies from the next one. A denial stops the link; the bridge
 * checks the channel it follows itself (a denial there is an error value).
 */
static bool
cases_allowed(struct link *l, size_t n)
{
	const struct engine_case *c;
	char msg[320];

	if (!auth_enabled(l->srv->auth))
		return true;	/* no rules: the hot path stays as it was */
	for (size_t i = 0; i < n; i++) {
		c = &l->cases[i];
		if (c->ch == l->inner || may_use(l, c->ch, c->dir, msg, sizeof msg))
			continue;
		for (size_t k = 0; k < n; k++)
			value_free(l->cases[k].value);	/* the values moved into the cases */
		link_stop(l, STATUS_PERMISSION_DENIED, msg);
		return false;
	}
	return true;
}

/* One step of slot; true when it completed at once and the slot can go on. */
static bool
pump_slot(struct link *l, unsigned slot)
{
	struct engine_result now;
	size_t n = 0;

	switch (l->kind->step(l, slot, l->cases, &n)) {
	case STEP_IDLE:
		return false;
	case STEP_END:
		link_stop(l, STATUS_OK, NULL);
		return false;
	case STEP_SUBMIT:
		break;
	}
	if (!cases_allowed(l, n))
		return false;
	if (engine_submit(l->srv->engine, l->cases, n, ENGINE_WAIT, slot ? slot1_done : slot0_done, l,
	    &l->op[slot], &now) == 1) {
		link_ref(l);
		return false;
	}
	l->kind->result(l, slot, &now);
	l->repump = true;	/* the other slot may have been waiting for this */
	return true;
}

void
link_pump(struct link *l)
{
	if (l->pumping) {
		l->repump = true;
		return;
	}
	link_ref(l);
	l->pumping = true;
	do {
		l->repump = false;
		for (unsigned s = 0; s < l->kind->nslots; s++)
			while (!l->stopped && l->op[s] == NULL && pump_slot(l, s))
				;
	} while (l->repump && !l->stopped);
	l->pumping = false;
	link_unref(l);
}

/* ---- the done channel ---------------------------------------------------------- */

static void
done_result(struct link *l, struct engine_result *res)
{
	value_free(res->value);
	res->value = NULL;
	if (l->stopped)
		return;
	if (res->status == STATUS_OK)
		link_stop(l, STATUS_CANCELED, res->ok ? "done channel received a value" :
		    "done channel closed");
	else
		link_stop(l, res->status, res->status == STATUS_NOT_FOUND ? "done channel deleted" : NULL);
}

static void
done_fired(void *arg, struct engine_result *res)
{
	struct link *l = arg;

	l->done_op = NULL;
	done_result(l, res);
	link_unref(l);
}

static void
watch_done(struct link *l)
{
	struct engine_case c;
	struct engine_result now;

	if (l->done == NULL)
		return;
	link_case_recv(&c, l->done);
	if (engine_submit(l->srv->engine, &c, 1, ENGINE_WAIT, done_fired, l, &l->done_op, &now) == 1) {
		link_ref(l);
		return;
	}
	done_result(l, &now);
}

/* ---- creation -------------------------------------------------------------------- */

/* A held channel by name; NULL (why set) when there is none. */
static struct chan *
resolve(struct link *l, const char *name, size_t len, const char **why, const char *what)
{
	struct chan *ch = engine_lookup(l->srv->engine, name, len);

	if (ch == NULL) {
		*why = what;
		return NULL;
	}
	engine_hold(ch);
	return ch;
}

static int
resolve_inputs(struct link *l, const struct proto_request *q, const char **why)
{
	if (q->done && (l->done = resolve(l, q->done, q->done_len, why, "no such channel (done)")) == NULL)
		return STATUS_NOT_FOUND;
	if (q->op == OP_REPEAT)
		return STATUS_OK;
	l->nin = q->op == OP_OR || q->op == OP_FAN_IN ? q->ncases : 1;
	if ((l->in = calloc(l->nin, sizeof *l->in)) == NULL) {
		*why = "out of memory";
		return STATUS_LIMIT;
	}
	if (q->op != OP_OR && q->op != OP_FAN_IN)
		return (l->in[0] = resolve(l, q->name, q->name_len, why, "no such channel (input)")) ?
		    STATUS_OK : STATUS_NOT_FOUND;
	for (size_t i = 0; i < l->nin; i++)
		if ((l->in[i] = resolve(l, q->cases[i].name, q->cases[i].name_len, why,
		    "no such channel (one of the inputs)")) == NULL)
			return STATUS_NOT_FOUND;
	return STATUS_OK;
}

/* Make or open each output with MAKE's rules; a '~' name must exist already. */
static int
make_outputs(struct conn *c, struct link *l, const struct proto_request *q, const char **why)
{
	struct server *s = l->srv;
	bool created;
	int st;

	for (uint32_t i = 0; i < q->nouts; i++) {
		const struct proto_link_out *o = &q->outs[i];

		if (o->cap > s->cfg.max_cap) {
			*why = "output cap is larger than max_cap";
			return STATUS_LIMIT;
		}
		if (o->name && o->name[0] == '~' && engine_lookup(s->engine, o->name, o->name_len) == NULL) {
			*why = "no such channel (output)";
			return STATUS_NOT_FOUND;
		}
		if ((o->name == NULL || engine_lookup(s->engine, o->name, o->name_len) == NULL) &&
		    acl_channels_full(c)) {
			*why = "too many channels for this identity (identity_max_channels)";
			return STATUS_LIMIT;
		}
		st = engine_make(s->engine, o->name, o->name_len, (uint32_t)o->cap, &l->out[i], &created);
		if (st != STATUS_OK) {
			*why = st == STATUS_EXISTS ? "output exists with a different cap" : "max_channels reached";
			return st;
		}
		if (created)
			acl_created(c, l->out[i]);
		if (o->name == NULL)
			l->own_outs |= 1u << i;
		l->nout++;
	}
	return STATUS_OK;
}

/* The creator holds anonymous outputs, as if it had made them: they outlive the link. */
static int
hold_outputs(struct conn *c, struct link *l)
{
	for (size_t i = 0; i < l->nout; i++)
		if (chan_anonymous(l->out[i]) && !stand_in(l, l->out[i]) && conn_hold(c, l->out[i]) < 0)
			return -1;
	return 0;
}

/* STARTED names a stand-in's output by the name it stands for, as asked. */
static void
reply_started(struct conn *c, struct link *l, uint64_t id)
{
	const char *names[PROTO_LINK_OUTS_MAX];
	size_t lens[PROTO_LINK_OUTS_MAX];
	bool sending;

	for (size_t i = 0; i < l->nout; i++)
		names[i] = rights_name(l, l->out[i], &lens[i], &sending);
	if (proto_rep_started(&c->srv->out, id, names, lens, l->nout) == 0)
		conn_flush_out(c);
}

static int
link_setup(struct conn *c, struct link *l, const struct proto_request *q, const char **why)
{
	int st;

	if ((st = resolve_inputs(l, q, why)) != STATUS_OK || (st = l->kind->init(l, q, why)) != STATUS_OK ||
	    (st = make_outputs(c, l, q, why)) != STATUS_OK)
		return st;
	*why = "out of memory";
	if ((l->cases = calloc(l->nin > 2 ? l->nin : 2, sizeof *l->cases)) == NULL ||
	    hold_outputs(c, l) < 0 || request_link(c, q->id, q->op, q->wait_us, l, &l->req) < 0)
		return STATUS_LIMIT;
	return STATUS_OK;
}

void
link_request(struct conn *c, const struct proto_request *q)
{
	(void)link_start(c, q, NULL);
}

bool
link_start(struct conn *c, const struct proto_request *q, const struct link_hook *hook)
{
	struct server *s = c->srv;
	const char *why = "out of memory";
	uint64_t waiters = budget_link_waiters(q), bytes = budget_link_bytes(s, q);
	struct link *l;
	int st;

	if (!acl_pending_room(c, q->id) || !budget_room(c, q->id, waiters, bytes))
		return false;
	if ((l = calloc(1, sizeof *l)) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, why);
		return false;
	}
	if (hook != NULL)
		l->hook = *hook;
	l->srv = s;
	l->kind = kinds[q->op - OP_LINK_MIN];
	l->refs = 1;
	if ((st = link_setup(c, l, q, &why)) != STATUS_OK) {
		l->hook.ended = NULL;
		conn_reply_error(c, q->id, st, why);
		link_unref(l);
		return false;
	}
	if (l->hook.link != NULL)
		*l->hook.link = l;
	budget_charge(l->req, waiters, bytes);
	log_debug("link-start client=%" PRIu64 " id=%" PRIu64 " op=%s inputs=%zu", c->id, q->id,
	    proto_op_name(q->op), l->nin);
	s->stats.links_running++;
	if (q->op == OP_FAN_OUT)
		s->stats.jobs_running++;
	if (l->hook.hold_start)
		l->starting = true;
	else
		link_go(l);
	return true;
}

void
link_go(struct link *l)
{
	if (l->stopped)
		return;
	l->starting = false;
	reply_started(l->req->conn, l, l->req->id);
	link_ref(l);	/* watch_done may stop the link at once */
	watch_done(l);
	link_pump(l);
	link_unref(l);
}

/* ---- admin view ---------------------------------------------------------------- */

/* The i-th pending operation's case list, in the order done, slot 0, slot 1. */
static struct engine_op *
nth_op(const struct link *l, unsigned k)
{
	return k == 0 ? l->done_op : l->op[k - 1];
}

size_t
link_ncases(const struct link *l)
{
	size_t n = 0;

	for (unsigned k = 0; k <= LINK_SLOTS; k++)
		if (nth_op(l, k))
			n += engine_op_ncases(nth_op(l, k));
	return n;
}

struct chan *
link_case(const struct link *l, size_t i, enum case_dir *dir)
{
	for (unsigned k = 0; k <= LINK_SLOTS; k++) {
		struct engine_op *op = nth_op(l, k);

		if (op == NULL)
			continue;
		if (i < engine_op_ncases(op))
			return engine_op_chan(op, i, dir);
		i -= engine_op_ncases(op);
	}
	*dir = CASE_RECV;
	return NULL;
}

/* ---- a reload ------------------------------------------------------------------ */

/* A pending operation of l's on a channel its creator may no longer use ends now. */
static void
recheck(struct link *l)
{
	struct engine_op *op;
	enum case_dir dir;
	struct chan *ch;
	char msg[320];

	for (unsigned k = 0; k <= LINK_SLOTS && !l->stopped; k++) {
		for (size_t i = 0; (op = nth_op(l, k)) != NULL && i < engine_op_ncases(op); i++) {
			ch = engine_op_chan(op, i, &dir);
			if (may_use(l, ch, dir, msg, sizeof msg))
				continue;
			if (ch == l->inner)	/* the bridge makes it an error value and goes on */
				engine_op_cancel(l->srv->engine, op, STATUS_PERMISSION_DENIED);
			else
				link_stop(l, STATUS_PERMISSION_DENIED, msg);
			break;
		}
	}
	/* a value still on its way to another node's output is a pending send too (xpump.h) */
	for (size_t i = 0; i < l->nout && !l->stopped; i++) {
		const char *name;
		size_t len;
		bool sending;

		name = rights_name(l, l->out[i], &len, &sending);
		if (sending && !link_may(l, RIGHT_SEND, name, len, msg, sizeof msg))
			link_stop(l, STATUS_PERMISSION_DENIED, msg);
	}
}

/* Every running link of every connection, each held: stopping one may end others' requests. */
static struct link **
running_links(struct server *s, size_t *n)
{
	struct link **all = NULL, **grown;
	struct hmap_node *nd, *nx;
	struct request *r;
	struct conn *c;
	size_t pos, cap = 0;

	*n = 0;
	TAILQ_FOREACH(c, &s->conns, link) {
		HMAP_FOR_EACH_SAFE(nd, nx, pos, &c->pending) {
			r = HMAP_ENTRY(nd, struct request, node);
			if (r->kind != REQUEST_LINK || r->link == NULL)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				if ((grown = realloc(all, cap * sizeof *all)) == NULL) {
					log_warn("reload-links reason=\"out of memory\" note=\"the rest are "
					    "checked at their next operation\"");
					return all;
				}
				all = grown;
			}
			link_ref(r->link);
			all[(*n)++] = r->link;
		}
	}
	return all;
}

void
link_rules_changed(struct server *s)
{
	size_t n;
	struct link **all = running_links(s, &n);

	for (size_t i = 0; i < n; i++) {
		if (!all[i]->stopped)
			recheck(all[i]);
		link_unref(all[i]);
	}
	free(all);
}
