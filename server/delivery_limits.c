/*
 * delivery_limits.c: max_unacked (per connection and channel, in a slot)
 * and max_ack_pending (the channel's, over every connection), and the
 * receives, SELECT cases and STREAMs that wait at them (see delivery.h;
 * the records are delivery_int.h's).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "delivery_int.h"
#include "stream.h"

/* c's slot on ch, made if need be; NULL when out of memory. */
struct dlv_slot *
dlv_slot_get(struct conn *c, struct chan *ch)
{
	struct dlv_slot *sl;

	if (c->dlv == NULL) {
		if ((c->dlv = calloc(1, sizeof *c->dlv)) == NULL)
			return NULL;
		TAILQ_INIT(&c->dlv->list);
		TAILQ_INIT(&c->dlv->slots);
	}
	TAILQ_FOREACH(sl, &c->dlv->slots, link)
		if (sl->ch == ch)
			return sl;
	if ((sl = calloc(1, sizeof *sl)) == NULL)
		return NULL;
	sl->ch = ch;
	engine_hold(ch);
	TAILQ_INSERT_TAIL(&c->dlv->slots, sl, link);
	return sl;
}

/* How many more receives may wait in the engine, under both limits (UINT32_MAX: no limit). */
static uint32_t
slot_room(const struct dlv_slot *sl)
{
	const struct dlv_chan *dc = chan_ext(sl->ch);
	uint32_t room = UINT32_MAX, used;

	if (dc->max_unacked != 0) {
		used = sl->inflight + sl->claims;
		room = used < dc->max_unacked ? dc->max_unacked - used : 0;
	}
	if (dc->max_ack_pending != 0) {
		used = dc->unacked + dc->claims;
		if (used >= dc->max_ack_pending)
			room = 0;
		else if (dc->max_ack_pending - used < room)
			room = dc->max_ack_pending - used;
	}
	return room;
}

static void
slot_claim(struct dlv_slot *sl, uint32_t n)
{
	sl->claims += n;
	((struct dlv_chan *)chan_ext(sl->ch))->claims += n;
}

static void
slot_unclaim(struct dlv_slot *sl, uint32_t n)
{
	sl->claims -= n;
	((struct dlv_chan *)chan_ext(sl->ch))->claims -= n;
}

static bool
conn_gone(const struct conn *c)
{
	return c->dead || c->closing;
}

/* The oldest waiting receive on ch whose connection has room now, or NULL. */
static struct request_wait *
first_ready(struct dlv_chan *dc)
{
	struct request_wait *w;

	TAILQ_FOREACH(w, &dc->held, link)
		if (!conn_gone(w->r->conn) && slot_room(dlv_slot_get(w->r->conn, w->ch)) > 0)
			return w;
	return NULL;
}

/*
 * Room again on ch (an ACK, a NACK, an expiry, a claim's end): its waiting
 * receives go to the engine, oldest first, each as its connection has
 * room; then the streams get the credit they are owed, while there is
 * room. Either may complete at once and come back here: each pass starts
 * again from the head.
 */
void
dlv_chan_check(struct chan *ch)
{
	struct dlv_chan *dc = chan_ext(ch);
	struct request_wait *w;
	struct request *r;
	uint64_t owed;

	while ((w = first_ready(dc)) != NULL) {
		TAILQ_REMOVE(&dc->held, w, link);
		slot_claim(dlv_slot_get(w->r->conn, ch), 1);	/* exists: the first claim made it */
		w->claimed = true;
		if (w->index < 0)
			request_resume(w->r);
		else
			request_enable(w);
	}
	for (;;) {
		TAILQ_FOREACH(r, &dc->streams, hlink)
			if (r->owed > 0 && !conn_gone(r->conn) && slot_room(dlv_slot_get(r->conn, ch)) > 0)
				break;
		if (r == NULL)
			break;
		owed = r->owed;
		stream_pay(r);	/* claims what it is granted (delivery_claim_units) */
		if (r->owed == owed)
			break;	/* out of memory: logged; the next check tries again */
	}
	/* a gate that claimed nothing is filled no further: the loop ends */
	for (;;) {
		TAILQ_FOREACH(w, &dc->gates, link)
			if (!conn_gone(w->r->conn) && slot_room(dlv_slot_get(w->r->conn, ch)) > 0 &&
			    stream_gate_wants(w))
				break;
		if (w == NULL || !stream_gate_fill(w, 0))
			return;
	}
}

bool
delivery_limited(const struct chan *ch)
{
	const struct dlv_chan *dc = ch != NULL ? chan_ext(ch) : NULL;

	return dc != NULL && (dc->max_unacked != 0 || dc->max_ack_pending != 0);
}

int
delivery_claim(struct conn *c, struct chan *ch)
{
	struct dlv_slot *sl = dlv_slot_get(c, ch);

	if (sl == NULL)
		return -1;
	if (slot_room(sl) == 0)
		return 1;
	slot_claim(sl, 1);
	return 0;
}

void
delivery_unclaim(struct conn *c, struct chan *ch)
{
	slot_unclaim(dlv_slot_get(c, ch), 1);	/* exists: the claim made it */
	dlv_chan_check(ch);
}

uint32_t
delivery_claim_units(struct conn *c, struct chan *ch, uint64_t want)
{
	struct dlv_slot *sl = dlv_slot_get(c, ch);	/* exists: delivery_watch made it */
	uint32_t n = slot_room(sl);

	if (want < n)
		n = (uint32_t)want;
	slot_claim(sl, n);
	return n;
}

void
delivery_return_units(struct conn *c, struct chan *ch, uint32_t n)
{
	slot_unclaim(dlv_slot_get(c, ch), n);
}

void
delivery_used_unit(struct conn *c, struct chan *ch)
{
	slot_unclaim(dlv_slot_get(c, ch), 1);	/* taken in flight (or a close report): no room made */
}

int
delivery_watch(struct conn *c, struct chan *ch, struct request *r)
{
	struct dlv_chan *dc = chan_ext(ch);

	if (dlv_slot_get(c, ch) == NULL)
		return -1;
	TAILQ_INSERT_TAIL(&dc->streams, r, hlink);
	return 0;
}

void
delivery_unwatch(struct conn *c, struct chan *ch, struct request *r, uint32_t units)
{
	struct dlv_chan *dc = chan_ext(ch);

	TAILQ_REMOVE(&dc->streams, r, hlink);
	slot_unclaim(dlv_slot_get(c, ch), units);
	dlv_chan_check(ch);
}

int
delivery_gate(struct conn *c, struct request_wait *g)
{
	struct dlv_chan *dc = chan_ext(g->ch);

	if (dlv_slot_get(c, g->ch) == NULL)
		return -1;
	TAILQ_INSERT_TAIL(&dc->gates, g, link);
	return 0;
}

void
delivery_ungate(struct conn *c, struct request_wait *g)
{
	struct dlv_chan *dc = chan_ext(g->ch);

	TAILQ_REMOVE(&dc->gates, g, link);
	slot_unclaim(dlv_slot_get(c, g->ch), g->units);
	g->units = 0;
	dlv_chan_check(g->ch);
}

void
delivery_release_units(struct conn *c, struct chan *ch, uint32_t n)
{
	slot_unclaim(dlv_slot_get(c, ch), n);
	dlv_chan_check(ch);
}

void
delivery_hold(struct conn *c, struct chan *ch, struct request *r)
{
	(void)c;
	r->hold = (struct request_wait){ .r = r, .ch = ch, .index = -1 };
	delivery_block(&r->hold);
}

void
delivery_unhold(struct conn *c, struct chan *ch, struct request *r)
{
	(void)c;
	(void)ch;
	delivery_unblock(&r->hold);
}

void
delivery_block(struct request_wait *w)
{
	struct dlv_chan *dc = chan_ext(w->ch);

	w->claimed = false;
	TAILQ_INSERT_TAIL(&dc->held, w, link);
}

void
delivery_unblock(struct request_wait *w)
{
	struct dlv_chan *dc = chan_ext(w->ch);

	TAILQ_REMOVE(&dc->held, w, link);
}

/* ---- the options a durable ack channel's DECLARE keeps ------------------------ */

#define OPTS_VERSION 1

static uint8_t *
put_le(uint8_t *p, uint64_t x, int n)
{
	for (int i = 0; i < n; i++)
		*p++ = (uint8_t)(x >> (8 * i));
	return p;
}

static uint64_t
get_le(const uint8_t *p, int n)
{
	uint64_t x = 0;

	for (int i = 0; i < n; i++)
		x |= (uint64_t)p[i] << (8 * i);
	return x;
}

/* [u8 version][u64 ack_wait_us][u32 max_deliver, max_unacked, max_ack_pending][u8 len][dead_letter], little-endian */
size_t
delivery_opts_encode(const struct chan *ch, uint8_t *buf)
{
	const struct dlv_chan *dc = chan_ext(ch);
	uint8_t *p = buf;

	if (dc == NULL)
		return 0;
	*p++ = OPTS_VERSION;
	p = put_le(p, dc->ack_wait_us, 8);
	p = put_le(p, dc->max_deliver, 4);
	p = put_le(p, dc->max_unacked, 4);
	p = put_le(p, dc->max_ack_pending, 4);
	*p++ = (uint8_t)dc->dl_len;
	memcpy(p, dc->dead_letter, dc->dl_len);
	return (size_t)(p - buf) + dc->dl_len;
}

int
delivery_opts_decode(const void *blob, size_t len, struct proto_delivery *o)
{
	const uint8_t *p = blob;
	size_t dl;

	memset(o, 0, sizeof *o);
	if (len < DELIVERY_OPTS_MAX - PROTO_NAME_MAX || p[0] != OPTS_VERSION)
		return -1;
	dl = p[21];
	if (len != 22 + dl || dl > PROTO_NAME_MAX)
		return -1;
	o->on = true;
	o->durable = true;
	o->ack_wait_us = get_le(p + 1, 8);
	o->max_deliver = get_le(p + 9, 4);
	o->max_unacked = get_le(p + 13, 4);
	o->max_ack_pending = get_le(p + 17, 4);
	if (o->ack_wait_us == 0)
		return -1;	/* an ack channel always has one */
	if (dl > 0) {
		o->dead_letter = (const char *)p + 22;
		o->dead_letter_len = (uint32_t)dl;
	}
	return 0;
}
