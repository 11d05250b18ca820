/*
 * engine.c: channels, waiters and select, after Go's runtime/chan.go and
 * runtime/select.go, on one thread and with no locks.
 *
 * An operation first polls its cases in a random order; the first ready
 * case fires and the operation completes at once. Only when nothing is
 * ready does it queue one waiter per case. Because polling always happens
 * before queueing, an operation never meets its own waiters, and because
 * the first case to fire unlinks all of its operation's waiters at once,
 * a queued waiter is always live: whoever dequeues it may complete it.
 *
 * Completions of pending operations are queued and their done callbacks
 * run when the outermost public call unwinds (engine_leave), so callbacks
 * always see a consistent engine and may call back into it. Linked waiters
 * hold their channel; those holds are dropped at the same point, which is
 * when an anonymous channel nobody holds any more is deleted.
 *
 * Commit point: a value belongs to its receiver from the moment the engine
 * matches it (it is in the receiver's result). If the receiver's
 * connection breaks before the reply is written, the value is lost, as in
 * Go when a goroutine dies holding it. The at-least-once mode (delivery.c)
 * is built on three primitives (engine_close.c): engine_lend (a received value is held
 * outside and may come back), engine_requeue (it comes back, ahead of the
 * buffer) and engine_settle (it will not): a closed channel reports
 * ok=false only once nothing lent is outstanding.
 *
 * The channel table (make, lookup, holds, delete) is engine_chans.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>

#include "chan.h"
#include "engine.h"
#include "engine_int.h"
#include "hmap.h"
#include "rand.h"

/* ---- entry and exit: deferred completions -------------------------------- */

void
engine_enter(struct engine *e)
{
	e->depth++;
}

/* Drop the holds the op's waiters had on their channels. */
static void
op_release_chans(struct engine *e, struct engine_op *op)
{
	uint32_t i;

	for (i = 0; i < op->nw; i++)
		if (op->w[i].ch != NULL)
			engine_release(e, op->w[i].ch);
}

static void
op_free(struct engine *e, struct engine_op *op)
{
	op->state = OP_FREE;
	if (e->nfree_ops >= ENGINE_FREE_OPS_MAX) {
		free(op->arr);
		free(op);
		return;
	}
	if (op->arrcap > ENGINE_KEEP_WAITERS) {
		free(op->arr);
		op->arr = NULL;
		op->arrcap = 0;
	}
	TAILQ_INSERT_HEAD(&e->free_ops, op, link);
	e->nfree_ops++;
}

/*
 * The outermost call runs the queued callbacks. A callback's own calls
 * into the engine find draining set and leave their completions to this
 * loop, so callbacks never nest.
 */
void
engine_leave(struct engine *e)
{
	struct engine_op *op;
	struct engine_result res;
	engine_done_fn *done;
	void *arg;

	if (--e->depth > 0 || e->draining)
		return;
	e->draining = true;
	while ((op = TAILQ_FIRST(&e->done_ops)) != NULL) {
		TAILQ_REMOVE(&e->done_ops, op, link);
		res = op->res;
		done = op->done;
		arg = op->arg;
		/* the error outlives the channel the release below may free */
		if (res.err != NULL)
			close_err_ref(res.err);
		/* a stream's unit goes back to its stream (its done callback), parked waiters held */
		if (op->stream == NULL) {
			op_release_chans(e, op);
			op_free(e, op);
		}
		done(arg, &res);
		close_err_unref(res.err);
	}
	e->draining = false;
}

/*
 * Resolve a waiting operation: unlink every waiter at once, free the send
 * values that were not taken (the caller cleared the fired one's if it
 * moved it), queue the completion. A stream's unit leaves only the channel
 * it fired on; its other waiters park (stream_unit_finished).
 */
void
op_finish(struct engine *e, struct engine_op *op, int status, int index,
    struct value *v, bool ok)
{
	struct waiter *w;
	uint32_t i;

	op->res.status = status;
	op->res.index = index;
	op->res.value = v;
	op->res.ok = ok;
	op->res.err = NULL;
	op->res.ch = v != NULL ? op->w[index].ch : NULL;
	op->res.claimed = false;
	op->state = OP_DONE;
	TAILQ_INSERT_TAIL(&e->done_ops, op, link);
	if (op->stream != NULL) {
		stream_unit_finished(e, op);
		return;
	}
	for (i = 0; i < op->nw; i++) {
		w = &op->w[i];
		if (w->ch != NULL) {
			chan_unlink(w->ch, w);
			e->nwaiters--;
			e->nsenders -= w->dir == CASE_SEND;
		}
		value_free(w->value);
		w->value = NULL;
	}
}

/* ---- engine ----------------------------------------------------------- */

int
engine_new(struct engine **out, const struct engine_limits *limits)
{
	struct engine *e;
	struct rand_state seeder;

	*out = NULL;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return STATUS_LIMIT;
	rand_seed(&seeder);
	hmap_init(&e->chans, rand_next(&seeder));
	rand_seed(&e->rng);
	if (limits != NULL)
		e->limits = *limits;
	TAILQ_INIT(&e->free_ops);
	TAILQ_INIT(&e->done_ops);
	*out = e;
	return STATUS_OK;
}

void
engine_free(struct engine *e)
{
	struct hmap_node *n, *nx;
	struct engine_op *op;
	size_t pos;

	if (e == NULL)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &e->chans)
		chan_free(HMAP_ENTRY(n, struct chan, node));
	hmap_destroy(&e->chans);
	while ((op = TAILQ_FIRST(&e->free_ops)) != NULL) {
		TAILQ_REMOVE(&e->free_ops, op, link);
		free(op->arr);
		free(op);
	}
	free(e->order);
	free(e);
}

void
engine_seed(struct engine *e, uint64_t seed)
{
	rand_seed_with(&e->rng, seed);
}

void
engine_set_limits(struct engine *e, const struct engine_limits *limits)
{
	e->limits = *limits;
}

void
chan_set_owner(struct chan *ch, void *owner)
{
	ch->owner = owner;
}

void *
chan_owner(const struct chan *ch)
{
	return ch->owner;
}

void
engine_set_owner_hook(struct engine *e, void (*gone)(void *owner, void *arg), void *arg)
{
	e->owner_gone = gone;
	e->owner_arg = arg;
}

void
engine_set_change_hook(struct engine *e, engine_change_fn *fn, void *arg)
{
	e->change = fn;
	e->change_arg = arg;
}

uint64_t
engine_nchannels(const struct engine *e)
{
	return hmap_count(&e->chans);
}

uint64_t
engine_nsend_waiters(const struct engine *e)
{
	return e->nsenders;
}

uint64_t
engine_buffered_values(const struct engine *e)
{
	return e->values;
}

uint64_t
engine_buffered_bytes(const struct engine *e)
{
	return e->bytes;
}

uint64_t
engine_nwaiters(const struct engine *e)
{
	return e->nwaiters - e->nparked;
}

struct waiter *
engine_first_receiver(struct engine *e, struct chan *ch)
{
	struct waiter *w;

	while ((w = chan_first_receiver(ch)) != NULL && w->parked)
		stream_drop_parked(e, w);
	return w;
}

/* ---- polling: one case, now ------------------------------------------- */

/* Buffer v, within the byte limit. On failure v is still the caller's. */
static int
engine_buffer(struct engine *e, struct chan *ch, struct value *v)
{
	uint64_t max = e->limits.max_buffered_bytes;

	if (max != 0 && (value_size(v) > max || e->bytes > max - value_size(v)))
		return STATUS_LIMIT;
	if (chan_buf_push(ch, v) != 0)
		return STATUS_LIMIT;
	engine_changed(e, ch, ENGINE_PUSH, v);
	e->bytes += value_size(v);
	e->values++;
	return STATUS_OK;
}

/* Fill r for a case that fired; always true, for the try_* returns. */
static bool
fired(struct engine_result *r, int status, int index, struct value *v, bool ok)
{
	r->status = status;
	r->index = index;
	r->value = v;
	r->ok = ok;
	r->err = NULL;
	r->claimed = false;
	return true;
}

/*
 * A send case: true when it fired (r filled, v consumed either way); with
 * claim, true when it is ready (v given back in r, ENGINE_CLAIM).
 */
static bool
try_send(struct engine *e, struct chan *ch, struct value *v, int index, bool claim,
    struct engine_result *r)
{
	struct waiter *w;
	int status;

	if (chan_closed(ch)) {
		value_free(v);
		return fired(r, STATUS_CLOSED, index, NULL, false);
	}
	if (claim) {
		if (!claim_room(ch))
			return false;
		fired(r, STATUS_OK, index, v, true);
		r->ch = ch;
		r->claimed = true;
		ch->claims++;
		return true;
	}
	if ((w = engine_first_receiver(e, ch)) != NULL) {
		/* Straight to the oldest receiver: no buffer, no limit. */
		op_finish(e, w->op, STATUS_OK, (int)w->index, v, true);
		return fired(r, STATUS_OK, index, NULL, true);
	}
	if (ch->len < ch->cap) {
		if ((status = engine_buffer(e, ch, v)) != STATUS_OK)
			value_free(v);
		return fired(r, status, index, NULL, status == STATUS_OK);
	}
	return false;
}

/* A receive case: true when it fired (r filled). */
static bool
try_recv(struct engine *e, struct chan *ch, int index, struct engine_result *r)
{
	struct waiter *w;
	struct value *v, *head;

	r->ch = ch;
	/* values given back (engine_requeue) go first; plain channels have none */
	if (ch->nback > 0) {
		v = chan_back_pop(ch);
		engine_changed(e, ch, ENGINE_POP, v);
		e->bytes -= value_size(v);
		e->values--;
		return fired(r, STATUS_OK, index, v, true);
	}
	/* claiming senders cannot be taken: the first plain one is, ahead of them */
	TAILQ_FOREACH(w, &ch->sendq, link)
		if (!w->op->claim)
			break;
	if (w != NULL) {
		v = w->value;
		w->value = NULL;
		op_finish(e, w->op, STATUS_OK, (int)w->index, NULL, true);
		if (ch->cap == 0)
			return fired(r, STATUS_OK, index, v, true);
		/* Full buffer: take the head, the sender's value joins the
		 * tail (the slot just freed, so the push cannot fail). */
		head = chan_buf_pop(ch);
		engine_changed(e, ch, ENGINE_POP, head);
		(void)chan_buf_push(ch, v);
		engine_changed(e, ch, ENGINE_PUSH, v);
		e->bytes = e->bytes - value_size(head) + value_size(v);
		return fired(r, STATUS_OK, index, head, true);
	}
	if (ch->len > 0) {
		v = chan_buf_pop(ch);
		engine_changed(e, ch, ENGINE_POP, v);
		e->bytes -= value_size(v);
		e->values--;
		claim_first(e, ch, NULL);	/* the slot freed */
		return fired(r, STATUS_OK, index, v, true);
	}
	if (chan_closed(ch) && ch->lent == 0) {
		fired(r, STATUS_OK, index, NULL, false);
		r->err = ch->err;
		return true;
	}
	r->ch = NULL;
	return false;
}

static bool
try_case(struct engine *e, const struct engine_case *c, int index, bool claim,
    struct engine_result *r)
{
	if (c->ch == NULL)
		return false;
	if (c->dir == CASE_SEND)
		return try_send(e, c->ch, c->value, index, claim, r);
	return try_recv(e, c->ch, index, r);
}

/* The scratch array for n poll positions; NULL when out of memory. */
uint32_t *
engine_order(struct engine *e, size_t n)
{
	uint32_t *order;
	size_t cap;

	if (n <= e->order_cap)
		return e->order;
	cap = e->order_cap == 0 ? 16 : e->order_cap;
	while (cap < n)
		cap *= 2;
	order = realloc(e->order, cap * sizeof *order);
	if (order == NULL)
		return NULL;
	e->order = order;
	e->order_cap = cap;
	return order;
}

/*
 * Poll the cases in a uniformly random order: a Fisher-Yates shuffle
 * drawn one position at a time, stopping at the first ready case (with
 * ENGINE_ORDERED, the identity). Returns 1 when a case fired, 0 when none
 * is ready, -1 out of memory. On 0 the shuffle is complete: poll_order()
 * is a uniform permutation (the identity).
 */
int
poll_cases(struct engine *e, const struct engine_case *cases, size_t n, unsigned flags,
    struct engine_result *r)
{
	uint32_t *order, i;

	if (n == 0)
		return 0;
	if (n == 1)
		return try_case(e, &cases[0], 0, flags & ENGINE_CLAIM, r) ? 1 : 0;
	if ((order = engine_order(e, n)) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		order[i] = i;
	return poll_subset(e, cases, order, n, flags, r);
}

int
poll_subset(struct engine *e, const struct engine_case *cases, uint32_t *idx, size_t k,
    unsigned flags, struct engine_result *r)
{
	bool claim = flags & ENGINE_CLAIM, ordered = flags & ENGINE_ORDERED;
	uint32_t i, j, t;

	for (i = 0; i < k; i++) {
		j = ordered ? i : i + rand_below(&e->rng, (uint32_t)(k - i));
		t = idx[j];
		idx[j] = idx[i];
		idx[i] = t;
		if (try_case(e, &cases[t], (int)t, claim, r))
			return 1;
	}
	return 0;
}

const uint32_t *
poll_order(struct engine *e, size_t n)
{
	return n > 1 ? e->order : NULL;
}

/* ---- pending operations ------------------------------------------------ */

/* An operation with room for n waiters, from the free list if possible. */
static struct engine_op *
op_alloc(struct engine *e, size_t n)
{
	struct engine_op *op = TAILQ_FIRST(&e->free_ops);
	struct waiter *arr;

	if (op != NULL) {
		TAILQ_REMOVE(&e->free_ops, op, link);
		e->nfree_ops--;
	} else if ((op = calloc(1, sizeof *op)) == NULL)
		return NULL;
	if (n > op->arrcap && n > 1) {
		if ((arr = realloc(op->arr, n * sizeof *arr)) == NULL)
			goto fail;
		op->arr = arr;
		op->arrcap = (uint32_t)n;
	}
	op->w = n > 1 ? op->arr : &op->one;
	op->nw = (uint32_t)n;
	op->claim = false;
	return op;

fail:
	op_free(e, op);
	return NULL;
}

/*
 * Waiter i stays case i; only the queueing follows order, as Go's selectgo
 * enqueues in its shuffled order: two cases on one channel each come first
 * on its queue equally often.
 */
void
op_link(struct engine *e, struct engine_op *op, const struct engine_case *cases, size_t n,
    const uint32_t *order)
{
	struct waiter *w;
	size_t i, c;

	op->state = OP_WAITING;
	op->nlinked = 0;
	for (i = 0; i < n; i++) {
		c = order != NULL ? order[i] : i;
		w = &op->w[c];
		w->op = op;
		w->ch = cases[c].ch;
		w->dir = (uint8_t)cases[c].dir;
		w->index = (uint32_t)c;
		w->parked = false;
		w->value = cases[c].dir == CASE_SEND ? cases[c].value : NULL;
		if (w->ch == NULL)
			continue;
		chan_link(w->ch, w);
		w->ch->holds++;
		op->nlinked++;
		e->nwaiters++;
		e->nsenders += w->dir == CASE_SEND;
		if (w->dir == CASE_RECV)
			claim_first(e, w->ch, op);	/* a receiver now waits */
	}
}

/* Queue one waiter per case; the values move into the waiters. */
static struct engine_op *
op_enqueue(struct engine *e, const struct engine_case *cases, size_t n, unsigned flags,
    engine_done_fn *done, void *arg)
{
	struct engine_op *op;

	if ((op = op_alloc(e, n)) == NULL)
		return NULL;
	op->claim = (flags & ENGINE_CLAIM) != 0;
	op->done = done;
	op->arg = arg;
	op->stream = NULL;
	op_link(e, op, cases, n, poll_order(e, n));
	return op;
}

/* Free the send values an immediate completion did not consume. */
static void
free_case_values(const struct engine_case *cases, size_t n, int fired)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cases[i].dir == CASE_SEND && (int)i != fired)
			value_free(cases[i].value);
}

/* The first case on a deleted channel, or -1. */
int
find_deleted(const struct engine_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cases[i].ch != NULL && chan_deleted(cases[i].ch))
			return (int)i;
	return -1;
}

int
engine_submit(struct engine *e, const struct engine_case *cases, size_t ncases,
    unsigned flags, engine_done_fn *done, void *arg,
    struct engine_op **pending, struct engine_result *now)
{
	struct engine_result r = { .status = STATUS_OK, .index = -1 };
	int fire = -1, deleted = -1, rc = 0;

	*pending = NULL;
	engine_enter(e);
	if (ncases > ENGINE_MAX_CASES)
		r.status = STATUS_LIMIT;
	else if ((deleted = find_deleted(cases, ncases)) >= 0)
		r.status = STATUS_NOT_FOUND;
	else if ((rc = poll_cases(e, cases, ncases, flags, &r)) > 0)
		fire = r.index;
	else if (rc < 0)
		r.status = STATUS_LIMIT;
	else if ((flags & ENGINE_CLAIM_WAIT) && claimers_wait(cases, ncases)) {
		if ((*pending = op_enqueue(e, cases, ncases, flags, done, arg)) == NULL)
			r.status = STATUS_LIMIT;
	} else if (flags & ENGINE_DEFAULT)
		r.ok = true;
	else if (!(flags & ENGINE_WAIT))
		r.status = STATUS_DEADLINE_EXCEEDED;
	else if ((*pending = op_enqueue(e, cases, ncases, flags, done, arg)) == NULL)
		r.status = STATUS_LIMIT;
	if (*pending == NULL) {
		/* The fired case's value was consumed; the rest go now. */
		free_case_values(cases, ncases, fire);
		if (fire < 0)
			r.index = deleted;
		*now = r;
	}
	/* Only other operations' callbacks run here, never this one's. */
	engine_leave(e);
	return *pending != NULL;
}

void
engine_op_cancel(struct engine *e, struct engine_op *op, int status)
{
	/* Already resolved, its callback queued: that result stands. */
	if (op->state != OP_WAITING)
		return;
	engine_enter(e);
	op_finish(e, op, status, -1, NULL, false);
	engine_leave(e);
}

void
engine_op_enable(struct engine *e, struct engine_op *op, size_t index, struct chan *ch)
{
	struct engine_case c = { .ch = ch, .dir = CASE_RECV };
	struct engine_result r = { .status = STATUS_OK, .index = -1 };
	struct waiter *w = &op->w[index];

	if (op->state != OP_WAITING)
		return;
	engine_enter(e);
	if (chan_deleted(ch))
		op_finish(e, op, STATUS_NOT_FOUND, (int)index, NULL, false);
	else if (try_case(e, &c, (int)index, false, &r)) {
		op_finish(e, op, r.status, (int)index, r.value, r.ok);
		/* the waiter was never linked: the result names its channel itself */
		op->res.ch = r.value != NULL ? ch : NULL;
		op->res.err = r.err;
	} else {
		w->ch = ch;
		chan_link(ch, w);
		ch->holds++;
		e->nwaiters++;
		claim_first(e, ch, op);
	}
	engine_leave(e);
}

size_t
engine_op_ncases(const struct engine_op *op)
{
	return op->nw;
}

struct chan *
engine_op_chan(const struct engine_op *op, size_t i, enum case_dir *dir)
{
	*dir = (enum case_dir)op->w[i].dir;
	return op->w[i].ch;
}
