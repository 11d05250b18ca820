/*
 * request.c: pending operations and their deadlines.
 *
 * Deadlines use libevent timers (a min-heap: O(log n) arm and disarm), so
 * 100,000 pending deadlines cost nothing until they fire, and a request
 * that completes disarms its own timer: no scan, nothing left behind.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "acl.h"
#include "budget.h"
#include "clock.h"
#include "codec.h"
#include "conn.h"
#include "delivery.h"
#include "durable.h"
#include "link.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "value.h"
#include "xhold.h"

const char *
request_status_message(int status)
{
	switch (status) {
	case STATUS_CLOSED: return "send on closed channel";
	case STATUS_DEADLINE_EXCEEDED: return "deadline exceeded";
	case STATUS_CANCELED: return "canceled";
	case STATUS_NOT_FOUND: return "channel deleted";
	case STATUS_LIMIT: return "max_buffered_bytes reached";
	case STATUS_SHUTTING_DOWN: return "server is shutting down";
	case STATUS_UNAVAILABLE: return "this node is fenced: its etcd lease is not certain";
	default: return status_name(status);
	}
}

void
request_close_err(const struct close_err *err, struct proto_close_err *out)
{
	*out = (struct proto_close_err){ .set = err != NULL };
	if (err != NULL) {
		out->code = err->code;
		out->msg = err->msg;
		out->msg_len = err->len;
	}
}

/* Out of memory for a reply: nothing can be delivered to c any more. */
static void
reply_failed(struct conn *c, uint64_t id)
{
	log_error("reply-failed client=%" PRIu64 " id=%" PRIu64 " reason=out-of-memory", c->id, id);
	proto_out_reset(&c->srv->out);
	conn_close_after_flush(c, 0, STATUS_LIMIT, "out of memory");
}

/*
 * A value from an ack channel (§16): in flight for c from now on, its tag
 * in the reply; held (§17) until XSETTLE keeps it or gives it back.
 */
static void
reply_tagged(struct conn *c, uint64_t id, uint64_t op, bool deferred, int hold,
    struct engine_result *res)
{
	struct value *v = res->value;
	uint64_t tag;
	uint32_t count;
	int rc;

	res->value = NULL;
	if (delivery_take(c->srv->delivery, c, res->ch, v, &tag, &count) != STATUS_OK ||
	    (hold && xhold_take_tagged(c->srv->xhold, c, id, res->ch, tag,
	    hold == PROTO_HOLD_PARKED) != STATUS_OK)) {
		conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
		return;
	}
	/* v is the delivery's now, and readable until we return */
	if (op == OP_RECV)
		rc = proto_rep_recv_ack(&c->srv->out, id, value_data(v), value_len(v), tag, count);
	else
		rc = proto_rep_select_ack(&c->srv->out, id, res->index, value_data(v), value_len(v),
		    tag, count);
	if (rc < 0)
		reply_failed(c, id);	/* its end gives the value back */
	else if (c->srv->durable != NULL && chan_durable(res->ch))
		durable_hold(c->srv->durable, c, true, false);	/* its POP(tag) is in the journal first */
	else
		conn_queue_out(c, deferred);
}

/*
 * Send the reply just encoded: behind the journal's commit (PROTOCOL.md
 * §16) when a receive case on a durable channel fired, or a send case on
 * one (dsend), else as usual.
 */
static void
reply_queue(struct conn *c, bool deferred, bool dsend, const struct engine_result *res)
{
	struct durable *d = c->srv->durable;
	bool sent = res->status == STATUS_OK && res->value == NULL && res->ok && res->index >= 0;

	/* a receive from a durable channel: its POP (or the close it saw) is in the journal first */
	if (d != NULL && ((dsend && sent) || (res->ch != NULL && chan_durable(res->ch))))
		durable_hold(d, c, true, dsend && sent);
	else
		conn_queue_out(c, deferred);
}

/*
 * Encode the reply for an engine result, and free the value it carries;
 * hold: a SELECT's (§17: 0; 1, held until XSETTLE or c's end; 2, taken
 * unless XSETTLE gives it back).
 */
static void
reply_result(struct conn *c, uint64_t id, uint64_t op, bool deferred, bool dsend, int hold,
    struct engine_result *res)
{
	struct proto_out *o = &c->srv->out;
	const uint8_t *raw = res->value ? value_data(res->value) : NULL;
	size_t raw_len = res->value ? value_len(res->value) : 0;
	struct proto_close_err err;
	int rc;

	/* a held send case is ready (§17): the table keeps its value until XSETTLE sends it or not */
	if (res->claimed) {
		if (xhold_take_send(c->srv->xhold, c, id, res->ch, res->value) != STATUS_OK) {
			res->value = NULL;
			conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
			return;
		}
		raw = NULL;
		raw_len = 0;
	}
	if (raw != NULL && delivery_on(res->ch)) {
		reply_tagged(c, id, op, deferred, hold, res);
		return;
	}
	/* held (§17): the table owns the value now, readable until XSETTLE or c's end */
	if (raw != NULL && hold && xhold_take(c->srv->xhold, c, id, res->ch, res->value,
	    hold == PROTO_HOLD_PARKED) != STATUS_OK) {
		res->value = NULL;
		conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
		return;
	}
	if (res->status != STATUS_OK && op == OP_SELECT && res->index >= 0)
		rc = proto_rep_case_error(o, id, res->status, request_status_message(res->status),
		    res->index);
	else if (res->status != STATUS_OK)
		rc = proto_rep_error(o, id, res->status, request_status_message(res->status));
	else if (res->err != NULL && (op == OP_RECV || op == OP_SELECT)) {
		/* closed with an error: the extra result (§5 CLOSE) */
		request_close_err(res->err, &err);
		rc = proto_rep_closed_err(o, id, op == OP_RECV ? -1 : res->index, &err);
	} else if (op == OP_RECV)
		rc = proto_rep_recv(o, id, raw, raw_len, res->ok);
	else if (op == OP_SELECT)
		rc = proto_rep_select(o, id, res->index, raw, raw_len, res->ok);
	else
		rc = proto_rep_ok(o, id);
	if (rc < 0) {
		/* out of memory for the reply: the value cannot be delivered; one held goes back */
		if (raw != NULL && hold)
			(void)xhold_settle(c->srv->xhold, c, id, false);
		reply_failed(c, id);
	} else {
		reply_queue(c, deferred, dsend, res);
	}
	if (!hold)
		value_free(res->value);
	res->value = NULL;
}

/*
 * A held select's case among its first q->firm fired at the poll: it
 * fires for good (PROTOCOL.md §17, its home chose it already), so its
 * value is not held, and a send case ready sends now, on the receiver or
 * slot its claim reserved. False for any other result.
 */
static bool
fired_firm(struct server *s, const struct proto_request *q, struct engine_result *now)
{
	if (now->index < 0 || (uint32_t)now->index >= q->firm)
		return false;
	if (now->claimed) {
		now->claimed = false;
		now->status = engine_send_claimed(s->engine, now->ch, now->value);
		now->value = NULL;
		now->ok = true;
	}
	return true;
}

/* q's hold argument (§17): 0 none, 1, or PROTO_HOLD_PARKED. */
static int
hold_of(const struct proto_request *q)
{
	return !q->hold ? 0 : q->hold_parked ? PROTO_HOLD_PARKED : 1;
}

static void
request_recycle(struct server *s, struct request *r)
{
	r->next_free = s->free_requests;
	s->free_requests = r;
}

/* r has ended with status: disarm it, forget it, count it. */
static void
request_unpark(struct request *r, int status)
{
	struct conn *c = r->conn;

	if (r->timed)
		evtimer_del(&r->timer);
	if (r->linked) {
		hmap_remove(&c->pending, &r->node);
		acl_pending(c, -1);
		budget_release(r);
	}
	stats_record(&c->srv->ops, r->op, status, clock_now_ns() - r->start_ns);
	/* a link or stream that ends inside its own request's dispatch: counted here, not there */
	if (c == c->srv->current.conn && r->id == c->srv->current.id)
		c->srv->current.counted = true;
}

/*
 * A SELECT's cases on channels with a limit are over: the claimed ones
 * give their room back, the blocked ones leave their queues (queued: the
 * SELECT waited), then the array goes.
 */
static void
request_unwait(struct conn *c, struct request_wait *waits, uint32_t n, bool queued)
{
	/* unblock all first: an unclaim may let a queued one go */
	for (uint32_t i = 0; i < n && queued; i++)
		if (!waits[i].claimed)
			delivery_unblock(&waits[i]);
	for (uint32_t i = 0; i < n; i++)
		if (waits[i].claimed)
			delivery_unclaim(c, waits[i].ch);
	free(waits);
}

static void
request_done(void *arg, struct engine_result *res)
{
	struct request *r = arg;
	struct conn *c = r->conn;
	struct server *s = c->srv;
	struct chan *claim = r->claim;
	struct request_wait *waits = r->waits;
	uint32_t nwaits = r->nwaits;

	request_unpark(r, res->status);
	if (r->kind == REQUEST_OP && r->dflt && res->status == STATUS_OK && res->index < 0)
		res->ok = true;	/* its claim wait ended: default, as if it had not waited */
	if (res->claimed) {
		/* a held send case that was ready: nothing was sent; with c gone, nothing will be */
		if (c->dead) {
			value_free(res->value);
			engine_claim_next(s->engine, res->ch);	/* the chance goes to the next */
		} else {
			reply_result(c, r->id, r->op, r->deferred, r->dsend, r->xhold, res);
		}
		res->value = NULL;
	} else if (c->dead && res->value != NULL && (delivery_on(res->ch) || r->xhold)) {
		/* at-least-once (§16), or a held value (§17): back to its channel */
		delivery_unsent(s->delivery, res->ch, res->value);
		res->value = NULL;
	} else if (c->dead) {
		value_free(res->value);	/* the client is gone: at-most-once (PROTOCOL.md §4) */
		res->value = NULL;
	} else {
		reply_result(c, r->id, r->op, r->deferred, r->dsend, r->xhold, res);
	}
	request_recycle(s, r);
	/* after its value went in flight: the count never dips below the truth */
	if (claim != NULL)
		delivery_unclaim(c, claim);
	if (waits != NULL)
		request_unwait(c, waits, nwaits, true);
}

/*
 * Deadlines are exact on CLOCK_MONOTONIC, but the loop's timers run on
 * libevent's coarse clock (a tick, 4 ms here, behind; the precise base costs
 * a timerfd_settime before every epoll_wait), so a timer may fire a little
 * before its deadline: it then waits again for what is left, and a wait
 * never ends early.
 */
static void
request_arm(struct request *r, int64_t left_ns)
{
	int64_t us = (left_ns + NSEC_PER_USEC - 1) / NSEC_PER_USEC;
	struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };

	evtimer_add(&r->timer, &tv);
}

static void
request_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct request *r = arg;
	int64_t left = r->deadline_ns - clock_now_ns();

	if (left > 0)
		request_arm(r, left);
	else
		request_cancel(r, r->kind == REQUEST_OP && r->dflt ? STATUS_OK : STATUS_DEADLINE_EXCEEDED);
}

static struct request *
request_alloc(struct server *s)
{
	struct request *r = s->free_requests;

	if (r != NULL) {
		s->free_requests = r->next_free;
		return r;
	}
	return malloc(sizeof *r);
}

/* r now waits: findable by id (CANCEL, disconnect), with its deadline armed. */
static int
request_park(struct request *r, int64_t wait_us)
{
	struct conn *c = r->conn;

	if (hmap_insert(&c->pending, &r->node, hmap_hash_u64(c->pending.seed, r->id)) < 0)
		return -1;
	r->linked = true;
	acl_pending(c, +1);
	if (wait_us > 0) {
		r->deadline_ns = r->start_ns + wait_us * NSEC_PER_USEC;
		evtimer_assign(&r->timer, c->srv->base, request_timeout, r);
		request_arm(r, wait_us * NSEC_PER_USEC);
		r->timed = true;
	}
	return 0;
}

/* Room for one more waiting request: max_pending and the budgets (PROTOCOL.md §8). */
static bool
wait_room(struct conn *c, uint64_t waiters, uint64_t bytes)
{
	return !acl_pending_full(c) && budget_fits(c, waiters, bytes);
}

/* A request that would wait has no room: LIMIT naming max_pending or the budget it would pass. */
static void
refuse_wait(struct conn *c, uint64_t id, uint64_t waiters, uint64_t bytes)
{
	if (acl_pending_full(c))
		(void)acl_pending_room(c, id);
	else
		(void)budget_room(c, id, waiters, bytes);
}

/*
 * A RECV at max_unacked or max_ack_pending on an ack channel (§16): it waits
 * outside the engine, as a pending request with its deadline, until
 * delivery has room for it (request_resume). One that may not wait is
 * DEADLINE_EXCEEDED at once, as if the channel had nothing for it.
 */
static int
request_hold(struct conn *c, const struct proto_request *q, struct chan *ch, unsigned flags)
{
	struct server *s = c->srv;
	struct request *r;

	if (!(flags & ENGINE_WAIT)) {
		conn_reply_error(c, q->id, STATUS_DEADLINE_EXCEEDED, "max_unacked reached");
		return 0;
	}
	/* it must wait: max_pending and the budgets (PROTOCOL.md §8), as for any waiting request */
	if (!wait_room(c, 1, 0)) {
		refuse_wait(c, q->id, 1, 0);	/* LIMIT, logged */
		return 0;
	}
	if ((r = request_alloc(s)) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return -1;
	}
	*r = (struct request){ .conn = c, .id = q->id, .op = q->op, .kind = REQUEST_HELD,
	    .deferred = q->deferred, .held_ch = ch, .start_ns = server_request_start(c->srv) };
	if (request_park(r, q->wait_us) < 0) {
		request_recycle(s, r);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return -1;
	}
	budget_charge(r, 1, 0);
	delivery_hold(c, ch, r);
	return 0;
}

void
request_enable(struct request_wait *w)
{
	engine_op_enable(w->r->conn->srv->engine, w->r->eop, (size_t)w->index, w->ch);
}

/*
 * A SELECT's receive cases on ack channels with a limit (§16): each is
 * claimed now, or, at its limit, not ready: a nil case in *own, a copy of
 * cases (NULL when none is), which waits on its channel's queue if the
 * SELECT waits. *waits: one per such case (NULL, 0 returned: none).
 * -1 when out of memory, with nothing claimed.
 */
static int
select_claims(struct conn *c, const struct engine_case *cases, size_t n,
    struct request_wait **waits, struct engine_case **own)
{
	struct request_wait *w = NULL;
	uint32_t nw = 0, k = 0;

	*waits = NULL;
	*own = NULL;
	for (size_t i = 0; i < n; i++)
		nw += cases[i].dir == CASE_RECV && delivery_limited(cases[i].ch);
	if (nw == 0)
		return 0;
	if ((w = calloc(nw, sizeof *w)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (cases[i].dir != CASE_RECV || !delivery_limited(cases[i].ch))
			continue;
		w[k] = (struct request_wait){ .ch = cases[i].ch, .index = (int)i };
		switch (delivery_claim(c, cases[i].ch)) {
		case 0:
			w[k].claimed = true;
			break;
		case 1:
			if (*own == NULL) {
				if ((*own = malloc(n * sizeof **own)) == NULL)
					goto fail;
				memcpy(*own, cases, n * sizeof **own);
			}
			(*own)[i].ch = NULL;	/* not ready until there is room */
			break;
		default:
			goto fail;
		}
		k++;
	}
	*waits = w;
	return (int)nw;

fail:
	free(*own);
	*own = NULL;
	request_unwait(c, w, k, false);
	return -1;
}

/* A waiting SELECT's blocked cases join their channels' queues. */
static void
select_block(struct request *r, struct request_wait *waits, uint32_t n)
{
	r->waits = waits;
	r->nwaits = n;
	for (uint32_t i = 0; i < n; i++) {
		waits[i].r = r;
		if (!waits[i].claimed)
			delivery_block(&waits[i]);
	}
}

void
request_resume(struct request *r)
{
	struct engine_case ec = { .ch = r->held_ch, .dir = CASE_RECV };
	struct engine_result now;

	r->kind = REQUEST_OP;
	r->claim = r->held_ch;		/* delivery claimed it for us */
	r->held_ch = NULL;
	if (engine_submit(r->conn->srv->engine, &ec, 1, ENGINE_WAIT, request_done, r, &r->eop,
	    &now) == 0)
		request_done(r, &now);
}

int
request_run(struct conn *c, const struct proto_request *q, const struct engine_case *cases,
    size_t ncases, unsigned flags)
{
	struct server *s = c->srv;
	struct engine_result now;
	struct request *r;
	uint64_t bytes = 0;
	bool room, dsend = false;
	struct chan *claim = NULL;
	struct request_wait *waits = NULL;
	struct engine_case *own = NULL;
	int nw = 0;

	for (size_t i = 0; i < ncases && s->durable != NULL; i++)
		dsend |= cases[i].value != NULL && cases[i].ch != NULL && chan_durable(cases[i].ch);
	if (dsend && durable_failing(s->durable)) {
		for (size_t i = 0; i < ncases; i++)
			value_free(cases[i].value);
		conn_reply_error(c, q->id, STATUS_STORAGE,
		    "the journal cannot be written (disk full or I/O error); retried every second");
		return 0;
	}
	if (q->op == OP_RECV && delivery_on(cases[0].ch) && delivery_limited(cases[0].ch)) {
		switch (delivery_claim(c, cases[0].ch)) {
		case 0:
			claim = cases[0].ch;
			break;
		case 1:
			return request_hold(c, q, cases[0].ch, flags);
		default:
			conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
			return -1;
		}
	}
	if (q->op == OP_SELECT && (nw = select_claims(c, cases, ncases, &waits, &own)) < 0)
		goto oom;
	if (own != NULL)
		cases = own;	/* the cases at a limit are nil */
	if ((r = request_alloc(s)) == NULL) {
		if (claim != NULL)
			delivery_unclaim(c, claim);
		if (waits != NULL)
			request_unwait(c, waits, (uint32_t)nw, false);
oom:
		for (size_t i = 0; i < ncases; i++)
			value_free(cases[i].value);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		free(own);
		return -1;
	}
	r->conn = c;
	r->id = q->id;
	r->op = q->op;
	r->deferred = q->deferred;
	r->kind = REQUEST_OP;
	r->link = NULL;
	r->timed = false;
	r->linked = false;
	r->claim = claim;
	r->held_ch = NULL;
	r->waits = NULL;
	r->nwaits = 0;
	r->waiters = r->bytes = 0;
	r->dsend = dsend;
	r->xhold = hold_of(q);
	r->dflt = q->has_default;
	for (size_t i = 0; i < ncases; i++)
		bytes += cases[i].value ? value_len(cases[i].value) : 0;
	/* only a request that must wait counts toward max_pending and the budgets (PROTOCOL.md §8) */
	room = !(flags & ENGINE_WAIT) || wait_room(c, ncases, bytes);
	if (engine_submit(s->engine, cases, ncases, room ? flags : flags & ~ENGINE_WAIT, request_done, r,
	    &r->eop, &now) == 0) {
		free(own);
		if (!room && now.status == STATUS_DEADLINE_EXCEEDED)
			refuse_wait(c, q->id, ncases, bytes);	/* it would wait: LIMIT, logged */
		else
			reply_result(c, q->id, q->op, q->deferred, dsend,
			    r->xhold && !fired_firm(s, q, &now) ? r->xhold : 0, &now);
		request_recycle(s, r);
		if (claim != NULL)
			delivery_unclaim(c, claim);
		if (waits != NULL)
			request_unwait(c, waits, (uint32_t)nw, false);
		return 0;
	}
	free(own);
	r->start_ns = server_request_start(c->srv);
	/* one that may not wait waits only for a claim it made (ENGINE_CLAIM_WAIT), that long at most */
	if (request_park(r, (flags & ENGINE_WAIT) && !q->has_default ? q->wait_us :
	    REQUEST_CLAIM_WAIT_US) < 0) {
		/* out of memory: a request nobody could find must not wait */
		engine_op_cancel(s->engine, r->eop, STATUS_LIMIT);
		if (waits != NULL)
			request_unwait(c, waits, (uint32_t)nw, false);
		return -1;
	}
	/* a cross-node select's group says it waits (§17, hold 2): before any final reply */
	if (q->hold_parked && proto_rep_started(&s->out, q->id, NULL, NULL, 0) == 0)
		conn_flush_out(c);
	budget_charge(r, ncases, bytes);
	/* nothing fired, so no callback ran: no room was made since the claims */
	if (waits != NULL)
		select_block(r, waits, (uint32_t)nw);
	return 0;
}

struct request *
request_find(struct conn *c, uint64_t id)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(c->pending.seed, id), &c->pending) {
		struct request *r = HMAP_ENTRY(n, struct request, node);

		if (r->id == id)
			return r;
	}
	return NULL;
}

void
request_cancel(struct request *r, int status)
{
	struct engine_result res = { .status = status, .index = -1 };

	if (r->kind == REQUEST_HELD) {
		delivery_unhold(r->conn, r->held_ch, r);
		request_done(r, &res);
	} else if (r->kind == REQUEST_LINK)
		link_stop(r->link, status, NULL);
	else if (r->kind == REQUEST_STREAM)
		engine_stream_end(r->conn->srv->engine, r->stream, status);
	else
		engine_op_cancel(r->conn->srv->engine, r->eop, status);
}

/* A parked request of a long-running kind (a link, a stream) under id. */
static int
request_open(struct conn *c, uint64_t id, uint64_t op, enum request_kind kind,
    int64_t wait_us, struct request **out)
{
	struct server *s = c->srv;
	struct request *r = request_alloc(s);

	if (r == NULL)
		return -1;
	*r = (struct request){ .conn = c, .id = id, .op = op, .kind = kind,
	    .start_ns = server_request_start(c->srv) };
	if (request_park(r, wait_us) < 0) {
		request_recycle(s, r);
		return -1;
	}
	*out = r;
	return 0;
}

int
request_link(struct conn *c, uint64_t id, uint64_t op, int64_t wait_us, struct link *l,
    struct request **out)
{
	if (request_open(c, id, op, REQUEST_LINK, wait_us, out) < 0)
		return -1;
	(*out)->link = l;
	return 0;
}

void
request_link_end(struct request *r, int status, const char *msg, uint64_t sent)
{
	struct conn *c = r->conn;
	int rc;

	request_unpark(r, status);
	if (!c->dead) {
		if (status == STATUS_OK)
			rc = proto_rep_uint(&c->srv->out, r->id, sent);
		else
			rc = proto_rep_error(&c->srv->out, r->id, status, msg ? msg :
			    request_status_message(status));
		if (rc == 0)
			conn_flush_out(c);
	}
	request_recycle(c->srv, r);
}

int
request_stream(struct conn *c, uint64_t id, int64_t wait_us, struct request **out)
{
	return request_open(c, id, OP_STREAM, REQUEST_STREAM, wait_us, out);
}

void
request_stream_end(struct request *r, int status, int index, const char *msg)
{
	struct conn *c = r->conn;
	struct proto_out *o = &c->srv->out;
	int rc;

	request_unpark(r, status);
	if (!c->dead) {
		if (status == STATUS_OK)
			rc = proto_rep_uint(o, r->id, r->delivered);
		else if (index >= 0)
			rc = proto_rep_case_error(o, r->id, status, msg ? msg :
			    request_status_message(status), index);
		else
			rc = proto_rep_error(o, r->id, status, msg ? msg : request_status_message(status));
		if (rc == 0)
			conn_flush_out(c);
	}
	request_recycle(c->srv, r);
}

/* A stream lists its channels as receive cases; one whose close was reported is nil. */
size_t
request_ncases(const struct request *r)
{
	if (r->kind == REQUEST_STREAM)
		return engine_stream_nchans(r->stream);
	if (r->kind == REQUEST_HELD)
		return 1;
	return r->kind == REQUEST_LINK ? link_ncases(r->link) : engine_op_ncases(r->eop);
}

struct chan *
request_case(const struct request *r, size_t i, enum case_dir *dir)
{
	struct chan *ch;

	if (r->kind == REQUEST_STREAM || r->kind == REQUEST_HELD) {
		*dir = CASE_RECV;
		return r->kind == REQUEST_HELD ? r->held_ch : engine_stream_chan(r->stream, i);
	}
	if (r->kind == REQUEST_LINK)
		return link_case(r->link, i, dir);
	ch = engine_op_chan(r->eop, i, dir);
	/* a SELECT's case blocked at a limit is nil in the engine, not for WAITERS, ACL or fencing */
	for (uint32_t k = 0; ch == NULL && k < r->nwaits; k++)
		if (r->waits[k].index == (int)i)
			ch = r->waits[k].ch;
	return ch;
}

void
request_free_pool(struct request **pool)
{
	while (*pool != NULL) {
		struct request *r = *pool;

		*pool = r->next_free;
		free(r);
	}
}
