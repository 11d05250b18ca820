/*
 * durable_replay.c: replaying the journal into the engine at start-up
 * (JOURNAL.md): channels, values, and values in flight (ack channels'
 * deliveries, plain channels' values held for cross-node selects), which
 * go back to their channels once the whole journal is read.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>

#include "hmap.h"
#include "delivery.h"
#include "durable_int.h"
#include "log.h"
#include "server.h"
#include "value.h"

/* ---- replay ------------------------------------------------------------------- */

static void
rp_declare(void *arg, const char *name, size_t len, uint32_t cap, uint32_t flags, const void *opts,
    size_t opts_len)
{
	struct durable *d = arg;
	struct proto_delivery o = { 0 };
	struct chan *ch;
	bool created;

	(void)flags;
	if (opts_len > 0 && delivery_opts_decode(opts, opts_len, &o) != 0) {
		log_warn("journal-replay name=\"%.*s\" reason=\"its ack options cannot be read\"",
		    (int)len, name);
		d->rp_skipped++;
		return;
	}
	if (engine_make(d->srv->engine, name, len, cap, &ch, &created) != STATUS_OK) {
		log_warn("journal-replay name=\"%.*s\" cap=%" PRIu32 " reason=\"cannot make it\"",
		    (int)len, name, cap);
		return;
	}
	if (created && delivery_attach(ch, &o) != STATUS_OK) {
		log_warn("journal-replay name=\"%.*s\" reason=\"out of memory for its ack options\"",
		    (int)len, name);
		engine_delete(d->srv->engine, ch, NULL);
		d->rp_skipped++;
		created = false;
	}
	if (created) {
		chan_set_durable(ch);
		d->channels++;
		d->rp_channels++;
	}
	engine_release(d->srv->engine, ch);
}

/* The durable channel a replayed record names, or NULL (counted as skipped). */
static struct chan *
rp_chan(struct durable *d, const char *name, size_t len)
{
	struct chan *ch = engine_lookup(d->srv->engine, name, len);

	if (ch == NULL || !chan_durable(ch)) {
		d->rp_skipped++;
		return NULL;
	}
	return ch;
}

static void
rp_push(void *arg, const char *name, size_t len, const void *value, size_t value_len)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct engine_case c = { .ch = ch, .dir = CASE_SEND };
	struct engine_op *op;
	struct engine_result r;

	if (ch == NULL)
		return;
	if ((c.value = value_new(value, value_len)) == NULL ||
	    engine_submit(d->srv->engine, &c, 1, 0, NULL, NULL, &op, &r) != 0 || r.status != STATUS_OK) {
		d->rp_skipped++;
		return;
	}
	d->rp_values++;
}

/* An ack channel's value in flight at this point of the replay. */
struct rp_flight {
	struct hmap_node node;
	struct chan *ch;		/* held */
	struct value *v;		/* lent (engine_lend) */
	uint64_t tag;
	uint32_t count;
};

static struct rp_flight *
rp_flight_find(struct durable *d, uint64_t tag)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(d->rp_flights.seed, tag), &d->rp_flights) {
		struct rp_flight *f = HMAP_ENTRY(n, struct rp_flight, node);

		if (f->tag == tag)
			return f;
	}
	return NULL;
}

/* f is over: off the map; its value goes back (requeue) or for good. */
static void
rp_flight_end(struct durable *d, struct rp_flight *f, bool requeue)
{
	struct engine *e = d->srv->engine;

	hmap_remove(&d->rp_flights, &f->node);
	if (!requeue || engine_requeue(e, f->ch, f->v) != STATUS_OK) {
		value_free(f->v);
		engine_settle(e, f->ch);
		d->rp_values--;
	}
	engine_release(e, f->ch);
	free(f);
}

static void
rp_pop(void *arg, const char *name, size_t len, uint64_t tag)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct engine_case c = { .ch = ch, .dir = CASE_RECV };
	struct engine_op *op;
	struct engine_result r;
	struct rp_flight *f;
	bool held;

	if (ch == NULL)
		return;
	if (engine_submit(d->srv->engine, &c, 1, 0, NULL, NULL, &op, &r) != 0 || r.value == NULL) {
		d->rp_skipped++;
		return;
	}
	/* an ack channel's delivery, or a plain channel's value held for a cross-node select */
	held = !delivery_on(ch);
	if (held && (tag & ~DURABLE_HELD_TAG) >= d->held_next)
		d->held_next = (tag & ~DURABLE_HELD_TAG) + 1;
	else if (!held && tag > d->rp_max_tag)
		d->rp_max_tag = tag;
	if (tag == 0 || held != ((tag & DURABLE_HELD_TAG) != 0) || rp_flight_find(d, tag) != NULL ||
	    (f = malloc(sizeof *f)) == NULL) {
		value_free(r.value);
		d->rp_values--;
		if (tag != 0)
			d->rp_skipped++;
		return;
	}
	/* in flight: lent, as delivery_take or xhold_take makes it */
	engine_lend(ch);
	engine_hold(ch);
	*f = (struct rp_flight){ .ch = ch, .v = r.value, .tag = tag,
	    .count = value_deliveries(r.value) + (held ? 0 : 1) };
	(void)hmap_insert(&d->rp_flights, &f->node, hmap_hash_u64(d->rp_flights.seed, tag));
}

/* The value in flight under tag, for an ACK or REQUEUE; NULL (counted as skipped) when none. */
static struct rp_flight *
rp_flight_settled(struct durable *d, uint64_t tag)
{
	struct rp_flight *f = rp_flight_find(d, tag);

	if (f == NULL)
		d->rp_skipped++;
	return f;
}

static void
rp_ack(void *arg, const char *name, size_t len, uint64_t tag)
{
	struct durable *d = arg;
	struct rp_flight *f = rp_flight_settled(d, tag);

	(void)name;
	(void)len;
	if (f != NULL)
		rp_flight_end(d, f, false);
}

static void
rp_requeue(void *arg, const char *name, size_t len, uint64_t tag, uint32_t count)
{
	struct durable *d = arg;
	struct rp_flight *f = rp_flight_settled(d, tag);

	(void)name;
	(void)len;
	if (f == NULL)
		return;
	value_set_deliveries(f->v, count);
	rp_flight_end(d, f, true);
}

static void
rp_push_counted(void *arg, const char *name, size_t len, uint32_t count, const void *value,
    size_t value_len)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct value *v;

	if (ch == NULL)
		return;
	if ((v = value_new(value, value_len)) == NULL) {
		d->rp_skipped++;
		return;
	}
	value_set_deliveries(v, count);
	engine_lend(ch);
	if (engine_requeue(d->srv->engine, ch, v) != STATUS_OK) {
		value_free(v);
		engine_settle(d->srv->engine, ch);
		d->rp_skipped++;
		return;
	}
	d->rp_values++;
}

/*
 * A value in flight at the crash: an ack channel's comes back as after
 * ack_wait; a plain channel's, held for a cross-node select, is given back
 * (REQUEUE; ACK if it cannot be, out of memory: the log says what memory has).
 */
static void
rp_restore_one(struct durable *d, struct rp_flight *f)
{
	struct engine *e = d->srv->engine;

	if (delivery_on(f->ch)) {
		delivery_restore(d->srv->delivery, f->ch, f->v, f->tag, f->count);
	} else if (engine_requeue(e, f->ch, f->v) == STATUS_OK) {
		durable_stage(d, REC_REQUEUE, f->ch, f->count, &f->tag, 8);
	} else {
		durable_stage(d, REC_ACK, f->ch, 0, &f->tag, 8);
		value_free(f->v);
		engine_settle(e, f->ch);
	}
	engine_release(e, f->ch);
	free(f);
}

static int
rp_flight_cmp(const void *a, const void *b)
{
	const struct rp_flight *x = *(struct rp_flight *const *)a, *y = *(struct rp_flight *const *)b;

	return x->tag < y->tag ? -1 : x->tag > y->tag;
}

/*
 * After replay, the hooks set: the values still in flight come back as
 * after ack_wait, oldest delivery first (REQUEUE records, or dead letters),
 * and new tags go above every tag replayed (out of memory for the sort:
 * in the map's order).
 */
void
durable_replay_restore(struct durable *d)
{
	size_t n = hmap_count(&d->rp_flights), i = 0, pos;
	struct rp_flight **all = calloc(n ? n : 1, sizeof *all);
	struct hmap_node *hn, *nx;

	delivery_tags_above(d->srv->delivery, d->rp_max_tag);
	HMAP_FOR_EACH_SAFE(hn, nx, pos, &d->rp_flights) {
		struct rp_flight *f = HMAP_ENTRY(hn, struct rp_flight, node);

		hmap_remove(&d->rp_flights, &f->node);
		if (all != NULL)
			all[i++] = f;
		else
			rp_restore_one(d, f);
	}
	if (all != NULL) {
		qsort(all, n, sizeof *all, rp_flight_cmp);
		for (i = 0; i < n; i++)
			rp_restore_one(d, all[i]);
	}
	free(all);
	hmap_destroy(&d->rp_flights);
}

static void
rp_close(void *arg, const char *name, size_t len, uint32_t code, const char *msg, size_t msg_len)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct close_err *err = NULL;

	if (ch == NULL)
		return;
	if ((code != 0 || msg_len > 0) && (err = close_err_new(code, msg, msg_len)) == NULL) {
		d->rp_skipped++;
		return;
	}
	(void)engine_close_err(d->srv->engine, ch, err);
	close_err_unref(err);
}

static void
rp_delete(void *arg, const char *name, size_t len)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct hmap_node *hn, *nx;
	size_t n = 0, pos;

	if (ch == NULL)
		return;
	HMAP_FOR_EACH_SAFE(hn, nx, pos, &d->rp_flights) {
		struct rp_flight *f = HMAP_ENTRY(hn, struct rp_flight, node);

		if (f->ch == ch)
			rp_flight_end(d, f, false);
	}
	(void)engine_delete(d->srv->engine, ch, &n);
	d->rp_values -= n;
	d->rp_channels--;
	d->channels--;
}

/* A replay that failed: let go of its values in flight. */
void
durable_replay_free(struct durable *d)
{
	struct hmap_node *hn, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(hn, nx, pos, &d->rp_flights) {
		struct rp_flight *f = HMAP_ENTRY(hn, struct rp_flight, node);

		rp_flight_end(d, f, false);
	}
	hmap_destroy(&d->rp_flights);
}

const struct journal_ops durable_replay_ops = {
	.declare = rp_declare, .push = rp_push, .pop = rp_pop, .close = rp_close, .delete = rp_delete,
	.ack = rp_ack, .push_counted = rp_push_counted, .requeue = rp_requeue,
};
