/*
 * xstream.c: a STREAM across nodes at its home node (xstream.h,
 * PROTOCOL.md §17).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "conn.h"
#include "request.h"
#include "router_int.h"
#include "stats.h"
#include "xselect.h"
#include "xstream.h"

struct xstream;

/* One unit of credit at work: a cross-node select over the channels not reported closed. */
struct xround {
	TAILQ_ENTRY(xround) link;
	struct xstream *st;
	struct xsel *x;			/* NULL until xselect_round returned */
	bool starting;			/* inside xselect_round: its end frees nothing */
	bool ended;			/* its end came */
	uint32_t n;
	uint32_t map[];			/* its case i is the stream's case map[i] */
};

struct xstream {
	struct remote rq;		/* in the router's ids while its client waits */
	struct xstreams *xt;
	struct conn *c;			/* NULL once answered (or its client's wait ended) */
	TAILQ_ENTRY(xstream) link;
	TAILQ_HEAD(, xround) rounds;
	uint32_t nrounds;
	uint32_t busy;			/* calls under way that may end it: it is freed after */
	struct event *timer;		/* its wait (NULL: none, or wait 0) */
	int64_t wait_us;
	uint64_t credit;		/* granted, not used by an interim reply yet */
	uint64_t counted;		/* ... as c->nforwarded counts it */
	uint64_t delivered;
	bool exhausted;			/* wait 0: a round found nothing ready, no more rounds */
	bool ending;
	int status;			/* ending: its final reply */
	int64_t index;			/* ... about that case, or -1 */
	char why[300];
	bool cancel;			/* a CANCEL, cancel_id, is answered after the final reply */
	uint64_t cancel_id;
	uint8_t *frame;			/* the client's STREAM: cases point into it */
	uint32_t ncases, nclosed;
	struct proto_case *cases;
	bool *closed;			/* reported closed */
};

struct xstreams {
	struct router *r;
	TAILQ_HEAD(, xstream) list;
	struct proto_out out;		/* scratch: a round's SELECT */
};

struct xstreams *
xstreams_new(struct router *r)
{
	struct xstreams *xt = calloc(1, sizeof *xt);

	if (xt == NULL)
		return NULL;
	xt->r = r;
	TAILQ_INIT(&xt->list);
	proto_out_init(&xt->out);
	return xt;
}

static void
xstream_free(struct xstream *st)
{
	struct xround *rd;

	while ((rd = TAILQ_FIRST(&st->rounds)) != NULL) {
		TAILQ_REMOVE(&st->rounds, rd, link);
		free(rd);
	}
	if (st->c != NULL)
		hmap_remove(&st->xt->r->ids, &st->rq.node);
	if (st->timer != NULL)
		event_free(st->timer);
	TAILQ_REMOVE(&st->xt->list, st, link);
	free(st->frame);
	free(st->cases);
	free(st->closed);
	free(st);
}

void
xstreams_free(struct xstreams *xt)
{
	struct xstream *st;

	if (xt == NULL)
		return;
	while ((st = TAILQ_FIRST(&xt->list)) != NULL)
		xstream_free(st);
	proto_out_destroy(&xt->out);
	free(xt);
}

/* c->nforwarded counts each unit of credit as a request forwarded. */
static void
recount(struct xstream *st)
{
	if (st->c != NULL)
		st->c->nforwarded = st->c->nforwarded - (uint32_t)st->counted + (uint32_t)st->credit;
	st->counted = st->credit;
}

/* ---- answering the client ------------------------------------------------------------ */

/* The final reply (and a CANCEL's OK after it); the client's id is free again. */
static void
answer(struct xstream *st)
{
	struct conn *c = st->c;
	struct proto_out *o = &st->xt->r->s->out;
	int rc;

	if (c == NULL)
		return;
	st->credit = 0;
	recount(st);
	stats_record(&st->xt->r->s->ops, OP_STREAM, st->status, clock_now_ns() - st->rq.start);
	hmap_remove(&st->xt->r->ids, &st->rq.node);
	st->c = NULL;
	if (c->closing || c->dead)
		return;
	if (st->status == STATUS_UNAVAILABLE)
		cluster_counters(st->xt->r->cl)->unavailable++;
	if (st->status == STATUS_OK)
		rc = proto_rep_uint(o, st->rq.id, st->delivered);
	else if (st->index >= 0)
		rc = proto_rep_case_error(o, st->rq.id, st->status, st->why, st->index);
	else
		rc = proto_rep_error(o, st->rq.id, st->status, st->why);
	if (rc == 0 && st->cancel)
		rc = proto_rep_ok(o, st->cancel_id);
	if (rc == 0)
		conn_flush_out(c);
}

/* Ending, and nothing more to come: answered and freed. */
static void
maybe_free(struct xstream *st)
{
	if (!st->ending || st->nrounds > 0 || st->busy > 0)
		return;
	answer(st);
	xstream_free(st);
}

/*
 * It ends with status (why; index: about that case, or -1): every round
 * is dropped (its values go back at their owners) but one whose value is
 * being kept, which is replied before the final reply.
 */
static void
end(struct xstream *st, int status, const char *why, int64_t index)
{
	struct xround *rd, *next;

	if (st->ending)
		return;
	st->ending = true;
	st->status = status;
	st->index = index;
	snprintf(st->why, sizeof st->why, "%s", why);
	if (st->timer != NULL)
		event_del(st->timer);
	for (rd = TAILQ_FIRST(&st->rounds); rd != NULL; rd = next) {
		next = TAILQ_NEXT(rd, link);
		if (rd->x != NULL && xselect_drop(rd->x)) {
			TAILQ_REMOVE(&st->rounds, rd, link);
			st->nrounds--;
			free(rd);
		}
	}
}

/*
 * An interim reply: a value, or names[i]'s close report (a unit used). An
 * ack channel's value (rep->tag, in flight at its owner on pe) goes out
 * under a tag of this node's, or back to its channel when nobody takes it.
 */
static void
interim(struct xstream *st, int64_t i, const struct proto_reply *rep, struct peer *pe)
{
	struct router *r = st->xt->r;
	struct proto_out *o = &r->s->out;
	struct conn *c = st->c;
	uint64_t tag = 0;

	if (!rep->ok && st->closed[i])
		return;		/* reported already: the round runs again without it */
	st->credit -= st->credit > 0;
	recount(st);
	if (!rep->ok) {
		st->closed[i] = true;
		st->nclosed++;
	} else {
		st->delivered++;
	}
	if (c == NULL || c->closing || c->dead) {
		/* the client is gone: at-most-once, as for RECV (PROTOCOL.md §4); at-least-once for a tag */
		if (rep->tag != 0)
			router_tags_nack(r, pe, rep->tag);
	} else if (rep->tag != 0 && router_tags_issue(r, c, pe, rep->tag, &tag) < 0) {
		router_tags_nack(r, pe, rep->tag);
		end(st, STATUS_LIMIT, "out of memory (the value went back to its channel)", -1);
		return;
	} else if (proto_rep_case(o, st->rq.id, i, rep, tag) == 0) {
		conn_flush_out(c);
	}
	if (st->nclosed == st->ncases)
		end(st, STATUS_OK, "", -1);
}

/* ---- rounds ------------------------------------------------------------------------- */

static void fill(struct xstream *st);

static bool
case_error(int status)
{
	return status == STATUS_NOT_FOUND || status == STATUS_PERMISSION_DENIED ||
	    status == STATUS_BAD_REQUEST;
}

/* A round's end (xselect_done). */
static void
round_end(void *arg, int status, int64_t index, const struct proto_reply *rep, struct peer *pe,
    const char *why)
{
	struct xround *rd = arg;
	struct xstream *st = rd->st;
	int64_t i = index >= 0 && index < (int64_t)rd->n ? (int64_t)rd->map[index] : -1;

	TAILQ_REMOVE(&st->rounds, rd, link);
	st->nrounds--;
	rd->ended = true;
	if (!rd->starting)
		free(rd);
	st->busy++;
	if (status == STATUS_OK && i >= 0 && rep != NULL) {
		interim(st, i, rep, pe);
	} else if (status == STATUS_DEADLINE_EXCEEDED) {
		/* wait 0: ends once every round answered */
		st->exhausted = true;
		if (st->wait_us != 0)
			end(st, status, "deadline exceeded", -1);
	} else if (status == STATUS_OK) {
		end(st, STATUS_UNAVAILABLE, "a cross-node round ended without a case", -1);
	} else {
		end(st, status, why != NULL ? why : status_name(status), case_error(status) ? i : -1);
	}
	fill(st);
	if (st->wait_us == 0 && st->nrounds == 0)
		end(st, STATUS_DEADLINE_EXCEEDED, "deadline exceeded", -1);
	st->busy--;
	maybe_free(st);
}

/* Start one round over the channels not reported closed; false when it ended the stream. */
static bool
round_start(struct xstream *st)
{
	struct xstreams *xt = st->xt;
	struct proto_request q = { .op = OP_SELECT, .wait_us = st->wait_us };
	struct proto_case *cases = malloc(st->ncases * sizeof *cases);
	struct xround *rd = malloc(sizeof *rd + st->ncases * sizeof rd->map[0]);
	const char *why = "out of memory";
	struct xsel *x = NULL;

	if (cases == NULL || rd == NULL)
		goto fail;
	*rd = (struct xround){ .st = st, .starting = true };
	for (uint32_t i = 0; i < st->ncases; i++) {
		if (st->closed[i])
			continue;
		rd->map[rd->n] = i;
		cases[rd->n++] = st->cases[i];
	}
	q.cases = cases;
	q.ncases = rd->n;
	proto_out_reset(&xt->out);
	if (proto_req_select_hold(&xt->out, 1, st->wait_us, cases, rd->n, false, false, 0) < 0)
		goto fail;
	TAILQ_INSERT_TAIL(&st->rounds, rd, link);
	st->nrounds++;
	/* its body, past the frame's 4-byte length */
	x = xselect_round(xt->r->xs, &q, proto_out_data(&xt->out) + 4, proto_out_len(&xt->out) - 4,
	    st->rq.start, round_end, rd, &why);
	free(cases);
	if (x == NULL) {
		TAILQ_REMOVE(&st->rounds, rd, link);
		st->nrounds--;
		free(rd);
		end(st, strcmp(why, "out of memory") == 0 ? STATUS_LIMIT : STATUS_UNAVAILABLE, why, -1);
		return false;
	}
	if (rd->ended) {
		free(rd);	/* ended at once: round_end ran */
		return !st->ending;
	}
	rd->starting = false;
	rd->x = x;
	if (st->ending && xselect_drop(x)) {
		/* it ended meanwhile (a round started within a round's end) */
		TAILQ_REMOVE(&st->rounds, rd, link);
		st->nrounds--;
		free(rd);
	}
	return !st->ending;
fail:
	free(cases);
	free(rd);
	end(st, STATUS_LIMIT, why, -1);
	return false;
}

/* A round for each unit of credit not at work. */
static void
fill(struct xstream *st)
{
	st->busy++;
	while (!st->ending && !st->exhausted && st->nrounds < st->credit && round_start(st))
		continue;
	st->busy--;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xstream *st = arg;

	(void)fd;
	(void)what;
	end(st, STATUS_DEADLINE_EXCEEDED, "deadline exceeded", -1);
	maybe_free(st);
}

/* ---- starting ------------------------------------------------------------------------ */

/* Checks a single-node STREAM makes first (stream.c); false when q was answered. */
static bool
stream_ok(struct conn *c, const struct proto_request *q)
{
	const struct config *cfg = &c->srv->cfg;

	if (!acl_allow_cases(c, q))
		return false;
	if (q->count > cfg->max_stream_credit) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "credit is larger than max_stream_credit");
		return false;
	}
	/* each unit of credit is one request forwarded from c (max_pending, as router_forward) */
	if (c->nforwarded + q->count > cfg->max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are forwarded from this connection");
		return false;
	}
	for (uint32_t i = 1; i < q->ncases; i++) {
		for (uint32_t j = 0; j < i; j++) {
			if (q->cases[i].name_len == q->cases[j].name_len &&
			    memcmp(q->cases[i].name, q->cases[j].name, q->cases[i].name_len) == 0) {
				if (proto_rep_case_error(&c->srv->out, q->id, STATUS_BAD_REQUEST,
				    "a channel is named twice", i) == 0)
					conn_flush_out(c);
				return false;
			}
		}
	}
	return true;
}

/* Its frame kept and decoded again (its cases point into it); -1 when out of memory. */
static int
keep_cases(struct xstream *st, const uint8_t *body, size_t len)
{
	struct proto_request q;
	const char *why;

	if ((st->frame = malloc(len)) == NULL ||
	    (st->cases = malloc(st->ncases * sizeof *st->cases)) == NULL ||
	    (st->closed = calloc(st->ncases, sizeof *st->closed)) == NULL)
		return -1;
	memcpy(st->frame, body, len);
	return proto_decode_request(st->frame, len, &st->xt->r->s->limits, st->cases, st->ncases, &q,
	    &why) == STATUS_OK ? 0 : -1;
}

void
xstream_start(struct xstreams *xt, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len)
{
	struct router *r = xt->r;
	struct xstream *st;

	if (!stream_ok(c, q))
		return;
	if ((st = calloc(1, sizeof *st)) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	st->xt = xt;
	st->ncases = q->ncases;
	st->wait_us = q->wait_us;
	st->index = -1;
	st->rq = (struct remote){ .conn_id = c->id, .id = q->id, .op = OP_STREAM,
	    .start = router_came(r), .xstream = true };
	TAILQ_INIT(&st->rounds);
	TAILQ_INSERT_TAIL(&xt->list, st, link);
	if (keep_cases(st, body, len) < 0 ||
	    (q->wait_us > 0 && (st->timer = evtimer_new(r->s->base, timer_cb, st)) == NULL) ||
	    hmap_insert(&r->ids, &st->rq.node, ids_hash(r, c->id, q->id)) < 0) {
		xstream_free(st);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	st->c = c;
	r->s->current.counted = true;	/* counted when it is answered */
	if (st->timer != NULL) {
		struct timeval tv = { .tv_sec = q->wait_us / 1000000, .tv_usec = q->wait_us % 1000000 };

		evtimer_add(st->timer, &tv);
	}
	st->credit = q->count;
	recount(st);
	st->busy++;
	fill(st);
	st->busy--;
	maybe_free(st);
}

/* ---- CREDIT, CANCEL, the client going ----------------------------------------------- */

static void
credit(struct xstream *st, struct conn *c, const struct proto_request *q)
{
	const struct config *cfg = &c->srv->cfg;

	if (q->count > cfg->max_stream_credit || st->credit > cfg->max_stream_credit - q->count) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "credit would pass max_stream_credit");
		return;
	}
	if (c->nforwarded + q->count > cfg->max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are forwarded from this connection");
		return;
	}
	st->credit += q->count;
	recount(st);
	/* its values come as its rounds take them, after this OK */
	if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_flush_out(c);
	st->busy++;
	fill(st);
	st->busy--;
	maybe_free(st);
}

void
xstream_target(struct xstreams *xt, struct conn *c, const struct proto_request *q,
    struct remote *rq)
{
	struct xstream *st = (struct xstream *)rq;

	if (st->ending && q->op == OP_CREDIT) {
		/* not ended for the client yet: its final reply comes, then CREDIT is NOT_FOUND */
		if (proto_rep_ok(&xt->r->s->out, q->id) == 0)
			conn_flush_out(c);
		return;
	}
	if (st->ending) {
		/* its final reply is on its way (a value being kept comes first) */
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "the stream has ended");
		return;
	}
	if (q->op == OP_CREDIT) {
		credit(st, c, q);
		return;
	}
	st->cancel = true;
	st->cancel_id = q->id;
	end(st, STATUS_CANCELED, "canceled", -1);
	maybe_free(st);
}

size_t
xstream_forget(struct xstreams *xt, struct conn *c, int status)
{
	struct xstream *st, *next;
	size_t n = 0;

	for (st = TAILQ_FIRST(&xt->list); st != NULL; st = next) {
		next = TAILQ_NEXT(st, link);
		if (st->c != c)
			continue;
		n++;
		end(st, status, request_status_message(status), -1);
		/* its client's wait is over now: a value still being kept goes with it */
		answer(st);
		maybe_free(st);
	}
	return n;
}
