/*
 * durable.c: durable channels: replay, the engine's change hook, group
 * commit on a pool worker, and the gates that hold replies until their
 * batch is written (durable.h).
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
#include "engine.h"
#include "journal.h"
#include "log.h"
#include "pool.h"
#include "server.h"
#include "value.h"

/* Staged record types: the journal's narrow interface, one byte each. */
enum { REC_DECLARE, REC_PUSH, REC_POP, REC_CLOSE, REC_DELETE };

enum job { JOB_COMMIT, JOB_RETRY, JOB_TICK, JOB_COMPACT_END };

/* A snapshot's appends per loop turn, at most (then one write): a few ms of work. */
#define SNAP_TURN_BYTES (1u << 20)
#define SNAP_TURN_CHANS 256

/* A durable channel as of the compaction's begin: written whole into the snapshot, once. */
struct mark {
	struct hmap_node node;
	struct chan *ch;		/* held until the compaction ends */
	bool written;
};

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
	TAILQ_ENTRY(durable_gate) link;	/* in d->gates while it holds any */
	struct conn *conn;
	bool listed;
};

struct durable {
	struct server *srv;
	struct journal *j;
	enum journal_fsync fsync;
	uint8_t *stage;			/* records since the last batch went into the journal */
	size_t stage_len, stage_cap;
	bool stage_failed;		/* out of memory while staging: the next commit fails */
	uint64_t open;			/* the batch being staged (tickets) */
	bool dirty;			/* something staged or held since the batch began */
	struct event *turn;		/* end of the loop turn: start the batch */
	struct event *timer;		/* 1 s: everysec's sync, retries after a failure */
	TAILQ_HEAD(, durable_gate) gates;

	/* the pool item: the journal is the worker's while busy */
	struct pool_item item;
	bool busy;
	bool closing;
	enum job job;
	uint64_t job_batch;
	int job_rc;

	bool failing;
	struct journal_stats js;	/* as of the last item */

	/* compaction (journal.h): the snapshot writer, the channels it must still write */
	struct journal *snap;
	struct mark *marks;
	size_t nmarks, next_mark;
	struct hmap markmap;		/* struct mark by channel */
	uint64_t snap_bytes;		/* appended this turn */
	int snap_err;
	struct journal *ending;		/* JOB_COMPACT_END's snapshot */
	char *end_cause;
	uint64_t channels;
	/* replay */
	uint64_t rp_channels, rp_values, rp_skipped;
};

static void resolve(struct durable *d, uint64_t batch, bool ok);

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
static void
stage(struct durable *d, int type, struct chan *ch, uint32_t a, const void *blob, uint32_t blen)
{
	size_t nlen;
	const char *name = chan_name(ch, &nlen);
	uint8_t hdr[2] = { (uint8_t)type, (uint8_t)nlen };

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

/* Move the staged records into the journal (it buffers them). 0 or an errno. */
static int
unstage(struct durable *d)
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
		const uint8_t *blob;
		int e;

		memcpy(&a, p + 2 + nlen, 4);
		memcpy(&blen, p + 6 + nlen, 4);
		blob = p + 10 + nlen;
		off += 10 + nlen + blen;
		switch (type) {
		case REC_DECLARE:
			e = journal_append_declare(d->j, name, nlen, a, 0, NULL, 0);
			break;
		case REC_PUSH:
			e = journal_append_push(d->j, name, nlen, blob, blen);
			break;
		case REC_POP:
			e = journal_append_pop(d->j, name, nlen, 0);
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
	return rc;
}

/* ---- compaction: a snapshot of the state as of begin, a few channels a turn ---- */

struct snap_walk {
	struct durable *d;
	const char *name;
	size_t len;
	uint32_t left;			/* values still to write */
};

static void
snap_value(void *arg, const struct value *v)
{
	struct snap_walk *w = arg;
	int e;

	if (w->left == 0)
		return;
	w->left--;
	if ((e = journal_append_push(w->d->snap, w->name, w->len, value_data(v), value_len(v))) != 0)
		w->d->snap_err = e;
	w->d->snap_bytes += value_len(v) + w->len + 16;
}

/*
 * Write m's channel as it was before the change being made (the hook runs
 * just after it): head, a value that just left, goes first; skip_tail
 * leaves out a value just pushed; reopen, a close just made.
 */
static void
snap_write(struct durable *d, struct mark *m, const struct value *head, bool skip_tail, bool reopen)
{
	struct chan *ch = m->ch;
	struct snap_walk w = { .d = d };
	struct close_err *err = chan_close_error(ch);
	int e;

	m->written = true;
	w.name = chan_name(ch, &w.len);
	w.left = chan_len(ch) + chan_nback(ch) - (skip_tail ? 1 : 0);
	if ((e = journal_append_declare(d->snap, w.name, w.len, chan_cap(ch), 0, NULL, 0)) != 0)
		d->snap_err = e;
	if (head != NULL) {
		w.left++;
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
static void
marks_free(struct durable *d)
{
	for (size_t i = 0; i < d->nmarks && d->marks != NULL; i++)
		engine_release(d->srv->engine, d->marks[i].ch);
	free(d->marks);
	d->marks = NULL;
	d->nmarks = d->next_mark = 0;
	hmap_destroy(&d->markmap);
}

/* The log passed twice the live data: begin (the journal is the loop's: no item runs). */
static void
compact_begin(struct durable *d)
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
		rc = unstage(d);
	}
	if (rc == 0)
		rc = journal_compact_begin(d->j, &d->snap);
	journal_stats(d->j, &d->js);
	if (batch != 0) {
		if (rc != 0 && !d->failing)
			log_error("journal-failed op=commit reason=\"%s\" action=retry-every-second",
			    strerror(rc));
		d->failing = rc != 0;
		resolve(d, batch, rc == 0);
	}
	if (rc != 0) {
		log_error("journal-compaction-failed reason=\"%s\"", strerror(rc));
		marks_free(d);
		return;
	}
	engine_foreach_chan(d->srv->engine, count_durable, d);
	d->snap_err = 0;
	log_info("journal-compaction-start channels=%zu log_bytes=%" PRIu64, d->nmarks, d->js.log_bytes);
}

static void submit(struct durable *d, enum job job, uint64_t batch);

/* One turn's part of the snapshot; the last one hands the end (a sync) to the worker. */
static void
compact_step(struct durable *d)
{
	size_t done = 0;
	int rc;

	if (d->snap == NULL)
		return;
	d->snap_bytes = 0;
	while (d->next_mark < d->nmarks && done < SNAP_TURN_CHANS && d->snap_bytes < SNAP_TURN_BYTES) {
		struct mark *m = &d->marks[d->next_mark++];

		if (!m->written && !chan_deleted(m->ch)) {
			snap_write(d, m, NULL, false, false);
			done++;
		}
	}
	if (d->snap_err == 0 && (rc = journal_commit(d->snap)) != 0)
		d->snap_err = rc;
	if (d->snap_err != 0) {
		log_error("journal-compaction-failed reason=\"%s\" action=abandoned", strerror(d->snap_err));
		journal_compact_abort(d->j, d->snap);
		d->snap = NULL;
		marks_free(d);
		return;
	}
	if (d->next_mark < d->nmarks)
		return;
	marks_free(d);
	d->ending = d->snap;
	d->snap = NULL;
	submit(d, JOB_COMPACT_END, 0);
}

/* ---- the engine's change hook ------------------------------------------------ */

static void
on_change(void *arg, struct chan *ch, enum engine_change what, const struct value *v)
{
	struct durable *d = arg;
	struct close_err *err;
	struct mark *m;

	/* a channel the snapshot has not written yet: write it as it was, first */
	if (d->snap != NULL && (m = mark_find(d, ch)) != NULL && !m->written)
		snap_write(d, m, what == ENGINE_POP ? v : NULL, what == ENGINE_PUSH,
		    what == ENGINE_CLOSE);
	switch (what) {
	case ENGINE_PUSH:
		stage(d, REC_PUSH, ch, 0, value_data(v), (uint32_t)value_len(v));
		break;
	case ENGINE_POP:
		stage(d, REC_POP, ch, 0, NULL, 0);
		break;
	case ENGINE_CLOSE:
		/* the journal's code is 32 bits: a larger one is kept as its low half */
		err = chan_close_error(ch);
		stage(d, REC_CLOSE, ch, err ? (uint32_t)err->code : 0, err ? err->msg : NULL,
		    err ? err->len : 0);
		break;
	case ENGINE_DELETE:
		stage(d, REC_DELETE, ch, 0, NULL, 0);
		d->channels--;
		break;
	}
}

void
durable_declare(struct durable *d, struct chan *ch)
{
	chan_set_durable(ch);
	d->channels++;
	stage(d, REC_DECLARE, ch, chan_cap(ch), NULL, 0);
}

/* ---- commits on a pool worker ------------------------------------------------- */

static void
job_work(struct pool_item *it)
{
	struct durable *d = (struct durable *)((char *)it - offsetof(struct durable, item));

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
	struct durable *d = (struct durable *)((char *)it - offsetof(struct durable, item));
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
		resolve(d, d->job_batch, rc == 0);
	if (rc == 0) {
		compact_begin(d);
		compact_step(d);
	}
	if (!d->busy && d->dirty)
		start_batch(d);
}

static void
submit(struct durable *d, enum job job, uint64_t batch)
{
	d->job = job;
	d->job_batch = batch;
	d->busy = true;
	d->item.work = job_work;
	d->item.done = job_done;
	if (pool_submit(d->srv->pool, &d->item) < 0) {
		/* no worker thread: commit here rather than never */
		job_work(&d->item);
		job_done(&d->item, true);
	}
}

/* The turn is over: the staged records become a batch, committed off the loop. */
static void
start_batch(struct durable *d)
{
	uint64_t batch = d->open++;
	int rc;

	d->dirty = false;
	rc = unstage(d);
	journal_stats(d->j, &d->js);
	if (rc != 0 && !d->failing) {
		log_error("journal-failed op=append reason=\"%s\"", strerror(rc));
		d->failing = true;
	}
	if (d->failing) {
		/* the records wait in the journal for the retry timer */
		resolve(d, batch, false);
	} else if (d->js.pending_bytes == 0) {
		resolve(d, batch, true);
	} else {
		submit(d, JOB_COMMIT, batch);
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
		submit(d, JOB_RETRY, 0);
		return;
	}
	/* an idle server still finishes (or starts) its compaction */
	compact_begin(d);
	compact_step(d);
	if (!d->busy && d->fsync == JOURNAL_FSYNC_EVERYSEC)
		submit(d, JOB_TICK, 0);
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
	struct proto_out *o = &d->srv->out;
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
	h->ticket = waits ? d->open : 0;
	h->id = o->last_id;
	h->send_ok = send_ok;
	h->len = len;
	memcpy(h->data, proto_out_data(o), len);
	proto_out_reset(o);
	TAILQ_INSERT_TAIL(&c->gate->replies, h, link);
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
}

/* Batch `batch` is written (ok) or failed: its held replies go out. */
static void
resolve(struct durable *d, uint64_t batch, bool ok)
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

/* ---- replay ------------------------------------------------------------------- */

static void
rp_declare(void *arg, const char *name, size_t len, uint32_t cap, uint32_t flags, const void *opts,
    size_t opts_len)
{
	struct durable *d = arg;
	struct chan *ch;
	bool created;

	(void)flags;
	(void)opts;
	(void)opts_len;
	if (engine_make(d->srv->engine, name, len, cap, &ch, &created) != STATUS_OK) {
		log_warn("journal-replay name=\"%.*s\" cap=%" PRIu32 " reason=\"cannot make it\"",
		    (int)len, name, cap);
		return;
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

static void
rp_pop(void *arg, const char *name, size_t len, uint64_t tag)
{
	struct durable *d = arg;
	struct chan *ch = rp_chan(d, name, len);
	struct engine_case c = { .ch = ch, .dir = CASE_RECV };
	struct engine_op *op;
	struct engine_result r;

	(void)tag;
	if (ch == NULL)
		return;
	if (engine_submit(d->srv->engine, &c, 1, 0, NULL, NULL, &op, &r) != 0 || r.value == NULL) {
		d->rp_skipped++;
		return;
	}
	value_free(r.value);
	d->rp_values--;
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
	size_t n = 0;

	if (ch == NULL)
		return;
	(void)engine_delete(d->srv->engine, ch, &n);
	d->rp_values -= n;
	d->rp_channels--;
	d->channels--;
}

static const struct journal_ops replay_ops = {
	.declare = rp_declare, .push = rp_push, .pop = rp_pop, .close = rp_close, .delete = rp_delete,
};

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
	if (journal_open(s->cfg.data_dir, &jo, &replay_ops, d, &d->j, cause) < 0) {
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
		marks_free(d);
	if (!d->busy && d->j != NULL) {
		if ((rc = unstage(d)) == 0)
			rc = journal_flush(d->j);
		if (rc != 0)
			log_error("journal-failed op=flush reason=\"%s\"", strerror(rc));
	}
	engine_set_change_hook(d->srv->engine, NULL, NULL);
	if (d->turn != NULL)
		event_free(d->turn);
	if (d->timer != NULL)
		event_free(d->timer);
	journal_free(d->j);
	free(d->stage);
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
