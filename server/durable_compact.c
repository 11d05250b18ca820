/*
 * durable_compact.c: compaction of the durable channels' journal (Redis's
 * AOF rewrite, incremental; journal.h): a snapshot of every durable
 * channel as of journal_compact_begin, written a few channels a loop turn
 * while the channels go on changing. A marked channel is written whole
 * either in a later turn or, by the change hook, just before its first
 * change (as it was before it); channels made after begin are not written.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "delivery.h"
#include "durable_int.h"
#include "log.h"
#include "server.h"
#include "value.h"

/* A snapshot's appends per loop turn, at most (then one write): a few ms of work. */
#define SNAP_TURN_BYTES (1u << 20)
#define SNAP_TURN_CHANS 256

struct snap_walk {
	struct durable *d;
	const char *name;
	size_t len;
	uint32_t left;			/* values still to write */
	uint32_t back;			/* of those, given back ones still to write */
	uint32_t skip;			/* 1 + the index of a value not to write (0: none) */
	uint32_t seen;			/* values visited */
};

static void
snap_value(void *arg, const struct value *v)
{
	struct snap_walk *w = arg;
	int e;

	if (w->left == 0 || ++w->seen == w->skip)
		return;
	w->left--;
	/* an ack channel's values given back first: their count, and their place (JOURNAL.md) */
	if (w->back > 0) {
		w->back--;
		e = journal_append_push_counted(w->d->snap, w->name, w->len, value_deliveries(v),
		    value_data(v), value_len(v));
	} else
		e = journal_append_push(w->d->snap, w->name, w->len, value_data(v), value_len(v));
	if (e != 0)
		w->d->snap_err = e;
	w->d->snap_bytes += value_len(v) + w->len + 20;
}

/* A value in flight: given back with the count before its delivery, then taken under its tag. */
static void
snap_inflight(void *arg, const struct value *v, uint64_t tag, uint32_t count)
{
	struct snap_walk *w = arg;
	int e;

	if ((e = journal_append_push_counted(w->d->snap, w->name, w->len, count > 0 ? count - 1 : 0,
	    value_data(v), value_len(v))) != 0 ||
	    (e = journal_append_pop(w->d->snap, w->name, w->len, tag)) != 0)
		w->d->snap_err = e;
	w->d->snap_bytes += value_len(v) + 2 * w->len + 40;
}

/*
 * Write m's channel as it was before the change being made (the hook runs
 * just after it): head, a value that just left, goes first; skip_tail
 * leaves out a value just pushed; skip_back, one just given back (the last
 * of those); reopen, a close just made.
 */
static void
snap_write(struct durable *d, struct mark *m, const struct value *head, bool skip_tail,
    bool skip_back, bool reopen)
{
	struct chan *ch = m->ch;
	struct snap_walk w = { .d = d };
	struct close_err *err = chan_close_error(ch);
	uint8_t opts[DELIVERY_OPTS_MAX];
	size_t olen = delivery_opts_encode(ch, opts);
	int e;

	m->written = true;
	w.name = chan_name(ch, &w.len);
	w.left = chan_len(ch) + chan_nback(ch) - (skip_tail || skip_back ? 1 : 0);
	if ((e = journal_append_declare(d->snap, w.name, w.len, chan_cap(ch), 0, olen ? opts : NULL, olen)) != 0)
		d->snap_err = e;
	delivery_foreach_inflight(ch, snap_inflight, &w);
	durable_held_foreach(d, ch, snap_inflight, &w);
	w.back = chan_nback(ch) - (skip_back ? 1 : 0);
	if (skip_back)
		w.skip = chan_nback(ch);
	if (head != NULL) {
		/* from the values given back if some are left, or if it was delivered before */
		w.left++;
		w.back += w.back > 0 || value_deliveries(head) > 0;
		snap_value(&w, head);
	}
	chan_foreach_value(ch, snap_value, &w);
	if (chan_closed(ch) && !reopen &&
	    (e = journal_append_close(d->snap, w.name, w.len, err ? (uint32_t)err->code : 0,
	    err ? err->msg : NULL, err ? err->len : 0)) != 0)
		d->snap_err = e;
}

static struct mark *
mark_find(struct durable *d, struct chan *ch)
{
	struct hmap_node *n;
	uint64_t h = hmap_hash_u64(d->markmap.seed, (uint64_t)(uintptr_t)ch);

	HMAP_FOR_EACH_HASH(n, h, &d->markmap) {
		struct mark *m = HMAP_ENTRY(n, struct mark, node);

		if (m->ch == ch)
			return m;
	}
	return NULL;
}

static int
count_durable(struct chan *ch, void *arg)
{
	struct durable *d = arg;

	if (chan_durable(ch)) {
		if (d->marks != NULL) {
			struct mark *m = &d->marks[d->nmarks];

			m->ch = ch;
			engine_hold(ch);
			(void)hmap_insert(&d->markmap, &m->node,
			    hmap_hash_u64(d->markmap.seed, (uint64_t)(uintptr_t)ch));
		}
		d->nmarks++;
	}
	return 0;
}

/* Let go of the marked channels. */
void
durable_compact_drop(struct durable *d)
{
	for (size_t i = 0; i < d->nmarks && d->marks != NULL; i++)
		engine_release(d->srv->engine, d->marks[i].ch);
	free(d->marks);
	d->marks = NULL;
	d->nmarks = d->next_mark = 0;
	hmap_destroy(&d->markmap);
}

/* The log passed twice the live data: begin (the journal is the loop's: no item runs). */
void
durable_compact_begin(struct durable *d)
{
	uint64_t batch = 0;
	size_t n;
	int rc = 0;

	if (d->failing || d->snap != NULL || d->ending != NULL || !journal_compact_due(d->j))
		return;
	d->nmarks = 0;
	engine_foreach_chan(d->srv->engine, count_durable, d);
	n = d->nmarks;
	d->nmarks = 0;
	hmap_init(&d->markmap, (uint64_t)clock_now_ns());
	if ((d->marks = calloc(n ? n : 1, sizeof *d->marks)) == NULL) {
		hmap_destroy(&d->markmap);
		return;
	}
	/*
	 * What is staged already changed the channels the snapshot will show:
	 * it must go before the new segment, so it is the batch begin commits.
	 */
	if (d->stage_len > 0 || d->dirty) {
		batch = d->open++;
		d->dirty = false;
		rc = durable_unstage(d);
	}
	if (rc == 0)
		rc = journal_compact_begin(d->j, &d->snap);
	journal_stats(d->j, &d->js);
	if (batch != 0) {
		if (rc != 0 && !d->failing)
			log_error("journal-failed op=commit reason=\"%s\" action=retry-every-second",
			    strerror(rc));
		d->failing = rc != 0;
		durable_resolve(d, batch, rc == 0);
	}
	if (rc != 0) {
		log_error("journal-compaction-failed reason=\"%s\"", strerror(rc));
		durable_compact_drop(d);
		return;
	}
	engine_foreach_chan(d->srv->engine, count_durable, d);
	d->snap_err = 0;
	log_info("journal-compaction-start channels=%zu log_bytes=%" PRIu64, d->nmarks, d->js.log_bytes);
}


/* One turn's part of the snapshot; the last one hands the end (a sync) to the worker. */
void
durable_compact_step(struct durable *d)
{
	size_t done = 0;
	int rc;

	if (d->snap == NULL)
		return;
	d->snap_bytes = 0;
	while (d->next_mark < d->nmarks && done < SNAP_TURN_CHANS && d->snap_bytes < SNAP_TURN_BYTES) {
		struct mark *m = &d->marks[d->next_mark++];

		if (!m->written && !chan_deleted(m->ch)) {
			snap_write(d, m, NULL, false, false, false);
			done++;
		}
	}
	if (d->snap_err == 0 && (rc = journal_commit(d->snap)) != 0)
		d->snap_err = rc;
	if (d->snap_err != 0) {
		log_error("journal-compaction-failed reason=\"%s\" action=abandoned", strerror(d->snap_err));
		journal_compact_abort(d->j, d->snap);
		d->snap = NULL;
		durable_compact_drop(d);
		return;
	}
	if (d->next_mark < d->nmarks)
		return;
	durable_compact_drop(d);
	d->ending = d->snap;
	d->snap = NULL;
	durable_submit(d, JOB_COMPACT_END, 0);
}

void
durable_compact_touch(struct durable *d, struct chan *ch)
{
	struct mark *m = mark_find(d, ch);

	if (m != NULL && !m->written)
		snap_write(d, m, NULL, false, false, false);
}

void
durable_compact_before(struct durable *d, struct chan *ch, enum engine_change what,
    const struct value *v)
{
	struct mark *m = mark_find(d, ch);

	if (m != NULL && !m->written)
		snap_write(d, m, what == ENGINE_POP ? v : NULL, what == ENGINE_PUSH,
		    what == ENGINE_BACK, what == ENGINE_CLOSE);
}
