/*
 * stream.c: STREAM and CREDIT, the network side of engine streams.
 *
 * Every check that can fail is made before the stream exists (rights,
 * max_pending, max_stream_credit, each channel found, no channel twice), so
 * a refused STREAM leaves nothing behind. Once started, the stream answers
 * itself: one interim reply per value or close report (stream_value), then
 * exactly one final reply (stream_end), after every value it took.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>

#include "acl.h"
#include "budget.h"
#include "codec.h"
#include "conn.h"
#include "delivery.h"
#include "durable.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "stream.h"
#include "value.h"

/* [id, OK, index, value | nil, ok], or a close report with the channel's close error (§5 CLOSE). */
static int
stream_reply(struct conn *c, uint64_t id, const struct engine_result *res)
{
	const uint8_t *raw = res->value ? value_data(res->value) : NULL;
	size_t raw_len = res->value ? value_len(res->value) : 0;
	struct proto_close_err err;

	if (res->err == NULL)
		return proto_rep_select(&c->srv->out, id, res->index, raw, raw_len, res->ok);
	request_close_err(res->err, &err);
	return proto_rep_closed_err(&c->srv->out, id, res->index, &err);
}

/* A value from an ack channel (§16): in flight from now on, [id, OK, index, value, true, tag, count]. */
static void
stream_tagged(struct request *r, struct engine_result *res)
{
	struct conn *c = r->conn;
	struct value *v = res->value;
	uint64_t tag;
	uint32_t count;

	res->value = NULL;
	if (c->dead) {
		delivery_unsent(c->srv->delivery, res->ch, v);
		return;
	}
	if (delivery_take(c->srv->delivery, c, res->ch, v, &tag, &count) != STATUS_OK) {
		/* given back; the stream cannot go on without a lost reply */
		conn_close_after_flush(c, 0, STATUS_LIMIT, "out of memory");
		return;
	}
	if (proto_rep_select_ack(&c->srv->out, r->id, res->index, value_data(v), value_len(v), tag,
	    count) < 0) {
		log_error("reply-failed client=%" PRIu64 " id=%" PRIu64 " reason=out-of-memory", c->id, r->id);
		proto_out_reset(&c->srv->out);
		conn_close_after_flush(c, 0, STATUS_LIMIT, "out of memory");
		return;
	}
	r->delivered++;
	if (c->srv->durable != NULL && chan_durable(res->ch))
		durable_hold(c->srv->durable, c, true, false);	/* its POP(tag) is in the journal first */
	else
		conn_flush_out(c);
}

/* ---- gates: a stream over several channels, some with a limit (§16) ---------------- */

/* What gate w may claim: the stream's credit, nothing once its channel's close was reported. */
static uint64_t
gate_target(const struct request_wait *w)
{
	const struct engine_stream *s = w->r->stream;

	return engine_stream_chan(s, (size_t)w->index) != NULL ? engine_stream_outstanding(s) : 0;
}

bool
stream_gate_wants(const struct request_wait *w)
{
	return w->units < gate_target(w);
}

bool
stream_gate_fill(struct request_wait *w, uint64_t extra)
{
	uint64_t target = gate_target(w) + extra;
	uint32_t n;

	if (w->units >= target)
		return false;
	if ((n = delivery_claim_units(w->r->conn, w->ch, target - w->units)) == 0)
		return false;
	w->units += n;
	/* values ready are taken at once: w and its request may be gone after */
	engine_stream_allow(w->r->conn->srv->engine, w->r->stream, (size_t)w->index, n);
	return true;
}

/* A value from a gate's channel used one of its units (taken in flight next: no room made). */
static void
gates_used(struct request *r, const struct engine_result *res)
{
	for (uint32_t i = 0; i < r->nwaits; i++) {
		if (res->value != NULL && r->waits[i].index == res->index) {
			r->waits[i].units--;
			delivery_used_unit(r->conn, r->waits[i].ch);
		}
	}
}

/* Units beyond the credit left go back: room for the others. */
static void
gates_trim(struct request *r)
{
	for (uint32_t i = 0; i < r->nwaits; i++) {
		struct request_wait *w = &r->waits[i];
		uint64_t target;
		uint32_t k;

		if (w->units <= (target = gate_target(w)))
			continue;
		k = w->units - (uint32_t)target;
		w->units -= k;
		engine_stream_allow(r->conn->srv->engine, r->stream, (size_t)w->index, -(int64_t)k);
		delivery_release_units(r->conn, w->ch, k);
	}
}

/* The stream's gates, one per channel with a limit, each with what there is room for of credit. */
static int
gates_start(struct request *r, struct chan **chans, uint32_t n, uint64_t credit)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++)
		r->nwaits += delivery_limited(chans[i]);
	if (r->nwaits == 0)
		return 0;
	if ((r->waits = calloc(r->nwaits, sizeof *r->waits)) == NULL) {
		r->nwaits = 0;
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct request_wait *w = &r->waits[k];

		if (!delivery_limited(chans[i]))
			continue;
		*w = (struct request_wait){ .r = r, .ch = chans[i], .index = (int)i };
		if (delivery_gate(r->conn, w) < 0) {
			r->nwaits = k;
			return -1;
		}
		k++;
		engine_stream_limit(r->stream, i);
		w->units = delivery_claim_units(r->conn, chans[i], credit);
		engine_stream_allow(r->conn->srv->engine, r->stream, i, w->units);	/* nothing armed yet */
	}
	return 0;
}

static void
gates_end(struct request *r)
{
	for (uint32_t i = 0; i < r->nwaits; i++)
		delivery_ungate(r->conn, &r->waits[i]);
	free(r->waits);
	r->waits = NULL;
	r->nwaits = 0;
}

/* After CREDIT granted n: each gate claims its share, while r lives. */
static void
gates_credit(struct conn *c, uint64_t id, struct request *r)
{
	for (uint32_t i = 0; r != NULL && i < r->nwaits; i++) {
		if (stream_gate_fill(&r->waits[i], 0))
			r = request_find(c, id);	/* gone if that ended the stream */
	}
}

/* One value (or a close report) for the stream's client: [id, OK, index, value | nil, ok]. */
static void
stream_value(void *arg, struct engine_result *res)
{
	struct request *r = arg;
	struct conn *c = r->conn;

	/* each value and close report uses one unit of the credit max_unacked counts */
	if (r->claim != NULL) {
		r->units--;
		delivery_used_unit(c, r->claim);
	}
	if (r->waits != NULL)
		gates_used(r, res);
	if (res->value != NULL && delivery_on(res->ch)) {
		stream_tagged(r, res);
		if (r->waits != NULL)
			gates_trim(r);
		return;
	}
	if (c->dead) {
		/* the client is gone: at-most-once, as for RECV (PROTOCOL.md §4) */
	} else if (stream_reply(c, r->id, res) < 0) {
		log_error("reply-failed client=%" PRIu64 " id=%" PRIu64 " reason=out-of-memory", c->id, r->id);
		proto_out_reset(&c->srv->out);
		conn_close_after_flush(c, 0, STATUS_LIMIT, "out of memory");
	} else {
		r->delivered += res->ok;
		/* a value from a durable channel goes out once its removal is in the journal */
		if (res->value != NULL && c->srv->durable != NULL && chan_durable(res->ch))
			durable_hold(c->srv->durable, c, true, false);
		else
			conn_flush_out(c);
	}
	value_free(res->value);
	res->value = NULL;
	if (r->waits != NULL)
		gates_trim(r);
}

/* A limited stream (max_unacked, §16) leaves its slot, giving its units back. */
static void
stream_unwatch(struct request *r)
{
	if (r->claim != NULL)
		delivery_unwatch(r->conn, r->claim, r, r->units);
	r->claim = NULL;
	r->units = 0;
}

static void
stream_end(void *arg, int status, int index)
{
	struct request *r = arg;

	stream_unwatch(r);
	if (r->waits != NULL)
		gates_end(r);
	log_debug("stream-end client=%" PRIu64 " id=%" PRIu64 " status=%s delivered=%" PRIu64,
	    r->conn->id, r->id, status_name(status), r->delivered);
	request_stream_end(r, status, index, NULL);
}

static void
reply_case_error(struct conn *c, uint64_t id, int status, const char *msg, uint32_t index)
{
	if (proto_rep_case_error(&c->srv->out, id, status, msg, index) == 0)
		conn_flush_out(c);
}

struct slot {
	struct chan *ch;
	uint32_t index;
};

static int
slot_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	if (x->ch != y->ch)
		return x->ch < y->ch ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The channels of q, in order, into chans; or 0 after replying NOT_FOUND
 * (a missing channel) or BAD_REQUEST (one named twice: it would skew the
 * random choice and be reported closed twice), each with the case's index.
 */
static int
resolve(struct conn *c, const struct proto_request *q, struct chan **chans)
{
	struct slot *sorted = malloc(q->ncases * sizeof *sorted);
	uint32_t n = q->ncases, dup = UINT32_MAX;

	if (sorted == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		chans[i] = engine_lookup(c->srv->engine, q->cases[i].name, q->cases[i].name_len);
		if (chans[i] == NULL) {
			free(sorted);
			reply_case_error(c, q->id, STATUS_NOT_FOUND, "no such channel", i);
			return 0;
		}
		sorted[i] = (struct slot){ chans[i], i };
	}
	qsort(sorted, n, sizeof *sorted, slot_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (sorted[i].ch == sorted[i - 1].ch && sorted[i].index < dup)
			dup = sorted[i].index;
	free(sorted);
	if (dup != UINT32_MAX) {
		reply_case_error(c, q->id, STATUS_BAD_REQUEST, "a channel appears twice in STREAM", dup);
		return 0;
	}
	return 1;
}

/* Park the request, make the engine stream, start it; errors answered here. */
static void
stream_start(struct conn *c, const struct proto_request *q, struct chan **chans)
{
	struct engine *e = c->srv->engine;
	struct request *r;
	uint64_t credit = q->count;
	int st;

	if (request_stream(c, q->id, q->wait_us, &r) < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	/* its units stay allocated for reuse: channels × the most credit held at once */
	budget_charge(r, (uint64_t)q->ncases * q->count, 0);
	/* over one ack channel with max_unacked: only the credit there is room for, the rest owed */
	if (q->ncases == 1 && delivery_limited(chans[0])) {
		if (delivery_watch(c, chans[0], r) < 0) {
			request_stream_end(r, STATUS_LIMIT, -1, "out of memory");
			return;
		}
		r->claim = chans[0];
		r->units = delivery_claim_units(c, chans[0], credit);
		r->owed = credit - r->units;
		credit = r->units;
	}
	if (engine_stream_new(e, chans, q->ncases, (uint32_t)q->count, stream_value, stream_end, r,
	    &r->stream) != STATUS_OK || (q->ncases > 1 && gates_start(r, chans, q->ncases, credit) < 0)) {
		/* no stream started, no callback: end the request by hand */
		stream_unwatch(r);
		gates_end(r);
		if (r->stream != NULL)
			engine_stream_end(e, r->stream, STATUS_LIMIT);
		else
			request_stream_end(r, STATUS_LIMIT, -1, "out of memory");
		return;
	}
	log_debug("stream-start client=%" PRIu64 " id=%" PRIu64 " channels=%" PRIu32 " credit=%" PRIu64,
	    c->id, q->id, q->ncases, q->count);
	/* from here on r may be gone at any return: the stream answers itself */
	st = engine_stream_start(e, r->stream, (uint32_t)credit, q->wait_us != 0 ? ENGINE_WAIT : 0);
	if (st != STATUS_OK)
		engine_stream_end(e, r->stream, st);
}

void
stream_request(struct conn *c, const struct proto_request *q)
{
	struct chan **chans;

	if (!acl_allow_cases(c, q) || !acl_pending_room(c, q->id))
		return;
	if (q->count > c->srv->cfg.max_stream_credit) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "credit is larger than max_stream_credit");
		return;
	}
	if (!budget_room(c, q->id, (uint64_t)q->ncases * q->count, 0))
		return;
	if ((chans = malloc(q->ncases * sizeof *chans)) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	conn_before_long_work(c, q->ncases);
	if (resolve(c, q, chans))
		stream_start(c, q, chans);
	free(chans);
}

static int stream_grant_owed(struct request *r);

void
stream_credit(struct conn *c, const struct proto_request *q)
{
	struct request *r = request_find(c, q->target);
	uint64_t have, want;
	int st;

	if (r == NULL) {
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no pending STREAM with that id");
		return;
	}
	if (r->kind != REQUEST_STREAM) {
		conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "that request is not a STREAM");
		return;
	}
	have = engine_stream_outstanding(r->stream) + r->owed;
	if (q->count > c->srv->cfg.max_stream_credit || have > c->srv->cfg.max_stream_credit - q->count) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "credit would pass max_stream_credit");
		return;
	}
	/* the stream's units grow to have + n: only what passes its charge so far costs more */
	want = engine_stream_nchans(r->stream) * (have + q->count);
	if (want > r->waiters) {
		if (!budget_room(c, q->id, want - r->waiters, 0))
			return;
		budget_charge(r, want - r->waiters, 0);
	}
	conn_before_long_work(c, engine_stream_nchans(r->stream));
	if (r->claim != NULL) {
		r->owed += q->count;
		st = stream_grant_owed(r);
	} else {
		/* values it takes at once are answered before CREDIT's OK; r may be gone after */
		st = engine_stream_credit(c->srv->engine, r->stream, (uint32_t)q->count);
		if (st == STATUS_OK)
			gates_credit(c, q->target, request_find(c, q->target));
	}
	if (st != STATUS_OK)
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
	else if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_flush_out(c);
}

/*
 * A limited stream's owed credit, as far as there is room: claimed first,
 * then granted (values ready are taken at once, and r may be gone after).
 */
static int
stream_grant_owed(struct request *r)
{
	uint32_t n = delivery_claim_units(r->conn, r->claim, r->owed);
	int st;

	if (n == 0)
		return STATUS_OK;
	r->owed -= n;
	r->units += n;
	if ((st = engine_stream_credit(r->conn->srv->engine, r->stream, n)) != STATUS_OK) {
		/* nothing granted: owed again, and the room given back */
		r->owed += n;
		r->units -= n;
		delivery_return_units(r->conn, r->claim, n);
	}
	return st;
}

void
stream_pay(struct request *r)
{
	if (stream_grant_owed(r) == STATUS_LIMIT)
		log_warn("stream-credit client=%" PRIu64 " id=%" PRIu64 " reason=\"out of memory\"",
		    r->conn->id, r->id);
}
