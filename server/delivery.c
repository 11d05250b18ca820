/*
 * delivery.c: values in flight on ack channels, their tags, ack deadlines
 * and dead letters (see delivery.h).
 *
 * Every value in flight is one record: in the tag table (ACK, NACK, TOUCH
 * find it in O(1)), on its connection's list (the connection's end gives
 * them all back, oldest first), on the list of all records in tag order
 * (INFLIGHT) and on its channel's due list. A channel's ack_wait is the
 * same for all its values, so a value taken or touched later is due later:
 * the due list is in deadline order by construction, and one timer per
 * channel, armed for its head, replaces a libevent timer a value (whose
 * min-heap insert and delete were a quarter of an ack channel's cost a
 * value). A NACK with a delay takes the record out of the table and its
 * connection's list at once (the tag is over) and gives the record a timer
 * of its own to come back later.
 *
 * A record is ~270 bytes (its timer is most of it) and a consumer acks
 * in batches, so records are recycled through a spare list rather than
 * each taking malloc's slow path (beyond its per-thread cache of 7).
 *
 * max_unacked is kept per connection and channel in a slot (its values in
 * flight, its receives waiting in the engine), max_ack_pending on the
 * channel (the same two counts over every connection); the receives made
 * at either limit wait on the channel's queue, in order. Whatever ends a
 * value in flight or a claim checks the channel afterwards and lets
 * waiting receives go, once the records are consistent again.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event_struct.h>

#include "clock.h"
#include "conn.h"
#include "delivery.h"
#include "delivery_int.h"
#include "hmap.h"
#include "log.h"

int
delivery_new(struct delivery **out, struct engine *e, struct event_base *base)
{
	struct delivery *d = calloc(1, sizeof *d);

	*out = NULL;
	if (d == NULL)
		return STATUS_LIMIT;
	d->e = e;
	d->base = base;
	hmap_init(&d->tags, (uint64_t)clock_now_ns());
	TAILQ_INIT(&d->delayed);
	d->next_tag = 1;
	*out = d;
	return STATUS_OK;
}

void
delivery_set_change_hook(struct delivery *d, delivery_change_fn *fn, void *arg)
{
	d->hook = fn;
	d->hook_arg = arg;
}

/* Tell the hook about a durable channel's change. */
static void
changed(struct delivery *d, struct chan *ch, enum delivery_change what, const struct value *v,
    uint64_t tag, uint32_t count)
{
	if (d->hook != NULL && chan_durable(ch))
		d->hook(d->hook_arg, ch, what, v, tag, count);
}

/* ---- channels ------------------------------------------------------------ */

int
delivery_attach(struct chan *ch, const struct proto_delivery *o)
{
	struct dlv_chan *dc;

	if (!o->on)
		return STATUS_OK;
	if ((dc = calloc(1, sizeof *dc)) == NULL)
		return STATUS_LIMIT;
	TAILQ_INIT(&dc->due);
	TAILQ_INIT(&dc->all);
	dc->ack_wait_us = o->ack_wait_us;
	dc->max_deliver = (uint32_t)o->max_deliver;
	dc->max_unacked = (uint32_t)o->max_unacked;
	dc->max_ack_pending = (uint32_t)o->max_ack_pending;
	TAILQ_INIT(&dc->held);
	TAILQ_INIT(&dc->streams);
	TAILQ_INIT(&dc->gates);
	if (o->dead_letter != NULL) {
		memcpy(dc->dead_letter, o->dead_letter, o->dead_letter_len);
		dc->dl_len = o->dead_letter_len;
	}
	chan_set_ext(ch, dc);
	return STATUS_OK;
}

bool
delivery_same(const struct chan *ch, const struct proto_delivery *o)
{
	const struct dlv_chan *dc = chan_ext(ch);

	if (dc == NULL || !o->on)
		return dc == NULL && !o->on;
	return dc->ack_wait_us == o->ack_wait_us && dc->max_deliver == o->max_deliver &&
	    dc->max_unacked == o->max_unacked && dc->max_ack_pending == o->max_ack_pending &&
	    dc->dl_len == (o->dead_letter ? o->dead_letter_len : 0) &&
	    memcmp(dc->dead_letter, o->dead_letter ? o->dead_letter : "", dc->dl_len) == 0;
}

void
delivery_chan_info(const struct chan *ch, struct proto_chan_info *i)
{
	const struct dlv_chan *dc = chan_ext(ch);

	if (dc == NULL)
		return;
	i->ack_wait = dc->ack_wait_us;
	i->inflight = dc->inflight;
	i->redelivered = dc->redelivered;
	i->dead_lettered = dc->dead_lettered;
	i->max_unacked = dc->max_unacked;
	i->max_ack_pending = dc->max_ack_pending;
}

uint32_t
delivery_inflight(const struct chan *ch)
{
	const struct dlv_chan *dc = chan_ext(ch);

	return dc != NULL ? dc->inflight : 0;
}

/* ---- timers -------------------------------------------------------------------- */

static void expire(evutil_socket_t fd, short what, void *arg);

static void due_expire(evutil_socket_t fd, short what, void *arg);

/* Like request.c's: libevent's coarse clock may fire early, so the callbacks check and re-arm. */
static void
arm(struct event *ev, int64_t left_ns)
{
	int64_t us = (left_ns + NSEC_PER_USEC - 1) / NSEC_PER_USEC;
	struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };

	evtimer_add(ev, &tv);
}

/* f (deadline set, the latest of its channel) waits for ACK: its channel's timer runs. */
static void
due_add(struct delivery *d, struct dlv_chan *dc, struct inflight *f, int64_t now)
{
	if (!dc->timer_set) {
		dc->d = d;
		evtimer_assign(&dc->timer, d->base, due_expire, f->ch);
		dc->timer_set = true;
	}
	if (TAILQ_EMPTY(&dc->due))
		arm(&dc->timer, f->deadline_ns - now);
	TAILQ_INSERT_TAIL(&dc->due, f, dlink);
}

/*
 * f no longer waits. The timer stays armed for an earlier head (it fires,
 * finds nothing due and re-arms) but not for an empty list: a channel
 * with nothing in flight can be freed, its timer with it.
 */
static void
due_remove(struct dlv_chan *dc, struct inflight *f)
{
	TAILQ_REMOVE(&dc->due, f, dlink);
	if (TAILQ_EMPTY(&dc->due))
		evtimer_del(&dc->timer);
}

/* ---- giving values back ------------------------------------------------------ */

/* The dead letter's value: a bin holding {channel, count, reason, value} (§16). */
static struct value *
dead_letter_value(const struct inflight *f, const char *reason)
{
	msgpack_sbuffer inner, outer;
	msgpack_packer pk;
	struct value *v = NULL;
	size_t nlen;
	const char *name = chan_name(f->ch, &nlen);
	int rc;

	msgpack_sbuffer_init(&inner);
	msgpack_sbuffer_init(&outer);
	msgpack_packer_init(&pk, &inner, msgpack_sbuffer_write);
	rc = msgpack_pack_map(&pk, 4) |
	    msgpack_pack_str(&pk, 7) | msgpack_pack_str_body(&pk, "channel", 7) |
	    msgpack_pack_str(&pk, nlen) | msgpack_pack_str_body(&pk, name, nlen) |
	    msgpack_pack_str(&pk, 5) | msgpack_pack_str_body(&pk, "count", 5) |
	    msgpack_pack_uint32(&pk, f->count) |
	    msgpack_pack_str(&pk, 6) | msgpack_pack_str_body(&pk, "reason", 6) |
	    msgpack_pack_str(&pk, strlen(reason)) | msgpack_pack_str_body(&pk, reason, strlen(reason)) |
	    msgpack_pack_str(&pk, 5) | msgpack_pack_str_body(&pk, "value", 5);
	/* the value exactly as it was sent: a bin or a channel reference */
	rc |= msgpack_sbuffer_write(&inner, (const char *)value_data(f->v), value_len(f->v));
	msgpack_packer_init(&pk, &outer, msgpack_sbuffer_write);
	rc |= msgpack_pack_bin(&pk, inner.size) | msgpack_pack_bin_body(&pk, inner.data, inner.size);
	if (rc == 0)
		v = value_new(outer.data, outer.size);
	msgpack_sbuffer_destroy(&inner);
	msgpack_sbuffer_destroy(&outer);
	return v;
}

/* Past max_deliver: to the dead_letter channel if it takes it now, else dropped. */
static void
dead_letter(struct delivery *d, struct dlv_chan *dc, struct inflight *f, const char *reason)
{
	struct engine_case c = { .dir = CASE_SEND };
	struct engine_result res;
	struct engine_op *pending;
	size_t nlen;
	const char *name = chan_name(f->ch, &nlen);
	const char *why = "no dead_letter";

	if (dc->dl_len > 0) {
		why = "dead_letter is missing, closed or full";
		c.ch = engine_lookup(d->e, dc->dead_letter, dc->dl_len);
		if (c.ch != NULL && (c.value = dead_letter_value(f, reason)) == NULL)
			why = "out of memory";
		else if (c.ch != NULL && (engine_submit(d->e, &c, 1, 0, NULL, NULL, &pending, &res),
		    res.status == STATUS_OK)) {
			dc->dead_lettered++;
			d->n.dead_lettered++;
			log_info("dead-letter channel=%.*s dead_letter=%.*s count=%" PRIu32 " reason=%s",
			    (int)nlen, name, (int)dc->dl_len, dc->dead_letter, f->count, reason);
			return;
		}
	}
	d->n.dropped++;
	log_warn("delivery-dropped channel=%.*s count=%" PRIu32 " reason=%s note=\"%s\"",
	    (int)nlen, name, f->count, reason, why);
}

/* Take f out of every index; its timer stops. */
static void
unlink_inflight(struct delivery *d, struct inflight *f)
{
	struct dlv_chan *dc = chan_ext(f->ch);

	if (f->slot != NULL) {
		f->slot->inflight--;
		f->slot = NULL;
	}
	if (f->conn != NULL) {
		dc->unacked--;
		due_remove(dc, f);
		hmap_remove(&d->tags, &f->node);
		TAILQ_REMOVE(&f->conn->dlv->list, f, clink);
		f->conn = NULL;
	} else {
		evtimer_del(&f->timer);
		TAILQ_REMOVE(&d->delayed, f, clink);
	}
	TAILQ_REMOVE(&dc->all, f, alink);
}

/* A record for delivery_take: a spare one if any (not zeroed), else NULL out of memory. */
static struct inflight *
record_get(struct delivery *d)
{
	struct inflight *f = d->spare;

	if (f == NULL)
		return malloc(sizeof *f);
	d->spare = f->spare_next;
	d->nspare--;
	return f;
}

static void
record_put(struct delivery *d, struct inflight *f)
{
	if (d->nspare == DLV_SPARE_MAX) {
		free(f);
		return;
	}
	f->spare_next = d->spare;
	d->spare = f;
	d->nspare++;
}

/* f is over (acked or given back): free it, settle its channel unless it was requeued. */
static void
finish(struct delivery *d, struct inflight *f, bool requeued)
{
	struct dlv_chan *dc = chan_ext(f->ch);

	dc->inflight--;
	d->n.inflight--;
	value_free(f->v);
	if (!requeued)
		engine_settle(d->e, f->ch);
	engine_release(d->e, f->ch);
	record_put(d, f);
}

/*
 * f's value back to its channel's head with count deliveries, f over:
 * true, or false when it was dropped (its channel deleted, or out of memory).
 */
static bool
requeue(struct delivery *d, struct inflight *f, uint32_t count, const char *reason)
{
	size_t nlen;
	const char *name;
	int st;

	changed(d, f->ch, DELIVERY_REQUEUE, f->v, f->tag, count);
	unlink_inflight(d, f);
	value_set_deliveries(f->v, count);
	/* the engine may deliver it again at once: f is in no index any more */
	if ((st = engine_requeue(d->e, f->ch, f->v)) == STATUS_OK) {
		f->v = NULL;
		finish(d, f, true);
		return true;
	}
	changed(d, f->ch, DELIVERY_ACK, f->v, f->tag, count);	/* not given back after all */
	name = chan_name(f->ch, &nlen);
	d->n.dropped++;
	log_warn("delivery-dropped channel=%.*s count=%" PRIu32 " reason=%s note=\"%s\"", (int)nlen,
	    name, count, reason, st == STATUS_NOT_FOUND ? "channel deleted" : "out of memory");
	finish(d, f, false);
	return false;
}

/* NACK, ack_wait or the connection's end: another delivery, or past max_deliver the dead letter. */
static void
give_back(struct delivery *d, struct inflight *f, const char *reason)
{
	struct dlv_chan *dc = chan_ext(f->ch);

	if (dc->max_deliver != 0 && f->count >= dc->max_deliver) {
		/* the dead letter's push, then the ACK: a crash between keeps both (JOURNAL.md) */
		dead_letter(d, dc, f, reason);
		changed(d, f->ch, DELIVERY_ACK, f->v, f->tag, f->count);
		unlink_inflight(d, f);
		finish(d, f, false);
		return;
	}
	if (requeue(d, f, f->count, reason)) {
		dc->redelivered++;
		d->n.redelivered++;
	}
}

/* A NACK's delay is over: the value goes back. */
static void
expire(evutil_socket_t fd, short what, void *arg)
{
	struct inflight *f = arg;
	int64_t left = f->deadline_ns - clock_now_ns();

	(void)fd;
	(void)what;
	if (left > 0) {
		arm(&f->timer, left);
		return;
	}
	give_back(f->d, f, "nack");
}

/* A channel's timer: every value whose ack_wait passed goes back, then the timer waits for the next. */
static void
due_expire(evutil_socket_t fd, short what, void *arg)
{
	struct chan *ch = arg;
	struct dlv_chan *dc = chan_ext(ch);
	struct delivery *d = dc->d;
	int64_t now = clock_now_ns();
	struct inflight *f;
	bool room = false;

	(void)fd;
	(void)what;
	engine_hold(ch);	/* the last value given back must not free ch (and dc) under us */
	while ((f = TAILQ_FIRST(&dc->due)) != NULL && f->deadline_ns <= now) {
		room = room || f->slot != NULL;
		give_back(d, f, "ack_wait");	/* a value delivered again now is due later: at the tail */
	}
	if (f != NULL && !evtimer_pending(&dc->timer, NULL))
		arm(&dc->timer, f->deadline_ns - now);
	if (room)
		dlv_chan_check(ch);
	engine_release(d->e, ch);
}

/* ---- taking and settling ---------------------------------------------------------- */

static void give_back_untagged(struct delivery *d, struct chan *ch, struct value *v);

int
delivery_take(struct delivery *d, struct conn *c, struct chan *ch, struct value *v,
    uint64_t *tag, uint32_t *count)
{
	struct dlv_chan *dc = chan_ext(ch);
	struct inflight *f;

	struct dlv_slot *sl = NULL;

	engine_lend(ch);
	if (c->dlv == NULL && (c->dlv = calloc(1, sizeof *c->dlv)) != NULL) {
		TAILQ_INIT(&c->dlv->list);
		TAILQ_INIT(&c->dlv->slots);
	}
	if (c->dlv == NULL || (delivery_limited(ch) && (sl = dlv_slot_get(c, ch)) == NULL) ||
	    (f = record_get(d)) == NULL)
		goto fail;
	/* field by field: zeroing the whole record (its timer is half of it) cost more than the rest */
	f->d = d;
	f->conn = c;
	f->slot = sl;
	f->ch = ch;
	f->v = v;
	f->tag = d->next_tag++;
	f->count = value_deliveries(v) + 1;
	f->since_ns = clock_now_ns();
	if (hmap_insert(&d->tags, &f->node, hmap_hash_u64(d->tags.seed, f->tag)) < 0) {
		record_put(d, f);
		goto fail;
	}
	changed(d, ch, DELIVERY_TAKE, v, f->tag, f->count);
	TAILQ_INSERT_TAIL(&c->dlv->list, f, clink);
	TAILQ_INSERT_TAIL(&dc->all, f, alink);
	if (sl != NULL)
		sl->inflight++;
	engine_hold(ch);
	dc->inflight++;
	dc->unacked++;
	d->n.inflight++;
	f->deadline_ns = f->since_ns + (int64_t)dc->ack_wait_us * NSEC_PER_USEC;
	due_add(d, dc, f, f->since_ns);
	*tag = f->tag;
	*count = f->count;
	return STATUS_OK;

fail:
	give_back_untagged(d, ch, v);
	return STATUS_LIMIT;
}

void
delivery_unsent(struct delivery *d, struct chan *ch, struct value *v)
{
	engine_lend(ch);
	give_back_untagged(d, ch, v);
}

/* v (lent) goes back to ch's head with its count unchanged, never having had a tag. */
static void
give_back_untagged(struct delivery *d, struct chan *ch, struct value *v)
{
	uint64_t tag = d->next_tag++;

	changed(d, ch, DELIVERY_TAKE, v, tag, value_deliveries(v));
	changed(d, ch, DELIVERY_REQUEUE, v, tag, value_deliveries(v));
	if (engine_requeue(d->e, ch, v) != STATUS_OK) {
		changed(d, ch, DELIVERY_ACK, v, tag, value_deliveries(v));
		d->n.dropped++;
		log_warn("delivery-dropped reason=disconnect note=\"channel deleted or out of memory\"");
		value_free(v);
		engine_settle(d->e, ch);
	}
}

/* The live record of tag if c holds it; else NULL with *st saying why. */
static struct inflight *
find(struct delivery *d, const struct conn *c, uint64_t tag, int *st)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(d->tags.seed, tag), &d->tags) {
		struct inflight *f = HMAP_ENTRY(n, struct inflight, node);

		if (f->tag != tag)
			continue;
		*st = f->conn == c ? STATUS_OK : STATUS_PERMISSION_DENIED;
		return f->conn == c ? f : NULL;
	}
	*st = STATUS_NOT_FOUND;
	return NULL;
}

/*
 * ACK, NACK, untake: the live record of tag if c holds it (*f) and its
 * slot (*sl, NULL on a channel without limits), read now because ending
 * the tag frees f while the slot lives on with c; else find's status.
 */
static int
ending_tag(struct delivery *d, const struct conn *c, uint64_t tag, struct inflight **f,
    struct dlv_slot **sl)
{
	int st;

	*f = find(d, c, tag, &st);
	*sl = *f != NULL ? (*f)->slot : NULL;
	return st;
}

/* The tag ended: room again on a limited channel for the receives waiting at its limits. */
static int
tag_ended(struct dlv_slot *sl)
{
	if (sl != NULL)
		dlv_chan_check(sl->ch);
	return STATUS_OK;
}

int
delivery_ack(struct delivery *d, struct conn *c, uint64_t tag)
{
	struct inflight *f;
	struct dlv_slot *sl;
	int st;

	if ((st = ending_tag(d, c, tag, &f, &sl)) != STATUS_OK)
		return st;
	changed(d, f->ch, DELIVERY_ACK, f->v, f->tag, f->count);
	unlink_inflight(d, f);
	d->n.acked++;
	finish(d, f, false);
	return tag_ended(sl);
}

int
delivery_nack(struct delivery *d, struct conn *c, uint64_t tag, int64_t delay_us)
{
	struct inflight *f;
	struct dlv_slot *sl;
	struct dlv_chan *dc;
	int st;

	if ((st = ending_tag(d, c, tag, &f, &sl)) != STATUS_OK)
		return st;
	if (delay_us == 0) {
		give_back(d, f, "nack");
		return tag_ended(sl);
	}
	/* the tag ends now; the value waits out the delay in d->delayed */
	unlink_inflight(d, f);
	dc = chan_ext(f->ch);
	TAILQ_INSERT_TAIL(&dc->all, f, alink);
	TAILQ_INSERT_TAIL(&d->delayed, f, clink);
	f->deadline_ns = clock_now_ns() + delay_us * NSEC_PER_USEC;
	evtimer_assign(&f->timer, d->base, expire, f);
	arm(&f->timer, delay_us * NSEC_PER_USEC);
	return tag_ended(sl);
}

int
delivery_untake(struct delivery *d, struct conn *c, uint64_t tag)
{
	struct inflight *f;
	struct dlv_slot *sl;
	int st;

	if ((st = ending_tag(d, c, tag, &f, &sl)) != STATUS_OK)
		return st;
	requeue(d, f, f->count - 1, "untaken");	/* never delivered: the count it had */
	return tag_ended(sl);
}

int
delivery_touch(struct delivery *d, struct conn *c, uint64_t tag)
{
	struct dlv_chan *dc;
	struct inflight *f;
	int64_t now;
	int st;

	if ((f = find(d, c, tag, &st)) == NULL)
		return st;
	dc = chan_ext(f->ch);
	now = clock_now_ns();
	/* now + ack_wait is the channel's latest deadline: f goes to the due list's tail */
	due_remove(dc, f);
	f->deadline_ns = now + (int64_t)dc->ack_wait_us * NSEC_PER_USEC;
	due_add(d, dc, f, now);
	return STATUS_OK;
}

void
delivery_conn_gone(struct delivery *d, struct conn *c)
{
	struct inflight *f;
	struct dlv_slot *sl;

	if (c->dlv == NULL)
		return;
	while ((f = TAILQ_FIRST(&c->dlv->list)) != NULL)
		give_back(d, f, "disconnect");
	/* its requests were all ended first: nothing is held or claimed any more */
	while ((sl = TAILQ_FIRST(&c->dlv->slots)) != NULL) {
		TAILQ_REMOVE(&c->dlv->slots, sl, link);
		dlv_chan_check(sl->ch);	/* what c held made room for the others */
		engine_release(d->e, sl->ch);
		free(sl);
	}
	free(c->dlv);
	c->dlv = NULL;
}

void
delivery_restore(struct delivery *d, struct chan *ch, struct value *v, uint64_t tag, uint32_t count)
{
	struct dlv_chan *dc = chan_ext(ch);
	struct inflight *f;

	delivery_tags_above(d, tag);
	if ((f = record_get(d)) == NULL) {
		/* out of memory: straight back, past max_deliver or not */
		changed(d, ch, DELIVERY_REQUEUE, v, tag, count);
		value_set_deliveries(v, count);
		if (engine_requeue(d->e, ch, v) != STATUS_OK) {
			changed(d, ch, DELIVERY_ACK, v, tag, count);
			value_free(v);
			engine_settle(d->e, ch);
		}
		return;
	}
	/* as a value NACKed with a delay that is over: in d->delayed, no connection */
	f->d = d;
	f->conn = NULL;
	f->slot = NULL;
	f->ch = ch;
	f->v = v;
	f->tag = tag;
	f->count = count;
	f->since_ns = f->deadline_ns = clock_now_ns();
	evtimer_assign(&f->timer, d->base, expire, f);
	TAILQ_INSERT_TAIL(&dc->all, f, alink);
	TAILQ_INSERT_TAIL(&d->delayed, f, clink);
	engine_hold(ch);
	dc->inflight++;
	d->n.inflight++;
	give_back(d, f, "restart");
}

void
delivery_tags_above(struct delivery *d, uint64_t tag)
{
	if (tag >= d->next_tag)
		d->next_tag = tag + 1;
}

void
delivery_foreach_inflight(const struct chan *ch,
    void (*fn)(void *arg, const struct value *v, uint64_t tag, uint32_t count), void *arg)
{
	const struct dlv_chan *dc = chan_ext(ch);
	struct inflight *f;

	if (dc == NULL || dc->d == NULL)
		return;
	TAILQ_FOREACH(f, &dc->all, alink)
		fn(arg, f->v, f->tag, f->count);
}

/* ---- admin ------------------------------------------------------------------------- */

int
delivery_list(const struct chan *ch, struct proto_out *o, uint64_t limit,
    uint64_t *total)
{
	const struct dlv_chan *dc = chan_ext(ch);
	int64_t now = clock_now_ns();
	struct inflight *f;
	uint64_t n = 0, packed = 0;
	int rc = 0;

	if (dc != NULL)
		n = dc->unacked;	/* those with a connection (a live tag) */
	*total = n;
	if (limit != 0 && n > limit)
		n = limit;
	rc |= proto_pack_array(o, n);
	for (f = dc != NULL ? TAILQ_FIRST(&dc->all) : NULL; f != NULL; f = TAILQ_NEXT(f, alink)) {
		struct proto_inflight_info i;

		if (f->conn == NULL)
			continue;
		if (packed++ == n)
			break;
		i = (struct proto_inflight_info){ .client = f->conn->id, .tag = f->tag,
		    .count = f->count, .age_ms = (uint64_t)(now - f->since_ns) / 1000000 };
		rc |= proto_pack_inflight(o, &i);
	}
	return rc;
}

void
delivery_counters(const struct delivery *d, struct delivery_counters *out)
{
	*out = d->n;
}

/* f goes without a word: the server is going. */
static void
record_drop(struct delivery *d, struct inflight *f)
{
	unlink_inflight(d, f);
	value_free(f->v);
	engine_release(d->e, f->ch);
	free(f);
}

void
delivery_free(struct delivery *d)
{
	struct inflight *f;
	struct hmap_node *n, *nx;
	size_t pos;

	if (d == NULL)
		return;
	/* every value in flight has a live tag, or waits out a NACK's delay */
	HMAP_FOR_EACH_SAFE(n, nx, pos, &d->tags)
		record_drop(d, HMAP_ENTRY(n, struct inflight, node));
	while ((f = TAILQ_FIRST(&d->delayed)) != NULL)
		record_drop(d, f);
	while ((f = d->spare) != NULL) {
		d->spare = f->spare_next;
		free(f);
	}
	hmap_destroy(&d->tags);
	free(d);
}
