/*
 * durable_held.c: a plain durable channel's value held by a cross-node
 * select's owner (xhold.h, PROTOCOL.md §17) is in flight in the journal
 * under a tag of its own, as an ack channel's delivery is (JOURNAL.md):
 * POP(tag) when the SELECT with `hold` takes it (a PUSH first if it was
 * sent straight to that select), ACK(tag) when XSETTLE keeps it,
 * REQUEUE(tag, 0) when it is given back. So a kill -9 of the owner while
 * it holds the value leaves it in flight in the log, and the replay gives
 * it back (durable_replay.c); a compaction writes it in flight.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>

#include "delivery.h"
#include "durable_int.h"
#include "value.h"

/* A value held now, by its address (xhold owns it until its KEEP or BACK). */
struct held {
	struct hmap_node node;		/* in d->held */
	const struct value *v;
	struct chan *ch;
	uint64_t tag;
};

static uint64_t
held_hash(const struct durable *d, const struct value *v)
{
	return hmap_hash_u64(d->held.seed, (uint64_t)(uintptr_t)v);
}

/* Record v as held under a new tag, and stage its POP(tag). */
static void
held_take(struct durable *d, struct chan *ch, const struct value *v)
{
	struct held *x = malloc(sizeof *x);

	if (x == NULL)
		goto fail;
	*x = (struct held){ .v = v, .ch = ch, .tag = DURABLE_HELD_TAG | d->held_next++ };
	if (hmap_insert(&d->held, &x->node, held_hash(d, v)) < 0)
		goto fail;
	durable_stage_taken(d, ch, v, x->tag);
	return;
fail:
	/* the batch fails (out of memory): no reply says the value is journaled */
	free(x);
	d->stage_failed = true;
}

/* v's tag, its record gone; 0 if it has none (see held_take's failure). */
static uint64_t
held_remove(struct durable *d, const struct value *v)
{
	struct hmap_node *n;
	uint64_t tag;

	HMAP_FOR_EACH_HASH(n, held_hash(d, v), &d->held) {
		struct held *x = HMAP_ENTRY(n, struct held, node);

		if (x->v == v) {
			tag = x->tag;
			hmap_remove(&d->held, &x->node);
			free(x);
			return tag;
		}
	}
	return 0;
}

/* Given back: REQUEUE (PUSH_COUNTED for one without a tag), then a POP if it is handed on. */
static void
held_back(struct durable *d, struct chan *ch, const struct value *v)
{
	uint64_t tag = held_remove(d, v);

	if (tag != 0)
		durable_stage(d, REC_REQUEUE, ch, value_deliveries(v), &tag, 8);
	else
		durable_stage(d, REC_PUSH_COUNTED, ch, value_deliveries(v), value_data(v),
		    (uint32_t)value_len(v));
	/*
	 * A receiver waits (the channel is empty): engine_requeue hands v
	 * straight to it, as if it popped the head just given back. A held
	 * select's take fills the POP's tag in; another receiver's leaves 0.
	 */
	if (chan_nreceivers(ch) > 0)
		durable_stage_pop(d, ch, v);
}

void
durable_held_changed(void *arg, struct chan *ch, enum xhold_change what, const struct value *v)
{
	struct durable *d = arg;
	uint64_t tag;

	/* an ack channel's value is never held this way; a deleted channel's records are gone */
	if (!chan_durable(ch) || chan_deleted(ch) || delivery_on(ch))
		return;
	/* a channel the snapshot has not written yet: written first, as it was */
	if (d->snap != NULL)
		durable_compact_touch(d, ch);
	switch (what) {
	case XHOLD_TAKE:
		held_take(d, ch, v);
		break;
	case XHOLD_KEEP:
		if ((tag = held_remove(d, v)) != 0)
			durable_stage(d, REC_ACK, ch, 0, &tag, 8);
		break;
	case XHOLD_BACK:
		held_back(d, ch, v);
		break;
	}
}

void
durable_held_foreach(struct durable *d, const struct chan *ch,
    void (*fn)(void *arg, const struct value *v, uint64_t tag, uint32_t count), void *arg)
{
	struct hmap_node *n, *nx;
	size_t pos;

	if (hmap_count(&d->held) == 0 || chan_lent(ch) == 0)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &d->held) {
		struct held *x = HMAP_ENTRY(n, struct held, node);

		if (x->ch == ch)
			fn(arg, x->v, x->tag, value_deliveries(x->v) + 1);
	}
}

static void
held_drop_if(struct durable *d, const struct chan *ch)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &d->held) {
		struct held *x = HMAP_ENTRY(n, struct held, node);

		if (ch == NULL || x->ch == ch) {
			hmap_remove(&d->held, &x->node);
			free(x);
		}
	}
}

void
durable_held_drop_chan(struct durable *d, const struct chan *ch)
{
	if (hmap_count(&d->held) > 0)
		held_drop_if(d, ch);
}

void
durable_held_free(struct durable *d)
{
	held_drop_if(d, NULL);
	hmap_destroy(&d->held);
}
