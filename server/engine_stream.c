/*
 * engine_stream.c: credit-based streaming receive. A stream is a set of
 * units, each one pending receive (engine.h); granting credit arms units,
 * a delivery returns one to the stream's spare list.
 *
 * A unit is an ordinary engine operation with op->stream set, so senders,
 * close and delete meet it through the very code paths of RECV and SELECT
 * (try_send hands it a value with op_finish). Only three places differ:
 * op_finish takes a finished unit off its stream's armed list, engine_leave
 * gives a completed unit back to its stream instead of the free list, and
 * close/delete call the hooks below so that a close is reported once and a
 * delete ends the whole stream.
 *
 * Units live as long as the stream: a unit's waiters are armed and
 * withdrawn in place, so after the first grant of k units nothing is
 * allocated per value, whatever the number of channels.
 *
 * Parking: a unit that received leaves only the channel it received from.
 * Its other waiters stay linked, *parked*: not receivers (chan_nreceivers
 * and claims leave them out), and whoever meets one at the head of its
 * channel's recvq drops it (engine_first_receiver). A parked waiter still
 * linked therefore says its channel has had no value, sender or close
 * since, so arming the unit again (unit_rearm) keeps it as it is when it
 * is still the newest receiver there, and polls and links only the rest:
 * a streaming select over n channels costs O(n) cheap steps a value, not a
 * poll, a shuffle and n links and unlinks. A stream that names a channel
 * twice does not park: its two waiters there must queue in random order.
 *
 * Ending is itself a queued completion (endop): it goes on the engine's
 * completion queue behind every unit the stream already resolved, so the
 * end callback runs after their values, whatever ended the stream.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "engine.h"
#include "engine_int.h"
#include "value.h"

struct engine_stream {
	struct engine *e;
	struct chan **chans;		/* held, n of them */
	struct engine_case *cases;	/* receive cases; ch NULL once the close was reported */
	struct engine_case *live;	/* what units poll and queue on: cases, less those allowed 0 */
	uint32_t *allow;		/* values each channel may still give; ENGINE_STREAM_ANY */
	uint32_t *redo;			/* unit_rearm's scratch: the cases to poll and link */
	size_t n;
	bool park;			/* units keep their waiters between receives (no channel twice) */
	size_t nopen;			/* channels whose close was not reported yet */
	struct opq armed;		/* units waiting (their waiters linked), oldest first */
	struct opq spare;		/* units to arm */
	uint64_t narmed, nspare;
	uint64_t queued;		/* units resolved, value() not yet called */
	engine_stream_value_fn *value;
	engine_stream_end_fn *end;
	void *arg;
	bool ending;
	int end_status, end_index;
	struct engine_op endop;		/* the end, queued behind the units already resolved */
};

static void unit_done(void *arg, struct engine_result *res);
static void stream_end_done(void *arg, struct engine_result *res);

/* ---- units ---------------------------------------------------------------------- */

static int
unit_new(struct engine_stream *s)
{
	struct engine_op *op = calloc(1, sizeof *op);

	if (op == NULL)
		return -1;
	if (s->n > 1 && (op->arr = calloc(s->n, sizeof *op->arr)) == NULL) {
		free(op);
		return -1;
	}
	op->arrcap = s->n > 1 ? (uint32_t)s->n : 0;
	op->w = s->n > 1 ? op->arr : &op->one;
	op->nw = (uint32_t)s->n;
	for (uint32_t i = 0; i < op->nw; i++)
		op->w[i] = (struct waiter){ .op = op, .index = i, .dir = CASE_RECV };
	op->stream = s;
	op->done = unit_done;
	op->arg = op;
	op->state = OP_FREE;
	TAILQ_INSERT_TAIL(&s->spare, op, slink);
	s->nspare++;
	return 0;
}

/* Enough spare units for n more grants, allocated now or never. */
static int
stream_reserve(struct engine_stream *s, uint64_t n)
{
	while (s->nspare < n)
		if (unit_new(s) < 0)
			return STATUS_LIMIT;
	return STATUS_OK;
}

/* Parked units first: they are the cheap ones to arm. */
static void
unit_to_spare(struct engine_stream *s, struct engine_op *op)
{
	op->state = OP_FREE;
	if (op->nlinked > 0)
		TAILQ_INSERT_HEAD(&s->spare, op, slink);
	else
		TAILQ_INSERT_TAIL(&s->spare, op, slink);
	s->nspare++;
}

/* Take w, one of op's linked waiters (parked or not), off its channel. */
static void
unit_unlink(struct engine *e, struct engine_op *op, struct waiter *w)
{
	e->nparked -= w->parked;
	chan_unlink(w->ch, w);
	e->nwaiters--;
	engine_release(e, w->ch);	/* never the last hold: the stream holds it */
	w->ch = NULL;
	op->nlinked--;
}

/* Take every linked waiter of op off its channel. */
static void
unit_unlink_all(struct engine *e, struct engine_op *op)
{
	for (uint32_t i = 0; i < op->nw && op->nlinked > 0; i++)
		if (op->w[i].ch != NULL)
			unit_unlink(e, op, &op->w[i]);
}

/* Take a waiting unit's waiters off their channels; it becomes spare. */
static void
unit_withdraw(struct engine *e, struct engine_stream *s, struct engine_op *op)
{
	unit_unlink_all(e, op);
	TAILQ_REMOVE(&s->armed, op, slink);
	s->narmed--;
	unit_to_spare(s, op);
}

/* ---- ending --------------------------------------------------------------------- */

/* Withdraw every waiting unit and queue the end behind the resolved ones. */
static void
stream_begin_end(struct engine *e, struct engine_stream *s, int status, int index)
{
	struct engine_op *op;

	if (s->ending)
		return;
	s->ending = true;
	s->end_status = status;
	s->end_index = index;
	while ((op = TAILQ_FIRST(&s->armed)) != NULL)
		unit_withdraw(e, s, op);
	/* every spare: a parked one may sit behind one whose waiters were all dropped since */
	TAILQ_FOREACH(op, &s->spare, slink)
		unit_unlink_all(e, op);
	/* the resolved units' parked waiters go in unit_done */
	s->endop.state = OP_DONE;
	TAILQ_INSERT_TAIL(&e->done_ops, &s->endop, link);
}

static void
stream_free(struct engine_stream *s)
{
	struct engine_op *op;

	while ((op = TAILQ_FIRST(&s->spare)) != NULL) {
		TAILQ_REMOVE(&s->spare, op, slink);
		free(op->arr);
		free(op);
	}
	for (size_t i = 0; i < s->n; i++)
		engine_release(s->e, s->chans[i]);
	free(s->chans);
	free(s->cases);
	free(s->live);
	free(s->allow);
	free(s->redo);
	free(s);
}

static void
stream_end_done(void *arg, struct engine_result *res)
{
	struct engine_stream *s = arg;

	(void)res;
	s->end(s->arg, s->end_status, s->end_index);
	stream_free(s);
}

/* The close of channel i is being reported: receive from it no more. */
static void
stream_mark_closed(struct engine *e, struct engine_stream *s, int i)
{
	if (i < 0 || (size_t)i >= s->n || s->cases[i].ch == NULL)
		return;
	s->cases[i].ch = s->live[i].ch = NULL;
	if (--s->nopen == 0)
		stream_begin_end(e, s, STATUS_OK, -1);
}

/* ---- limits per channel --------------------------------------------------------- */

/* Queue w, a waiting unit's waiter, on ch. */
static void
unit_link(struct engine *e, struct engine_op *op, struct waiter *w, struct chan *ch)
{
	w->ch = ch;
	chan_link(ch, w);
	ch->holds++;
	e->nwaiters++;
	op->nlinked++;
	claim_first(e, ch, op);		/* a receiver now waits */
}

/* Take waiter i of every waiting unit off its channel: channel i gives nothing more for now. */
static void
gate_close(struct engine *e, struct engine_stream *s, size_t i)
{
	struct engine_op *op;

	s->live[i].ch = NULL;
	TAILQ_FOREACH(op, &s->armed, slink)
		if (op->w[i].ch != NULL)
			unit_unlink(e, op, &op->w[i]);
}

/* One value taken from channel i: one less allowed. */
static void
gate_count(struct engine *e, struct engine_stream *s, int i)
{
	if (i < 0 || s->allow[i] == ENGINE_STREAM_ANY)
		return;
	if (--s->allow[i] == 0)
		gate_close(e, s, (size_t)i);
}

/*
 * Channel i is allowed again: the waiting units, oldest first, take what
 * it has ready (a value, or its close), then the rest queue on it.
 */
static void
gate_open(struct engine *e, struct engine_stream *s, size_t i)
{
	struct chan *ch = s->cases[i].ch;
	struct engine_op *op, *next;
	struct engine_result r;

	if (ch == NULL)
		return;
	s->live[i].ch = ch;
	for (op = TAILQ_FIRST(&s->armed); op != NULL && s->live[i].ch != NULL; op = next) {
		struct waiter *w = &op->w[i];

		next = TAILQ_NEXT(op, slink);
		r = (struct engine_result){ .status = STATUS_OK, .index = -1 };
		if (!chan_deleted(ch) && poll_cases(e, &s->live[i], 1, 0, &r) > 0) {
			op_finish(e, op, r.status, (int)i, r.value, r.ok);	/* counts it */
			op->res.ch = r.value != NULL ? ch : NULL;
			if (!r.ok) {
				op->res.err = ch->err;
				stream_mark_closed(e, s, (int)i);
			}
			continue;
		}
		unit_link(e, op, w, ch);
	}
}

/* ---- the hooks of engine.c -------------------------------------------------------- */

/* op received: its waiters still linked are receivers no more. */
static void
unit_park(struct engine *e, struct engine_stream *s, struct engine_op *op)
{
	if (!s->park) {
		unit_unlink_all(e, op);
		return;
	}
	for (uint32_t i = 0, k = 0; k < op->nlinked; i++)
		if (op->w[i].ch != NULL) {
			chan_park(op->w[i].ch, &op->w[i]);
			k++;
		}
	e->nparked += op->nlinked;
}

void
stream_unit_finished(struct engine *e, struct engine_op *op)
{
	struct engine_stream *s = op->stream;
	int i = op->res.index;

	if (i >= 0 && op->w[i].ch != NULL)
		unit_unlink(e, op, &op->w[i]);
	unit_park(e, s, op);
	TAILQ_REMOVE(&s->armed, op, slink);
	s->narmed--;
	s->queued++;
	if (op->res.value != NULL)
		gate_count(e, s, op->res.index);
}

void
stream_drop_parked(struct engine *e, struct waiter *w)
{
	unit_unlink(e, w->op, w);
}

void
stream_recv_closed(struct engine *e, struct chan *ch, struct waiter *w)
{
	struct engine_stream *s = w->op->stream;
	int i = (int)w->index;

	if (s->cases[i].ch != NULL) {
		op_finish(e, w->op, STATUS_OK, i, NULL, false);
		w->op->res.err = ch->err;
		stream_mark_closed(e, s, i);
		return;
	}
	/* reported already (by another unit): this unit just drops the channel */
	unit_unlink(e, w->op, w);
}

void
stream_chan_deleted(struct engine *e, struct waiter *w)
{
	stream_begin_end(e, w->op->stream, STATUS_NOT_FOUND, (int)w->index);
}

/* A unit completed (from engine_leave): back to spare, parked waiters and all, then deliver. */
static void
unit_done(void *arg, struct engine_result *res)
{
	struct engine_op *op = arg;
	struct engine_stream *s = op->stream;

	if (s->ending)
		unit_unlink_all(s->e, op);
	s->queued--;
	unit_to_spare(s, op);
	if (res->status != STATUS_OK) {
		/* units are only ever resolved by a value or a close */
		value_free(res->value);
		res->value = NULL;
		return;
	}
	s->value(s->arg, res);
}

/* ---- arming ------------------------------------------------------------------------ */

/*
 * Arm op, a parked unit, again: a waiter still linked and still the
 * newest receiver of its channel stays (its channel has had nothing to
 * give since); the others, and the channels the unit left, are polled in
 * random order, then linked in that order if none is ready. Polling only
 * those is polling them all: the kept ones are known not ready.
 */
static void
unit_rearm(struct engine *e, struct engine_stream *s, struct engine_op *op)
{
	struct engine_result r = { .status = STATUS_OK, .index = -1 };
	size_t nredo = 0, nkept = 0;
	bool claimers = false;
	int del = -1;

	TAILQ_REMOVE(&s->spare, op, slink);
	s->nspare--;
	op->state = OP_WAITING;
	TAILQ_INSERT_TAIL(&s->armed, op, slink);
	s->narmed++;
	for (uint32_t i = 0; i < s->n; i++) {
		struct waiter *w = &op->w[i];

		if (w->ch != NULL) {
			if (s->live[i].ch != NULL && TAILQ_NEXT(w, link) == NULL) {
				chan_unpark(w->ch, w);
				claimers |= !TAILQ_EMPTY(&w->ch->sendq);
				nkept++;
				continue;
			}
			unit_unlink(e, op, w);		/* gated, closed, or overtaken */
		}
		if (s->cases[i].ch == NULL)
			continue;
		if (del < 0 && chan_deleted(s->cases[i].ch))
			del = (int)i;
		if (s->live[i].ch != NULL)
			s->redo[nredo++] = i;
	}
	e->nparked -= nkept;
	if (del >= 0) {
		stream_begin_end(e, s, STATUS_NOT_FOUND, del);
		return;
	}
	for (uint32_t i = 0; claimers && i < s->n; i++)
		if (op->w[i].ch != NULL)
			claim_first(e, op->w[i].ch, op);	/* a receiver waits again */
	if (poll_subset(e, s->live, s->redo, nredo, 0, &r) <= 0) {
		for (size_t k = 0; k < nredo; k++)
			unit_link(e, op, &op->w[s->redo[k]], s->live[s->redo[k]].ch);
		return;
	}
	op_finish(e, op, r.status, r.index, r.value, r.ok);	/* parks the kept ones again */
	op->res.ch = r.value != NULL ? r.ch : NULL;	/* the waiter was not linked */
	op->res.err = r.err;
	if (!r.ok)
		stream_mark_closed(e, s, r.index);
}

/* One more pending receive: take a ready value now, else (wait) queue it. */
static void
unit_arm(struct engine *e, struct engine_stream *s, bool wait)
{
	struct engine_result r = { .status = STATUS_OK, .index = -1 };
	struct engine_op *op = TAILQ_FIRST(&s->spare);
	int del, rc;

	if (op->nlinked > 0 && wait) {
		unit_rearm(e, s, op);
		return;
	}
	if (op->nlinked > 0)
		unit_unlink_all(e, op);
	if ((del = find_deleted(s->cases, s->n)) >= 0) {
		stream_begin_end(e, s, STATUS_NOT_FOUND, del);
		return;
	}
	/* cannot fail: the poll order was sized for n when the stream was made */
	rc = poll_cases(e, s->live, s->n, 0, &r);
	if (rc <= 0 && !wait)
		return;
	TAILQ_REMOVE(&s->spare, op, slink);
	s->nspare--;
	if (rc <= 0) {
		op_link(e, op, s->live, s->n, poll_order(e, s->n));
		TAILQ_INSERT_TAIL(&s->armed, op, slink);
		s->narmed++;
		return;
	}
	op->res = r;
	op->state = OP_DONE;
	s->queued++;
	TAILQ_INSERT_TAIL(&e->done_ops, op, link);
	if (!r.ok)
		stream_mark_closed(e, s, r.index);
	else
		gate_count(e, s, r.index);
}

static int
stream_grant(struct engine *e, struct engine_stream *s, uint32_t n, bool wait)
{
	if (s->ending)
		return STATUS_CANCELED;
	if (stream_reserve(s, n) != STATUS_OK)
		return STATUS_LIMIT;
	engine_enter(e);
	for (uint32_t i = 0; i < n && !s->ending; i++)
		unit_arm(e, s, wait);
	if (!wait)
		stream_begin_end(e, s, STATUS_DEADLINE_EXCEEDED, -1);
	engine_leave(e);
	return STATUS_OK;
}

/* ---- the public calls ------------------------------------------------------------- */

static int
chan_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct chan *const *)a, y = (uintptr_t)*(struct chan *const *)b;

	return (x > y) - (x < y);
}

/* *distinct: no channel appears twice in chans[0..n). -1 when out of memory. */
static int
chans_distinct(struct chan *const *chans, size_t n, bool *distinct)
{
	struct chan **sorted = malloc(n * sizeof *sorted);

	if (sorted == NULL)
		return -1;
	memcpy(sorted, chans, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, chan_cmp);
	*distinct = true;
	for (size_t i = 1; i < n && *distinct; i++)
		*distinct = sorted[i] != sorted[i - 1];
	free(sorted);
	return 0;
}

int
engine_stream_new(struct engine *e, struct chan *const *chans, size_t n, uint32_t reserve,
    engine_stream_value_fn *value, engine_stream_end_fn *end, void *arg,
    struct engine_stream **out)
{
	struct engine_stream *s;

	*out = NULL;
	if (n == 0 || n > ENGINE_MAX_CASES || engine_order(e, n) == NULL)
		return STATUS_LIMIT;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return STATUS_LIMIT;
	TAILQ_INIT(&s->armed);
	TAILQ_INIT(&s->spare);
	s->e = e;
	s->n = s->nopen = n;
	s->value = value;
	s->end = end;
	s->arg = arg;
	s->endop.stream = s;
	s->endop.done = stream_end_done;
	s->endop.arg = s;
	s->chans = calloc(n, sizeof *s->chans);
	s->cases = calloc(n, sizeof *s->cases);
	s->live = calloc(n, sizeof *s->live);
	s->allow = calloc(n, sizeof *s->allow);
	s->redo = calloc(n, sizeof *s->redo);
	if (s->chans == NULL || s->cases == NULL || s->live == NULL || s->allow == NULL ||
	    s->redo == NULL || chans_distinct(chans, n, &s->park) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		s->chans[i] = s->cases[i].ch = s->live[i].ch = chans[i];
		s->cases[i].dir = s->live[i].dir = CASE_RECV;
		s->allow[i] = ENGINE_STREAM_ANY;
	}
	if (stream_reserve(s, reserve) != STATUS_OK)
		goto fail;
	for (size_t i = 0; i < n; i++)
		engine_hold(chans[i]);
	*out = s;
	return STATUS_OK;

fail:
	s->n = 0;	/* no holds taken yet */
	stream_free(s);
	return STATUS_LIMIT;
}

int
engine_stream_start(struct engine *e, struct engine_stream *s, uint32_t credit, unsigned flags)
{
	return stream_grant(e, s, credit, (flags & ENGINE_WAIT) != 0);
}

int
engine_stream_credit(struct engine *e, struct engine_stream *s, uint32_t n)
{
	return stream_grant(e, s, n, true);
}

uint64_t
engine_stream_outstanding(const struct engine_stream *s)
{
	return s->narmed + s->queued;
}

void
engine_stream_end(struct engine *e, struct engine_stream *s, int status)
{
	engine_enter(e);
	stream_begin_end(e, s, status, -1);
	engine_leave(e);
}

void
engine_stream_limit(struct engine_stream *s, size_t i)
{
	s->allow[i] = 0;
	s->live[i].ch = NULL;
}

void
engine_stream_allow(struct engine *e, struct engine_stream *s, size_t i, int64_t delta)
{
	uint32_t was = s->allow[i];

	if (was == ENGINE_STREAM_ANY || delta == 0)
		return;
	engine_enter(e);
	/* never below 0: a caller's slip must not turn into no limit */
	s->allow[i] = delta < 0 && -delta > (int64_t)was ? 0 : (uint32_t)((int64_t)was + delta);
	if (was == 0 && s->allow[i] > 0 && !s->ending)
		gate_open(e, s, i);
	else if (was > 0 && s->allow[i] == 0)
		gate_close(e, s, i);
	engine_leave(e);
}

size_t
engine_stream_nchans(const struct engine_stream *s)
{
	return s->n;
}

struct chan *
engine_stream_chan(const struct engine_stream *s, size_t i)
{
	return s->cases[i].ch;
}
