/*
 * durable_int.h: what durable.c shares with durable_compact.c. Not for any
 * other module: everyone else uses durable.h.
 *
 * The journal belongs to the loop thread between pool items and to the
 * worker during one (busy); the compaction's snapshot writer is appended to
 * only on the loop, and is the worker's during JOB_COMPACT_END (ending).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DURABLE_INT_H
#define CHAND_DURABLE_INT_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durable.h"
#include "engine.h"
#include "hmap.h"
#include "journal.h"
#include "pool.h"
#include "xhold.h"

struct event;

/* Staged record types: the journal's narrow interface, one byte each. */
enum { REC_DECLARE, REC_PUSH, REC_POP, REC_CLOSE, REC_DELETE, REC_ACK, REC_REQUEUE,
    REC_PUSH_COUNTED };

/*
 * The tags of plain channels' values held for cross-node selects
 * (durable_held.c) have this bit set: an ack channel's (delivery's, from
 * 1 up) never do, so one tag names one value in flight in the journal.
 */
#define DURABLE_HELD_TAG	(UINT64_C(1) << 63)

enum job { JOB_COMMIT, JOB_RETRY, JOB_TICK, JOB_COMPACT_END };

/* A durable channel as of the compaction's begin: written whole into the snapshot, once. */
struct mark {
	struct hmap_node node;
	struct chan *ch;		/* held until the compaction ends */
	bool written;
};

struct durable {
	struct server *srv;
	struct journal *j;
	enum journal_fsync fsync;
	uint8_t *stage;			/* records since the last batch went into the journal */
	size_t stage_len, stage_cap;
	uint64_t staged;		/* records staged since the start */
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

	/*
	 * Ack channels: values that left a buffer, or were given back, this
	 * batch and whose tag is not staged yet (durable.c's on_delivery), in
	 * no order, found by value through pendmap (its nodes are in the
	 * array: indexed again when the array moves).
	 */
	struct pend *pend;
	size_t npend, pend_cap;
	struct hmap pendmap;		/* struct pend by value address */

	/* plain channels' values held for cross-node selects (durable_held.c) */
	struct hmap held;		/* struct held by value address */
	uint64_t held_next;		/* the next one's tag */

	uint64_t channels;		/* durable channels now */
	/* replay */
	uint64_t rp_channels, rp_values, rp_skipped;
	struct hmap rp_flights;		/* struct rp_flight by tag: in flight so far */
	uint64_t rp_max_tag;		/* of ack channels' tags */
};

/*
 * A value of an ack channel between its engine change and its delivery's.
 * Found by value and channel: a link passes the value it took to another
 * channel, and frees values whose memory a later one reuses (value_serial).
 */
struct pend {
	struct hmap_node node;		/* in pendmap */
	const struct value *v;
	uint32_t serial;		/* v's value_serial */
	struct chan *ch;
	size_t off;			/* of its POP's tag in the stage; SIZE_MAX: given back */
};

/*
 * durable_pend.c: v's entry on ch, its POP's tag at stage offset off
 * (SIZE_MAX: given back; an older entry is replaced); the entry of v on ch
 * taken off into *out (false if none); every entry of ch dropped; all of
 * them dropped (the batch went into the journal). Out of memory fails the
 * batch (stage_failed).
 */
void durable_pend_add(struct durable *d, struct chan *ch, const struct value *v, size_t off);
bool durable_pend_take(struct durable *d, const struct chan *ch, const struct value *v,
    struct pend *out);
void durable_pend_drop_chan(struct durable *d, const struct chan *ch);
void durable_pend_clear(struct durable *d);
/* durable.c: stage one record (a: DECLARE's cap, CLOSE's code, a count; blob: the rest). */
void durable_stage(struct durable *d, int type, struct chan *ch, uint32_t a, const void *blob,
    uint32_t blen);
/* v left ch's buffer: a POP whose tag durable_stage_taken may fill in this batch, else 0. */
void durable_stage_pop(struct durable *d, struct chan *ch, const struct value *v);
/* v is taken under tag: its POP gets the tag, or (never buffered) PUSH, then POP(tag). */
void durable_stage_taken(struct durable *d, struct chan *ch, const struct value *v, uint64_t tag);
/* durable.c: hand one job to the pool (or run it here without a worker). */
void durable_submit(struct durable *d, enum job job, uint64_t batch);
/* Batch `batch` is written (ok) or failed: its held replies go out. */
void durable_resolve(struct durable *d, uint64_t batch, bool ok);
/* Move the staged records into the journal (it buffers them). 0 or an errno. */
int durable_unstage(struct durable *d);

/* durable_compact.c (the loop's, while no item runs, but for _before). */
/* The log passed twice its live data: begin a snapshot. */
void durable_compact_begin(struct durable *d);
/* Write one turn's part of the snapshot; the last part hands the end to the worker. */
void durable_compact_step(struct durable *d);
/* The hook, before staging a change of ch: a channel not yet written goes in as it was. */
void durable_compact_before(struct durable *d, struct chan *ch, enum engine_change what,
    const struct value *v);
/* The delivery hook, before staging a change of ch's values in flight. */
void durable_compact_touch(struct durable *d, struct chan *ch);
/* Let go of the marked channels. */
void durable_compact_drop(struct durable *d);

/*
 * durable_held.c: a plain durable channel's value held for a cross-node
 * select (xhold.h) is in flight under a tag of its own (JOURNAL.md):
 * POP(tag) when taken, ACK(tag) when kept, REQUEUE(tag, 0) when given back.
 */
/* xhold.h's change hook (arg: the durable). */
void durable_held_changed(void *arg, struct chan *ch, enum xhold_change what,
    const struct value *v);
/* Visit ch's held values, as delivery_foreach_inflight does (count: 1). */
void durable_held_foreach(struct durable *d, const struct chan *ch,
    void (*fn)(void *arg, const struct value *v, uint64_t tag, uint32_t count), void *arg);
/* ch is deleted: its held values are dropped with it. */
void durable_held_drop_chan(struct durable *d, const struct chan *ch);
void durable_held_free(struct durable *d);

/* durable_replay.c: the journal's records into the engine (journal_open's ops, d their arg). */
extern const struct journal_ops durable_replay_ops;
/*
 * After replay: the values in flight at the crash back to their channels,
 * REQUEUE staged (an ack channel's with count + 1, a held one's with 0).
 */
void durable_replay_restore(struct durable *d);
/* Free what replay keeps of values in flight (after durable_replay_restore, or on failure). */
void durable_replay_free(struct durable *d);

#endif
