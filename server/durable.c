/*
 * durable.c: durable channels: replay, the engine's change hook, group
 * commit on a pool worker, and the gates that hold replies until their
 * batch is written (durable.h). Compaction is in durable_compact.c, which
 * value a tag is in durable_pend.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <sys/queue.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "hmap.h"
#include "codec.h"
#include "conn.h"
#include "conn_io.h"
#include "durable.h"
#include "delivery.h"
#include "durable_int.h"
#include "engine.h"
#include "journal.h"
#include "log.h"
#include "pool.h"
#include "server.h"
#include "value.h"

/* fsync always: the loop syncs itself up to this many connections (commit_here). */
#define DURABLE_LOOP_SYNC_CONNS	4

/* One reply held behind a batch; ticket 0: held only to keep c's order. */
struct held_reply {
	TAILQ_ENTRY(held_reply) link;
	uint64_t ticket;
	uint64_t id;
	bool send_ok;
	size_t len;
	uint8_t data[];
};
TAILQ_HEAD(held_list, held_reply);

struct durable_gate {
	struct held_list replies;
	size_t bytes;			/* of the replies held */
	TAILQ_ENTRY(durable_gate) link;	/* in d->gates while it holds any */
	struct conn *conn;
	bool listed;
};

/* ---- staging ----------------------------------------------------------------- */

static bool
stage_room(struct durable *d, size_t n)
{
	size_t cap = d->stage_cap ? d->stage_cap : 4096;
	uint8_t *p;

	if (d->stage_len + n <= d->stage_cap)
		return true;
	while (cap < d->stage_len + n)
		cap *= 2;
	if ((p = realloc(d->stage, cap)) == NULL) {
		d->stage_failed = true;
		return false;
	}
	d->stage = p;
	d->stage_cap = cap;
	return true;
}

static void
put(struct durable *d, const void *p, size_t n)
{
	memcpy(d->stage + d->stage_len, p, n);
	d->stage_len += n;
}

static void
mark_dirty(struct durable *d)
{
	if (!d->dirty && !d->busy)
		event_active(d->turn, EV_WRITE, 0);
	d->dirty = true;
}

/* [type][name len][name][u32 a][u32 blob len][blob]: what the journal call needs. */
void
durable_stage(struct durable *d, int type, struct chan *ch, uint32_t a, const void *blob,
    uint32_t blen)
{
	size_t nlen;
	const char *name = chan_name(ch, &nlen);
	uint8_t hdr[2] = { (uint8_t)type, (uint8_t)nlen };

	d->staged++;
	if (!stage_room(d, 2 + nlen + 8 + blen))
		return;
	put(d, hdr, 2);
	put(d, name, nlen);
	put(d, &a, 4);
	put(d, &blen, 4);
	if (blen > 0)
		put(d, blob, blen);
	mark_dirty(d);
}

uint64_t
durable_staged(const struct durable *d)
{
	return d != NULL ? d->staged : 0;
}

/* Move the staged records into the journal (it buffers them). 0 or an errno. */
int
durable_unstage(struct durable *d)
{
	size_t off = 0;
	int rc = 0;

	if (d->stage_failed) {
		d->stage_failed = false;
		rc = ENOMEM;
	}
	while (off < d->stage_len) {
		const uint8_t *p = d->stage + off;
		uint8_t type = p[0], nlen = p[1];
		const char *name = (const char *)p + 2;
		uint32_t a, blen;
		uint64_t tag = 0;
		const uint8_t *blob;
		int e;

		memcpy(&a, p + 2 + nlen, 4);
		memcpy(&blen, p + 6 + nlen, 4);
		blob = p + 10 + nlen;
		off += 10 + nlen + blen;
		switch (type) {
		case REC_DECLARE:
			e = journal_append_declare(d->j, name, nlen, a, 0, blen ? blob : NULL, blen);
			break;
		case REC_PUSH:
			e = journal_append_push(d->j, name, nlen, blob, blen);
			break;
		case REC_PUSH_COUNTED:
			e = journal_append_push_counted(d->j, name, nlen, a, blob, blen);
			break;
		case REC_POP:
		case REC_ACK:
			/* an ack channel's tag in the blob (REC_POP: 0 = gone for good) */
			memcpy(&tag, blob, blen == 8 ? 8 : 0);
			e = type == REC_POP ? journal_append_pop(d->j, name, nlen, blen == 8 ? tag : 0) :
			    journal_append_ack(d->j, name, nlen, tag);
			break;
		case REC_REQUEUE:
			memcpy(&tag, blob, 8);
			e = journal_append_requeue(d->j, name, nlen, tag, a);
			break;
		case REC_CLOSE:
			e = journal_append_close(d->j, name, nlen, a, (const char *)blob, blen);
			break;
		default:
			e = journal_append_delete(d->j, name, nlen);
			break;
		}
		if (e != 0 && rc == 0)
			rc = e;
	}
	d->stage_len = 0;
	durable_pend_clear(d);
	return rc;
}

/*
 * v, the head, left its buffer: a POP whose tag what follows fills in (an
 * ack channel's delivery, a cross-node select's hold: durable_stage_taken);
 * it stays 0 for a plain receiver or a link, which take it for good.
 */
void
durable_stage_pop(struct durable *d, struct chan *ch, const struct value *v)
{
	uint64_t zero = 0;
	struct pend p;
	size_t len = d->stage_len;

	(void)durable_pend_take(d, ch, v, &p);	/* given back earlier this batch: it leaves the first run */
	durable_stage(d, REC_POP, ch, 0, &zero, 8);
	if (d->stage_len > len)
		durable_pend_add(d, ch, v, d->stage_len - 8);
}

/*
 * v is taken from ch under tag: its POP, staged when it left the buffer,
 * gets the tag; a value sent straight to its taker (never buffered, maybe
 * by a link that took it elsewhere) is a PUSH, then a POP(tag).
 */
void
durable_stage_taken(struct durable *d, struct chan *ch, const struct value *v, uint64_t tag)
{
	struct pend p;

	if (durable_pend_take(d, ch, v, &p) && p.off != SIZE_MAX) {
		memcpy(d->stage + p.off, &tag, 8);
		return;
	}
	durable_stage(d, REC_PUSH, ch, 0, value_data(v), (uint32_t)value_len(v));
	durable_stage(d, REC_POP, ch, 0, &tag, 8);
}

/* The delivery side of an ack channel (delivery.h's hook). */
static void
on_delivery(void *arg, struct chan *ch, enum delivery_change what, const struct value *v,
    uint64_t tag, uint32_t count)
{
	struct durable *d = arg;
	struct pend p;

	if (d->snap != NULL)
		durable_compact_touch(d, ch);
	switch (what) {
	case DELIVERY_TAKE:
		durable_stage_taken(d, ch, v, tag);
		break;
	case DELIVERY_REQUEUE:
		durable_stage(d, REC_REQUEUE, ch, count, &tag, 8);
		/*
		 * A receiver waits (the channel is empty): the engine hands v
		 * straight to it, as if it popped the head just given back. Its
		 * delivery fills the POP's tag in; a link's leaves it 0.
		 */
		if (chan_nreceivers(ch) > 0)
			durable_stage_pop(d, ch, v);
		else
			durable_pend_add(d, ch, v, SIZE_MAX);
		break;
	case DELIVERY_ACK:
		(void)durable_pend_take(d, ch, v, &p);
		durable_stage(d, REC_ACK, ch, 0, &tag, 8);
		break;
	}
}

/* ---- the engine's change hook ------------------------------------------------ */

static void
on_change(void *arg, struct chan *ch, enum engine_change what, const struct value *v)
{
	struct durable *d = arg;
	struct close_err *err;

	/* a channel the snapshot has not written yet: write it as it was, first */
	if (d->snap != NULL)
		durable_compact_before(d, ch, what, v);
	switch (what) {
	case ENGINE_PUSH:
		durable_stage(d, REC_PUSH, ch, 0, value_data(v), (uint32_t)value_len(v));
		break;
	case ENGINE_POP:
		durable_stage_pop(d, ch, v);
		break;
	case ENGINE_BACK:
		/*
		 * Staged already by whoever gave it back: an ack channel's
		 * REQUEUE (on_delivery), a held value's (durable_held.c), or
		 * the restore after replay.
		 */
		break;
	case ENGINE_CLOSE:
		/* the journal's code is 32 bits: a larger one is kept as its low half */
		err = chan_close_error(ch);
		durable_stage(d, REC_CLOSE, ch, err ? (uint32_t)err->code : 0, err ? err->msg : NULL,
		    err ? err->len : 0);
		break;
	case ENGINE_DELETE:
		durable_stage(d, REC_DELETE, ch, 0, NULL, 0);
		durable_pend_drop_chan(d, ch);
		durable_held_drop_chan(d, ch);
		d->channels--;
		break;
	}
}

void
durable_declare(struct durable *d, struct chan *ch)
{
	uint8_t opts[DELIVERY_OPTS_MAX];
	size_t olen = delivery_opts_encode(ch, opts);	/* an ack channel's options, kept in its DECLARE */

	chan_set_durable(ch);
	d->channels++;
	durable_stage(d, REC_DECLARE, ch, chan_cap(ch), opts, (uint32_t)olen);
}

/* ---- commits on a pool worker ------------------------------------------------- */

static void
job_work(struct pool_item *it)
{
	struct durable *d = (struct durable *)(void *)((char *)it - offsetof(struct durable, item));

	if (d->job == JOB_TICK)
		d->job_rc = journal_tick(d->j, clock_now_ns());
	else if (d->job == JOB_COMPACT_END)
		d->job_rc = journal_compact_end(d->j, d->ending, &d->end_cause) < 0 ? EIO : 0;
	else
		d->job_rc = journal_commit(d->j);
}

static void start_batch(struct durable *d);

static void
job_done(struct pool_item *it, bool ran)
{
	struct durable *d = (struct durable *)(void *)((char *)it - offsetof(struct durable, item));
	int rc = d->job_rc;

	d->busy = false;
	if (!ran) {
		/* the pool is being freed: durable_free flushes (and drops an unfinished compaction) */
		d->closing = true;
		return;
	}
	if (d->job == JOB_COMPACT_END) {
		/* journal_compact_end freed the snapshot either way */
		d->ending = NULL;
		if (rc != 0)
			log_error("journal-compaction-failed reason=\"%s\"", d->end_cause ? d->end_cause :
			    strerror(rc));
		free(d->end_cause);
		d->end_cause = NULL;
		if (d->closing)
			return;
		journal_stats(d->j, &d->js);
		if (d->dirty)
			start_batch(d);
		return;
	}
	if (d->closing)
		return;
	journal_stats(d->j, &d->js);
	if (rc != 0 && !d->failing)
		log_error("journal-failed op=%s reason=\"%s\" action=retry-every-second",
		    d->job == JOB_TICK ? "sync" : "commit", strerror(rc));
	else if (rc == 0 && d->failing && d->job != JOB_TICK)
		log_info("journal-recovered");
	if (d->job != JOB_TICK || rc != 0)
		d->failing = rc != 0;
	if (d->job == JOB_COMMIT)
		durable_resolve(d, d->job_batch, rc == 0);
	if (rc == 0) {
		durable_compact_begin(d);
		durable_compact_step(d);
	}
	if (!d->busy && d->dirty)
		start_batch(d);
}

/* Run one job: on a pool worker, or on the loop (here, or when no worker thread can start). */
static void
job_run(struct durable *d, enum job job, uint64_t batch, bool here)
{
	d->job = job;
	d->job_batch = batch;
	d->busy = true;
	d->item.work = job_work;
	d->item.done = job_done;
	if (here || pool_submit(d->srv->pool, &d->item) < 0) {
		job_work(&d->item);
		job_done(&d->item, true);
	}
}

void
durable_submit(struct durable *d, enum job job, uint64_t batch)
{
	job_run(d, job, batch, false);
}

/*
 * Commit on the loop rather than on a worker? With everysec and no, a
 * commit is one write(2) of the turn's records (a few KB; the sync is the
 * tick's, on the worker): cheaper than the hand-off both ways. With
 * always, the write and its fdatasync run on the loop (Redis's way) while
 * the server has at most DURABLE_LOOP_SYNC_CONNS connections: the hand-off
 * to a worker and back costs more than the sync blocks so few clients.
 * With more, the worker syncs, so that no client waits on another's disk.
 */
static bool
commit_here(const struct durable *d)
{
	return d->fsync != JOURNAL_FSYNC_ALWAYS || d->srv->nconns <= DURABLE_LOOP_SYNC_CONNS;
}

/* The turn is over: the staged records become a batch, committed on the loop or a worker (commit_here). */
static void
start_batch(struct durable *d)
{
	uint64_t batch = d->open++;
	int rc;

	d->dirty = false;
	rc = durable_unstage(d);
	journal_stats(d->j, &d->js);
	if (rc != 0 && !d->failing) {
		log_error("journal-failed op=append reason=\"%s\"", strerror(rc));
		d->failing = true;
	}
	if (d->failing) {
		/* the records wait in the journal for the retry timer */
		durable_resolve(d, batch, false);
	} else if (d->js.pending_bytes == 0) {
		durable_resolve(d, batch, true);
	} else {
		job_run(d, JOB_COMMIT, batch, commit_here(d));
	}
}

static void
turn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct durable *d = arg;

	(void)fd;
	(void)what;
	if (!d->busy && d->dirty && !d->closing)
		start_batch(d);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct durable *d = arg;

	(void)fd;
	(void)what;
	if (d->busy || d->closing)
		return;
	if (d->failing) {
		durable_submit(d, JOB_RETRY, 0);
		return;
	}
	/* an idle server still finishes (or starts) its compaction */
	durable_compact_begin(d);
	durable_compact_step(d);
	if (!d->busy && d->fsync == JOURNAL_FSYNC_EVERYSEC)
		durable_submit(d, JOB_TICK, 0);
}

void
durable_stop(struct durable *d)
{
	if (d != NULL)
		d->closing = true;
}

bool
durable_failing(const struct durable *d)
{
	return d->failing;
}

/* ---- gates: replies held until their batch is written -------------------------- */

bool
durable_gated(const struct conn *c)
{
	return c->gate != NULL && !TAILQ_EMPTY(&c->gate->replies);
}

void
durable_hold(struct durable *d, struct conn *c, bool waits, bool send_ok)
{
	struct server *s = d->srv;
	struct proto_out *o = &s->out;
	size_t len = proto_out_len(o);
	struct held_reply *h;

	if (c->gate == NULL && (c->gate = calloc(1, sizeof *c->gate)) != NULL) {
		TAILQ_INIT(&c->gate->replies);
		c->gate->conn = c;
	}
	if (c->gate == NULL || (h = malloc(sizeof *h + len)) == NULL) {
		log_error("reply-failed client=%" PRIu64 " reason=out-of-memory", c->id);
		proto_out_reset(o);
		conn_close_after_flush(c, 0, STATUS_LIMIT, "out of memory");
		return;
	}
	/* the request in dispatch is counted with the status it will get (conn_queue_out does the same) */
	if (c == s->current.conn && o->last_id == s->current.id)
		s->current.status = o->last_status;
	h->ticket = waits ? d->open : 0;
	h->id = o->last_id;
	h->send_ok = send_ok;
	h->len = len;
	memcpy(h->data, proto_out_data(o), len);
	proto_out_reset(o);
	TAILQ_INSERT_TAIL(&c->gate->replies, h, link);
	/* backpressure on a client that outruns the disk: its held replies count as unsent output */
	if ((c->gate->bytes += len) > s->cfg.output_hwm && !c->read_paused && !c->closing) {
		c->read_paused = true;
		io_read_enable(c, false);
		log_info("slow-client client=%" PRIu64 " peer=%s held=%zu action=pause-reading", c->id,
		    c->peer, c->gate->bytes);
	}
	if (!c->gate->listed) {
		TAILQ_INSERT_TAIL(&d->gates, c->gate, link);
		c->gate->listed = true;
	}
	if (waits)
		mark_dirty(d);
}

/* Write what c's gate may now let out: every reply of a batch up to `batch`. */
static void
gate_release(struct durable *d, struct durable_gate *g, uint64_t batch, bool ok)
{
	struct conn *c = g->conn;
	struct proto_out *o = &d->srv->out;
	struct held_reply *h;
	int rc;

	while ((h = TAILQ_FIRST(&g->replies)) != NULL && h->ticket <= batch) {
		TAILQ_REMOVE(&g->replies, h, link);
		g->bytes -= h->len;
		if (!ok && h->send_ok && proto_rep_error(o, h->id, STATUS_STORAGE,
		    "the journal cannot be written (disk full or I/O error); retried every second") == 0) {
			rc = io_write(c, proto_out_data(o), proto_out_len(o));
			proto_out_reset(o);
		} else {
			rc = io_write(c, h->data, h->len);
		}
		if (rc < 0)
			log_error("write-failed client=%" PRIu64 " reason=out-of-memory", c->id);
		free(h);
	}
	if (TAILQ_EMPTY(&g->replies)) {
		TAILQ_REMOVE(&d->gates, g, link);
		g->listed = false;
	}
	conn_output_check(c);	/* backpressure, as for any reply */
}

/* Batch `batch` is written (ok) or failed: its held replies go out. */
void
durable_resolve(struct durable *d, uint64_t batch, bool ok)
{
	struct durable_gate *g, *next;

	for (g = TAILQ_FIRST(&d->gates); g != NULL; g = next) {
		next = TAILQ_NEXT(g, link);
		gate_release(d, g, batch, ok);
	}
}

void
durable_gate_free(struct conn *c)
{
	struct durable_gate *g = c->gate;
	struct held_reply *h;

	if (g == NULL)
		return;
	while ((h = TAILQ_FIRST(&g->replies)) != NULL) {
		TAILQ_REMOVE(&g->replies, h, link);
		free(h);
	}
	if (g->listed)
		TAILQ_REMOVE(&c->srv->durable->gates, g, link);
	free(g);
	c->gate = NULL;
}

int
durable_open(struct server *s, bool repair, struct durable **out, char **cause)
{
	struct durable *d;
	struct journal_opts jo;
	int64_t t0 = clock_now_ns();
	struct timeval sec = { 1, 0 };

	*out = NULL;
	if ((d = calloc(1, sizeof *d)) == NULL)
		goto nomem;
	d->srv = s;
	d->open = 1;
	TAILQ_INIT(&d->gates);
	journal_opts_init(&jo);
	jo.repair = repair;
	jo.compact_min_bytes = s->cfg.journal_compact_min;
	jo.fsync = strcmp(s->cfg.fsync, "everysec") == 0 ? JOURNAL_FSYNC_EVERYSEC :
	    strcmp(s->cfg.fsync, "no") == 0 ? JOURNAL_FSYNC_NO : JOURNAL_FSYNC_ALWAYS;
	d->fsync = jo.fsync;
	hmap_init(&d->rp_flights, (uint64_t)t0);
	hmap_init(&d->pendmap, (uint64_t)t0 ^ 0x9e3779b97f4a7c15ull);
	hmap_init(&d->held, (uint64_t)t0 ^ 0x6a09e667f3bcc908ull);
	d->held_next = 1;
	if (journal_open(s->cfg.data_dir, &jo, &durable_replay_ops, d, &d->j, cause) < 0) {
		durable_replay_free(d);
		free(d);
		return -1;
	}
	journal_stats(d->j, &d->js);
	log_info("journal-replayed dir=%s channels=%" PRIu64 " values=%" PRIu64 " records=%" PRIu64
	    " bytes=%" PRIu64 " truncated=%" PRIu64 " skipped=%" PRIu64 " ms=%" PRId64, s->cfg.data_dir,
	    d->rp_channels, d->rp_values, d->js.replayed_records, d->js.replayed_bytes,
	    d->js.truncated_bytes, d->rp_skipped, (clock_now_ns() - t0) / 1000000);
	if ((d->turn = event_new(s->base, -1, 0, turn_cb, d)) == NULL ||
	    (d->timer = event_new(s->base, -1, EV_PERSIST, timer_cb, d)) == NULL ||
	    event_add(d->timer, &sec) < 0) {
		durable_free(d);
		goto nomem;
	}
	engine_set_change_hook(s->engine, on_change, d);
	delivery_set_change_hook(s->delivery, on_delivery, d);
	xhold_set_change_hook(s->xhold, durable_held_changed, d);
	durable_replay_restore(d);
	/* the log says what memory holds before anything else is appended (JOURNAL.md) */
	if (d->stage_len > 0) {
		int rc = durable_unstage(d);

		if (rc == 0)
			rc = journal_commit(d->j);
		d->dirty = false;
		if (rc != 0) {
			if (asprintf(cause, "%s: cannot write the values in flight back: %s",
			    s->cfg.data_dir, strerror(rc)) < 0)
				*cause = NULL;
			durable_free(d);
			return -1;
		}
	}
	*out = d;
	return 0;
nomem:
	if (asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	return -1;
}

void
durable_free(struct durable *d)
{
	int rc;

	if (d == NULL)
		return;
	d->closing = true;
	if (d->snap != NULL && !d->busy) {
		journal_compact_abort(d->j, d->snap);
		d->snap = NULL;
	}
	if (d->ending != NULL && !d->busy) {
		journal_compact_abort(d->j, d->ending);
		d->ending = NULL;
	}
	if (d->marks != NULL)
		durable_compact_drop(d);
	if (!d->busy && d->j != NULL) {
		if ((rc = durable_unstage(d)) == 0)
			rc = journal_flush(d->j);
		if (rc != 0)
			log_error("journal-failed op=flush reason=\"%s\"", strerror(rc));
	}
	engine_set_change_hook(d->srv->engine, NULL, NULL);
	delivery_set_change_hook(d->srv->delivery, NULL, NULL);
	xhold_set_change_hook(d->srv->xhold, NULL, NULL);
	durable_held_free(d);
	if (d->turn != NULL)
		event_free(d->turn);
	if (d->timer != NULL)
		event_free(d->timer);
	journal_free(d->j);
	free(d->stage);
	free(d->pend);
	hmap_destroy(&d->pendmap);
	free(d);
}

void
durable_chan_info(const struct durable *d, const struct chan *ch, struct proto_chan_info *i)
{
	if (d == NULL || !chan_durable(ch))
		return;
	i->durable = true;
	i->journal_bytes = d->js.log_bytes;
}

void
durable_stats(const struct durable *d, struct durable_stats *st)
{
	st->log_bytes = d->js.log_bytes;
	st->last_sync_ns = d->js.last_sync_ns;
	st->max_sync_ns = d->js.max_sync_ns;
	st->syncs = d->js.syncs;
	st->errors = d->js.errors;
	st->compactions = d->js.compactions;
	st->channels = d->channels;
	st->failing = d->failing;
}
